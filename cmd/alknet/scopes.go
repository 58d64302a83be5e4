package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/alkdev/alknet/core/store"
)

// knownScopes are the scopes the binary's services check (the scope table
// of ARCHITECTURE.md): the gate scope of each ALPN and the finer scopes its
// handler checks. The node's owner holds all of them, and a scope outside
// this set is refused by `peer add` and config.toml unless explicitly
// allowed, so that a typo ("sfpt") never grants nothing silently.
var knownScopes = []string{
	"admin",
	"call",
	"dns:update",
	"fs", "fs:write",
	"git",
	"metrics",
	"mix",
	"msg:fetch", "msg:send",
	"sftp", "sftp:write",
	"ssh", "ssh:exec", "ssh:forward", "ssh:listen", "ssh:sftp", "ssh:shell",
}

// checkScopes refuses malformed scopes, and scopes outside knownScopes
// unless allowUnknown is set.
// flag names the option to suggest in the message.
func checkScopes(scopes []string, allowUnknown bool, flag string) error {
	for _, s := range scopes {
		if err := store.ValidateScope(s); err != nil {
			return err
		}
		if allowUnknown || slices.Contains(knownScopes, s) {
			continue
		}
		msg := fmt.Sprintf("unknown scope %q", s)
		if near := nearestScope(s); near != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", near)
		}
		return fmt.Errorf("%s; known scopes: %s; %s", msg, strings.Join(knownScopes, ", "), flag)
	}
	return nil
}

// nearestScope returns the known scope within edit distance 2 of s, if one
// is closest.
func nearestScope(s string) string {
	best, bestD := "", 3
	for _, k := range knownScopes {
		if d := editDistance(s, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the Damerau (optimal string alignment) distance, so that
// a swap of two letters ("sfpt") counts as one edit.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

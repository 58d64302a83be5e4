package store

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/alkdev/alknet/core"
)

var (
	peerIDRe   = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	scopeRe    = regexp.MustCompile(`^[a-z][a-z0-9-]*(:[a-z0-9*/_.-]+)*$`)
	resourceRe = regexp.MustCompile(`^[a-z][a-z0-9-]*(:[A-Za-z0-9*/_.-]+)+$`)
	actionRe   = regexp.MustCompile(`^([a-z][a-z0-9-]*|\*)$`)
)

// Limits on what one peer entry may hold.
const (
	MaxFingerprints   = 64
	MaxScopes         = 128
	MaxResources      = 256
	MaxScopeLen       = 128
	MaxDisplayNameLen = 128
)

// ValidatePeerID checks the peer id syntax: 1 to 64 characters of a-z, 0-9,
// '.', '_' and '-', starting with a letter or digit.
func ValidatePeerID(id string) error {
	if !peerIDRe.MatchString(id) {
		return fmt.Errorf("%w %q: use 1-64 characters a-z 0-9 . _ -, starting with a letter or digit", ErrInvalidPeerID, id)
	}
	return nil
}

// ValidateScope checks the scope syntax: a lowercase name, then optional
// ":qualifier" parts ("ssh", "sftp:write", "git:repo/alpha").
func ValidateScope(s string) error {
	if len(s) > MaxScopeLen || !scopeRe.MatchString(s) {
		return fmt.Errorf("%w %q (want a lowercase name with optional :qualifiers, e.g. ssh or sftp:write)", ErrInvalidScope, s)
	}
	return nil
}

// ValidateResource checks a resource type ("git:repo/alpha": a lowercase
// kind, then ":name" parts) and its actions (lowercase words or "*").
func ValidateResource(typ string, actions []string) error {
	if len(typ) > MaxScopeLen || !resourceRe.MatchString(typ) {
		return fmt.Errorf("%w type %q (want kind:name, e.g. git:repo/alpha)", ErrInvalidResource, typ)
	}
	if len(actions) == 0 {
		return fmt.Errorf("%w %s: no actions", ErrInvalidResource, typ)
	}
	for _, a := range actions {
		if len(a) > MaxScopeLen || !actionRe.MatchString(a) {
			return fmt.Errorf("%w action %q on %s (want a lowercase word or *)", ErrInvalidResource, a, typ)
		}
	}
	return nil
}

// normalize validates e and returns a copy with fingerprints in canonical
// form ("ed25519:<lowercase hex>"), duplicates removed, and nil slices and
// maps made empty.
func normalize(e core.PeerEntry) (core.PeerEntry, error) {
	if err := ValidatePeerID(e.PeerID); err != nil {
		return e, err
	}
	return normalizeBody(e)
}

// normalizeBody is normalize without the peer id syntax check (static peers
// from a configuration keep the ids they have).
func normalizeBody(e core.PeerEntry) (core.PeerEntry, error) {
	out := e
	if len(e.Fingerprints) == 0 {
		return e, fmt.Errorf("%w %q: at least one key (fingerprint) is required", ErrInvalidPeer, e.PeerID)
	}
	if len(e.Fingerprints) > MaxFingerprints {
		return e, fmt.Errorf("%w %q: more than %d keys", ErrInvalidPeer, e.PeerID, MaxFingerprints)
	}
	out.Fingerprints = make([]string, 0, len(e.Fingerprints))
	for _, fp := range e.Fingerprints {
		id, err := core.ParseFingerprint(strings.TrimSpace(fp))
		if err != nil {
			return e, fmt.Errorf("%w %q: %w", ErrInvalidPeer, e.PeerID, err)
		}
		if c := id.Fingerprint(); !slices.Contains(out.Fingerprints, c) {
			out.Fingerprints = append(out.Fingerprints, c)
		}
	}
	if len(e.Scopes) > MaxScopes {
		return e, fmt.Errorf("%w %q: more than %d scopes", ErrInvalidPeer, e.PeerID, MaxScopes)
	}
	out.Scopes = make([]string, 0, len(e.Scopes))
	for _, s := range e.Scopes {
		if err := ValidateScope(s); err != nil {
			return e, err
		}
		if !slices.Contains(out.Scopes, s) {
			out.Scopes = append(out.Scopes, s)
		}
	}
	if len(e.Resources) > MaxResources {
		return e, fmt.Errorf("%w %q: more than %d resources", ErrInvalidPeer, e.PeerID, MaxResources)
	}
	out.Resources = make(map[string][]string, len(e.Resources))
	for _, typ := range slices.Sorted(maps.Keys(e.Resources)) {
		acts := e.Resources[typ]
		if err := ValidateResource(typ, acts); err != nil {
			return e, err
		}
		var uniq []string
		for _, a := range acts {
			if !slices.Contains(uniq, a) {
				uniq = append(uniq, a)
			}
		}
		out.Resources[typ] = uniq
	}
	if err := validateDisplayName(e.DisplayName); err != nil {
		return e, fmt.Errorf("%w %q: %w", ErrInvalidPeer, e.PeerID, err)
	}
	if e.TokenHash != "" {
		if len(e.TokenHash) != 64 || strings.Trim(strings.ToLower(e.TokenHash), "0123456789abcdef") != "" {
			return e, fmt.Errorf("%w %q: token hash is not a hex SHA-256", ErrInvalidPeer, e.PeerID)
		}
		out.TokenHash = strings.ToLower(e.TokenHash)
	}
	return out, nil
}

func validateDisplayName(s string) error {
	if len(s) > MaxDisplayNameLen {
		return fmt.Errorf("display name longer than %d bytes", MaxDisplayNameLen)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("display name is not UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Errorf("display name contains control characters")
		}
	}
	return nil
}

package main

import (
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/alkdev/alknet/core"
)

const configFile = "config.toml"

// fileConfig is config.toml. Each module that the binary serves adds its own
// section here.
type fileConfig struct {
	// Listen is the UDP host:port to serve on. Default 0.0.0.0:4433.
	Listen string       `toml:"listen"`
	Peers  []configPeer `toml:"peers"`
	SFTP   sftpConfig   `toml:"sftp"`
	SSH    sshConfig    `toml:"ssh"`
	Git    gitConfig    `toml:"git"`
}

type configPeer struct {
	ID           string              `toml:"id"`
	DisplayName  string              `toml:"display_name"`
	Fingerprints []string            `toml:"fingerprints"`
	Scopes       []string            `toml:"scopes"`
	Resources    map[string][]string `toml:"resources"`
}

// loadConfig reads path; a missing file at the default location is an empty
// config, a missing explicit file is an error. Unknown keys are errors, so
// a typo never silently changes nothing.
func loadConfig(path string, explicit bool) (fileConfig, error) {
	var cfg fileConfig
	md, err := toml.DecodeFile(path, &cfg)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && !explicit {
			return fileConfig{}, nil
		}
		return fileConfig{}, fmt.Errorf("config %s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		sort.Strings(keys)
		return fileConfig{}, fmt.Errorf("config %s: unknown keys: %s", path, strings.Join(keys, ", "))
	}
	for i, p := range cfg.Peers {
		if _, err := cfg.peerEntry(i); err != nil {
			return fileConfig{}, fmt.Errorf("config %s: peer %q: %w", path, p.ID, err)
		}
	}
	return cfg, nil
}

// peerEntry converts the i-th config peer, normalizing fingerprints.
func (c fileConfig) peerEntry(i int) (core.PeerEntry, error) {
	p := c.Peers[i]
	if p.ID == "" {
		return core.PeerEntry{}, errors.New("missing id")
	}
	if len(p.Fingerprints) == 0 {
		return core.PeerEntry{}, errors.New("no fingerprints")
	}
	fps := make([]string, 0, len(p.Fingerprints))
	for _, fp := range p.Fingerprints {
		id, err := core.ParseFingerprint(fp)
		if err != nil {
			return core.PeerEntry{}, err
		}
		fps = append(fps, id.Fingerprint())
	}
	return core.PeerEntry{
		PeerID: p.ID, DisplayName: p.DisplayName, Fingerprints: fps,
		Scopes: p.Scopes, Resources: p.Resources, Enabled: true,
	}, nil
}

// peerEntries converts every config peer; ids must be unique.
func (c fileConfig) peerEntries() ([]core.PeerEntry, error) {
	seen := map[string]bool{}
	var out []core.PeerEntry
	for i := range c.Peers {
		e, err := c.peerEntry(i)
		if err != nil {
			return nil, err
		}
		if seen[e.PeerID] {
			return nil, fmt.Errorf("peer %q is listed twice in the config", e.PeerID)
		}
		seen[e.PeerID] = true
		out = append(out, e)
	}
	return out, nil
}

package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/store"
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
	// Owner switches the node's own key as an implicit all-scopes peer.
	Owner ownerConfig `toml:"owner"`
	// Limits override the endpoint's limits; zero keeps core's default.
	Limits limitsConfig `toml:"limits"`
	TLS    []tlsPair    `toml:"tls"`
	ACME   acmeConfig   `toml:"acme"`
	Git    gitConfig    `toml:"git"`
	// Sections of the modules wired through extensions; each type lives in
	// the module's file of this package.
	FS   fsConfig   `toml:"fs"`
	DNS  dnsConfig  `toml:"dns"`
	DHT  dhtConfig  `toml:"dht"`
	HTTP httpConfig `toml:"http"`
	Msg  msgConfig  `toml:"msg"`
	Mix  mixConfig  `toml:"mix"`

	noTCP    bool             // serve --no-tcp
	tlsCerts []core.CertFiles // [[tls]] and --tls-cert/--tls-key, resolved
	acme     *core.ACMEConfig // [acme] and --acme-domain, resolved
}

// limitsConfig is the [limits] section: core.Config's connection limits.
// Zero (or absent) keeps core's default; a negative value means what it
// means in core.Config. Durations are strings such as "90s" or "10m".
type limitsConfig struct {
	MaxConns           int           `toml:"max_conns"`
	MaxConnsPerPeer    int           `toml:"max_conns_per_peer"`
	MaxIncomingStreams int64         `toml:"max_incoming_streams"`
	MaxAnonConns       int           `toml:"max_anon_conns"`
	MaxAnonConnsPerIP  int           `toml:"max_anon_conns_per_ip"`
	MaxAnonStreams     int           `toml:"max_anon_streams"`
	AnonLifetime       time.Duration `toml:"anon_lifetime"`
	HandshakeTimeout   time.Duration `toml:"handshake_timeout"`
	IdleTimeout        time.Duration `toml:"idle_timeout"`
}

// apply copies the limits that are set into cfg.
func (l limitsConfig) apply(cfg *core.Config) {
	cfg.MaxConns = l.MaxConns
	cfg.MaxConnsPerPeer = l.MaxConnsPerPeer
	cfg.MaxIncomingStreams = l.MaxIncomingStreams
	cfg.MaxAnonConns = l.MaxAnonConns
	cfg.MaxAnonConnsPerIP = l.MaxAnonConnsPerIP
	cfg.MaxAnonStreams = l.MaxAnonStreams
	cfg.AnonLifetime = l.AnonLifetime
	cfg.HandshakeTimeout = l.HandshakeTimeout
	cfg.IdleTimeout = l.IdleTimeout
}

type configPeer struct {
	ID           string              `toml:"id"`
	DisplayName  string              `toml:"display_name"`
	Fingerprints []string            `toml:"fingerprints"`
	Scopes       []string            `toml:"scopes"`
	Resources    map[string][]string `toml:"resources"`
	// AllowUnknownScopes accepts scopes outside the known set (for
	// operations registered by other programs).
	AllowUnknownScopes bool `toml:"allow_unknown_scopes"`
}

// loadConfig reads path; a missing file at the default location is an empty
// config, a missing explicit file is an error. Unknown keys are errors, so
// a typo never silently changes nothing.
func loadConfig(path string, explicit bool) (fileConfig, error) {
	var cfg fileConfig
	if err := checkConfigMode(path); err != nil {
		return fileConfig{}, err
	}
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

// checkConfigMode refuses a config file that others may write: it decides
// who gets in. A missing file is left to the decoder.
func checkConfigMode(path string) error {
	st, err := os.Stat(path)
	if err != nil || runtime.GOOS == "windows" {
		return nil
	}
	if perm := st.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("config %s has mode %04o: others can write it and let themselves in; chmod 600 %s", path, perm, path)
	}
	return nil
}

// peerEntry converts the i-th config peer, normalizing fingerprints.
func (c fileConfig) peerEntry(i int) (core.PeerEntry, error) {
	p := c.Peers[i]
	if p.ID == "" {
		return core.PeerEntry{}, errors.New("missing id")
	}
	if err := checkPeerName(p.ID); err != nil {
		return core.PeerEntry{}, err
	}
	if err := checkScopes(p.Scopes, p.AllowUnknownScopes, "set allow_unknown_scopes = true in the peer to allow it"); err != nil {
		return core.PeerEntry{}, err
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

// checkPeerName applies the peer id rules of `peer add` (the store's syntax,
// and the name reserved for the node's own key).
func checkPeerName(id string) error {
	if err := store.ValidatePeerID(id); err != nil {
		return err
	}
	if id == ownerPeerID {
		return fmt.Errorf("peer id %q is reserved for the node's own key", ownerPeerID)
	}
	return nil
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

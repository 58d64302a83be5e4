package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/store"
	"github.com/spf13/cobra"
)

// databaseFile is the node database in the data directory.
const databaseFile = "alknet.db"

// maxPublicKeyFile bounds what `peer add --ssh-key` reads.
const maxPublicKeyFile = 64 << 10

// peerCmd holds what every peer subcommand shares.
type peerCmd struct {
	g          *globals
	configPath string
}

func newPeerCmd(g *globals) *cobra.Command {
	p := &peerCmd{g: g}
	cmd := &cobra.Command{
		Use:   "peer",
		Short: "Manage the peers this node lets in (the peer table in alknet.db)",
		Long: `Manage the peer table in <data>/alknet.db. A peer is an id you choose, one
or more ed25519 keys (node ids, fingerprints or OpenSSH public keys), the
scopes that open ALPNs and operations to it, and resources for finer checks.

Changes take effect in a running "alknet serve" on the same data directory
within milliseconds, without restart: removing or disabling a peer closes its
open connections. Peers listed in config.toml ([[peers]]) are shown too, but
are changed in that file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.PersistentFlags().StringVar(&p.configPath, "config", "", "config file whose [[peers]] are reserved (default <data>/config.toml)")
	cmd.AddCommand(p.addCmd(), p.listCmd(), p.showCmd(), p.rmCmd(),
		p.enableCmd(true), p.enableCmd(false), p.tokenCmd())
	return cmd
}

// open opens the database and the peer table, with the configuration's
// peers reserved.
func (p *peerCmd) open() (*store.PeerStore, func(), error) {
	explicit := p.configPath != ""
	path := p.configPath
	if !explicit {
		path = p.g.path(configFile)
	}
	cfg, err := loadConfig(path, explicit)
	if err != nil {
		return nil, nil, err
	}
	static, err := cfg.peerEntries()
	if err != nil {
		return nil, nil, err
	}
	if err := p.g.prepareDataDir(); err != nil {
		return nil, nil, err
	}
	p.g.checkDatabase()
	db, err := store.New(store.Config{Path: p.g.path(databaseFile)})
	if err != nil {
		return nil, nil, err
	}
	ps, err := store.NewPeerStore(db, store.PeerStoreConfig{Static: static})
	if err != nil {
		_ = db.Close()
		return nil, nil, err
	}
	return ps, func() { _ = ps.Close(); _ = db.Close() }, nil
}

// withPeers runs fn on the open peer table.
func (p *peerCmd) withPeers(ctx context.Context, fn func(ctx context.Context, ps *store.PeerStore) error) error {
	ps, closeFn, err := p.open()
	if err != nil {
		return err
	}
	defer closeFn()
	return peerError(fn(ctx, ps))
}

// peerError rewords store errors for the command line.
func peerError(err error) error {
	var name string
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrPeerNotFound):
		_, name, _ = strings.Cut(err.Error(), ": ")
		return fmt.Errorf("no peer %s (alknet peer list shows them)", strings.TrimPrefix(name, "no such peer: "))
	case errors.Is(err, store.ErrPeerExists):
		_, name, _ = strings.Cut(err.Error(), "exists: ")
		return fmt.Errorf("peer %s already exists (alknet peer rm it first, or choose another name)", name)
	}
	return err
}

func (p *peerCmd) addCmd() *cobra.Command {
	var nodes, fps, sshKeys, scopes, resources []string
	var display string
	var allowUnknown bool
	cmd := &cobra.Command{
		Use:   "add NAME (--node NODEID | --fingerprint FP | --ssh-key FILE.pub)... [--scope S]... [--resource TYPE=ACTION,...]...",
		Short: "Add a peer",
		Long: `Add a peer NAME (1-64 characters a-z 0-9 . _ -) with at least one key.
Keys are given as node ids (--node), fingerprints "ed25519:<64 hex>"
(--fingerprint) or OpenSSH ed25519 public key files (--ssh-key); an OpenSSH
key and a node id of the same key are the same fingerprint. A key belongs to
one peer only.

Scopes open ALPNs and operations: ssh, sftp, sftp:write, git, call, admin, ...
A scope outside the known set is refused (a typo would grant nothing) unless
--allow-unknown-scope is given. The name "owner" is reserved for the node's
own key. Resources grant actions on named things: --resource git:repo/alpha=read,write.`,
		Example: `  alknet peer add laptop --node ybndrfg8ejkmcpqxot1uwisza345h769ybndrfg8ejkmcpqxot1uwis --scope ssh --scope sftp
  alknet peer add ci --ssh-key ~/.ssh/id_ed25519.pub --scope git --resource git:repo/site=read,write`,
		Args: exactArgs(1, "peer add NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkPeerName(args[0]); err != nil {
				return err
			}
			if err := checkScopes(scopes, allowUnknown, "pass --allow-unknown-scope to grant it anyway"); err != nil {
				return err
			}
			e := core.PeerEntry{PeerID: args[0], DisplayName: display, Scopes: scopes, Enabled: true}
			for _, n := range nodes {
				id, err := core.ParseNodeID(strings.TrimSpace(n))
				if err != nil {
					return fmt.Errorf("--node %q: %w", n, err)
				}
				e.Fingerprints = append(e.Fingerprints, id.Fingerprint())
			}
			for _, f := range fps {
				id, err := core.ParseFingerprint(strings.TrimSpace(f))
				if err != nil {
					return fmt.Errorf("--fingerprint: %w", err)
				}
				e.Fingerprints = append(e.Fingerprints, id.Fingerprint())
			}
			for _, path := range sshKeys {
				fp, err := sshKeyFingerprint(path)
				if err != nil {
					return err
				}
				e.Fingerprints = append(e.Fingerprints, fp)
			}
			if len(e.Fingerprints) == 0 {
				return errors.New("peer add needs at least one key: --node, --fingerprint or --ssh-key")
			}
			res, err := parseResources(resources)
			if err != nil {
				return err
			}
			e.Resources = res
			return p.withPeers(cmd.Context(), func(ctx context.Context, ps *store.PeerStore) error {
				if err := ps.PutPeer(ctx, e); err != nil {
					return err
				}
				added, err := ps.GetPeer(ctx, e.PeerID)
				if err != nil {
					return err
				}
				fmt.Fprintf(p.g.stderr, "added peer %s (%s; scopes: %s)\n", added.PeerID,
					plural(len(added.Fingerprints), "key"), orNone(strings.Join(added.Scopes, ", ")))
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&nodes, "node", nil, "the peer's node id (repeatable)")
	f.StringArrayVar(&fps, "fingerprint", nil, `a key fingerprint "ed25519:<64 hex>" (repeatable)`)
	f.StringArrayVar(&sshKeys, "ssh-key", nil, "an OpenSSH ed25519 public key file (repeatable)")
	f.StringArrayVar(&scopes, "scope", nil, "a scope to grant, e.g. ssh or sftp:write (repeatable)")
	f.StringArrayVar(&resources, "resource", nil, "TYPE=ACTION,... e.g. git:repo/alpha=read,write (repeatable)")
	f.StringVar(&display, "display-name", "", "a human-readable name")
	f.BoolVar(&allowUnknown, "allow-unknown-scope", false, "grant scopes outside the known set (for operations of other programs)")
	return cmd
}

// sshKeyFingerprint reads an OpenSSH public key file (the first key line)
// and returns its fingerprint.
func sshKeyFingerprint(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("--ssh-key: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPublicKeyFile+1))
	if err != nil {
		return "", fmt.Errorf("--ssh-key %s: %w", path, err)
	}
	if len(data) > maxPublicKeyFile {
		return "", fmt.Errorf("--ssh-key %s: larger than %d bytes, not a public key file", path, maxPublicKeyFile)
	}
	if bytes.Contains(data, []byte("PRIVATE KEY")) {
		return "", fmt.Errorf("--ssh-key %s: this is a private key; give the .pub file", path)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxPublicKeyFile)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fp, err := core.FingerprintFromSSHKey([]byte(line))
		if err != nil {
			return "", fmt.Errorf("--ssh-key %s: %w", path, err)
		}
		return fp, nil
	}
	return "", fmt.Errorf("--ssh-key %s: no public key in the file", path)
}

// parseResources turns TYPE=ACTION,... flags into a resource map; the same
// type given twice merges its actions. Syntax beyond the "=" is checked by
// the store.
func parseResources(specs []string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, s := range specs {
		typ, acts, ok := strings.Cut(s, "=")
		typ = strings.TrimSpace(typ)
		if !ok || typ == "" || strings.TrimSpace(acts) == "" {
			return nil, fmt.Errorf("--resource %q: want TYPE=ACTION[,ACTION...], e.g. git:repo/alpha=read,write", s)
		}
		for a := range strings.SplitSeq(acts, ",") {
			a = strings.TrimSpace(a)
			if a == "" {
				return nil, fmt.Errorf("--resource %q: empty action", s)
			}
			if !slices.Contains(out[typ], a) {
				out[typ] = append(out[typ], a)
			}
		}
	}
	return out, nil
}

// peerJSON is the stable machine-readable form of a peer.
type peerJSON struct {
	ID           string              `json:"id"`
	DisplayName  string              `json:"display_name"`
	Enabled      bool                `json:"enabled"`
	Source       string              `json:"source"` // "database" or "config"
	Fingerprints []string            `json:"fingerprints"`
	Scopes       []string            `json:"scopes"`
	Resources    map[string][]string `json:"resources"`
	Token        bool                `json:"token"` // a bearer token is set
	CreatedAt    *time.Time          `json:"created_at,omitempty"`
	UpdatedAt    *time.Time          `json:"updated_at,omitempty"`
}

func toPeerJSON(p store.Peer) peerJSON {
	j := peerJSON{
		ID: p.PeerID, DisplayName: p.DisplayName, Enabled: p.Enabled, Source: "database",
		Fingerprints: nonNil(p.Fingerprints), Scopes: nonNil(p.Scopes), Resources: p.Resources,
		Token: p.TokenHash != "",
	}
	if j.Resources == nil {
		j.Resources = map[string][]string{}
	}
	if p.Static {
		j.Source = "config"
	} else {
		c, u := p.CreatedAt.UTC(), p.UpdatedAt.UTC()
		j.CreatedAt, j.UpdatedAt = &c, &u
	}
	return j
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (p *peerCmd) listCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List peers (a table, or --json)",
		Args:  exactArgs(0, "peer list"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return p.withPeers(cmd.Context(), func(ctx context.Context, ps *store.PeerStore) error {
				peers, err := ps.ListPeers(ctx)
				if err != nil {
					return err
				}
				if asJSON {
					out := make([]peerJSON, 0, len(peers))
					for _, pe := range peers {
						out = append(out, toPeerJSON(pe))
					}
					return writeJSON(p.g.stdout, out)
				}
				if len(peers) == 0 {
					fmt.Fprintf(p.g.stderr, "no peers; add one with alknet peer add\n")
					return nil
				}
				tw := tabwriter.NewWriter(p.g.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "PEER\tSTATE\tKEYS\tTOKEN\tSCOPES\tNAME")
				for _, pe := range peers {
					fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", pe.PeerID, peerState(pe), len(pe.Fingerprints),
						yesNo(pe.TokenHash != ""), orNone(strings.Join(pe.Scopes, ",")), pe.DisplayName)
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	return cmd
}

func (p *peerCmd) showCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Show one peer (or --json)",
		Args:  exactArgs(1, "peer show NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return p.withPeers(cmd.Context(), func(ctx context.Context, ps *store.PeerStore) error {
				pe, err := ps.GetPeer(ctx, args[0])
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSON(p.g.stdout, toPeerJSON(pe))
				}
				j := toPeerJSON(pe)
				tw := tabwriter.NewWriter(p.g.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintf(tw, "peer:\t%s\n", j.ID)
				if j.DisplayName != "" {
					fmt.Fprintf(tw, "display name:\t%s\n", j.DisplayName)
				}
				fmt.Fprintf(tw, "state:\t%s\n", peerState(pe))
				fmt.Fprintf(tw, "source:\t%s\n", j.Source)
				for i, fp := range j.Fingerprints {
					fmt.Fprintf(tw, "%s\t%s\n", label(i, "keys:"), fp)
				}
				fmt.Fprintf(tw, "scopes:\t%s\n", orNone(strings.Join(j.Scopes, ", ")))
				types := slices.Sorted(maps.Keys(j.Resources))
				for i, typ := range types {
					fmt.Fprintf(tw, "%s\t%s=%s\n", label(i, "resources:"), typ, strings.Join(j.Resources[typ], ","))
				}
				fmt.Fprintf(tw, "token:\t%s\n", yesNo(j.Token))
				if j.CreatedAt != nil {
					fmt.Fprintf(tw, "created:\t%s\n", j.CreatedAt.Format(time.RFC3339))
					fmt.Fprintf(tw, "updated:\t%s\n", j.UpdatedAt.Format(time.RFC3339))
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON object")
	return cmd
}

func (p *peerCmd) rmCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME",
		Short: "Remove a peer; its open connections are closed",
		Args:  exactArgs(1, "peer rm NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return p.withPeers(cmd.Context(), func(ctx context.Context, ps *store.PeerStore) error {
				if err := ps.RemovePeer(ctx, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(p.g.stderr, "removed peer %s\n", args[0])
				return nil
			})
		},
	}
}

func (p *peerCmd) enableCmd(enable bool) *cobra.Command {
	verb, short := "enable", "Enable a disabled peer"
	if !enable {
		verb, short = "disable", "Disable a peer without removing it; its open connections are closed"
	}
	return &cobra.Command{
		Use:   verb + " NAME",
		Short: short,
		Args:  exactArgs(1, "peer "+verb+" NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return p.withPeers(cmd.Context(), func(ctx context.Context, ps *store.PeerStore) error {
				if err := ps.SetEnabled(ctx, args[0], enable); err != nil {
					return err
				}
				fmt.Fprintf(p.g.stderr, "peer %s %sd\n", args[0], verb)
				return nil
			})
		},
	}
}

func (p *peerCmd) tokenCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "token NAME",
		Short: "Mint a bearer token for a peer and print it once",
		Long: `Mint a new bearer token for NAME and print it alone on stdout. It is shown
only this once: the database keeps only its SHA-256. A new token replaces the
peer's previous one, which stops working.`,
		Args: exactArgs(1, "peer token NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return p.withPeers(cmd.Context(), func(ctx context.Context, ps *store.PeerStore) error {
				tok, err := ps.MintToken(ctx, args[0])
				if err != nil {
					return err
				}
				fmt.Fprintln(p.g.stdout, tok)
				fmt.Fprintf(p.g.stderr, "new token for peer %s: shown only this once, stored only as a hash\n", args[0])
				return nil
			})
		},
	}
}

// exactArgs is cobra.ExactArgs with a usage line in the error.
func exactArgs(n int, usage string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("usage: alknet %s", usage)
		}
		return nil
	}
}

func peerState(p store.Peer) string {
	if p.Enabled {
		return "enabled"
	}
	return "disabled"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "-"
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

func label(i int, s string) string {
	if i == 0 {
		return s
	}
	return ""
}

// openPeerStore opens the node database into env.store and the peer table
// over it, with the configuration's peers (applied at start) merged in. A
// configuration peer and a database peer with the same id or key is an
// error. Both are closed by env.closers.
func (env *serveEnv) openPeerStore(static []core.PeerEntry) (*store.PeerStore, error) {
	db, err := store.New(store.Config{Path: env.g.path(databaseFile), Logger: env.log})
	if err != nil {
		return nil, err
	}
	env.store = db
	env.closers = append(env.closers, db.Close)
	ps, err := store.NewPeerStore(db, store.PeerStoreConfig{Static: static, Logger: env.log})
	if err != nil {
		return nil, err
	}
	env.closers = append(env.closers, ps.Close)
	if err := ps.Conflicts(); err != nil {
		return nil, fmt.Errorf("%w (remove one of them: alknet peer rm, or edit config.toml)", err)
	}
	return ps, nil
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/core"
	"github.com/spf13/cobra"
)

func newCallCmd(g *globals) *cobra.Command {
	var keyFile, tokenFile string
	var asJSON, tcp bool
	cmd := &cobra.Command{
		Use:   "call ADDR OP [JSON]",
		Short: "Run an operation of a node's call protocol (alknet/call)",
		Long: `Dial ADDR on alknet/call and run operation OP (ns/op) with the JSON input
given as the third argument ("-" reads it from stdin; none sends null).

A query or mutation prints its output pretty-printed (--json: compact, on one
line). A subscription prints one JSON value per line until it completes or
the command is interrupted. A call.error prints its code and message on
stderr and exits non-zero.

  alknet call ADDR services/list
  alknet call ADDR services/schema '{"name":"node/info"}'
  alknet call ADDR node/info

--token-file sends the bearer token in FILE (mode 0600) as auth_token; the
node then authorizes the token's peer instead of this key.`,
		Args: cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			addr, op := args[0], strings.TrimPrefix(args[1], "/")
			if !call.ValidName(op) {
				return fmt.Errorf("invalid operation name %q (want ns/op)", clipArg(args[1]))
			}
			input := json.RawMessage("null")
			if len(args) == 3 {
				raw := []byte(args[2])
				if args[2] == "-" {
					var err error
					if raw, err = io.ReadAll(io.LimitReader(g.stdin, call.DefaultMaxFrameSize+1)); err != nil {
						return fmt.Errorf("read input: %w", err)
					}
				}
				if len(raw) > call.DefaultMaxFrameSize {
					return fmt.Errorf("input is larger than a call frame (%d bytes at most)", call.DefaultMaxFrameSize)
				}
				raw = bytes.TrimSpace(raw)
				if !json.Valid(raw) {
					return errors.New("input is not valid JSON")
				}
				input = raw
			}
			ctx := cmd.Context()
			if tokenFile != "" {
				tok, err := readSecretFile(tokenFile)
				if err != nil {
					return err
				}
				if len(bytes.TrimSpace(tok)) == 0 {
					return fmt.Errorf("%s is empty", tokenFile)
				}
				ctx = call.WithAuthToken(ctx, string(bytes.TrimSpace(tok)))
			}
			d, err := g.newDialer(keyFile)
			if err != nil {
				return err
			}
			defer d.Close()
			d.tcp = tcp
			conn, err := d.dial(ctx, addr, call.ALPN)
			if err != nil {
				return err
			}
			p := call.NewPeer(conn, call.Config{})
			defer p.Close()
			return describeCall(g.runCall(ctx, p, op, input, asJSON))
		},
	}
	cmd.Flags().StringVar(&keyFile, "key", "", "ed25519 private key to present (default: the data directory's identity)")
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "file holding a bearer token to send as auth_token")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print outputs compact, one JSON value per line")
	cmd.Flags().BoolVar(&tcp, "tcp", false, "dial over TCP+TLS instead of QUIC (where UDP is blocked); calls share the connection's one stream")
	return cmd
}

// clipArg bounds a user argument echoed in an error message.
func clipArg(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// runCall runs op and prints its output(s).
func (g *globals) runCall(ctx context.Context, p *call.Peer, op string, input json.RawMessage, compact bool) error {
	// The kind decides the output form; an operation the node does not
	// describe is printed as a query.
	subscription := false
	if spec, err := p.Schema(ctx, op); err == nil {
		subscription = spec.Kind == call.KindSubscription
	} else if ctx.Err() != nil {
		return ctx.Err()
	}
	if !subscription {
		var out json.RawMessage
		if err := p.Call(ctx, op, input, &out); err != nil {
			return err
		}
		return printJSON(g.stdout, out, compact)
	}
	for item, err := range p.Subscribe(ctx, op, input) {
		if err != nil {
			if ctx.Err() != nil {
				return nil // interrupted: the subscription was aborted
			}
			return err
		}
		if err := printJSON(g.stdout, item, true); err != nil {
			return err
		}
	}
	return nil
}

func printJSON(w io.Writer, raw json.RawMessage, compact bool) error {
	var buf bytes.Buffer
	var err error
	if compact {
		err = json.Compact(&buf, raw)
	} else {
		err = json.Indent(&buf, raw, "", "  ")
	}
	if err != nil {
		return fmt.Errorf("node sent invalid JSON: %w", err)
	}
	buf.WriteByte('\n')
	_, err = w.Write(buf.Bytes())
	return err
}

// describeCall turns a call.error into one line: code, message and the
// reason from its details when there is one.
func describeCall(err error) error {
	var ce *call.Error
	if !errors.As(err, &ce) {
		return describe(err)
	}
	code := ce.Code
	if ce.RemoteCode != "" && ce.RemoteCode != ce.Code {
		code = ce.RemoteCode
	}
	msg := code + ": " + ce.Message
	var d struct {
		Reason string `json:"reason"`
	}
	if len(ce.Details) > 0 && json.Unmarshal(ce.Details, &d) == nil && d.Reason != "" {
		msg += " (" + d.Reason + ")"
	}
	return errors.New(msg)
}

// nodeInfo is the output of node/info.
type nodeInfo struct {
	ID          string   `json:"id"`
	Fingerprint string   `json:"fingerprint"`
	Version     string   `json:"version"`
	ALPNs       []string `json:"alpns"`
	UptimeSecs  float64  `json:"uptime_s"`
	Started     string   `json:"started"`
}

// peerInfo is one entry of node/peers (token hashes are not shown).
type peerInfo struct {
	ID           string              `json:"id"`
	DisplayName  string              `json:"display_name,omitempty"`
	Fingerprints []string            `json:"fingerprints"`
	Scopes       []string            `json:"scopes"`
	Resources    map[string][]string `json:"resources,omitempty"`
	Enabled      bool                `json:"enabled"`
	Static       bool                `json:"static,omitempty"`
	HasToken     bool                `json:"has_token,omitempty"`
}

type peersOutput struct {
	Peers []peerInfo `json:"peers"`
}

// callService serves alknet/call behind the "call" scope with the built-in
// operations node/info (anyone the gate admits) and node/peers (admin).
func callService(env *serveEnv) (*service, error) {
	started := time.Now()
	cfgPeers, err := env.cfg.peerEntries()
	if err != nil {
		return nil, err
	}
	var ids core.IdentityProvider = core.StaticPeers(cfgPeers)
	listPeers := func(context.Context) ([]peerInfo, error) {
		out := make([]peerInfo, 0, len(cfgPeers))
		for _, e := range cfgPeers {
			out = append(out, peerInfoOf(e, true))
		}
		return out, nil
	}
	if ps := env.peers; ps != nil {
		ids = ps
		listPeers = func(ctx context.Context) ([]peerInfo, error) {
			peers, err := ps.ListPeers(ctx)
			if err != nil {
				return nil, err
			}
			out := make([]peerInfo, 0, len(peers))
			for _, p := range peers {
				out = append(out, peerInfoOf(p.PeerEntry, p.Static))
			}
			return out, nil
		}
	}

	reg := env.calls
	if reg == nil {
		reg = call.NewRegistry(env.log)
		env.calls = reg
	}
	call.Query(reg, "node/info", func(context.Context, struct{}) (nodeInfo, error) {
		id := env.key.NodeID()
		return nodeInfo{
			ID: id.String(), Fingerprint: id.Fingerprint(), Version: buildVersion(),
			ALPNs: env.ep.ALPNs(), UptimeSecs: time.Since(started).Round(time.Millisecond).Seconds(),
			Started: started.UTC().Format(time.RFC3339),
		}, nil
	}, call.Options{Description: "This node's id, version, protocols and uptime."})
	call.Query(reg, "node/peers", func(ctx context.Context, _ struct{}) (peersOutput, error) {
		peers, err := listPeers(ctx)
		if err != nil {
			return peersOutput{}, err
		}
		return peersOutput{Peers: peers}, nil
	}, call.Options{
		Description: "The peers this node lets in.",
		Access:      core.AccessControl{RequiredScopes: []string{"admin"}},
	})
	if err := registerGitOps(env, reg); err != nil {
		return nil, err
	}
	srv, err := call.NewServer(call.Config{Registry: reg, Identities: ids, Logger: env.log})
	if err != nil {
		return nil, err
	}
	if ps := env.peers; ps != nil {
		// Calls authorized by a bearer token end when the token is revoked.
		remove := ps.OnReload(func() { srv.Reauthorize() })
		env.closers = append(env.closers, func() error { remove(); return nil })
	}
	return &service{handler: srv, acl: core.AccessControl{RequiredScopes: []string{"call"}}}, nil
}

func peerInfoOf(e core.PeerEntry, static bool) peerInfo {
	return peerInfo{
		ID: e.PeerID, DisplayName: e.DisplayName, Fingerprints: nonNilStrings(e.Fingerprints),
		Scopes: nonNilStrings(e.Scopes), Resources: e.Resources, Enabled: e.Enabled, Static: static,
		HasToken: e.TokenHash != "",
	}
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}

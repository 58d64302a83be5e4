package coretest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
)

// Route is a handler and its gate, as passed to Endpoint.Register.
type Route struct {
	Handler core.ProtocolHandler
	ACL     core.AccessControl
}

// Key returns a fresh node key or fails the test.
func Key(t testing.TB) core.SecretKey {
	t.Helper()
	k, err := core.GenerateSecretKey()
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	return k
}

// StartEndpoint starts a serving endpoint on 127.0.0.1 with routes
// registered and returns once it accepts connections. A zero SecretKey is
// generated and an empty ListenAddr becomes 127.0.0.1:0. The endpoint is shut
// down when the test ends.
func StartEndpoint(t testing.TB, cfg core.Config, routes ...Route) *core.Endpoint {
	t.Helper()
	if cfg.SecretKey.IsZero() {
		cfg.SecretKey = Key(t)
	}
	if cfg.ListenAddr == "" {
		cfg.ListenAddr = "127.0.0.1:0"
	}
	ep, err := core.NewEndpoint(cfg)
	if err != nil {
		t.Fatalf("new endpoint: %v", err)
	}
	for _, r := range routes {
		ep.Register(r.Handler, r.ACL)
	}
	errc := make(chan error, 1)
	go func() { errc <- ep.Serve(context.Background()) }()
	select {
	case <-ep.Ready():
	case err := <-errc:
		t.Fatalf("serve: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = ep.Shutdown(ctx)
		if err := <-errc; err != nil && !errors.Is(err, core.ErrClosed) {
			t.Errorf("serve returned: %v", err)
		}
	})
	return ep
}

// ClientEndpoint returns a dial-only endpoint on 127.0.0.1 with key (a zero
// key is generated), closed when the test ends.
func ClientEndpoint(t testing.TB, key core.SecretKey) *core.Endpoint {
	t.Helper()
	if key.IsZero() {
		key = Key(t)
	}
	ep, err := core.NewEndpoint(core.Config{ListenAddr: "127.0.0.1:0", SecretKey: key})
	if err != nil {
		t.Fatalf("new endpoint: %v", err)
	}
	t.Cleanup(func() { _ = ep.Close() })
	return ep
}

// Pair is a serving endpoint and a client endpoint on loopback; the server
// knows the client as peer "client" with ClientScopes.
type Pair struct {
	Server *core.Endpoint
	Client *core.Endpoint
}

// NewPair starts a server with routes that knows the client key as peer
// "client" holding scopes, and a client endpoint.
func NewPair(t testing.TB, scopes []string, routes ...Route) *Pair {
	t.Helper()
	ck := Key(t)
	peers := core.StaticPeers([]core.PeerEntry{{
		PeerID:       "client",
		Fingerprints: []string{ck.NodeID().Fingerprint()},
		Scopes:       scopes,
		Enabled:      true,
	}})
	srv := StartEndpoint(t, core.Config{Identities: peers}, routes...)
	return &Pair{Server: srv, Client: ClientEndpoint(t, ck)}
}

// Dial connects the client to the server on alpn or fails the test. The
// connection is closed when the test ends.
func (p *Pair) Dial(t testing.TB, alpn string) core.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := p.Client.Dial(ctx, p.Server.Addr(), alpn)
	if err != nil {
		t.Fatalf("dial %s: %v", alpn, err)
	}
	t.Cleanup(func() { _ = c.Close(core.CodeOK, "") })
	return c
}

package call

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCallOverTCP: the call server is offered on the TCP+TLS listener and a
// DialTCP peer multiplexes every call on the connection's one stream: a
// slow and a fast call run at once (the fast one answers first), a bad
// input gets its code, and an abort by id stops a subscription.
func TestCallOverTCP(t *testing.T) {
	reg := NewRegistry(nil)
	Query(reg, "demo/greet", greet, Options{})
	release := make(chan struct{})
	Query(reg, "demo/slow", func(ctx context.Context, in json.RawMessage) (json.RawMessage, error) {
		select {
		case <-release:
			return in, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}, Options{})
	stopped := make(chan struct{})
	Subscription(reg, "demo/ticks", func(ctx context.Context, _ json.RawMessage, emit func(any) error) error {
		defer close(stopped)
		for i := 0; ; i++ {
			if err := emit(i); err != nil {
				return err
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Millisecond):
			}
		}
	}, Options{})
	srv, err := NewServer(Config{Registry: reg})
	require.NoError(t, err)
	ck := coretest.Key(t)
	peers := core.StaticPeers([]core.PeerEntry{{PeerID: "client", Fingerprints: []string{ck.NodeID().Fingerprint()}, Scopes: []string{"call"}, Enabled: true}})
	node := coretest.StartEndpoint(t, core.Config{Identities: peers, ListenTCP: true},
		coretest.Route{Handler: srv, ACL: core.AccessControl{RequiredScopes: []string{"call"}}})
	cli := coretest.ClientEndpoint(t, ck)

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	p, err := DialTCP(ctx, cli, node.Addr(), Config{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	_, single := p.Conn().(core.SingleStreamer)
	require.True(t, single, "a TCP connection reports a single stream")

	slow := make(chan string, 1)
	go func() {
		var out string
		if err := p.Call(ctx, "demo/slow", "slow", &out); err != nil {
			out = "error: " + err.Error()
		}
		slow <- out
	}()
	var out greetOut
	require.NoError(t, p.Call(ctx, "demo/greet", greetIn{Name: "tcp"}, &out))
	assert.Equal(t, "hello tcp", out.Text, "the fast call is answered while the slow one runs")
	select {
	case got := <-slow:
		t.Fatalf("slow call answered before release: %q", got)
	default:
	}
	close(release)
	select {
	case got := <-slow:
		assert.Equal(t, "slow", got)
	case <-time.After(10 * time.Second):
		t.Fatal("slow call not answered after release")
	}

	err = p.Call(ctx, "demo/greet", map[string]any{"name": 1}, &out)
	assert.Equal(t, CodeInvalidInput, ErrorCode(err))

	sctx, scancel := context.WithCancel(ctx)
	n := 0
	var serr error
	for _, err := range p.Subscribe(sctx, "demo/ticks", nil) {
		if err != nil {
			serr = err
			break
		}
		n++
		if n == 5 {
			scancel() // the client aborts by id on the shared stream
		}
	}
	scancel()
	assert.GreaterOrEqual(t, n, 5)
	if serr != nil {
		assert.ErrorIs(t, serr, context.Canceled)
	}

	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("the server's subscription did not stop after the abort")
	}

	// The connection is still good after the abort.
	require.NoError(t, p.Call(ctx, "demo/greet", greetIn{Name: "again"}, &out))
	assert.Equal(t, "hello again", out.Text)
}

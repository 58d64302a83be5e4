package core_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStatelessResetKeyDerivation(t *testing.T) {
	a, b := coretest.Key(t), coretest.Key(t)
	ka, kb := core.StatelessResetKeyOf(a), core.StatelessResetKeyOf(b)
	assert.Equal(t, ka, core.StatelessResetKeyOf(a), "deterministic per node key")
	assert.NotEqual(t, ka, kb)
	seed := a.PrivateKey().Seed()
	assert.NotEqual(t, seed, ka[:], "the node key itself is never used")
	assert.NotEqual(t, [32]byte{}, ka)
}

// TestRestartedNodeResetsOldConnections kills a node without a word to its
// peers and starts it again with the same key on the same port: the old
// client's connection fails at once with a stateless reset instead of
// waiting out its idle timeout.
func TestRestartedNodeResetsOldConnections(t *testing.T) {
	key := coretest.Key(t)
	start := func(listen string) (*core.Endpoint, chan error) {
		ep, err := core.NewEndpoint(core.Config{SecretKey: key, ListenAddr: listen})
		require.NoError(t, err)
		ep.Register(core.Ping{}, core.AccessControl{})
		errc := make(chan error, 1)
		go func() { errc <- ep.Serve(context.Background()) }()
		recv(t, ep.Ready(), "endpoint ready")
		return ep, errc
	}
	old, oldErr := start("127.0.0.1:0")
	cli, err := core.NewEndpoint(core.Config{SecretKey: coretest.Key(t), ListenAddr: "127.0.0.1:0", IdleTimeout: 20 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = cli.Close() })
	c, err := cli.Dial(ctxT(t), old.Addr(), core.PingALPN)
	require.NoError(t, err)
	got, err := roundTrip(t, c, []byte("before"))
	require.NoError(t, err)
	require.Equal(t, "before", string(got))

	core.Crash(old) // like kill -9: no CONNECTION_CLOSE reaches the client
	recv(t, oldErr, "old Serve returns")
	_ = old.Close()
	again, againErr := start(old.LocalAddr().String())
	t.Cleanup(func() {
		_ = again.Close()
		<-againErr
	})

	s, err := c.OpenStream(ctxT(t))
	require.NoError(t, err)
	_, _ = s.Write([]byte("after"))
	_ = s.CloseWrite()
	done := make(chan error, 1)
	go func() { _, err := io.ReadAll(s); done <- err }()
	err = recv(t, done, "the old connection noticed the restart well before its 20s idle timeout")
	var reset *quic.StatelessResetError
	assert.True(t, errors.As(err, &reset), "want a stateless reset, got %v", err)
	// The restarted node serves new connections.
	pingOK(t, cli, again, "new")
}

func TestDrainRefusesNewConnections(t *testing.T) {
	draining := make(chan struct{})
	release := make(chan struct{})
	h := funcHandler{"alknet/hold", func(ctx context.Context, c core.Conn) error {
		_, err := c.AcceptStream(ctx)
		if !errors.Is(err, core.ErrShuttingDown) {
			return err
		}
		close(draining)
		select { // hold the drain open
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}}
	srv := coretest.StartEndpoint(t, core.Config{}, coretest.Route{Handler: h}, coretest.Route{Handler: core.Ping{}})
	cli := coretest.ClientEndpoint(t, core.SecretKey{})
	_, err := cli.Dial(ctxT(t), srv.Addr(), "alknet/hold")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return srv.ConnCount() == 1 }, 10*time.Second, 5*time.Millisecond)

	shutdownDone := make(chan error, 1)
	go func() { shutdownDone <- srv.Shutdown(ctxT(t)) }()
	recv(t, draining, "the handler sees the drain")

	// A new connection is closed at once, with a reason, instead of
	// hanging until the dial times out.
	short, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	c, err := cli.Dial(short, srv.Addr(), core.PingALPN)
	require.NoError(t, err, "the handshake completes while draining")
	_, err = roundTrip(t, c, []byte("x"))
	ce, ok := core.AsCloseError(err)
	require.True(t, ok, "want an application close, got %v", err)
	assert.Equal(t, core.CodeShutdown, ce.Code)
	assert.Equal(t, "endpoint shutting down", ce.Reason)
	assert.Equal(t, 1, srv.ConnCount(), "the refused connection is not tracked")

	close(release)
	require.NoError(t, recv(t, shutdownDone, "Shutdown returns once the handler is done"))
}

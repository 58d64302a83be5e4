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

func TestMaxIncomingStreams(t *testing.T) {
	ck := coretest.Key(t)
	srv := coretest.StartEndpoint(t, core.Config{
		Identities:         coretest.NewPeers(peerEntry("c", ck)),
		MaxIncomingStreams: 2,
	}, coretest.Route{Handler: core.Ping{}})
	c, err := coretest.ClientEndpoint(t, ck).Dial(ctxT(t), srv.Addr(), core.PingALPN)
	require.NoError(t, err)
	var open []core.Stream
	for range 2 {
		s, err := c.OpenStream(ctxT(t))
		require.NoError(t, err)
		_, err = s.Write([]byte("k"))
		require.NoError(t, err)
		open = append(open, s)
	}
	// The third stream gets no credit while two are open.
	short, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err = c.OpenStream(short)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	// Finishing one on both sides gives the credit back.
	require.NoError(t, open[0].CloseWrite())
	got, err := io.ReadAll(open[0])
	require.NoError(t, err)
	assert.Equal(t, "k", string(got))
	s, err := c.OpenStream(ctxT(t))
	require.NoError(t, err)
	_, err = s.Write([]byte("third"))
	require.NoError(t, err)
	require.NoError(t, s.CloseWrite())
	got, err = io.ReadAll(s)
	require.NoError(t, err)
	assert.Equal(t, "third", string(got))
}

func TestIdleTimeoutClosesSilentConnection(t *testing.T) {
	srv := coretest.StartEndpoint(t, core.Config{IdleTimeout: 300 * time.Millisecond, KeepAlivePeriod: -1}, coretest.Route{Handler: core.Ping{}})
	// Neither side sends keep-alives: the lower idle timeout (the
	// server's) ends the silent connection on both sides.
	cli, err := core.NewEndpoint(core.Config{SecretKey: coretest.Key(t), ListenAddr: "127.0.0.1:0", KeepAlivePeriod: -1})
	require.NoError(t, err)
	t.Cleanup(func() { _ = cli.Close() })
	c := pingOK(t, cli, srv, "hi")
	recv(t, c.Context().Done(), "the silent connection idles out")
	var idle *quic.IdleTimeoutError
	assert.ErrorAs(t, context.Cause(c.Context()), &idle)
	require.Eventually(t, func() bool { return srv.ConnCount() == 0 }, 10*time.Second, 5*time.Millisecond)
}

// holdHandler signals on started for each connection, waits for ctx (the
// connection's end) without looking at the drain, and reports why ctx ended
// on ended.
func holdHandler(started chan<- struct{}, ended chan<- error) funcHandler {
	return funcHandler{"alknet/hold", func(ctx context.Context, c core.Conn) error {
		started <- struct{}{}
		<-ctx.Done()
		if ended != nil {
			ended <- context.Cause(ctx)
		}
		return nil
	}}
}

func TestServeCancelDrainsThenCloses(t *testing.T) {
	bye := make(chan struct{}, 1)
	polite := funcHandler{"alknet/polite", func(ctx context.Context, c core.Conn) error {
		s, err := c.AcceptStream(ctx)
		if err != nil {
			return err
		}
		_, err = c.AcceptStream(ctx)
		if !errors.Is(err, core.ErrShuttingDown) {
			return err
		}
		_, _ = io.WriteString(s, "bye")
		_ = s.CloseWrite()
		_, _ = io.Copy(io.Discard, s) // until the client has read it
		bye <- struct{}{}
		return nil
	}}
	for _, tc := range []struct {
		name string
		hold bool
	}{{"handlers finish", false}, {"drain timeout", true}} {
		t.Run(tc.name, func(t *testing.T) {
			ep, err := core.NewEndpoint(core.Config{SecretKey: coretest.Key(t), ListenAddr: "127.0.0.1:0", DrainTimeout: 300 * time.Millisecond})
			require.NoError(t, err)
			started := make(chan struct{}, 1)
			ended := make(chan error, 1)
			ep.Register(holdHandler(started, ended), core.AccessControl{})
			ep.Register(polite, core.AccessControl{})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			errc := make(chan error, 1)
			go func() { errc <- ep.Serve(ctx) }()
			recv(t, ep.Ready(), "ready")
			cli := coretest.ClientEndpoint(t, core.SecretKey{})

			pc, err := cli.Dial(ctxT(t), ep.Addr(), "alknet/polite")
			require.NoError(t, err)
			s, err := pc.OpenStream(ctxT(t))
			require.NoError(t, err)
			_, err = s.Write([]byte("hi"))
			require.NoError(t, err)
			require.Eventually(t, func() bool { return ep.ConnCount() == 1 }, 10*time.Second, 5*time.Millisecond)
			var hc core.Conn
			if tc.hold {
				hc, err = cli.Dial(ctxT(t), ep.Addr(), "alknet/hold")
				require.NoError(t, err)
				recv(t, started, "hold handler runs")
			}

			cancel()
			reply := make(chan string, 1)
			go func() { b, _ := io.ReadAll(io.LimitReader(s, 3)); _ = s.CloseWrite(); reply <- string(b) }()
			assert.Equal(t, "bye", recv(t, reply, "the draining handler answers"))
			recv(t, bye, "the polite handler returns")
			assert.ErrorIs(t, recv(t, errc, "Serve returns after the drain"), context.Canceled)
			if tc.hold {
				// The handler that ignored the drain kept its context
				// until DrainTimeout ran out and its connection was
				// closed; cancelling Serve did not cancel it.
				ce, ok := core.AsCloseError(recv(t, ended, "the hold handler returns"))
				require.True(t, ok, "the handler's context ended before its connection was closed")
				assert.Equal(t, core.CodeShutdown, ce.Code)
				recv(t, hc.Context().Done(), "the held connection is closed")
				_, err := hc.AcceptStream(ctxT(t))
				ce, ok = core.AsCloseError(err)
				require.True(t, ok, "got %v", err)
				assert.Equal(t, core.CodeShutdown, ce.Code)
				assert.Equal(t, "endpoint shutting down", ce.Reason)
			}
			assert.Equal(t, 0, ep.ConnCount())
		})
	}
}

func TestShutdownDeadline(t *testing.T) {
	started := make(chan struct{}, 1)
	srv := coretest.StartEndpoint(t, core.Config{}, coretest.Route{Handler: holdHandler(started, nil)})
	c, err := coretest.ClientEndpoint(t, core.SecretKey{}).Dial(ctxT(t), srv.Addr(), "alknet/hold")
	require.NoError(t, err)
	recv(t, started, "handler runs")
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	shutdownDone := make(chan error, 1)
	go func() { shutdownDone <- srv.Shutdown(ctx) }()
	assert.ErrorIs(t, recv(t, shutdownDone, "Shutdown returns soon after its deadline"), context.DeadlineExceeded)
	// Shutdown returned only after closing what was left.
	assert.Equal(t, 0, srv.ConnCount())
	recv(t, c.Context().Done(), "the held connection is closed")
	_, err = c.AcceptStream(ctxT(t))
	ce, ok := core.AsCloseError(err)
	require.True(t, ok, "got %v", err)
	assert.Equal(t, core.CodeShutdown, ce.Code)
	assert.Equal(t, "endpoint shutting down", ce.Reason)
}

func TestClosingDialerTellsTheServer(t *testing.T) {
	started := make(chan struct{}, 1)
	ended := make(chan error, 1)
	srv := coretest.StartEndpoint(t, core.Config{}, coretest.Route{Handler: holdHandler(started, ended)})
	cli, err := core.NewEndpoint(core.Config{SecretKey: coretest.Key(t), ListenAddr: "127.0.0.1:0"})
	require.NoError(t, err)
	_, err = cli.Dial(ctxT(t), srv.Addr(), "alknet/hold")
	require.NoError(t, err)
	recv(t, started, "handler runs")
	require.NoError(t, cli.Close())
	ce, ok := core.AsCloseError(recv(t, ended, "the server hears the client leave, well before its idle timeout"))
	require.True(t, ok)
	assert.Equal(t, core.CodeShutdown, ce.Code)
	assert.True(t, ce.Remote)
	_, err = cli.Dial(ctxT(t), srv.Addr(), "alknet/hold")
	assert.ErrorIs(t, err, core.ErrClosed)
}

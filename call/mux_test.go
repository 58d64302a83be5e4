package call

import (
	"bufio"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMultiplexClient: with Config.Multiplex every call shares one stream:
// concurrent calls, a fast call overtaking a slow one, subscriptions,
// aborts by id on the shared stream, and errors.
func TestMultiplexClient(t *testing.T) {
	reg := NewRegistry(nil)
	Query(reg, "demo/greet", greet, Options{})
	release := make(chan struct{})
	started := make(chan struct{}, 4)
	stopped := make(chan error, 4)
	Query(reg, "demo/slow", func(ctx context.Context, _ struct{}) (string, error) {
		started <- struct{}{}
		select {
		case <-release:
			return "slow done", nil
		case <-ctx.Done():
			stopped <- context.Cause(ctx)
			return "", ctx.Err()
		}
	}, Options{Timeout: -1})
	Query(reg, "demo/block", func(ctx context.Context, _ struct{}) (int, error) {
		started <- struct{}{}
		<-ctx.Done()
		stopped <- context.Cause(ctx)
		return 0, ctx.Err()
	}, Options{Timeout: -1})
	Subscription(reg, "demo/count", func(ctx context.Context, in struct {
		N int `json:"n"`
	}, emit func(int) error) error {
		for i := 0; in.N == 0 || i < in.N; i++ {
			if err := emit(i); err != nil {
				if in.N == 0 {
					stopped <- context.Cause(ctx)
				}
				return err
			}
		}
		return nil
	}, Options{})
	p, _ := serve(t, []string{"call"}, Config{Registry: reg}, Config{Multiplex: true})
	ctx := t.Context()

	var out greetOut
	require.NoError(t, p.Call(ctx, "demo/greet", greetIn{Name: "mux"}, &out))
	assert.Equal(t, "hello mux", out.Text)
	first := p.shared.cur
	require.NotNil(t, first)

	// A slow call and a fast one on the same stream: the fast one returns
	// while the slow one still runs.
	slow := make(chan string, 1)
	go func() {
		var s string
		if err := p.Call(ctx, "demo/slow", nil, &s); err != nil {
			s = err.Error()
		}
		slow <- s
	}()
	within(t, started, "the slow call to start")
	require.NoError(t, p.Call(ctx, "demo/greet", greetIn{Name: "fast"}, &out))
	assert.Equal(t, "hello fast", out.Text)
	assert.Empty(t, slow, "the slow call answered before it was released")
	close(release)
	assert.Equal(t, "slow done", within(t, slow, "the slow call's answer"))

	// 64 concurrent callers, as many as a stream may carry: a call the
	// caller has its answer for no longer counts against the limit.
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Go(func() {
			for range 30 {
				var o greetOut
				if err := p.Call(ctx, "demo/greet", greetIn{Name: jsonInt(i)}, &o); err != nil {
					errs <- err
					return
				} else if o.Text != "hello "+jsonInt(i) {
					errs <- assert.AnError
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// A subscription, then one broken off: the abort goes by id.
	n := 0
	for v, err := range SubscribeAs[int](ctx, p, "demo/count", map[string]int{"n": 2000}) {
		require.NoError(t, err)
		require.Equal(t, n, v)
		n++
	}
	assert.Equal(t, 2000, n)
	n = 0
	for _, err := range p.Subscribe(ctx, "demo/count", map[string]int{"n": 0}) {
		require.NoError(t, err)
		if n++; n == 10 {
			break
		}
	}
	assert.ErrorIs(t, within(t, stopped, "the endless subscription to stop"), errAborted)

	// Cancelling a call aborts it at the callee.
	cctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- p.Call(cctx, "demo/block", nil, nil) }()
	within(t, started, "the blocking call to start")
	cancel()
	assert.ErrorIs(t, within(t, errc, "the cancelled call to return"), context.Canceled)
	assert.ErrorIs(t, within(t, stopped, "the blocking call to stop"), errAborted)

	// Errors come back on the shared stream as for any call.
	err := p.Call(ctx, "demo/greet", map[string]any{"name": 1}, &out)
	assert.Equal(t, CodeInvalidInput, ErrorCode(err))
	assert.Equal(t, CodeNotFound, ErrorCode(p.Call(ctx, "no/such", nil, nil)))
	assert.Same(t, first, p.shared.cur, "every call used the one stream")
}

// TestSharedStreamFairness: a subscription that produces as fast as it
// can does not hold back a quick call on the same stream beyond the
// documented bound (what the transport buffers, plus one frame per call
// in flight), and its queue stays bounded while the stream is slow.
func TestSharedStreamFairness(t *testing.T) {
	reg := NewRegistry(nil)
	item := strings.Repeat("z", 8<<10)
	Subscription(reg, "demo/flood", func(ctx context.Context, _ struct{}, emit func(string) error) error {
		for {
			if err := emit(item); err != nil {
				return err
			}
		}
	}, Options{})
	Query(reg, "demo/quick", func(context.Context, struct{}) (string, error) { return "quick", nil }, Options{})
	cfg := Config{Registry: reg}.withDefaults()
	a, b := coretest.Pipe(ALPN, coretest.Side{}, coretest.Side{})
	t.Cleanup(func() { _ = a.Close(core.CodeOK, "") })
	server := newPeer(b, cfg)
	go func() { _ = server.Serve(context.Background()) }()

	s, err := a.OpenStream(t.Context())
	require.NoError(t, err)
	write := func(id, op string) {
		frame, err := encodeFrame(TypeRequested, id, Request{OperationID: op, Input: json.RawMessage(`{}`)}, 0)
		require.NoError(t, err)
		_, err = s.Write(frame)
		require.NoError(t, err)
	}
	write("flood", "/demo/flood")
	require.NoError(t, s.SetReadDeadline(time.Now().Add(waitLimit)))
	br := bufio.NewReader(s)
	_, err = ReadFrame(br, 0) // the flood is running and the stream is full behind it
	require.NoError(t, err)
	// The flood writes as fast as the stream takes it; its queue never
	// holds more than its bound.
	for range 100 {
		server.srvMu.Lock()
		c := server.calls["flood"]
		server.srvMu.Unlock()
		c.st.mu.Lock()
		q := c.qbytes
		c.st.mu.Unlock()
		require.LessOrEqual(t, q, cfg.MaxQueuedBytes+int64(len(item)))
	}
	write("quick", "/demo/quick")
	ahead := 0
	for {
		body, err := ReadFrame(br, 0)
		require.NoError(t, err)
		env, err := decodeWire(body)
		require.NoError(t, err)
		if env.ID == "quick" {
			assert.JSONEq(t, `"quick"`, string(env.Payload.Output))
			break
		}
		ahead++
	}
	// The memory stream buffers 1 MiB; the flood's queue holds 64 KiB; one
	// more flood frame may go between.
	bound := (1<<20+int(cfg.MaxQueuedBytes))/len(item) + 2
	assert.LessOrEqual(t, ahead, bound, "flood frames ahead of the quick answer")
	t.Logf("%d flood frames came before the quick answer (bound %d)", ahead, bound)
}

// TestCallLimitCountsOnlyCallsInFlight: a call whose answer is on its way
// no longer counts against the per-stream limit nor holds its id, even
// while its handler has not returned yet.
func TestCallLimitCountsOnlyCallsInFlight(t *testing.T) {
	reg := NewRegistry(nil)
	linger := make(chan struct{})
	e := newEntry("demo/linger", KindQuery, Options{}, nil, nil, func(ctx context.Context, _ json.RawMessage, emit func(any) error) error {
		if err := emit("answered"); err != nil {
			return err
		}
		select { // the handler goes on after its answer
		case <-linger:
		case <-ctx.Done():
		}
		return nil
	})
	require.NoError(t, reg.add(e))
	p, _ := serve(t, []string{"call"}, Config{Registry: reg, MaxCallsPerStream: 1}, Config{Multiplex: true})
	t.Cleanup(func() { close(linger) })
	for i := range 3 {
		var out string
		require.NoError(t, p.Call(t.Context(), "demo/linger", nil, &out), "call %d", i)
		assert.Equal(t, "answered", out)
	}
}

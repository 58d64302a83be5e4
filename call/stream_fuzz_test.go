package call

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
)

// FuzzServeStream feeds one stream holding any bytes (usually several
// frames) to a serving Peer, ends it, and checks what comes back: only
// whole frames within the limit, each a callee envelope (responded,
// completed, error, aborted) with an id the caller sent or "" for a frame
// that named none, at most one final frame per call, and then the end of
// the stream, without waiting for anything but the calls.
func FuzzServeStream(f *testing.F) {
	frame := func(s string) []byte { return append(binary.BigEndian.AppendUint32(nil, uint32(len(s))), s...) }
	join := func(fs ...[]byte) []byte { return bytes.Join(fs, nil) }
	f.Add(frame(`{"type":"call.requested","id":"1","payload":{"operationId":"/t/add","input":{"a":1,"b":2}}}`))
	f.Add(join(
		frame(`{"type":"call.requested","id":"1","payload":{"operationId":"/t/count","input":{"n":3}}}`),
		frame(`{"type":"call.requested","id":"2","payload":{"operationId":"/t/add","input":{"a":1}}}`),
		frame(`{"type":"call.aborted","id":"1","payload":{}}`),
		frame(`{"type":"call.requested","id":"2","payload":{"operationId":"/t/add","input":null}}`),
	))
	f.Add(join(frame(`{"type":`), frame(`{"type":"call.responded","id":"9","payload":{}}`), frame(`{"type":"call.requested","id":"3","payload":{"operationId":"/no/op"}}`)))
	f.Add(join(frame(`{"type":"call.requested","id":"4","payload":{"operationId":"/t/add","input":"x"}}`), []byte{0, 0, 0, 0}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1})
	f.Add(frame(`{"type":"call.requested","id":"5","payload":{"operationId":"/t/count","input":{"n":1000}}}`)[:20])

	reg := NewRegistry(nil)
	Query(reg, "t/add", func(_ context.Context, in struct{ A, B int }) (int, error) { return in.A + in.B, nil }, Options{})
	Subscription(reg, "t/count", func(ctx context.Context, in struct{ N int }, emit func(int) error) error {
		for i := range min(in.N, 50) {
			if err := emit(i); err != nil {
				return err
			}
		}
		return nil
	}, Options{})
	const limit = 4 << 10
	cfg := Config{Registry: reg, MaxFrameSize: limit}.withDefaults()

	f.Fuzz(func(t *testing.T, in []byte) {
		a, b := coretest.Pipe(ALPN, coretest.Side{}, coretest.Side{})
		defer a.Close(core.CodeOK, "")
		server := newPeer(b, cfg)
		served := make(chan struct{})
		go func() { defer close(served); _ = server.Serve(context.Background()) }()
		s, err := a.OpenStream(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Write(in); err != nil {
			t.Fatal(err)
		}
		_ = s.CloseWrite()
		_ = s.SetReadDeadline(time.Now().Add(10 * time.Second))
		finals := map[string]bool{}
		for {
			body, err := ReadFrame(s, limit)
			if err == io.EOF {
				break
			}
			if err != nil {
				if errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatal("the callee sent a partial frame")
				}
				t.Fatalf("reading the answers: %v", err)
			}
			env, err := decodeWire(body)
			if err != nil {
				t.Fatalf("the callee sent a bad envelope %q: %v", body, err)
			}
			switch env.Type {
			case TypeResponded, TypeCompleted, TypeError, TypeAborted:
			default:
				t.Fatalf("the callee sent %q", env.Type)
			}
			if env.ID != "" && !bytes.Contains(in, []byte(env.ID)) {
				t.Fatalf("answer for id %q that the caller never sent", env.ID)
			}
			final := env.Type != TypeResponded || (env.ID != "" && !bytes.Contains(in, []byte("/t/count")))
			if env.ID != "" && finals[env.ID] && final && !bytes.Contains(in, []byte(`"id":"`+env.ID+`"`)) {
				t.Fatalf("two final frames for %q", env.ID)
			}
			if final {
				finals[env.ID] = true
			}
		}
		_ = a.Close(core.CodeOK, "")
		<-served
		if used, _ := server.budget.stats(); used != 0 {
			t.Fatalf("%d bytes of budget never returned", used)
		}
	})
}

package call

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFrameRoundTrip(t *testing.T) {
	for _, n := range []int{1, 100, 64 << 10, MaxFrameSize - 1, MaxFrameSize} {
		t.Run(sizeName(n), func(t *testing.T) {
			body := make([]byte, n)
			for i := 0; i < n; i += 4093 {
				body[i] = byte(i%251) + 1
			}
			body[n-1] = 'z'
			var buf bytes.Buffer
			buf.Grow(4 + n)
			require.NoError(t, WriteFrame(&buf, body, 0))
			require.Equal(t, 4+n, buf.Len())
			assert.Equal(t, uint32(n), binary.BigEndian.Uint32(buf.Bytes()[:4]))
			got, err := ReadFrame(&buf, 0)
			require.NoError(t, err)
			assert.True(t, bytes.Equal(body, got), "body differs")
			_, err = ReadFrame(&buf, 0)
			assert.ErrorIs(t, err, io.EOF, "clean end after the last frame")
		})
	}
}

func sizeName(n int) string { return fmt.Sprintf("%d bytes", n) }

func itoa(n int) string { return fmt.Sprint(n) }

func TestFrameSizeRejected(t *testing.T) {
	t.Run("write 0", func(t *testing.T) {
		var buf bytes.Buffer
		assert.ErrorIs(t, WriteFrame(&buf, nil, 0), ErrFrameSize)
		assert.Zero(t, buf.Len(), "nothing written")
	})
	t.Run("write 64MiB+1", func(t *testing.T) {
		var buf bytes.Buffer
		assert.ErrorIs(t, WriteFrame(&buf, make([]byte, MaxFrameSize+1), 0), ErrFrameSize)
		assert.Zero(t, buf.Len(), "nothing written")
	})
	for _, n := range []uint32{0, MaxFrameSize + 1, 0xffffffff} {
		t.Run("read "+itoa(int(n)), func(t *testing.T) {
			hdr := binary.BigEndian.AppendUint32(nil, n)
			r := bytes.NewReader(append(hdr, "{}"...))
			_, err := ReadFrame(r, 0)
			assert.ErrorIs(t, err, ErrFrameSize)
			assert.Equal(t, 2, r.Len(), "nothing past the length is read")
		})
	}
	t.Run("configured limit", func(t *testing.T) {
		var buf bytes.Buffer
		require.NoError(t, WriteFrame(&buf, make([]byte, 11), 0))
		_, err := ReadFrame(&buf, 10)
		assert.ErrorIs(t, err, ErrFrameSize)
		assert.ErrorIs(t, WriteFrame(&buf, make([]byte, 11), 10), ErrFrameSize)
	})
}

func TestFrameTruncated(t *testing.T) {
	full := binary.BigEndian.AppendUint32(nil, 10)
	full = append(full, "0123456789"...)
	for _, cut := range []int{1, 3, 4, 5, 13} {
		_, err := ReadFrame(bytes.NewReader(full[:cut]), 0)
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF, "cut at %d", cut)
	}
	_, err := ReadFrame(bytes.NewReader(nil), 0)
	assert.ErrorIs(t, err, io.EOF)
}

func TestEnvelopeFieldNames(t *testing.T) {
	frame, err := encodeFrame(TypeRequested, "7", Request{
		OperationID: "/ns/op", Input: json.RawMessage(`{"a":1}`), AuthToken: "tok",
		ForwardedFor: &ForwardedFor{ID: "alice", Scopes: []string{"x"}, Resources: map[string][]string{}},
	}, 0)
	require.NoError(t, err)
	body, err := ReadFrame(bytes.NewReader(frame), 0)
	require.NoError(t, err)
	assert.Equal(t, `{"type":"call.requested","id":"7","payload":{"operationId":"/ns/op","input":{"a":1},"auth_token":"tok","forwarded_for":{"id":"alice","scopes":["x"],"resources":{}}}}`, string(body))

	frame, err = encodeFrame(TypeCompleted, "8", nil, 0)
	require.NoError(t, err)
	assert.Equal(t, `{"type":"call.completed","id":"8","payload":{}}`, string(frame[4:]))

	frame, err = encodeFrame(TypeError, "9", NewError(CodeTimeout, "slow <op>"), 0)
	require.NoError(t, err)
	assert.Equal(t, `{"type":"call.error","id":"9","payload":{"code":"TIMEOUT","message":"slow <op>","retryable":true}}`, string(frame[4:]))

	frame, err = encodeFrame(TypeResponded, "10", Response{Output: json.RawMessage(`[1,2]`)}, 0)
	require.NoError(t, err)
	assert.Equal(t, `{"type":"call.responded","id":"10","payload":{"output":[1,2]}}`, string(frame[4:]))

	// Optional fields stay out when empty.
	frame, err = encodeFrame(TypeRequested, "11", Request{OperationID: "/a/b", Input: json.RawMessage(`null`)}, 0)
	require.NoError(t, err)
	assert.Equal(t, `{"type":"call.requested","id":"11","payload":{"operationId":"/a/b","input":null}}`, string(frame[4:]))
}

func TestEncodeFrameLimit(t *testing.T) {
	_, err := encodeFrame(TypeResponded, "1", Response{Output: json.RawMessage(`"` + strings.Repeat("a", 100) + `"`)}, 64)
	assert.True(t, errors.Is(err, ErrFrameSize))
}

// FuzzReadFrame checks, for arbitrary input, that ReadFrame consumes
// exactly 4 + the declared length on success, never returns a body over the
// limit, and reports a bad length without reading past it.
func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{0, 0, 0, 2, '{', '}'}, uint16(0))
	f.Add([]byte{0, 0, 0, 0}, uint16(0))
	f.Add([]byte{0, 0, 0, 5, 'a'}, uint16(3))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3}, uint16(0))
	f.Add([]byte{0, 0}, uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, lim uint16) {
		limit := int64(lim)
		eff := limit
		if eff <= 0 {
			eff = MaxFrameSize
		}
		r := bytes.NewReader(data)
		body, err := ReadFrame(r, limit)
		if cap(body) > max(firstChunk, 2*len(data)) {
			t.Fatalf("body buffer of %d bytes for %d bytes of input", cap(body), len(data))
		}
		consumed := len(data) - r.Len()
		if len(data) < 4 {
			if err == nil {
				t.Fatalf("frame from %d bytes", len(data))
			}
			return
		}
		declared := int64(binary.BigEndian.Uint32(data))
		switch {
		case declared == 0 || declared > eff:
			if !errors.Is(err, ErrFrameSize) {
				t.Fatalf("declared %d limit %d: err %v", declared, eff, err)
			}
			if consumed != 4 {
				t.Fatalf("read %d bytes past a bad length", consumed-4)
			}
		case int64(len(data)-4) < declared:
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("truncated body: err %v", err)
			}
		default:
			if err != nil {
				t.Fatalf("valid frame: %v", err)
			}
			if int64(len(body)) != declared || int64(consumed) != 4+declared {
				t.Fatalf("body %d consumed %d declared %d", len(body), consumed, declared)
			}
			if !bytes.Equal(body, data[4:4+declared]) {
				t.Fatal("body differs from input")
			}
		}
	})
}

// FuzzDecodeEnvelope checks that the one-pass decoder agrees with a plain
// decode of the envelope: any body either fails with ErrBadEnvelope, or has
// the same type and id as encoding/json sees, and re-encodes to a frame
// that decodes to the same envelope.
func FuzzDecodeEnvelope(f *testing.F) {
	f.Add([]byte(`{"type":"call.requested","id":"1","payload":{"operationId":"/a/b","input":{}}}`))
	f.Add([]byte(`{"type":"call.aborted","id":"1","payload":{}}`))
	f.Add([]byte(`{"type":1}`))
	f.Add([]byte(`{"type":"call.requested","id":"2","payload":{"operationId":"/a/b","input":{"a":"}}"}}}`))
	f.Add([]byte(`{"type":"call.requested","id":"2","payload":{"operationId":"/a/b","input":1,"auth_token":"t"}}`))
	f.Add([]byte(`{"type":"call.requested","id":"2","payload":{"operationId":"/a\u0062","input":null}}`))
	f.Add([]byte(`{"type":"call.requested","id":"2","payload":{"operationId":"/a/b","input":{}},"payload":{"operationId":"/c/d"}}`))
	f.Add([]byte(`{"type":"call.responded","id":"7","payload":{"output":{"a":[1,2]}}}`))
	f.Add([]byte(`{"type":"call.responded","id":"7","payload":{"output":1},"x":{"y":2}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		env, err := decodeWire(body)
		if err != nil {
			if !errors.Is(err, ErrBadEnvelope) {
				t.Fatalf("error not ErrBadEnvelope: %v", err)
			}
			return
		}
		var plain Envelope
		if err := json.Unmarshal(body, &plain); err != nil {
			t.Fatalf("one-pass decode accepted what encoding/json refuses: %v", err)
		}
		if env.Type == "" || plain.Type != env.Type || plain.ID != env.ID {
			t.Fatalf("type/id differ: %+v %+v", env, plain)
		}
		var full wireEnvelope
		if err := json.Unmarshal(body, &full); err != nil {
			t.Fatalf("full decode: %v", err)
		}
		if !bytes.Equal(full.Payload.Output, env.Payload.Output) {
			t.Fatalf("output differs: %q vs %q", full.Payload.Output, env.Payload.Output)
		}
		if full.Payload.OperationID != env.Payload.OperationID || !bytes.Equal(full.Payload.Input, env.Payload.Input) ||
			full.Payload.AuthToken != env.Payload.AuthToken || (full.Payload.ForwardedFor == nil) != (env.Payload.ForwardedFor == nil) {
			t.Fatalf("request differs: %+v vs %+v", full.Payload, env.Payload)
		}
		// Re-encode what the decoder understood, not the raw payload: with
		// duplicate keys encoding/json merges objects, so the raw text and
		// the decoded envelope may differ, and only the decoded one is ever
		// acted on or forwarded.
		var p any
		if len(plain.Payload) > 0 {
			p = env.Payload
		}
		frame, err := encodeFrame(env.Type, env.ID, p, 0)
		if err != nil {
			return // payload too large for a frame cannot come from a frame
		}
		env2, err := decodeWire(frame[4:])
		if err != nil || env2.Type != env.Type || env2.ID != env.ID || env2.Payload.OperationID != env.Payload.OperationID || env2.Payload.Code != env.Payload.Code {
			t.Fatalf("re-encode: %v %+v %+v", err, env, env2)
		}
	})
}

// TestReadFrameAllocatesWithTheData: a frame that declares 64 MiB and
// sends 4 bytes costs the reader a few KiB, not the declared length.
func TestReadFrameAllocatesWithTheData(t *testing.T) {
	in := append(binary.BigEndian.AppendUint32(nil, MaxFrameSize), "abcd"...)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := ReadFrame(bytes.NewReader(in), 0)
	runtime.ReadMemStats(&after)
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(64<<10), "allocated ahead of the bytes")

	// A body that does arrive costs a few times its size in all (its buffer
	// doubles as bytes arrive).
	body := bytes.Repeat([]byte("x"), 3<<20)
	in = append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
	runtime.GC()
	runtime.ReadMemStats(&before)
	got, err := ReadFrame(bytes.NewReader(in), 0)
	runtime.ReadMemStats(&after)
	require.NoError(t, err)
	assert.Equal(t, body, got)
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(4*len(body)), "in all, a few times what arrived")
}

// TestBudgetManyStreams: many streams that each declare a large frame and
// stall hold at most the connection's budget between them, and the frames
// complete once their bytes arrive.
func TestBudgetManyStreams(t *testing.T) {
	const streams, frame = 32, 64 << 10
	reg := NewRegistry(nil)
	Query(reg, "demo/len", func(_ context.Context, in string) (int, error) { return len(in), nil }, Options{})
	peers := make(chan *Peer, 1)
	srv, err := NewServer(Config{Registry: reg, MaxFrameSize: frame, MaxBufferedBytes: 4 * frame * decodeFactor,
		OnConnect: func(ctx context.Context, p *Peer) { peers <- p }})
	require.NoError(t, err)
	pair := coretest.NewPair(t, []string{"call"}, coretest.Route{Handler: srv, ACL: core.AccessControl{RequiredScopes: []string{"call"}}})
	conn := pair.Dial(t, ALPN)
	server := within(t, peers, "the server's peer")

	var bodies [][]byte
	var open []core.Stream
	for i := range streams {
		input := strings.Repeat("y", frame-100)
		full, err := encodeFrame(TypeRequested, fmt.Sprint(i), Request{OperationID: "/demo/len", Input: json.RawMessage(`"` + input + `"`)}, frame)
		require.NoError(t, err)
		s, err := conn.OpenStream(t.Context())
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		_, err = s.Write(full[:8]) // the length and 4 bytes of the body
		require.NoError(t, err)
		open, bodies = append(open, s), append(bodies, full[8:])
	}
	// Wait until the server holds as much as it can: the budget is full
	// (no further frame fits).
	deadline := time.Now().Add(waitLimit)
	for used, _ := server.budget.stats(); used+frame*decodeFactor <= server.budget.size; used, _ = server.budget.stats() {
		require.True(t, time.Now().Before(deadline), "the budget never filled: %d of %d", used, server.budget.size)
		time.Sleep(time.Millisecond)
	}
	for i, s := range open {
		_, err := s.Write(bodies[i])
		require.NoError(t, err)
		require.NoError(t, s.CloseWrite())
	}
	for i, s := range open {
		require.NoError(t, s.SetReadDeadline(time.Now().Add(waitLimit)))
		body, err := ReadFrame(s, 0)
		require.NoError(t, err, "stream %d", i)
		env, err := decodeWire(body)
		require.NoError(t, err)
		assert.Equal(t, TypeResponded, env.Type, "stream %d: %s", i, body)
		assert.JSONEq(t, fmt.Sprint(frame-100), string(env.Payload.Output))
	}
	used, peak := server.budget.stats()
	assert.Zero(t, used, "every reservation is returned")
	assert.LessOrEqual(t, peak, server.budget.size, "never more than the budget")
	assert.Greater(t, peak, server.budget.size-frame*decodeFactor)
}

package call

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

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
		var p any
		if len(plain.Payload) > 0 {
			p = plain.Payload
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

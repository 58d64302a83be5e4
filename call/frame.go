package call

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"slices"

	"github.com/alkdev/alknet/core"
)

// ALPN is the protocol string of the call protocol.
const ALPN = "alknet/call"

// MaxFrameSize is the largest frame body the protocol allows: 64 MiB.
// Config.MaxFrameSize may lower it, never raise it.
const MaxFrameSize = 64 << 20

// DefaultMaxFrameSize is the frame body limit when Config.MaxFrameSize is
// zero: 1 MiB, ample for JSON calls and small enough that a connection's
// frames in flight stay within its buffer budget.
const DefaultMaxFrameSize = 1 << 20

// Envelope types.
const (
	TypeRequested = "call.requested"
	TypeResponded = "call.responded"
	TypeCompleted = "call.completed"
	TypeAborted   = "call.aborted"
	TypeError     = "call.error"
)

// Envelope is the JSON body of every frame.
type Envelope struct {
	Type    string          `json:"type"`
	ID      string          `json:"id"`
	Payload json.RawMessage `json:"payload"`
}

// Request is the payload of call.requested. OperationID carries a leading
// slash on the wire ("/ns/op").
type Request struct {
	OperationID  string          `json:"operationId"`
	Input        json.RawMessage `json:"input"`
	AuthToken    string          `json:"auth_token,omitempty"`
	ForwardedFor *ForwardedFor   `json:"forwarded_for,omitempty"`
}

// Response is the payload of call.responded.
type Response struct {
	Output json.RawMessage `json:"output"`
}

// ForwardedFor names the original caller of a call a hub forwards. It is
// information for the callee (logging, auditing, per-user data); it never
// authorizes anything.
type ForwardedFor struct {
	ID        string              `json:"id"`
	Scopes    []string            `json:"scopes"`
	Resources map[string][]string `json:"resources"`
}

// forwardedFrom returns the forwarded_for form of id; nil for anonymous.
func forwardedFrom(id *core.Identity) *ForwardedFor {
	if id == nil {
		return nil
	}
	f := &ForwardedFor{ID: id.ID, Scopes: slices.Clone(id.Scopes), Resources: map[string][]string{}}
	if f.Scopes == nil {
		f.Scopes = []string{}
	}
	for k, v := range id.Resources {
		f.Resources[k] = slices.Clone(v)
	}
	return f
}

var emptyObject = json.RawMessage(`{}`)

// ReadFrame reads one frame from r and returns its body. limit is the
// largest body accepted; zero or above MaxFrameSize means MaxFrameSize. It
// returns io.EOF when r ends before the first length byte and
// io.ErrUnexpectedEOF when it ends inside the length or the body (both are a
// clean close of the stream), and an error wrapping ErrFrameSize when the
// declared length is 0 or above limit; then nothing past the length has been
// read. The declared length bounds the read but does not size the buffer:
// the body grows with the bytes that actually arrive.
func ReadFrame(r io.Reader, limit int64) ([]byte, error) {
	n, err := readLength(r, limit)
	if err != nil {
		return nil, err
	}
	return readBody(r, n)
}

// readLength reads and checks a frame's length prefix.
func readLength(r io.Reader, limit int64) (int64, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, err
	}
	n := int64(binary.BigEndian.Uint32(hdr[:]))
	if err := checkSize(n, limit); err != nil {
		return 0, err
	}
	return n, nil
}

// firstChunk is the buffer a body starts with; it doubles as bytes arrive,
// up to the declared length, so a sender pays for every byte the reader
// holds (at most twice what it sent, plus firstChunk).
const firstChunk = 4 << 10

// readBody reads exactly n bytes, growing its buffer with the data.
func readBody(r io.Reader, n int64) ([]byte, error) {
	body := make([]byte, 0, min(n, firstChunk))
	for int64(len(body)) < n {
		if len(body) == cap(body) {
			body = slices.Grow(body, int(min(n-int64(len(body)), int64(len(body)))))
		}
		want := min(int64(cap(body)), n)
		m, err := r.Read(body[len(body):want])
		body = body[:len(body)+m]
		if err != nil {
			if int64(len(body)) == n {
				break
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return body, nil
}

// WriteFrame writes body as one frame (length and body in one Write).
func WriteFrame(w io.Writer, body []byte, limit int64) error {
	if err := checkSize(int64(len(body)), limit); err != nil {
		return err
	}
	buf := make([]byte, 4+len(body))
	binary.BigEndian.PutUint32(buf, uint32(len(body)))
	copy(buf[4:], body)
	_, err := w.Write(buf)
	return err
}

func checkSize(n, limit int64) error {
	if limit <= 0 || limit > MaxFrameSize {
		limit = MaxFrameSize
	}
	if n == 0 || n > limit {
		return fmt.Errorf("%w: %d bytes (limit %d)", ErrFrameSize, n, limit)
	}
	return nil
}

// encodeFrame marshals an envelope with payload into a ready-to-write frame
// (4-byte length prefix included).
func encodeFrame(typ, id string, payload any, limit int64) ([]byte, error) {
	var buf bytes.Buffer
	buf.Write([]byte{0, 0, 0, 0})
	buf.WriteString(`{"type":`)
	writeJSONString(&buf, typ)
	buf.WriteString(`,"id":`)
	writeJSONString(&buf, id)
	buf.WriteString(`,"payload":`)
	switch p := payload.(type) {
	case nil:
		buf.WriteString(`{}`)
	case json.RawMessage:
		buf.Write(p)
	case Response: // output is already valid JSON (marshalJSON or a decoded frame)
		buf.WriteString(`{"output":`)
		if len(p.Output) == 0 {
			buf.WriteString("null")
		} else {
			buf.Write(p.Output)
		}
		buf.WriteByte('}')
	case Request: // input is already valid JSON (marshalJSON or a decoded frame)
		buf.WriteString(`{"operationId":`)
		writeJSONString(&buf, p.OperationID)
		buf.WriteString(`,"input":`)
		if len(p.Input) == 0 {
			buf.WriteString("null")
		} else {
			buf.Write(p.Input)
		}
		if p.AuthToken != "" {
			buf.WriteString(`,"auth_token":`)
			writeJSONString(&buf, p.AuthToken)
		}
		if p.ForwardedFor != nil {
			ff, err := json.Marshal(p.ForwardedFor)
			if err != nil {
				return nil, err
			}
			buf.WriteString(`,"forwarded_for":`)
			buf.Write(ff)
		}
		buf.WriteByte('}')
	default:
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(payload); err != nil {
			return nil, err
		}
		buf.Truncate(buf.Len() - 1) // Encode's newline
	}
	buf.WriteByte('}')
	b := buf.Bytes()
	if err := checkSize(int64(len(b)-4), limit); err != nil {
		return nil, err
	}
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b, nil
}

func writeJSONString(buf *bytes.Buffer, s string) {
	if plainString(s) {
		buf.WriteByte('"')
		buf.WriteString(s)
		buf.WriteByte('"')
		return
	}
	b, _ := json.Marshal(s) // cannot fail for a string
	buf.Write(b)
}

// plainString reports whether s needs no escaping in JSON (printable
// ASCII without '"', '\\', '<', '>', '&').
func plainString(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// wireEnvelope decodes an envelope and its payload in one pass: the payload
// fields of every type side by side.
type wireEnvelope struct {
	Type    string      `json:"type"`
	ID      string      `json:"id"`
	Payload wirePayload `json:"payload"`
}

type wirePayload struct {
	OperationID  string          `json:"operationId"`
	Input        json.RawMessage `json:"input"`
	AuthToken    string          `json:"auth_token"`
	ForwardedFor *ForwardedFor   `json:"forwarded_for"`
	Output       json.RawMessage `json:"output"`
	Code         string          `json:"code"`
	Message      string          `json:"message"`
	Retryable    bool            `json:"retryable"`
	Details      json.RawMessage `json:"details"`
}

const (
	respondedPrefix = `{"type":"call.responded","id":"`
	respondedMiddle = `","payload":{"output":`
)

// decodeResponded is the fast path for call.responded in the form this
// package writes: one scan of the output instead of a full decode. It
// reports false for anything else, which then takes the full path.
func decodeResponded(body []byte) (wireEnvelope, bool) {
	rest, ok := bytes.CutPrefix(body, []byte(respondedPrefix))
	if !ok {
		return wireEnvelope{}, false
	}
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return wireEnvelope{}, false
	}
	id := rest[:end]
	if bytes.IndexByte(id, '\\') >= 0 || !plainString(string(id)) {
		return wireEnvelope{}, false
	}
	rest, ok = bytes.CutPrefix(rest[end:], []byte(respondedMiddle))
	if !ok {
		return wireEnvelope{}, false
	}
	out, ok := bytes.CutSuffix(rest, []byte("}}"))
	if !ok || !trimmedValue(out) {
		return wireEnvelope{}, false
	}
	return wireEnvelope{Type: TypeResponded, ID: string(id), Payload: wirePayload{Output: bytes.Clone(out)}}, true
}

const (
	requestedPrefix = `{"type":"call.requested","id":"`
	requestedMiddle = `","payload":{"operationId":"`
	requestedInput  = `","input":`
)

// decodeRequested is the fast path for call.requested in the form this
// package writes without auth_token or forwarded_for: the body is then
// prefix, id, middle, operationId, input and "}}" with id and operationId
// plain strings (no escapes, no quote) and input one valid JSON value, so a
// full decode could only find the same three fields. Anything else reports
// false and takes the full path.
func decodeRequested(body []byte) (wireEnvelope, bool) {
	rest, ok := bytes.CutPrefix(body, []byte(requestedPrefix))
	if !ok {
		return wireEnvelope{}, false
	}
	id, rest, ok := cutPlain(rest)
	if !ok {
		return wireEnvelope{}, false
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(requestedMiddle)); !ok {
		return wireEnvelope{}, false
	}
	op, rest, ok := cutPlain(rest)
	if !ok {
		return wireEnvelope{}, false
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(requestedInput)); !ok {
		return wireEnvelope{}, false
	}
	in, ok := bytes.CutSuffix(rest, []byte("}}"))
	if !ok || !trimmedValue(in) {
		return wireEnvelope{}, false
	}
	return wireEnvelope{Type: TypeRequested, ID: id, Payload: wirePayload{OperationID: op, Input: bytes.Clone(in)}}, true
}

// trimmedValue reports whether b is one valid JSON value without
// surrounding whitespace, as encoding/json would store it in a
// json.RawMessage.
func trimmedValue(b []byte) bool {
	if len(b) == 0 || isSpace(b[0]) || isSpace(b[len(b)-1]) {
		return false
	}
	return json.Valid(b)
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// cutPlain returns the plain string before the next '"' and the rest from
// that quote on.
func cutPlain(b []byte) (string, []byte, bool) {
	end := bytes.IndexByte(b, '"')
	if end < 0 || !plainString(string(b[:end])) {
		return "", nil, false
	}
	return string(b[:end]), b[end:], true
}

// decodeWire parses a frame body whose payload must be an object.
func decodeWire(body []byte) (wireEnvelope, error) {
	if env, ok := decodeResponded(body); ok {
		return env, nil
	}
	if env, ok := decodeRequested(body); ok {
		return env, nil
	}
	var env wireEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		return wireEnvelope{}, fmt.Errorf("%w: %v", ErrBadEnvelope, err)
	}
	if env.Type == "" {
		return wireEnvelope{}, fmt.Errorf("%w: missing type", ErrBadEnvelope)
	}
	return env, nil
}

package fs

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Operations (SPEC.md, "Requests").
const (
	opGet   = 1
	opHas   = 2
	opPut   = 3
	opTag   = 4
	opUntag = 5
	opList  = 6
)

// Limits of the wire format.
const (
	// MaxRequestSize bounds a request frame, in bytes.
	MaxRequestSize = 32 << 10
	// MaxRanges is the most ranges a GET asks for or a HAS answer lists.
	MaxRanges = 1024
	// MaxMessage bounds an error message, in bytes.
	MaxMessage = 1024
	// MaxListEntries bounds the tags a LIST answer carries.
	MaxListEntries = 1 << 20
)

const putCollection = 1 // PUT flag: the blob is a collection

// Status codes (SPEC.md, "Responses").
const (
	statusOK           = 0
	statusBadRequest   = 1
	statusNotFound     = 2
	statusForbidden    = 3
	statusIncomplete   = 4
	statusTooLarge     = 5
	statusBusy         = 6
	statusBadTag       = 7
	statusBadColl      = 8
	statusSizeMismatch = 9
	statusReadOnly     = 10
	statusInternal     = 11
)

var statusErrors = map[byte]error{
	statusBadRequest:   ErrBadRequest,
	statusNotFound:     ErrNotFound,
	statusForbidden:    ErrForbidden,
	statusIncomplete:   ErrIncomplete,
	statusTooLarge:     ErrTooLarge,
	statusBusy:         ErrBusy,
	statusBadTag:       ErrBadTag,
	statusBadColl:      ErrBadCollection,
	statusSizeMismatch: ErrSizeMismatch,
	statusReadOnly:     ErrReadOnly,
	statusInternal:     ErrInternal,
}

// statusOf maps an error to its status code; causes not meant for the
// peer become statusInternal.
func statusOf(err error) byte {
	for code, e := range statusErrors {
		if errors.Is(err, e) {
			return code
		}
	}
	return statusInternal
}

// request is a decoded request frame.
type request struct {
	op         byte
	hash       Hash
	ranges     Ranges // GET; nil = the whole blob
	size       int64  // PUT
	collection bool   // PUT
	tag        string // PUT (optional), TAG, UNTAG
}

func (r *request) encode() ([]byte, error) {
	b := make([]byte, 4, 64)
	b = append(b, r.op)
	switch r.op {
	case opGet:
		if len(r.ranges) > MaxRanges {
			return nil, fmt.Errorf("%w: %d ranges (limit %d)", ErrTooLarge, len(r.ranges), MaxRanges)
		}
		b = append(b, r.hash[:]...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(r.ranges)))
		for _, rg := range r.ranges {
			b = binary.BigEndian.AppendUint64(b, rg.Start)
			b = binary.BigEndian.AppendUint64(b, rg.End)
		}
	case opHas:
		b = append(b, r.hash[:]...)
	case opPut:
		b = binary.BigEndian.AppendUint64(b, uint64(r.size))
		var flags byte
		if r.collection {
			flags |= putCollection
		}
		b = append(b, flags, byte(len(r.tag)))
		b = append(b, r.tag...)
	case opTag:
		b = append(b, r.hash[:]...)
		b = append(b, byte(len(r.tag)))
		b = append(b, r.tag...)
	case opUntag:
		b = append(b, byte(len(r.tag)))
		b = append(b, r.tag...)
	case opList:
	default:
		return nil, fmt.Errorf("%w: op %d", ErrBadRequest, r.op)
	}
	if len(b)-4 > MaxRequestSize {
		return nil, fmt.Errorf("%w: request of %d bytes", ErrTooLarge, len(b)-4)
	}
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b, nil
}

// errNoRequest is a stream that failed where a request would start.
var errNoRequest = errors.New("alknet/fs: stream ended")

// readRequest reads one request frame. io.EOF means the stream ended
// cleanly between requests.
func readRequest(r io.Reader) (*request, error) {
	var hdr [4]byte
	if k, err := io.ReadFull(r, hdr[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		if k == 0 {
			// The stream ended between requests (reset, connection
			// closed, idle timeout): not a malformed request.
			return nil, fmt.Errorf("%w: %v", errNoRequest, err)
		}
		return nil, fmt.Errorf("%w: %v", ErrBadRequest, unexpected(err))
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 || n > MaxRequestSize {
		return nil, fmt.Errorf("%w: frame of %d bytes (1 to %d)", ErrBadRequest, n, MaxRequestSize)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRequest, unexpected(err))
	}
	return decodeRequest(body)
}

// decodeRequest parses a request frame body (without its length).
func decodeRequest(b []byte) (*request, error) {
	d := decoder{b: b}
	req := &request{op: d.u8()}
	switch req.op {
	case opGet:
		req.hash = d.hash()
		n := int(d.u16())
		if n > MaxRanges {
			return nil, fmt.Errorf("%w: %d ranges (limit %d)", ErrBadRequest, n, MaxRanges)
		}
		if n > 0 && d.err == nil && len(d.b) >= 16*n {
			req.ranges = make(Ranges, n)
			for i := range req.ranges {
				req.ranges[i] = Range{d.u64(), d.u64()}
			}
			if !req.ranges.normalized() {
				return nil, fmt.Errorf("%w: ranges must be sorted, non-empty and apart", ErrBadRequest)
			}
		} else if n > 0 {
			d.fail()
		}
	case opHas:
		req.hash = d.hash()
	case opPut:
		size := d.u64()
		if size > 1<<62 {
			return nil, fmt.Errorf("%w: size %d", ErrBadRequest, size)
		}
		req.size = int64(size)
		flags := d.u8()
		if flags&^putCollection != 0 {
			return nil, fmt.Errorf("%w: unknown put flags %#x", ErrBadRequest, flags)
		}
		req.collection = flags&putCollection != 0
		req.tag = d.str8()
		if req.tag != "" {
			if err := ValidateTag(req.tag); err != nil {
				return nil, err
			}
		}
	case opTag:
		req.hash = d.hash()
		req.tag = d.str8()
		if err := ValidateTag(req.tag); err != nil && d.err == nil {
			return nil, err
		}
	case opUntag:
		req.tag = d.str8()
		if err := ValidateTag(req.tag); err != nil && d.err == nil {
			return nil, err
		}
	case opList:
	default:
		return nil, fmt.Errorf("%w: unknown op %d", ErrBadRequest, req.op)
	}
	if d.err != nil {
		return nil, fmt.Errorf("%w: truncated", ErrBadRequest)
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrBadRequest, len(d.b))
	}
	return req, nil
}

// decoder reads big-endian fields; the first short read sets err and
// every later read yields zeros.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() { d.err = io.ErrUnexpectedEOF; d.b = nil }

func (d *decoder) take(n int) []byte {
	if d.err != nil || len(d.b) < n {
		d.fail()
		return make([]byte, n)
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) u8() byte     { return d.take(1)[0] }
func (d *decoder) u16() uint16  { return binary.BigEndian.Uint16(d.take(2)) }
func (d *decoder) u64() uint64  { return binary.BigEndian.Uint64(d.take(8)) }
func (d *decoder) hash() Hash   { return Hash(d.take(32)) }
func (d *decoder) str8() string { return string(d.take(int(d.u8()))) }

// writeError writes an error response.
func writeError(w *bufio.Writer, code byte, msg string) error {
	if len(msg) > MaxMessage {
		msg = msg[:MaxMessage]
	}
	_ = w.WriteByte(code)
	var l [2]byte
	binary.BigEndian.PutUint16(l[:], uint16(len(msg)))
	_, _ = w.Write(l[:])
	_, _ = w.WriteString(msg)
	return w.Flush()
}

// readStatus reads a response's status; a failure status becomes an
// error wrapping the matching sentinel, with the node's message.
func readStatus(r *bufio.Reader) error {
	code, err := r.ReadByte()
	if err != nil {
		return readErr(err)
	}
	if code == statusOK {
		return nil
	}
	var l [2]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return readErr(err)
	}
	n := binary.BigEndian.Uint16(l[:])
	if n > MaxMessage {
		return fmt.Errorf("%w: error message of %d bytes", ErrBadResponse, n)
	}
	msg := make([]byte, n)
	if _, err := io.ReadFull(r, msg); err != nil {
		return readErr(err)
	}
	sentinel, ok := statusErrors[code]
	if !ok {
		sentinel = ErrInternal
	}
	return &RemoteError{Code: int(code), Message: string(msg), err: sentinel}
}

// RemoteError is a failure reported by the node. errors.Is matches it
// against the package's sentinel errors (ErrNotFound, ErrForbidden, ...).
type RemoteError struct {
	Code    int
	Message string
	err     error
}

func (e *RemoteError) Error() string {
	if e.Message == "" {
		return e.err.Error()
	}
	return "node: " + e.Message
}

func (e *RemoteError) Unwrap() error { return e.err }

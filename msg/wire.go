package msg

import (
	"encoding/binary"
	"fmt"
	"io"
)

// ALPN is the mailbox protocol: delivery, key lookup, fetch, ack and
// subscribe.
const ALPN = "alknet/msg"

// Op is a request type, the first byte of a request frame.
type Op byte

// Requests.
const (
	OpDeliver   Op = 0x01 // envelope -> stored / duplicate
	OpKey       Op = 0x02 // node id -> key record
	OpFetch     Op = 0x03 // mailbox, cursor, limit -> items
	OpAck       Op = 0x04 // mailbox, seqs -> count deleted
	OpSubscribe Op = 0x05 // mailbox, cursor -> items, pushed as they arrive
	OpPublish   Op = 0x06 // key record of a hosted peer -> empty
)

func (o Op) String() string {
	switch o {
	case OpDeliver:
		return "deliver"
	case OpKey:
		return "key"
	case OpFetch:
		return "fetch"
	case OpAck:
		return "ack"
	case OpSubscribe:
		return "subscribe"
	case OpPublish:
		return "publish"
	}
	return fmt.Sprintf("op 0x%02x", byte(o))
}

// Status is the first byte of a response frame.
type Status byte

// Response statuses. Anything but StatusOK carries a message safe to show.
const (
	StatusOK          Status = 0x00
	StatusBadRequest  Status = 0x01 // malformed request, unknown op
	StatusForbidden   Status = 0x02 // not the mailbox owner, or msg:send required
	StatusTooLarge    Status = 0x03 // beyond the size cap
	StatusRateLimited Status = 0x04 // per-key or per-address rate limit
	StatusNotFound    Status = 0x05 // no such mailbox or key
	StatusInvalid     Status = 0x06 // envelope refused: malformed, tampered, misaddressed, forged
	StatusFull        Status = 0x07 // mailbox quota reached
	StatusExpired     Status = 0x08 // message too old or dated in the future
	StatusInternal    Status = 0x09 // the node failed; retry later
)

func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusBadRequest:
		return "bad request"
	case StatusForbidden:
		return "forbidden"
	case StatusTooLarge:
		return "too large"
	case StatusRateLimited:
		return "rate limited"
	case StatusNotFound:
		return "not found"
	case StatusInvalid:
		return "invalid envelope"
	case StatusFull:
		return "mailbox full"
	case StatusExpired:
		return "expired"
	case StatusInternal:
		return "internal error"
	}
	return fmt.Sprintf("status 0x%02x", byte(s))
}

// Temporary reports whether a delivery refused with s may succeed later
// unchanged (so a sender retries it).
func (s Status) Temporary() bool {
	switch s {
	case StatusInvalid, StatusTooLarge, StatusExpired, StatusBadRequest:
		return false
	}
	return true
}

// Delivery outcomes, the payload byte of a successful deliver.
const (
	deliveredStored    byte = 0
	deliveredDuplicate byte = 1
)

// Frame sizes.
const (
	frameHeader = 5 // type byte + 4-byte big-endian length
	// maxSmallPayload bounds every request payload but a delivery's.
	maxSmallPayload = 8 << 10
	// maxItemsPayload bounds a fetch answer.
	maxItemsPayload = 4 << 20
	// itemHeader is seq, received time and envelope length of an item.
	itemHeader = 8 + 8 + 4
	// maxRequests bounds the requests one stream may carry.
	maxRequests = 1 << 16
)

// writeFrame writes typ, the length of payload and payload.
func writeFrame(w io.Writer, typ byte, payload []byte) error {
	b := make([]byte, frameHeader, frameHeader+len(payload))
	b[0] = typ
	binary.BigEndian.PutUint32(b[1:], uint32(len(payload)))
	b = append(b, payload...)
	_, err := w.Write(b)
	return err
}

// readFrame reads one frame whose payload may be at most limit(typ) bytes.
// The payload is read in pieces as it arrives, never allocated from the
// declared length ahead of the bytes.
func readFrame(r io.Reader, limit func(typ byte) int64) (byte, []byte, error) {
	var h [frameHeader]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := int64(binary.BigEndian.Uint32(h[1:]))
	if max := limit(h[0]); n > max {
		return h[0], nil, fmt.Errorf("%w: frame of %d bytes (limit %d)", ErrTooLarge, n, max)
	}
	p, err := readN(r, n)
	if err != nil {
		return h[0], nil, err
	}
	return h[0], p, nil
}

// readN reads exactly n bytes, growing the buffer as data arrives.
func readN(r io.Reader, n int64) ([]byte, error) {
	const chunk = 64 << 10
	buf := make([]byte, 0, min(n, chunk))
	for int64(len(buf)) < n {
		step := min(n-int64(len(buf)), chunk)
		if int64(cap(buf)-len(buf)) < step {
			nb := make([]byte, len(buf), min(n, int64(2*cap(buf))+step))
			copy(nb, buf)
			buf = nb
		}
		m, err := io.ReadFull(r, buf[len(buf):int64(len(buf))+step])
		buf = buf[:len(buf)+m]
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return buf, nil
}

// Item is one stored envelope of a mailbox, as fetch and subscribe return
// it.
type Item struct {
	Seq      int64  // position in the mailbox, increasing; the cursor for the next fetch
	Received int64  // when the node stored it, Unix milliseconds
	Envelope []byte // the sealed envelope, as delivered
}

func appendItem(b []byte, it Item) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(it.Seq))
	b = binary.BigEndian.AppendUint64(b, uint64(it.Received))
	b = binary.BigEndian.AppendUint32(b, uint32(len(it.Envelope)))
	return append(b, it.Envelope...)
}

// parseItems decodes a sequence of items that fills b exactly.
func parseItems(b []byte) ([]Item, error) {
	var out []Item
	for len(b) > 0 {
		if len(b) < itemHeader {
			return nil, fmt.Errorf("%w: truncated item", ErrProtocol)
		}
		it := Item{Seq: int64(binary.BigEndian.Uint64(b)), Received: int64(binary.BigEndian.Uint64(b[8:]))}
		n := int(binary.BigEndian.Uint32(b[16:]))
		b = b[itemHeader:]
		if n > len(b) || n > MaxEnvelopeSize {
			return nil, fmt.Errorf("%w: item of %d bytes overruns the answer", ErrProtocol, n)
		}
		it.Envelope = append([]byte(nil), b[:n]...)
		b = b[n:]
		out = append(out, it)
	}
	return out, nil
}

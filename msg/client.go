package msg

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/alkdev/alknet/core"
)

// Client talks to one node's alknet/msg service over a connection. Each
// request runs on a stream of its own, so a Client is safe for concurrent
// use.
type Client struct {
	conn core.Conn
	// MaxEnvelope bounds what Fetch and Subscribe accept per item; zero
	// means MaxEnvelopeSize.
}

// NewClient wraps a connection that negotiated ALPN.
func NewClient(conn core.Conn) *Client { return &Client{conn: conn} }

// Conn returns the underlying connection.
func (c *Client) Conn() core.Conn { return c.conn }

// DeliverResult says what the mailbox did with an envelope. Both outcomes
// are an acknowledgement: the mailbox holds the envelope.
type DeliverResult struct {
	Duplicate bool // the mailbox already had this envelope or message id
}

// Deliver hands a sealed envelope to the mailbox of the recipient named in
// its header, on the node at the other end of conn (the recipient itself or
// its mailbox host). It returns once the node has stored it durably
// (or recognised it as a duplicate). A refusal is a *RemoteError.
func Deliver(ctx context.Context, conn core.Conn, envelope []byte) (DeliverResult, error) {
	return NewClient(conn).Deliver(ctx, envelope)
}

// DeliverTo dials addr on ALPN from ep, delivers the envelope and closes
// the connection. Note that the TLS handshake shows ep's key to the
// mailbox node: a sender that must stay unknown to it dials from an
// endpoint with a throwaway key, or through the mixnet.
func DeliverTo(ctx context.Context, ep *core.Endpoint, addr core.Addr, envelope []byte) (DeliverResult, error) {
	if _, err := EnvelopeRecipient(envelope); err != nil {
		return DeliverResult{}, err
	}
	conn, err := ep.Dial(ctx, addr, ALPN)
	if err != nil {
		return DeliverResult{}, err
	}
	defer conn.Close(core.CodeOK, "")
	return Deliver(ctx, conn, envelope)
}

// Deliver is the package-level Deliver on c's connection.
func (c *Client) Deliver(ctx context.Context, envelope []byte) (DeliverResult, error) {
	if _, err := EnvelopeRecipient(envelope); err != nil {
		return DeliverResult{}, err
	}
	p, err := c.roundTrip(ctx, OpDeliver, envelope, 1)
	if err != nil {
		return DeliverResult{}, fmt.Errorf("deliver: %w", err)
	}
	if len(p) != 1 || p[0] > deliveredDuplicate {
		return DeliverResult{}, fmt.Errorf("deliver: %w: answer of %d bytes", ErrProtocol, len(p))
	}
	return DeliverResult{Duplicate: p[0] == deliveredDuplicate}, nil
}

// Key asks for the message key record of node (the zero id means the node
// at the other end) and verifies it: it must name node, or the remote node
// when node is zero, and carry a valid signature.
func (c *Client) Key(ctx context.Context, node core.NodeID) (KeyRecord, error) {
	p, err := c.roundTrip(ctx, OpKey, node[:], KeyRecordSize)
	if err != nil {
		return KeyRecord{}, fmt.Errorf("key: %w", err)
	}
	want := node
	if want.IsZero() {
		want = c.conn.RemoteID()
	}
	return ParseKeyRecord(p, want)
}

// Publish hands the node at the other end the key record of the caller,
// whose mailbox it hosts, so that it can answer Key requests for it.
// Only the hosted peer itself may publish its record.
func (c *Client) Publish(ctx context.Context, rec KeyRecord) error {
	if err := rec.Verify(); err != nil {
		return err
	}
	if _, err := c.roundTrip(ctx, OpPublish, rec.Marshal(), 0); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	return nil
}

// FetchKey dials addr and returns the verified key record of the node
// there.
func FetchKey(ctx context.Context, ep *core.Endpoint, addr core.Addr) (KeyRecord, error) {
	conn, err := ep.Dial(ctx, addr, ALPN)
	if err != nil {
		return KeyRecord{}, err
	}
	defer conn.Close(core.CodeOK, "")
	return NewClient(conn).Key(ctx, addr.ID)
}

// Fetch returns up to limit items of mailbox after cursor (0 = from the
// start), oldest first. Only the mailbox owner may fetch: the node's own
// key for its mailbox, or a hosted peer with msg:fetch for its own.
func (c *Client) Fetch(ctx context.Context, mailbox core.NodeID, after int64, limit int) ([]Item, error) {
	if limit <= 0 || limit > 0xffff {
		limit = 0xffff
	}
	req := make([]byte, 0, 32+8+2)
	req = append(req, mailbox[:]...)
	req = binary.BigEndian.AppendUint64(req, uint64(after))
	req = binary.BigEndian.AppendUint16(req, uint16(limit))
	p, err := c.roundTrip(ctx, OpFetch, req, maxItemsPayload+MaxEnvelopeSize+itemHeader)
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	return parseItems(p)
}

// Ack deletes the items with the given sequence numbers from mailbox and
// returns how many were deleted. Their envelopes stay remembered as
// delivered, so a sender's retry is dropped as a duplicate.
func (c *Client) Ack(ctx context.Context, mailbox core.NodeID, seqs ...int64) (int, error) {
	if len(seqs) > maxAck {
		return 0, fmt.Errorf("ack: %d items (at most %d per request)", len(seqs), maxAck)
	}
	req := make([]byte, 0, 32+2+8*len(seqs))
	req = append(req, mailbox[:]...)
	req = binary.BigEndian.AppendUint16(req, uint16(len(seqs)))
	for _, s := range seqs {
		req = binary.BigEndian.AppendUint64(req, uint64(s))
	}
	p, err := c.roundTrip(ctx, OpAck, req, 4)
	if err != nil {
		return 0, fmt.Errorf("ack: %w", err)
	}
	if len(p) != 4 {
		return 0, fmt.Errorf("ack: %w: answer of %d bytes", ErrProtocol, len(p))
	}
	return int(binary.BigEndian.Uint32(p)), nil
}

// maxAck bounds the sequence numbers of one ack request.
const maxAck = (maxSmallPayload - 34) / 8

// Subscribe streams the items of mailbox after cursor: those already
// stored, then each new one within milliseconds of its arrival. It calls fn
// for each item in order and returns when ctx ends (with ctx's error), fn
// returns an error, or the connection fails.
func (c *Client) Subscribe(ctx context.Context, mailbox core.NodeID, after int64, fn func(Item) error) error {
	s, err := c.conn.OpenStream(ctx)
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	defer s.Close()
	stop := context.AfterFunc(ctx, func() { _ = s.SetDeadline(time.Now()) })
	defer stop()
	req := make([]byte, 0, 40)
	req = append(req, mailbox[:]...)
	req = binary.BigEndian.AppendUint64(req, uint64(after))
	if err := writeFrame(s, byte(OpSubscribe), req); err != nil {
		return c.ctxErr(ctx, fmt.Errorf("subscribe: %w", err))
	}
	if _, err := readAnswer(s, 0); err != nil {
		return c.ctxErr(ctx, fmt.Errorf("subscribe: %w", err))
	}
	for {
		_, p, err := readFrame(s, func(byte) int64 { return MaxEnvelopeSize + itemHeader })
		if err != nil {
			return c.ctxErr(ctx, fmt.Errorf("subscribe: %w", err))
		}
		items, err := parseItems(p)
		if err != nil || len(items) != 1 {
			return fmt.Errorf("subscribe: %w: push of %d items", ErrProtocol, len(items))
		}
		if err := fn(items[0]); err != nil {
			return err
		}
	}
}

// ctxErr prefers ctx's error when ctx ended: a deadline set to stop a
// blocked read is not a failure of the peer.
func (c *Client) ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// roundTrip opens a stream, sends one request, reads one answer of at most
// limit bytes and closes the stream.
func (c *Client) roundTrip(ctx context.Context, op Op, payload []byte, limit int64) ([]byte, error) {
	s, err := c.conn.OpenStream(ctx)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	stop := context.AfterFunc(ctx, func() { _ = s.SetDeadline(time.Now()) })
	defer stop()
	werr := writeFrame(s, byte(op), payload)
	if werr == nil {
		werr = s.CloseWrite()
	}
	p, err := readAnswer(s, limit)
	if werr != nil {
		// The server may refuse a request before reading all of it (too
		// large) and stop reading: its answer says why the write failed.
		var re *RemoteError
		if errors.As(err, &re) {
			return nil, err
		}
		return nil, c.ctxErr(ctx, werr)
	}
	return p, c.ctxErr(ctx, err)
}

// readAnswer reads a response frame: the payload when the status is OK, a
// *RemoteError otherwise.
func readAnswer(s core.Stream, limit int64) ([]byte, error) {
	typ, p, err := readFrame(s, func(typ byte) int64 {
		if Status(typ) == StatusOK {
			return limit
		}
		return maxErrorMessage
	})
	if err != nil {
		if errors.Is(err, ErrTooLarge) {
			return nil, fmt.Errorf("%w: %v", ErrProtocol, err)
		}
		return nil, err
	}
	if Status(typ) != StatusOK {
		return nil, &RemoteError{Code: Status(typ), Message: sanitize(string(p))}
	}
	return p, nil
}

// maxErrorMessage bounds an error answer.
const maxErrorMessage = 1024

// sanitize keeps printable ASCII of a remote message, so it cannot move
// a terminal's cursor.
func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	return string(b)
}

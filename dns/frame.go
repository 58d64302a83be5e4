package dns

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// MaxMessageSize is the largest DNS message a 2-byte length prefix can
// announce (RFC 1035 section 4.2.2, RFC 9250 section 4.6).
const MaxMessageSize = 65535

// ReadMessage reads one length-prefixed DNS message (2-byte big-endian
// length, then the message, as over TCP and DoQ) from r. A length above
// limit fails with ErrFrameTooLarge before any of the message is read; the
// buffer grows with the bytes that arrive, never ahead of them. A stream that
// ends inside the message fails with ErrShortFrame; one that ends before the
// prefix returns io.EOF (nothing was sent) or ErrShortFrame (one byte was).
func ReadMessage(r io.Reader, limit int) ([]byte, error) {
	var hdr [2]byte
	if n, err := io.ReadFull(r, hdr[:]); err != nil {
		if n == 1 && errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: 1 byte of the length prefix", ErrShortFrame)
		}
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(hdr[:]))
	if n == 0 {
		return nil, ErrEmptyFrame
	}
	if n > limit {
		return nil, fmt.Errorf("%w: %d bytes (limit %d)", ErrFrameTooLarge, n, limit)
	}
	buf := bytes.NewBuffer(make([]byte, 0, min(n, 512)))
	got, err := buf.ReadFrom(io.LimitReader(r, int64(n)))
	if err != nil {
		return nil, err
	}
	if int(got) < n {
		return nil, fmt.Errorf("%w: %d of %d bytes", ErrShortFrame, got, n)
	}
	return buf.Bytes(), nil
}

// ReadQuery reads the one message a DoQ stream carries and then waits for
// the stream's end (FIN): bytes after the message fail with
// ErrTrailingData (RFC 9250 section 4.2: a single query per stream, ended by
// FIN).
func ReadQuery(r io.Reader, limit int) ([]byte, error) {
	msg, err := ReadMessage(r, limit)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: stream ended before a message", ErrShortFrame)
		}
		return nil, err
	}
	var one [1]byte
	for {
		n, err := r.Read(one[:])
		if n > 0 {
			return nil, ErrTrailingData
		}
		if errors.Is(err, io.EOF) {
			return msg, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// AppendMessage appends msg with its 2-byte length prefix to dst. It panics
// if msg is longer than MaxMessageSize: callers pack messages within it.
func AppendMessage(dst, msg []byte) []byte {
	if len(msg) > MaxMessageSize {
		panic("alknet/dns: message over 65535 bytes")
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(msg)))
	return append(dst, msg...)
}

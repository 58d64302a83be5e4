package sftp

import (
	"encoding/binary"
	"errors"
	"io"
)

// SFTP v3 packet types this package reads or writes itself.
const (
	fxpInit          = 1
	fxpVersion       = 2
	fxpOpen          = 3
	fxpClose         = 4
	fxpStatus        = 101
	fxpHandle        = 102
	fxpExtended      = 200
	fxpExtendedReply = 201
)

// SFTP v3 status codes.
const (
	fxOK              = 0
	fxEOF             = 1
	fxNoSuchFile      = 2
	fxPermission      = 3
	fxFailure         = 4
	fxBadMessage      = 5
	fxOpUnsupported   = 8
	protocolVersion   = 3
	packetHeaderBytes = 4 // the uint32 length prefix
)

// readPacket reads one packet (length prefix included) into buf, growing
// it as needed. A declared length of zero or one above limit-4 is an error:
// ErrBadPacket or ErrPacketTooLarge. The returned slice aliases buf.
func readPacket(r io.Reader, buf []byte, limit int64) ([]byte, error) {
	if cap(buf) < packetHeaderBytes {
		buf = make([]byte, packetHeaderBytes, 64<<10)
	}
	buf = buf[:packetHeaderBytes]
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	n := int64(binary.BigEndian.Uint32(buf))
	if n == 0 {
		return nil, ErrBadPacket
	}
	if n > limit-packetHeaderBytes {
		return nil, ErrPacketTooLarge
	}
	total := int(n) + packetHeaderBytes
	if cap(buf) < total {
		nb := make([]byte, total)
		copy(nb, buf)
		buf = nb
	}
	buf = buf[:total]
	if _, err := io.ReadFull(r, buf[packetHeaderBytes:]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

// decoder reads SFTP wire types from a packet body; the first failure
// sticks and later reads return zero values.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() { d.err, d.b = ErrBadPacket, nil }

func (d *decoder) u32() uint32 {
	if len(d.b) < 4 {
		d.fail()
		return 0
	}
	v := binary.BigEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

func (d *decoder) u64() uint64 {
	if len(d.b) < 8 {
		d.fail()
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) str() string {
	n := d.u32()
	if d.err != nil {
		return ""
	}
	if uint64(n) > uint64(len(d.b)) {
		d.fail()
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// encoder builds one packet: a length prefix filled in by bytes.
type encoder struct{ b []byte }

func newPacket(typ byte, id uint32) *encoder {
	e := &encoder{b: make([]byte, 4, 64)}
	e.u8(typ)
	e.u32(id)
	return e
}

func (e *encoder) u8(v byte)    { e.b = append(e.b, v) }
func (e *encoder) u32(v uint32) { e.b = binary.BigEndian.AppendUint32(e.b, v) }
func (e *encoder) u64(v uint64) { e.b = binary.BigEndian.AppendUint64(e.b, v) }
func (e *encoder) str(s string) {
	e.u32(uint32(len(s)))
	e.b = append(e.b, s...)
}
func (e *encoder) raw(p []byte) { e.b = append(e.b, p...) }

// bytes returns the finished packet with its length prefix.
func (e *encoder) bytes() []byte {
	binary.BigEndian.PutUint32(e.b, uint32(len(e.b)-4))
	return e.b
}

// statusPacket is an SSH_FXP_STATUS reply.
func statusPacket(id uint32, code uint32, msg string) []byte {
	e := newPacket(fxpStatus, id)
	e.u32(code)
	e.str(msg)
	e.str("en")
	return e.bytes()
}

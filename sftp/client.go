package sftp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
)

// ErrNoCheckFile is returned by CheckFile when the server does not offer
// the check-file extension.
var ErrNoCheckFile = errors.New("alknet/sftp: server does not offer check-file")

// Control is a small SFTP session for the requests github.com/pkg/sftp's
// client cannot send: limits@openssh.com and check-file. A transfer opens
// it next to its data session and keeps it for the whole transfer, so its
// checks need no new stream (a draining node accepts none). Requests are
// answered one at a time; a Control is safe for concurrent use. Replies
// larger than 64 KiB are refused.
type Control struct {
	mu   sync.Mutex
	rw   io.ReadWriter
	exts map[string]string
	next uint32
}

// NewControl starts a session on rw (a fresh stream, nothing sent on it
// yet): it sends INIT and reads the server's extensions. Closing rw ends
// the session.
func NewControl(rw io.ReadWriter) (*Control, error) {
	exts, err := clientInit(rw)
	if err != nil {
		return nil, err
	}
	return &Control{rw: rw, exts: exts}, nil
}

// Extension returns the data the server announced for extension name.
func (c *Control) Extension(name string) (string, bool) {
	v, ok := c.exts[name]
	return v, ok
}

// roundTrip sends the request e (made with id) and reads its reply.
func (c *Control) roundTrip(e *encoder) ([]byte, error) {
	if _, err := c.rw.Write(e.bytes()); err != nil {
		return nil, err
	}
	return readPacket(c.rw, nil, clientReplyLimit)
}

func (c *Control) nextID() uint32 {
	c.next++
	return c.next
}

// Limits asks the server for its limits (limits@openssh.com).
func (c *Control) Limits() (Limits, error) {
	if _, ok := c.exts[extLimits]; !ok {
		return Limits{}, ErrNoLimits
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	id := c.nextID()
	req := newPacket(fxpExtended, id)
	req.str(extLimits)
	p, err := c.roundTrip(req)
	if err != nil {
		return Limits{}, fmt.Errorf("alknet/sftp: read limits reply: %w", err)
	}
	return parseLimitsReply(p, id)
}

// MaxCheckBlocks is the most digests CheckRange asks for in one request.
const MaxCheckBlocks = 1024

// ErrCheckRange is returned by CheckRange for a range or block size it
// cannot ask for.
var ErrCheckRange = errors.New("alknet/sftp: bad check-file range")

// CheckRange asks for the hashes of length bytes of the file at path from
// offset start (check-file-name; see SPEC.md), with the first algorithm
// of algs the server supports (all of them when algs is empty). block 0
// asks for one digest over the range; otherwise one digest per block of
// that many bytes (at least 256, at most MaxCheckBlocks blocks), the last
// one possibly shorter. length 0 means to the end of the file (only with
// block 0). It returns the algorithm used and the digests in order.
func (c *Control) CheckRange(path string, start, length int64, block uint32, algs ...string) (string, [][]byte, error) {
	if _, ok := c.exts[extCheckFile]; !ok {
		return "", nil, ErrNoCheckFile
	}
	if start < 0 || length < 0 || (block != 0 && (block < 256 || length == 0 || (length+int64(block)-1)/int64(block) > MaxCheckBlocks)) {
		return "", nil, ErrCheckRange
	}
	if len(algs) == 0 {
		algs = checkFileAlgorithms
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	id := c.nextID()
	req := newPacket(fxpExtended, id)
	req.str(extCheckFileName)
	req.str(path)
	req.str(strings.Join(algs, ","))
	req.u64(uint64(start))
	req.u64(uint64(length))
	req.u32(block)
	p, err := c.roundTrip(req)
	if err != nil {
		return "", nil, fmt.Errorf("alknet/sftp: read check-file reply: %w", err)
	}
	alg, sums, err := parseCheckFileBlocks(p, id)
	if err != nil {
		return "", nil, err
	}
	if block == 0 && len(sums) != 1 {
		return "", nil, ErrBadPacket
	}
	return alg, sums, nil
}

// CheckFile asks for the hash of the whole file at path; see CheckRange.
func (c *Control) CheckFile(path string, algs ...string) (alg string, sum []byte, err error) {
	alg, sums, err := c.CheckRange(path, 0, 0, 0, algs...)
	if err != nil {
		return "", nil, err
	}
	return alg, sums[0], nil
}

// CheckFile opens an SFTP session on rw (a fresh stream, nothing sent on it
// yet), asks the server for the hash of the whole file at path with the
// first algorithm of algs it supports (check-file-name; see SPEC.md) and
// returns the algorithm used and the digest. It does not close rw.
// Replies larger than 64 KiB are refused.
func CheckFile(rw io.ReadWriter, path string, algs ...string) (alg string, sum []byte, err error) {
	c, err := NewControl(rw)
	if err != nil {
		return "", nil, err
	}
	return c.CheckFile(path, algs...)
}

// Limits are what a server announces with limits@openssh.com, in bytes
// (MaxHandles in handles); zero means no limit announced.
type Limits struct {
	MaxPacket, MaxRead, MaxWrite, MaxHandles uint64
}

// ErrNoLimits is returned by QueryLimits when the server does not offer
// limits@openssh.com.
var ErrNoLimits = errors.New("alknet/sftp: server does not offer limits@openssh.com")

// QueryLimits opens an SFTP session on rw (a fresh stream) and asks the
// server for its limits. It does not close rw.
func QueryLimits(rw io.ReadWriter) (Limits, error) {
	c, err := NewControl(rw)
	if err != nil {
		return Limits{}, err
	}
	return c.Limits()
}

// clientReplyLimit bounds the replies CheckFile and QueryLimits accept.
const clientReplyLimit = 64 << 10

// clientInit sends INIT and returns the server's extensions.
func clientInit(rw io.ReadWriter) (map[string]string, error) {
	init := &encoder{b: make([]byte, 4, 16)}
	init.u8(fxpInit)
	init.u32(protocolVersion)
	if _, err := rw.Write(init.bytes()); err != nil {
		return nil, err
	}
	p, err := readPacket(rw, nil, clientReplyLimit)
	if err != nil {
		return nil, fmt.Errorf("alknet/sftp: read version: %w", err)
	}
	return parseVersion(p)
}

func parseLimitsReply(p []byte, id uint32) (Limits, error) {
	if len(p) < 9 || p[4] != fxpExtendedReply {
		return Limits{}, ErrBadPacket
	}
	d := decoder{b: p[5:]}
	if d.u32() != id {
		return Limits{}, ErrBadPacket
	}
	l := Limits{MaxPacket: d.u64(), MaxRead: d.u64(), MaxWrite: d.u64(), MaxHandles: d.u64()}
	if d.err != nil || len(d.b) != 0 {
		return Limits{}, ErrBadPacket
	}
	return l, nil
}

// parseVersion decodes an SSH_FXP_VERSION packet into its extensions.
func parseVersion(p []byte) (map[string]string, error) {
	if len(p) < 5 || p[4] != fxpVersion {
		return nil, ErrBadPacket
	}
	d := decoder{b: p[5:]}
	if v := d.u32(); d.err == nil && v != protocolVersion {
		return nil, fmt.Errorf("alknet/sftp: server speaks SFTP version %d", v)
	}
	exts := map[string]string{}
	for len(d.b) > 0 && d.err == nil {
		k, v := d.str(), d.str()
		if d.err == nil {
			exts[k] = v
		}
	}
	if d.err != nil {
		return nil, d.err
	}
	return exts, nil
}

// parseCheckFileReply decodes the reply to a check-file request with id
// that asked for one digest.
func parseCheckFileReply(p []byte, id uint32) (string, []byte, error) {
	alg, sums, err := parseCheckFileBlocks(p, id)
	if err != nil {
		return "", nil, err
	}
	if len(sums) != 1 {
		return "", nil, ErrBadPacket
	}
	return alg, sums[0], nil
}

// parseCheckFileBlocks decodes the reply to a check-file request with id:
// the algorithm and one or more digests of its size.
func parseCheckFileBlocks(p []byte, id uint32) (string, [][]byte, error) {
	if len(p) < 9 {
		return "", nil, ErrBadPacket
	}
	d := decoder{b: p[5:]}
	if got := d.u32(); got != id {
		return "", nil, ErrBadPacket
	}
	switch p[4] {
	case fxpStatus:
		code := d.u32()
		msg := d.str()
		if d.err != nil {
			return "", nil, d.err
		}
		if code == fxOpUnsupported {
			return "", nil, ErrNoCheckFile
		}
		return "", nil, fmt.Errorf("alknet/sftp: check-file: %s (code %d)", msg, code)
	case fxpExtendedReply:
		if kind := d.str(); d.err == nil && kind != extCheckFile {
			return "", nil, ErrBadPacket
		}
		alg := d.str()
		if d.err != nil {
			return "", nil, d.err
		}
		h := newHash(alg)
		if h == nil || len(d.b) == 0 || len(d.b)%h.Size() != 0 {
			return "", nil, ErrBadPacket
		}
		var sums [][]byte
		for b := d.b; len(b) > 0; b = b[h.Size():] {
			sums = append(sums, bytes.Clone(b[:h.Size()]))
		}
		return alg, sums, nil
	}
	return "", nil, ErrBadPacket
}

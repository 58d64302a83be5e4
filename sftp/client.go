package sftp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrNoCheckFile is returned by CheckFile when the server does not offer
// the check-file extension.
var ErrNoCheckFile = errors.New("alknet/sftp: server does not offer check-file")

// CheckFile opens an SFTP session on rw (a fresh stream, nothing sent on it
// yet), asks the server for the hash of the whole file at path with the
// first algorithm of algs it supports (check-file-name; see SPEC.md) and
// returns the algorithm used and the digest. It does not close rw.
// Replies larger than 64 KiB are refused.
func CheckFile(rw io.ReadWriter, path string, algs ...string) (alg string, sum []byte, err error) {
	if len(algs) == 0 {
		algs = checkFileAlgorithms
	}
	exts, err := clientInit(rw)
	if err != nil {
		return "", nil, err
	}
	if _, ok := exts[extCheckFile]; !ok {
		return "", nil, ErrNoCheckFile
	}
	const id = 1
	req := newPacket(fxpExtended, id)
	req.str(extCheckFileName)
	req.str(path)
	req.str(strings.Join(algs, ","))
	req.u64(0)
	req.u64(0)
	req.u32(0)
	if _, err := rw.Write(req.bytes()); err != nil {
		return "", nil, err
	}
	p, err := readPacket(rw, nil, clientReplyLimit)
	if err != nil {
		return "", nil, fmt.Errorf("alknet/sftp: read check-file reply: %w", err)
	}
	return parseCheckFileReply(p, id)
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
	exts, err := clientInit(rw)
	if err != nil {
		return Limits{}, err
	}
	if _, ok := exts[extLimits]; !ok {
		return Limits{}, ErrNoLimits
	}
	const id = 1
	req := newPacket(fxpExtended, id)
	req.str(extLimits)
	if _, err := rw.Write(req.bytes()); err != nil {
		return Limits{}, err
	}
	p, err := readPacket(rw, nil, clientReplyLimit)
	if err != nil {
		return Limits{}, fmt.Errorf("alknet/sftp: read limits reply: %w", err)
	}
	return parseLimitsReply(p, id)
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

// parseCheckFileReply decodes the reply to a check-file request with id.
func parseCheckFileReply(p []byte, id uint32) (string, []byte, error) {
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
		if h == nil || len(d.b) != h.Size() {
			return "", nil, ErrBadPacket
		}
		return alg, bytes.Clone(d.b), nil
	}
	return "", nil, ErrBadPacket
}

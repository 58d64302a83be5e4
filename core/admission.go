package core

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"net"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
)

// statelessResetInfo separates the stateless reset key from every other use
// of the node key.
const statelessResetInfo = "alknet/core stateless reset key v1"

// statelessResetKey derives the QUIC stateless reset key from the node key,
// so that a node restarted with the same key resets the connections of its
// previous run at once (RFC 9000 section 10.3) instead of leaving their
// peers to wait out the idle timeout. The derivation is one-way: the reset
// key (and the tokens made from it) reveal nothing about the node key.
func statelessResetKey(k SecretKey) quic.StatelessResetKey {
	var out quic.StatelessResetKey
	b, err := hkdf.Key(sha256.New, k.priv.Seed(), nil, statelessResetInfo, len(out))
	if err != nil { // cannot happen: the length is far below the HKDF limit
		panic("alknet: derive stateless reset key: " + err.Error())
	}
	copy(out[:], b)
	return out
}

// handshakeKey marks the context of a server connection with its
// handshake counter.
type handshakeKey struct{}

// handshake counts one server handshake in progress until it completes
// (accept) or fails (its context ends), whichever comes first.
type handshake struct {
	e     *Endpoint
	once  sync.Once
	stop  func() bool
	start time.Time
}

func (h *handshake) done() {
	h.once.Do(func() {
		h.e.handshaking.Add(-1)
		if h.stop != nil {
			h.stop()
		}
	})
}

// accepted ends the count for a completed handshake and returns how long
// it took.
func (h *handshake) accepted() time.Duration {
	h.done()
	return time.Since(h.start)
}

// failed ends the count for a connection that closed before its handshake
// completed.
func (h *handshake) failed() {
	first := false
	h.once.Do(func() {
		first = true
		h.e.handshaking.Add(-1)
	})
	if first {
		h.e.countRefusedReason("", RefusedHandshake)
	}
}

// connContext runs for every incoming connection attempt: it counts the
// handshake in progress.
func (e *Endpoint) connContext(ctx context.Context, ci *quic.ClientInfo) (context.Context, error) {
	if e.hookConnInfo != nil {
		e.hookConnInfo(ci.AddrVerified)
	}
	h := &handshake{e: e, start: time.Now()}
	e.handshaking.Add(1)
	h.stop = context.AfterFunc(ctx, h.failed)
	return context.WithValue(ctx, handshakeKey{}, h), nil
}

// verifySourceAddress asks quic-go for a Retry round trip, which proves the
// client owns its source address, while handshakes pile up.
func (e *Endpoint) verifySourceAddress(net.Addr) bool {
	return e.cfg.RetryAbove < 0 || e.handshaking.Load() > int64(e.cfg.RetryAbove)
}

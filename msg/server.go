package msg

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/alkdev/alknet/core"
)

// Server is the alknet/msg handler: mailbox delivery open to anyone within
// limits, key lookup, and fetch, ack and subscribe for mailbox owners.
type Server struct {
	cfg     Config
	st      *Store
	self    core.NodeID
	record  []byte
	host    map[string]bool
	perKey  *rateLimiter
	perAddr *rateLimiter
	log     *slog.Logger
}

// NewServer validates cfg, creates the msg tables and returns the server.
func NewServer(ctx context.Context, cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	st, err := OpenStore(ctx, cfg.DB)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:     cfg,
		st:      st,
		self:    cfg.Key.NodeID(),
		record:  cfg.Key.Record().Marshal(),
		host:    map[string]bool{},
		perKey:  newRateLimiter(cfg.RatePerKey, cfg.BurstPerKey),
		perAddr: newRateLimiter(cfg.RatePerAddr, cfg.BurstPerAddr),
		log:     cfg.Logger,
	}
	for _, h := range cfg.Host {
		s.host[h] = true
	}
	return s, nil
}

// Store returns the server's tables.
func (s *Server) Store() *Store { return s.st }

// ALPN implements core.ProtocolHandler.
func (s *Server) ALPN() []string { return []string{ALPN} }

// ServeConn serves each stream of conn until the connection ends.
func (s *Server) ServeConn(ctx context.Context, conn core.Conn) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		st, err := conn.AcceptStream(ctx)
		if err != nil {
			return nil
		}
		wg.Go(func() { s.serveStream(ctx, conn, st) })
	}
}

// requestTimeout bounds the wait for each request of a stream, from the
// end of the previous answer (or the stream's start) to the request's last
// byte.
const requestTimeout = time.Minute

// statusError is an answer other than OK.
type statusError struct {
	code Status
	msg  string
}

func (e *statusError) Error() string { return e.code.String() + ": " + e.msg }

func refuse(code Status, format string, args ...any) *statusError {
	return &statusError{code: code, msg: fmt.Sprintf(format, args...)}
}

// serveStream answers the requests of one stream in order until the peer
// ends its side.
func (s *Server) serveStream(ctx context.Context, conn core.Conn, st core.Stream) {
	defer st.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(conn.Context(), cancel)
	defer stop()
	for range maxRequests {
		// A stream that sends no complete request for this long is closed,
		// so idle streams do not pin server goroutines.
		_ = st.SetReadDeadline(time.Now().Add(requestTimeout))
		typ, p, err := readFrame(st, func(typ byte) int64 {
			if Op(typ) == OpDeliver {
				return s.cfg.MaxEnvelope
			}
			return maxSmallPayload
		})
		if errors.Is(err, io.EOF) {
			return
		}
		if errors.Is(err, ErrTooLarge) {
			s.answer(st, refuse(StatusTooLarge, "%s request over the limit (%d bytes)", Op(typ), s.limitOf(Op(typ))), nil)
			return
		}
		if err != nil {
			return
		}
		_ = st.SetReadDeadline(time.Time{})
		op := Op(typ)
		if op == OpSubscribe {
			s.subscribe(ctx, conn, st, p)
			return
		}
		out, serr := s.handle(ctx, conn, op, p)
		if serr != nil {
			s.log.Info("msg request refused", "op", op.String(), "peer", peerName(conn), "remote", conn.RemoteAddr().String(),
				"code", serr.code.String(), "err", serr.msg)
		}
		if err := s.answer(st, serr, out); err != nil {
			return
		}
	}
}

func (s *Server) limitOf(op Op) int64 {
	if op == OpDeliver {
		return s.cfg.MaxEnvelope
	}
	return maxSmallPayload
}

func peerName(conn core.Conn) string {
	if id := conn.Identity(); id != nil {
		return id.ID
	}
	if rid := conn.RemoteID(); !rid.IsZero() {
		return rid.Fingerprint()
	}
	return "anonymous"
}

func (s *Server) answer(st core.Stream, serr *statusError, payload []byte) error {
	_ = st.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if serr != nil {
		msg := serr.msg
		if len(msg) > maxErrorMessage {
			msg = msg[:maxErrorMessage]
		}
		return writeFrame(st, byte(serr.code), []byte(msg))
	}
	return writeFrame(st, byte(StatusOK), payload)
}

func (s *Server) handle(ctx context.Context, conn core.Conn, op Op, p []byte) ([]byte, *statusError) {
	switch op {
	case OpDeliver:
		return s.deliver(ctx, conn, p)
	case OpKey:
		return s.key(ctx, p)
	case OpFetch:
		return s.fetch(ctx, conn, p)
	case OpAck:
		return s.ack(ctx, conn, p)
	case OpPublish:
		return s.publish(ctx, conn, p)
	}
	return nil, refuse(StatusBadRequest, "unknown request type 0x%02x", byte(op))
}

// deliver stores an envelope in the mailbox its header names.
func (s *Server) deliver(ctx context.Context, conn core.Conn, env []byte) ([]byte, *statusError) {
	rid := conn.RemoteID()
	if rid != s.self {
		if !rid.IsZero() && !s.perKey.allow(string(rid[:])) {
			return nil, refuse(StatusRateLimited, "too many deliveries from this key")
		}
		if !s.perAddr.allow(addrKey(conn.RemoteAddr())) {
			return nil, refuse(StatusRateLimited, "too many deliveries from this address")
		}
	}
	if s.cfg.RequireSendScope {
		if err := (core.AccessControl{RequiredScopes: []string{ScopeSend}}).Check(conn.Identity()); err != nil {
			return nil, refuse(StatusForbidden, "%s", accessReason(err))
		}
	}
	return s.store(ctx, env)
}

// DeliverLocal hands an envelope that reached this process by other means
// (the mixnet's last hop on this node, a Go program embedding the node)
// to the mailbox it names, with every check of a network delivery but the
// caller's rate limits and scope. A refusal is a *RemoteError with the
// status a network caller would get.
func (s *Server) DeliverLocal(ctx context.Context, envelope []byte) (DeliverResult, error) {
	out, serr := s.store(ctx, envelope)
	if serr != nil {
		return DeliverResult{}, &RemoteError{Code: serr.code, Message: serr.msg}
	}
	return DeliverResult{Duplicate: out[0] == deliveredDuplicate}, nil
}

// store checks an envelope against the mailbox it names and stores it.
func (s *Server) store(ctx context.Context, env []byte) ([]byte, *statusError) {
	if int64(len(env)) > s.cfg.MaxEnvelope {
		return nil, refuse(StatusTooLarge, "envelope of %d bytes (limit %d)", len(env), s.cfg.MaxEnvelope)
	}
	mailbox, err := EnvelopeRecipient(env)
	if err != nil {
		return nil, refuse(StatusInvalid, "%s", trimPrefix(err))
	}
	var id *MessageID
	switch {
	case mailbox == s.self:
		m, err := Open(s.cfg.Key, env)
		if err != nil {
			return nil, refuse(StatusInvalid, "%s", trimPrefix(err))
		}
		now := time.Now()
		if now.Sub(m.Time) > s.cfg.MaxAge {
			return nil, refuse(StatusExpired, "message dated %s, older than %s", m.Time.UTC().Format(time.RFC3339), s.cfg.MaxAge)
		}
		if m.Time.Sub(now) > s.cfg.MaxSkew {
			return nil, refuse(StatusExpired, "message dated %s, in the future", m.Time.UTC().Format(time.RFC3339))
		}
		id = &m.ID
	case s.hosts(mailbox):
	default:
		return nil, refuse(StatusNotFound, "no mailbox for %s here", mailbox)
	}
	_, dup, err := s.st.put(ctx, mailbox, env, id, quota{s.cfg.MaxMailboxMessages, s.cfg.MaxMailboxBytes}, s.cfg.seenFor())
	if errors.Is(err, errFull) {
		return nil, refuse(StatusFull, "mailbox of %s is full", mailbox)
	}
	if err != nil {
		s.log.Warn("msg store", "err", err)
		return nil, refuse(StatusInternal, "could not store the envelope")
	}
	if dup {
		return []byte{deliveredDuplicate}, nil
	}
	return []byte{deliveredStored}, nil
}

// hosts reports whether the node keeps the mailbox of node: a peer listed
// in Config.Host that holds msg:fetch.
func (s *Server) hosts(node core.NodeID) bool {
	if len(s.host) == 0 || s.cfg.Identities == nil {
		return false
	}
	id, ok := s.cfg.Identities.IdentityByFingerprint(node.Fingerprint())
	if !ok || id == nil || !s.host[id.ID] {
		return false
	}
	return (core.AccessControl{RequiredScopes: []string{ScopeFetch}}).Check(id) == nil
}

func (s *Server) key(ctx context.Context, p []byte) ([]byte, *statusError) {
	if len(p) != core.NodeIDSize {
		return nil, refuse(StatusBadRequest, "key request of %d bytes, want %d", len(p), core.NodeIDSize)
	}
	var node core.NodeID
	copy(node[:], p)
	if node.IsZero() || node == s.self {
		return s.record, nil
	}
	if s.hosts(node) {
		if rec, _, err := s.st.CachedKey(ctx, node); err == nil {
			return rec.Marshal(), nil
		}
	}
	return nil, refuse(StatusNotFound, "no key record of %s here", node)
}

// publish stores the key record of a hosted peer, which the node then
// serves to senders (OpKey).
func (s *Server) publish(ctx context.Context, conn core.Conn, p []byte) ([]byte, *statusError) {
	rec, err := ParseKeyRecord(p, core.NodeID{})
	if err != nil {
		return nil, refuse(StatusBadRequest, "%s", trimPrefix(err))
	}
	if serr := s.owner(conn, rec.Node); serr != nil {
		return nil, serr
	}
	if rec.Node == s.self {
		return nil, refuse(StatusBadRequest, "the node's own key record is not published")
	}
	if err := s.st.CacheKey(ctx, rec, ""); err != nil {
		s.log.Warn("msg publish", "err", err)
		return nil, refuse(StatusInternal, "could not store the key record")
	}
	return nil, nil
}

// owner checks that conn may read mailbox: the caller holds msg:fetch,
// asks for its own mailbox, and is the node itself or a hosted peer.
func (s *Server) owner(conn core.Conn, mailbox core.NodeID) *statusError {
	id := conn.Identity()
	if err := (core.AccessControl{RequiredScopes: []string{ScopeFetch}}).Check(id); err != nil {
		return refuse(StatusForbidden, "%s", accessReason(err))
	}
	if mailbox != conn.RemoteID() {
		return refuse(StatusForbidden, "only the owner reads a mailbox")
	}
	if mailbox == s.self || s.host[id.ID] {
		return nil
	}
	return refuse(StatusForbidden, "this node hosts no mailbox for peer %q", id.ID)
}

func (s *Server) fetch(ctx context.Context, conn core.Conn, p []byte) ([]byte, *statusError) {
	if len(p) != 32+8+2 {
		return nil, refuse(StatusBadRequest, "fetch request of %d bytes, want 42", len(p))
	}
	var mailbox core.NodeID
	copy(mailbox[:], p)
	if serr := s.owner(conn, mailbox); serr != nil {
		return nil, serr
	}
	after := int64(binary.BigEndian.Uint64(p[32:]))
	limit := int(binary.BigEndian.Uint16(p[40:]))
	if limit == 0 {
		return nil, nil
	}
	items, err := s.st.Fetch(ctx, mailbox, after, limit, maxItemsPayload)
	if err != nil {
		s.log.Warn("msg fetch", "err", err)
		return nil, refuse(StatusInternal, "could not read the mailbox")
	}
	var out []byte
	for _, it := range items {
		out = appendItem(out, it)
	}
	return out, nil
}

func (s *Server) ack(ctx context.Context, conn core.Conn, p []byte) ([]byte, *statusError) {
	if len(p) < 34 {
		return nil, refuse(StatusBadRequest, "ack request of %d bytes", len(p))
	}
	var mailbox core.NodeID
	copy(mailbox[:], p)
	n := int(binary.BigEndian.Uint16(p[32:]))
	if len(p) != 34+8*n {
		return nil, refuse(StatusBadRequest, "ack request of %d bytes for %d items", len(p), n)
	}
	if serr := s.owner(conn, mailbox); serr != nil {
		return nil, serr
	}
	seqs := make([]int64, n)
	for i := range seqs {
		seqs[i] = int64(binary.BigEndian.Uint64(p[34+8*i:]))
	}
	deleted, err := s.st.Ack(ctx, mailbox, seqs)
	if err != nil {
		s.log.Warn("msg ack", "err", err)
		return nil, refuse(StatusInternal, "could not update the mailbox")
	}
	return binary.BigEndian.AppendUint32(nil, uint32(deleted)), nil
}

// subscribe answers OK, then pushes every item of the mailbox after the
// cursor, and each new one as it is committed, until the client ends its
// side of the stream or the connection ends.
func (s *Server) subscribe(ctx context.Context, conn core.Conn, st core.Stream, p []byte) {
	if len(p) != 40 {
		_ = s.answer(st, refuse(StatusBadRequest, "subscribe request of %d bytes, want 40", len(p)), nil)
		return
	}
	var mailbox core.NodeID
	copy(mailbox[:], p)
	if serr := s.owner(conn, mailbox); serr != nil {
		s.log.Info("msg request refused", "op", OpSubscribe.String(), "peer", peerName(conn), "remote", conn.RemoteAddr().String(),
			"code", serr.code.String(), "err", serr.msg)
		_ = s.answer(st, serr, nil)
		return
	}
	cursor := int64(binary.BigEndian.Uint64(p[32:]))
	sub, err := s.st.Subscribe()
	if err != nil {
		_ = s.answer(st, refuse(StatusInternal, "could not watch the mailbox"), nil)
		return
	}
	defer sub.Close()
	if err := s.answer(st, nil, nil); err != nil {
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { // the client's end of its side (or a reset) ends the subscription
		_, _ = io.Copy(io.Discard, io.LimitReader(st, 1))
		cancel()
	}()
	for {
		items, err := s.st.Fetch(ctx, mailbox, cursor, 256, maxItemsPayload)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("msg subscribe", "err", err)
			}
			return
		}
		for _, it := range items {
			_ = st.SetWriteDeadline(time.Now().Add(30 * time.Second))
			if err := writeFrame(st, byte(StatusOK), appendItem(nil, it)); err != nil {
				return
			}
			cursor = it.Seq
		}
		if len(items) > 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case _, ok := <-sub.C:
			if !ok {
				return
			}
		}
	}
}

// accessReason is the reason of a core access error without the package
// prefix, safe to show.
func accessReason(err error) string {
	var ae *core.AccessError
	if errors.As(err, &ae) {
		return ae.Reason
	}
	return err.Error()
}

// trimPrefix drops the package prefix of one of this package's errors for
// an answer on the wire.
func trimPrefix(err error) string {
	const p = "alknet/msg: "
	s := err.Error()
	if len(s) > len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}

var _ core.ProtocolHandler = (*Server)(nil)

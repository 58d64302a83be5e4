package core

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
)

// Endpoint is one QUIC transport on one UDP socket that serves registered
// handlers by ALPN and dials other nodes.
type Endpoint struct {
	cfg    Config
	key    SecretKey
	cert   tls.Certificate
	certs  *certSet
	log    *slog.Logger
	udp    net.PacketConn
	tr     *quic.Transport
	qconf  *quic.Config
	idents IdentityProvider

	mu         sync.Mutex
	routes     map[string]route
	alpns      []string // registration order
	conns      map[endpointConn]struct{}
	dialed     map[endpointConn]struct{} // open connections made by Dial and DialTCP
	perPeer    map[NodeID]int
	known      int                // tracked connections with an identity
	anon       int                // tracked anonymous connections
	anonIP     map[netip.Addr]int // tracked anonymous connections per source IP
	gen        uint64             // bumped by Reauthorize; accept re-checks when it moved
	listener   *quic.Listener
	tcpLn      net.Listener            // nil unless Config.ListenTCP
	tcpPending map[net.Conn]netip.Addr // TCP connections still in their TLS handshake, by source
	tcpPerIP   map[netip.Addr]int      // tcpPending per source
	tcpWG      sync.WaitGroup          // the TCP accept loop and handshakes
	serving    bool
	closed     bool

	handshaking atomic.Int64 // server handshakes in progress
	metricsP    atomic.Pointer[metricsBox]

	// Test hooks, nil outside tests (see export_test.go).
	hookAfterResolve func()
	hookConnInfo     func(addrVerified bool)

	drainCtx    context.Context
	startDrain  context.CancelFunc
	handlers    sync.WaitGroup
	closeOnce   sync.Once
	closedCh    chan struct{}
	readyCh     chan struct{}
	serveReturn chan struct{}
}

type route struct {
	h   ProtocolHandler
	acl AccessControl
}

// NewEndpoint binds the UDP socket and prepares the endpoint. Call Serve to
// accept connections; Dial works right away.
func NewEndpoint(cfg Config) (*Endpoint, error) {
	if cfg.SecretKey.IsZero() {
		return nil, errors.New("alknet: Config.SecretKey is required")
	}
	cfg = cfg.withDefaults()
	cert, err := selfSignedCert(cfg.SecretKey)
	if err != nil {
		return nil, err
	}
	certs, err := newCertSet(cert, cfg.TLSCerts, cfg.ACME, cfg.Logger)
	if err != nil {
		return nil, err
	}
	uaddr, err := net.ResolveUDPAddr("udp", cfg.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: %w", cfg.ListenAddr, err)
	}
	udp, tcpLn, err := listen(cfg, uaddr)
	if err != nil {
		return nil, err
	}
	drainCtx, startDrain := context.WithCancel(context.Background())
	e := &Endpoint{
		cfg:        cfg,
		key:        cfg.SecretKey,
		cert:       cert,
		certs:      certs,
		log:        cfg.Logger,
		udp:        udp,
		tcpLn:      tcpLn,
		tcpPending: make(map[net.Conn]netip.Addr),
		tcpPerIP:   make(map[netip.Addr]int),
		idents:     cfg.Identities,
		routes:     make(map[string]route),
		conns:      make(map[endpointConn]struct{}),
		dialed:     make(map[endpointConn]struct{}),
		perPeer:    make(map[NodeID]int),
		anonIP:     make(map[netip.Addr]int),
		drainCtx:   drainCtx,
		startDrain: startDrain,
		closedCh:   make(chan struct{}),
		readyCh:    make(chan struct{}),
	}
	resetKey := statelessResetKey(cfg.SecretKey)
	e.tr = &quic.Transport{
		Conn:                udp,
		StatelessResetKey:   &resetKey,
		ConnContext:         e.connContext,
		VerifySourceAddress: e.verifySourceAddress,
	}
	e.qconf = &quic.Config{
		HandshakeIdleTimeout: cfg.HandshakeTimeout,
		MaxIdleTimeout:       cfg.IdleTimeout,
		KeepAlivePeriod:      cfg.KeepAlivePeriod,
		MaxIncomingStreams:   cfg.MaxIncomingStreams,
		// HTTP/3 needs the client's control and QPACK streams, which are
		// unidirectional; no other handler reads them, so the few a peer
		// may open stay within the connection's flow-control window.
		MaxIncomingUniStreams:          maxUniStreams,
		InitialStreamReceiveWindow:     uint64(min(cfg.StreamReceiveWindow, 2<<20)),
		MaxStreamReceiveWindow:         uint64(cfg.StreamReceiveWindow),
		InitialConnectionReceiveWindow: uint64(min(cfg.ConnReceiveWindow, 4<<20)),
		MaxConnectionReceiveWindow:     uint64(cfg.ConnReceiveWindow),
		Allow0RTT:                      false,
	}
	return e, nil
}

// listen binds the UDP socket and, with cfg.ListenTCP, a TCP listener on
// the same host and port number. An ephemeral port is retried a few times
// when the port the UDP socket got is taken on TCP.
func listen(cfg Config, uaddr *net.UDPAddr) (*net.UDPConn, net.Listener, error) {
	for attempt := 0; ; attempt++ {
		udp, err := net.ListenUDP("udp", uaddr)
		if err != nil {
			return nil, nil, fmt.Errorf("listen udp %s: %w", cfg.ListenAddr, err)
		}
		if !cfg.ListenTCP {
			return udp, nil, nil
		}
		ln, err := listenTCP(cfg, udp)
		if err == nil {
			return udp, ln, nil
		}
		_ = udp.Close()
		if uaddr.Port != 0 || attempt >= 8 {
			return nil, nil, fmt.Errorf("listen tcp %s: %w", cfg.ListenAddr, err)
		}
	}
}

// NodeID returns the endpoint's node id.
func (e *Endpoint) NodeID() NodeID { return e.key.NodeID() }

// LocalAddr returns the bound UDP address.
func (e *Endpoint) LocalAddr() net.Addr { return e.udp.LocalAddr() }

// Addr returns the node address of the endpoint on its bound address. An
// unspecified bind address (0.0.0.0 or ::) is reported as loopback.
func (e *Endpoint) Addr() Addr {
	ua := e.udp.LocalAddr().(*net.UDPAddr)
	ip := ua.IP
	if ip == nil || ip.IsUnspecified() {
		if ip.To4() != nil || ip == nil {
			ip = net.IPv4(127, 0, 0, 1)
		} else {
			ip = net.IPv6loopback
		}
	}
	return Addr{ID: e.NodeID(), Host: net.JoinHostPort(ip.String(), fmt.Sprint(ua.Port))}
}

// Register routes every ALPN of h to h, behind acl. It panics on an empty or
// already registered ALPN, like http.ServeMux. Registering after Serve is
// allowed; new handshakes see the new ALPN.
func (e *Endpoint) Register(h ProtocolHandler, acl AccessControl) {
	alpns := h.ALPN()
	if len(alpns) == 0 {
		panic("alknet: handler has no ALPN")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, a := range alpns {
		if a == "" {
			panic("alknet: empty ALPN")
		}
		if len(a) > 255 {
			panic("alknet: ALPN longer than 255 bytes: " + a)
		}
		if _, dup := e.routes[a]; dup {
			panic("alknet: ALPN registered twice: " + a)
		}
	}
	for _, a := range alpns {
		e.routes[a] = route{h: h, acl: acl}
		e.alpns = append(e.alpns, a)
	}
}

// ALPNs returns the registered ALPNs in registration order.
func (e *Endpoint) ALPNs() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.alpns...)
}

// Serve accepts connections until ctx is cancelled or Shutdown/Close is
// called. After Shutdown or Close it returns ErrClosed; when ctx is
// cancelled it drains for Config.DrainTimeout, closes, and returns ctx.Err().
func (e *Endpoint) Serve(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return ErrClosed
	}
	if e.serving {
		e.mu.Unlock()
		return errors.New("alknet: Serve called twice")
	}
	ln, err := e.tr.Listen(serverTLS(e.certs, e.ALPNs), e.qconf)
	if err != nil {
		e.mu.Unlock()
		return fmt.Errorf("listen: %w", err)
	}
	e.listener = ln
	e.serving = true
	if e.tcpLn != nil {
		e.tcpWG.Add(1)
		go e.serveTCP(e.tcpLn, serverTLS(e.certs, e.tcpALPNs))
	}
	e.serveReturn = make(chan struct{})
	e.mu.Unlock()
	defer close(e.serveReturn)
	close(e.readyCh)

	stop := context.AfterFunc(ctx, func() {
		dctx, cancel := context.WithTimeout(context.Background(), e.cfg.DrainTimeout)
		defer cancel()
		_ = e.shutdown(dctx, false)
	})
	defer stop()

	for {
		qc, err := ln.Accept(context.Background())
		if err != nil {
			if ctx.Err() != nil {
				<-e.closedCh
				return ctx.Err()
			}
			if e.isClosed() {
				return ErrClosed
			}
			return fmt.Errorf("accept: %w", err)
		}
		// Admission runs off the accept loop: a refusal waits for quic-go
		// to close the connection, and a flood of refusals must not fill
		// the accept queue that authorized peers wait in.
		go e.accept(qc)
	}
}

// Ready is closed once Serve is accepting connections.
func (e *Endpoint) Ready() <-chan struct{} { return e.readyCh }

func (e *Endpoint) isClosed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed
}

// accept authorizes a new QUIC connection and starts its handler.
func (e *Endpoint) accept(qc *quic.Conn) {
	var took time.Duration
	if hs, ok := qc.Context().Value(handshakeKey{}).(*handshake); ok {
		took = hs.accepted()
	}
	state := qc.ConnectionState().TLS
	c := &quicConn{qc: qc, connMeta: connMeta{alpn: state.NegotiatedProtocol, drain: e.drainCtx, ip: remoteIP(qc.RemoteAddr()), handshake: took}}
	if len(state.PeerCertificates) > 0 {
		id, err := verifiedNodeID(state)
		if err != nil { // cannot happen: the handshake verified it
			_ = c.Close(CodeForbidden, "bad peer certificate")
			return
		}
		c.remoteID = id
	}
	if h, log, ok := e.admit(c); ok {
		go e.run(h, c, log)
	}
}

// admit authorizes an accepted connection whose ALPN and remote id are set:
// it refuses it (closing it with a code and reason) or tracks it and
// returns its handler. The caller then runs the handler with e.run.
func (e *Endpoint) admit(c endpointConn) (ProtocolHandler, *slog.Logger, bool) {
	m := c.meta()
	alpn := m.alpn
	remote := c.RemoteAddr().String()
	if e.drainCtx.Err() != nil {
		e.log.Info("connection refused", "alpn", alpn, "remote", remote, "reason", "endpoint shutting down")
		e.countRefused(alpn, CodeShutdown)
		_ = c.Close(CodeShutdown, "endpoint shutting down")
		return nil, nil, false
	}
	log := e.log.With("alpn", alpn, "peer", peerName(m.remoteID), "remote", remote)

	e.mu.Lock()
	rt, ok := e.routes[alpn]
	gen := e.gen
	e.mu.Unlock()
	if !ok {
		log.Warn("connection refused", "reason", "no handler")
		e.countRefusedReason(alpn, RefusedNoHandler)
		_ = c.Close(CodeForbidden, "no handler for "+alpn)
		return nil, nil, false
	}
	m.ident = e.resolve(m.remoteID)
	if err := rt.acl.Check(m.ident); err != nil {
		code, reason := CodeForbidden, fmt.Sprintf("peer not authorized for %s: %s", alpn, err.Error())
		if m.ident == nil && e.disabled(m.remoteID) {
			code, reason = CodeRevoked, "access revoked: this key's peer entry is disabled on the node"
		}
		log.Warn("connection refused", "reason", reason)
		e.countRefused(alpn, code)
		_ = c.Close(code, reason)
		return nil, nil, false
	}
	if e.hookAfterResolve != nil {
		e.hookAfterResolve()
	}
	if q, ok := rt.h.(StreamQueuer); ok && q.QueueStreams() {
		m.queue = true
	}
	code, reason := e.track(c, rt.acl, gen)
	if reason != "" {
		log.Warn("connection refused", "reason", reason)
		e.countRefused(alpn, code)
		_ = c.Close(code, reason)
		return nil, nil, false
	}
	peerID := ""
	if m.ident != nil {
		peerID = m.ident.ID
	}
	log.Info("connection accepted", "peer_id", peerID)
	e.countAccepted(m)
	return rt.h, log, true
}

// remoteIP returns the source of addr that the per-address cap counts:
// the IPv4 address (IPv4-mapped addresses unmapped), or the IPv6 /64, which
// one host or site usually owns whole.
func remoteIP(addr net.Addr) netip.Addr {
	var ip netip.Addr
	if ua, ok := addr.(*net.UDPAddr); ok {
		ip = ua.AddrPort().Addr().Unmap()
	} else if ap, err := netip.ParseAddrPort(addr.String()); err == nil {
		ip = ap.Addr().Unmap()
	}
	if ip.Is6() {
		ip = netip.PrefixFrom(ip.WithZone(""), 64).Masked().Addr()
	}
	return ip
}

// verifiedNodeID returns the peer key of a completed handshake, whose
// certificate VerifyPeerCertificate has already checked.
func verifiedNodeID(s tls.ConnectionState) (NodeID, error) {
	if len(s.PeerCertificates) != 1 {
		return NodeID{}, errors.New("no peer certificate")
	}
	pub, ok := s.PeerCertificates[0].PublicKey.(ed25519.PublicKey)
	if !ok {
		return NodeID{}, errors.New("peer key is not ed25519")
	}
	return NodeIDFromPublicKey(pub)
}

// peerName is how logs name a caller: its fingerprint, or "anonymous" when
// it showed no certificate.
func peerName(id NodeID) string {
	if id.IsZero() {
		return "anonymous"
	}
	return id.Fingerprint()
}

// resolve returns the identity of node id, or nil when it is unknown. The
// zero id (a caller without a certificate, or the all-zero key, which
// anyone can sign for) is never resolved.
func (e *Endpoint) resolve(nid NodeID) *Identity {
	if e.idents == nil || nid.IsZero() {
		return nil
	}
	id, ok := e.idents.IdentityByFingerprint(nid.Fingerprint())
	if !ok {
		return nil
	}
	return id
}

// disabled reports whether nid is the key of a disabled peer entry, when
// the IdentityProvider can tell.
func (e *Endpoint) disabled(nid NodeID) bool {
	dc, ok := e.idents.(DisabledChecker)
	return ok && !nid.IsZero() && dc.IsDisabled(nid.Fingerprint())
}

// track counts c against the limits and registers its handler goroutine
// with the drain group; it returns a refusal code and reason, or "". gen is
// the Reauthorize generation read before c's identity was resolved: when a
// reload ran since, the identity is resolved and checked again here, under
// the lock Reauthorize takes, so that resolve, check and track are atomic
// against reloads.
func (e *Endpoint) track(ec endpointConn, acl AccessControl, gen uint64) (uint64, string) {
	c := ec.meta()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return CodeShutdown, "endpoint shutting down"
	}
	if e.gen != gen {
		c.ident = e.resolve(c.remoteID)
		if err := acl.Check(c.ident); err != nil {
			return CodeForbidden, fmt.Sprintf("peer not authorized for %s: %s", c.alpn, err.Error())
		}
	}
	c.anon = c.ident == nil
	if c.anon {
		switch {
		case e.cfg.MaxAnonConns < 0:
			return CodeLimit, "anonymous connections are not accepted"
		case e.anon >= e.cfg.MaxAnonConns:
			return CodeLimit, fmt.Sprintf("too many anonymous connections (limit %d)", e.cfg.MaxAnonConns)
		case e.cfg.MaxAnonConnsPerIP > 0 && e.anonIP[c.ip] >= e.cfg.MaxAnonConnsPerIP:
			return CodeLimit, fmt.Sprintf("too many anonymous connections from this address (limit %d)", e.cfg.MaxAnonConnsPerIP)
		}
		if e.cfg.MaxAnonStreams > 0 {
			c.streams = make(chan struct{}, e.cfg.MaxAnonStreams)
		}
		e.anon++
		e.anonIP[c.ip]++
	} else {
		if e.cfg.MaxConns > 0 && e.known >= e.cfg.MaxConns {
			return CodeLimit, fmt.Sprintf("too many connections (limit %d)", e.cfg.MaxConns)
		}
		if e.cfg.MaxConnsPerPeer > 0 && e.perPeer[c.remoteID] >= e.cfg.MaxConnsPerPeer {
			return CodeLimit, fmt.Sprintf("too many connections from this peer (limit %d)", e.cfg.MaxConnsPerPeer)
		}
		e.known++
		e.perPeer[c.remoteID]++
	}
	e.conns[ec] = struct{}{}
	e.handlers.Add(1)
	return CodeOK, ""
}

func (e *Endpoint) untrack(ec endpointConn) {
	c := ec.meta()
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.conns, ec)
	if c.anon {
		e.anon--
		if e.anonIP[c.ip]--; e.anonIP[c.ip] <= 0 {
			delete(e.anonIP, c.ip)
		}
		return
	}
	e.known--
	if e.perPeer[c.remoteID]--; e.perPeer[c.remoteID] <= 0 {
		delete(e.perPeer, c.remoteID)
	}
}

// run is the isolated handler goroutine of one connection.
func (e *Endpoint) run(h ProtocolHandler, c endpointConn, log *slog.Logger) {
	start := time.Now()
	defer e.handlers.Done()
	defer e.untrack(c)
	defer countClosed(c)
	if c.meta().anon && e.cfg.AnonLifetime > 0 {
		reason := fmt.Sprintf("anonymous connection lifetime reached (limit %s)", e.cfg.AnonLifetime)
		t := time.AfterFunc(e.cfg.AnonLifetime, func() {
			log.Info("connection closed", "reason", reason)
			_ = c.Close(CodeLimit, reason)
		})
		defer t.Stop()
	}
	code, reason := CodeOK, ""
	defer func() {
		if r := recover(); r != nil {
			log.Error("handler panic", "err", fmt.Sprint(r), "stack", string(debug.Stack()))
			code, reason = CodeInternal, "internal error"
		}
		if code == CodeOK && e.drainCtx.Err() != nil {
			code, reason = CodeShutdown, "endpoint shutting down"
		}
		_ = c.Close(code, reason)
		log.Debug("connection closed", "dur", time.Since(start))
	}()
	// The handler's context ends with its connection, not with Serve's
	// context: cancelling Serve drains (AcceptStream reports
	// ErrShuttingDown, work in flight finishes) and closes the
	// connections only when DrainTimeout runs out.
	hctx, cancel := context.WithCancel(c.Context())
	defer cancel()
	if err := h.ServeConn(hctx, c); err != nil && !isConnGone(err) && !errors.Is(err, ErrShuttingDown) {
		log.Warn("handler error", "err", err)
		code, reason = CodeInternal, "internal error"
	}
}

// isConnGone reports errors that just mean the connection ended.
func isConnGone(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, net.ErrClosed) {
		return true
	}
	_, ok := AsCloseError(err)
	return ok
}

// Dial connects to addr, pinning addr.ID, and negotiates alpn. It uses the
// endpoint's UDP socket. The remote's identity, when known to this node's
// IdentityProvider, is available from Conn.Identity.
func (e *Endpoint) Dial(ctx context.Context, addr Addr, alpn string) (Conn, error) {
	if e.isClosed() {
		return nil, ErrClosed
	}
	uaddr, err := net.ResolveUDPAddr("udp", addr.Host)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", addr.Host, err)
	}
	qc, err := e.tr.Dial(ctx, uaddr, clientTLS(e.cert, addr.ID, alpn), e.qconf)
	if err != nil {
		if errors.Is(err, ErrNodeIDMismatch) {
			return nil, fmt.Errorf("dial %s: %w", addr, ErrNodeIDMismatch)
		}
		var he *quic.HandshakeTimeoutError
		var ie *quic.IdleTimeoutError // what quic-go reports when the handshake hears nothing
		if errors.As(err, &he) || errors.As(err, &ie) {
			return nil, fmt.Errorf("dial %s: no answer within %s (node unreachable?)", addr, e.cfg.HandshakeTimeout)
		}
		var te *quic.TransportError
		if errors.As(err, &te) && te.ErrorCode == 0x100+120 { // TLS alert no_application_protocol
			return nil, fmt.Errorf("dial %s: node does not serve %s", addr, alpn)
		}
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	state := qc.ConnectionState().TLS
	id, err := verifiedNodeID(state)
	if err != nil || id != addr.ID {
		qc.CloseWithError(quic.ApplicationErrorCode(CodeForbidden), "node id mismatch")
		return nil, fmt.Errorf("dial %s: %w", addr, ErrNodeIDMismatch)
	}
	c := &quicConn{qc: qc, connMeta: connMeta{alpn: state.NegotiatedProtocol, remoteID: id, ident: e.resolve(id)}}
	if err := e.trackDialed(c); err != nil {
		return nil, err
	}
	return c, nil
}

// trackDialed registers a connection this endpoint dialed, so that Close
// and Shutdown end it, and forgets it once it ends.
func (e *Endpoint) trackDialed(c endpointConn) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		_ = c.Close(CodeShutdown, "endpoint shutting down")
		return ErrClosed
	}
	e.dialed[c] = struct{}{}
	e.mu.Unlock()
	context.AfterFunc(c.Context(), func() {
		e.mu.Lock()
		delete(e.dialed, c)
		e.mu.Unlock()
	})
	return nil
}

// Reauthorize re-resolves the identity of every live accepted connection and
// closes, with CodeRevoked, those whose peer no longer passes its ALPN's
// AccessControl, and those whose known identity was removed, disabled or
// changed (a handler holds the identity resolved at accept, so a changed
// peer must reconnect to be seen with its new scopes). Peer stores call it
// after each reload so that revocation reaches open connections.
func (e *Endpoint) Reauthorize() int {
	e.mu.Lock()
	e.gen++
	var revoke []endpointConn
	var reasons []string
	for ec := range e.conns {
		c := ec.meta()
		rt, ok := e.routes[c.alpn]
		if !ok {
			continue
		}
		now := e.resolve(c.remoteID)
		if err := rt.acl.Check(now); err != nil {
			revoke = append(revoke, ec)
			reasons = append(reasons, fmt.Sprintf("peer not authorized for %s: %s", c.alpn, err.Error()))
		} else if c.ident != nil && !c.ident.Equal(now) {
			revoke = append(revoke, ec)
			reasons = append(reasons, "peer access changed; reconnect")
		}
	}
	e.mu.Unlock()
	for i, c := range revoke {
		m := c.meta()
		e.log.Warn("connection revoked", "alpn", m.alpn, "peer", peerName(m.remoteID), "remote", c.RemoteAddr().String(), "reason", reasons[i])
		_ = c.Close(CodeRevoked, reasons[i])
	}
	return len(revoke)
}

// ConnCount returns the number of live accepted connections.
func (e *Endpoint) ConnCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.conns)
}

// Shutdown stops accepting, tells handlers to drain (AcceptStream returns
// ErrShuttingDown), waits for them until ctx is done, then closes every
// remaining connection and the socket.
func (e *Endpoint) Shutdown(ctx context.Context) error {
	return e.shutdown(ctx, true)
}

// Close closes every connection and the socket at once.
func (e *Endpoint) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = e.shutdown(ctx, true) // reports only that handlers were cut off, which Close means
	return nil
}

func (e *Endpoint) shutdown(ctx context.Context, waitServe bool) error {
	e.mu.Lock()
	already := e.closed
	e.closed = true
	ln := e.listener
	serveDone := e.serveReturn
	e.mu.Unlock()
	if already {
		<-e.closedCh
		return nil
	}
	// The listener stays open while draining: accept closes new
	// connections with CodeShutdown at once instead of leaving dials to
	// time out.
	e.startDrain()
	done := make(chan struct{})
	go func() { e.handlers.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	default:
		select {
		case <-done:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	// Closing says goodbye to every peer, dialed ones included, so that
	// none waits out its idle timeout.
	e.mu.Lock()
	conns := make([]endpointConn, 0, len(e.conns)+len(e.dialed))
	for c := range e.conns {
		conns = append(conns, c)
	}
	for c := range e.dialed {
		conns = append(conns, c)
	}
	e.mu.Unlock()
	for _, c := range conns {
		_ = c.Close(CodeShutdown, "endpoint shutting down")
	}
	if err != nil {
		<-done // handlers return once their connections are closed
	}
	e.closeOnce.Do(func() {
		if ln != nil {
			_ = ln.Close()
		}
		if e.tcpLn != nil {
			_ = e.tcpLn.Close()
			e.mu.Lock()
			for raw := range e.tcpPending {
				_ = raw.Close()
			}
			e.mu.Unlock()
			e.tcpWG.Wait()
		}
		_ = e.tr.Close()
		_ = e.udp.Close()
		close(e.closedCh)
	})
	if waitServe && serveDone != nil {
		<-serveDone
	}
	return err
}

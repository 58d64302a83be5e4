package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/quicconn"
	mdns "github.com/miekg/dns"
	"github.com/quic-go/quic-go"
)

// paddingBlock is the block size responses are padded to (RFC 8467
// section 4.1, Block-Length Padding: 468 octets for responses).
const paddingBlock = 468

// ALPN returns the DoQ ALPN.
func (s *Server) ALPN() []string { return []string{ALPN} }

// ServeConn serves one DoQ connection: each client-opened stream carries one
// length-prefixed query ended by FIN and gets one answer ended by FIN (RFC
// 9250 section 4.2). At most Config.MaxStreams queries of the connection are
// in progress at once; a violation of RFC 9250 closes the connection with
// DOQ_PROTOCOL_ERROR and a reason.
func (s *Server) ServeConn(ctx context.Context, conn core.Conn) error {
	cctx := conn.Context()
	slots := make(chan struct{}, s.cfg.MaxStreams)
	var wg sync.WaitGroup
	var err error
	for {
		select {
		case slots <- struct{}{}:
		case <-cctx.Done():
			wg.Wait()
			return nil
		}
		var st core.Stream
		st, err = conn.AcceptStream(ctx)
		if err != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			s.serveStream(cctx, conn, st)
		}()
	}
	// Let the queries in progress finish (a drain), then say goodbye.
	wg.Wait()
	if errors.Is(err, core.ErrShuttingDown) {
		// The last answers are written but maybe not yet delivered: a
		// CONNECTION_CLOSE now would discard them. Give the client a moment
		// to receive them (or to close first), then say goodbye.
		t := time.NewTimer(closeGrace)
		select {
		case <-cctx.Done():
		case <-t.C:
		}
		t.Stop()
		_ = conn.Close(CodeNoError, "server shutting down")
	}
	return nil
}

// closeGrace is how long a draining server waits, after its last answer on
// a connection, before it closes that connection.
const closeGrace = 500 * time.Millisecond

func (s *Server) serveStream(ctx context.Context, conn core.Conn, st core.Stream) {
	defer st.Close()
	_ = st.SetReadDeadline(time.Now().Add(s.cfg.QueryTimeout))
	wire, err := ReadQuery(st, s.cfg.MaxQuerySize)
	if err != nil {
		var se *quic.StreamError
		switch {
		case ctx.Err() != nil:
		case errors.As(err, &se) && se.Remote:
			// The client cancelled (RFC 9250 section 4.3.1): abandon the
			// transaction and say so.
			resetStream(st, CodeRequestCancelled)
		case errors.Is(err, os.ErrDeadlineExceeded):
			s.protocolError(conn, fmt.Sprintf("query and FIN not received within %s", s.cfg.QueryTimeout))
		case errors.Is(err, ErrFrameTooLarge), errors.Is(err, ErrShortFrame), errors.Is(err, ErrTrailingData), errors.Is(err, ErrEmptyFrame):
			s.protocolError(conn, trimPrefix(err))
		default:
			resetStream(st, CodeInternalError)
		}
		return
	}
	q, err := unpackDoQQuery(wire)
	if err != nil {
		s.protocolError(conn, trimPrefix(err))
		return
	}
	select {
	case s.inflight <- struct{}{}:
	case <-ctx.Done():
		return
	}
	resp := s.answer(ctx, &Request{Msg: q, Transport: TransportDoQ, RemoteAddr: conn.RemoteAddr(), Identity: conn.Identity()})
	<-s.inflight
	out, err := packDoQ(resp)
	if err != nil {
		s.log.Warn("dns pack response", "remote", addrString(conn.RemoteAddr()), "err", err)
		resetStream(st, CodeInternalError)
		return
	}
	_ = st.SetWriteDeadline(time.Now().Add(s.cfg.QueryTimeout))
	if _, err := st.Write(AppendMessage(make([]byte, 0, len(out)+2), out)); err != nil {
		resetStream(st, CodeInternalError)
		return
	}
	_ = st.CloseWrite()
}

// unpackDoQQuery checks a DoQ query message: a DNS header, Message ID 0
// (RFC 9250 section 4.2.1), a query rather than a response, and no
// edns-tcp-keepalive option (section 5.5.2). Any failure is a protocol
// error.
func unpackDoQQuery(wire []byte) (*mdns.Msg, error) {
	if len(wire) < 12 {
		return nil, fmt.Errorf("%w: message of %d bytes, shorter than a DNS header", ErrProtocol, len(wire))
	}
	if id := binary.BigEndian.Uint16(wire); id != 0 {
		return nil, fmt.Errorf("%w: message id %d (RFC 9250 section 4.2.1)", ErrNonZeroID, id)
	}
	q := new(mdns.Msg)
	if err := q.Unpack(wire); err != nil {
		return nil, fmt.Errorf("%w: malformed query: %v", ErrProtocol, err)
	}
	if q.Response {
		return nil, fmt.Errorf("%w: a response where a query belongs", ErrProtocol)
	}
	if opt := q.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if o.Option() == mdns.EDNS0TCPKEEPALIVE {
				return nil, fmt.Errorf("%w: edns-tcp-keepalive option (RFC 9250 section 5.5.2)", ErrProtocol)
			}
		}
	}
	return q, nil
}

// packDoQ packs a DoQ response, padded with the EDNS(0) Padding option to a
// multiple of 468 bytes when it carries EDNS(0) (RFC 9250 section 5.4, RFC
// 8467 section 4.1). Responses without EDNS(0) (the client sent none) cannot
// carry padding (RFC 6891 section 7).
func packDoQ(resp *mdns.Msg) ([]byte, error) {
	resp.Truncate(MaxMessageSize)
	resp.Compress = true
	wire, err := resp.Pack()
	if err != nil {
		return nil, err
	}
	opt := resp.IsEdns0()
	if opt == nil {
		return wire, nil
	}
	l := len(wire) + 4 // option code and length
	n := (paddingBlock - l%paddingBlock) % paddingBlock
	if l+n > MaxMessageSize {
		return wire, nil
	}
	opt.Option = append(opt.Option, &mdns.EDNS0_PADDING{Padding: make([]byte, n)})
	return resp.Pack()
}

// protocolError closes conn with DOQ_PROTOCOL_ERROR (RFC 9250 section
// 4.3.3).
func (s *Server) protocolError(conn core.Conn, reason string) {
	s.log.Info("doq protocol error", "remote", addrString(conn.RemoteAddr()), "reason", reason)
	_ = conn.Close(CodeProtocolError, reason)
}

// resetStream abandons a stream in both directions with a DoQ code.
func resetStream(st core.Stream, code uint64) {
	if qs, ok := quicconn.RawStream(st); ok {
		qs.CancelWrite(quic.StreamErrorCode(code))
		qs.CancelRead(quic.StreamErrorCode(code))
		return
	}
	_ = st.Close()
}

// trimPrefix drops the package prefix from an error for a reason sent on
// the wire.
func trimPrefix(err error) string {
	const p = "alknet/dns: "
	s := err.Error()
	if len(s) > len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}

var _ core.ProtocolHandler = (*Server)(nil)

// QueueStreams implements core.StreamQueuer: resolvers pipeline queries on
// one connection, so a query over core's anonymous stream cap waits for a
// slot instead of being reset (RFC 9250 lets a client send many queries on
// one connection at once).
func (s *Server) QueueStreams() bool { return true }

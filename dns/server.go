package dns

import (
	"context"
	"log/slog"
	"net"

	"github.com/alkdev/alknet/core"
	mdns "github.com/miekg/dns"
)

// Transport names, as Request.Transport carries them.
const (
	TransportDoQ = "doq"
	TransportUDP = "udp"
	TransportTCP = "tcp"
)

// Request is one query as a Handler sees it.
type Request struct {
	// Msg is the query. The handler must not change it.
	Msg *mdns.Msg
	// Transport is TransportDoQ, TransportUDP or TransportTCP.
	Transport string
	// RemoteAddr is the client's address.
	RemoteAddr net.Addr
	// Identity is the DoQ caller's identity as the endpoint resolved it;
	// nil for anonymous callers and for classic DNS.
	Identity *core.Identity
}

// Handler answers DNS queries. The Server has checked the query (one
// question, opcode QUERY, EDNS version 0) and fixes up the response: ID,
// flags, EDNS(0), truncation for UDP and padding for DoQ. Returning an
// error sends SERVFAIL.
type Handler interface {
	ServeDNS(ctx context.Context, req *Request) (*mdns.Msg, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, req *Request) (*mdns.Msg, error)

// ServeDNS calls f.
func (f HandlerFunc) ServeDNS(ctx context.Context, req *Request) (*mdns.Msg, error) {
	return f(ctx, req)
}

// Server answers DNS over QUIC as a core.ProtocolHandler (ALPN "doq") and
// classic DNS over UDP and TCP through ListenClassic, with one Handler.
type Server struct {
	cfg      Config
	log      *slog.Logger
	inflight chan struct{}
}

// NewServer checks cfg and fills in its defaults.
func NewServer(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Server{cfg: cfg, log: cfg.Logger, inflight: make(chan struct{}, cfg.MaxInflight)}, nil
}

// answer runs the handler for a query and returns the response with the
// header, EDNS(0) and sections a client expects, not yet sized for its
// transport. It never returns nil.
func (s *Server) answer(ctx context.Context, req *Request) *mdns.Msg {
	q := req.Msg
	opt := q.IsEdns0()
	var resp *mdns.Msg
	switch {
	case q.Opcode != mdns.OpcodeQuery:
		resp = reply(q, mdns.RcodeNotImplemented)
	case len(q.Question) != 1:
		resp = reply(q, mdns.RcodeFormatError)
	case opt != nil && opt.Version() != 0:
		resp = reply(q, mdns.RcodeBadVers)
	case q.Question[0].Qtype == mdns.TypeAXFR || q.Question[0].Qtype == mdns.TypeIXFR:
		resp = reply(q, mdns.RcodeRefused) // zone transfers are not offered
	default:
		hctx, cancel := context.WithTimeout(ctx, s.cfg.HandlerTimeout)
		var err error
		resp, err = s.cfg.Handler.ServeDNS(hctx, req)
		cancel()
		if err != nil || resp == nil {
			if err != nil && ctx.Err() == nil {
				s.log.Debug("dns handler", "remote", addrString(req.RemoteAddr), "err", err)
			}
			resp = reply(q, mdns.RcodeServerFailure)
		}
	}
	resp.Id = q.Id
	resp.Response = true
	resp.Opcode = q.Opcode
	resp.RecursionDesired = q.RecursionDesired
	resp.CheckingDisabled = q.CheckingDisabled
	if len(resp.Question) == 0 && len(q.Question) > 0 {
		resp.Question = []mdns.Question{q.Question[0]}
	}
	// Our own OPT, or none when the client sent none (RFC 6891 section 7).
	extra := resp.Extra[:0:0]
	for _, rr := range resp.Extra {
		if rr.Header().Rrtype != mdns.TypeOPT {
			extra = append(extra, rr)
		}
	}
	resp.Extra = extra
	if opt != nil {
		o := &mdns.OPT{Hdr: mdns.RR_Header{Name: ".", Rrtype: mdns.TypeOPT}}
		o.SetUDPSize(uint16(s.cfg.UDPSize))
		if opt.Do() {
			o.SetDo()
		}
		resp.Extra = append(resp.Extra, o)
	} else if resp.Rcode > 0xF {
		resp.Rcode = mdns.RcodeServerFailure
	}
	resp.Compress = true
	return resp
}

// reply is an empty response to q with rcode.
func reply(q *mdns.Msg, rcode int) *mdns.Msg {
	m := new(mdns.Msg)
	m.SetRcode(q, rcode)
	return m
}

// udpLimit is the largest UDP response for query q (RFC 6891 section 6.2.5,
// RFC 1035 section 4.2.1).
func (s *Server) udpLimit(q *mdns.Msg) int {
	if opt := q.IsEdns0(); opt != nil {
		return max(mdns.MinMsgSize, min(int(opt.UDPSize()), s.cfg.UDPSize))
	}
	return mdns.MinMsgSize
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

package pkarr

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/miekg/dns"
)

const (
	// MaxPacketSize is the largest DNS packet (the BEP44 "v" value) a
	// signed packet may carry, in bytes, as pkarr defines it.
	MaxPacketSize = 1000
	// maxBencodedV is BEP44's limit on the bencoded "v" ("<len>:<packet>"),
	// which storing DHT nodes enforce; the encoder keeps under it.
	maxBencodedV = 1000
	// DefaultTTL is the TTL of the records when Record.TTL is zero.
	DefaultTTL = 300 * time.Second
	// maxTTL caps the TTL written into a packet (one day).
	maxTTL = 24 * time.Hour
	// maxAddrs and maxALPNs bound what a decoded record may list; a
	// 1000-byte packet cannot hold more of either anyway.
	maxAddrs = 64
	maxALPNs = 64
)

// Record is what a node publishes about itself: the addresses it can be
// dialed on and the ALPNs it serves. In the packet it becomes A and AAAA
// records for the addresses and an SVCB record (RFC 9460) carrying the port
// and the ALPNs, all at the name <z-base-32 node id>.
type Record struct {
	// ID is the node's key; Sign fills it in from the secret key.
	ID core.NodeID
	// Seq is the BEP44 sequence number: the time of signing in
	// microseconds since the Unix epoch. Must be positive to be signed.
	Seq int64
	// Addrs are the node's UDP addresses (IP literal and port), most
	// preferred first.
	Addrs []netip.AddrPort
	// ALPNs the node serves, most preferred first. May be empty.
	ALPNs []string
	// TTL of the DNS records. Zero means DefaultTTL; capped at one day.
	TTL time.Duration
}

// Time returns the signing time encoded in Seq.
func (r Record) Time() time.Time { return time.UnixMicro(r.Seq).UTC() }

// NodeAddrs returns the record's addresses as node addresses pinned to
// the record's key.
func (r Record) NodeAddrs() []core.Addr {
	out := make([]core.Addr, 0, len(r.Addrs))
	for _, a := range r.Addrs {
		out = append(out, core.Addr{ID: r.ID, Host: a.String()})
	}
	return out
}

// Name returns the DNS label of a node id: its 52 z-base-32 characters.
func Name(id core.NodeID) string { return id.String() }

func (r Record) validate() error {
	if len(r.Addrs) == 0 {
		return fmt.Errorf("%w: no address", ErrInvalidRecord)
	}
	if len(r.Addrs) > maxAddrs {
		return fmt.Errorf("%w: %d addresses, at most %d", ErrInvalidRecord, len(r.Addrs), maxAddrs)
	}
	for _, a := range r.Addrs {
		if !a.IsValid() || a.Port() == 0 || a.Addr().Zone() != "" || a.Addr().IsUnspecified() {
			return fmt.Errorf("%w: bad address %s", ErrInvalidRecord, a)
		}
	}
	if len(r.ALPNs) > maxALPNs {
		return fmt.Errorf("%w: %d alpns, at most %d", ErrInvalidRecord, len(r.ALPNs), maxALPNs)
	}
	for _, p := range r.ALPNs {
		if p == "" || len(p) > 255 || strings.ContainsRune(p, ',') {
			return fmt.Errorf("%w: bad alpn %q", ErrInvalidRecord, p)
		}
	}
	if r.TTL < 0 {
		return fmt.Errorf("%w: negative ttl", ErrInvalidRecord)
	}
	return nil
}

func (r Record) ttlSeconds() uint32 {
	ttl := r.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	ttl = min(ttl, maxTTL)
	return uint32(ttl / time.Second)
}

// RRs returns the record as DNS resource records named
// <z-base-32 node id>.<zone> ("" or "." for the packet's own names, which
// end at the node id). It is what a node's authoritative DNS server serves
// for its own record: A and AAAA for each address, and one SVCB record
// (priority 1, target ".", alpn and port) per distinct port, with address
// hints when the ports differ.
func (r Record) RRs(zone string) ([]dns.RR, error) {
	if err := r.validate(); err != nil {
		return nil, err
	}
	owner := Name(r.ID) + "."
	if z := strings.Trim(zone, "."); z != "" {
		if _, ok := dns.IsDomainName(z); !ok {
			return nil, fmt.Errorf("%w: bad zone %q", ErrInvalidRecord, zone)
		}
		owner = Name(r.ID) + "." + dns.Fqdn(strings.ToLower(z))
	}
	ttl := r.ttlSeconds()
	hdr := func(t uint16) dns.RR_Header {
		return dns.RR_Header{Name: owner, Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
	}
	var out []dns.RR
	var ips []netip.Addr
	var ports []uint16
	byPort := map[uint16][]netip.Addr{}
	for _, a := range r.Addrs {
		ip := a.Addr().Unmap()
		if !slices.Contains(ips, ip) {
			ips = append(ips, ip)
			if ip.Is4() {
				out = append(out, &dns.A{Hdr: hdr(dns.TypeA), A: net.IP(ip.AsSlice())})
			} else {
				out = append(out, &dns.AAAA{Hdr: hdr(dns.TypeAAAA), AAAA: net.IP(ip.AsSlice())})
			}
		}
		if !slices.Contains(ports, a.Port()) {
			ports = append(ports, a.Port())
		}
		if !slices.Contains(byPort[a.Port()], ip) {
			byPort[a.Port()] = append(byPort[a.Port()], ip)
		}
	}
	for i, port := range ports {
		svcb := &dns.SVCB{Hdr: hdr(dns.TypeSVCB), Priority: uint16(i + 1), Target: "."}
		if len(r.ALPNs) > 0 {
			svcb.Value = append(svcb.Value, &dns.SVCBAlpn{Alpn: slices.Clone(r.ALPNs)})
		}
		svcb.Value = append(svcb.Value, &dns.SVCBPort{Port: port})
		if len(ports) > 1 {
			var v4, v6 []net.IP
			for _, ip := range byPort[port] {
				if ip.Is4() {
					v4 = append(v4, net.IP(ip.AsSlice()))
				} else {
					v6 = append(v6, net.IP(ip.AsSlice()))
				}
			}
			if len(v4) > 0 {
				svcb.Value = append(svcb.Value, &dns.SVCBIPv4Hint{Hint: v4})
			}
			if len(v6) > 0 {
				svcb.Value = append(svcb.Value, &dns.SVCBIPv6Hint{Hint: v6})
			}
		}
		out = append(out, svcb)
	}
	return out, nil
}

// EncodePacket returns the DNS packet of r: a response with the records of
// RRs("") in its answer section. It fails with ErrTooLarge when the packet
// would not fit in a BEP44 value.
func EncodePacket(r Record) ([]byte, error) {
	rrs, err := r.RRs("")
	if err != nil {
		return nil, err
	}
	m := &dns.Msg{Answer: rrs, Compress: true}
	m.Response = true
	m.Authoritative = true
	b, err := m.Pack()
	if err != nil {
		return nil, fmt.Errorf("%w: pack: %v", ErrInvalidRecord, err)
	}
	if len(bencodedString(b)) > maxBencodedV {
		return nil, fmt.Errorf("%w: %d bytes (%d addresses, %d alpns)", ErrTooLarge, len(b), len(r.Addrs), len(r.ALPNs))
	}
	return b, nil
}

// DecodePacket reads the record of node id from a DNS packet v. Only
// answers named <z-base-32 id> (the packet's apex) count: A and AAAA give
// the addresses, SVCB (or HTTPS) records with target "." give the port,
// the ALPNs and, when present, address hints that replace the A/AAAA set
// for that port. Other names and types are ignored. Seq is left zero.
func DecodePacket(id core.NodeID, v []byte) (Record, error) {
	if len(v) > MaxPacketSize {
		return Record{}, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(v), MaxPacketSize)
	}
	var m dns.Msg
	if err := m.Unpack(v); err != nil {
		return Record{}, fmt.Errorf("%w: dns: %v", ErrMalformed, err)
	}
	rec := Record{ID: id}
	apex := Name(id) + "."
	var ips []netip.Addr
	type svc struct {
		prio  uint16
		port  uint16
		alpns []string
		hints []netip.Addr
	}
	var svcs []svc
	var minTTL uint32
	for _, rr := range m.Answer {
		h := rr.Header()
		if h.Class != dns.ClassINET || !strings.EqualFold(h.Name, apex) {
			continue
		}
		var s *dns.SVCB
		switch x := rr.(type) {
		case *dns.A:
			if ip, ok := netip.AddrFromSlice(x.A); ok {
				ips = appendAddr(ips, ip.Unmap())
			}
		case *dns.AAAA:
			if ip, ok := netip.AddrFromSlice(x.AAAA); ok {
				ips = appendAddr(ips, ip.Unmap())
			}
		case *dns.SVCB:
			s = x
		case *dns.HTTPS:
			s = &x.SVCB
		default:
			continue
		}
		if minTTL == 0 || h.Ttl < minTTL {
			minTTL = h.Ttl
		}
		if s == nil || s.Priority == 0 || (s.Target != "." && !strings.EqualFold(s.Target, apex)) {
			continue
		}
		one := svc{prio: s.Priority}
		for _, kv := range s.Value {
			switch p := kv.(type) {
			case *dns.SVCBAlpn:
				one.alpns = p.Alpn
			case *dns.SVCBPort:
				one.port = p.Port
			case *dns.SVCBIPv4Hint:
				for _, ip := range p.Hint {
					if a, ok := netip.AddrFromSlice(ip); ok {
						one.hints = appendAddr(one.hints, a.Unmap())
					}
				}
			case *dns.SVCBIPv6Hint:
				for _, ip := range p.Hint {
					if a, ok := netip.AddrFromSlice(ip); ok {
						one.hints = appendAddr(one.hints, a.Unmap())
					}
				}
			}
		}
		if one.port != 0 {
			svcs = append(svcs, one)
		}
	}
	slices.SortStableFunc(svcs, func(a, b svc) int { return int(a.prio) - int(b.prio) })
	for _, s := range svcs {
		set := ips
		if len(s.hints) > 0 {
			set = s.hints
		}
		for _, ip := range set {
			if ip.IsUnspecified() || ip.Zone() != "" {
				continue
			}
			ap := netip.AddrPortFrom(ip, s.port)
			if !slices.Contains(rec.Addrs, ap) && len(rec.Addrs) < maxAddrs {
				rec.Addrs = append(rec.Addrs, ap)
			}
		}
		for _, p := range s.alpns {
			if p != "" && !slices.Contains(rec.ALPNs, p) && len(rec.ALPNs) < maxALPNs {
				rec.ALPNs = append(rec.ALPNs, p)
			}
		}
	}
	rec.TTL = time.Duration(minTTL) * time.Second
	return rec, nil
}

func appendAddr(s []netip.Addr, a netip.Addr) []netip.Addr {
	if slices.Contains(s, a) || len(s) >= maxAddrs {
		return s
	}
	return append(s, a)
}

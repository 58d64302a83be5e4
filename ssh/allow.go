package ssh

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"path"
	"strconv"
	"strings"
)

// Rule is one entry of a forwarding allowlist: a host pattern and a port
// range, allowing or (with Deny) denying the destinations it matches.
type Rule struct {
	Deny bool
	// Exactly one of Prefix and Glob is set.
	Prefix netip.Prefix // an IP or CIDR; matches the address that is dialed
	Glob   string       // a host name pattern (path.Match syntax, lower case); matches the name the client asked for
	// MinPort..MaxPort, inclusive; 1..65535 for "any".
	MinPort, MaxPort uint16
}

// ParseRule parses "[!]HOST[:PORTS]". HOST is an IP address, a CIDR
// ("10.0.0.0/8"; IPv6 in brackets when a port follows: "[fd00::/8]:22") or a
// host name glob ("*.example.com", "db?.internal", "*"); PORTS is "*", "N"
// or "N-M" and defaults to every port. A leading "!" makes it a deny rule.
func ParseRule(s string) (Rule, error) {
	orig := s
	bad := func(why string) (Rule, error) {
		return Rule{}, fmt.Errorf("%w %q: %s", ErrInvalidRule, orig, why)
	}
	var r Rule
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(s, "!"); ok {
		r.Deny = true
		s = rest
	}
	host, ports := s, ""
	switch {
	case strings.HasPrefix(s, "["):
		end := strings.Index(s, "]")
		if end < 0 {
			return bad("missing ]")
		}
		host = s[1:end]
		rest := s[end+1:]
		if rest != "" {
			p, ok := strings.CutPrefix(rest, ":")
			if !ok {
				return bad("expected :PORTS after ]")
			}
			ports = p
		}
	case strings.Count(s, ":") == 1:
		host, ports, _ = strings.Cut(s, ":")
	}
	if host == "" {
		return bad("empty host")
	}
	r.MinPort, r.MaxPort = 1, 65535
	if ports != "" && ports != "*" {
		lo, hi, isRange := strings.Cut(ports, "-")
		a, err := strconv.ParseUint(lo, 10, 16)
		if err != nil || a == 0 {
			return bad("bad port " + lo)
		}
		b := a
		if isRange {
			b, err = strconv.ParseUint(hi, 10, 16)
			if err != nil || b == 0 || b < a {
				return bad("bad port range " + ports)
			}
		}
		r.MinPort, r.MaxPort = uint16(a), uint16(b)
	}
	if strings.Contains(host, "/") {
		p, err := netip.ParsePrefix(host)
		if err != nil {
			return bad("bad CIDR")
		}
		r.Prefix = p.Masked()
		return r, nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.Unmap()
		r.Prefix = netip.PrefixFrom(ip, ip.BitLen())
		return r, nil
	}
	g := strings.TrimSuffix(strings.ToLower(host), ".")
	if _, err := path.Match(g, ""); err != nil || strings.ContainsAny(g, "/ ") {
		return bad("bad host pattern")
	}
	r.Glob = g
	return r, nil
}

// ParseRules parses each string with ParseRule.
func ParseRules(ss []string) ([]Rule, error) {
	out := make([]Rule, 0, len(ss))
	for _, s := range ss {
		r, err := ParseRule(s)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// String returns the rule in ParseRule syntax.
func (r Rule) String() string {
	var b strings.Builder
	if r.Deny {
		b.WriteByte('!')
	}
	host := r.Glob
	if r.Prefix.IsValid() {
		if r.Prefix.IsSingleIP() {
			host = r.Prefix.Addr().String()
		} else {
			host = r.Prefix.String()
		}
		if r.Prefix.Addr().Is6() {
			host = "[" + host + "]"
		}
	}
	b.WriteString(host)
	switch {
	case r.MinPort == 1 && r.MaxPort == 65535:
		if r.Prefix.IsValid() && r.Prefix.Addr().Is6() {
			b.WriteString(":*")
		}
	case r.MinPort == r.MaxPort:
		b.WriteString(":" + strconv.Itoa(int(r.MinPort)))
	default:
		b.WriteString(":" + strconv.Itoa(int(r.MinPort)) + "-" + strconv.Itoa(int(r.MaxPort)))
	}
	return b.String()
}

// matches reports whether r applies to a connection to ip:port that the
// client asked for by name (the name is the IP's text when it asked by
// address).
func (r Rule) matches(name string, ip netip.Addr, port uint16) bool {
	if port < r.MinPort || port > r.MaxPort {
		return false
	}
	if r.Prefix.IsValid() {
		return ip.IsValid() && r.Prefix.Contains(ip)
	}
	ok, _ := path.Match(r.Glob, name)
	return ok
}

// CanonicalDest returns the address a forwarding destination is checked
// and dialed as, so that the rules see the host that is actually reached:
// an IPv4-mapped IPv6 address is unmapped, and the unspecified addresses
// 0.0.0.0 and ::, which connect to the local host, become 127.0.0.1 and ::1.
// ok is false for destinations refused outright whatever the rules say: an
// address with a zone ("fe80::1%eth0", "::1%lo"; no rule can name one) and
// the rest of 0.0.0.0/8 ("this network", not a destination).
func CanonicalDest(ip netip.Addr) (netip.Addr, bool) {
	if !ip.IsValid() || ip.Zone() != "" {
		return netip.Addr{}, false
	}
	ip = ip.Unmap()
	switch {
	case ip == netip.IPv4Unspecified():
		return netip.AddrFrom4([4]byte{127, 0, 0, 1}), true
	case ip == netip.IPv6Unspecified():
		return netip.IPv6Loopback(), true
	case ip.Is4() && ip.As4()[0] == 0:
		return netip.Addr{}, false
	}
	return ip, true
}

// Allowed reports whether rules let a client reach ip:port, asked for as
// name. The address is first made canonical (CanonicalDest); an address
// refused there is never allowed. The first matching rule decides; no
// match is a deny. A name glob cannot admit an address that an IP or CIDR
// rule denies: when a glob allows, the address is also checked against the
// IP and CIDR rules alone, and the first of them that matches it decides
// (none matching leaves the glob's allow). The client controls what its
// names resolve to, so this is what keeps "*.example.com" from reaching a
// denied "!127.0.0.0/8" through a DNS record. An empty list allows
// everything.
func Allowed(rules []Rule, name string, ip netip.Addr, port uint16) bool {
	if len(rules) == 0 {
		return true
	}
	if ip.IsValid() {
		var ok bool
		if ip, ok = CanonicalDest(ip); !ok {
			return false
		}
	}
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	for _, r := range rules {
		if !r.matches(name, ip, port) {
			continue
		}
		if r.Deny || r.Prefix.IsValid() || !ip.IsValid() {
			return !r.Deny
		}
		// A glob allowed: the address rules may still veto the address.
		for _, a := range rules {
			if a.Prefix.IsValid() && a.matches(name, ip, port) {
				return !a.Deny
			}
		}
		return true
	}
	return false
}

// Resolver resolves host names to addresses; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// dialAllowed connects to host:port. With rules, the name is resolved here,
// once, every address it resolves to is checked, and only the checked
// addresses are dialed (as IP literals), so a name cannot be re-resolved to
// somewhere else between check and connect.
func dialAllowed(ctx context.Context, d *net.Dialer, res Resolver, rules []Rule, host string, port uint16) (net.Conn, error) {
	if len(rules) == 0 {
		return d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(int(port))))
	}
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else {
		// A name is first checked without an address so that a deny-by-name
		// rule refuses before any DNS query leaves the node.
		if !anyNameCanMatch(rules, host, port) {
			return nil, ErrDestinationDenied
		}
		if res == nil {
			res = net.DefaultResolver
		}
		ips, err = res.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, err
		}
	}
	var firstErr error
	tried := false
	for _, ip := range ips {
		ip, ok := CanonicalDest(ip)
		if !ok || !Allowed(rules, host, ip, port) {
			continue
		}
		tried = true
		c, err := d.DialContext(ctx, "tcp", netip.AddrPortFrom(ip, port).String())
		if err == nil {
			return c, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if !tried {
		return nil, ErrDestinationDenied
	}
	return nil, firstErr
}

// anyNameCanMatch reports whether some address could still be allowed for
// name: false when the first rule matching by name alone is a deny, or when
// no rule can match at all.
func anyNameCanMatch(rules []Rule, host string, port uint16) bool {
	name := strings.TrimSuffix(strings.ToLower(host), ".")
	for _, r := range rules {
		if port < r.MinPort || port > r.MaxPort {
			continue
		}
		if r.Prefix.IsValid() {
			return true // decided per resolved address
		}
		if ok, _ := path.Match(r.Glob, name); ok {
			return !r.Deny
		}
	}
	return false
}

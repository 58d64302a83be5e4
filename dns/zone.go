package dns

import (
	"fmt"
	"slices"
	"strings"

	mdns "github.com/miekg/dns"
)

// maxChase bounds how many CNAMEs one lookup follows inside local zones.
const maxChase = 8

// Zones is an immutable snapshot of authoritative data: every zone this
// server answers for, indexed for lookups. It is safe for concurrent use.
// A Store keeps one current and swaps it on every change; NewZones builds
// one from records for programs without a database.
type Zones struct {
	zones map[string]*zone // by apex
	count int              // records
}

type zone struct {
	apex  string
	soa   *mdns.SOA
	nodes map[string]*node    // names that own records
	ents  map[string]struct{} // empty non-terminals: no records, records below
}

type node struct {
	sets map[uint16][]mdns.RR
}

// NewZones indexes rrs. Each SOA record makes its owner the apex of a zone;
// every other record belongs to the zone with the longest apex that holds
// its name. A record outside every zone, a second SOA at an apex, or a CNAME
// beside other data is an error. The records are not copied: the caller
// must not change them afterwards.
func NewZones(rrs []mdns.RR) (*Zones, error) {
	zs := &Zones{zones: map[string]*zone{}}
	for _, rr := range rrs {
		soa, ok := rr.(*mdns.SOA)
		if !ok {
			continue
		}
		apex := mdns.CanonicalName(soa.Hdr.Name)
		if _, dup := zs.zones[apex]; dup {
			return nil, fmt.Errorf("%w: two SOA records at %s", ErrConflict, apex)
		}
		zs.zones[apex] = &zone{apex: apex, soa: soa, nodes: map[string]*node{}, ents: map[string]struct{}{}}
	}
	for _, rr := range rrs {
		name := mdns.CanonicalName(rr.Header().Name)
		z := zs.zoneOf(name)
		if z == nil {
			return nil, fmt.Errorf("%w: %s", ErrNoZone, name)
		}
		n := z.nodes[name]
		if n == nil {
			n = &node{sets: map[uint16][]mdns.RR{}}
			z.nodes[name] = n
		}
		t := rr.Header().Rrtype
		n.sets[t] = append(n.sets[t], rr)
		zs.count++
	}
	for _, z := range zs.zones {
		for name, n := range z.nodes {
			if _, ok := n.sets[mdns.TypeCNAME]; ok && len(n.sets) > 1 {
				return nil, fmt.Errorf("%w: %s has a CNAME and other records", ErrConflict, name)
			}
			for a := parentName(name); a != "" && a != z.apex && mdns.IsSubDomain(z.apex, a); a = parentName(a) {
				if _, ok := z.nodes[a]; !ok {
					z.ents[a] = struct{}{}
				}
			}
		}
	}
	return zs, nil
}

// Len is the number of records.
func (zs *Zones) Len() int {
	if zs == nil {
		return 0
	}
	return zs.count
}

// Apexes lists the zones, sorted.
func (zs *Zones) Apexes() []string {
	if zs == nil {
		return nil
	}
	out := make([]string, 0, len(zs.zones))
	for a := range zs.zones {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

// Holds reports whether a zone holds name (given in any case).
func (zs *Zones) Holds(name string) bool {
	return zs.zoneOf(mdns.CanonicalName(name)) != nil
}

// zoneOf returns the zone with the longest apex that holds name
// (canonical), or nil.
func (zs *Zones) zoneOf(name string) *zone {
	if zs == nil || len(zs.zones) == 0 {
		return nil
	}
	for n := name; n != ""; n = parentName(n) {
		if z, ok := zs.zones[n]; ok {
			return z
		}
	}
	return nil
}

// parentName is name without its first label; "" after the root.
func parentName(name string) string {
	if name == "." || name == "" {
		return ""
	}
	off, end := mdns.NextLabel(name, 0)
	if end {
		return "."
	}
	return name[off:]
}

// Result is the outcome of a lookup in local zones.
type Result struct {
	// Rcode is mdns.RcodeSuccess or mdns.RcodeNameError.
	Rcode int
	// Authoritative is false for a referral below a zone cut.
	Authoritative     bool
	Answer, Ns, Extra []mdns.RR
	// Chased is the name the answer ends on when it left the local zones
	// through a CNAME ("" when it did not): a forwarding resolver may go on
	// from there.
	Chased string
}

// Lookup answers qname/qtype from the local zones. ok is false when no zone
// holds qname. It follows RFC 1034 section 4.3.2 (referrals at zone cuts,
// CNAMEs inside local zones) and RFC 4592 (wildcards); NXDOMAIN and NODATA
// carry the zone's SOA in the authority section with the negative TTL of
// RFC 2308 section 3.
func (zs *Zones) Lookup(qname string, qtype uint16) (res Result, ok bool) {
	name := mdns.CanonicalName(qname)
	z := zs.zoneOf(name)
	if z == nil {
		return Result{}, false
	}
	res.Authoritative = true
	seen := map[string]bool{}
	owner := qname // the owner name answers carry for a synthesized record
	for range maxChase {
		if seen[name] {
			break // a CNAME loop: answer what we have
		}
		seen[name] = true
		if cut := z.cutAbove(name); cut != nil {
			if len(res.Answer) > 0 {
				return res, true // the chain leaves our authority: the resolver goes on
			}
			res.Authoritative = false
			res.Ns = append(res.Ns, cut...)
			res.Extra = z.glue(cut)
			return res, true
		}
		n, synth := z.nodes[name], false
		if n == nil {
			if _, ent := z.ents[name]; ent {
				res.Ns = z.negativeSOA()
				return res, true
			}
			n = z.wildcard(name)
			if n == nil {
				res.Rcode = mdns.RcodeNameError
				res.Ns = z.negativeSOA()
				return res, true
			}
			synth = true
		}
		emit := func(rrs []mdns.RR) {
			for _, rr := range rrs {
				if synth {
					rr = mdns.Copy(rr)
					rr.Header().Name = owner
				}
				res.Answer = append(res.Answer, rr)
			}
		}
		if qtype == mdns.TypeANY {
			for _, t := range sortedTypes(n) {
				emit(n.sets[t])
			}
			return res, true
		}
		if rrs, ok := n.sets[qtype]; ok {
			emit(rrs)
			res.Extra = z.additional(rrs)
			return res, true
		}
		cname, ok := n.sets[mdns.TypeCNAME]
		if !ok {
			res.Ns = z.negativeSOA()
			return res, true
		}
		emit(cname)
		target := cname[0].(*mdns.CNAME).Target
		next := zs.zoneOf(target)
		if next == nil {
			res.Chased = target
			return res, true
		}
		z, name, owner = next, target, target
	}
	return res, true
}

// cutAbove returns the NS set of a delegation at or above name, below the
// apex, or nil.
func (z *zone) cutAbove(name string) []mdns.RR {
	labels := mdns.CountLabel(name) - mdns.CountLabel(z.apex)
	// walk from just below the apex down to name
	for i := labels; i >= 1; i-- {
		a := ancestor(name, i-1)
		if n, ok := z.nodes[a]; ok {
			if ns, ok := n.sets[mdns.TypeNS]; ok {
				return ns
			}
		}
	}
	return nil
}

// ancestor strips k leading labels off name.
func ancestor(name string, k int) string {
	for range k {
		name = parentName(name)
	}
	return name
}

// wildcard returns the source of synthesis for name (RFC 4592 section
// 3.3.1): "*." + the closest encloser, if it exists.
func (z *zone) wildcard(name string) *node {
	for ce := parentName(name); ce != "" && mdns.IsSubDomain(z.apex, ce); ce = parentName(ce) {
		_, isNode := z.nodes[ce]
		_, isENT := z.ents[ce]
		if isNode || isENT || ce == z.apex {
			return z.nodes["*."+ce]
		}
	}
	return nil
}

// negativeSOA is the SOA for the authority section of a negative answer,
// its TTL the lesser of its own and its MINIMUM field (RFC 2308 section 3).
func (z *zone) negativeSOA() []mdns.RR {
	soa := mdns.Copy(z.soa).(*mdns.SOA)
	soa.Hdr.Ttl = min(soa.Hdr.Ttl, soa.Minttl)
	return []mdns.RR{soa}
}

// glue returns in-zone addresses of the name servers of a delegation.
func (z *zone) glue(ns []mdns.RR) []mdns.RR {
	var out []mdns.RR
	for _, rr := range ns {
		out = append(out, z.addresses(rr.(*mdns.NS).Ns)...)
	}
	return out
}

// additional returns in-zone addresses of the hosts that answer records
// name (MX, SRV, NS targets).
func (z *zone) additional(rrs []mdns.RR) []mdns.RR {
	var out []mdns.RR
	for _, rr := range rrs {
		var host string
		switch r := rr.(type) {
		case *mdns.MX:
			host = r.Mx
		case *mdns.SRV:
			host = r.Target
		case *mdns.NS:
			host = r.Ns
		default:
			continue
		}
		out = append(out, z.addresses(host)...)
	}
	return out
}

func (z *zone) addresses(host string) []mdns.RR {
	n, ok := z.nodes[host]
	if !ok {
		return nil
	}
	var out []mdns.RR
	out = append(out, n.sets[mdns.TypeA]...)
	out = append(out, n.sets[mdns.TypeAAAA]...)
	return out
}

func sortedTypes(n *node) []uint16 {
	ts := make([]uint16, 0, len(n.sets))
	for t := range n.sets {
		ts = append(ts, t)
	}
	slices.Sort(ts)
	return ts
}

// inZone reports whether name is at or below apex (both canonical).
func inZone(apex, name string) bool {
	return name == apex || strings.HasSuffix(name, "."+apex) || apex == "."
}

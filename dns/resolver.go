package dns

import (
	"context"

	mdns "github.com/miekg/dns"
)

// ZoneSource gives the current zones: a Store, or a fixed *Zones.
type ZoneSource interface {
	Zones() *Zones
}

// Zones returns zs itself, so a fixed index is a ZoneSource.
func (zs *Zones) Zones() *Zones { return zs }

// Resolver is the Handler of a node: it answers authoritatively from its
// zones, sends other names to its forwarder when the client asks for
// recursion and one is set, and refuses them otherwise.
type Resolver struct {
	zones   ZoneSource
	forward Exchanger
}

// NewResolver answers from zones (nil: none) and forwards to forward (nil:
// no forwarding).
func NewResolver(zones ZoneSource, forward Exchanger) *Resolver {
	return &Resolver{zones: zones, forward: forward}
}

// ServeDNS implements Handler.
func (r *Resolver) ServeDNS(ctx context.Context, req *Request) (*mdns.Msg, error) {
	q := req.Msg
	question := q.Question[0]
	resp := new(mdns.Msg)
	resp.SetReply(q)
	resp.RecursionAvailable = r.forward != nil
	if question.Qclass != mdns.ClassINET {
		resp.Rcode = mdns.RcodeRefused
		return resp, nil
	}
	var zs *Zones
	if r.zones != nil {
		zs = r.zones.Zones()
	}
	if res, ok := zs.Lookup(question.Name, question.Qtype); ok {
		resp.Authoritative = res.Authoritative
		resp.Rcode = res.Rcode
		resp.Answer, resp.Ns, resp.Extra = res.Answer, res.Ns, res.Extra
		if res.Chased != "" && r.forward != nil && q.RecursionDesired {
			// The CNAME chain leaves our zones: finish it upstream.
			fq := new(mdns.Msg)
			fq.SetQuestion(res.Chased, question.Qtype)
			if opt := q.IsEdns0(); opt != nil {
				fq.SetEdns0(1232, opt.Do())
			}
			if fr, err := r.forward.Exchange(ctx, fq); err == nil {
				resp.Answer = append(resp.Answer, fr.Answer...)
				resp.Rcode = fr.Rcode
				if len(fr.Answer) == 0 {
					resp.Ns = fr.Ns
				}
			}
		}
		return resp, nil
	}
	if r.forward == nil || !q.RecursionDesired {
		resp.Rcode = mdns.RcodeRefused
		return resp, nil
	}
	fr, err := r.forward.Exchange(ctx, q)
	if err != nil {
		return nil, err
	}
	resp.Rcode = fr.Rcode
	resp.Answer, resp.Ns, resp.Extra = fr.Answer, fr.Ns, fr.Extra
	return resp, nil
}

var _ Handler = (*Resolver)(nil)

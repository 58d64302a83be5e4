package dns

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	mdns "github.com/miekg/dns"
)

// ForwardConfig configures a Forwarder.
type ForwardConfig struct {
	// Upstreams are tried in order: "udp://host[:port]" (port 53; a
	// truncated answer is asked again over TCP), "tcp://host[:port]" (53)
	// or "doq://host[:port]" (853, RFC 9250; the certificate is verified
	// for host, or for the name after "#": "doq://192.0.2.1#dns.example").
	// At least one.
	Upstreams []string
	// RootCAs verify DoQ upstreams; nil means the system roots.
	RootCAs *x509.CertPool
	// Timeout bounds one attempt at one upstream. Zero means 2s.
	Timeout time.Duration
	// CacheSize is the number of answers kept. Zero means 4096; negative
	// turns the cache off.
	CacheSize int
	// MaxCacheTTL caps how long an answer is kept, whatever its TTLs.
	// Zero means 1h.
	MaxCacheTTL time.Duration
	// Logger receives upstream failures. Nil is silent.
	Logger *slog.Logger
}

// Forwarder sends queries to upstream resolvers and caches their answers
// for as long as their TTLs allow (RFC 1035 section 7.4, RFC 2308 for
// negative answers). It is safe for concurrent use.
type Forwarder struct {
	ups     []upstream
	timeout time.Duration
	cache   *cache
	log     *slog.Logger
}

type upstream struct {
	url  string
	addr string // host:port
	ex   func(ctx context.Context, q *mdns.Msg) (*mdns.Msg, error)
	doq  *Client
}

// NewForwarder parses the upstreams of cfg.
func NewForwarder(cfg ForwardConfig) (*Forwarder, error) {
	if len(cfg.Upstreams) == 0 {
		return nil, fmt.Errorf("%w: no upstream", ErrBadUpstream)
	}
	f := &Forwarder{timeout: cfg.Timeout, log: cfg.Logger}
	if f.timeout <= 0 {
		f.timeout = 2 * time.Second
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	if cfg.CacheSize >= 0 {
		size := cfg.CacheSize
		if size == 0 {
			size = 4096
		}
		maxTTL := cfg.MaxCacheTTL
		if maxTTL <= 0 {
			maxTTL = time.Hour
		}
		f.cache = newCache(size, maxTTL)
	}
	for _, s := range cfg.Upstreams {
		u, err := parseUpstream(s, cfg.RootCAs)
		if err != nil {
			return nil, err
		}
		f.ups = append(f.ups, u)
	}
	return f, nil
}

func parseUpstream(s string, roots *x509.CertPool) (upstream, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return upstream{}, fmt.Errorf("%w: %q (want udp://, tcp:// or doq://host[:port])", ErrBadUpstream, s)
	}
	host := u.Host
	port := u.Port()
	if port == "" {
		port = "53"
		if u.Scheme == "doq" {
			port = "853"
		}
		host = net.JoinHostPort(strings.Trim(u.Host, "[]"), port)
	}
	up := upstream{url: s, addr: host}
	switch u.Scheme {
	case "udp", "tcp":
		if u.Fragment != "" {
			return upstream{}, fmt.Errorf("%w: %q: a #name is for doq:// only", ErrBadUpstream, s)
		}
		udp := &mdns.Client{Net: "udp", UDPSize: 1232}
		tcp := &mdns.Client{Net: "tcp"}
		first := udp
		if u.Scheme == "tcp" {
			first = tcp
		}
		up.ex = func(ctx context.Context, q *mdns.Msg) (*mdns.Msg, error) {
			r, _, err := first.ExchangeContext(ctx, q, host)
			if err == nil && r.Truncated && first == udp {
				r, _, err = tcp.ExchangeContext(ctx, q, host)
			}
			return r, err
		}
	case "doq":
		name := u.Fragment
		if name == "" {
			name = u.Hostname()
		}
		c := &Client{Addr: host, TLSConfig: &tls.Config{ServerName: name, RootCAs: roots}}
		up.doq = c
		up.ex = c.Exchange
	default:
		return upstream{}, fmt.Errorf("%w: %q (want udp://, tcp:// or doq://host[:port])", ErrBadUpstream, s)
	}
	return up, nil
}

// Close closes the DoQ connections to upstreams.
func (f *Forwarder) Close() error {
	for _, u := range f.ups {
		if u.doq != nil {
			_ = u.doq.Close()
		}
	}
	return nil
}

// Exchange answers q from the cache or from the first upstream that gives a
// usable answer (NOERROR or NXDOMAIN). Only q's question, RD, CD and DO bits
// go upstream, under a fresh ID.
func (f *Forwarder) Exchange(ctx context.Context, q *mdns.Msg) (*mdns.Msg, error) {
	if len(q.Question) != 1 {
		return nil, fmt.Errorf("alknet/dns: forward: %d questions", len(q.Question))
	}
	question := q.Question[0]
	do := false
	if opt := q.IsEdns0(); opt != nil {
		do = opt.Do()
	}
	key := cacheKey{name: mdns.CanonicalName(question.Name), qtype: question.Qtype, qclass: question.Qclass, do: do, cd: q.CheckingDisabled}
	if f.cache != nil {
		if m, ok := f.cache.get(key, time.Now()); ok {
			m.Id = q.Id
			return m, nil
		}
	}
	up := new(mdns.Msg)
	up.Id = mdns.Id()
	up.RecursionDesired = true
	up.CheckingDisabled = q.CheckingDisabled
	up.Question = []mdns.Question{question}
	up.SetEdns0(1232, do)
	var lastResp *mdns.Msg
	var lastErr error
	for _, u := range f.ups {
		actx, cancel := context.WithTimeout(ctx, f.timeout)
		r, err := u.ex(actx, up)
		cancel()
		if err == nil {
			err = checkAnswer(up, r)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			f.log.Debug("dns upstream", "upstream", u.url, "err", err)
			lastErr = err
			continue
		}
		if r.Rcode != mdns.RcodeSuccess && r.Rcode != mdns.RcodeNameError {
			lastResp = r
			continue
		}
		if f.cache != nil && !r.Truncated {
			f.cache.put(key, r, time.Now())
		}
		r.Id = q.Id
		return r, nil
	}
	if lastResp != nil {
		lastResp.Id = q.Id
		return lastResp, nil
	}
	return nil, fmt.Errorf("%w: %w", ErrNoUpstream, lastErr)
}

// checkAnswer refuses an answer to another question.
func checkAnswer(q, r *mdns.Msg) error {
	if r == nil {
		return errors.New("alknet/dns: empty answer")
	}
	if len(r.Question) != 1 || !strings.EqualFold(r.Question[0].Name, q.Question[0].Name) ||
		r.Question[0].Qtype != q.Question[0].Qtype || r.Question[0].Qclass != q.Question[0].Qclass {
		return fmt.Errorf("%w: answer to another question", ErrProtocol)
	}
	return nil
}

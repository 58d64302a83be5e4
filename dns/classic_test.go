package dns

import (
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// bigZone adds a TXT RRset of about 2.5 KB, which fits neither 512 bytes
// nor 1232.
func bigZone() string {
	var b strings.Builder
	b.WriteString(exampleZone)
	for i := range 12 {
		fmt.Fprintf(&b, "big IN TXT \"%02d %s\"\n", i, strings.Repeat("x", 200))
	}
	return b.String()
}

func exchangeClassic(t testing.TB, network, addr string, q *mdns.Msg) *mdns.Msg {
	t.Helper()
	c := &mdns.Client{Net: network, UDPSize: 65535}
	r, _, err := c.ExchangeContext(t.Context(), q, addr)
	require.NoError(t, err)
	return r
}

func TestClassicUDPAndTCP(t *testing.T) {
	srv := newServer(t, mustZones(t, bigZone(), "example.test."), nil, Config{})
	addr := startClassic(t, srv)
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			q := query("WWW.example.test", mdns.TypeA, true)
			r := exchangeClassic(t, network, addr, q)
			assert.Equal(t, q.Id, r.Id)
			assert.True(t, r.Authoritative)
			assert.False(t, r.RecursionAvailable)
			assert.Equal(t, "WWW.example.test.", r.Question[0].Name, "the question as asked")
			assert.Equal(t, []string{"www.example.test.\t300\tIN\tA\t192.0.2.1", "www.example.test.\t300\tIN\tA\t192.0.2.2"}, rrStrings(r.Answer))
			require.NotNil(t, r.IsEdns0())
			assert.Equal(t, uint16(1232), r.IsEdns0().UDPSize())
			for _, o := range r.IsEdns0().Option {
				assert.NotEqual(t, uint16(mdns.EDNS0PADDING), o.Option(), "no padding in clear text")
			}

			r = exchangeClassic(t, network, addr, query("nope.example.test", mdns.TypeA, true))
			assert.Equal(t, mdns.RcodeNameError, r.Rcode)
			assert.Equal(t, []string{negSOA}, rrStrings(r.Ns))
			r = exchangeClassic(t, network, addr, query("www.example.test", mdns.TypeMX, false))
			assert.Equal(t, mdns.RcodeSuccess, r.Rcode)
			assert.Empty(t, r.Answer)
			assert.Equal(t, []string{negSOA}, rrStrings(r.Ns))
			assert.Nil(t, r.IsEdns0(), "no OPT for a client without EDNS(0)")
			r = exchangeClassic(t, network, addr, query("example.org", mdns.TypeA, true))
			assert.Equal(t, mdns.RcodeRefused, r.Rcode)

			// EDNS version 1 is answered BADVERS (RFC 6891 section 6.1.3).
			q = query("www.example.test", mdns.TypeA, true)
			q.IsEdns0().SetVersion(1)
			r = exchangeClassic(t, network, addr, q)
			assert.Equal(t, mdns.RcodeBadVers, r.Rcode)
			// Zone transfers are not offered.
			r = exchangeClassic(t, network, addr, query("example.test", mdns.TypeAXFR, false))
			assert.Equal(t, mdns.RcodeRefused, r.Rcode)
		})
	}
}

func TestClassicTruncation(t *testing.T) {
	srv := newServer(t, mustZones(t, bigZone(), "example.test."), nil, Config{})
	addr := startClassic(t, srv)
	c := &mdns.Client{Net: "udp", UDPSize: 65535}
	// Without EDNS(0): 512 bytes at most, TC set (RFC 1035 4.2.1, RFC 7766).
	r, _, err := c.ExchangeContext(t.Context(), query("big.example.test", mdns.TypeTXT, false), addr)
	require.NoError(t, err)
	assert.True(t, r.Truncated)
	assert.Less(t, len(r.Answer), 12)
	packed, _ := r.Pack()
	assert.LessOrEqual(t, len(packed), 512)
	// A 4096-byte EDNS(0) buffer is capped at the server's 1232.
	q := query("big.example.test", mdns.TypeTXT, false)
	q.SetEdns0(4096, false)
	r, _, err = c.ExchangeContext(t.Context(), q, addr)
	require.NoError(t, err)
	assert.True(t, r.Truncated)
	packed, _ = r.Pack()
	assert.LessOrEqual(t, len(packed), 1232)
	assert.Greater(t, len(packed), 512)
	// TCP carries all of it.
	r = exchangeClassic(t, "tcp", addr, query("big.example.test", mdns.TypeTXT, false))
	assert.False(t, r.Truncated)
	assert.Len(t, r.Answer, 12)
}

func TestClassicTCPQueryLimit(t *testing.T) {
	srv := newServer(t, mustZones(t, exampleZone, "example.test."), nil, Config{MaxQuerySize: 64})
	addr := startClassic(t, srv)
	q := query("www.example.test", mdns.TypeA, true)
	q.IsEdns0().Option = append(q.IsEdns0().Option, &mdns.EDNS0_PADDING{Padding: make([]byte, 100)})
	c := &mdns.Client{Net: "tcp"}
	_, _, err := c.ExchangeContext(t.Context(), q, addr)
	assert.Error(t, err, "a query over MaxQuerySize closes the connection")
	r := exchangeClassic(t, "tcp", addr, query("www.example.test", mdns.TypeA, false))
	assert.Len(t, r.Answer, 2)
}

// dig runs dig against addr and returns its output.
func dig(t testing.TB, addr string, args ...string) string {
	t.Helper()
	bin := needClient(t, "dig", "bind9-dnsutils")
	host, port, _ := strings.Cut(addr, ":")
	out, err := exec.CommandContext(t.Context(), bin, append([]string{"@" + host, "-p", port, "+tries=1", "+time=5"}, args...)...).CombinedOutput()
	require.NoError(t, err, "dig %v: %s", args, out)
	return string(out)
}

var digStatus = regexp.MustCompile(`status: ([A-Z]+)`)
var digFlags = regexp.MustCompile(`;; flags: ([a-z ]+);`)

func TestDig(t *testing.T) {
	srv := newServer(t, mustZones(t, bigZone(), "example.test."), nil, Config{})
	addr := startClassic(t, srv)
	cases := []struct {
		name, typ string
		want      []string
	}{
		{"example.test", "SOA", []string{"ns1.example.test. hostmaster.example.test. 7 3600 600 604800 300"}},
		{"example.test", "NS", []string{"ns1.example.test."}},
		{"www.example.test", "A", []string{"192.0.2.1", "192.0.2.2"}},
		{"www.example.test", "AAAA", []string{"2001:db8::1"}},
		{"alias.example.test", "CNAME", []string{"www.example.test."}},
		{"alias.example.test", "A", []string{"www.example.test.", "192.0.2.1", "192.0.2.2"}},
		{"txt.example.test", "TXT", []string{`"hello world" "second string"`}},
		{"example.test", "MX", []string{"10 mail.example.test."}},
		{"_sip._tcp.example.test", "SRV", []string{"10 60 5060 sip.example.test."}},
		{"example.test", "CAA", []string{`0 issue "letsencrypt.org"`}},
		{"svc.example.test", "HTTPS", []string{`1 . alpn="h3,h2" port=443`}},
		{"_dns.example.test", "SVCB", []string{`1 dns.example.test. alpn="doq" port=853`}},
		{"foo.wild.example.test", "A", []string{"192.0.2.99"}},
	}
	for _, proto := range []string{"+notcp", "+tcp"} {
		for _, c := range cases {
			t.Run(proto+"/"+c.name+"/"+c.typ, func(t *testing.T) {
				out := dig(t, addr, proto, "+short", c.name, c.typ)
				got := strings.Split(strings.TrimSpace(out), "\n")
				assert.ElementsMatch(t, c.want, got, out)
			})
		}
		t.Run(proto+"/nxdomain", func(t *testing.T) {
			out := dig(t, addr, proto, "nope.example.test", "A")
			assert.Equal(t, "NXDOMAIN", digStatus.FindStringSubmatch(out)[1], out)
			assert.Contains(t, out, "ANSWER: 0, AUTHORITY: 1")
			assert.Regexp(t, `example\.test\.\s+300\s+IN\s+SOA\s+ns1\.example\.test\.`, out)
			assert.Contains(t, digFlags.FindStringSubmatch(out)[1], "aa")
		})
		t.Run(proto+"/nodata", func(t *testing.T) {
			out := dig(t, addr, proto, "www.example.test", "TXT")
			assert.Equal(t, "NOERROR", digStatus.FindStringSubmatch(out)[1], out)
			assert.Contains(t, out, "ANSWER: 0, AUTHORITY: 1")
			assert.Regexp(t, `example\.test\.\s+300\s+IN\s+SOA`, out)
		})
	}
	t.Run("truncation", func(t *testing.T) {
		out := dig(t, addr, "+notcp", "+ignore", "+noedns", "big.example.test", "TXT")
		assert.Contains(t, digFlags.FindStringSubmatch(out)[1], "tc", out)
		out = dig(t, addr, "+tcp", "big.example.test", "TXT")
		assert.NotContains(t, digFlags.FindStringSubmatch(out)[1], "tc")
		assert.Contains(t, out, "ANSWER: 12,")
		// dig's default: UDP, then TCP on TC (RFC 7766 section 5).
		out = dig(t, addr, "big.example.test", "TXT")
		assert.Contains(t, out, "Truncated, retrying in TCP mode")
		assert.Contains(t, out, "ANSWER: 12,")
	})
}

package dns

import (
	"testing"

	mdns "github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLookupEveryType(t *testing.T) {
	zs := mustZones(t, exampleZone, "example.test.")
	cases := []struct {
		name  string
		qtype uint16
		want  []string
		extra []string
	}{
		{"example.test.", mdns.TypeSOA, []string{"example.test.\t3600\tIN\tSOA\tns1.example.test. hostmaster.example.test. 7 3600 600 604800 300"}, nil},
		{"example.test.", mdns.TypeNS, []string{"example.test.\t3600\tIN\tNS\tns1.example.test."}, []string{"ns1.example.test.\t3600\tIN\tA\t192.0.2.53"}},
		{"www.example.test.", mdns.TypeA, []string{"www.example.test.\t300\tIN\tA\t192.0.2.1", "www.example.test.\t300\tIN\tA\t192.0.2.2"}, nil},
		{"www.example.test.", mdns.TypeAAAA, []string{"www.example.test.\t300\tIN\tAAAA\t2001:db8::1"}, nil},
		{"alias.example.test.", mdns.TypeCNAME, []string{"alias.example.test.\t3600\tIN\tCNAME\twww.example.test."}, nil},
		{"txt.example.test.", mdns.TypeTXT, []string{"txt.example.test.\t3600\tIN\tTXT\t\"hello world\" \"second string\""}, nil},
		{"example.test.", mdns.TypeMX, []string{"example.test.\t3600\tIN\tMX\t10 mail.example.test."}, []string{"mail.example.test.\t3600\tIN\tA\t192.0.2.25"}},
		{"_sip._tcp.example.test.", mdns.TypeSRV, []string{"_sip._tcp.example.test.\t3600\tIN\tSRV\t10 60 5060 sip.example.test."}, []string{"sip.example.test.\t3600\tIN\tA\t192.0.2.60"}},
		{"example.test.", mdns.TypeCAA, []string{"example.test.\t3600\tIN\tCAA\t0 issue \"letsencrypt.org\""}, nil},
		{"svc.example.test.", mdns.TypeHTTPS, []string{"svc.example.test.\t3600\tIN\tHTTPS\t1 . alpn=\"h3,h2\" port=\"443\""}, nil},
		{"_dns.example.test.", mdns.TypeSVCB, []string{"_dns.example.test.\t3600\tIN\tSVCB\t1 dns.example.test. alpn=\"doq\" port=\"853\""}, nil},
		// Names are matched without regard to case (RFC 4343).
		{"WWW.Example.TEST.", mdns.TypeAAAA, []string{"www.example.test.\t300\tIN\tAAAA\t2001:db8::1"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name+"/"+mdns.TypeToString[c.qtype], func(t *testing.T) {
			res, ok := zs.Lookup(c.name, c.qtype)
			require.True(t, ok)
			assert.Equal(t, mdns.RcodeSuccess, res.Rcode)
			assert.True(t, res.Authoritative)
			assert.Equal(t, c.want, rrStrings(res.Answer))
			assert.Empty(t, res.Ns)
			assert.Equal(t, c.extra, nilIfEmpty(rrStrings(res.Extra)))
		})
	}
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

const negSOA = "example.test.\t300\tIN\tSOA\tns1.example.test. hostmaster.example.test. 7 3600 600 604800 300"

func TestLookupNegative(t *testing.T) {
	zs := mustZones(t, exampleZone, "example.test.")
	cases := []struct {
		name  string
		qtype uint16
		rcode int
		ans   []string
	}{
		{"nope.example.test.", mdns.TypeA, mdns.RcodeNameError, nil},
		{"deep.nope.example.test.", mdns.TypeA, mdns.RcodeNameError, nil},
		// NODATA: the name exists, the type does not.
		{"www.example.test.", mdns.TypeTXT, mdns.RcodeSuccess, nil},
		{"example.test.", mdns.TypeA, mdns.RcodeSuccess, nil},
		// Empty non-terminals exist (RFC 8020): NODATA, not NXDOMAIN.
		{"b.c.example.test.", mdns.TypeA, mdns.RcodeSuccess, nil},
		{"c.example.test.", mdns.TypeA, mdns.RcodeSuccess, nil},
		{"_tcp.example.test.", mdns.TypeSRV, mdns.RcodeSuccess, nil},
		// A CNAME to a name that does not exist: the CNAME and NXDOMAIN
		// (RFC 6604).
	}
	for _, c := range cases {
		t.Run(c.name+"/"+mdns.TypeToString[c.qtype], func(t *testing.T) {
			res, ok := zs.Lookup(c.name, c.qtype)
			require.True(t, ok)
			assert.Equal(t, c.rcode, res.Rcode)
			assert.True(t, res.Authoritative)
			assert.Equal(t, c.ans, nilIfEmpty(rrStrings(res.Answer)))
			// The SOA with the negative TTL min(TTL, MINIMUM) (RFC 2308).
			assert.Equal(t, []string{negSOA}, rrStrings(res.Ns))
		})
	}
	_, ok := zs.Lookup("www.other.test.", mdns.TypeA)
	assert.False(t, ok, "a name outside every zone")
}

func TestLookupCNAME(t *testing.T) {
	zs := mustZones(t, exampleZone, "example.test.")
	res, ok := zs.Lookup("alias.example.test.", mdns.TypeA)
	require.True(t, ok)
	assert.Equal(t, []string{
		"alias.example.test.\t3600\tIN\tCNAME\twww.example.test.",
		"www.example.test.\t300\tIN\tA\t192.0.2.1",
		"www.example.test.\t300\tIN\tA\t192.0.2.2",
	}, rrStrings(res.Answer))

	res, _ = zs.Lookup("far.example.test.", mdns.TypeA)
	assert.Equal(t, []string{"far.example.test.\t3600\tIN\tCNAME\twww.elsewhere.test."}, rrStrings(res.Answer))
	assert.Equal(t, "www.elsewhere.test.", res.Chased)
	assert.Equal(t, mdns.RcodeSuccess, res.Rcode)

	res, _ = zs.Lookup("loop1.example.test.", mdns.TypeA)
	assert.Equal(t, []string{
		"loop1.example.test.\t3600\tIN\tCNAME\tloop2.example.test.",
		"loop2.example.test.\t3600\tIN\tCNAME\tloop1.example.test.",
	}, rrStrings(res.Answer), "a loop stops when it comes back")

	res, _ = zs.Lookup("alias.example.test.", mdns.TypeTXT)
	assert.Equal(t, mdns.RcodeSuccess, res.Rcode)
	assert.Equal(t, []string{"alias.example.test.\t3600\tIN\tCNAME\twww.example.test."}, rrStrings(res.Answer))
	assert.Equal(t, []string{negSOA}, rrStrings(res.Ns), "NODATA at the end of the chain carries the SOA")
}

func TestLookupDelegation(t *testing.T) {
	zs := mustZones(t, exampleZone, "example.test.")
	for _, name := range []string{"child.example.test.", "host.child.example.test.", "ns.child.example.test."} {
		res, ok := zs.Lookup(name, mdns.TypeA)
		require.True(t, ok)
		assert.False(t, res.Authoritative, name)
		assert.Equal(t, mdns.RcodeSuccess, res.Rcode)
		assert.Empty(t, res.Answer)
		assert.Equal(t, []string{"child.example.test.\t3600\tIN\tNS\tns.child.example.test."}, rrStrings(res.Ns))
		assert.Equal(t, []string{"ns.child.example.test.\t3600\tIN\tA\t192.0.2.77"}, rrStrings(res.Extra), "glue")
	}
}

// TestLookupWildcardRFC4592 runs the examples of RFC 4592 section 2.2.1 on
// its example zone.
func TestLookupWildcardRFC4592(t *testing.T) {
	const zone = `$ORIGIN example.
example.                 3600 IN  SOA   ns.example.com. hostmaster.example. 1 3600 600 604800 300
example.                 3600     NS    ns.example.com.
example.                 3600     NS    ns.example.net.
*.example.               3600     TXT   "this is a wildcard"
*.example.               3600     MX    10 host1.example.
sub.*.example.           3600     TXT   "this is not a wildcard"
host1.example.           3600     A     192.0.2.1
_ssh._tcp.host1.example. 3600     SRV   0 0 22 host1.example.
_ssh._tcp.host2.example. 3600     SRV   0 0 22 host1.example.
subdel.example.          3600     NS    ns.example.com.
subdel.example.          3600     NS    ns.example.net.
`
	zs := mustZones(t, zone, "example.")
	cases := []struct {
		name  string
		qtype uint16
		rcode int
		ans   []string
		auth  bool
	}{
		{"host3.example.", mdns.TypeMX, mdns.RcodeSuccess, []string{"host3.example.\t3600\tIN\tMX\t10 host1.example."}, true},
		{"host3.example.", mdns.TypeA, mdns.RcodeSuccess, nil, true},
		{"foo.bar.example.", mdns.TypeTXT, mdns.RcodeSuccess, []string{"foo.bar.example.\t3600\tIN\tTXT\t\"this is a wildcard\""}, true},
		{"host1.example.", mdns.TypeMX, mdns.RcodeSuccess, nil, true},
		{"sub.*.example.", mdns.TypeMX, mdns.RcodeSuccess, nil, true},
		{"_telnet._tcp.host1.example.", mdns.TypeSRV, mdns.RcodeNameError, nil, true},
		{"host.subdel.example.", mdns.TypeA, mdns.RcodeSuccess, nil, false},
		{"ghost.*.example.", mdns.TypeMX, mdns.RcodeNameError, nil, true},
		// The wildcard owner itself answers as an ordinary name.
		{"*.example.", mdns.TypeMX, mdns.RcodeSuccess, []string{"*.example.\t3600\tIN\tMX\t10 host1.example."}, true},
	}
	for _, c := range cases {
		t.Run(c.name+"/"+mdns.TypeToString[c.qtype], func(t *testing.T) {
			res, ok := zs.Lookup(c.name, c.qtype)
			require.True(t, ok)
			assert.Equal(t, c.rcode, res.Rcode)
			assert.Equal(t, c.auth, res.Authoritative)
			assert.Equal(t, c.ans, nilIfEmpty(rrStrings(res.Answer)))
			if c.auth && len(c.ans) == 0 {
				require.Len(t, res.Ns, 1)
				assert.Equal(t, mdns.TypeSOA, res.Ns[0].Header().Rrtype)
			}
		})
	}
}

func TestLookupWildcardExample(t *testing.T) {
	zs := mustZones(t, exampleZone, "example.test.")
	// The owner is the query name as asked (RFC 4592 section 3.3.1).
	res, _ := zs.Lookup("Any.Wild.example.test.", mdns.TypeA)
	assert.Equal(t, []string{"Any.Wild.example.test.\t3600\tIN\tA\t192.0.2.99"}, rrStrings(res.Answer))
	// An existing name below the wildcard's parent is not synthesized.
	res, _ = zs.Lookup("sub.wild.example.test.", mdns.TypeA)
	assert.Empty(t, res.Answer)
	assert.Equal(t, mdns.RcodeSuccess, res.Rcode)
	// Deeper names match too: the closest encloser is wild.example.test.
	res, _ = zs.Lookup("x.y.wild.example.test.", mdns.TypeTXT)
	assert.Equal(t, []string{"x.y.wild.example.test.\t3600\tIN\tTXT\t\"wild\""}, rrStrings(res.Answer))
	// The index's records are not changed by synthesis.
	res, _ = zs.Lookup("*.wild.example.test.", mdns.TypeA)
	assert.Equal(t, []string{"*.wild.example.test.\t3600\tIN\tA\t192.0.2.99"}, rrStrings(res.Answer))
}

func TestLookupANYAndNestedZones(t *testing.T) {
	zs := mustZones(t, exampleZone, "example.test.")
	res, _ := zs.Lookup("www.example.test.", mdns.TypeANY)
	assert.Len(t, res.Answer, 3)

	inner := `$ORIGIN inner.example.test.
@ 60 IN SOA ns1.example.test. hostmaster.example.test. 1 3600 600 604800 60
@ 60 IN NS ns1.example.test.
x 60 IN A 192.0.2.200
`
	a, err := ParseMasterFile(stringsReader(exampleZone), "example.test.")
	require.NoError(t, err)
	b, err := ParseMasterFile(stringsReader(inner), "inner.example.test.")
	require.NoError(t, err)
	both, err := NewZones(append(a, b...))
	require.NoError(t, err)
	assert.Equal(t, []string{"example.test.", "inner.example.test."}, both.Apexes())
	res, _ = both.Lookup("x.inner.example.test.", mdns.TypeA)
	assert.Equal(t, []string{"x.inner.example.test.\t60\tIN\tA\t192.0.2.200"}, rrStrings(res.Answer))
	res, _ = both.Lookup("y.inner.example.test.", mdns.TypeA)
	assert.Equal(t, mdns.RcodeNameError, res.Rcode)
	assert.Equal(t, "inner.example.test.", res.Ns[0].Header().Name, "the SOA of the closest zone")
}

func TestNewZonesRefusesConflicts(t *testing.T) {
	soa, _ := ParseRecord("z.test", "SOA", "ns.z.test. h.z.test. 1 1 1 1 1", 60)
	cname, _ := ParseRecord("a.z.test", "CNAME", "b.z.test", 60)
	a, _ := ParseRecord("a.z.test", "A", "192.0.2.1", 60)
	out, _ := ParseRecord("a.other.test", "A", "192.0.2.1", 60)
	_, err := NewZones([]mdns.RR{soa, cname, a})
	assert.ErrorIs(t, err, ErrConflict)
	_, err = NewZones([]mdns.RR{soa, out})
	assert.ErrorIs(t, err, ErrNoZone)
	_, err = NewZones([]mdns.RR{soa, soa})
	assert.ErrorIs(t, err, ErrConflict)
}

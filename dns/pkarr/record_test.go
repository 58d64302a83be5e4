package pkarr

import (
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/anacrolix/dht/v2/bep44"
	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testKey is a fixed key: the ed25519 seed 0x00..0x1f.
func testKey(t testing.TB) core.SecretKey {
	t.Helper()
	seed := make([]byte, 32)
	for i := range seed {
		seed[i] = byte(i)
	}
	k, err := core.NewSecretKey(seed)
	require.NoError(t, err)
	return k
}

func newKey(t testing.TB) core.SecretKey {
	t.Helper()
	k, err := core.GenerateSecretKey()
	require.NoError(t, err)
	return k
}

func aps(s ...string) []netip.AddrPort {
	out := make([]netip.AddrPort, len(s))
	for i, x := range s {
		out[i] = netip.MustParseAddrPort(x)
	}
	return out
}

func TestSignableBytes(t *testing.T) {
	// BEP44: the signature covers "3:seqi<seq>e1:v" and the bencoded value.
	assert.Equal(t, "3:seqi1e1:v12:Hello World!", string(SignableBytes(1, []byte("Hello World!"))))
	assert.Equal(t, "3:seqi1700000000000000e1:v0:", string(SignableBytes(1700000000000000, nil)))
}

// TestBEP44Vector checks SignableBytes, Verify and Target against the
// test vector of BEP44 ("test vectors", mutable item without salt): its
// private key is given expanded, so only the verification side applies.
func TestBEP44Vector(t *testing.T) {
	pub, _ := hex.DecodeString("77ff84905a91936367c01360803104f92432fcd904a43511876df5cdf3e7e548")
	sig, _ := hex.DecodeString("305ac8aeb6c9c151fa120f120ea2cfb923564e11552d06a5d856091e5e853cff" +
		"1260d3f39e4999684aa92eb73ffd136e6f4f3ecbfda0ce53a1608ecd7ae21f01")
	id, err := core.NodeIDFromPublicKey(pub)
	require.NoError(t, err)
	p, err := NewSignedPacket(id, 1, sig, []byte("Hello World!"))
	require.NoError(t, err)
	tgt := Target(id)
	assert.Equal(t, "4a533d47ec9c7d95b1ad75f576cffc641853b750", hex.EncodeToString(tgt[:]))
	// The same item with another seq or value does not verify.
	_, err = NewSignedPacket(id, 2, sig, []byte("Hello World!"))
	assert.ErrorIs(t, err, ErrBadSignature)
	_, err = NewSignedPacket(id, 1, sig, []byte("Hello World?"))
	assert.ErrorIs(t, err, ErrBadSignature)
	// And anacrolix's implementation agrees on our own signatures.
	key := testKey(t)
	v := []byte("Hello World!")
	mine := key.Sign(SignableBytes(7, v))
	assert.True(t, bep44.Verify(key.NodeID().PublicKey(), nil, 7, bencodedString(v), mine))
	assert.Equal(t, p.V, v)
}

func TestRecordRoundTrip(t *testing.T) {
	key := testKey(t)
	cases := []struct {
		name  string
		addrs []netip.AddrPort
		alpns []string
	}{
		{"one v4", aps("192.0.2.1:4433"), []string{"alknet/ping"}},
		{"v4 and v6", aps("192.0.2.1:4433", "[2001:db8::1]:4433", "127.0.0.1:4433"), []string{"alknet/ping", "alknet/call", "h3"}},
		{"no alpn", aps("198.51.100.7:9"), nil},
		{"two ports", aps("192.0.2.1:4433", "[2001:db8::1]:4433", "192.0.2.2:5000"), []string{"doq"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			seq := NextSeq(time.Unix(1700000000, 123456000), 0)
			p, err := Sign(key, Record{Seq: seq, Addrs: tc.addrs, ALPNs: tc.alpns})
			require.NoError(t, err)
			require.NoError(t, p.Verify())
			assert.Equal(t, key.NodeID(), p.ID)
			assert.Equal(t, int64(1700000000123456), p.Seq)
			assert.LessOrEqual(t, len(p.V), MaxPacketSize)
			r, err := p.Record()
			require.NoError(t, err)
			assert.Equal(t, tc.addrs, r.Addrs)
			if tc.alpns == nil {
				assert.Empty(t, r.ALPNs)
			} else {
				assert.Equal(t, tc.alpns, r.ALPNs)
			}
			assert.Equal(t, seq, r.Seq)
			assert.Equal(t, DefaultTTL, r.TTL)
			assert.Equal(t, time.UnixMicro(seq).UTC(), r.Time())
			na := r.NodeAddrs()
			require.Len(t, na, len(tc.addrs))
			assert.Equal(t, key.NodeID().String()+"@"+tc.addrs[0].String(), na[0].String())
		})
	}
}

func TestPacketNamesAndTypes(t *testing.T) {
	key := testKey(t)
	v, err := EncodePacket(Record{ID: key.NodeID(), Addrs: aps("192.0.2.1:4433", "[2001:db8::1]:4433"), ALPNs: []string{"alknet/ping", "h3"}})
	require.NoError(t, err)
	var m dns.Msg
	require.NoError(t, m.Unpack(v))
	assert.True(t, m.Response)
	assert.Equal(t, uint16(0), m.Id)
	require.Len(t, m.Answer, 3)
	apex := key.NodeID().String() + "."
	for _, rr := range m.Answer {
		assert.Equal(t, apex, rr.Header().Name)
		assert.Equal(t, uint32(300), rr.Header().Ttl)
	}
	assert.Equal(t, "192.0.2.1", m.Answer[0].(*dns.A).A.String())
	assert.Equal(t, "2001:db8::1", m.Answer[1].(*dns.AAAA).AAAA.String())
	svcb := m.Answer[2].(*dns.SVCB)
	assert.Equal(t, uint16(1), svcb.Priority)
	assert.Equal(t, ".", svcb.Target)
	assert.Equal(t, `alpn="alknet/ping,h3" port="4433"`, strings.Join(svcbValues(svcb), " "))
}

func svcbValues(s *dns.SVCB) []string {
	var out []string
	for _, kv := range s.Value {
		out = append(out, kv.Key().String()+`="`+kv.String()+`"`)
	}
	return out
}

func TestNameIsZBase32(t *testing.T) {
	var id core.NodeID
	for i := range id {
		id[i] = byte(i)
	}
	assert.Equal(t, "yyyoryarywdyqnyjbefoadeqbhebnrounoktcfaadrpbs8y7daxo", Name(id))
	_, ok := dns.IsDomainName(Name(id) + ".example.")
	assert.True(t, ok)
}

func TestRRsForZone(t *testing.T) {
	key := testKey(t)
	r := Record{ID: key.NodeID(), Addrs: aps("192.0.2.1:4433", "192.0.2.2:5000"), ALPNs: []string{"doq"}, TTL: 60 * time.Second}
	rrs, err := r.RRs("Nodes.Example.ORG")
	require.NoError(t, err)
	owner := key.NodeID().String() + ".nodes.example.org."
	var got []string
	for _, rr := range rrs {
		assert.Equal(t, owner, rr.Header().Name)
		got = append(got, strings.TrimPrefix(rr.String(), owner+"\t"))
	}
	assert.Equal(t, []string{
		"60\tIN\tA\t192.0.2.1",
		"60\tIN\tA\t192.0.2.2",
		`60	IN	SVCB	1 . alpn="doq" port="4433" ipv4hint="192.0.2.1"`,
		`60	IN	SVCB	2 . alpn="doq" port="5000" ipv4hint="192.0.2.2"`,
	}, got)
	_, err = r.RRs("bad..zone")
	assert.ErrorIs(t, err, ErrInvalidRecord)
}

func TestRecordInvalid(t *testing.T) {
	key := testKey(t)
	long := strings.Repeat("x", 256)
	cases := []struct {
		name string
		r    Record
		want error
	}{
		{"no address", Record{Seq: 1}, ErrInvalidRecord},
		{"port zero", Record{Seq: 1, Addrs: aps("192.0.2.1:0")}, ErrInvalidRecord},
		{"unspecified", Record{Seq: 1, Addrs: aps("0.0.0.0:1")}, ErrInvalidRecord},
		{"empty alpn", Record{Seq: 1, Addrs: aps("192.0.2.1:1"), ALPNs: []string{""}}, ErrInvalidRecord},
		{"long alpn", Record{Seq: 1, Addrs: aps("192.0.2.1:1"), ALPNs: []string{long}}, ErrInvalidRecord},
		{"seq zero", Record{Addrs: aps("192.0.2.1:1")}, ErrInvalidRecord},
		{"too large", Record{Seq: 1, Addrs: aps("192.0.2.1:1"), ALPNs: []string{long[:200], long[:201], long[:202], long[:203], long[:204]}}, ErrTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Sign(key, tc.r)
			assert.ErrorIs(t, err, tc.want)
		})
	}
}

func TestDecodePacketIgnoresOtherNames(t *testing.T) {
	key := testKey(t)
	other := newKey(t)
	// A packet signed by key but naming another node's id: nothing counts.
	v, err := EncodePacket(Record{ID: other.NodeID(), Addrs: aps("192.0.2.9:4433")})
	require.NoError(t, err)
	r, err := DecodePacket(key.NodeID(), v)
	require.NoError(t, err)
	assert.Empty(t, r.Addrs)

	// Records below the apex and of other types are ignored; an SVCB
	// without port gives no address.
	apex := key.NodeID().String() + "."
	m := new(dns.Msg)
	m.Response = true
	a, _ := dns.NewRR("_x." + apex + " 300 IN A 192.0.2.1")
	txt, _ := dns.NewRR(apex + " 300 IN TXT \"hello\"")
	a2, _ := dns.NewRR(apex + " 300 IN A 192.0.2.2")
	s, _ := dns.NewRR(apex + " 300 IN SVCB 1 . alpn=h3")
	s2, _ := dns.NewRR(apex + " 300 IN HTTPS 2 . port=443")
	m.Answer = []dns.RR{a, txt, a2, s, s2}
	v, err = m.Pack()
	require.NoError(t, err)
	r, err = DecodePacket(key.NodeID(), v)
	require.NoError(t, err)
	assert.Equal(t, aps("192.0.2.2:443"), r.Addrs)
	assert.Empty(t, r.ALPNs)
}

func TestDecodePacketLimits(t *testing.T) {
	id := testKey(t).NodeID()
	_, err := DecodePacket(id, make([]byte, MaxPacketSize+1))
	assert.ErrorIs(t, err, ErrTooLarge)
	_, err = DecodePacket(id, []byte{1, 2, 3})
	assert.ErrorIs(t, err, ErrMalformed)
	assert.True(t, errors.Is(err, ErrMalformed))
}

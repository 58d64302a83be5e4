package pkarr

import (
	"bytes"
	"slices"
	"testing"

	"github.com/anacrolix/dht/v2/krpc"
	"github.com/miekg/dns"
)

// FuzzParseSignedPacket: whatever the bytes, parsing respects the size
// limit, and what parses re-encodes to the same bytes and verifies.
func FuzzParseSignedPacket(f *testing.F) {
	p := signed(f, 1700000000000001, "192.0.2.1:4433", "[2001:db8::1]:4433")
	good, _ := p.MarshalBinary()
	f.Add(good)
	f.Add(good[:104])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := ParseSignedPacket(b)
		if err != nil {
			return
		}
		if len(b) > MaxSignedPacketSize || len(q.V) > MaxPacketSize {
			t.Fatalf("accepted %d bytes", len(b))
		}
		out, err := q.MarshalBinary()
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("round trip changed the bytes")
		}
		if err := q.Verify(); err != nil {
			t.Fatalf("parsed packet does not verify: %v", err)
		}
		r, err := q.Record()
		if err == nil && (len(r.Addrs) > maxAddrs || len(r.ALPNs) > maxALPNs) {
			t.Fatalf("record over its limits")
		}
	})
}

// FuzzDecodePacket: a decoded record stays within its limits, lists only
// dialable addresses, and re-encodes (when it fits) to a packet that
// decodes to the same addresses and ALPNs.
func FuzzDecodePacket(f *testing.F) {
	id := testKey(f).NodeID()
	for _, r := range []Record{
		{ID: id, Addrs: aps("192.0.2.1:4433"), ALPNs: []string{"alknet/ping"}},
		{ID: id, Addrs: aps("192.0.2.1:4433", "[2001:db8::1]:4433", "192.0.2.2:5000"), ALPNs: []string{"doq", "h3"}},
	} {
		v, err := EncodePacket(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(v)
	}
	m := new(dns.Msg)
	rr, _ := dns.NewRR(Name(id) + ". 60 IN HTTPS 1 . alpn=h3 port=443 ipv6hint=2001:db8::2")
	m.Answer = []dns.RR{rr}
	v, _ := m.Pack()
	f.Add(v)
	f.Fuzz(func(t *testing.T, v []byte) {
		r, err := DecodePacket(id, v)
		if err != nil {
			if len(v) <= MaxPacketSize && bytes.Contains([]byte(err.Error()), []byte("too large")) {
				t.Fatalf("size error under the limit: %v", err)
			}
			return
		}
		if len(v) > MaxPacketSize {
			t.Fatalf("decoded %d bytes", len(v))
		}
		if len(r.Addrs) > maxAddrs || len(r.ALPNs) > maxALPNs {
			t.Fatalf("over limits: %d addrs, %d alpns", len(r.Addrs), len(r.ALPNs))
		}
		for _, a := range r.Addrs {
			if a.Port() == 0 || a.Addr().IsUnspecified() || a.Addr().Zone() != "" || a.Addr().Is4In6() {
				t.Fatalf("undialable address %s", a)
			}
		}
		if len(r.Addrs) == 0 {
			return
		}
		r.ID = id
		v2, err := EncodePacket(r)
		if err != nil {
			return // valid to read, too big or odd to write back
		}
		r2, err := DecodePacket(id, v2)
		if err != nil {
			t.Fatalf("re-encoded packet does not decode: %v", err)
		}
		if !slices.Equal(r.Addrs, r2.Addrs) || !slices.Equal(r.ALPNs, r2.ALPNs) {
			t.Fatalf("round trip changed the record: %v %v -> %v %v", r.Addrs, r.ALPNs, r2.Addrs, r2.ALPNs)
		}
	})
}

// FuzzItemFromReply: whatever a DHT node answers to a get, an item comes
// out only when it is the target's, within the size limit and validly
// signed.
func FuzzItemFromReply(f *testing.F) {
	p := signed(f, 1700000000000001, "192.0.2.1:4433")
	target := Target(p.ID)
	f.Add(bencodedString(p.V), int64(p.Seq), p.Sig[:], true)
	f.Add([]byte("3:abc"), int64(1), p.Sig[:], true)
	f.Add([]byte("i5e"), int64(-1), make([]byte, 64), false)
	f.Fuzz(func(t *testing.T, v []byte, seq int64, sig []byte, ownKey bool) {
		r := &krpc.Return{}
		r.V = v
		r.Seq = &seq
		copy(r.Sig[:], sig)
		if ownKey {
			r.K = [32]byte(p.ID)
		}
		got := itemFromReply(target, r)
		if got == nil {
			return
		}
		if got.ID != p.ID || len(got.V) > MaxPacketSize || got.Seq < 0 {
			t.Fatalf("accepted a foreign or oversized item")
		}
		if err := got.Verify(); err != nil {
			t.Fatalf("accepted an unverified item: %v", err)
		}
	})
}

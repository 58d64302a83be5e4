package mix

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
)

// fuzzKey is a fixed node key, so that the seed corpus stays valid.
func fuzzKey(tb testing.TB, b byte) core.SecretKey {
	k, err := core.NewSecretKey(bytes.Repeat([]byte{b}, 32))
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// fuzzPacket is a valid one-hop packet for fuzzKey(1) at epoch 1.
func fuzzPacket(tb testing.TB) ([]byte, *MixKey) {
	mk := DeriveMixKey(fuzzKey(tb, 1), time.Hour, 1)
	pkt, err := NewPacket(seeded(3), 1, []Hop{{Node: fuzzKey(tb, 1).NodeID(), Key: mk.Public, Delay: time.Millisecond}},
		Routing{Command: Deliver, Node: core.NodeID{2}}, Message{Addr: "h:1", Envelope: []byte("envelope")})
	if err != nil {
		tb.Fatal(err)
	}
	return pkt, mk
}

// FuzzUnwrap feeds the hop a valid one-hop packet with the fuzz input
// XORed in at an offset (the first two bytes), or the input itself when it
// is a whole packet. Property: the packet unwraps if and only if it is
// unchanged, since the MAC covers the header and the final payload check
// covers the payload; an accepted packet yields the original message.
func FuzzUnwrap(f *testing.F) {
	valid, mk := fuzzPacket(f)
	f.Add([]byte{0, 0})
	f.Add([]byte{0, 0, 1})
	f.Add([]byte{0, 40, 0x80})
	f.Add([]byte{byte(offPayload >> 8), byte(offPayload & 0xff), 0, 0, 1})
	f.Add(valid)
	f.Fuzz(func(t *testing.T, in []byte) {
		pkt := bytes.Clone(valid)
		if len(in) == PacketSize || len(in) < 2 {
			pkt = bytes.Clone(in)
		} else {
			off := int(binary.BigEndian.Uint16(in)) % PacketSize
			for i, c := range in[2:] {
				if off+i < PacketSize {
					pkt[off+i] ^= c
				}
			}
		}
		same := bytes.Equal(pkt, valid)
		u, err := Unwrap(&mk.private, pkt, nil)
		if same != (err == nil) {
			t.Fatalf("unchanged=%v but err=%v", same, err)
		}
		if err == nil && (string(u.Message.Envelope) != "envelope" || u.Message.Addr != "h:1" || u.Routing.Command != Deliver) {
			t.Fatalf("accepted packet gave %+v", u)
		}
	})
}

// FuzzDirectoryDecode checks that any input the decoder accepts
// re-encodes to the same bytes, and that verification never accepts an
// input other than the signed directory.
func FuzzDirectoryDecode(f *testing.F) {
	auth := fuzzKey(f, 9)
	d := &Directory{Issued: time.Unix(1700000000, 0), Period: time.Hour, FirstEpoch: 10, Epochs: 1, MeanDelay: time.Millisecond, Layers: 1}
	for i := range 2 {
		k := fuzzKey(f, byte(20+i))
		d.Nodes = append(d.Nodes, DirNode{ID: k.NodeID(), Addr: "127.0.0.1:4433", Keys: []KeyRecord{SignKeyRecord(k, time.Hour, 10)}})
	}
	raw, err := SignDirectory(auth, d)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Add(raw[:dirHeaderSize+70])
	f.Add([]byte("AMXD\x01"))
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := decodeDirectory(in)
		if err == nil {
			re := append(got.encodeBody(), in[len(in)-64:]...)
			if !bytes.Equal(re, in) {
				t.Fatalf("decoded directory re-encodes differently")
			}
		}
		_, err = ParseDirectory(in, auth.NodeID())
		if (err == nil) != bytes.Equal(in, raw) {
			t.Fatalf("verification: err=%v for an input equal to the signed one: %v", err, bytes.Equal(in, raw))
		}
	})
}

// FuzzKeyRecord: a record parses only when it is exactly KeyRecordSize
// bytes with a valid signature, and then re-encodes to the same bytes.
func FuzzKeyRecord(f *testing.F) {
	r := SignKeyRecord(fuzzKey(f, 4), time.Hour, 77)
	valid, _ := r.MarshalBinary()
	f.Add(valid)
	f.Add(valid[:KeyRecordSize-1])
	f.Add(append(bytes.Clone(valid), 0))
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := ParseKeyRecord(in)
		if err != nil {
			return
		}
		re, _ := got.MarshalBinary()
		if !bytes.Equal(re, in) {
			t.Fatalf("parsed record re-encodes differently")
		}
		if got.Verify() != nil {
			t.Fatalf("parsed record does not verify")
		}
	})
}

// FuzzPayloadDecode: the last hop's payload decoder accepts only a zero
// prefix, lengths inside the payload and zero padding, so what it accepts
// re-encodes to the same bytes.
func FuzzPayloadDecode(f *testing.F) {
	p, _ := encodePayload(Message{Addr: "h:1", Envelope: []byte("env")})
	f.Add(p[:64])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		full := make([]byte, PayloadSize)
		copy(full, in)
		m, err := decodePayload(full)
		if err != nil {
			return
		}
		re, err := encodePayload(m)
		if err != nil || !bytes.Equal(re, full) {
			t.Fatalf("accepted payload re-encodes differently (err %v)", err)
		}
	})
}

package msg

import (
	"crypto/ecdh"
	"crypto/hpke"
	"testing"
)

// BenchmarkSeal and BenchmarkOpen measure one message of the 1 KiB bucket
// with X-Wing; the X25519 variants run the same HPKE single-shot
// operation with DHKEM(X25519) for comparison (no signature, no padding:
// the KEM and AEAD cost alone).
func BenchmarkSeal(b *testing.B) {
	a, r := newTestNode(b), newTestNode(b)
	rec := r.msg.Record()
	body := make([]byte, 800)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Seal(a.key, rec, &Message{Body: body}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	a, r := newTestNode(b), newTestNode(b)
	env, err := Seal(a.key, r.msg.Record(), &Message{Body: make([]byte, 800)})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Open(r.msg, env); err != nil {
			b.Fatal(err)
		}
	}
}

func benchKEM(b *testing.B, k hpke.KEM, open bool) {
	sk, err := k.GenerateKey()
	if err != nil {
		b.Fatal(err)
	}
	plain := make([]byte, Buckets[0])
	info := []byte(infoLabel)
	ct, err := hpke.Seal(sk.PublicKey(), kdf(), aead(), info, plain)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if open {
			_, err = hpke.Open(sk, kdf(), aead(), info, ct)
		} else {
			_, err = hpke.Seal(sk.PublicKey(), kdf(), aead(), info, plain)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHPKESealXWing(b *testing.B)  { benchKEM(b, kem(), false) }
func BenchmarkHPKEOpenXWing(b *testing.B)  { benchKEM(b, kem(), true) }
func BenchmarkHPKESealX25519(b *testing.B) { benchKEM(b, hpke.DHKEM(ecdh.X25519()), false) }
func BenchmarkHPKEOpenX25519(b *testing.B) { benchKEM(b, hpke.DHKEM(ecdh.X25519()), true) }

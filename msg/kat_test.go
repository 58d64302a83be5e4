package msg

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hpke"
	"crypto/mlkem"
	"crypto/sha256"
	"crypto/sha3"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(s)
	*h = v
	return err
}

type katVector struct {
	Mode           int      `json:"mode"`
	KEMID          uint16   `json:"kem_id"`
	KDFID          uint16   `json:"kdf_id"`
	AEADID         uint16   `json:"aead_id"`
	Info           hexBytes `json:"info"`
	IKMR           hexBytes `json:"ikmR"`
	SKRm           hexBytes `json:"skRm"`
	PKRm           hexBytes `json:"pkRm"`
	Enc            hexBytes `json:"enc"`
	SharedSecret   hexBytes `json:"shared_secret"`
	Key            hexBytes `json:"key"`
	BaseNonce      hexBytes `json:"base_nonce"`
	ExporterSecret hexBytes `json:"exporter_secret"`
	Encryptions    []struct {
		AAD   hexBytes `json:"aad"`
		CT    hexBytes `json:"ct"`
		Nonce hexBytes `json:"nonce"`
		PT    hexBytes `json:"pt"`
	} `json:"encryptions"`
	Exports []struct {
		Context hexBytes `json:"exporter_context"`
		L       int      `json:"L"`
		Value   hexBytes `json:"exported_value"`
	} `json:"exports"`
}

func loadKAT(t *testing.T) (xwing, x25519 katVector) {
	t.Helper()
	b, err := os.ReadFile("testdata/hpke_kat.json")
	require.NoError(t, err)
	var f struct {
		XWing  katVector `json:"xwing"`
		X25519 katVector `json:"x25519_derive"`
	}
	require.NoError(t, json.Unmarshal(b, &f))
	return f.XWing, f.X25519
}

// TestHPKEKnownAnswerXWing checks the suite envelopes use against the
// published X-Wing vector: the key pair DeriveKeyPair makes from ikmR, and
// the recipient side (decapsulation of enc, the key schedule, every
// ciphertext and export). The sender side cannot be pinned to the vector:
// crypto/hpke draws its encapsulation randomness itself.
func TestHPKEKnownAnswerXWing(t *testing.T) {
	v, _ := loadKAT(t)
	require.Equal(t, uint16(KEMID), v.KEMID)
	require.Equal(t, kem().ID(), v.KEMID)
	require.Equal(t, kdf().ID(), v.KDFID)
	require.Equal(t, aead().ID(), v.AEADID)
	require.Len(t, v.Encryptions, 10)

	sk, err := kem().DeriveKeyPair(v.IKMR)
	require.NoError(t, err)
	skb, err := sk.Bytes()
	require.NoError(t, err)
	assert.Equal(t, hex.EncodeToString(v.SKRm), hex.EncodeToString(skb))
	assert.Equal(t, hex.EncodeToString(v.PKRm), hex.EncodeToString(sk.PublicKey().Bytes()))
	require.Len(t, v.PKRm, PublicKeySize)
	require.Len(t, v.Enc, encSize)

	r, err := hpke.NewRecipient(v.Enc, sk, kdf(), aead(), v.Info)
	require.NoError(t, err)
	for i, e := range v.Encryptions {
		pt, err := r.Open(e.AAD, e.CT)
		require.NoError(t, err, "encryption %d", i)
		assert.Equal(t, e.PT, hexBytes(pt), "encryption %d", i)
	}
	for i, x := range v.Exports {
		got, err := r.Export(string(x.Context), x.L)
		require.NoError(t, err)
		assert.Equal(t, x.Value, hexBytes(got), "export %d", i)
	}
	// Single-shot Open (what envelopes use) of the first encryption, which
	// has no aad only in some vectors: use NewRecipient's equivalent when
	// it has one.
	if len(v.Encryptions[0].AAD) == 0 {
		pt, err := hpke.Open(sk, kdf(), aead(), v.Info, append(bytes.Clone(v.Enc), v.Encryptions[0].CT...))
		require.NoError(t, err)
		assert.Equal(t, v.Encryptions[0].PT, hexBytes(pt))
	}

	// The same key through the path the package uses.
	pk, err := kem().NewPrivateKey(v.SKRm)
	require.NoError(t, err)
	assert.Equal(t, v.PKRm, hexBytes(pk.PublicKey().Bytes()))
}

// TestXWingRecomputed recomputes the vector's public key and shared
// secret from the X-Wing definition (draft-connolly-cfrg-xwing-kem) with
// crypto/mlkem, crypto/ecdh and SHA-3, and its key schedule from RFC 9180
// section 5.1 with crypto/hkdf, so the vector file is not trusted blindly.
func TestXWingRecomputed(t *testing.T) {
	v, x := loadKAT(t)
	// Key expansion: SHAKE256(sk, 96) = ML-KEM seed (d || z) || X25519 key.
	expanded := sha3.SumSHAKE256(v.SKRm, 96)
	dk, err := mlkem.NewDecapsulationKey768(expanded[:64])
	require.NoError(t, err)
	xsk, err := ecdh.X25519().NewPrivateKey(expanded[64:96])
	require.NoError(t, err)
	pkM, pkX := dk.EncapsulationKey().Bytes(), xsk.PublicKey().Bytes()
	assert.Equal(t, hex.EncodeToString(v.PKRm), hex.EncodeToString(append(bytes.Clone(pkM), pkX...)))

	// Decapsulation and the combiner.
	ctM, ctX := v.Enc[:1088], v.Enc[1088:]
	ssM, err := dk.Decapsulate(ctM)
	require.NoError(t, err)
	peer, err := ecdh.X25519().NewPublicKey(ctX)
	require.NoError(t, err)
	ssX, err := xsk.ECDH(peer)
	require.NoError(t, err)
	h := sha3.New256()
	for _, p := range [][]byte{ssM, ssX, ctX, pkX, []byte(`\.//^\`)} {
		h.Write(p)
	}
	ss := h.Sum(nil)
	assert.Equal(t, hex.EncodeToString(v.SharedSecret), hex.EncodeToString(ss))

	// Key schedule, base mode, no PSK.
	suite := []byte("HPKE")
	suite = binary.BigEndian.AppendUint16(suite, v.KEMID)
	suite = binary.BigEndian.AppendUint16(suite, v.KDFID)
	suite = binary.BigEndian.AppendUint16(suite, v.AEADID)
	extract := func(salt []byte, label string, ikm []byte) []byte {
		in := append(append(append([]byte("HPKE-v1"), suite...), label...), ikm...)
		prk, err := hkdf.Extract(sha256.New, in, salt)
		require.NoError(t, err)
		return prk
	}
	expand := func(prk []byte, label string, info []byte, n int) []byte {
		in := binary.BigEndian.AppendUint16(nil, uint16(n))
		in = append(append(append(append(in, "HPKE-v1"...), suite...), label...), info...)
		out, err := hkdf.Expand(sha256.New, prk, string(in), n)
		require.NoError(t, err)
		return out
	}
	ctx := append([]byte{0}, extract(nil, "psk_id_hash", nil)...)
	ctx = append(ctx, extract(nil, "info_hash", v.Info)...)
	secret := extract(ss, "secret", nil)
	assert.Equal(t, v.Key, hexBytes(expand(secret, "key", ctx, 32)))
	assert.Equal(t, v.BaseNonce, hexBytes(expand(secret, "base_nonce", ctx, 12)))
	assert.Equal(t, v.ExporterSecret, hexBytes(expand(secret, "exp", ctx, 32)))
	// The nonce of encryption i is base_nonce XOR i.
	for i, e := range v.Encryptions {
		n := bytes.Clone(v.BaseNonce)
		for j := 0; j < 8; j++ {
			n[len(n)-1-j] ^= byte(uint64(i) >> (8 * j))
		}
		assert.Equal(t, e.Nonce, hexBytes(n), "nonce %d", i)
	}

	// RFC 9180 DHKEM(X25519): DeriveKeyPair of the recipient, and the
	// public key recomputed as X25519(skRm, 9).
	require.Equal(t, uint16(0x0020), x.KEMID)
	xk, err := hpke.DHKEM(ecdh.X25519()).DeriveKeyPair(x.IKMR)
	require.NoError(t, err)
	xb, err := xk.Bytes()
	require.NoError(t, err)
	// SerializePrivateKey clears the top bit of an X25519 scalar (RFC 9180
	// section 7.1.2), which X25519 ignores anyway.
	want := bytes.Clone(x.SKRm)
	want[31] &= 0x7f
	assert.Equal(t, hexBytes(want), hexBytes(xb))
	assert.Equal(t, x.PKRm, hexBytes(xk.PublicKey().Bytes()))
	xs, err := ecdh.X25519().NewPrivateKey(x.SKRm)
	require.NoError(t, err)
	assert.Equal(t, x.PKRm, hexBytes(xs.PublicKey().Bytes()))
}

package vault

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type slip10Vectors struct {
	Source  string `json:"source"`
	Vectors []struct {
		Name   string `json:"name"`
		Seed   string `json:"seed"`
		Chains []struct {
			Path      string `json:"path"`
			ChainCode string `json:"chain_code"`
			Private   string `json:"private"`
			Public    string `json:"public"`
		} `json:"chains"`
	} `json:"vectors"`
}

func TestSLIP10Ed25519Vectors(t *testing.T) {
	data, err := os.ReadFile("testdata/slip10-ed25519.json")
	require.NoError(t, err)
	var vs slip10Vectors
	require.NoError(t, json.Unmarshal(data, &vs))
	require.Len(t, vs.Vectors, 2)
	for _, v := range vs.Vectors {
		seed, err := hex.DecodeString(v.Seed)
		require.NoError(t, err)
		require.Len(t, v.Chains, 6)
		for _, c := range v.Chains {
			t.Run(v.Name+" "+c.Path, func(t *testing.T) {
				p, err := ParsePath(c.Path)
				require.NoError(t, err)
				assert.Equal(t, c.Path, p.String())
				k, err := DeriveExtendedKey(seed, p)
				require.NoError(t, err)
				assert.Equal(t, c.Private, hex.EncodeToString(k.Key()))
				assert.Equal(t, c.ChainCode, hex.EncodeToString(k.ChainCode()))
				assert.Equal(t, c.Public, "00"+hex.EncodeToString(k.PublicKey()))

				priv, err := DeriveKey(seed, p)
				require.NoError(t, err)
				assert.Equal(t, c.Private, hex.EncodeToString(priv.Seed()))
				assert.Equal(t, c.Public, "00"+hex.EncodeToString(priv.PublicKey()))
				assert.Equal(t, ed25519.PublicKey(k.PublicKey()), priv.Public())
			})
		}
	}
}

// TestSLIP10Independent derives vector 1's m/0'/1' with bare HMAC calls.
func TestSLIP10Independent(t *testing.T) {
	seed, _ := hex.DecodeString("000102030405060708090a0b0c0d0e0f")
	mac := hmac.New(sha512.New, []byte("ed25519 seed"))
	mac.Write(seed)
	i := mac.Sum(nil)
	for _, idx := range []uint32{0x80000000, 0x80000001} {
		data := append([]byte{0}, i[:32]...)
		data = binary.BigEndian.AppendUint32(data, idx)
		mac := hmac.New(sha512.New, i[32:])
		mac.Write(data)
		i = mac.Sum(nil)
	}
	assert.Equal(t, "b1d0bad404bf35da785a64ca1ac54b2617211d2777696fbffaf208f746ae84f2", hex.EncodeToString(i[:32]))
	k, err := DeriveExtendedKey(seed, Path{0x80000000, 0x80000001})
	require.NoError(t, err)
	assert.Equal(t, i[:32], k.Key())
	assert.Equal(t, i[32:], k.ChainCode())
}

func TestSLIP10Errors(t *testing.T) {
	seed := make([]byte, 32)
	m, err := NewMasterKey(seed)
	require.NoError(t, err)
	_, err = m.Child(0)
	assert.ErrorIs(t, err, ErrNotHardened)
	_, err = m.Child(HardenedOffset - 1)
	assert.ErrorIs(t, err, ErrNotHardened)
	_, err = DeriveKey(seed, Path{HardenedOffset, 5})
	assert.ErrorIs(t, err, ErrNotHardened)

	for _, n := range []int{0, 15, 65} {
		_, err := NewMasterKey(make([]byte, n))
		assert.ErrorIs(t, err, ErrSeedLength, "%d bytes", n)
	}
	_, err = DeriveKey(make([]byte, 15), NodeIdentityPath())
	assert.ErrorIs(t, err, ErrSeedLength)
	_, err = m.Derive(make(Path, MaxPathDepth+1))
	assert.ErrorIs(t, err, ErrInvalidPath)

	// Derive does not change its receiver.
	before := m.Key()
	_, err = m.Derive(NodeIdentityPath())
	require.NoError(t, err)
	assert.Equal(t, before, m.Key())
	m.Wipe()
	assert.Equal(t, make([]byte, 32), m.Key())
}

func TestPrivateKeySigner(t *testing.T) {
	seed := make([]byte, 64)
	k, err := DeriveKey(seed, NodeIdentityPath())
	require.NoError(t, err)
	sig, err := k.Sign(nil, []byte("hello"), &ed25519.Options{})
	require.NoError(t, err)
	assert.True(t, ed25519.Verify(k.PublicKey(), []byte("hello"), sig))
	assert.True(t, k.Equal(k.Ed25519()))
	assert.True(t, k.Equal(PrivateKey(append([]byte(nil), k...))))
	other, err := DeriveKey(seed, SSHHostKeyPath())
	require.NoError(t, err)
	assert.False(t, k.Equal(other))
	assert.False(t, k.Equal("x"))
	k.Wipe()
	assert.Equal(t, make([]byte, ed25519.PrivateKeySize), []byte(k))
}

func TestParsePath(t *testing.T) {
	ok := []struct {
		in   string
		want Path
		str  string
	}{
		{"m", Path{}, "m"},
		{"m/74'/0'/0'/0'", Path{h(74), h(0), h(0), h(0)}, "m/74'/0'/0'/0'"},
		{"m/74h/0h/0h/0h", Path{h(74), h(0), h(0), h(0)}, "m/74'/0'/0'/0'"},
		{"m/0h/1'", Path{h(0), h(1)}, "m/0'/1'"},
		{"m/2147483647'", Path{h(2147483647)}, "m/2147483647'"},
	}
	for _, c := range ok {
		p, err := ParsePath(c.in)
		require.NoError(t, err, c.in)
		assert.Equal(t, c.want, p, c.in)
		assert.Equal(t, c.str, p.String(), c.in)
	}
	bad := []struct {
		in          string
		notHardened bool
	}{
		{"", false}, {"M/0'", false}, {"/0'", false}, {"m/", false}, {"m/0'/", false},
		{"m//0'", false}, {"m0'", false}, {" m/0'", false}, {"m/0' ", false},
		{"m/-1'", false}, {"m/+1'", false}, {"m/01'", false}, {"m/2147483648'", false},
		{"m/4294967296'", false}, {"m/99999999999999999999'", false}, {"m/1H", false},
		{"m/1''", false}, {"m/1'h", false}, {"m/x'", false}, {"m/'", false}, {"m/h", false},
		{"m/0", true}, {"m/74'/0", true}, {"m/1/2'", true},
	}
	for _, c := range bad {
		_, err := ParsePath(c.in)
		require.Error(t, err, "%q", c.in)
		if c.notHardened {
			assert.ErrorIs(t, err, ErrNotHardened, "%q", c.in)
		} else {
			assert.ErrorIs(t, err, ErrInvalidPath, "%q", c.in)
		}
	}
	deep := "m"
	for range MaxPathDepth {
		deep += "/1'"
	}
	p, err := ParsePath(deep)
	require.NoError(t, err)
	assert.Len(t, p, MaxPathDepth)
	_, err = ParsePath(deep + "/1'")
	assert.ErrorIs(t, err, ErrInvalidPath)
	assert.Equal(t, "m/0/5'", Path{0, h(5)}.String())
}

func TestWellKnownPaths(t *testing.T) {
	assert.Equal(t, "m/74'/0'/0'/0'", NodeIdentityPath().String())
	assert.Equal(t, "m/74'/0'/1'/0'", SSHHostKeyPath().String())
	assert.Equal(t, "m/74'/3'/0'/0'", MessageKeyPath().String())
	d0, err := DevicePath(0)
	require.NoError(t, err)
	assert.Equal(t, NodeIdentityPath(), d0)
	d7, err := DevicePath(7)
	require.NoError(t, err)
	assert.Equal(t, "m/74'/0'/0'/7'", d7.String())
	_, err = DevicePath(HardenedOffset)
	assert.ErrorIs(t, err, ErrInvalidPath)

	for v, want := range map[int]string{2: "m/74'/2'/0'/0'", 3: "m/74'/2'/0'/1'", 10: "m/74'/2'/0'/8'"} {
		p, err := EncryptionKeyPath(v)
		require.NoError(t, err)
		assert.Equal(t, want, p.String())
	}
	for _, v := range []int{1, 0, -1} {
		_, err := EncryptionKeyPath(v)
		assert.ErrorIs(t, err, ErrKeyVersion, "%d", v)
	}
	p, err := EncryptionKeyPath(int(maxKeyVersion))
	require.NoError(t, err)
	assert.Equal(t, "m/74'/2'/0'/2147483647'", p.String())
	_, err = EncryptionKeyPath(int(maxKeyVersion) + 1)
	assert.ErrorIs(t, err, ErrKeyVersion)
	// Mutating a returned path does not affect the next one.
	NodeIdentityPath()[0] = 1
	assert.Equal(t, "m/74'/0'/0'/0'", NodeIdentityPath().String())
}

package core

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func seqID() NodeID {
	var id NodeID
	for i := range id {
		id[i] = byte(i)
	}
	return id
}

func TestNodeIDZBase32Vector(t *testing.T) {
	// Vector from ARCHITECTURE.md: bytes 0x00..0x1f.
	const want = "yyyoryarywdyqnyjbefoadeqbhebnrounoktcfaadrpbs8y7daxo"
	id := seqID()
	assert.Equal(t, want, id.String())
	assert.Len(t, id.String(), 52)
	got, err := ParseNodeID(want)
	require.NoError(t, err)
	assert.Equal(t, id, got)
	got, err = ParseNodeID(strings.ToUpper(want))
	require.NoError(t, err)
	assert.Equal(t, id, got)
	got, err = ParseNodeID(hex.EncodeToString(id[:]))
	require.NoError(t, err)
	assert.Equal(t, id, got)
	assert.Equal(t, "ed25519:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", id.Fingerprint())
}

func TestNodeIDZBase32Independent(t *testing.T) {
	// Recompute the encoding with a bit-string walk, independently of the
	// accumulator loop in String.
	for range 50 {
		k, err := GenerateSecretKey()
		require.NoError(t, err)
		id := k.NodeID()
		var bits strings.Builder
		for _, b := range id {
			for i := 7; i >= 0; i-- {
				bits.WriteByte('0' + (b>>uint(i))&1)
			}
		}
		s := bits.String() + "0000"
		var want strings.Builder
		for i := 0; i < len(s); i += 5 {
			v := 0
			for _, c := range s[i : i+5] {
				v = v<<1 | int(c-'0')
			}
			want.WriteByte(zbase32[v])
		}
		assert.Equal(t, want.String(), id.String())
	}
}

func TestParseNodeIDErrors(t *testing.T) {
	good := seqID().String()
	for _, tc := range []struct{ name, in string }{
		{"empty", ""},
		{"short", good[:51]},
		{"long", good + "y"},
		{"bad char", "0" + good[1:]},
		{"padding bits set", good[:51] + "n"},
		{"bad hex", strings.Repeat("zz", 32)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseNodeID(tc.in)
			assert.ErrorIs(t, err, ErrInvalidNodeID)
		})
	}
}

func TestParseFingerprint(t *testing.T) {
	id := seqID()
	got, err := ParseFingerprint(id.Fingerprint())
	require.NoError(t, err)
	assert.Equal(t, id, got)
	got, err = ParseFingerprint(strings.ToUpper(id.Fingerprint()[8:]))
	require.NoError(t, err)
	assert.Equal(t, id, got)
	for _, bad := range []string{"ed25519:", "ed25519:zz", "rsa:00", "ed25519:" + strings.Repeat("g", 64)} {
		_, err := ParseFingerprint(bad)
		assert.ErrorIs(t, err, ErrInvalidFingerprint, bad)
	}
}

func TestParseAddr(t *testing.T) {
	id := seqID()
	for _, tc := range []struct {
		in, host string
	}{
		{id.String() + "@127.0.0.1:4433", "127.0.0.1:4433"},
		{id.String() + "@[::1]:4433", "[::1]:4433"},
		{hex.EncodeToString(id[:]) + "@example.org:1", "example.org:1"},
		{"alknet://" + id.String() + "@node.example:4433/repos/alpha", "node.example:4433"},
	} {
		a, err := ParseAddr(tc.in)
		require.NoError(t, err, tc.in)
		assert.Equal(t, id, a.ID)
		assert.Equal(t, tc.host, a.Host)
	}
	a, path, err := ParseURL("alknet://" + id.String() + "@h:9/repos/alpha")
	require.NoError(t, err)
	assert.Equal(t, "/repos/alpha", path)
	assert.Equal(t, "alknet://"+id.String()+"@h:9/x", a.URL("/x"))
	for _, bad := range []string{
		"", "127.0.0.1:4433", id.String() + "@", id.String() + "@host", id.String() + "@host:0",
		id.String() + "@host:65536", id.String() + "@:4433", id.String() + "@host:04433", "x@host:1",
	} {
		_, err := ParseAddr(bad)
		assert.ErrorIs(t, err, ErrInvalidAddr, bad)
	}
}

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "identity.key")
	k1, created, err := LoadOrCreateKey(path)
	require.NoError(t, err)
	assert.True(t, created)
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	k2, created, err := LoadOrCreateKey(path)
	require.NoError(t, err)
	assert.False(t, created)
	assert.Equal(t, k1.NodeID(), k2.NodeID())

	require.NoError(t, os.Chmod(path, 0o644))
	before, err := os.ReadFile(path)
	require.NoError(t, err)
	_, _, err = LoadOrCreateKey(path)
	assert.ErrorIs(t, err, ErrKeyPermissions)
	assert.Contains(t, err.Error(), "chmod 600")
	after, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, before, after, "a refused key file is never rewritten")
	st, err = os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), st.Mode().Perm(), "nor its mode changed")
	k3, err := ParseSecretKey(after)
	require.NoError(t, err)
	assert.Equal(t, k1.NodeID(), k3.NodeID(), "the file still holds the first key")

	require.NoError(t, os.WriteFile(filepath.Join(dir, "junk.key"), []byte("not a key"), 0o600))
	_, err = LoadKey(filepath.Join(dir, "junk.key"))
	assert.ErrorIs(t, err, ErrInvalidKey)
}

func TestSecretKeyDoesNotPrint(t *testing.T) {
	k, err := GenerateSecretKey()
	require.NoError(t, err)
	s := k.String() + k.GoString()
	assert.NotContains(t, s, hex.EncodeToString(k.PrivateKey().Seed()))
	assert.Contains(t, s, k.NodeID().String())
}

func TestSSHKeyFingerprint(t *testing.T) {
	// An OpenSSH ed25519 key and a node id of the same 32 bytes share one
	// fingerprint.
	pub := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f test"
	fp, err := FingerprintFromSSHKey([]byte(pub))
	require.NoError(t, err)
	assert.Equal(t, seqID().Fingerprint(), fp)
	_, err = FingerprintFromSSHKey([]byte("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC"))
	assert.ErrorIs(t, err, ErrInvalidKey)
}

func FuzzParseNodeID(f *testing.F) {
	f.Add(seqID().String())
	f.Add(hex.EncodeToString(make([]byte, 32)))
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseNodeID(s)
		if err != nil {
			return
		}
		// Round trip: the canonical forms parse back to the same id.
		again, err := ParseNodeID(id.String())
		if err != nil || again != id {
			t.Fatalf("round trip of %q: %v %v", s, again, err)
		}
		fp, err := ParseFingerprint(id.Fingerprint())
		if err != nil || fp != id {
			t.Fatalf("fingerprint round trip of %q", s)
		}
		if len(s) == 52 && !strings.EqualFold(id.String(), s) {
			t.Fatalf("z-base-32 %q is not canonical: %q", s, id.String())
		}
	})
}

func FuzzParseAddr(f *testing.F) {
	f.Add(seqID().String() + "@127.0.0.1:4433")
	f.Add(seqID().String() + "@[::1]:1")
	f.Add("alknet://" + seqID().String() + "@h:2/p")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddr(s)
		if err != nil {
			return
		}
		b, err := ParseAddr(a.String())
		if err != nil || a != b {
			t.Fatalf("round trip of %q: %+v %+v %v", s, a, b, err)
		}
	})
}

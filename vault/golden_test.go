package vault

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// goldenPassphrase opens the committed vault files in testdata. They were
// made once by Create (format version 1) and must keep opening: a change of
// the KDF call, the AAD, the payload or the file encoding that affects
// Create and Unlock alike would lock users out of their existing vaults,
// and only a file made before the change shows it.
const goldenPassphrase = "golden vault passphrase"

var goldenVaults = []struct {
	file   string
	params Argon2Params
	bip39  string
	nodePK string // hex public key at NodeIdentityPath
}{
	// Time and memory differ, so swapping them in the KDF call fails.
	{"golden-v1-small.json", Argon2Params{MemoryKiB: 256, Time: 2, Threads: 1}, "",
		"69c422a3a68aa7e49b0f12270370e1a5f5c4287923e36a4f4c9314afb10ddfe3"},
	// The default parameters, as `alknet vault init` writes them.
	{"golden-v1-default.json", Argon2Params{MemoryKiB: DefaultArgon2MemoryKiB, Time: DefaultArgon2Time, Threads: DefaultArgon2Threads}, "TREZOR",
		"72d59176dc08a1aaa6e1755bcd44da9f08c397efd92b002b72ad094433219d27"},
}

func TestGoldenVault(t *testing.T) {
	for _, g := range goldenVaults {
		t.Run(g.file, func(t *testing.T) {
			v, err := Open(filepath.Join("testdata", g.file))
			require.NoError(t, err)
			assert.Equal(t, g.params, v.Params())
			require.NoError(t, v.Unlock([]byte(goldenPassphrase)))
			k, err := v.NodeKey()
			require.NoError(t, err)
			assert.Equal(t, g.nodePK, hex.EncodeToString(k.PublicKey()))

			// The same key straight from the mnemonic, without the file.
			seed, err := Seed(testMnemonic, g.bip39)
			require.NoError(t, err)
			want, err := DeriveKey(seed, NodeIdentityPath())
			require.NoError(t, err)
			assert.True(t, want.Equal(k))
			v.Lock()
			assert.ErrorIs(t, v.Unlock([]byte(goldenPassphrase+"x")), ErrWrongPassphrase)
		})
	}
}

// A tampered ciphertext, nonce, salt or parameter is told apart from a
// malformed file where the structure shows it, and otherwise reported as
// "wrong passphrase or damaged vault file", never as a plain wrong
// passphrase.
func TestGoldenVaultTampered(t *testing.T) {
	orig, err := os.ReadFile(filepath.Join("testdata", "golden-v1-small.json"))
	require.NoError(t, err)
	flip := func(b64s string) string {
		raw, err := b64.DecodeString(b64s)
		require.NoError(t, err)
		raw[len(raw)/2] ^= 0x01
		return b64.EncodeToString(raw)
	}
	cases := []struct {
		name   string
		edit   func(j *fileJSON)
		target error
		msg    string
	}{
		{"ciphertext byte", func(j *fileJSON) { j.Ciphertext = flip(j.Ciphertext) }, ErrWrongPassphrase, "wrong passphrase or damaged vault file"},
		{"salt byte", func(j *fileJSON) { j.KDF.Salt = flip(j.KDF.Salt) }, ErrWrongPassphrase, "wrong passphrase or damaged vault file"},
		{"nonce byte", func(j *fileJSON) { j.Cipher.Nonce = flip(j.Cipher.Nonce) }, ErrWrongPassphrase, "wrong passphrase or damaged vault file"},
		{"time", func(j *fileJSON) { j.KDF.Time = 1 }, ErrWrongPassphrase, "wrong passphrase or damaged vault file"},
		{"salt truncated", func(j *fileJSON) { j.KDF.Salt = b64.EncodeToString([]byte("short")) }, ErrCorrupt, "kdf.salt: 5 bytes"},
		{"ciphertext truncated", func(j *fileJSON) { j.Ciphertext = b64.EncodeToString([]byte("short")) }, ErrCorrupt, "ciphertext: 5 bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var j fileJSON
			require.NoError(t, json.Unmarshal(orig, &j))
			c.edit(&j)
			data, err := json.Marshal(j)
			require.NoError(t, err)
			path := filepath.Join(t.TempDir(), "vault.json")
			require.NoError(t, os.WriteFile(path, data, 0o600))
			v, err := Open(path)
			if err == nil {
				err = v.Unlock([]byte(goldenPassphrase))
			}
			require.ErrorIs(t, err, c.target)
			assert.Contains(t, err.Error(), c.msg)
		})
	}
}

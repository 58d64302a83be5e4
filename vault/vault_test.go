package vault

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testParams keeps Argon2id fast in tests. Never use these in production.
var testParams = Argon2Params{MemoryKiB: 256, Time: 1, Threads: 1}

const testMnemonic = "legal winner thank year wave sausage worth useful legal winner thank yellow"

func createTestVault(t *testing.T, cfg Config) (*Vault, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vault.json")
	if cfg.Argon2 == (Argon2Params{}) {
		cfg.Argon2 = testParams
	}
	v, err := Create(path, []byte(testMnemonic), []byte("correct horse"), cfg)
	require.NoError(t, err)
	return v, path
}

func TestCreateOpenUnlock(t *testing.T) {
	v, path := createTestVault(t, Config{})
	require.True(t, v.Unlocked())

	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	assert.Len(t, entries, 1, "temporary file left behind")

	seed, err := Seed(testMnemonic, "")
	require.NoError(t, err)
	want, err := DeriveKey(seed, NodeIdentityPath())
	require.NoError(t, err)
	got, err := v.NodeKey()
	require.NoError(t, err)
	assert.True(t, want.Equal(got))

	o, err := Open(path)
	require.NoError(t, err)
	assert.False(t, o.Unlocked())
	assert.Equal(t, testParams, o.Params())
	_, err = o.NodeKey()
	assert.ErrorIs(t, err, ErrLocked)
	require.NoError(t, o.Unlock([]byte("correct horse")))
	assert.True(t, o.Unlocked())
	got2, err := o.NodeKey()
	require.NoError(t, err)
	assert.True(t, want.Equal(got2))

	ssh, err := o.DeriveKey(SSHHostKeyPath())
	require.NoError(t, err)
	wantSSH, err := DeriveKey(seed, SSHHostKeyPath())
	require.NoError(t, err)
	assert.True(t, wantSSH.Equal(ssh))
	assert.False(t, ssh.Equal(got2))

	// The file holds no secret in clear.
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.NotContains(t, string(data), "legal")
	var j map[string]any
	require.NoError(t, json.Unmarshal(data, &j))
	assert.EqualValues(t, 1, j["version"])
}

func TestCreateDefaultsParams(t *testing.T) {
	// Only Threads given: the rest take defaults.
	p := Argon2Params{Threads: 2}.withDefaults()
	assert.Equal(t, Argon2Params{MemoryKiB: 65536, Time: 3, Threads: 2}, p)
	assert.Equal(t, Argon2Params{MemoryKiB: 64 * 1024, Time: 3, Threads: 4}, Argon2Params{}.withDefaults())
	path := filepath.Join(t.TempDir(), "vault.json")
	_, err := Create(path, []byte(testMnemonic), []byte("pw"), Config{Argon2: Argon2Params{MemoryKiB: 4, Time: 1, Threads: 1}})
	assert.ErrorIs(t, err, ErrParams)
	_, err = Create(path, []byte(testMnemonic), []byte("pw"), Config{Argon2: Argon2Params{MemoryKiB: 64, Time: MaxArgon2Time + 1, Threads: 1}})
	assert.ErrorIs(t, err, ErrParams)
	_, err = os.Stat(path)
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestCreateRefusesOverwrite(t *testing.T) {
	_, path := createTestVault(t, Config{})
	before, err := os.ReadFile(path)
	require.NoError(t, err)
	_, err = Create(path, []byte(testMnemonic), []byte("other"), Config{Argon2: testParams})
	assert.ErrorIs(t, err, ErrExists)
	after, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, before, after)
	entries, _ := os.ReadDir(filepath.Dir(path))
	assert.Len(t, entries, 1)
}

func TestCreateRejectsBadInput(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vault.json")
	_, err := Create(path, []byte("legal winner thank"), []byte("pw"), Config{Argon2: testParams})
	assert.ErrorIs(t, err, ErrWordCount)
	_, err = Create(path, []byte(testMnemonic), nil, Config{Argon2: testParams})
	assert.ErrorIs(t, err, ErrEmptyPassphrase)
	_, err = Create(path, []byte(testMnemonic), []byte("pw"), Config{Argon2: testParams, BIP39Passphrase: bytes.Repeat([]byte("x"), 1025)})
	assert.ErrorIs(t, err, ErrSecretTooLong)
	entries, _ := os.ReadDir(dir)
	assert.Empty(t, entries)
}

func TestCreateNormalizesMnemonic(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vault.json")
	v, err := Create(path, []byte("  LEGAL winner\tthank year wave sausage worth useful legal winner thank Yellow\n"), []byte("pw"), Config{Argon2: testParams})
	require.NoError(t, err)
	seed, err := Seed(testMnemonic, "")
	require.NoError(t, err)
	want, _ := DeriveKey(seed, NodeIdentityPath())
	got, err := v.NodeKey()
	require.NoError(t, err)
	assert.True(t, want.Equal(got))
}

func TestBIP39Passphrase(t *testing.T) {
	v, path := createTestVault(t, Config{BIP39Passphrase: []byte("TREZOR")})
	seed, err := Seed(testMnemonic, "TREZOR")
	require.NoError(t, err)
	want, _ := DeriveKey(seed, NodeIdentityPath())
	got, err := v.NodeKey()
	require.NoError(t, err)
	assert.True(t, want.Equal(got))

	o, err := Open(path)
	require.NoError(t, err)
	require.NoError(t, o.Unlock([]byte("correct horse")))
	got2, _ := o.NodeKey()
	assert.True(t, want.Equal(got2))
}

func TestWrongPassphrase(t *testing.T) {
	_, path := createTestVault(t, Config{})
	before, _ := os.ReadFile(path)
	stBefore, _ := os.Stat(path)
	o, err := Open(path)
	require.NoError(t, err)
	err = o.Unlock([]byte("wrong"))
	assert.ErrorIs(t, err, ErrWrongPassphrase)
	assert.Equal(t, "alknet/vault: wrong passphrase or damaged vault file", err.Error())
	assert.False(t, o.Unlocked())
	assert.ErrorIs(t, o.Unlock(nil), ErrWrongPassphrase)

	// A failed Unlock of an unlocked vault keeps it unlocked.
	require.NoError(t, o.Unlock([]byte("correct horse")))
	assert.ErrorIs(t, o.Unlock([]byte("wrong")), ErrWrongPassphrase)
	assert.True(t, o.Unlocked())

	after, _ := os.ReadFile(path)
	stAfter, _ := os.Stat(path)
	assert.Equal(t, before, after)
	assert.Equal(t, stBefore.ModTime(), stAfter.ModTime())
	entries, _ := os.ReadDir(filepath.Dir(path))
	assert.Len(t, entries, 1)
}

func TestLockWipes(t *testing.T) {
	v, _ := createTestVault(t, Config{BIP39Passphrase: []byte("extra")})
	v.mu.Lock()
	seed, payload := v.seed, v.payload
	v.mu.Unlock()
	require.NotEqual(t, make([]byte, len(seed)), seed)
	v.Lock()
	assert.False(t, v.Unlocked())
	assert.Equal(t, make([]byte, len(seed)), seed, "seed not wiped")
	assert.Equal(t, make([]byte, len(payload)), payload, "mnemonic not wiped")
	_, err := v.NodeKey()
	assert.ErrorIs(t, err, ErrLocked)
	_, err = v.DeriveKey(MessageKeyPath())
	assert.ErrorIs(t, err, ErrLocked)
	v.Lock() // twice is fine
}

func TestChangePassphrase(t *testing.T) {
	v, path := createTestVault(t, Config{})
	want, _ := v.NodeKey()
	newParams := Argon2Params{MemoryKiB: 128, Time: 2, Threads: 1}
	require.NoError(t, v.ChangePassphrase([]byte("new pass"), newParams))
	assert.ErrorIs(t, v.ChangePassphrase(nil, newParams), ErrEmptyPassphrase)

	o, err := Open(path)
	require.NoError(t, err)
	assert.Equal(t, newParams, o.Params())
	assert.ErrorIs(t, o.Unlock([]byte("correct horse")), ErrWrongPassphrase)
	require.NoError(t, o.Unlock([]byte("new pass")))
	got, _ := o.NodeKey()
	assert.True(t, want.Equal(got))
	entries, _ := os.ReadDir(filepath.Dir(path))
	assert.Len(t, entries, 1)

	o.Lock()
	assert.ErrorIs(t, o.ChangePassphrase([]byte("x"), newParams), ErrLocked)
}

func TestOpenCorrupt(t *testing.T) {
	_, path := createTestVault(t, Config{})
	good, err := os.ReadFile(path)
	require.NoError(t, err)
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, data, 0o600))
		return p
	}

	// Every truncation is a clean ErrCorrupt.
	for n := range len(good) - 1 {
		_, err := decodeFile(good[:n])
		require.ErrorIs(t, err, ErrCorrupt, "truncated to %d", n)
	}
	_, err = Open(write("trunc.json", good[:len(good)/2]))
	assert.ErrorIs(t, err, ErrCorrupt)

	_, err = Open(write("big.json", bytes.Repeat([]byte(" "), MaxFileSize+1)))
	assert.ErrorIs(t, err, ErrFileTooLarge)
	_, err = Open(write("garbage.json", []byte("not json")))
	assert.ErrorIs(t, err, ErrCorrupt)
	_, err = Open(write("trailing.json", append(bytes.Clone(good), "{}"...)))
	assert.ErrorIs(t, err, ErrCorrupt)
	_, err = Open(filepath.Join(dir, "missing.json"))
	assert.ErrorIs(t, err, os.ErrNotExist)
	_, err = Open(dir)
	assert.Error(t, err)

	mutate := func(f func(j map[string]any)) []byte {
		var j map[string]any
		require.NoError(t, json.Unmarshal(good, &j))
		f(j)
		out, err := json.Marshal(j)
		require.NoError(t, err)
		return out
	}
	kdf := func(j map[string]any) map[string]any { return j["kdf"].(map[string]any) }
	for name, data := range map[string][]byte{
		"version":     mutate(func(j map[string]any) { j["version"] = 2 }),
		"kdf name":    mutate(func(j map[string]any) { kdf(j)["name"] = "scrypt" }),
		"cipher":      mutate(func(j map[string]any) { j["cipher"].(map[string]any)["name"] = "chacha" }),
		"unknown":     mutate(func(j map[string]any) { j["extra"] = 1 }),
		"salt b64":    mutate(func(j map[string]any) { kdf(j)["salt"] = "!!" }),
		"salt short":  mutate(func(j map[string]any) { kdf(j)["salt"] = base64.StdEncoding.EncodeToString(make([]byte, 8)) }),
		"nonce short": mutate(func(j map[string]any) { j["cipher"].(map[string]any)["nonce"] = "AAAA" }),
		"threads 0":   mutate(func(j map[string]any) { kdf(j)["threads"] = 0 }),
		"threads 300": mutate(func(j map[string]any) { kdf(j)["threads"] = 300 }),
		"memory huge": mutate(func(j map[string]any) { kdf(j)["memory_kib"] = MaxArgon2MemoryKiB + 1 }),
		"time neg":    mutate(func(j map[string]any) { kdf(j)["time"] = -1 }),
		"ct short":    mutate(func(j map[string]any) { j["ciphertext"] = "AAAA" }),
	} {
		_, err := Open(write(name+".json", data))
		assert.ErrorIs(t, err, ErrCorrupt, name)
	}

	// Authenticated parts: a flipped ciphertext bit, or changed KDF
	// parameters, cannot be told from a wrong passphrase.
	for name, data := range map[string][]byte{
		"ciphertext": mutate(func(j map[string]any) {
			ct, _ := base64.StdEncoding.DecodeString(j["ciphertext"].(string))
			ct[3] ^= 1
			j["ciphertext"] = base64.StdEncoding.EncodeToString(ct)
		}),
		"time": mutate(func(j map[string]any) { kdf(j)["time"] = 2 }),
	} {
		o, err := Open(write(name+".json", data))
		require.NoError(t, err, name)
		assert.ErrorIs(t, o.Unlock([]byte("correct horse")), ErrWrongPassphrase, name)
	}
}

func TestPayloadDecode(t *testing.T) {
	p, err := encodePayload([]byte("m"), []byte("pp"))
	require.NoError(t, err)
	m, pp, err := decodePayload(p)
	require.NoError(t, err)
	assert.Equal(t, "m", string(m))
	assert.Equal(t, "pp", string(pp))
	for n := range len(p) {
		_, _, err := decodePayload(p[:n])
		assert.ErrorIs(t, err, ErrCorrupt)
	}
	_, _, err = decodePayload(append(p, 0))
	assert.ErrorIs(t, err, ErrCorrupt)
	bad := bytes.Clone(p)
	bad[0] = 2
	_, _, err = decodePayload(bad)
	assert.ErrorIs(t, err, ErrCorrupt)
}

func TestConcurrentUse(t *testing.T) {
	v, _ := createTestVault(t, Config{})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 20 {
				if i == 0 {
					v.Lock()
					_ = v.Unlock([]byte("correct horse"))
					continue
				}
				k, err := v.NodeKey()
				if err == nil {
					assert.Len(t, k, 64)
				} else {
					assert.ErrorIs(t, err, ErrLocked)
				}
				_ = v.String()
			}
		})
	}
	wg.Wait()
}

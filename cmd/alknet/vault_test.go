package main

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/vault"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

const vaultTestMnemonic = "legal winner thank year wave sausage worth useful legal winner thank yellow"

// vaultRun runs the alknet binary built by TestMain, with no terminal on
// stdin, so a prompt fails instead of hanging.
type vaultRun struct{ t *testing.T }

func (c vaultRun) run(args ...string) result {
	c.t.Helper()
	return runCLI(c.t, nil, args...)
}

func writeSecret(t *testing.T, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(content), mode))
	require.NoError(t, os.Chmod(p, mode))
	return p
}

// expectedKey derives the key the CLI should print, through the vault package.
func expectedKey(t *testing.T, mnemonic, bip39 string, path vault.Path) (vault.PrivateKey, core.NodeID) {
	t.Helper()
	seed, err := vault.Seed(mnemonic, bip39)
	require.NoError(t, err)
	k, err := vault.DeriveKey(seed, path)
	require.NoError(t, err)
	id, err := core.NodeIDFromPublicKey(k.PublicKey())
	require.NoError(t, err)
	return k, id
}

func TestVaultCLI(t *testing.T) {
	t.Parallel()
	t.Run("derive json from mnemonic file", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		mf := writeSecret(t, dir, "mnemonic", vaultTestMnemonic+"\n", 0o600)
		key, id := expectedKey(t, vaultTestMnemonic, "", vault.NodeIdentityPath())

		r := vaultRun{t}.run("--data", filepath.Join(dir, "data"), "vault", "derive", "m/74'/0'/0'/0'", "--mnemonic-file", mf, "--json")
		require.Equal(t, 0, r.code, r.stderr)
		var got map[string]string
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &got), r.stdout)
		assert.Equal(t, map[string]string{
			"path":       "m/74'/0'/0'/0'",
			"public_key": hex.EncodeToString(key.PublicKey()),
			"node_id":    id.String(),
		}, got)

		r = vaultRun{t}.run("--data", dir, "vault", "derive", "m/74h/0h/1h/0h", "--mnemonic-file", mf, "--json", "--reveal-private")
		require.Equal(t, 0, r.code, r.stderr)
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
		sshKey, _ := expectedKey(t, vaultTestMnemonic, "", vault.SSHHostKeyPath())
		assert.Equal(t, "m/74'/0'/1'/0'", got["path"])
		assert.Equal(t, hex.EncodeToString(sshKey.Seed()), got["private_key"])
		assert.Equal(t, hex.EncodeToString(sshKey.PublicKey()), got["public_key"])

		// A known value, computed outside this code base (see vault/SPEC.md).
		abandon := writeSecret(t, dir, "abandon", strings.Repeat("abandon ", 11)+"about", 0o600)
		r = vaultRun{t}.run("--data", dir, "vault", "derive", "m/74'/0'/0'/0'", "--mnemonic-file", abandon, "--json")
		require.Equal(t, 0, r.code, r.stderr)
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
		assert.Equal(t, "e78c2766a792f09bfccb51493968ac322283e8d021a30063784d806929762ecc", got["public_key"])

		pf := writeSecret(t, dir, "bip39", "TREZOR\n", 0o600)
		r = vaultRun{t}.run("--data", dir, "vault", "derive", "m/74'/0'/0'/0'", "--mnemonic-file", mf, "--bip39-passphrase-file", pf, "--json")
		require.Equal(t, 0, r.code, r.stderr)
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
		trezorKey, _ := expectedKey(t, vaultTestMnemonic, "TREZOR", vault.NodeIdentityPath())
		assert.Equal(t, hex.EncodeToString(trezorKey.PublicKey()), got["public_key"])

		r = vaultRun{t}.run("--data", dir, "vault", "derive", "m/74'/0", "--mnemonic-file", mf)
		assert.NotEqual(t, 0, r.code)
		assert.Contains(t, r.stderr, "hardened")
		bad := writeSecret(t, dir, "bad", strings.Replace(vaultTestMnemonic, "yellow", "yelow", 1), 0o600)
		r = vaultRun{t}.run("--data", dir, "vault", "derive", "m/74'", "--mnemonic-file", bad)
		assert.NotEqual(t, 0, r.code)
		assert.Contains(t, r.stderr, `unknown word "yelow" at position 12`)
	})

	t.Run("secret files must be private", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		mf := writeSecret(t, dir, "mnemonic", vaultTestMnemonic, 0o644)
		r := vaultRun{t}.run("--data", dir, "vault", "derive", "m/74'", "--mnemonic-file", mf)
		assert.NotEqual(t, 0, r.code)
		assert.Contains(t, r.stderr, "chmod 600")
		assert.Empty(t, r.stdout)
		pf := writeSecret(t, dir, "pass", "pw", 0o640)
		r = vaultRun{t}.run("--data", filepath.Join(dir, "data"), "vault", "init", "--passphrase-file", pf)
		assert.NotEqual(t, 0, r.code)
		assert.NoFileExists(t, filepath.Join(dir, "data", "vault.json"))
	})

	t.Run("init, id, refuse overwrite", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		data := filepath.Join(dir, "data")
		pf := writeSecret(t, dir, "pass", "correct horse\n", 0o600)

		r := vaultRun{t}.run("--data", data, "vault", "init", "--words", "12", "--passphrase-file", pf)
		require.Equal(t, 0, r.code, r.stderr)
		lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
		require.Len(t, lines, 1, "init prints the node id alone: %q", r.stdout)
		id, err := core.ParseNodeID(lines[0])
		require.NoError(t, err)
		assert.Contains(t, r.stderr, "Recovery phrase (12 words)")
		st, err := os.Stat(filepath.Join(data, "vault.json"))
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
		before, err := os.ReadFile(filepath.Join(data, "vault.json"))
		require.NoError(t, err)

		r = vaultRun{t}.run("--data", data, "vault", "id", "--passphrase-file", pf)
		require.Equal(t, 0, r.code, r.stderr)
		assert.Equal(t, id.String()+"\n", r.stdout)
		r = vaultRun{t}.run("--data", data, "vault", "id", "--passphrase-file", pf, "--fingerprint")
		require.Equal(t, 0, r.code, r.stderr)
		assert.Equal(t, id.Fingerprint()+"\n", r.stdout)

		r = vaultRun{t}.run("--data", data, "vault", "init", "--passphrase-file", pf)
		assert.NotEqual(t, 0, r.code)
		assert.Contains(t, r.stderr, "already exists")
		assert.Empty(t, r.stdout)
		r = vaultRun{t}.run("--data", data, "vault", "restore", "--mnemonic-file", writeSecret(t, dir, "m", vaultTestMnemonic, 0o600), "--passphrase-file", pf)
		assert.NotEqual(t, 0, r.code)
		after, err := os.ReadFile(filepath.Join(data, "vault.json"))
		require.NoError(t, err)
		assert.Equal(t, before, after)

		// An existing identity.key blocks a vault too.
		other := filepath.Join(dir, "other")
		require.NoError(t, os.MkdirAll(other, 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(other, "identity.key"), []byte("x"), 0o600))
		r = vaultRun{t}.run("--data", other, "vault", "init", "--passphrase-file", pf)
		assert.NotEqual(t, 0, r.code)
		assert.Contains(t, r.stderr, "identity.key already exists")
		assert.NoFileExists(t, filepath.Join(other, "vault.json"))
	})

	t.Run("wrong passphrase is one line", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		data := filepath.Join(dir, "data")
		pf := writeSecret(t, dir, "pass", "the right one", 0o600)
		wrong := writeSecret(t, dir, "wrong", "wrong", 0o600)
		r := vaultRun{t}.run("--data", data, "vault", "init", "--passphrase-file", pf)
		require.Equal(t, 0, r.code, r.stderr)

		for _, args := range [][]string{
			{"vault", "id"},
			{"vault", "derive", "m/74'/0'/0'/0'"},
			{"vault", "export-ssh"},
		} {
			r := vaultRun{t}.run(append([]string{"--data", data}, append(args, "--passphrase-file", wrong)...)...)
			assert.NotEqual(t, 0, r.code, args)
			assert.Empty(t, r.stdout, args)
			assert.Equal(t, 1, strings.Count(r.stderr, "\n"), "%v: %q", args, r.stderr)
			assert.True(t, strings.HasSuffix(r.stderr, "wrong passphrase or damaged vault file\n"), "%v: %q", args, r.stderr)
		}

		// Without a passphrase file and without a terminal: a clear error, no hang.
		r = vaultRun{t}.run("--data", data, "vault", "id")
		assert.NotEqual(t, 0, r.code)
		assert.Contains(t, r.stderr, "no terminal")
	})

	t.Run("restore and export-ssh", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		data := filepath.Join(dir, "data")
		pf := writeSecret(t, dir, "pass", "pw for restore", 0o600)
		mf := writeSecret(t, dir, "mnemonic", "  Legal winner thank year wave sausage worth useful legal winner thank yellow\n", 0o600)
		bf := writeSecret(t, dir, "bip39", "TREZOR", 0o600)
		key, id := expectedKey(t, vaultTestMnemonic, "TREZOR", vault.NodeIdentityPath())

		r := vaultRun{t}.run("--data", data, "vault", "restore", "--mnemonic-file", mf, "--passphrase-file", pf, "--bip39-passphrase-file", bf)
		require.Equal(t, 0, r.code, r.stderr)
		assert.Equal(t, id.String()+"\n", r.stdout)
		assert.NotContains(t, r.stderr, "legal", "restore must not echo the phrase")

		r = vaultRun{t}.run("--data", data, "vault", "derive", "m/74'/0'/0'/0'", "--passphrase-file", pf, "--json")
		require.Equal(t, 0, r.code, r.stderr)
		var got map[string]string
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
		assert.Equal(t, hex.EncodeToString(key.PublicKey()), got["public_key"])
		assert.NotContains(t, got, "private_key")

		r = vaultRun{t}.run("--data", data, "vault", "export-ssh", "--passphrase-file", pf)
		require.Equal(t, 0, r.code, r.stderr)
		raw, err := ssh.ParseRawPrivateKey([]byte(r.stdout))
		require.NoError(t, err)
		edk, ok := raw.(*ed25519.PrivateKey)
		require.True(t, ok, "%T", raw)
		assert.True(t, key.Equal(*edk))
		pub, err := ssh.NewPublicKey(key.PublicKey())
		require.NoError(t, err)
		// The same key file names the same identity as the node id.
		fp, err := core.FingerprintFromSSHKey(ssh.MarshalAuthorizedKey(pub))
		require.NoError(t, err)
		assert.Equal(t, id.Fingerprint(), fp)

		r = vaultRun{t}.run("--data", data, "vault", "export-ssh", "--passphrase-file", pf, "--path", "m/74'/0'/1'/0'")
		require.Equal(t, 0, r.code, r.stderr)
		raw, err = ssh.ParseRawPrivateKey([]byte(r.stdout))
		require.NoError(t, err)
		hostKey, _ := expectedKey(t, vaultTestMnemonic, "TREZOR", vault.SSHHostKeyPath())
		assert.True(t, hostKey.Equal(*raw.(*ed25519.PrivateKey)))
	})
}

package vault

import (
	"path/filepath"
	"testing"
)

// BenchmarkUnlock measures Unlock with the default Argon2id parameters
// (64 MiB, 3 passes, 4 threads): a deliberate fraction of a second.
func BenchmarkUnlock(b *testing.B) {
	mn, err := NewMnemonic(24)
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "vault.json")
	pass := []byte("bench passphrase")
	v, err := Create(path, []byte(mn), pass, Config{})
	if err != nil {
		b.Fatal(err)
	}
	v.Lock()
	for b.Loop() {
		if err := v.Unlock(pass); err != nil {
			b.Fatal(err)
		}
		v.Lock()
	}
}

// BenchmarkDerive measures SLIP-0010 derivation of the four-level node
// identity path from a seed.
func BenchmarkDerive(b *testing.B) {
	seed, err := Seed("abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about", "")
	if err != nil {
		b.Fatal(err)
	}
	p := NodeIdentityPath()
	for b.Loop() {
		k, err := DeriveKey(seed, p)
		if err != nil {
			b.Fatal(err)
		}
		k.Wipe()
	}
}

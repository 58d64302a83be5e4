package vault_test

import (
	"encoding/hex"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/alkdev/alknet/vault"
)

// Derive the node identity key straight from a mnemonic.
func ExampleDeriveKey() {
	const mnemonic = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"
	seed, err := vault.Seed(mnemonic, "")
	if err != nil {
		log.Fatal(err)
	}
	key, err := vault.DeriveKey(seed, vault.NodeIdentityPath())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(vault.NodeIdentityPath())
	fmt.Println(hex.EncodeToString(key.PublicKey()))
	fmt.Println(key) // keys never print their bytes
	// Output:
	// m/74'/0'/0'/0'
	// e78c2766a792f09bfccb51493968ac322283e8d021a30063784d806929762ecc
	// [REDACTED]
}

func ExampleParsePath() {
	p, err := vault.ParsePath("m/74h/0h/1h/0h")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(p, p.String() == vault.SSHHostKeyPath().String())

	_, err = vault.ParsePath("m/74'/0")
	fmt.Println(err)
	// Output:
	// m/74'/0'/1'/0' true
	// alknet/vault: ed25519 supports hardened derivation only: "m/74'/0": component 2 "0" has no ' or h
}

func ExampleValidateMnemonic() {
	fmt.Println(vault.ValidateMnemonic("legal winner thank year wave sausage worth useful legal winner thank yellow"))
	fmt.Println(vault.ValidateMnemonic("legal winner thank year wave sausage worth useful legal winner thank zoo"))
	fmt.Println(vault.ValidateMnemonic("legal winner thank year wave sausage worth usefull legal winner thank yellow"))
	// Output:
	// <nil>
	// alknet/vault: checksum mismatch
	// alknet/vault: unknown word "usefull" at position 8
}

// Create a vault file, open it again, unlock it and use its keys.
func ExampleCreate() {
	dir, err := os.MkdirTemp("", "vault-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "vault.json")

	mnemonic, err := vault.NewMnemonic(24) // show it to the user once
	if err != nil {
		log.Fatal(err)
	}
	// Small Argon2id parameters keep the example fast; leave the zero
	// value (64 MiB, 3 passes, 4 threads) in real use.
	cfg := vault.Config{Argon2: vault.Argon2Params{MemoryKiB: 1024, Time: 1, Threads: 1}}
	v, err := vault.Create(path, []byte(mnemonic), []byte("correct horse battery staple"), cfg)
	if err != nil {
		log.Fatal(err)
	}
	created, _ := v.NodeKey()
	v.Lock()

	v, err = vault.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(v.Unlock([]byte("wrong")))
	if err := v.Unlock([]byte("correct horse battery staple")); err != nil {
		log.Fatal(err)
	}
	defer v.Lock()
	opened, _ := v.NodeKey()
	fmt.Println(v.Unlocked(), created.Equal(opened))

	// Secrets at rest under key version 2.
	enc, err := v.Encrypt([]byte("s3cret"), 2)
	if err != nil {
		log.Fatal(err)
	}
	enc, _ = v.Rotate(enc, 3)
	plain, _ := v.Decrypt(enc)
	fmt.Println(enc.KeyVersion, string(plain))
	// Output:
	// alknet/vault: wrong passphrase or damaged vault file
	// true true
	// 3 s3cret
}

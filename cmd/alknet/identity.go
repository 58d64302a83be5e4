package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/vault"
	"github.com/spf13/cobra"
)

const identityFile = "identity.key"

// loadNodeKey returns the node's key from the data directory: derived from
// vault.json when it exists (unlocked with --passphrase-file or a prompt),
// else identity.key. With create set, a missing identity is created (and
// reported on stderr).
func (g *globals) loadNodeKey(create bool) (core.SecretKey, error) {
	if _, err := os.Stat(g.path(vaultFile)); err == nil {
		return g.vaultNodeKey()
	}
	path := g.path(identityFile)
	if !create {
		k, err := core.LoadKey(path)
		if errors.Is(err, fs.ErrNotExist) {
			return core.SecretKey{}, fmt.Errorf("no identity in %s; run alknet init", g.dataDir)
		}
		return k, err
	}
	if err := g.prepareDataDir(); err != nil {
		return core.SecretKey{}, err
	}
	k, created, err := core.LoadOrCreateKey(path)
	if err != nil {
		return core.SecretKey{}, err
	}
	if created {
		fmt.Fprintf(g.stderr, "created node identity %s in %s\n", k.NodeID(), path)
	}
	return k, nil
}

// clientKey returns the key a dialing command presents: --key FILE (PKCS#8
// or OpenSSH ed25519) when given, else the data directory's identity,
// created on first use.
func (g *globals) clientKey(keyFile string) (core.SecretKey, error) {
	if keyFile != "" {
		return core.LoadKey(keyFile)
	}
	return g.loadNodeKey(true)
}

func newInitCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "Create the data directory and the node identity",
		Long: `Create the data directory and identity.key (mode 0600). An existing key is
never overwritten. Prints the node id.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := g.loadNodeKey(true)
			if err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, k.NodeID())
			return nil
		},
	}
}

func newIDCmd(g *globals) *cobra.Command {
	var fingerprint bool
	cmd := &cobra.Command{
		Use:   "id",
		Short: "Print this node's id (or --fingerprint)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := g.loadNodeKey(false)
			if err != nil {
				return err
			}
			if fingerprint {
				fmt.Fprintln(g.stdout, k.NodeID().Fingerprint())
			} else {
				fmt.Fprintln(g.stdout, k.NodeID())
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&fingerprint, "fingerprint", false, "print the fingerprint ed25519:<hex> instead of the node id")
	return cmd
}

// vaultNodeKey unlocks the data directory's vault and returns the node key
// it derives; the vault is locked again before returning.
func (g *globals) vaultNodeKey() (core.SecretKey, error) {
	v, err := g.unlockVault(g.passphraseFile)
	if err != nil {
		return core.SecretKey{}, err
	}
	defer v.Lock()
	key, err := v.NodeKey()
	if err != nil {
		return core.SecretKey{}, err
	}
	defer key.Wipe()
	for _, h := range vaultUnlockHooks {
		if err := h(g, v); err != nil {
			return core.SecretKey{}, err
		}
	}
	return core.NewSecretKey(key.Seed())
}

// vaultUnlockHooks run while loadNodeKey holds the vault unlocked, so that
// a module deriving keys of its own from the vault (the message key) needs
// no second passphrase prompt. Added from init functions.
var vaultUnlockHooks []func(g *globals, v *vault.Vault) error

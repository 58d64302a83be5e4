package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/vault"
	"github.com/spf13/cobra"
	"golang.org/x/crypto/ssh"
	"golang.org/x/term"
)

const vaultFile = "vault.json"

// maxSecretFile bounds a passphrase or mnemonic file.
const maxSecretFile = 64 << 10

func newVaultCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "vault",
		Short: "Keep the node key in a mnemonic-backed, passphrase-encrypted vault",
		Long: `A vault (vault.json in the data directory) holds a BIP39 recovery phrase,
encrypted with AES-256-GCM under an Argon2id key from a passphrase. Every key
of the node is derived from the phrase (SLIP-0010 ed25519, m/74'/...), so the
phrase alone restores the node on another machine.

Secrets come only from prompts on a terminal or from files that only their
owner can read (mode 0600 or 0400); never from arguments or the environment.`,
	}
	cmd.AddCommand(
		newVaultInitCmd(g),
		newVaultRestoreCmd(g),
		newVaultIDCmd(g),
		newVaultDeriveCmd(g),
		newVaultExportSSHCmd(g),
	)
	return cmd
}

func newVaultInitCmd(g *globals) *cobra.Command {
	var words int
	var passFile, bip39File string
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a vault with a new recovery phrase",
		Long: `Create vault.json in the data directory with a new BIP39 recovery phrase,
show the phrase once on stderr, and print the node id. Refuses when the data
directory already holds vault.json or identity.key.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := g.refuseExistingIdentity(); err != nil {
				return err
			}
			mnemonic, err := vault.NewMnemonic(words) // checks --words before any prompt
			if err != nil {
				return err
			}
			bip39, err := optionalSecretFile(bip39File)
			if err != nil {
				return err
			}
			defer clear(bip39)
			pass, err := g.newVaultPassphrase(passFile)
			if err != nil {
				return err
			}
			defer clear(pass)
			id, err := g.createVault([]byte(mnemonic), pass, bip39)
			if err != nil {
				return err
			}
			showMnemonic(g.stderr, mnemonic)
			fmt.Fprintf(g.stderr, "created %s for node %s\n", g.path(vaultFile), id)
			fmt.Fprintln(g.stdout, id)
			return nil
		},
	}
	cmd.Flags().IntVar(&words, "words", 24, "recovery phrase length: 12, 15, 18, 21 or 24 words")
	cmd.Flags().StringVar(&passFile, "passphrase-file", "", "read the vault passphrase from this 0600 file instead of prompting")
	cmd.Flags().StringVar(&bip39File, "bip39-passphrase-file", "", "optional BIP39 passphrase (\"25th word\") from this 0600 file")
	return cmd
}

func newVaultRestoreCmd(g *globals) *cobra.Command {
	var mnemonicFile, passFile, bip39File string
	cmd := &cobra.Command{
		Use:   "restore",
		Short: "Create a vault from an existing recovery phrase",
		Long: `Create vault.json in the data directory from an existing BIP39 recovery
phrase (prompted for, or read from --mnemonic-file) and print the node id.
Refuses when the data directory already holds vault.json or identity.key.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := g.refuseExistingIdentity(); err != nil {
				return err
			}
			var mnemonic []byte
			var err error
			if mnemonicFile != "" {
				mnemonic, err = readSecretFile(mnemonicFile)
			} else {
				mnemonic, err = g.prompt("Recovery phrase (input hidden): ")
			}
			if err != nil {
				return err
			}
			defer clear(mnemonic)
			if err := vault.ValidateMnemonic(vault.NormalizeMnemonic(string(mnemonic))); err != nil {
				return fmt.Errorf("recovery phrase: %w", err)
			}
			bip39, err := optionalSecretFile(bip39File)
			if err != nil {
				return err
			}
			defer clear(bip39)
			pass, err := g.newVaultPassphrase(passFile)
			if err != nil {
				return err
			}
			defer clear(pass)
			id, err := g.createVault(mnemonic, pass, bip39)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stderr, "restored %s for node %s\n", g.path(vaultFile), id)
			fmt.Fprintln(g.stdout, id)
			return nil
		},
	}
	cmd.Flags().StringVar(&mnemonicFile, "mnemonic-file", "", "read the recovery phrase from this 0600 file instead of prompting")
	cmd.Flags().StringVar(&passFile, "passphrase-file", "", "read the new vault passphrase from this 0600 file instead of prompting")
	cmd.Flags().StringVar(&bip39File, "bip39-passphrase-file", "", "optional BIP39 passphrase (\"25th word\") from this 0600 file")
	return cmd
}

func newVaultIDCmd(g *globals) *cobra.Command {
	var passFile string
	var fingerprint, asJSON bool
	cmd := &cobra.Command{
		Use:   "id",
		Short: "Print the node id the vault derives (or --fingerprint)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, err := g.unlockVault(passFile)
			if err != nil {
				return err
			}
			defer v.Lock()
			key, err := v.NodeKey()
			if err != nil {
				return err
			}
			defer key.Wipe()
			sk, err := core.NewSecretKey(key.Seed())
			if err != nil {
				return err
			}
			id := sk.NodeID()
			switch {
			case asJSON:
				return json.NewEncoder(g.stdout).Encode(map[string]string{
					"node_id":     id.String(),
					"fingerprint": id.Fingerprint(),
					"public_key":  hex.EncodeToString(id[:]),
				})
			case fingerprint:
				fmt.Fprintln(g.stdout, id.Fingerprint())
			default:
				fmt.Fprintln(g.stdout, id)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&passFile, "passphrase-file", "", "read the vault passphrase from this 0600 file instead of prompting")
	cmd.Flags().BoolVar(&fingerprint, "fingerprint", false, "print the fingerprint ed25519:<hex> instead of the node id")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print node_id, fingerprint and public_key as JSON")
	return cmd
}

// deriveOutput is the --json form of vault derive.
type deriveOutput struct {
	Path       string `json:"path"`
	PublicKey  string `json:"public_key"`
	NodeID     string `json:"node_id"`
	PrivateKey string `json:"private_key,omitempty"`
}

func newVaultDeriveCmd(g *globals) *cobra.Command {
	var mnemonicFile, bip39File, passFile string
	var asJSON, reveal bool
	cmd := &cobra.Command{
		Use:   "derive PATH",
		Short: "Derive the ed25519 key at a path such as m/74'/0'/0'/0'",
		Long: `Derive the ed25519 key at PATH (hardened indexes only, marked ' or h) and
print the path, the public key in hex and the node id it would have. The
private key (the 32-byte SLIP-0010 key, hex) is printed only with
--reveal-private. Keys come from the vault, or, with --mnemonic-file, straight
from a recovery phrase without any vault.

Well-known paths: m/74'/0'/0'/0' node identity, m/74'/0'/0'/N' device N,
m/74'/0'/1'/0' SSH host key, m/74'/3'/0'/0' messaging key,
m/74'/2'/0'/(V-2)' secrets key version V.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := vault.ParsePath(args[0])
			if err != nil {
				return err
			}
			var key vault.PrivateKey
			if mnemonicFile != "" {
				key, err = deriveFromMnemonicFile(mnemonicFile, bip39File, p)
			} else {
				if bip39File != "" {
					return errors.New("--bip39-passphrase-file needs --mnemonic-file: a vault keeps its own BIP39 passphrase")
				}
				var v *vault.Vault
				if v, err = g.unlockVault(passFile); err != nil {
					return err
				}
				key, err = v.DeriveKey(p)
				v.Lock()
			}
			if err != nil {
				return err
			}
			defer key.Wipe()
			id, err := core.NodeIDFromPublicKey(key.PublicKey())
			if err != nil {
				return err
			}
			out := deriveOutput{Path: p.String(), PublicKey: hex.EncodeToString(id[:]), NodeID: id.String()}
			if reveal {
				seed := key.Seed()
				out.PrivateKey = hex.EncodeToString(seed)
				clear(seed)
			}
			if asJSON {
				return json.NewEncoder(g.stdout).Encode(out)
			}
			fmt.Fprintf(g.stdout, "path         %s\npublic_key   %s\nnode_id      %s\n", out.Path, out.PublicKey, out.NodeID)
			if reveal {
				fmt.Fprintf(g.stdout, "private_key  %s\n", out.PrivateKey)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&mnemonicFile, "mnemonic-file", "", "derive from the recovery phrase in this 0600 file instead of the vault")
	cmd.Flags().StringVar(&bip39File, "bip39-passphrase-file", "", "BIP39 passphrase for --mnemonic-file, from this 0600 file")
	cmd.Flags().StringVar(&passFile, "passphrase-file", "", "read the vault passphrase from this 0600 file instead of prompting")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print path, public_key, node_id (and private_key) as JSON")
	cmd.Flags().BoolVar(&reveal, "reveal-private", false, "also print the private key (hex)")
	return cmd
}

func deriveFromMnemonicFile(mnemonicFile, bip39File string, p vault.Path) (vault.PrivateKey, error) {
	m, err := readSecretFile(mnemonicFile)
	if err != nil {
		return nil, err
	}
	defer clear(m)
	bip39, err := optionalSecretFile(bip39File)
	if err != nil {
		return nil, err
	}
	defer clear(bip39)
	seed, err := vault.Seed(vault.NormalizeMnemonic(string(m)), string(bip39))
	if err != nil {
		return nil, fmt.Errorf("recovery phrase in %s: %w", mnemonicFile, err)
	}
	defer clear(seed)
	return vault.DeriveKey(seed, p)
}

func newVaultExportSSHCmd(g *globals) *cobra.Command {
	var passFile, pathFlag, comment string
	cmd := &cobra.Command{
		Use:   "export-ssh",
		Short: "Write a vault key as an OpenSSH ed25519 private key to stdout",
		Long: `Write the key at --path (default: the node identity, m/74'/0'/0'/0') as an
unencrypted OpenSSH private key (PEM) to stdout, for ssh -i or alknet pipe
--key. Redirect it to a file with mode 0600.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := vault.ParsePath(pathFlag)
			if err != nil {
				return err
			}
			v, err := g.unlockVault(passFile)
			if err != nil {
				return err
			}
			key, err := v.DeriveKey(p)
			v.Lock()
			if err != nil {
				return err
			}
			defer key.Wipe()
			if comment == "" {
				id, err := core.NodeIDFromPublicKey(key.PublicKey())
				if err != nil {
					return err
				}
				comment = "alknet " + id.String()
			}
			block, err := ssh.MarshalPrivateKey(key.Ed25519(), comment)
			if err != nil {
				return fmt.Errorf("marshal OpenSSH key: %w", err)
			}
			defer clear(block.Bytes)
			return pem.Encode(g.stdout, block)
		},
	}
	cmd.Flags().StringVar(&passFile, "passphrase-file", "", "read the vault passphrase from this 0600 file instead of prompting")
	cmd.Flags().StringVar(&pathFlag, "path", vault.NodeIdentityPath().String(), "derivation path of the key to export")
	cmd.Flags().StringVar(&comment, "comment", "", "key comment (default: alknet <node id>)")
	return cmd
}

// refuseExistingIdentity fails when the data directory already has a
// vault or an identity key: a node has one identity.
func (g *globals) refuseExistingIdentity() error {
	for _, name := range []string{vaultFile, identityFile} {
		p := g.path(name)
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("%s already exists; refusing to overwrite the node identity", p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// createVault writes vault.json and returns the node id it derives.
func (g *globals) createVault(mnemonic, pass, bip39 []byte) (core.NodeID, error) {
	if err := g.prepareDataDir(); err != nil {
		return core.NodeID{}, err
	}
	v, err := vault.Create(g.path(vaultFile), mnemonic, pass, vault.Config{BIP39Passphrase: bip39})
	if err != nil {
		return core.NodeID{}, err
	}
	defer v.Lock()
	key, err := v.NodeKey()
	if err != nil {
		return core.NodeID{}, err
	}
	defer key.Wipe()
	sk, err := core.NewSecretKey(key.Seed())
	if err != nil {
		return core.NodeID{}, err
	}
	return sk.NodeID(), nil
}

// unlockVault opens the data directory's vault and unlocks it with the
// passphrase from passFile or a prompt.
func (g *globals) unlockVault(passFile string) (*vault.Vault, error) {
	path := g.path(vaultFile)
	v, err := vault.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no vault in %s; run alknet vault init or alknet vault restore", g.dataDir)
	}
	if err != nil {
		return nil, err
	}
	var pass []byte
	if passFile != "" {
		pass, err = readSecretFile(passFile)
	} else {
		pass, err = g.prompt("Vault passphrase: ")
	}
	if err != nil {
		return nil, err
	}
	defer clear(pass)
	if err := v.Unlock(pass); err != nil {
		return nil, fmt.Errorf("unlock %s: %w", path, err)
	}
	return v, nil
}

// newVaultPassphrase reads a new passphrase from passFile, or prompts for
// it twice.
func (g *globals) newVaultPassphrase(passFile string) ([]byte, error) {
	if passFile != "" {
		p, err := readSecretFile(passFile)
		if err != nil {
			return nil, err
		}
		if err := checkNewPassphrase(p); err != nil {
			clear(p)
			return nil, fmt.Errorf("%s: %w", passFile, err)
		}
		return p, nil
	}
	p, err := g.prompt("New vault passphrase: ")
	if err != nil {
		return nil, err
	}
	if err := checkNewPassphrase(p); err != nil {
		clear(p)
		return nil, err
	}
	again, err := g.prompt("Repeat the passphrase: ")
	if err != nil {
		clear(p)
		return nil, err
	}
	defer clear(again)
	if !bytes.Equal(p, again) {
		clear(p)
		return nil, errors.New("the passphrases do not match")
	}
	return p, nil
}

// minPassphraseLen is the fewest characters a new vault passphrase may have.
const minPassphraseLen = 8

// checkNewPassphrase refuses an empty or short new passphrase: the vault
// file may be copied, and a short passphrase falls to guessing despite
// Argon2id.
func checkNewPassphrase(p []byte) error {
	if len(p) == 0 {
		return errors.New("empty passphrase; the vault needs one")
	}
	if n := utf8.RuneCount(p); n < minPassphraseLen {
		return fmt.Errorf("passphrase too short (%d characters); use at least %d, a few words are best", n, minPassphraseLen)
	}
	return nil
}

// prompt reads a line with echo off from the terminal on stdin.
func (g *globals) prompt(msg string) ([]byte, error) {
	f, ok := g.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, errors.New("no terminal to prompt on; pass the secret in a 0600 file (see --help)")
	}
	fmt.Fprint(g.stderr, msg)
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(g.stderr)
	if err != nil {
		return nil, fmt.Errorf("read from terminal: %w", err)
	}
	return b, nil
}

// readSecretFile reads a secret from a regular file that only its owner
// can read or write, and strips one trailing line break.
func readSecretFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%s has mode %04o and others can read it; secrets must be in a file only its owner can read (chmod 600 %s)", path, perm, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > maxSecretFile {
		clear(b)
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxSecretFile)
	}
	switch {
	case bytes.HasSuffix(b, []byte("\r\n")):
		b = b[:len(b)-2]
	case bytes.HasSuffix(b, []byte("\n")):
		b = b[:len(b)-1]
	}
	return b, nil
}

// optionalSecretFile is readSecretFile, or nil when path is empty.
func optionalSecretFile(path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	return readSecretFile(path)
}

// showMnemonic prints the recovery phrase once, numbered, four words a line.
func showMnemonic(w io.Writer, mnemonic string) {
	words := strings.Fields(mnemonic)
	fmt.Fprintf(w, "\nRecovery phrase (%d words). Write it down and keep it offline:\nit restores every key of this node, and it is shown only this once.\n\n", len(words))
	var line strings.Builder
	for i, word := range words {
		fmt.Fprintf(&line, "%3d. %-10s", i+1, word)
		if i%4 == 3 || i == len(words)-1 {
			fmt.Fprintln(w, strings.TrimRight(line.String(), " "))
			line.Reset()
		}
	}
	fmt.Fprintln(w)
}

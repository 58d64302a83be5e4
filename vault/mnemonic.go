package vault

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	_ "embed"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/text/unicode/norm"
)

// The BIP39 English word list, exactly as published (2048 lines, each
// ending in '\n'). Its SHA-256 is checked by a test.
//
//go:embed wordlist/english.txt
var englishList string

// english is the parsed word list, sorted, so lookups are a binary search.
// It is never modified after package initialization.
var english = parseWordlist(englishList)

func parseWordlist(s string) []string {
	w := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	if len(w) != 2048 || !slices.IsSorted(w) {
		panic("alknet/vault: embedded BIP39 word list is damaged")
	}
	return w
}

// seedRounds is the BIP39 PBKDF2 iteration count.
const seedRounds = 2048

// SeedSize is the length of a BIP39 seed in bytes.
const SeedSize = 64

// entropySize returns the entropy length in bytes for a word count.
func entropySize(words int) (int, error) {
	switch words {
	case 12, 15, 18, 21, 24:
		return words * 4 / 3, nil
	}
	return 0, fmt.Errorf("%w: got %d, want 12, 15, 18, 21 or 24", ErrWordCount, words)
}

// NewMnemonic returns a fresh BIP39 English mnemonic of 12, 15, 18, 21 or
// 24 words (128 to 256 bits of entropy from crypto/rand), words separated
// by single spaces.
func NewMnemonic(words int) (string, error) {
	n, err := entropySize(words)
	if err != nil {
		return "", err
	}
	entropy := make([]byte, n)
	defer clear(entropy)
	if _, err := rand.Read(entropy); err != nil {
		return "", fmt.Errorf("read random entropy: %w", err)
	}
	return EntropyToMnemonic(entropy)
}

// EntropyToMnemonic encodes 16, 20, 24, 28 or 32 bytes of entropy as a
// BIP39 English mnemonic (with its checksum), words separated by single
// spaces.
func EntropyToMnemonic(entropy []byte) (string, error) {
	switch len(entropy) {
	case 16, 20, 24, 28, 32:
	default:
		return "", fmt.Errorf("%w: %d bytes, want 16, 20, 24, 28 or 32", ErrEntropyLength, len(entropy))
	}
	words := len(entropy) * 3 / 4
	// entropy || first byte of SHA-256(entropy): the checksum is at most
	// 8 bits, so one byte of the hash is always enough.
	buf := make([]byte, len(entropy)+1)
	defer clear(buf)
	copy(buf, entropy)
	sum := sha256.Sum256(entropy)
	buf[len(entropy)] = sum[0]
	var b strings.Builder
	for i := range words {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(english[read11(buf, i*11)])
	}
	return b.String(), nil
}

// read11 reads the 11-bit big-endian value that starts at bit off of buf.
func read11(buf []byte, off int) int {
	v := 0
	for bit := off; bit < off+11; bit++ {
		v = v<<1 | int(buf[bit/8]>>(7-bit%8)&1)
	}
	return v
}

// MnemonicToEntropy checks a BIP39 English mnemonic and returns the
// entropy it encodes. Words may be separated by any Unicode white space;
// they must be lower case, as in the list.
func MnemonicToEntropy(mnemonic string) ([]byte, error) {
	return entropyFromWords(bytes.Fields(norm.NFKD.Bytes([]byte(mnemonic))))
}

// ValidateMnemonic checks a BIP39 English mnemonic: its word count, that
// every word is in the list (the error names the first word that is not,
// and its position) and its checksum (ErrChecksumMismatch).
//
// The error may quote one word of the mnemonic: show it to the user who
// typed it, do not log it.
func ValidateMnemonic(mnemonic string) error {
	e, err := MnemonicToEntropy(mnemonic)
	clear(e)
	return err
}

func entropyFromWords(words [][]byte) ([]byte, error) {
	n, err := entropySize(len(words))
	if err != nil {
		return nil, err
	}
	buf := make([]byte, n+1)
	defer clear(buf)
	for i, w := range words {
		idx, ok := slices.BinarySearch(english, string(w))
		if !ok {
			return nil, fmt.Errorf("%w %q at position %d", ErrUnknownWord, w, i+1)
		}
		for j := range 11 {
			if idx>>(10-j)&1 == 1 {
				bit := i*11 + j
				buf[bit/8] |= 1 << (7 - bit%8)
			}
		}
	}
	sum := sha256.Sum256(buf[:n])
	mask := byte(0xff) << (8 - len(words)/3) // checksum bits: words/3
	if buf[n]&mask != sum[0]&mask {
		return nil, ErrChecksumMismatch
	}
	return bytes.Clone(buf[:n]), nil
}

// NormalizeMnemonic returns the canonical form of a mnemonic as people
// type it: NFKD, lower case, words separated by single spaces. Seed hashes
// the mnemonic as given, so normalize before Seed when the input came from
// a person.
func NormalizeMnemonic(mnemonic string) string {
	return string(normalizeMnemonic([]byte(mnemonic)))
}

func normalizeMnemonic(m []byte) []byte {
	lower := bytes.ToLower(norm.NFKD.Bytes(m))
	out := bytes.Join(bytes.Fields(lower), []byte{' '})
	clear(lower)
	return out
}

// Seed returns the 64-byte BIP39 seed of a mnemonic and an optional
// passphrase ("" for none): PBKDF2-HMAC-SHA512 with 2048 rounds over the
// NFKD form of the mnemonic, salted with "mnemonic" followed by the NFKD
// form of the passphrase. The mnemonic is validated first; it is hashed
// exactly as given (after NFKD), so "a  b" and "a b" give different seeds:
// see NormalizeMnemonic.
func Seed(mnemonic, passphrase string) ([]byte, error) {
	m := norm.NFKD.Bytes([]byte(mnemonic))
	defer clear(m)
	e, err := entropyFromWords(bytes.Fields(m))
	clear(e)
	if err != nil {
		return nil, err
	}
	p := norm.NFKD.Bytes([]byte(passphrase))
	defer clear(p)
	return seedFromNFKD(m, p), nil
}

// seedFromNFKD computes the BIP39 seed of an already NFKD-normalized
// mnemonic and passphrase. It does not validate the mnemonic.
func seedFromNFKD(mnemonic, passphrase []byte) []byte {
	salt := make([]byte, 0, len("mnemonic")+len(passphrase)+4)
	salt = append(salt, "mnemonic"...)
	salt = append(salt, passphrase...)
	defer clear(salt)
	return pbkdf2SHA512Block(mnemonic, salt, seedRounds)
}

// pbkdf2SHA512Block is PBKDF2-HMAC-SHA512 (RFC 8018) for a 64-byte output,
// which is exactly one block: T1 = U1 ^ U2 ^ ... ^ Uc with
// U1 = HMAC(P, S || INT(1)) and Ui = HMAC(P, Ui-1). It keeps the password
// in a byte slice (the standard library takes a string), so callers can
// wipe it.
func pbkdf2SHA512Block(password, salt []byte, rounds int) []byte {
	mac := hmac.New(sha512.New, password)
	mac.Write(salt)
	mac.Write(binary.BigEndian.AppendUint32(nil, 1))
	u := mac.Sum(nil)
	out := bytes.Clone(u)
	for range rounds - 1 {
		mac.Reset()
		mac.Write(u)
		u = mac.Sum(u[:0])
		for i := range out {
			out[i] ^= u[i]
		}
	}
	clear(u)
	return out
}

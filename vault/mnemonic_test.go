package vault

import (
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The SHA-256 of the standard BIP39 english.txt, trailing newline included.
const englishSHA256 = "2f5eed53a4727b4bf8880d8f3f199efc90e58503646d9ff8eff3a2ed3b24dbda"

func TestWordlist(t *testing.T) {
	sum := sha256.Sum256([]byte(englishList))
	assert.Equal(t, englishSHA256, hex.EncodeToString(sum[:]))
	require.Len(t, english, 2048)
	assert.True(t, slices.IsSorted(english))
	assert.Len(t, slices.Compact(slices.Clone(english)), 2048, "duplicate words")
	assert.Equal(t, "abandon", english[0])
	assert.Equal(t, "zoo", english[2047])
}

type bip39Vectors struct {
	Source     string      `json:"source"`
	Passphrase string      `json:"passphrase"`
	Vectors    [][3]string `json:"vectors"`
}

func loadBIP39Vectors(t *testing.T) bip39Vectors {
	t.Helper()
	data, err := os.ReadFile("testdata/bip39-trezor-english.json")
	require.NoError(t, err)
	var v bip39Vectors
	require.NoError(t, json.Unmarshal(data, &v))
	require.NotEmpty(t, v.Vectors)
	return v
}

func TestBIP39TrezorVectors(t *testing.T) {
	v := loadBIP39Vectors(t)
	for _, vec := range v.Vectors {
		entropyHex, mnemonic, seedHex := vec[0], vec[1], vec[2]
		t.Run(mnemonic[:min(len(mnemonic), 30)], func(t *testing.T) {
			entropy, err := hex.DecodeString(entropyHex)
			require.NoError(t, err)

			got, err := EntropyToMnemonic(entropy)
			require.NoError(t, err)
			assert.Equal(t, mnemonic, got)

			back, err := MnemonicToEntropy(mnemonic)
			require.NoError(t, err)
			assert.Equal(t, entropy, back)
			assert.NoError(t, ValidateMnemonic(mnemonic))

			seed, err := Seed(mnemonic, v.Passphrase)
			require.NoError(t, err)
			assert.Equal(t, seedHex, hex.EncodeToString(seed))
		})
	}
}

// TestBIP39Independent recomputes one vector without the package's code:
// the mnemonic through a big.Int bit string, the seed through the standard
// library's PBKDF2.
func TestBIP39Independent(t *testing.T) {
	const (
		entropyHex = "9e885d952ad362caeb4efe34a8e91bd2"
		mnemonic   = "ozone drill grab fiber curtain grace pudding thank cruise elder eight picnic"
		seedHex    = "274ddc525802f7c828d8ef7ddbcdc5304e87ac3535913611fbbfa986d0c9e5476c91689f9c8a54fd55bd38606aa6a8595ad213d4c9c9f9aca3fb217069a41028"
	)
	words := strings.Split(strings.TrimSpace(englishList), "\n")
	entropy, _ := hex.DecodeString(entropyHex)
	sum := sha256.Sum256(entropy)
	// entropy || 4 checksum bits as one big number of 132 bits.
	n := new(big.Int).SetBytes(entropy)
	n.Lsh(n, 4)
	n.Or(n, big.NewInt(int64(sum[0]>>4)))
	var out []string
	mask := big.NewInt(2047)
	for i := 11; i >= 0; i-- {
		idx := new(big.Int).Rsh(n, uint(i*11))
		out = append(out, words[idx.And(idx, mask).Int64()])
	}
	assert.Equal(t, mnemonic, strings.Join(out, " "))

	want, err := pbkdf2.Key(sha512.New, mnemonic, []byte("mnemonicTREZOR"), 2048, 64)
	require.NoError(t, err)
	assert.Equal(t, seedHex, hex.EncodeToString(want))

	got, err := Seed(mnemonic, "TREZOR")
	require.NoError(t, err)
	assert.Equal(t, want, got)
	// and the package's PBKDF2 against the standard one on another input
	want2, _ := pbkdf2.Key(sha512.New, "pw", []byte("salt"), 3, 64)
	assert.Equal(t, want2, pbkdf2SHA512Block([]byte("pw"), []byte("salt"), 3))
}

func TestNewMnemonic(t *testing.T) {
	for _, n := range []int{12, 15, 18, 21, 24} {
		a, err := NewMnemonic(n)
		require.NoError(t, err)
		b, err := NewMnemonic(n)
		require.NoError(t, err)
		assert.Len(t, strings.Split(a, " "), n)
		assert.NoError(t, ValidateMnemonic(a))
		assert.NotEqual(t, a, b)
		e, err := MnemonicToEntropy(a)
		require.NoError(t, err)
		assert.Len(t, e, n*4/3)
	}
	for _, n := range []int{0, 11, 13, 25, -12} {
		_, err := NewMnemonic(n)
		assert.ErrorIs(t, err, ErrWordCount, "%d words", n)
	}
	_, err := EntropyToMnemonic(make([]byte, 17))
	assert.ErrorIs(t, err, ErrEntropyLength)
}

func TestValidateMnemonicErrors(t *testing.T) {
	const good = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"
	require.NoError(t, ValidateMnemonic(good))
	assert.NoError(t, ValidateMnemonic("  abandon\tabandon abandon abandon abandon abandon abandon abandon abandon abandon abandon\nabout "))

	err := ValidateMnemonic(strings.Replace(good, "abandon", "abandn", 1))
	require.ErrorIs(t, err, ErrUnknownWord)
	assert.Equal(t, `alknet/vault: unknown word "abandn" at position 1`, err.Error())

	err = ValidateMnemonic("abandon abandon abandon Zoo abandon abandon abandon abandon abandon abandon abandon about")
	require.ErrorIs(t, err, ErrUnknownWord)
	assert.Contains(t, err.Error(), `"Zoo" at position 4`)

	err = ValidateMnemonic(strings.Replace(good, "about", "abandon", 1))
	require.ErrorIs(t, err, ErrChecksumMismatch)
	assert.Equal(t, "alknet/vault: checksum mismatch", err.Error())

	err = ValidateMnemonic("abandon abandon about")
	require.ErrorIs(t, err, ErrWordCount)
	assert.Contains(t, err.Error(), "got 3")
	assert.ErrorIs(t, ValidateMnemonic(""), ErrWordCount)

	_, err = Seed(strings.Replace(good, "about", "zoo", 1), "")
	assert.ErrorIs(t, err, ErrChecksumMismatch)
}

func TestNormalizeMnemonic(t *testing.T) {
	assert.Equal(t, "abandon zoo", NormalizeMnemonic("  Abandon\t\tZOO\n"))
	// NFKD: a fullwidth letter becomes ASCII.
	assert.Equal(t, "zoo", NormalizeMnemonic("ｚoo"))
}

func TestSeedPassphraseNFKD(t *testing.T) {
	const m = "legal winner thank year wave sausage worth useful legal winner thank yellow"
	composed, err := Seed(m, "caf\u00e9")
	require.NoError(t, err)
	decomposed, err := Seed(m, "cafe\u0301")
	require.NoError(t, err)
	assert.Equal(t, composed, decomposed)
	plain, err := Seed(m, "")
	require.NoError(t, err)
	assert.NotEqual(t, plain, composed)
	assert.Len(t, plain, SeedSize)
}

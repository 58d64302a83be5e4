package mix

import (
	"golang.org/x/crypto/blake2b"
	"golang.org/x/crypto/chacha20"
)

// Lioness (Anderson and Biham, 1996) is the wide-block cipher of the
// payload: a four-round unbalanced Feistel network over the whole block,
// with ChaCha20 as the stream cipher and keyed BLAKE2b-256 as the hash.
// Changing any bit of a ciphertext changes the whole decrypted block, so a
// tagged payload cannot be recognised downstream: it decrypts to noise.
//
// The block is L (32 bytes) || R (the rest). With keys K1..K4 of 32 bytes:
//
//	R ^= ChaCha20(key = L ^ K1, nonce = 0)
//	L ^= BLAKE2b-256(key = K2, R)
//	R ^= ChaCha20(key = L ^ K3, nonce = 0)
//	L ^= BLAKE2b-256(key = K4, R)
//
// and decryption runs the rounds in reverse order.

const (
	lionessKeySize = 4 * 32
	lionessLeft    = 32
)

func lionessStream(l []byte, k []byte, r []byte) {
	var key [32]byte
	for i := range key {
		key[i] = l[i] ^ k[i]
	}
	var nonce [chacha20.NonceSize]byte
	c, err := chacha20.NewUnauthenticatedCipher(key[:], nonce[:])
	if err != nil {
		panic(err)
	}
	c.XORKeyStream(r, r)
	clear(key[:])
}

func lionessHash(k []byte, r []byte, l []byte) {
	h, err := blake2b.New256(k)
	if err != nil {
		panic(err)
	}
	h.Write(r)
	var sum [32]byte
	h.Sum(sum[:0])
	for i := range sum {
		l[i] ^= sum[i]
	}
}

// lionessEncrypt encrypts block in place; it must be longer than 32 bytes.
func lionessEncrypt(key *[lionessKeySize]byte, block []byte) {
	l, r := block[:lionessLeft], block[lionessLeft:]
	lionessStream(l, key[0:32], r)
	lionessHash(key[32:64], r, l)
	lionessStream(l, key[64:96], r)
	lionessHash(key[96:128], r, l)
}

// lionessDecrypt decrypts block in place.
func lionessDecrypt(key *[lionessKeySize]byte, block []byte) {
	l, r := block[:lionessLeft], block[lionessLeft:]
	lionessHash(key[96:128], r, l)
	lionessStream(l, key[64:96], r)
	lionessHash(key[32:64], r, l)
	lionessStream(l, key[0:32], r)
}

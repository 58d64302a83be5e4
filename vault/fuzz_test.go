package vault

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"golang.org/x/text/unicode/norm"
)

// Seed corpora live in testdata/fuzz/<FuzzName>/.

// FuzzParsePath: a parsed path prints back as its input (with h written
// as '), parses again to the same value, and is all hardened; a rejected
// one fails with one of the two path errors.
func FuzzParsePath(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePath(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidPath) && !errors.Is(err, ErrNotHardened) {
				t.Fatalf("ParsePath(%q): unexpected error %v", s, err)
			}
			return
		}
		if got, want := p.String(), strings.ReplaceAll(s, "h", "'"); got != want {
			t.Fatalf("ParsePath(%q).String() = %q, want %q", s, got, want)
		}
		again, err := ParsePath(p.String())
		if err != nil || !slices.Equal(again, p) {
			t.Fatalf("ParsePath(%q) = %v, %v; want %v", p.String(), again, err, p)
		}
		if len(p) > MaxPathDepth {
			t.Fatalf("depth %d", len(p))
		}
		for _, i := range p {
			if i < HardenedOffset {
				t.Fatalf("non-hardened index %d in %q", i, s)
			}
		}
	})
}

// FuzzValidateMnemonic: an accepted mnemonic round-trips through its
// entropy to its words joined by single spaces; a rejected one fails
// with a mnemonic error.
func FuzzValidateMnemonic(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		err := ValidateMnemonic(s)
		if err != nil {
			if !errors.Is(err, ErrWordCount) && !errors.Is(err, ErrUnknownWord) && !errors.Is(err, ErrChecksumMismatch) {
				t.Fatalf("ValidateMnemonic(%q): unexpected error %v", s, err)
			}
			return
		}
		e, err := MnemonicToEntropy(s)
		if err != nil {
			t.Fatalf("valid mnemonic %q: MnemonicToEntropy: %v", s, err)
		}
		m, err := EntropyToMnemonic(e)
		if err != nil {
			t.Fatal(err)
		}
		if want := strings.Join(strings.Fields(norm.NFKD.String(s)), " "); m != want {
			t.Fatalf("round trip of %q gave %q", want, m)
		}
	})
}

// FuzzDecodeFile: an accepted vault file re-encodes to a canonical form
// that decodes to the same value and encodes to the same bytes; a
// rejected one fails with ErrCorrupt or ErrFileTooLarge.
func FuzzDecodeFile(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := decodeFile(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrFileTooLarge) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		enc := v.encode()
		v2, err := decodeFile(enc)
		if err != nil {
			t.Fatalf("re-encoded file rejected: %v\n%s", err, enc)
		}
		if v2.params != v.params || !slices.Equal(v2.salt, v.salt) || !slices.Equal(v2.nonce, v.nonce) || !slices.Equal(v2.ciphertext, v.ciphertext) {
			t.Fatalf("round trip changed the file")
		}
		if enc2 := v2.encode(); string(enc2) != string(enc) {
			t.Fatalf("encoding is not canonical")
		}
		if len(v.nonce) != nonceSize || len(v.salt) < minSaltSize || len(v.ciphertext) < minCiphertext {
			t.Fatalf("accepted out-of-range fields")
		}
		if v.params.validate() != nil {
			t.Fatalf("accepted invalid params %+v", v.params)
		}
	})
}

// FuzzParseEncryptedData: accepted data marshals and parses back to the
// same value with a 12-byte IV and a key version of at least 2; rejected
// data fails with ErrEncryptedData.
func FuzzParseEncryptedData(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := ParseEncryptedData(data)
		if err != nil {
			if !errors.Is(err, ErrEncryptedData) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		_, iv, ct, err := d.decode()
		if err != nil || len(iv) != SecretIVSize || len(ct) < tagSize || d.KeyVersion < MinKeyVersion {
			t.Fatalf("accepted invalid data %+v: %v", d, err)
		}
		raw, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		d2, err := ParseEncryptedData(raw)
		if err != nil || d2 != d {
			t.Fatalf("round trip: %+v, %v; want %+v", d2, err, d)
		}
	})
}

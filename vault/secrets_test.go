package vault

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEncryptDecrypt(t *testing.T) {
	v, _ := createTestVault(t, Config{})
	pt := []byte("database password")
	d, err := v.Encrypt(pt, 2)
	require.NoError(t, err)
	assert.Equal(t, 2, d.KeyVersion)

	raw, err := json.Marshal(d)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(raw), `{"key_version":2,"salt":"`), string(raw))
	var keys map[string]any
	require.NoError(t, json.Unmarshal(raw, &keys))
	assert.Len(t, keys, 4)
	for _, k := range []string{"key_version", "salt", "iv", "data"} {
		assert.Contains(t, keys, k)
	}
	iv, err := base64.StdEncoding.DecodeString(d.IV)
	require.NoError(t, err)
	assert.Len(t, iv, 12)
	salt, err := base64.StdEncoding.DecodeString(d.Salt)
	require.NoError(t, err)
	assert.Len(t, salt, SecretSaltSize)
	data, err := base64.StdEncoding.DecodeString(d.Data)
	require.NoError(t, err)
	assert.Len(t, data, len(pt)+16)

	back, err := v.Decrypt(d)
	require.NoError(t, err)
	assert.Equal(t, pt, back)

	parsed, err := ParseEncryptedData(raw)
	require.NoError(t, err)
	assert.Equal(t, d, parsed)

	// Fresh salt and IV every time.
	d2, err := v.Encrypt(pt, 2)
	require.NoError(t, err)
	assert.NotEqual(t, d.IV, d2.IV)
	assert.NotEqual(t, d.Salt, d2.Salt)
	assert.NotEqual(t, d.Data, d2.Data)

	empty, err := v.Encrypt(nil, 3)
	require.NoError(t, err)
	got, err := v.Decrypt(empty)
	require.NoError(t, err)
	assert.Empty(t, got)
}

func TestDecryptFailures(t *testing.T) {
	v, _ := createTestVault(t, Config{})
	d, err := v.Encrypt([]byte("secret"), 2)
	require.NoError(t, err)

	wrongVersion := d
	wrongVersion.KeyVersion = 3
	_, err = v.Decrypt(wrongVersion)
	assert.ErrorIs(t, err, ErrDecrypt)

	data, _ := base64.StdEncoding.DecodeString(d.Data)
	data[0] ^= 0x80
	tampered := d
	tampered.Data = base64.StdEncoding.EncodeToString(data)
	_, err = v.Decrypt(tampered)
	assert.ErrorIs(t, err, ErrDecrypt)

	otherSalt := d
	otherSalt.Salt = base64.StdEncoding.EncodeToString(make([]byte, 32))
	_, err = v.Decrypt(otherSalt)
	assert.ErrorIs(t, err, ErrDecrypt)

	// Another vault (another mnemonic) cannot read it.
	other, err := Create(t.TempDir()+"/v.json", []byte("zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo wrong"), []byte("pw"), Config{Argon2: testParams})
	require.NoError(t, err)
	_, err = other.Decrypt(d)
	assert.ErrorIs(t, err, ErrDecrypt)

	bad := d
	bad.KeyVersion = 1
	_, err = v.Decrypt(bad)
	assert.ErrorIs(t, err, ErrEncryptedData)
	_, err = v.Encrypt([]byte("x"), 1)
	assert.ErrorIs(t, err, ErrKeyVersion)

	v.Lock()
	_, err = v.Decrypt(d)
	assert.ErrorIs(t, err, ErrLocked)
	_, err = v.Encrypt([]byte("x"), 2)
	assert.ErrorIs(t, err, ErrLocked)
}

func TestRotate(t *testing.T) {
	v, _ := createTestVault(t, Config{})
	d, err := v.Encrypt([]byte("api token"), 2)
	require.NoError(t, err)
	r, err := v.Rotate(d, 3)
	require.NoError(t, err)
	assert.Equal(t, 3, r.KeyVersion)
	assert.NotEqual(t, d.Data, r.Data)
	pt, err := v.Decrypt(r)
	require.NoError(t, err)
	assert.Equal(t, "api token", string(pt))
	_, err = v.Rotate(d, 1)
	assert.ErrorIs(t, err, ErrKeyVersion)
	same, err := v.Rotate(d, 2)
	require.NoError(t, err)
	assert.NotEqual(t, d.IV, same.IV)
}

func TestParseEncryptedData(t *testing.T) {
	salt := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("\x01", 32)))
	iv := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("\x02", 12)))
	data := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("\x03", 20)))
	good := `{"key_version": 2, "salt": "` + salt + `", "iv": "` + iv + `", "data": "` + data + `"}`
	d, err := ParseEncryptedData([]byte(good))
	require.NoError(t, err)
	assert.Equal(t, EncryptedData{KeyVersion: 2, Salt: salt, IV: iv, Data: data}, d)

	for name, in := range map[string]string{
		"empty":      ``,
		"not json":   `x`,
		"version 1":  strings.Replace(good, `2,`, `1,`, 1),
		"no version": strings.Replace(good, `"key_version": 2, `, ``, 1),
		"unknown":    strings.Replace(good, `{`, `{"extra":1,`, 1),
		"trailing":   good + `{}`,
		"iv short":   strings.Replace(good, iv, "AAAA", 1),
		"bad b64":    strings.Replace(good, data, "A===", 1),
		"unpadded":   strings.Replace(good, salt, strings.TrimRight(salt, "="), 1),
		"data short": strings.Replace(good, data, "AAAA", 1),
		"salt short": strings.Replace(good, salt, "AAAA", 1),
		"float":      strings.Replace(good, `2,`, `2.5,`, 1),
	} {
		_, err := ParseEncryptedData([]byte(in))
		assert.ErrorIs(t, err, ErrEncryptedData, name)
	}
	_, err = ParseEncryptedData(make([]byte, MaxEncryptedDataSize+1))
	assert.ErrorIs(t, err, ErrEncryptedData)
}

// TestSecretsKnownAnswer follows SPEC.md step by step with bare
// primitives and checks that the vault decrypts the result, and that the
// fixed vector in testdata matches.
func TestSecretsKnownAnswer(t *testing.T) {
	v, _ := createTestVault(t, Config{})
	seed, err := Seed(testMnemonic, "")
	require.NoError(t, err)

	// SLIP-0010 along m/74'/2'/0'/0' (key version 2).
	mac := hmac.New(sha512.New, []byte("ed25519 seed"))
	mac.Write(seed)
	i := mac.Sum(nil)
	for _, idx := range []uint32{74, 2, 0, 0} {
		data := append([]byte{0}, i[:32]...)
		data = binary.BigEndian.AppendUint32(data, idx|0x80000000)
		m := hmac.New(sha512.New, i[32:])
		m.Write(data)
		i = m.Sum(nil)
	}
	salt := []byte(strings.Repeat("\x01", 32))
	iv := []byte(strings.Repeat("\x02", 12))
	key, err := hkdf.Key(sha256.New, i[:32], salt, "alknet/vault secret aes-256-gcm", 32)
	require.NoError(t, err)
	block, err := aes.NewCipher(key)
	require.NoError(t, err)
	gcm, err := cipher.NewGCM(block)
	require.NoError(t, err)
	ct := gcm.Seal(nil, iv, []byte("hello"), nil)

	d := EncryptedData{
		KeyVersion: 2,
		Salt:       base64.StdEncoding.EncodeToString(salt),
		IV:         base64.StdEncoding.EncodeToString(iv),
		Data:       base64.StdEncoding.EncodeToString(ct),
	}
	pt, err := v.Decrypt(d)
	require.NoError(t, err)
	assert.Equal(t, "hello", string(pt))

	// The same vector as printed in SPEC.md.
	const spec = `{"key_version":2,"salt":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=","iv":"AgICAgICAgICAgIC","data":"6vtivnYcCISK6XacUG9QO21qkzKl"}`
	raw, err := json.Marshal(d)
	require.NoError(t, err)
	assert.Equal(t, spec, string(raw))
}

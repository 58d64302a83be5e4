package msg

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSealOpenRoundTrip(t *testing.T) {
	a, b := newTestNode(t), newTestNode(t)
	when := time.UnixMilli(1_700_000_000_123)
	m := &Message{Time: when, ContentType: "text/plain; charset=utf-8", Body: []byte("hello, b\nsecond line")}
	env, err := Seal(a.key, b.msg.Record(), m)
	require.NoError(t, err)
	assert.Equal(t, a.id(), m.Sender)
	assert.Equal(t, b.id(), m.Recipient)
	assert.NotEqual(t, MessageID{}, m.ID)

	got, err := Open(b.msg, env)
	require.NoError(t, err)
	assert.Equal(t, m.ID, got.ID)
	assert.Equal(t, a.id(), got.Sender)
	assert.Equal(t, b.id(), got.Recipient)
	assert.True(t, when.Equal(got.Time), "time %v", got.Time)
	assert.Equal(t, "text/plain; charset=utf-8", got.ContentType)
	assert.Equal(t, "hello, b\nsecond line", string(got.Body))
	rcpt, err := EnvelopeRecipient(env)
	require.NoError(t, err)
	assert.Equal(t, b.id(), rcpt)
	assert.False(t, bytes.Contains(env, a.id().PublicKey()), "the sender id is in the clear")
	assert.False(t, bytes.Contains(env, []byte("hello")), "the body is in the clear")

	// Sealing again gives a different envelope (fresh encapsulation).
	env2, err := Seal(a.key, b.msg.Record(), &Message{ID: m.ID, Time: when, ContentType: m.ContentType, Body: m.Body})
	require.NoError(t, err)
	assert.NotEqual(t, env, env2)
}

func TestEnvelopeSizesAreBuckets(t *testing.T) {
	a, b := newTestNode(t), newTestNode(t)
	ct := "application/octet-stream"
	for i, bucket := range Buckets {
		most := bucket - fixedPlain - len(ct)
		sizes := []int{most}
		if i == 0 {
			sizes = append(sizes, 0, 1)
		} else {
			sizes = append(sizes, Buckets[i-1]-fixedPlain-len(ct)+1) // one byte over the previous bucket
		}
		for _, n := range sizes {
			env, err := Seal(a.key, b.msg.Record(), &Message{ContentType: ct, Body: bytes.Repeat([]byte{'x'}, n)})
			require.NoError(t, err)
			assert.Equal(t, bucket+Overhead, len(env), "body %d bytes", n)
			got, err := Open(b.msg, env)
			require.NoError(t, err)
			assert.Len(t, got.Body, n)
		}
	}
	assert.Equal(t, 1024+1169, Buckets[0]+Overhead)
	_, err := Seal(a.key, b.msg.Record(), &Message{ContentType: ct, Body: make([]byte, 256<<10-fixedPlain-len(ct)+1)})
	require.ErrorIs(t, err, ErrTooLarge)
	_, err = Seal(a.key, b.msg.Record(), &Message{Body: make([]byte, MaxBody)})
	require.NoError(t, err)
}

func TestOpenRejectsEveryFlippedByte(t *testing.T) {
	a, b := newTestNode(t), newTestNode(t)
	env, err := Seal(a.key, b.msg.Record(), &Message{ContentType: "text/plain", Body: []byte("flip me")})
	require.NoError(t, err)
	for i := range env {
		for _, bit := range []byte{0x01, 0x80} {
			bad := bytes.Clone(env)
			bad[i] ^= bit
			_, err := Open(b.msg, bad)
			require.ErrorIs(t, err, ErrEnvelope, "byte %d bit %#x accepted", i, bit)
		}
	}
	// Truncated and extended envelopes too.
	for _, n := range []int{0, 1, headerSize, Overhead, len(env) - 1} {
		_, err := Open(b.msg, env[:n])
		require.ErrorIs(t, err, ErrEnvelope, "truncated to %d", n)
	}
	_, err = Open(b.msg, append(bytes.Clone(env), 0))
	require.ErrorIs(t, err, ErrEnvelope)
}

func TestOpenRejectsSignatureByAnotherKey(t *testing.T) {
	a, b, c := newTestNode(t), newTestNode(t), newTestNode(t)
	m := &Message{ID: NewMessageID(), Sender: a.id(), Recipient: b.id(), Time: time.Now(), ContentType: "text/plain", Body: []byte("from a, honest")}
	// c signs a message that claims a as its sender: the signature is valid
	// under c's key, not a's.
	env := sealRaw(t, b, plainOf(m, c.key, Buckets[0]))
	_, err := Open(b.msg, env)
	require.ErrorIs(t, err, ErrEnvelope)
	assert.Contains(t, err.Error(), "signature does not verify under the sender "+a.id().String())
	// The same plaintext signed by a is accepted: the test checks the right thing.
	got, err := Open(b.msg, sealRaw(t, b, plainOf(m, a.key, Buckets[0])))
	require.NoError(t, err)
	assert.Equal(t, "from a, honest", string(got.Body))
}

func TestOpenRejectsReaddressedEnvelope(t *testing.T) {
	a, b, c := newTestNode(t), newTestNode(t), newTestNode(t)
	env, err := Seal(a.key, b.msg.Record(), &Message{ContentType: "text/plain", Body: []byte("for b only")})
	require.NoError(t, err)
	// b decrypts and seals the very same signed plaintext to c.
	plain := openRaw(t, b, env)
	forwarded := sealRaw(t, c, plain)
	_, err = Open(c.msg, forwarded)
	require.ErrorIs(t, err, ErrEnvelope)
	assert.Contains(t, err.Error(), "sealed for "+b.id().String()+", re-addressed to this node")
	// The original, handed unchanged to c, is refused too.
	_, err = Open(c.msg, env)
	require.ErrorIs(t, err, ErrEnvelope)
	assert.Contains(t, err.Error(), "addressed to "+b.id().String())
	// And its clear recipient rewritten to c breaks the decryption.
	moved := bytes.Clone(env)
	cid := c.id()
	copy(moved[1:headerSize], cid[:])
	_, err = Open(c.msg, moved)
	require.ErrorIs(t, err, ErrEnvelope)
	assert.Contains(t, err.Error(), "decryption failed")
}

func TestOpenRejectsMalformedPlaintext(t *testing.T) {
	a, b := newTestNode(t), newTestNode(t)
	good := &Message{ID: NewMessageID(), Sender: a.id(), Recipient: b.id(), Time: time.Now(), ContentType: "text/plain", Body: []byte("x")}
	cases := map[string]func(p []byte) []byte{
		"non-zero padding": func(p []byte) []byte { p[len(p)-1] = 1; return p },
		"body overruns": func(p []byte) []byte {
			off := 32 + 32 + 16 + 8 + 1 + len(good.ContentType)
			p[off], p[off+1] = 0xff, 0xff
			return p
		},
		"content type control byte": func(p []byte) []byte { p[89] = '\n'; return p },
		"not a bucket":              func(p []byte) []byte { return p[:len(p)-1] },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			env := sealRaw(t, b, mutate(plainOf(good, a.key, Buckets[0])))
			_, err := Open(b.msg, env)
			require.ErrorIs(t, err, ErrEnvelope)
		})
	}
}

func TestSealRefusesBadInput(t *testing.T) {
	a, b := newTestNode(t), newTestNode(t)
	_, err := Seal(a.key, b.msg.Record(), &Message{ContentType: "text/plain\r\nx: y"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "outside printable ASCII")
	_, err = Seal(a.key, b.msg.Record(), &Message{ContentType: strings.Repeat("a", 256)})
	require.Error(t, err)
	rec := b.msg.Record()
	rec.Node = a.id() // b's key claimed for a
	_, err = Seal(a.key, rec, &Message{})
	require.ErrorIs(t, err, ErrKeyRecord)
	_, err = Seal(core.SecretKey{}, b.msg.Record(), &Message{})
	require.Error(t, err)
}

func TestKeyDerivationIsDeterministic(t *testing.T) {
	a := newTestNode(t)
	again, err := KeyFromNodeKey(a.key)
	require.NoError(t, err)
	assert.Equal(t, a.msg.PublicKey(), again.PublicKey())
	assert.Len(t, again.PublicKey(), PublicKeySize)
	ikm := bytes.Repeat([]byte{7}, 32)
	v1, err := NewPrivateKey(a.key, ikm)
	require.NoError(t, err)
	v2, err := NewPrivateKey(a.key, ikm)
	require.NoError(t, err)
	assert.Equal(t, v1.PublicKey(), v2.PublicKey())
	assert.NotEqual(t, v1.PublicKey(), a.msg.PublicKey())
	_, err = NewPrivateKey(a.key, ikm[:31])
	require.Error(t, err)
	assert.NotContains(t, a.msg.String(), "ed25519")
}

func TestKeyRecord(t *testing.T) {
	a, b := newTestNode(t), newTestNode(t)
	rec := a.msg.Record()
	require.NoError(t, rec.Verify())
	enc := rec.Marshal()
	require.Len(t, enc, KeyRecordSize)
	got, err := ParseKeyRecord(enc, a.id())
	require.NoError(t, err)
	assert.Equal(t, rec, got)
	_, err = ParseKeyRecord(enc, b.id())
	require.ErrorIs(t, err, ErrKeyRecord)
	for _, i := range []int{0, 31, 32, 32 + PublicKeySize - 1, KeyRecordSize - 1} {
		bad := bytes.Clone(enc)
		bad[i] ^= 1
		_, err := ParseKeyRecord(bad, core.NodeID{})
		require.ErrorIs(t, err, ErrKeyRecord, "byte %d", i)
	}
	// b's key with a's node id, signed by b: refused.
	forged := KeyRecord{Node: a.id(), Key: b.msg.PublicKey()}
	forged.Sig = b.key.Sign(forged.signed())
	require.ErrorIs(t, forged.Verify(), ErrKeyRecord)
}

func TestMessageID(t *testing.T) {
	id := NewMessageID()
	got, err := ParseMessageID(id.String())
	require.NoError(t, err)
	assert.Equal(t, id, got)
	_, err = ParseMessageID("abc")
	require.Error(t, err)
	assert.False(t, errors.Is(err, ErrEnvelope))
}

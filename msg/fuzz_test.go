package msg

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
	"github.com/alkdev/alknet/core/store"
	"github.com/stretchr/testify/require"
)

// fixedNode is a test node with a key from a fixed seed, so that seeds in
// testdata/fuzz stay valid envelopes for it.
func fixedNode(t testing.TB, b byte) testNode {
	t.Helper()
	k, err := core.NewSecretKey(bytes.Repeat([]byte{b}, 32))
	require.NoError(t, err)
	mk, err := KeyFromNodeKey(k)
	require.NoError(t, err)
	return testNode{key: k, msg: mk}
}

// FuzzOpen feeds arbitrary envelopes to Open. Property: nothing but an
// envelope a sender actually sealed for the node opens, and what opens
// came from that sender to that node.
func FuzzOpen(f *testing.F) {
	a, b := fixedNode(f, 1), fixedNode(f, 2)
	valid := map[string]bool{}
	for _, body := range []string{"", "hello", string(make([]byte, 2000))} {
		env, err := Seal(a.key, b.msg.Record(), &Message{ContentType: "text/plain", Body: []byte(body), Time: time.UnixMilli(1)})
		require.NoError(f, err)
		valid[string(env)] = true
		f.Add(env)
	}
	f.Add([]byte{Version})
	f.Add(make([]byte, Buckets[0]+Overhead))
	f.Fuzz(func(t *testing.T, env []byte) {
		m, err := Open(b.msg, env)
		if err != nil {
			require.ErrorIs(t, err, ErrEnvelope)
			return
		}
		if !valid[string(env)] && m.Sender != a.id() {
			t.Fatalf("opened an envelope nobody sealed: %d bytes", len(env))
		}
		require.Equal(t, b.id(), m.Recipient)
	})
}

// FuzzParsePlain feeds arbitrary decrypted plaintexts to the plaintext
// decoder. Property: what it accepts re-encodes to exactly its input, and
// the signature verifies under the sender it names.
func FuzzParsePlain(f *testing.F) {
	a := fixedNode(f, 1)
	for _, body := range []string{"", "x", "a longer body\nwith lines"} {
		m := &Message{ID: MessageID{1}, Sender: a.id(), Recipient: a.id(), Time: time.UnixMilli(5), ContentType: "text/plain", Body: []byte(body)}
		f.Add(plainOf(m, a.key, Buckets[0]))
	}
	f.Add(make([]byte, fixedPlain))
	f.Fuzz(func(t *testing.T, p []byte) {
		m, err := parsePlain(p)
		if err != nil {
			require.ErrorIs(t, err, ErrEnvelope)
			return
		}
		re := appendFields(nil, m)
		require.True(t, bytes.HasPrefix(p, re), "fields do not re-encode")
		require.LessOrEqual(t, len(re)+64, len(p))
		for _, c := range p[len(re)+64:] {
			require.Zero(t, c, "padding")
		}
	})
}

// FuzzDeliveryRequest feeds arbitrary bytes to the server as the requests
// of a stream from an anonymous caller. Properties: the answer is a
// sequence of well-formed frames with known status codes, one per request
// at most; the server stops reading after a malformed or oversized frame;
// and the mailbox changes only when a delivery was answered OK.
func FuzzDeliveryRequest(f *testing.F) {
	a, b := fixedNode(f, 1), fixedNode(f, 2)
	db, err := store.New(store.Config{Path: filepath.Join(f.TempDir(), "alknet.db")})
	require.NoError(f, err)
	f.Cleanup(func() { _ = db.Close() })
	srv, err := NewServer(context.Background(), Config{DB: db, Key: b.msg, RatePerKey: -1, RatePerAddr: -1,
		MaxEnvelope: int64(Buckets[1] + Overhead), MaxAge: 100 * 365 * 24 * time.Hour})
	require.NoError(f, err)

	frame := func(op Op, p []byte) []byte {
		out := []byte{byte(op)}
		out = binary.BigEndian.AppendUint32(out, uint32(len(p)))
		return append(out, p...)
	}
	env, err := Seal(a.key, b.msg.Record(), &Message{Body: []byte("fuzz"), Time: time.UnixMilli(1_700_000_000_000)})
	require.NoError(f, err)
	bid := b.id()
	f.Add(frame(OpDeliver, env))
	f.Add(append(frame(OpKey, make([]byte, 32)), frame(OpKey, bid[:])...))
	f.Add(frame(OpFetch, append(bid[:], make([]byte, 10)...)))
	f.Add(frame(OpAck, append(bid[:], 0, 1, 0, 0, 0, 0, 0, 0, 0, 1)))
	f.Add(frame(OpSubscribe, append(bid[:], make([]byte, 8)...)))
	f.Add([]byte{0x01, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x09, 0, 0, 0, 0})

	count := func(t *testing.T) int {
		items, err := srv.Store().Fetch(context.Background(), bid, 0, 1<<16, 1<<40)
		require.NoError(t, err)
		return len(items)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		before := count(t)
		client, server := coretest.Pipe(ALPN, coretest.Side{ID: a.id()}, coretest.Side{ID: b.id()})
		defer client.Close(core.CodeOK, "")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		served := make(chan struct{})
		go func() {
			defer close(served)
			st, err := server.AcceptStream(ctx)
			if err == nil {
				srv.serveStream(ctx, server, st)
			}
		}()
		s, err := client.OpenStream(ctx)
		require.NoError(t, err)
		_ = s.SetDeadline(time.Now().Add(10 * time.Second))
		go func() {
			_, _ = s.Write(in)
			_ = s.CloseWrite()
		}()
		out, err := io.ReadAll(s)
		require.NoError(t, err, "the server did not finish its answer")
		select {
		case <-served:
		case <-ctx.Done():
			t.Fatal("the server did not return within 10s")
		}
		okDeliveries := 0
		frames := 0
		for len(out) > 0 {
			require.GreaterOrEqual(t, len(out), frameHeader, "truncated answer")
			st := Status(out[0])
			n := int(binary.BigEndian.Uint32(out[1:]))
			require.LessOrEqual(t, st, StatusInternal, "unknown status")
			require.LessOrEqual(t, frameHeader+n, len(out), "answer overruns")
			if st != StatusOK {
				require.LessOrEqual(t, n, maxErrorMessage)
			}
			if st == StatusOK && n == 1 && out[frameHeader] == deliveredStored {
				okDeliveries++
			}
			out = out[frameHeader+n:]
			frames++
		}
		require.LessOrEqual(t, frames, len(in)/frameHeader+1, "more answers than requests")
		require.LessOrEqual(t, count(t)-before, okDeliveries, "the mailbox grew without an OK answer")
	})
}

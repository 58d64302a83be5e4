package msg

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func remoteCode(t *testing.T, err error) Status {
	t.Helper()
	var re *RemoteError
	require.ErrorAs(t, err, &re)
	return re.Code
}

func TestRoundTripBetweenTwoNodes(t *testing.T) {
	a, b := newTestNode(t), newTestNode(t)
	nb := startMsgNode(t, b, t.TempDir(), nodeOpts{peers: coretest.NewPeers(ownerPeers(b)...)})
	aEP := clientEP(t, a.key)
	ctx := t.Context()

	rec, err := FetchKey(ctx, aEP, nb.addr())
	require.NoError(t, err)
	assert.Equal(t, b.msg.PublicKey(), rec.Key)
	env, err := Seal(a.key, rec, &Message{ContentType: "text/plain", Body: []byte("hello from a")})
	require.NoError(t, err)
	res, err := DeliverTo(ctx, aEP, nb.addr(), env)
	require.NoError(t, err)
	assert.False(t, res.Duplicate)

	owner := dialMsg(t, clientEP(t, b.key), nb)
	items, err := owner.Fetch(ctx, b.id(), 0, 0)
	require.NoError(t, err)
	require.Len(t, items, 1)
	assert.Equal(t, env, items[0].Envelope)
	m, err := Open(b.msg, items[0].Envelope)
	require.NoError(t, err)
	assert.Equal(t, "hello from a", string(m.Body))
	assert.Equal(t, a.id(), m.Sender)

	// The node's own view (what the CLI reads) has the message id.
	it, err := nb.srv.Store().Get(ctx, b.id(), m.ID)
	require.NoError(t, err)
	assert.Equal(t, items[0].Seq, it.Seq)

	n, err := owner.Ack(ctx, b.id(), items[0].Seq, items[0].Seq+100)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	items, err = owner.Fetch(ctx, b.id(), 0, 0)
	require.NoError(t, err)
	assert.Empty(t, items)
}

func TestDatabaseHoldsNoPlaintextNorSender(t *testing.T) {
	a, b := newTestNode(t), newTestNode(t)
	dir := t.TempDir()
	nb := startMsgNode(t, b, dir, nodeOpts{peers: coretest.NewPeers(ownerPeers(b)...)})
	aEP := clientEP(t, a.key)
	body := []byte("the secret plan: meet at the old mill at noon")
	env, err := Seal(a.key, b.msg.Record(), &Message{ContentType: "text/x-secret-marker", Body: body})
	require.NoError(t, err)
	_, err = DeliverTo(t.Context(), aEP, nb.addr(), env)
	require.NoError(t, err)
	nb.stop()

	sender := a.id()
	needles := map[string][]byte{
		"body":              body,
		"body fragment":     []byte("old mill"),
		"content type":      []byte("x-secret-marker"),
		"sender id":         sender[:],
		"sender id (hex)":   []byte(hex.EncodeToString(sender[:])),
		"sender id (zb32)":  []byte(sender.String()),
		"sender id (first)": sender[:12],
	}
	files, err := filepath.Glob(filepath.Join(dir, "alknet.db*"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	var all []byte
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		all = append(all, raw...)
	}
	for name, n := range needles {
		assert.False(t, bytes.Contains(all, n), "the database holds the %s", name)
	}
	// It does hold the envelope: the check above looked at the right bytes.
	assert.True(t, bytes.Contains(all, env[len(env)-64:]), "the envelope is not in the database")
}

func TestReplayIsDropped(t *testing.T) {
	a, b := newTestNode(t), newTestNode(t)
	nb := startMsgNode(t, b, t.TempDir(), nodeOpts{peers: coretest.NewPeers(ownerPeers(b)...)})
	c := dialMsg(t, clientEP(t, a.key), nb)
	ctx := t.Context()
	m := &Message{ContentType: "text/plain", Body: []byte("once")}
	env, err := Seal(a.key, b.msg.Record(), m)
	require.NoError(t, err)
	res, err := c.Deliver(ctx, env)
	require.NoError(t, err)
	assert.False(t, res.Duplicate)
	res, err = c.Deliver(ctx, env)
	require.NoError(t, err)
	assert.True(t, res.Duplicate, "the same envelope twice")
	// Same message id, sealed again (different bytes): still a duplicate.
	again, err := Seal(a.key, b.msg.Record(), &Message{ID: m.ID, Time: m.Time, ContentType: m.ContentType, Body: m.Body})
	require.NoError(t, err)
	require.NotEqual(t, env, again)
	res, err = c.Deliver(ctx, again)
	require.NoError(t, err)
	assert.True(t, res.Duplicate, "the same id in a new envelope")

	owner := dialMsg(t, clientEP(t, b.key), nb)
	items, err := owner.Fetch(ctx, b.id(), 0, 0)
	require.NoError(t, err)
	require.Len(t, items, 1)
	// Acked and then replayed: still dropped.
	_, err = owner.Ack(ctx, b.id(), items[0].Seq)
	require.NoError(t, err)
	res, err = c.Deliver(ctx, env)
	require.NoError(t, err)
	assert.True(t, res.Duplicate, "replay after ack")
	items, err = owner.Fetch(ctx, b.id(), 0, 0)
	require.NoError(t, err)
	assert.Empty(t, items)
}

func TestDeliveryRefusals(t *testing.T) {
	a, b, c := newTestNode(t), newTestNode(t), newTestNode(t)
	nb := startMsgNode(t, b, t.TempDir(), nodeOpts{peers: coretest.NewPeers(ownerPeers(b)...),
		cfg: Config{MaxEnvelope: int64(Buckets[1] + Overhead), MaxAge: time.Hour}})
	cl := dialMsg(t, clientEP(t, a.key), nb)
	ctx := t.Context()
	good, err := Seal(a.key, b.msg.Record(), &Message{Body: []byte("x")})
	require.NoError(t, err)

	t.Run("flipped byte", func(t *testing.T) {
		for _, i := range []int{0, 5, headerSize + 3, headerSize + encSize + 7, len(good) - 1} {
			bad := bytes.Clone(good)
			bad[i] ^= 0x20
			_, err := cl.Deliver(ctx, bad)
			if i == 0 || i < headerSize {
				// version or clear recipient: refused before the mailbox is found,
				// or the mailbox is unknown.
				require.Error(t, err)
				continue
			}
			require.ErrorIs(t, err, ErrEnvelope, "byte %d", i)
			assert.Equal(t, StatusInvalid, remoteCode(t, err))
		}
	})
	t.Run("other mailbox", func(t *testing.T) {
		env, err := Seal(a.key, c.msg.Record(), &Message{Body: []byte("x")})
		require.NoError(t, err)
		_, err = cl.Deliver(ctx, env)
		require.ErrorIs(t, err, ErrNotFound)
		assert.Contains(t, err.Error(), "no mailbox for "+c.id().String())
	})
	t.Run("forged signature", func(t *testing.T) {
		m := &Message{ID: NewMessageID(), Sender: c.id(), Recipient: b.id(), Time: time.Now(), Body: []byte("x")}
		_, err := cl.Deliver(ctx, sealRaw(t, b, plainOf(m, a.key, Buckets[0])))
		require.ErrorIs(t, err, ErrEnvelope)
		assert.Contains(t, err.Error(), "signature does not verify")
	})
	t.Run("expired", func(t *testing.T) {
		env, err := Seal(a.key, b.msg.Record(), &Message{Time: time.Now().Add(-2 * time.Hour), Body: []byte("old")})
		require.NoError(t, err)
		_, err = cl.Deliver(ctx, env)
		require.ErrorIs(t, err, ErrExpired)
		env, err = Seal(a.key, b.msg.Record(), &Message{Time: time.Now().Add(3 * time.Hour), Body: []byte("future")})
		require.NoError(t, err)
		_, err = cl.Deliver(ctx, env)
		require.ErrorIs(t, err, ErrExpired)
	})
	t.Run("size cap", func(t *testing.T) {
		env, err := Seal(a.key, b.msg.Record(), &Message{Body: make([]byte, 5000)})
		require.NoError(t, err)
		require.Equal(t, Buckets[2]+Overhead, len(env))
		_, err = cl.Deliver(ctx, env)
		require.ErrorIs(t, err, ErrTooLarge)
		assert.Equal(t, StatusTooLarge, remoteCode(t, err))
	})
	// Nothing of the above was stored.
	owner := dialMsg(t, clientEP(t, b.key), nb)
	items, err := owner.Fetch(ctx, b.id(), 0, 0)
	require.NoError(t, err)
	assert.Empty(t, items)
}

func TestOnlyTheOwnerFetches(t *testing.T) {
	a, b, p := newTestNode(t), newTestNode(t), newTestNode(t)
	peers := coretest.NewPeers(ownerPeers(b,
		core.PeerEntry{PeerID: "p", Fingerprints: []string{p.id().Fingerprint()}, Scopes: []string{ScopeFetch}, Enabled: true})...)
	nb := startMsgNode(t, b, t.TempDir(), nodeOpts{peers: peers})
	ctx := t.Context()
	env, err := Seal(a.key, b.msg.Record(), &Message{Body: []byte("x")})
	require.NoError(t, err)
	_, err = dialMsg(t, clientEP(t, a.key), nb).Deliver(ctx, env)
	require.NoError(t, err, "a stranger delivers")

	stranger := dialMsg(t, clientEP(t, a.key), nb)
	_, err = stranger.Fetch(ctx, b.id(), 0, 0)
	assert.Equal(t, StatusForbidden, remoteCode(t, err))
	assert.Contains(t, err.Error(), "authentication required")
	_, err = stranger.Ack(ctx, b.id(), 1)
	assert.Equal(t, StatusForbidden, remoteCode(t, err))
	err = stranger.Subscribe(ctx, b.id(), 0, func(Item) error { return nil })
	assert.Equal(t, StatusForbidden, remoteCode(t, err))

	peer := dialMsg(t, clientEP(t, p.key), nb)
	_, err = peer.Fetch(ctx, b.id(), 0, 0)
	assert.Equal(t, StatusForbidden, remoteCode(t, err))
	assert.Contains(t, err.Error(), "only the owner reads a mailbox")
	_, err = peer.Fetch(ctx, p.id(), 0, 0)
	assert.Equal(t, StatusForbidden, remoteCode(t, err))
	assert.Contains(t, err.Error(), `hosts no mailbox for peer "p"`)

	items, err := dialMsg(t, clientEP(t, b.key), nb).Fetch(ctx, b.id(), 0, 0)
	require.NoError(t, err)
	assert.Len(t, items, 1, "the stranger's ack changed nothing")
}

func TestDeliveryRateLimits(t *testing.T) {
	b := newTestNode(t)
	nb := startMsgNode(t, b, t.TempDir(), nodeOpts{
		peers: coretest.NewPeers(ownerPeers(b)...),
		cfg:   Config{RatePerKey: 0.001, BurstPerKey: 3, RatePerAddr: 0.001, BurstPerAddr: 5},
	})
	ctx := t.Context()
	clients := map[core.NodeID]*Client{} // one connection per key: core caps anonymous connections per address
	send := func(from testNode) error {
		env, err := Seal(from.key, b.msg.Record(), &Message{Body: []byte("x")})
		require.NoError(t, err)
		c, ok := clients[from.id()]
		if !ok {
			c = dialMsg(t, clientEP(t, from.key), nb)
			clients[from.id()] = c
		}
		_, err = c.Deliver(ctx, env)
		return err
	}
	a := newTestNode(t)
	for i := range 3 {
		require.NoError(t, send(a), "delivery %d", i)
	}
	err := send(a)
	assert.Equal(t, StatusRateLimited, remoteCode(t, err))
	assert.Contains(t, err.Error(), "from this key")
	// Fresh keys from the same address: two more pass the address bucket
	// (5 in all, one was refused by the key limit before taking a token).
	c := newTestNode(t)
	require.NoError(t, send(c))
	require.NoError(t, send(c))
	err = send(newTestNode(t))
	assert.Equal(t, StatusRateLimited, remoteCode(t, err))
	assert.Contains(t, err.Error(), "from this address")
	// The node itself is not limited.
	require.NoError(t, send(b))
}

func TestRequireSendScope(t *testing.T) {
	a, b, s := newTestNode(t), newTestNode(t), newTestNode(t)
	peers := coretest.NewPeers(ownerPeers(b,
		core.PeerEntry{PeerID: "s", Fingerprints: []string{s.id().Fingerprint()}, Scopes: []string{ScopeSend}, Enabled: true})...)
	nb := startMsgNode(t, b, t.TempDir(), nodeOpts{peers: peers, cfg: Config{RequireSendScope: true}})
	ctx := t.Context()
	env, err := Seal(a.key, b.msg.Record(), &Message{Body: []byte("x")})
	require.NoError(t, err)
	_, err = dialMsg(t, clientEP(t, a.key), nb).Deliver(ctx, env)
	assert.Equal(t, StatusForbidden, remoteCode(t, err))
	assert.Contains(t, err.Error(), "authentication required")
	env, err = Seal(s.key, b.msg.Record(), &Message{Body: []byte("x")})
	require.NoError(t, err)
	_, err = dialMsg(t, clientEP(t, s.key), nb).Deliver(ctx, env)
	require.NoError(t, err)
}

func TestSubscribePushesNewMessages(t *testing.T) {
	a, b := newTestNode(t), newTestNode(t)
	nb := startMsgNode(t, b, t.TempDir(), nodeOpts{peers: coretest.NewPeers(ownerPeers(b)...)})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	sender := dialMsg(t, clientEP(t, a.key), nb)
	first, err := Seal(a.key, b.msg.Record(), &Message{Body: []byte("before")})
	require.NoError(t, err)
	_, err = sender.Deliver(ctx, first)
	require.NoError(t, err)

	got := make(chan Item, 8)
	subErr := make(chan error, 1)
	owner := dialMsg(t, clientEP(t, b.key), nb)
	go func() { subErr <- owner.Subscribe(ctx, b.id(), 0, func(it Item) error { got <- it; return nil }) }()
	recv := func(want string) {
		t.Helper()
		select {
		case it := <-got:
			m, err := Open(b.msg, it.Envelope)
			require.NoError(t, err)
			assert.Equal(t, want, string(m.Body))
		case err := <-subErr:
			t.Fatalf("subscription ended: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatalf("no push of %q within 10s", want)
		}
	}
	recv("before")
	for _, body := range []string{"live 1", "live 2"} {
		env, err := Seal(a.key, b.msg.Record(), &Message{Body: []byte(body)})
		require.NoError(t, err)
		_, err = sender.Deliver(ctx, env)
		require.NoError(t, err)
		recv(body)
	}
	cancel()
	select {
	case err := <-subErr:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("subscription did not end within 10s of cancel")
	}
}

func TestHostedMailbox(t *testing.T) {
	a, h, p := newTestNode(t), newTestNode(t), newTestNode(t)
	peers := coretest.NewPeers(ownerPeers(h,
		core.PeerEntry{PeerID: "p", Fingerprints: []string{p.id().Fingerprint()}, Scopes: []string{ScopeFetch}, Enabled: true})...)
	nh := startMsgNode(t, h, t.TempDir(), nodeOpts{peers: peers, cfg: Config{Host: []string{"p"}}})
	ctx := t.Context()
	env, err := Seal(a.key, p.msg.Record(), &Message{Body: []byte("for p, held by h")})
	require.NoError(t, err)
	_, err = dialMsg(t, clientEP(t, a.key), nh).Deliver(ctx, env)
	require.NoError(t, err)
	pc := dialMsg(t, clientEP(t, p.key), nh)
	items, err := pc.Fetch(ctx, p.id(), 0, 0)
	require.NoError(t, err)
	require.Len(t, items, 1)
	m, err := Open(p.msg, items[0].Envelope)
	require.NoError(t, err)
	assert.Equal(t, "for p, held by h", string(m.Body))
	// The host cannot read it, and does not let p read the host's own box.
	_, err = Open(h.msg, items[0].Envelope)
	require.ErrorIs(t, err, ErrEnvelope)
	_, err = pc.Fetch(ctx, h.id(), 0, 0)
	assert.Equal(t, StatusForbidden, remoteCode(t, err))

	// Senders learn p's key from the host once p has published it; only p
	// may publish it.
	stranger := dialMsg(t, clientEP(t, a.key), nh)
	_, err = stranger.Key(ctx, p.id())
	assert.Equal(t, StatusNotFound, remoteCode(t, err))
	err = stranger.Publish(ctx, p.msg.Record())
	assert.Equal(t, StatusForbidden, remoteCode(t, err))
	err = stranger.Publish(ctx, a.msg.Record())
	assert.Equal(t, StatusForbidden, remoteCode(t, err), "a stranger's own record: not hosted")
	require.NoError(t, pc.Publish(ctx, p.msg.Record()))
	rec, err := stranger.Key(ctx, p.id())
	require.NoError(t, err)
	assert.Equal(t, p.msg.PublicKey(), rec.Key)

	// So the outbox of a sender that never met p delivers through h.
	na := startMsgNode(t, a, t.TempDir(), nodeOpts{peers: coretest.NewPeers(ownerPeers(a)...), outbox: true, outCfg: fastOutbox()})
	id, err := na.outbox.Send(ctx, p.id(), nh.addr(), &Message{Body: []byte("via the host")})
	require.NoError(t, err)
	waitUntil(t, 15*time.Second, "delivered to the hosted mailbox", func() bool { return len(outboxLen(t, na)) == 0 })
	items, err = pc.Fetch(ctx, p.id(), items[0].Seq, 0)
	require.NoError(t, err)
	require.Len(t, items, 1)
	m, err = Open(p.msg, items[0].Envelope)
	require.NoError(t, err)
	assert.Equal(t, id, m.ID)
}

// countingConn counts the bytes written on the streams it opens.
type countingConn struct {
	core.Conn
	n *atomic.Int64
}

type countingStream struct {
	core.Stream
	n *atomic.Int64
}

func (c countingConn) OpenStream(ctx context.Context) (core.Stream, error) {
	s, err := c.Conn.OpenStream(ctx)
	if err != nil {
		return nil, err
	}
	return countingStream{s, c.n}, nil
}

func (s countingStream) Write(p []byte) (int, error) {
	n, err := s.Stream.Write(p)
	s.n.Add(int64(n))
	return n, err
}

func TestWireSizesAreBuckets(t *testing.T) {
	a, b := newTestNode(t), newTestNode(t)
	nb := startMsgNode(t, b, t.TempDir(), nodeOpts{peers: coretest.NewPeers(ownerPeers(b)...)})
	conn := dialMsg(t, clientEP(t, a.key), nb).Conn()
	var n atomic.Int64
	c := NewClient(countingConn{conn, &n})
	for _, body := range []int{0, 100, 867, 868, 3000, 10000, 60000, 200000} {
		env, err := Seal(a.key, b.msg.Record(), &Message{Body: make([]byte, body)})
		require.NoError(t, err)
		n.Store(0)
		_, err = c.Deliver(t.Context(), env)
		require.NoError(t, err)
		bucket, err := BucketFor(0, body)
		require.NoError(t, err)
		assert.Equal(t, int64(frameHeader+bucket+Overhead), n.Load(), "body of %d bytes", body)
	}
}

func TestRemoteErrorMessagesAreSanitized(t *testing.T) {
	assert.Equal(t, "a?b", sanitize("a\x1bb"))
	err := &RemoteError{Code: StatusInvalid, Message: "x"}
	assert.True(t, errors.Is(err, ErrEnvelope))
	assert.True(t, strings.HasPrefix(err.Error(), "alknet/msg: remote: invalid envelope"))
}

func TestDeliverLocal(t *testing.T) {
	a, b, c := newTestNode(t), newTestNode(t), newTestNode(t)
	nb := startMsgNode(t, b, t.TempDir(), nodeOpts{peers: coretest.NewPeers(ownerPeers(b)...)})
	ctx := t.Context()
	env, err := Seal(a.key, b.msg.Record(), &Message{Body: []byte("handed over in-process")})
	require.NoError(t, err)
	res, err := nb.srv.DeliverLocal(ctx, env)
	require.NoError(t, err)
	assert.False(t, res.Duplicate)
	res, err = nb.srv.DeliverLocal(ctx, env)
	require.NoError(t, err)
	assert.True(t, res.Duplicate)
	bad := bytes.Clone(env)
	bad[len(bad)-3] ^= 1
	_, err = nb.srv.DeliverLocal(ctx, bad)
	require.ErrorIs(t, err, ErrEnvelope)
	other, err := Seal(a.key, c.msg.Record(), &Message{Body: []byte("x")})
	require.NoError(t, err)
	_, err = nb.srv.DeliverLocal(ctx, other)
	require.ErrorIs(t, err, ErrNotFound)
	items := mailboxItems(t, nb)
	require.Len(t, items, 1)
	assert.Equal(t, env, items[0].Envelope)
}

// gatedConn delays every write of its streams until gate is closed.
type gatedConn struct {
	core.Conn
	gate chan struct{}
}

type gatedStream struct {
	core.Stream
	gate chan struct{}
}

func (c gatedConn) OpenStream(ctx context.Context) (core.Stream, error) {
	s, err := c.Conn.OpenStream(ctx)
	if err != nil {
		return nil, err
	}
	return gatedStream{s, c.gate}, nil
}

func (s gatedStream) Write(p []byte) (int, error) {
	<-s.gate
	return s.Stream.Write(p)
}

// A server that refuses a request before reading it, answering and
// closing the stream, makes the client's write fail: the client must
// still report the server's answer.
func TestClientReportsAnswerAfterRefusedWrite(t *testing.T) {
	a, b := newTestNode(t), newTestNode(t)
	client, server := coretest.Pipe(ALPN, coretest.Side{ID: a.id()}, coretest.Side{ID: b.id()})
	defer client.Close(core.CodeOK, "")
	gate := make(chan struct{})
	go func() {
		s, err := server.AcceptStream(t.Context())
		if err != nil {
			return
		}
		_ = writeFrame(s, byte(StatusTooLarge), []byte("deliver request over the limit (5000 bytes)"))
		_ = s.Close()
		close(gate)
	}()
	env, err := Seal(a.key, b.msg.Record(), &Message{Body: make([]byte, 10000)})
	require.NoError(t, err)
	_, err = Deliver(t.Context(), gatedConn{client, gate}, env)
	require.ErrorIs(t, err, ErrTooLarge)
	assert.Contains(t, err.Error(), "over the limit")
}

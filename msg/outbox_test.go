package msg

import (
	"bytes"
	"context"
	"database/sql"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// freeUDPAddr returns a loopback address with a port nothing listens on.
func freeUDPAddr(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := c.LocalAddr().String()
	require.NoError(t, c.Close())
	return addr
}

// waitUntil polls cond (each poll is a database read) until it holds or
// the deadline passes.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func fastOutbox() OutboxConfig {
	return OutboxConfig{MinBackoff: 50 * time.Millisecond, MaxBackoff: 300 * time.Millisecond, AttemptTimeout: 3 * time.Second}
}

func outboxLen(t *testing.T, n *msgNode) []OutboxEntry {
	t.Helper()
	es, err := n.srv.Store().Outbox(t.Context())
	require.NoError(t, err)
	return es
}

func mailboxItems(t *testing.T, n *msgNode) []Item {
	t.Helper()
	items, err := n.srv.Store().Fetch(t.Context(), n.id(), 0, 1000, 1<<30)
	require.NoError(t, err)
	return items
}

func TestOutboxDeliversWhenTheRecipientComesOnline(t *testing.T) {
	a, b := newTestNode(t), newTestNode(t)
	aDir, bDir := t.TempDir(), t.TempDir()
	bListen := freeUDPAddr(t)
	bAddr := core.Addr{ID: b.id(), Host: bListen}
	aPeers := coretest.NewPeers(ownerPeers(a)...)
	bPeers := coretest.NewPeers(ownerPeers(b)...)

	na := startMsgNode(t, a, aDir, nodeOpts{peers: aPeers, outbox: true, outCfg: fastOutbox()})
	body := []byte("sent while b was away, a unique marker 7f3a")
	id, err := na.outbox.Send(t.Context(), b.id(), bAddr, &Message{ContentType: "text/plain", Body: body})
	require.NoError(t, err)
	es := outboxLen(t, na)
	require.Len(t, es, 1)
	assert.Equal(t, id, es[0].ID)
	assert.False(t, es[0].Sealed, "b's key is not known yet")
	waitUntil(t, 10*time.Second, "two failed attempts", func() bool {
		es := outboxLen(t, na)
		return len(es) == 1 && es[0].Attempts >= 2 && es[0].LastError != ""
	})
	// The sender's database does not hold the plaintext either.
	raw := readDBFiles(t, aDir)
	assert.False(t, bytes.Contains(raw, body), "the outbox holds the plaintext")

	// The sender restarts while the message waits.
	na.stop()
	na = startMsgNode(t, a, aDir, nodeOpts{peers: aPeers, outbox: true, outCfg: fastOutbox()})
	require.Len(t, outboxLen(t, na), 1)

	nb := startMsgNode(t, b, bDir, nodeOpts{peers: bPeers, listen: bListen})
	waitUntil(t, 15*time.Second, "outbox empty", func() bool { return len(outboxLen(t, na)) == 0 })
	items := mailboxItems(t, nb)
	require.Len(t, items, 1)
	m, err := Open(b.msg, items[0].Envelope)
	require.NoError(t, err)
	assert.Equal(t, id, m.ID)
	assert.Equal(t, a.id(), m.Sender)
	assert.Equal(t, body, m.Body)

	// Restarts on either side bring no duplicate.
	nb.stop()
	nb = startMsgNode(t, b, bDir, nodeOpts{peers: bPeers, listen: bListen})
	na.stop()
	na = startMsgNode(t, a, aDir, nodeOpts{peers: aPeers, outbox: true, outCfg: fastOutbox()})
	assert.Empty(t, outboxLen(t, na))
	// A crash after delivery but before the outbox row was removed: the
	// same envelope goes out again and is dropped as a duplicate.
	_, err = na.outbox.Queue(t.Context(), bAddr, items[0].Envelope)
	require.NoError(t, err)
	waitUntil(t, 15*time.Second, "re-queued copy acknowledged", func() bool { return len(outboxLen(t, na)) == 0 })
	assert.Len(t, mailboxItems(t, nb), 1)

	// b's key is cached now: the next message is sealed at once.
	id2, err := na.outbox.Send(t.Context(), b.id(), bAddr, &Message{Body: []byte("second")})
	require.NoError(t, err)
	waitUntil(t, 15*time.Second, "second delivered", func() bool { return len(mailboxItems(t, nb)) == 2 })
	m2, err := Open(b.msg, mailboxItems(t, nb)[1].Envelope)
	require.NoError(t, err)
	assert.Equal(t, id2, m2.ID)
}

func TestOutboxMarksPermanentRefusalsFailed(t *testing.T) {
	a, b, c := newTestNode(t), newTestNode(t), newTestNode(t)
	nb := startMsgNode(t, b, t.TempDir(), nodeOpts{peers: coretest.NewPeers(ownerPeers(b)...)})
	na := startMsgNode(t, a, t.TempDir(), nodeOpts{peers: coretest.NewPeers(ownerPeers(a)...), outbox: true, outCfg: fastOutbox()})
	// An envelope for c handed to b, which keeps no mailbox for c: retried
	// (b might host c later); one that b refuses as invalid: failed at once.
	env, err := Seal(a.key, b.msg.Record(), &Message{Time: time.Now().Add(-30 * 24 * time.Hour), Body: []byte("stale")})
	require.NoError(t, err)
	_, err = na.outbox.Queue(t.Context(), nb.addr(), env)
	require.NoError(t, err)
	waitUntil(t, 10*time.Second, "failed", func() bool {
		es := outboxLen(t, na)
		return len(es) == 1 && es[0].State == "failed"
	})
	es := outboxLen(t, na)
	assert.Contains(t, es[0].LastError, "expired")
	assert.Equal(t, 1, es[0].Attempts)

	envC, err := Seal(a.key, c.msg.Record(), &Message{Body: []byte("for c")})
	require.NoError(t, err)
	_, err = na.outbox.Queue(t.Context(), nb.addr(), envC)
	require.NoError(t, err)
	waitUntil(t, 10*time.Second, "retried", func() bool {
		for _, e := range outboxLen(t, na) {
			if e.Recipient == c.id() && e.Attempts >= 2 {
				return e.State == "pending"
			}
		}
		return false
	})
}

func readDBFiles(t *testing.T, dir string) []byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "alknet.db*"))
	require.NoError(t, err)
	var all []byte
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		all = append(all, raw...)
	}
	return all
}

func TestOutboxReleasesTheLeaseWhenStopped(t *testing.T) {
	a, b := newTestNode(t), newTestNode(t)
	dir := t.TempDir()
	na := startMsgNode(t, a, dir, nodeOpts{peers: coretest.NewPeers(ownerPeers(a)...)})
	dialing := make(chan struct{})
	o, err := NewOutbox(OutboxConfig{Store: na.srv.Store(), Key: a.msg, AttemptTimeout: time.Minute,
		Dial: func(ctx context.Context, _ core.Addr) (core.Conn, error) {
			close(dialing)
			<-ctx.Done()
			return nil, ctx.Err()
		}})
	require.NoError(t, err)
	id, err := o.Send(t.Context(), b.id(), core.Addr{ID: b.id(), Host: "127.0.0.1:9"}, &Message{Body: []byte("x")})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- o.Attempt(ctx, id) }()
	select {
	case <-dialing:
	case <-time.After(10 * time.Second):
		t.Fatal("no dial within 10s")
	}
	cancel() // the node shuts down mid-attempt
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("attempt did not end within 10s of cancel")
	}
	var lease int64
	require.NoError(t, na.db.Read(t.Context(), func(tx *sql.Tx) error {
		return tx.QueryRowContext(t.Context(), `SELECT lease_until FROM msg_outbox WHERE message_id = ?`, id[:]).Scan(&lease)
	}))
	assert.Zero(t, lease, "the lease outlives the stopped attempt")
	es := outboxLen(t, na)
	require.Len(t, es, 1)
	assert.Equal(t, "pending", es[0].State)
	assert.Contains(t, es[0].LastError, "context canceled")
}

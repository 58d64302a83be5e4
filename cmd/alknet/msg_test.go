package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/msg"
	"github.com/alkdev/alknet/vault"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func msgInbox(t *testing.T, dataDir string) []msgInboxEntry {
	t.Helper()
	r := runCLI(t, nil, "--data", dataDir, "msg", "inbox", "--json")
	require.Equal(t, 0, r.code, r.stderr)
	var es []msgInboxEntry
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &es), r.stdout)
	return es
}

func TestMsgSendInboxReadKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	aDir, bDir := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	fingerprintOf(t, aDir)
	nb := startNode(t, bDir, "")
	aID := strings.TrimSpace(runCLI(t, nil, "--data", aDir, "id").stdout)

	r := runCLI(t, nil, "--data", aDir, "msg", "send", nb.Addr, "hello b\nsecond line")
	require.Equal(t, 0, r.code, r.stderr)
	id := strings.TrimSpace(r.stdout)
	_, err := msg.ParseMessageID(id)
	require.NoError(t, err, "stdout is the message id alone: %q", r.stdout)
	assert.Contains(t, r.stderr, "delivered to ")

	// A body from stdin, and one from a file.
	r = runCLI(t, strings.NewReader("from stdin"), "--data", aDir, "msg", "send", nb.Addr, "-")
	require.Equal(t, 0, r.code, r.stderr)
	file := filepath.Join(dir, "note.json")
	require.NoError(t, os.WriteFile(file, []byte(`{"k":1}`), 0o600))
	r = runCLI(t, nil, "--data", aDir, "msg", "send", "--file", file, nb.Addr)
	require.Equal(t, 0, r.code, r.stderr)

	es := msgInbox(t, bDir)
	require.Len(t, es, 3)
	assert.Equal(t, id, es[0].ID)
	assert.Equal(t, aID, es[0].From)
	assert.Equal(t, "hello b", es[0].FirstLine)
	assert.Equal(t, "text/plain; charset=utf-8", es[0].ContentType)
	assert.Equal(t, "from stdin", es[1].FirstLine)
	assert.Equal(t, "application/json", es[2].ContentType)

	r = runCLI(t, nil, "--data", bDir, "msg", "read", id)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "hello b\nsecond line", r.stdout)
	r = runCLI(t, nil, "--data", bDir, "msg", "read", "--json", id)
	require.Equal(t, 0, r.code, r.stderr)
	var e msgInboxEntry
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &e))
	assert.Equal(t, 19, e.Size)
	r = runCLI(t, nil, "--data", bDir, "msg", "read", strings.Repeat("0", 32))
	assert.NotEqual(t, 0, r.code)
	assert.Contains(t, r.stderr, "not found")

	// msg key, and the same key through the call operation msg/key.
	r = runCLI(t, nil, "--data", bDir, "msg", "key")
	require.Equal(t, 0, r.code, r.stderr)
	pub, err := base64.StdEncoding.DecodeString(strings.TrimSpace(r.stdout))
	require.NoError(t, err)
	assert.Len(t, pub, msg.PublicKeySize)
	r = runCLI(t, nil, "--data", bDir, "call", "--json", nb.Addr, "msg/key")
	require.Equal(t, 0, r.code, r.stderr)
	var info msgKeyInfo
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &info), r.stdout)
	assert.Equal(t, base64.StdEncoding.EncodeToString(pub), info.PublicKey)
	rec, err := base64.StdEncoding.DecodeString(info.Record)
	require.NoError(t, err)
	kr, err := msg.ParseKeyRecord(rec, mustNodeID(t, nb.Addr))
	require.NoError(t, err, "the record is signed by the node key")
	assert.Equal(t, pub, kr.Key)

	// A body over the largest bucket is refused before anything is queued.
	big := filepath.Join(dir, "big")
	require.NoError(t, os.WriteFile(big, make([]byte, msg.MaxBody+1), 0o600))
	r = runCLI(t, nil, "--data", aDir, "msg", "send", "--file", big, nb.Addr)
	assert.NotEqual(t, 0, r.code)
	assert.Contains(t, r.stderr, "at most")
	r = runCLI(t, nil, "--data", aDir, "msg", "outbox", "--json")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "[]\n", r.stdout)
}

func mustNodeID(t *testing.T, addr string) core.NodeID {
	t.Helper()
	a, err := core.ParseAddr(addr)
	require.NoError(t, err)
	return a.ID
}

// freeUDPPort returns a loopback UDP port nothing listens on.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

func TestMsgOutboxDeliversWhenTheRecipientStarts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	aDir, cDir := filepath.Join(dir, "a"), filepath.Join(dir, "c")
	cID := strings.TrimSpace(runCLI(t, nil, "--data", cDir, "init").stdout)
	cListen := fmt.Sprintf("127.0.0.1:%d", freeUDPPort(t))
	cAddr := cID + "@" + cListen
	fast := "[msg]\nretry_min = \"100ms\"\nretry_max = \"500ms\"\n"

	// c is offline: the message is queued, sealed to a itself until c's key
	// is known.
	r := runCLI(t, nil, "--data", aDir, "--connect-timeout", "1s", "msg", "send", "--timeout", "2s", cAddr, "while you were out")
	require.Equal(t, 0, r.code, r.stderr)
	id := strings.TrimSpace(r.stdout)
	assert.Contains(t, r.stderr, "queued, not delivered yet")
	r = runCLI(t, nil, "--data", aDir, "msg", "outbox")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, id)
	assert.Contains(t, r.stdout, "pending")

	na := startNode(t, aDir, fast)
	nc := startNode(t, cDir, "", "--listen", cListen)
	deadline := time.Now().Add(60 * time.Second)
	var es []msgInboxEntry
	for len(es) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("not delivered within 60s; sender log: %s", na.Log())
		}
		time.Sleep(100 * time.Millisecond)
		es = msgInbox(t, cDir)
	}
	require.Len(t, es, 1)
	assert.Equal(t, id, es[0].ID)
	waitLog(t, na, "serving") // a is up; now restart both sides
	deadline = time.Now().Add(30 * time.Second)
	for {
		r = runCLI(t, nil, "--data", aDir, "msg", "outbox", "--json")
		if r.stdout == "[]\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox not emptied: %s", r.stdout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	na.stop(t)
	nc.stop(t)
	na = startNode(t, aDir, fast)
	nc = startNode(t, cDir, "", "--listen", cListen)
	// A bare node id works now: a learned c's key and address.
	r = runCLI(t, nil, "--data", aDir, "msg", "send", cID, "second")
	require.Equal(t, 0, r.code, r.stderr)
	es = msgInbox(t, cDir)
	require.Len(t, es, 2, "exactly the two messages, no duplicate")
	assert.Equal(t, id, es[0].ID)
	assert.Equal(t, "second", es[1].FirstLine)
}

func TestMsgWatchAndHostedMailbox(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	aDir, bDir, pDir := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "p")
	fingerprintOf(t, aDir)
	config := "[msg]\nhost = [\"p\"]\n[[peers]]\nid = \"p\"\nfingerprints = [\"" + fingerprintOf(t, pDir) + "\"]\nscopes = [\"msg:fetch\"]\n"
	nb := startNode(t, bDir, config)
	watch := exec.Command(alknetBin, "--data", bDir, "msg", "watch", "--json")
	out, err := watch.StdoutPipe()
	require.NoError(t, err)
	werr := &syncBuffer{}
	watch.Stderr = werr
	require.NoError(t, watch.Start())
	t.Cleanup(func() { _ = watch.Process.Kill(); _ = watch.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(werr.String(), "watching") {
		if time.Now().After(deadline) {
			t.Fatalf("watch did not start: %s", werr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	lines := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	r := runCLI(t, nil, "--data", aDir, "msg", "send", nb.Addr, "watch this")
	require.Equal(t, 0, r.code, r.stderr)
	id := strings.TrimSpace(r.stdout)
	select {
	case l, ok := <-lines:
		require.True(t, ok, "watch exited: %s", werr.String())
		var e msgInboxEntry
		require.NoError(t, json.Unmarshal([]byte(l), &e), l)
		assert.Equal(t, id, e.ID)
		assert.Equal(t, "watch this", e.FirstLine)
	case <-time.After(30 * time.Second):
		t.Fatalf("watch printed nothing within 30s: %s", werr.String())
	}
	hostedMailboxSteps(t, aDir, pDir, nb.Addr)
}

func TestMsgKeyFromVault(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	pf := writeSecret(t, dir, "pass", "correct horse battery staple", 0o600)
	r := runCLI(t, nil, "--data", data, "vault", "restore", "--mnemonic-file", writeSecret(t, dir, "m", vaultTestMnemonic, 0o600), "--passphrase-file", pf)
	require.Equal(t, 0, r.code, r.stderr)
	r = runCLI(t, nil, "--data", data, "--passphrase-file", pf, "msg", "key", "--json")
	require.Equal(t, 0, r.code, r.stderr)
	var info msgKeyInfo
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &info), r.stdout)

	nodeKey, nodeID := expectedKey(t, vaultTestMnemonic, "", vault.NodeIdentityPath())
	msgSeed, _ := expectedKey(t, vaultTestMnemonic, "", vault.MessageKeyPath())
	sk, err := core.NewSecretKey(nodeKey.Seed())
	require.NoError(t, err)
	want, err := msg.NewPrivateKey(sk, msgSeed.Seed())
	require.NoError(t, err)
	assert.Equal(t, nodeID.String(), info.Node)
	assert.Equal(t, base64.StdEncoding.EncodeToString(want.PublicKey()), info.PublicKey)
	// Not the key a node without a vault would derive from the same node key.
	plain, err := msg.KeyFromNodeKey(sk)
	require.NoError(t, err)
	assert.NotEqual(t, base64.StdEncoding.EncodeToString(plain.PublicKey()), info.PublicKey)
}

// (continued) b keeps p's mailbox: p publishes its key there, a sends to
// p through b, p moves the message home.
func hostedMailboxSteps(t *testing.T, aDir, pDir string, host string) {
	t.Helper()
	pID := strings.TrimSpace(runCLI(t, nil, "--data", pDir, "id").stdout)
	r := runCLI(t, nil, "--data", aDir, "msg", "send", "--to", pID, host, "for p")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stderr, "queued", "p's key is not on the host yet")
	r = runCLI(t, nil, "--data", pDir, "msg", "fetch", host)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stderr, "0 new messages")
	// Now the host serves p's key; a's retry seals for p and delivers.
	r = runCLI(t, nil, "--data", aDir, "msg", "send", "--to", pID, host, "for p, again")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stderr, "delivered to ")
	r = runCLI(t, nil, "--data", pDir, "msg", "fetch", host)
	require.Equal(t, 0, r.code, r.stderr)
	id := strings.TrimSpace(r.stdout)
	assert.Contains(t, r.stderr, "1 new messages")
	es := msgInbox(t, pDir)
	require.Len(t, es, 1)
	assert.Equal(t, id, es[0].ID)
	assert.Equal(t, "for p, again", es[0].FirstLine)
	r = runCLI(t, nil, "--data", pDir, "msg", "fetch", host)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stderr, "0 new messages", "the host deleted what p acknowledged")
}

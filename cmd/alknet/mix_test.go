package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mixNet is three mix nodes on loopback, one per layer; a is the
// directory authority and publishes the directory the test signs.
type mixNet struct {
	nodes []*node
	dirs  []string
	file  string // the published directory
}

// peersTOML grants each fingerprint the scopes.
func peersTOML(fps map[string]string, scopes ...string) string {
	var b strings.Builder
	for id, fp := range fps {
		fmt.Fprintf(&b, "[[peers]]\nid = %q\nfingerprints = [%q]\nscopes = [%s]\n", id, fp, `"`+strings.Join(scopes, `", "`)+`"`)
	}
	return b.String()
}

func startMixNet(t *testing.T, extraPeers map[string]string) *mixNet {
	t.Helper()
	base := t.TempDir()
	m := &mixNet{}
	fps := map[string]string{}
	for _, name := range []string{"a", "b", "c"} {
		d := filepath.Join(base, name)
		m.dirs = append(m.dirs, d)
		fps["mix-"+name] = fingerprintOf(t, d)
	}
	for k, v := range extraPeers {
		fps[k] = v
	}
	peers := peersTOML(fps, "call", "mix")
	m.file = filepath.Join(m.dirs[0], "mix-directory")
	a := startNode(t, m.dirs[0], "[mix]\nenabled = true\npublish = \"mix-directory\"\n"+peers)
	m.nodes = append(m.nodes, a)
	for _, d := range m.dirs[1:] {
		m.nodes = append(m.nodes, startNode(t, d, fmt.Sprintf("[mix]\nenabled = true\nauthority = %q\n", a.Addr)+peers))
	}
	r := runCLI(t, nil, "--data", m.dirs[0], "mix", "directory", "sign", "--out", m.file, "--mean", "20ms",
		"0:"+m.nodes[0].Addr, "1:"+m.nodes[1].Addr, "2:"+m.nodes[2].Addr)
	require.Equal(t, 0, r.code, "sign: %s", r.stderr)
	assert.Contains(t, r.stderr, "signed a directory of 3 nodes in 3 layers")
	return m
}

func TestMixDirectorySignAndShow(t *testing.T) {
	t.Parallel()
	m := startMixNet(t, nil)
	// Fetched from the authority by a mix node, verified against its id.
	r := runCLI(t, nil, "--data", m.dirs[1], "mix", "directory", "show", m.nodes[0].Addr)
	require.Equal(t, 0, r.code, r.stderr)
	for i, n := range m.nodes {
		id, host, _ := strings.Cut(n.Addr, "@")
		assert.Regexp(t, fmt.Sprintf(`(?m)^%d\s+%s\s+%s$`, i, id, host), r.stdout)
	}
	assert.Contains(t, r.stdout, "mean delay 20ms per hop, 3 layers")
	aID, _, _ := strings.Cut(m.nodes[0].Addr, "@")
	assert.Contains(t, r.stdout, "authority  "+aID)

	// The file verifies against the authority, and against nobody else.
	r = runCLI(t, nil, "--data", m.dirs[0], "mix", "directory", "show", m.file)
	require.Equal(t, 0, r.code, r.stderr)
	bID, _, _ := strings.Cut(m.nodes[1].Addr, "@")
	r = runCLI(t, nil, "--data", m.dirs[0], "mix", "directory", "show", "--authority", bID, m.file)
	assert.NotEqual(t, 0, r.code)
	assert.Contains(t, r.stderr, "not the authority")

	// A layer without a node is refused before anything is written.
	r = runCLI(t, nil, "--data", m.dirs[0], "mix", "directory", "sign", "--out", m.file+".2", "0:"+m.nodes[0].Addr, "2:"+m.nodes[2].Addr)
	assert.NotEqual(t, 0, r.code)
	assert.Contains(t, r.stderr, "layer 1 has no node")
	assert.NoFileExists(t, m.file+".2")
}

// alknet msg send --via-mix: a message crosses three mix nodes on loopback
// (one per layer) and lands in the recipient's mailbox; the last mix node,
// not the sender, delivered it.
func TestMsgSendViaMix(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	sender := filepath.Join(base, "sender")
	m := startMixNet(t, map[string]string{"sender": fingerprintOf(t, sender)})
	rcpt := startNode(t, filepath.Join(base, "rcpt"), "")
	writeConfig(t, sender, fmt.Sprintf("[mix]\nauthority = %q\n", m.nodes[0].Addr))

	const body = "through three mixes"
	r := runCLI(t, nil, "--data", sender, "msg", "send", "--via-mix", rcpt.Addr, body)
	require.Equal(t, 0, r.code, "send: %s", r.stderr)
	id := strings.TrimSpace(r.stdout)
	require.Regexp(t, `^[0-9a-f]{32}$`, id)
	assert.Contains(t, r.stderr, "(3 hops,")
	aID, _, _ := strings.Cut(m.nodes[0].Addr, "@")
	assert.Contains(t, r.stderr, "handed to mix node "+aID)

	deadline := time.Now().Add(60 * time.Second)
	for {
		r = runCLI(t, nil, "--data", rcpt.DataDir, "msg", "read", id)
		if r.code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("message not in the recipient's mailbox within 60s: %s\nmix logs:\n%s\n%s\n%s", r.stderr, m.nodes[0].Log(), m.nodes[1].Log(), m.nodes[2].Log())
		}
		time.Sleep(200 * time.Millisecond) // polling the mailbox: one CLI run per try
	}
	assert.Equal(t, body, r.stdout)
	r = runCLI(t, nil, "--data", rcpt.DataDir, "msg", "read", "--json", id)
	require.Equal(t, 0, r.code, r.stderr)
	sID := strings.TrimSpace(runCLI(t, nil, "--data", sender, "id").stdout)
	assert.Contains(t, r.stdout, sID, "the recipient learns the sender from inside the envelope")

	// Each layer saw the packet once; the last one delivered it.
	for i, n := range m.nodes {
		r := runCLI(t, nil, "--data", m.dirs[i], "call", n.Addr, "mix/stats")
		require.Equal(t, 0, r.code, r.stderr)
		var st struct {
			Received, Relayed, Delivered, DroppedInvalid, DroppedReplay uint64
		}
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &st), r.stdout)
		assert.Equal(t, uint64(1), st.Received, "layer %d", i)
		if i < 2 {
			assert.Equal(t, uint64(1), st.Relayed, "layer %d", i)
		} else {
			assert.Equal(t, uint64(1), st.Delivered, "layer %d", i)
		}
		assert.Zero(t, st.DroppedInvalid+st.DroppedReplay, "layer %d", i)
	}
}

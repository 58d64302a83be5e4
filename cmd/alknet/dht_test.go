package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/dns/pkarr"
	mdns "github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// loopbackDHT runs n DHT nodes on 127.0.0.1 that bootstrap from each other
// and returns the [dht] bootstrap line naming them. Nothing here knows the
// public routers: every process of the test gets this list.
func loopbackDHT(t *testing.T, n int) string {
	t.Helper()
	conns := make([]net.PacketConn, n)
	var quoted []string
	for i := range conns {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		require.NoError(t, err)
		conns[i] = c
		quoted = append(quoted, fmt.Sprintf("%q", c.LocalAddr().String()))
	}
	nodes := make([]*pkarr.DHT, n)
	for i := range nodes {
		var boot []string
		for j, c := range conns {
			if j != i {
				boot = append(boot, c.LocalAddr().String())
			}
		}
		d, err := pkarr.NewDHT(pkarr.DHTConfig{Conn: conns[i], Bootstrap: boot, SendRate: -1})
		require.NoError(t, err)
		t.Cleanup(func() { _ = d.Close() })
		nodes[i] = d
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for _, d := range nodes {
		require.NoError(t, d.Bootstrap(ctx))
	}
	return "bootstrap = [" + strings.Join(quoted, ", ") + "]"
}

// TestDHTFindByNodeID: a node that serves with --publish is found by its
// id alone on a loopback DHT, and `alknet ping <nodeid>` reaches it.
func TestDHTFindByNodeID(t *testing.T) {
	t.Parallel()
	boot := loopbackDHT(t, 3)
	cli := filepath.Join(t.TempDir(), "cli")
	cliFP := fingerprintOf(t, cli)
	srv := startNode(t, filepath.Join(t.TempDir(), "srv"), "[dht]\nlisten = \"127.0.0.1:0\"\n"+boot+"\n"+
		"[[peers]]\nid = \"cli\"\nfingerprints = [\""+cliFP+"\"]\nscopes = [\"git\"]\nresources = { \"git:repo/*\" = [\"read\"] }\n", "--publish")
	waitLog(t, srv, "dht record published")
	id, _, _ := strings.Cut(srv.Addr, "@")
	writeConfig(t, cli, "[dht]\n"+boot+"\n")

	// msg send finds the recipient by id alone too.
	r := runCLI(t, nil, "--data", cli, "msg", "send", id, "hello by id")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stderr, "delivered to "+srv.Addr)

	// git finds the node by id alone too: the refusal comes from the node.
	g := newGitEnv(t, cli)
	gitOut, ok := g.run(t.TempDir(), "ls-remote", "alknet://"+id+"/missing.git")
	assert.False(t, ok)
	assert.Contains(t, gitOut, "fatal: remote error: alknet: repository not found: missing.git", "git by node id")

	r = runCLI(t, nil, "--data", cli, "resolve", id)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, srv.Addr+"\n", r.stdout, "the served address, pinned to the id")
	assert.Contains(t, r.stderr, "from the dht: seq ")

	r = runCLI(t, nil, "--data", cli, "resolve", "--json", "alknet://"+id)
	require.Equal(t, 0, r.code, r.stderr)
	var out resolveOut
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
	assert.Equal(t, id, out.Node)
	assert.Equal(t, "dht", out.Source)
	assert.Equal(t, []string{srv.Addr}, out.Addrs)
	assert.Contains(t, out.ALPNs, core.PingALPN)
	assert.Greater(t, out.Seq, time.Now().Add(-time.Hour).UnixMicro())
	p, err := pkarr.ParseSignedPacket(out.Packet)
	require.NoError(t, err, "the printed packet verifies")
	assert.Equal(t, id, p.ID.String())

	for _, target := range []string{id, "alknet://" + id} {
		r = runCLI(t, nil, "--data", cli, "ping", "-c", "1", target)
		require.Equal(t, 0, r.code, r.stderr)
		assert.Contains(t, r.stdout, "connected to "+id)
		assert.Contains(t, r.stdout, "seq=1")
	}

	// An id nobody published: a clear error, no dial.
	other, err := core.GenerateSecretKey()
	require.NoError(t, err)
	r = runCLI(t, nil, "--data", cli, "ping", "-c", "1", other.NodeID().String())
	assert.NotEqual(t, 0, r.code)
	assert.Contains(t, r.stderr, "alknet/pkarr: no record found: node "+other.NodeID().String())

	// A client off the DHT (no bootstrap node) asks a known node, which
	// looks the record up for it (dht/resolve over call); the client
	// verifies it.
	lone := filepath.Join(t.TempDir(), "lone")
	fp := fingerprintOf(t, lone)
	hub := startNode(t, filepath.Join(t.TempDir(), "hub"), "[dht]\nlisten = \"127.0.0.1:0\"\n"+boot+
		"\n[[peers]]\nid = \"lone\"\nfingerprints = [\""+fp+"\"]\nscopes = [\"call\"]\n")
	waitLog(t, hub, "dht node")
	writeConfig(t, lone, "[dht]\nbootstrap = []\nknown = [\""+hub.Addr+"\"]\n")
	hubID, _, _ := strings.Cut(hub.Addr, "@")
	r = runCLI(t, nil, "--data", lone, "resolve", id)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, srv.Addr+"\n", r.stdout)
	assert.Contains(t, r.stderr, "from the peer "+hubID+": seq ")
	r = runCLI(t, nil, "--data", lone, "ping", "-c", "1", id)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "connected to "+id)
	// --dht skips the known nodes: this client has no way in.
	r = runCLI(t, nil, "--data", lone, "resolve", "--dht", id)
	assert.NotEqual(t, 0, r.code, "--dht skips the known node, and the client has no bootstrap node")
	assert.Contains(t, r.stderr, "no bootstrap nodes configured")
}

func TestParseTarget(t *testing.T) {
	t.Parallel()
	k, err := core.GenerateSecretKey()
	require.NoError(t, err)
	id := k.NodeID()
	for _, tc := range []struct {
		in, host string
	}{
		{id.String() + "@127.0.0.1:4433", "127.0.0.1:4433"},
		{"alknet://" + id.String() + "@[::1]:4433/x", "[::1]:4433"},
		{id.String(), ""},
		{"alknet://" + id.String(), ""},
		{"alknet://" + id.String() + "/repo", ""},
		{strings.TrimPrefix(id.Fingerprint(), "ed25519:"), ""},
	} {
		a, err := parseTarget(tc.in)
		require.NoError(t, err, tc.in)
		assert.Equal(t, id, a.ID, tc.in)
		assert.Equal(t, tc.host, a.Host, tc.in)
	}
	for _, bad := range []string{"", "nodeid", id.String() + "@", id.String()[:51], id.String() + "@host", "alknet://" + id.String() + "@/x"} {
		_, err := parseTarget(bad)
		assert.ErrorContains(t, err, "or a bare node id", bad)
	}
	assert.Equal(t, id.String(), targetString(core.Addr{ID: id}))
	assert.Equal(t, id.String()+"@127.0.0.1:1", targetString(core.Addr{ID: id, Host: "127.0.0.1:1"}))
}

// TestDialResolvedPinned: every address a resolution gives is dialed with
// the resolved id, and an entry naming another key is never dialed.
func TestDialResolvedPinned(t *testing.T) {
	t.Parallel()
	k1, _ := core.GenerateSecretKey()
	k2, _ := core.GenerateSecretKey()
	r := &resolved{ID: k1.NodeID(), Source: "dht", Addrs: []core.Addr{
		{ID: k2.NodeID(), Host: "127.0.0.1:1"},
		{ID: k1.NodeID(), Host: "127.0.0.1:2"},
		{ID: k1.NodeID(), Host: "127.0.0.1:3"},
	}}
	var dialed []string
	_, err := dialResolved(t.Context(), r, func(_ context.Context, a core.Addr) (core.Conn, error) {
		dialed = append(dialed, a.String())
		return nil, fmt.Errorf("refused")
	})
	assert.Equal(t, []string{k1.NodeID().String() + "@127.0.0.1:2", k1.NodeID().String() + "@127.0.0.1:3"}, dialed)
	assert.ErrorContains(t, err, "no address answered")
	assert.ErrorContains(t, err, "127.0.0.1:3: refused")
}

func TestParseCpArgNodeID(t *testing.T) {
	t.Parallel()
	k, _ := core.GenerateSecretKey()
	id := k.NodeID().String()
	e, err := parseCpArg(id + ":/srv/file")
	require.NoError(t, err)
	assert.Equal(t, cpEnd{remote: true, addr: id, path: "/srv/file"}, e)
	e, err = parseCpArg("alknet://" + id + "/srv/file")
	require.NoError(t, err)
	assert.Equal(t, cpEnd{remote: true, addr: id, path: "/srv/file"}, e)
	e, err = parseCpArg("local:/x")
	require.NoError(t, err)
	assert.False(t, e.remote)
}

func TestDHTConfigSection(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	require.NoError(t, os.WriteFile(path, []byte("[dht]\nlisten = \"127.0.0.1:0\"\nbootstrap = []\npublish = true\nadvertise = [\"192.0.2.1:4433\"]\n"), 0o600))
	cfg, err := loadConfig(path, true)
	require.NoError(t, err)
	require.NotNil(t, cfg.DHT.Bootstrap)
	assert.Equal(t, []string{}, cfg.DHT.bootstrap(), "empty list: no bootstrap, not the public routers")
	assert.True(t, cfg.DHT.Publish)
	require.NoError(t, cfg.DHT.check())

	require.NoError(t, os.WriteFile(path, []byte("[dht]\nlisten = \"127.0.0.1:0\"\n"), 0o600))
	cfg, err = loadConfig(path, true)
	require.NoError(t, err)
	assert.Nil(t, cfg.DHT.bootstrap(), "absent: the public routers")

	cfg.DHT.Advertise = []string{"example.org:1"}
	assert.ErrorContains(t, cfg.DHT.check(), `[dht] advertise "example.org:1": want ip:port`)
	cfg.DHT.Advertise = nil
	cfg.DHT.Known = []string{"nope"}
	assert.ErrorContains(t, cfg.DHT.check(), `[dht] known "nope"`)
}

// TestDNSServesNodeRecord: with [dns] publish, the record the node puts on
// the DHT is also answered by its own DNS server as <z32 nodeid>.<zone>.
func TestDNSServesNodeRecord(t *testing.T) {
	t.Parallel()
	boot := loopbackDHT(t, 2)
	dir := filepath.Join(t.TempDir(), "node")
	r := runCLI(t, nil, "--data", dir, "init")
	require.Equal(t, 0, r.code, r.stderr)
	r = runCLI(t, nil, "--data", dir, "dns", "zone", "add", "nodes.test")
	require.Equal(t, 0, r.code, r.stderr)
	n := startNode(t, dir, "[dns]\npublish = true\n[dht]\nlisten = \"127.0.0.1:0\"\n"+boot+"\n", "--dns-listen", "127.0.0.1:0")
	waitLog(t, n, `msg="dns: node record served"`)
	addr := dnsListenLog.FindStringSubmatch(n.Log())[1]
	id, hostPort, _ := strings.Cut(n.Addr, "@")
	_, port, _ := net.SplitHostPort(hostPort)
	m := dnsAsk(t, "udp", addr, id+".nodes.test", mdns.TypeA)
	assert.Equal(t, []string{id + ".nodes.test.\t300\tIN\tA\t127.0.0.1"}, answerStrings(m))
	m = dnsAsk(t, "udp", addr, id+".nodes.test", mdns.TypeSVCB)
	require.Len(t, m.Answer, 1)
	assert.Contains(t, m.Answer[0].String(), "port=\""+port+"\"", "the SVCB names the node's port")
}

package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
	"github.com/alkdev/alknet/dns"
	mdns "github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var dnsListenLog = regexp.MustCompile(`msg="dns listening" udp=(\S+)`)

// dnsAsk sends one classic query to addr over network.
func dnsAsk(t *testing.T, network, addr, name string, qtype uint16) *mdns.Msg {
	t.Helper()
	q := new(mdns.Msg)
	q.SetQuestion(mdns.Fqdn(name), qtype)
	c := &mdns.Client{Net: network, Timeout: 5 * time.Second}
	r, _, err := c.ExchangeContext(t.Context(), q, addr)
	require.NoError(t, err)
	return r
}

func answerStrings(m *mdns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		out = append(out, rr.String())
	}
	return out
}

// TestDNSServeLiveChange: a node serves its zones over classic DNS and DoQ,
// and `alknet dns add` in another process is answered within a second.
func TestDNSServeLiveChange(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "node")
	r := runCLI(t, nil, "--data", dir, "init")
	require.Equal(t, 0, r.code, r.stderr)
	r = runCLI(t, nil, "--data", dir, "dns", "zone", "add", "example.test")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "example.test.\n", r.stdout)
	r = runCLI(t, nil, "--data", dir, "dns", "add", "www.example.test", "A", "192.0.2.1", "--ttl", "60")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "www.example.test.\t60\tIN\tA\t192.0.2.1\n", r.stdout)

	n := startNode(t, dir, "", "--dns-listen", "127.0.0.1:0")
	waitLog(t, n, `msg="dns listening"`)
	addr := dnsListenLog.FindStringSubmatch(n.Log())[1]
	for _, network := range []string{"udp", "tcp"} {
		m := dnsAsk(t, network, addr, "www.example.test", mdns.TypeA)
		assert.True(t, m.Authoritative)
		assert.Equal(t, []string{"www.example.test.\t60\tIN\tA\t192.0.2.1"}, answerStrings(m))
	}
	m := dnsAsk(t, "udp", addr, "example.test", mdns.TypeNS)
	nodeID := strings.SplitN(n.Addr, "@", 2)[0]
	assert.Equal(t, []string{"example.test.\t3600\tIN\tNS\t" + nodeID + ".example.test."}, answerStrings(m),
		"the zone's name server is the node's own name in it")

	r = runCLI(t, nil, "--data", dir, "dns", "add", "new.example.test", "TXT", "fresh", "record")
	require.Equal(t, 0, r.code, r.stderr)
	added := time.Now()
	for {
		m := dnsAsk(t, "udp", addr, "new.example.test", mdns.TypeTXT)
		if len(m.Answer) == 1 {
			assert.Equal(t, "new.example.test.\t300\tIN\tTXT\t\"fresh record\"", m.Answer[0].String())
			break
		}
		require.Equal(t, mdns.RcodeNameError, m.Rcode)
		require.Less(t, time.Since(added), time.Second, "the record was not served within a second of dns add")
	}

	// DoQ through the node's endpoint, pinned like any alknet dial.
	a, err := core.ParseAddr(n.Addr)
	require.NoError(t, err)
	cli := coretest.ClientEndpoint(t, core.SecretKey{})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := cli.Dial(ctx, a, dns.ALPN)
	require.NoError(t, err, "doq is open to callers the node does not know")
	q := new(mdns.Msg)
	q.SetQuestion("www.example.test.", mdns.TypeA)
	resp, err := dns.Exchange(ctx, conn, q)
	require.NoError(t, err)
	assert.Equal(t, []string{"www.example.test.\t60\tIN\tA\t192.0.2.1"}, answerStrings(resp))
}

// TestDNSCLIRecords: ls, rm, import and export on the local database, and
// one-line errors that change nothing.
func TestDNSCLIRecords(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "node")
	run := func(args ...string) result {
		return runCLI(t, nil, append([]string{"--data", dir, "dns"}, args...)...)
	}
	r := run("zone", "add", "example.test", "--ns", "ns1.example.test")
	require.Equal(t, 0, r.code, r.stderr)
	zone := "$ORIGIN example.test.\n@ 3600 IN SOA ns1 hostmaster 9 3600 600 604800 300\n@ 3600 IN NS ns1\n" +
		"ns1 60 IN A 192.0.2.53\n@ 60 IN MX 10 ns1\n_x._tcp 60 IN SRV 1 1 80 ns1\n*.w 60 IN TXT \"wild\"\n"
	file := filepath.Join(t.TempDir(), "zone.txt")
	require.NoError(t, os.WriteFile(file, []byte(zone), 0o600))
	r = run("import", "example.test", file)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "imported 6 records\n", r.stderr)

	r = run("ls", "example.test", "--json")
	require.Equal(t, 0, r.code, r.stderr)
	var out struct{ Records []dns.Record }
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
	require.Len(t, out.Records, 6)
	assert.Equal(t, dns.Record{Zone: "example.test.", Name: "ns1.example.test.", Type: "A", TTL: 60, Value: "192.0.2.53"}, out.Records[4])

	r = run("export", "example.test")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "*.w.example.test.\t60\tIN\tTXT\t\"wild\"\n")
	exported := r.stdout

	for _, bad := range [][]string{
		{"add", "www.example.test", "BOGUS", "x"},
		{"add", "www.nowhere.test", "A", "192.0.2.1"},
		{"add", "ns1.example.test", "CNAME", "other.example.test"},
		{"rm", "example.test", "SOA"},
		{"rm", "nope.example.test"},
	} {
		r = run(bad...)
		assert.Equal(t, 1, r.code, bad)
		assert.Equal(t, 1, strings.Count(r.stderr, "\n"), "one line: %q", r.stderr)
		assert.True(t, strings.HasPrefix(r.stderr, "alknet: "), r.stderr)
	}
	r = run("export", "example.test")
	assert.Equal(t, exported, r.stdout, "refused commands changed nothing but the serial")

	r = run("rm", "ns1.example.test", "A", "192.0.2.53")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "removed 1 record\n", r.stderr)
	r = run("ls")
	require.Equal(t, 0, r.code, r.stderr)
	assert.NotContains(t, r.stdout, "192.0.2.53")
	assert.Contains(t, r.stdout, "_x._tcp.example.test.")
}

// TestDNSCallOps: dns/add, dns/rm and dns/list need scope dns:update.
func TestDNSCallOps(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	editorDir, userDir := filepath.Join(dir, "editor"), filepath.Join(dir, "user")
	config := "[[peers]]\nid = \"editor\"\nfingerprints = [\"" + fingerprintOf(t, editorDir) + "\"]\nscopes = [\"call\", \"dns:update\"]\n" +
		"[[peers]]\nid = \"user\"\nfingerprints = [\"" + fingerprintOf(t, userDir) + "\"]\nscopes = [\"call\"]\n"
	nodeDir := filepath.Join(dir, "node")
	r := runCLI(t, nil, "--data", nodeDir, "init")
	require.Equal(t, 0, r.code, r.stderr)
	r = runCLI(t, nil, "--data", nodeDir, "dns", "zone", "add", "example.test")
	require.Equal(t, 0, r.code, r.stderr)
	n := startNode(t, nodeDir, config, "--dns-listen", "127.0.0.1:0")
	waitLog(t, n, `msg="dns listening"`)
	addr := dnsListenLog.FindStringSubmatch(n.Log())[1]

	r = runCLI(t, nil, "--data", userDir, "call", n.Addr, "dns/add", `{"name":"x.example.test","type":"A","value":"192.0.2.9"}`)
	assert.NotEqual(t, 0, r.code)
	assert.Equal(t, "alknet: FORBIDDEN: missing scope dns:update\n", r.stderr)

	r = runCLI(t, nil, "--data", editorDir, "call", "--json", n.Addr, "dns/add", `{"name":"x.example.test","type":"A","value":"192.0.2.9","ttl":30}`)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, `{"record":{"name":"x.example.test.","type":"A","ttl":30,"value":"192.0.2.9"},"added":true}`+"\n", r.stdout)
	assert.Equal(t, []string{"x.example.test.\t30\tIN\tA\t192.0.2.9"}, answerStrings(dnsAsk(t, "udp", addr, "x.example.test", mdns.TypeA)))

	r = runCLI(t, nil, "--data", editorDir, "call", n.Addr, "dns/add", `{"name":"x.example.test","type":"A","value":"nope"}`)
	assert.NotEqual(t, 0, r.code)
	assert.True(t, strings.HasPrefix(r.stderr, "alknet: INVALID_INPUT: invalid record value: A \"nope\""), r.stderr)

	r = runCLI(t, nil, "--data", editorDir, "call", "--json", n.Addr, "dns/list", `{"zone":"example.test"}`)
	require.Equal(t, 0, r.code, r.stderr)
	var list struct{ Records []dns.Record }
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &list))
	assert.Len(t, list.Records, 3)

	r = runCLI(t, nil, "--data", editorDir, "call", "--json", n.Addr, "dns/rm", `{"name":"x.example.test"}`)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, `{"removed":1}`+"\n", r.stdout)
	assert.Equal(t, mdns.RcodeNameError, dnsAsk(t, "udp", addr, "x.example.test", mdns.TypeA).Rcode)
}

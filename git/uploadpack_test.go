package git

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/go-git/go-git/v6/plumbing"
	"github.com/go-git/go-git/v6/plumbing/revlist"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// v2Command frames a protocol v2 command: its name, a delimiter, the
// argument lines, a flush.
func v2Command(name string, args ...string) string {
	var b strings.Builder
	b.Write(pktLine([]byte("command=" + name + "\n")))
	b.Write(pktLine([]byte("agent=test\n")))
	b.WriteString("0001")
	for _, a := range args {
		b.Write(pktLine([]byte(a + "\n")))
	}
	b.WriteString("0000")
	return b.String()
}

// splitPkt takes one pkt-line off s: its payload ("" for a flush, "\x01"
// for a delimiter) and the rest.
func splitPkt(t *testing.T, s string) (string, string) {
	t.Helper()
	require.GreaterOrEqual(t, len(s), 4, "truncated answer")
	var n int
	_, err := fmt.Sscanf(s[:4], "%04x", &n)
	require.NoError(t, err, "%q", s[:4])
	switch n {
	case 0:
		return "", s[4:]
	case 1:
		return "\x01", s[4:]
	}
	require.GreaterOrEqual(t, len(s), n)
	return s[4:n], s[n:]
}

// skipSection drops pkt-lines up to and including the next flush.
func skipSection(t *testing.T, s string) string {
	t.Helper()
	for {
		var l string
		l, s = splitPkt(t, s)
		if l == "" {
			return s
		}
	}
}

// demuxPack takes the side-band data of a packfile section up to its
// flush and returns the pack and the rest.
func demuxPack(t *testing.T, s string) ([]byte, string) {
	t.Helper()
	var pack []byte
	for {
		var l string
		l, s = splitPkt(t, s)
		if l == "" {
			return pack, s
		}
		require.Equal(t, byte(1), l[0], "band 1 only")
		pack = append(pack, l[1:]...)
	}
}

func TestUploadPackV2Wire(t *testing.T) {
	srv, err := New(Config{Root: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	st, _, commits := packedRepo(t, srv, "p.git", 30)
	tip := commits[len(commits)-1].String()
	reader := &core.Identity{ID: "r", Resources: map[string][]string{"git:repo/p": {"read"}}}
	session := func(cmds ...string) string {
		out := exchange(t, srv, reader, string(Request{Service: UploadPack, Path: "/p.git", Extra: []string{"version=2"}}.Encode())+strings.Join(cmds, "")+"0000")
		require.True(t, strings.HasPrefix(out, "000eversion 2\n"), out)
		return skipSection(t, out) // the capability advertisement
	}
	all, err := revlist.Objects(st, []plumbing.Hash{commits[len(commits)-1]}, nil)
	require.NoError(t, err)

	// ls-refs (go-git) then a clone fetch (the reused pack), in one session.
	out := session(v2Command("ls-refs", "peel", "symrefs"), v2Command("fetch", "want "+tip, "ofs-delta", "no-progress", "done"))
	l, out := splitPkt(t, out)
	assert.Equal(t, tip+" HEAD symref-target:refs/heads/main\n", l)
	l, out = splitPkt(t, out)
	assert.Equal(t, tip+" refs/heads/main\n", l)
	l, out = splitPkt(t, out)
	assert.Equal(t, "", l)
	l, out = splitPkt(t, out)
	assert.Equal(t, "packfile\n", l)
	pack, out := demuxPack(t, out)
	assert.Equal(t, hexes(all), parsePack(t, pack))
	assert.Equal(t, "", out, "nothing after the pack")

	// Negotiation: an unknown have gets a NAK and no pack; a have the
	// want descends from makes the server ready, and the pack follows.
	unknown := strings.Repeat("ab", 20)
	out = session(v2Command("fetch", "want "+tip, "have "+unknown, "ofs-delta"))
	assert.Equal(t, string(pktLine([]byte("acknowledgments\n")))+string(pktLine([]byte("NAK\n")))+"0000", out)
	mid := commits[9].String()
	out = session(v2Command("fetch", "want "+tip, "have "+unknown, "have "+mid, "ofs-delta"))
	l, out = splitPkt(t, out)
	assert.Equal(t, "acknowledgments\n", l)
	l, out = splitPkt(t, out)
	assert.Equal(t, "ACK "+mid+"\n", l)
	l, out = splitPkt(t, out)
	assert.Equal(t, "ready\n", l)
	l, out = splitPkt(t, out)
	assert.Equal(t, "\x01", l)
	l, out = splitPkt(t, out)
	assert.Equal(t, "packfile\n", l)
	pack, _ = demuxPack(t, out)
	incr, err := revlist.Objects(st, []plumbing.Hash{commits[len(commits)-1]}, []plumbing.Hash{commits[9]})
	require.NoError(t, err)
	assert.Equal(t, hexes(incr), parsePack(t, pack))

	// A shallow clone is go-git's: shallow-info, then the pack.
	out = session(v2Command("fetch", "want "+tip, "deepen 1", "ofs-delta", "done"))
	l, _ = splitPkt(t, out)
	assert.Equal(t, "shallow-info\n", l)

	// A want the repository lacks is go-git's too: an error, no pack.
	out = session(v2Command("fetch", "want "+unknown, "done"))
	assert.NotContains(t, out, "packfile")
}

func TestReadCommand(t *testing.T) {
	cmd := v2Command("fetch", "want "+strings.Repeat("a", 40), "done")
	br := bufio.NewReader(strings.NewReader(cmd + "rest"))
	raw, err := readCommand(br, 1024)
	require.NoError(t, err)
	assert.Equal(t, cmd, string(raw))
	rest, _ := br.Peek(4)
	assert.Equal(t, "rest", string(rest), "reads no byte past the flush")

	for name, tt := range map[string]struct {
		in   string
		max  int
		want string
	}{
		"lone flush":   {"0000", 1024, "end of session"},
		"eof":          {"", 1024, "end of session"},
		"truncated":    {"0010command=f", 1024, "unexpected EOF"},
		"no flush":     {string(pktLine([]byte("command=fetch\n"))), 1024, "EOF"},
		"bad length":   {"zzzz", 1024, "bad pkt-line length"},
		"length 3":     {"0003", 1024, "bad pkt-line length"},
		"delim first":  {"0001", 1024, "bad pkt-line length"},
		"response end": {string(pktLine([]byte("command=fetch\n"))) + "0002", 1024, "bad pkt-line length"},
		"over the max": {cmd, len(cmd) - 1, "over"},
	} {
		_, err := readCommand(bufio.NewReader(strings.NewReader(tt.in)), tt.max)
		assert.ErrorContains(t, err, tt.want, name)
	}
}

func TestParseFetch(t *testing.T) {
	w, h := strings.Repeat("a", 40), strings.Repeat("b", 40)
	req, ok := parseFetch([]byte(v2Command("fetch", "want "+w, "have "+h, "thin-pack", "include-tag", "ofs-delta", "done")))
	require.True(t, ok)
	assert.Equal(t, []string{w}, hexes(req.wants))
	assert.Equal(t, []string{h}, hexes(req.haves))
	assert.True(t, req.done && req.ofsDelta && req.includeTag)
	for _, args := range [][]string{
		{"want " + w, "deepen 1"},
		{"want " + w, "shallow " + h},
		{"want " + w, "filter blob:none"},
		{"want-ref refs/heads/main"},
		{"want " + w[:39]},
		{"done"},
	} {
		_, ok := parseFetch([]byte(v2Command("fetch", args...)))
		assert.False(t, ok, "%v", args)
	}
	_, ok = parseFetch([]byte(v2Command("ls-refs")))
	assert.False(t, ok)
}

// FuzzReadCommand checks that a command read from the wire respects the
// limit, is a prefix of the input ending with a flush, splits into
// pkt-lines, and that a fetch parsed from it has wants.
func FuzzReadCommand(f *testing.F) {
	f.Add([]byte(v2Command("fetch", "want "+strings.Repeat("a", 40), "ofs-delta", "done")))
	f.Add([]byte(v2Command("ls-refs", "peel")))
	f.Add([]byte("0000"))
	f.Add([]byte("0014command=fetch\n0001000"))
	f.Fuzz(func(t *testing.T, data []byte) {
		const limit = 512
		raw, err := readCommand(bufio.NewReader(bytes.NewReader(data)), limit)
		if err != nil {
			if errors.Is(err, errEndOfSession) && len(data) >= 4 && string(data[:4]) != "0000" {
				t.Fatalf("end of session on %q", data[:4])
			}
			return
		}
		if len(raw) > limit || !bytes.HasPrefix(data, raw) || !bytes.HasSuffix(raw, []byte("0000")) {
			t.Fatalf("bad command %q", raw)
		}
		if _, ok := pktLines(raw); !ok {
			t.Fatalf("command does not split: %q", raw)
		}
		if req, ok := parseFetch(raw); ok && len(req.wants) == 0 {
			t.Fatal("fetch without wants accepted")
		}
	})
}

func TestWantsAnchored(t *testing.T) {
	srv, err := New(Config{Root: t.TempDir()})
	require.NoError(t, err)
	st, _, commits := packedRepo(t, srv, "p.git", 30)
	tip := commits[len(commits)-1]
	other := commit(t, st, "unrelated")
	for _, tt := range []struct {
		name   string
		common []plumbing.Hash
		want   bool
	}{
		{"an ancestor", []plumbing.Hash{commits[3]}, true},
		{"the want itself", []plumbing.Hash{tip}, true},
		{"unrelated", []plumbing.Hash{other}, false},
		{"none", nil, false},
		{"unrelated and an ancestor", []plumbing.Hash{other, commits[20]}, true},
	} {
		got, err := wantsAnchored(st, []plumbing.Hash{tip}, tt.common)
		require.NoError(t, err)
		assert.Equal(t, tt.want, got, tt.name)
	}

	// The walk stops at commits older than the cutoff: with the cutoff
	// after the whole history only the want is settled.
	tc, ok := peelCommit(st, tip)
	require.True(t, ok)
	seen := map[oid]bool{key(other): true}
	got, err := reachesAnchor(st, tc, seen, tc.Committer.When.Add(time.Hour))
	require.NoError(t, err)
	assert.False(t, got)
	assert.Len(t, seen, 3, "the anchor, the want and its parent, no deeper")
	seen = map[oid]bool{key(other): true}
	_, err = reachesAnchor(st, tc, seen, time.Time{})
	require.NoError(t, err)
	assert.Len(t, seen, 31, "without a cutoff the whole history")
}

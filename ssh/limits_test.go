package ssh_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
	alkssh "github.com/alkdev/alknet/ssh"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	gossh "golang.org/x/crypto/ssh"
)

// recv waits for one value on ch, failing the test after d.
func recv[T any](t *testing.T, ch <-chan T, d time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("timed out after %v waiting for %s", d, what)
		panic("unreachable")
	}
}

// within runs f and fails the test if it has not returned after d (f's
// goroutine is left to the test's cleanup, which closes the connection).
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	recv(t, done, d, what)
}

// openReason returns the rejection reason and message of a channel open.
func openReason(t *testing.T, err error) (gossh.RejectionReason, string) {
	t.Helper()
	var oe *gossh.OpenChannelError
	require.ErrorAs(t, err, &oe)
	return oe.Reason, oe.Message
}

func TestMaxForwards(t *testing.T) {
	echo := echoServer(t)
	f := newFixture(t, alkssh.Config{MaxForwards: 2}, map[string][]string{"alice": allScopes})
	c := f.client("alice")
	var open []gossh.Channel
	for range 2 {
		ch, err := alkssh.DialTCP(t.Context(), c, "127.0.0.1", port(t, echo))
		require.NoError(t, err)
		open = append(open, ch)
	}
	_, err := alkssh.DialTCP(t.Context(), c, "127.0.0.1", port(t, echo))
	reason, msg := openReason(t, err)
	assert.Equal(t, gossh.ResourceShortage, reason)
	assert.Equal(t, "too many open forward channels", msg)

	// Forwarded connections count too: a connection to a -R listener is
	// closed while both slots are taken.
	ln, err := c.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	tc, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	_ = tc.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := tc.Read(make([]byte, 1))
	assert.Equal(t, 0, n)
	assert.ErrorIs(t, err, io.EOF, "the node closes the forwarded connection it has no slot for")
	_ = tc.Close()

	// A slot frees when its channel closes.
	require.NoError(t, open[0].Close())
	require.Eventually(t, func() bool {
		ch, err := alkssh.DialTCP(t.Context(), c, "127.0.0.1", port(t, echo))
		if err != nil {
			return false
		}
		roundTrip(t, ch)
		return true
	}, 10*time.Second, 20*time.Millisecond, "a freed forward slot is reusable")
}

func TestMaxListeners(t *testing.T) {
	f := newFixture(t, alkssh.Config{MaxListeners: 2}, map[string][]string{"alice": allScopes})
	c := f.client("alice")
	ok1, p1 := tcpipForward(t, c, "127.0.0.1")
	ok2, _ := tcpipForward(t, c, "127.0.0.1")
	require.True(t, ok1 && ok2)
	ok3, _ := tcpipForward(t, c, "127.0.0.1")
	assert.False(t, ok3, "third listener over MaxListeners 2")

	// Cancelling one frees its slot, and its port stops accepting.
	ok, _, err := c.SendRequest("cancel-tcpip-forward", true, gossh.Marshal(struct {
		Addr string
		Port uint32
	}{"127.0.0.1", p1}))
	require.NoError(t, err)
	require.True(t, ok)
	ok4, _ := tcpipForward(t, c, "127.0.0.1")
	assert.True(t, ok4, "a cancelled listener frees its slot")
	_, err = net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(p1))))
	assert.Error(t, err, "the cancelled port no longer accepts")
}

func TestMaxAuthTries(t *testing.T) {
	f := newFixture(t, alkssh.Config{MaxAuthTries: 3}, map[string][]string{"alice": allScopes})
	hostKey := func(conn core.Conn) gossh.PublicKey {
		pk, err := gossh.NewPublicKey(conn.RemoteID().PublicKey())
		require.NoError(t, err)
		return pk
	}
	login := func(strangers int) error {
		conn := f.conn(f.peers["alice"])
		var signers []gossh.Signer
		for range strangers {
			s, err := gossh.NewSignerFromKey(coretest.Key(t).PrivateKey())
			require.NoError(t, err)
			signers = append(signers, s)
		}
		alice, err := gossh.NewSignerFromKey(f.peers["alice"].PrivateKey())
		require.NoError(t, err)
		signers = append(signers, alice)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		st, err := conn.OpenStream(ctx)
		require.NoError(t, err)
		_ = st.SetDeadline(time.Now().Add(10 * time.Second))
		cc, chans, reqs, err := gossh.NewClientConn(st, "node", &gossh.ClientConfig{
			User:            "tester",
			Auth:            []gossh.AuthMethod{gossh.PublicKeys(signers...)},
			HostKeyCallback: gossh.FixedHostKey(hostKey(conn)),
		})
		if err != nil {
			return err
		}
		gossh.NewClient(cc, chans, reqs).Close()
		return nil
	}
	// x/crypto/ssh lets MaxAuthTries key queries (offers without a
	// signature) fail for free; each one after that is a try.
	require.NoError(t, login(5), "3 free refusals + 2 tries, then the right key")
	err := login(6)
	require.Error(t, err, "3 free refusals + 3 tries use up MaxAuthTries 3")
	assert.Contains(t, err.Error(), "too many authentication failures")
}

// TestKillGrace: a program that ignores SIGHUP is killed KillGrace after
// its channel goes away.
func TestKillGrace(t *testing.T) {
	f := newFixture(t, alkssh.Config{KillGrace: 100 * time.Millisecond}, map[string][]string{"alice": allScopes})
	c := f.client("alice")
	for _, tc := range []struct{ name, cmd string }{
		{"ignores HUP", "trap '' HUP; echo $$; exec sleep 300"},
		{"dies of HUP", "echo $$; exec sleep 300"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := c.NewSession()
			require.NoError(t, err)
			out, err := s.StdoutPipe()
			require.NoError(t, err)
			require.NoError(t, s.Start(tc.cmd))
			var line string
			within(t, 10*time.Second, "the program's pid", func() { line, err = bufio.NewReader(out).ReadString('\n') })
			require.NoError(t, err)
			pid, err := strconv.Atoi(strings.TrimSpace(line))
			require.NoError(t, err)
			require.NoError(t, syscall.Kill(pid, 0), "the program runs")
			t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) }) // a failure must not leave it behind
			require.NoError(t, s.Close())
			require.Eventually(t, func() bool {
				return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
			}, 20*time.Second, 10*time.Millisecond, "program %d still running after its channel closed", pid)
		})
	}
}

func TestSignalRequest(t *testing.T) {
	f := newFixture(t, alkssh.Config{}, map[string][]string{"alice": allScopes})
	c := f.client("alice")

	// A trapped signal: the program reacts and exits with its own status.
	s, err := c.NewSession()
	require.NoError(t, err)
	out, err := s.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, s.Start("trap 'echo got-usr1; exit 7' USR1; echo ready; while :; do sleep 0.05; done"))
	br := bufio.NewReader(out)
	var line string
	within(t, 10*time.Second, "the program's first line", func() { line, err = br.ReadString('\n') })
	require.NoError(t, err)
	require.Equal(t, "ready\n", line)
	require.NoError(t, s.Signal(gossh.SIGUSR1))
	var rest []byte
	within(t, 10*time.Second, "the program's reaction to SIGUSR1", func() { rest, err = io.ReadAll(br) })
	require.NoError(t, err)
	assert.Equal(t, "got-usr1\n", string(rest))
	within(t, 10*time.Second, "the exit status", func() { err = s.Wait() })
	assert.Equal(t, 7, exitStatus(t, err))

	// An untrapped signal: exit-signal with its name. An unknown name is
	// refused and changes nothing.
	ch, reqs, err := c.OpenChannel("session", nil)
	require.NoError(t, err)
	exits := make(chan *gossh.Request, 4)
	go func() {
		for r := range reqs {
			exits <- r
		}
		close(exits)
	}()
	ok, err := ch.SendRequest("exec", true, gossh.Marshal(struct{ Command string }{"echo ready; exec sleep 300"}))
	require.NoError(t, err)
	require.True(t, ok)
	within(t, 10*time.Second, "the program's first line", func() { line, err = bufio.NewReader(ch).ReadString('\n') })
	require.NoError(t, err)
	require.Equal(t, "ready\n", line)
	for _, bad := range [][]byte{gossh.Marshal(struct{ Signal string }{"NOPE"}), gossh.Marshal(struct{ Signal string }{"SIGTERM"}), {0, 0}} {
		ok, err = ch.SendRequest("signal", true, bad)
		require.NoError(t, err)
		assert.False(t, ok, "signal %q refused", bad)
	}
	ok, err = ch.SendRequest("signal", true, gossh.Marshal(struct{ Signal string }{"TERM"}))
	require.NoError(t, err)
	assert.True(t, ok)
	r := recv(t, exits, 10*time.Second, "the exit report")
	require.NotNil(t, r, "channel closed without an exit report")
	require.Equal(t, "exit-signal", r.Type)
	var sig struct {
		Signal     string
		CoreDumped bool
		Message    string
		Lang       string
	}
	require.NoError(t, gossh.Unmarshal(r.Payload, &sig))
	assert.Equal(t, "TERM", sig.Signal)
	_ = ch.Close()
}

// TestMalformedForwardRequests: malformed direct-tcpip opens and
// tcpip-forward requests are refused, and the connection keeps working.
func TestMalformedForwardRequests(t *testing.T) {
	f := newFixture(t, alkssh.Config{}, map[string][]string{"alice": allScopes})
	c := f.client("alice")
	type direct struct {
		Host     string
		Port     uint32
		OrigHost string
		OrigPort uint32
	}
	good := gossh.Marshal(direct{"127.0.0.1", 9, "127.0.0.1", 1})
	for name, payload := range map[string][]byte{
		"empty":      nil,
		"truncated":  good[:len(good)-3],
		"trailing":   append(append([]byte{}, good...), 0xff),
		"port 0":     gossh.Marshal(direct{"127.0.0.1", 0, "", 0}),
		"port 65536": gossh.Marshal(direct{"127.0.0.1", 65536, "", 0}),
		"no host":    gossh.Marshal(direct{"", 22, "", 0}),
		"long host":  gossh.Marshal(direct{strings.Repeat("h", 300), 22, "", 0}),
		"nul host":   gossh.Marshal(direct{"127.0.0.1\x00evil", 22, "", 0}),
	} {
		_, _, err := c.OpenChannel("direct-tcpip", payload)
		reason, msg := openReason(t, err)
		assert.Equal(t, gossh.ConnectionFailed, reason, name)
		assert.Equal(t, "bad direct-tcpip request", msg, name)
	}
	fwd := gossh.Marshal(struct {
		Addr string
		Port uint32
	}{"127.0.0.1", 0})
	for name, payload := range map[string][]byte{
		"empty":     nil,
		"truncated": fwd[:5],
		"trailing":  append(append([]byte{}, fwd...), 1),
		"port 65536": gossh.Marshal(struct {
			Addr string
			Port uint32
		}{"127.0.0.1", 65536}),
		"long addr": gossh.Marshal(struct {
			Addr string
			Port uint32
		}{strings.Repeat("a", 300), 0}),
	} {
		for _, typ := range []string{"tcpip-forward", "cancel-tcpip-forward"} {
			ok, _, err := c.SendRequest(typ, true, payload)
			require.NoError(t, err)
			assert.False(t, ok, "%s %s", typ, name)
		}
	}
	out, _, err := run(t, c, "echo still-here", nil)
	require.NoError(t, err)
	assert.Equal(t, "still-here\n", out)
}

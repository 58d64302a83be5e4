package ssh_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	alkssh "github.com/alkdev/alknet/ssh"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	gossh "golang.org/x/crypto/ssh"
)

// fakeResolver answers from a table and counts lookups per name; names
// listed in then answer differently from the second lookup on (a
// rebinding DNS server).
type fakeResolver struct {
	mu    sync.Mutex
	first map[string][]string
	then  map[string][]string
	calls map[string]int
}

func (r *fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.calls == nil {
		r.calls = map[string]int{}
	}
	r.calls[host]++
	answer, ok := r.first[host]
	if later, rebinds := r.then[host]; rebinds && r.calls[host] > 1 {
		answer = later
	}
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []netip.Addr
	for _, a := range answer {
		out = append(out, netip.MustParseAddr(a))
	}
	return out, nil
}

func (r *fakeResolver) count(host string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[host]
}

// TestForwardDenyListBypass drives direct-tcpip (ssh -L, -W) and the SOCKS
// server over it (ssh -D) with every spelling of the local host that a
// deny-list must catch, literal and from DNS.
func TestForwardDenyListBypass(t *testing.T) {
	echo := echoServer(t)
	echoPort := port(t, echo)
	rules, err := alkssh.ParseRules([]string{"!127.0.0.0/8", "!::1", "!fe80::/10", "*"})
	require.NoError(t, err)
	res := &fakeResolver{first: map[string][]string{
		"evil.test":   {"127.0.0.1"},
		"mapped.test": {"::ffff:127.0.0.1"},
		"zero.test":   {"0.0.0.0"},
		"zoned.test":  {"::1%lo"},
		"v6zero.test": {"::"},
	}}
	f := newFixture(t, alkssh.Config{ForwardAllow: rules, Resolver: res}, map[string][]string{"alice": allScopes})
	c := f.client("alice")

	for _, dest := range []string{
		"127.0.0.1", "0.0.0.0", "::", "::ffff:127.0.0.1", "::ffff:0.0.0.0", "::1%lo", "fe80::1%lo",
		"0.0.0.1", "evil.test", "mapped.test", "zero.test", "zoned.test", "v6zero.test",
	} {
		t.Run(dest, func(t *testing.T) {
			ch, err := alkssh.DialTCP(t.Context(), c, dest, echoPort)
			if ch != nil {
				_ = ch.Close()
			}
			require.Error(t, err, "reached the local host")
			assert.True(t, alkssh.IsRefused(err), "%v", err)
			assert.Contains(t, err.Error(), "destination not allowed")
		})
	}

	// The same through the SOCKS server (ssh -D): reply 0x02.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &alkssh.SOCKSServer{Dial: func(ctx context.Context, host string, port uint16) (alkssh.HalfCloser, error) {
		return alkssh.DialTCP(ctx, c, host, port)
	}}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	defer func() { cancel(); require.NoError(t, recv(t, done, 10*time.Second, "the SOCKS server to stop")) }()
	for _, req := range []alkssh.SOCKSRequest{
		{Cmd: alkssh.SOCKSConnect, IP: netip.MustParseAddr("0.0.0.0"), Port: echoPort},
		{Cmd: alkssh.SOCKSConnect, IP: netip.MustParseAddr("::ffff:127.0.0.1"), Port: echoPort},
		{Cmd: alkssh.SOCKSConnect, IP: netip.IPv6Unspecified(), Port: echoPort},
		{Cmd: alkssh.SOCKSConnect, Domain: "evil.test", Port: echoPort},
		{Cmd: alkssh.SOCKSConnect, Domain: "::1%lo", Port: echoPort},
	} {
		assert.Equal(t, alkssh.SOCKSNotAllowed, socksConnect(t, ln.Addr().String(), req), "%s", req.Host())
	}
}

// socksConnect sends one no-auth CONNECT and returns the reply code.
func socksConnect(t *testing.T, proxy string, req alkssh.SOCKSRequest) byte {
	t.Helper()
	conn, err := net.Dial("tcp", proxy)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.Write(append([]byte{5, 1, 0}, alkssh.AppendSOCKSRequest(nil, req)...))
	require.NoError(t, err)
	var rep [12]byte
	_, err = io.ReadFull(conn, rep[:])
	require.NoError(t, err)
	require.Equal(t, []byte{5, 0}, rep[:2], "method: no auth")
	assert.Equal(t, uint16(0), binary.BigEndian.Uint16(rep[10:]))
	return rep[3]
}

// TestForwardDialsCheckedAddress: a name is resolved once, and the address
// that passed the rules is the one dialed, however the name resolves
// afterwards; the unspecified address is dialed as the loopback address it
// was checked as.
func TestForwardDialsCheckedAddress(t *testing.T) {
	echo := echoServer(t)
	echoPort := port(t, echo)
	rules, err := alkssh.ParseRules([]string{"127.0.0.1:" + strconv.Itoa(int(echoPort)), "*.test"})
	require.NoError(t, err)
	res := &fakeResolver{
		first: map[string][]string{"rebind.test": {"127.0.0.1"}},
		then:  map[string][]string{"rebind.test": {"10.255.255.1"}},
	}
	f := newFixture(t, alkssh.Config{ForwardAllow: rules, Resolver: res}, map[string][]string{"alice": allScopes})
	c := f.client("alice")

	ch, err := alkssh.DialTCP(t.Context(), c, "rebind.test", echoPort)
	require.NoError(t, err)
	roundTrip(t, ch)
	assert.Equal(t, 1, res.count("rebind.test"), "resolved once")

	ch, err = alkssh.DialTCP(t.Context(), c, "0.0.0.0", echoPort)
	require.NoError(t, err, "0.0.0.0 is checked and dialed as 127.0.0.1")
	roundTrip(t, ch)

	_, err = alkssh.DialTCP(t.Context(), c, "127.0.0.2", echoPort)
	assert.True(t, alkssh.IsRefused(err), "%v", err)
}

// tcpipForward sends a raw tcpip-forward request for addr:0 and returns
// whether it was accepted and the port.
func tcpipForward(t *testing.T, c *gossh.Client, addr string) (bool, uint32) {
	t.Helper()
	ok, reply, err := c.SendRequest("tcpip-forward", true, gossh.Marshal(struct {
		Addr string
		Port uint32
	}{addr, 0}))
	require.NoError(t, err)
	if !ok {
		return false, 0
	}
	require.Len(t, reply, 4)
	return true, binary.BigEndian.Uint32(reply)
}

// TestRemoteBind: without AllowRemoteBind only loopback spellings bind,
// and they bind loopback; with it, the wildcard binds too.
func TestRemoteBind(t *testing.T) {
	f := newFixture(t, alkssh.Config{}, map[string][]string{"alice": allScopes})
	c := f.client("alice")
	for _, addr := range []string{"0.0.0.0", "::", "::ffff:0.0.0.0", "*", "192.0.2.1", "fe80::1%lo", "example.com"} {
		ok, _ := tcpipForward(t, c, addr)
		assert.False(t, ok, "bind %q without AllowRemoteBind", addr)
	}
	for _, tc := range []struct{ addr, reach string }{
		{"", "127.0.0.1"}, {"localhost", "127.0.0.1"}, {"127.0.0.1", "127.0.0.1"},
		{"::ffff:127.0.0.1", "127.0.0.1"}, {"::1", "::1"}, {"::1%lo", "::1"},
	} {
		ok, p := tcpipForward(t, c, tc.addr)
		require.True(t, ok, "bind %q", tc.addr)
		conn, err := net.Dial("tcp", net.JoinHostPort(tc.reach, fmt.Sprint(p)))
		require.NoError(t, err, "bind %q listens on %s", tc.addr, tc.reach)
		_ = conn.Close()
	}

	open := newFixture(t, alkssh.Config{AllowRemoteBind: true}, map[string][]string{"alice": allScopes})
	oc := open.client("alice")
	ok, p := tcpipForward(t, oc, "0.0.0.0")
	require.True(t, ok, "AllowRemoteBind admits the wildcard")
	addrs, err := net.InterfaceAddrs()
	require.NoError(t, err)
	// Reachable on loopback and, when the machine has one, on a
	// non-loopback address: it is bound to all of them.
	conn, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", fmt.Sprint(p)))
	require.NoError(t, err)
	_ = conn.Close()
	for _, a := range addrs {
		if pfx, err := netip.ParsePrefix(a.String()); err == nil && pfx.Addr().Is4() && !pfx.Addr().IsLoopback() {
			conn, err := net.Dial("tcp", net.JoinHostPort(pfx.Addr().String(), fmt.Sprint(p)))
			require.NoError(t, err, "wildcard bind reachable on %s", pfx.Addr())
			_ = conn.Close()
			break
		}
	}
	ok, _ = tcpipForward(t, oc, "192.0.2.1")
	assert.False(t, ok, "an address the machine does not have fails to bind")
}

package ssh_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	alkssh "github.com/alkdev/alknet/ssh"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadSOCKSRequest(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want alkssh.SOCKSRequest
		err  error
	}{
		{"ipv4", []byte{5, 1, 0, 1, 127, 0, 0, 1, 0x1f, 0x90}, alkssh.SOCKSRequest{Cmd: 1, IP: netip.MustParseAddr("127.0.0.1"), Port: 8080}, nil},
		{"ipv6", append(append([]byte{5, 1, 0, 4}, netip.IPv6Loopback().AsSlice()...), 0, 22), alkssh.SOCKSRequest{Cmd: 1, IP: netip.IPv6Loopback(), Port: 22}, nil},
		{"domain", append([]byte{5, 1, 0, 3, 11}, "example.org\x01\xbb"...), alkssh.SOCKSRequest{Cmd: 1, Domain: "example.org", Port: 443}, nil},
		{"bad version", []byte{4, 1, 0, 1, 1, 2, 3, 4, 0, 80}, alkssh.SOCKSRequest{}, alkssh.ErrSOCKS},
		{"reserved set", []byte{5, 1, 1, 1, 1, 2, 3, 4, 0, 80}, alkssh.SOCKSRequest{}, alkssh.ErrSOCKS},
		{"empty domain", []byte{5, 1, 0, 3, 0, 0, 80}, alkssh.SOCKSRequest{}, alkssh.ErrSOCKS},
		{"bad atyp", []byte{5, 1, 0, 9, 1, 2, 3, 4, 0, 80}, alkssh.SOCKSRequest{}, alkssh.ErrSOCKSUnsupported},
		{"short", []byte{5, 1, 0, 1, 1, 2}, alkssh.SOCKSRequest{}, alkssh.ErrSOCKS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := alkssh.ReadSOCKSRequest(bytes.NewReader(tc.in))
			if tc.err != nil {
				assert.ErrorIs(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.in, alkssh.AppendSOCKSRequest(nil, got))
		})
	}
}

// FuzzReadSOCKSRequest checks that a request that parses consumed exactly
// its declared length, stays within the size limit, and encodes back to
// the same bytes.
func FuzzReadSOCKSRequest(f *testing.F) {
	f.Add([]byte{5, 1, 0, 1, 127, 0, 0, 1, 0, 80})
	f.Add(append([]byte{5, 1, 0, 3, 9}, "localhost\x00\x16trailing"...))
	f.Add(append(append([]byte{5, 3, 0, 4}, make([]byte, 16)...), 1, 2))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		req, err := alkssh.ReadSOCKSRequest(r)
		if err != nil {
			return
		}
		consumed := len(data) - r.Len()
		declared := 4 + 2
		switch data[3] {
		case 1:
			declared += 4
		case 4:
			declared += 16
		case 3:
			declared += 1 + int(data[4])
		}
		if consumed != declared || consumed > 262 {
			t.Fatalf("consumed %d, declared %d", consumed, declared)
		}
		if enc := alkssh.AppendSOCKSRequest(nil, req); !bytes.Equal(enc, data[:consumed]) {
			t.Fatalf("round trip: %x != %x", enc, data[:consumed])
		}
	})
}

func FuzzReadSOCKSGreeting(f *testing.F) {
	f.Add([]byte{5, 1, 0})
	f.Add([]byte{5, 2, 2, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		noAuth, err := alkssh.ReadSOCKSGreeting(r)
		if err != nil {
			return
		}
		consumed := len(data) - r.Len()
		if consumed != 2+int(data[1]) {
			t.Fatalf("consumed %d of declared %d", consumed, 2+int(data[1]))
		}
		if noAuth != bytes.Contains(data[2:consumed], []byte{0}) {
			t.Fatalf("noAuth %v for methods %x", noAuth, data[2:consumed])
		}
	})
}

// TestSOCKSOverSSH runs the SOCKS server with direct-tcpip channels as its
// dialer and fetches a page through it with net/http.
func TestSOCKSOverSSH(t *testing.T) {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello via socks")
	}))
	defer web.Close()
	rules, err := alkssh.ParseRules([]string{"127.0.0.1:" + web.URL[strings.LastIndex(web.URL, ":")+1:], "localhost"})
	require.NoError(t, err)
	f := newFixture(t, alkssh.Config{ForwardAllow: rules}, map[string][]string{"alice": allScopes})
	c := f.client("alice")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &alkssh.SOCKSServer{Dial: func(ctx context.Context, host string, port uint16) (alkssh.HalfCloser, error) {
		return alkssh.DialTCP(ctx, c, host, port)
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	defer func() { cancel(); require.NoError(t, recv(t, done, 10*time.Second, "the SOCKS server to stop")) }()

	proxy, _ := url.Parse("socks5h://" + ln.Addr().String())
	hc := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxy)}}
	resp, err := hc.Get(web.URL)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, "hello via socks", string(body))

	// Outside the allowlist: reply 0x02 "not allowed by ruleset".
	conn, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.Write(append([]byte{5, 1, 0}, alkssh.AppendSOCKSRequest(nil, alkssh.SOCKSRequest{Cmd: 1, IP: netip.MustParseAddr("10.9.9.9"), Port: 80})...))
	require.NoError(t, err)
	br := bufio.NewReader(conn)
	var rep [12]byte
	_, err = io.ReadFull(br, rep[:])
	require.NoError(t, err)
	assert.Equal(t, []byte{5, 0}, rep[:2], "method: no auth")
	assert.Equal(t, alkssh.SOCKSNotAllowed, rep[3], "reply code")
	assert.Equal(t, uint16(0), binary.BigEndian.Uint16(rep[10:]))

	// UDP ASSOCIATE is not supported.
	conn2, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer conn2.Close()
	_, err = conn2.Write(append([]byte{5, 1, 0}, alkssh.AppendSOCKSRequest(nil, alkssh.SOCKSRequest{Cmd: alkssh.SOCKSUDPAssociate, IP: netip.MustParseAddr("127.0.0.1"), Port: 1})...))
	require.NoError(t, err)
	_, err = io.ReadFull(conn2, rep[:])
	require.NoError(t, err)
	assert.Equal(t, alkssh.SOCKSCommandUnsupported, rep[3])
}

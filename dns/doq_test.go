package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
	mdns "github.com/miekg/dns"
	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The DoQ client of these tests is written from RFC 9250 with quic-go
// alone: section 4.2 (one stream per query, 2-byte length, FIN), 4.2.1
// (Message ID 0), 4.3 (error codes), 5.4 (padding).

// doqExchange sends one framed query on a new stream, closes its side and
// reads the answer up to the server's FIN.
func doqExchange(t testing.TB, conn *quic.Conn, q *mdns.Msg) (*mdns.Msg, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	st, err := conn.OpenStreamSync(ctx)
	require.NoError(t, err)
	wire, err := q.Pack()
	require.NoError(t, err)
	_, err = st.Write(AppendMessage(nil, wire))
	require.NoError(t, err)
	require.NoError(t, st.Close())
	_ = st.SetReadDeadline(time.Now().Add(10 * time.Second))
	all, err := io.ReadAll(st)
	require.NoError(t, err, "the answer ends with FIN")
	require.GreaterOrEqual(t, len(all), 2)
	n := int(binary.BigEndian.Uint16(all))
	require.Equal(t, n, len(all)-2, "exactly one message on the stream")
	resp := new(mdns.Msg)
	require.NoError(t, resp.Unpack(all[2:]))
	return resp, all[2:]
}

// closeCause waits for conn to be closed by the server and returns the
// application error it gave.
func closeCause(t testing.TB, conn *quic.Conn) *quic.ApplicationError {
	t.Helper()
	select {
	case <-conn.Context().Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not close the connection within 10s")
	}
	var ae *quic.ApplicationError
	require.ErrorAs(t, context.Cause(conn.Context()), &ae)
	require.True(t, ae.Remote)
	return ae
}

func TestDoQAnswers(t *testing.T) {
	srv := newServer(t, mustZones(t, exampleZone, "example.test."), nil, Config{})
	ep, ca := startDoQ(t, srv, core.Config{})
	conn := dialDoQ(t, ep, ca)

	q := query("www.example.test", mdns.TypeA, true)
	q.Id = 0
	q.IsEdns0().Option = append(q.IsEdns0().Option, &mdns.EDNS0_PADDING{Padding: make([]byte, 50)})
	resp, wire := doqExchange(t, conn, q)
	assert.Equal(t, uint16(0), resp.Id)
	assert.True(t, resp.Authoritative)
	assert.Equal(t, []string{"www.example.test.\t300\tIN\tA\t192.0.2.1", "www.example.test.\t300\tIN\tA\t192.0.2.2"}, rrStrings(resp.Answer))
	// Padded to a multiple of 468 bytes (RFC 8467 section 4.1).
	assert.Zero(t, len(wire)%468, "response of %d bytes", len(wire))
	var pad *mdns.EDNS0_PADDING
	for _, o := range resp.IsEdns0().Option {
		if p, ok := o.(*mdns.EDNS0_PADDING); ok {
			pad = p
		}
	}
	require.NotNil(t, pad)
	assert.Equal(t, make([]byte, len(pad.Padding)), pad.Padding, "padding is zero bytes")

	// Without EDNS(0) the answer has no OPT at all (RFC 6891 section 7).
	q = query("example.test", mdns.TypeMX, false)
	q.Id = 0
	resp, _ = doqExchange(t, conn, q)
	assert.Nil(t, resp.IsEdns0())
	assert.Equal(t, []string{"example.test.\t3600\tIN\tMX\t10 mail.example.test."}, rrStrings(resp.Answer))

	// NXDOMAIN with the SOA; other names are refused (no forwarder).
	q = query("nope.example.test", mdns.TypeA, true)
	q.Id = 0
	resp, _ = doqExchange(t, conn, q)
	assert.Equal(t, mdns.RcodeNameError, resp.Rcode)
	assert.Equal(t, []string{negSOA}, rrStrings(resp.Ns))
	q = query("example.org", mdns.TypeA, true)
	q.Id = 0
	resp, _ = doqExchange(t, conn, q)
	assert.Equal(t, mdns.RcodeRefused, resp.Rcode)
	assert.False(t, resp.RecursionAvailable)
}

func TestDoQProtocolErrors(t *testing.T) {
	good := query("www.example.test", mdns.TypeA, true)
	good.Id = 0
	goodWire, err := good.Pack()
	require.NoError(t, err)
	withID := good.Copy()
	withID.Id = 0x1234
	idWire, _ := withID.Pack()
	keep := good.Copy()
	keep.IsEdns0().Option = append(keep.IsEdns0().Option, &mdns.EDNS0_TCP_KEEPALIVE{Code: mdns.EDNS0TCPKEEPALIVE})
	keepWire, _ := keep.Pack()
	resp := good.Copy()
	resp.Response = true
	respWire, _ := resp.Pack()

	cases := []struct {
		name   string
		stream []byte
		noFIN  bool
		reason string
	}{
		{"non-zero message id", AppendMessage(nil, idWire), false, "message id 4660"},
		{"missing FIN", AppendMessage(nil, goodWire), true, "query and FIN not received within 300ms"},
		{"oversized length", append([]byte{0xff, 0xff}, goodWire...), false, "65535 bytes (limit 4096)"},
		{"FIN inside the message", AppendMessage(nil, goodWire)[:20], false, "stream ended inside a message"},
		{"two queries on a stream", AppendMessage(AppendMessage(nil, goodWire), goodWire), false, "data after the message"},
		{"edns-tcp-keepalive", AppendMessage(nil, keepWire), false, "edns-tcp-keepalive"},
		{"a response", AppendMessage(nil, respWire), false, "a response where a query belongs"},
		{"shorter than a header", AppendMessage(nil, []byte{0, 0, 1}), false, "shorter than a DNS header"},
		{"empty message", []byte{0, 0}, false, "empty message"},
	}
	srv := newServer(t, mustZones(t, exampleZone, "example.test."), nil, Config{QueryTimeout: 300 * time.Millisecond})
	ep, ca := startDoQ(t, srv, core.Config{})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn := dialDoQ(t, ep, ca)
			st, err := conn.OpenStreamSync(t.Context())
			require.NoError(t, err)
			_, err = st.Write(c.stream)
			require.NoError(t, err)
			if !c.noFIN {
				require.NoError(t, st.Close())
			}
			ae := closeCause(t, conn)
			assert.Equal(t, quic.ApplicationErrorCode(CodeProtocolError), ae.ErrorCode, "DOQ_PROTOCOL_ERROR")
			assert.Contains(t, ae.ErrorMessage, c.reason)
			// The stream never got an answer.
			_, err = io.ReadAll(st)
			assert.Error(t, err)
		})
	}
	// The server goes on serving other connections.
	resp2, _ := doqExchange(t, dialDoQ(t, ep, ca), good)
	assert.Len(t, resp2.Answer, 2)
}

// TestDoQTooManyStreams: streams beyond Config.MaxStreams are not served
// while the connection's slots are taken; streams that dangle (no FIN)
// end the connection with DOQ_PROTOCOL_ERROR, and the waiting query is
// never answered.
func TestDoQTooManyStreams(t *testing.T) {
	srv := newServer(t, mustZones(t, exampleZone, "example.test."), nil, Config{MaxStreams: 2, QueryTimeout: 500 * time.Millisecond})
	ep, ca := startDoQ(t, srv, core.Config{})
	conn := dialDoQ(t, ep, ca)
	good := query("www.example.test", mdns.TypeA, true)
	good.Id = 0
	wire, _ := good.Pack()
	for range 2 {
		st, err := conn.OpenStreamSync(t.Context())
		require.NoError(t, err)
		_, err = st.Write([]byte{0}) // half a length prefix, then nothing
		require.NoError(t, err)
	}
	third, err := conn.OpenStreamSync(t.Context())
	require.NoError(t, err)
	_, err = third.Write(AppendMessage(nil, wire))
	require.NoError(t, err)
	require.NoError(t, third.Close())
	_ = third.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(third)
	assert.Empty(t, got, "the query over the cap was not answered")
	var ae *quic.ApplicationError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, quic.ApplicationErrorCode(CodeProtocolError), ae.ErrorCode)
	assert.Contains(t, ae.ErrorMessage, "query and FIN not received within 500ms")
}

// TestDoQStreamCapUnderLoad: a well-behaved client sending many queries at
// once on one connection gets every answer, and the handler never runs more
// than MaxStreams of them at a time.
func TestDoQStreamCapUnderLoad(t *testing.T) {
	zs := mustZones(t, exampleZone, "example.test.")
	var cur, peak atomic.Int32
	gate := make(chan struct{})
	entered := make(chan struct{}, 64)
	h := HandlerFunc(func(ctx context.Context, req *Request) (*mdns.Msg, error) {
		n := cur.Add(1)
		defer cur.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		entered <- struct{}{}
		select {
		case <-gate:
		case <-ctx.Done():
		}
		return NewResolver(zs, nil).ServeDNS(ctx, req)
	})
	srv, err := NewServer(Config{Handler: h, MaxStreams: 3})
	require.NoError(t, err)
	// A known peer, so that core's anonymous stream cap is not what limits.
	ca := newTestCA(t, testServerName)
	key := coretest.Key(t)
	peers := core.StaticPeers([]core.PeerEntry{{PeerID: "client", Fingerprints: []string{key.NodeID().Fingerprint()}, Enabled: true}})
	ep := coretest.StartEndpoint(t, core.Config{Identities: peers, TLSCerts: []core.CertFiles{ca.files}}, coretest.Route{Handler: srv})
	cli := coretest.ClientEndpoint(t, key)
	conn, err := cli.Dial(t.Context(), ep.Addr(), ALPN)
	require.NoError(t, err)

	const n = 20
	var wg sync.WaitGroup
	answers := make(chan *mdns.Msg, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			r, err := Exchange(ctx, conn, query("www.example.test", mdns.TypeA, true))
			if err == nil {
				answers <- r
			} else {
				t.Errorf("exchange: %v", err)
			}
		}()
	}
	for range 3 {
		select {
		case <-entered:
		case <-time.After(10 * time.Second):
			t.Fatal("three queries did not reach the handler within 10s")
		}
	}
	assert.Equal(t, int32(3), cur.Load())
	close(gate)
	wg.Wait()
	close(answers)
	count := 0
	for r := range answers {
		assert.Len(t, r.Answer, 2)
		count++
	}
	assert.Equal(t, n, count)
	assert.LessOrEqual(t, peak.Load(), int32(3))
}

// TestDoQCancel: a client that resets its stream (RFC 9250 section 4.3.1)
// gets the stream reset back and keeps its connection.
func TestDoQCancel(t *testing.T) {
	srv := newServer(t, mustZones(t, exampleZone, "example.test."), nil, Config{})
	ep, ca := startDoQ(t, srv, core.Config{})
	conn := dialDoQ(t, ep, ca)
	st, err := conn.OpenStreamSync(t.Context())
	require.NoError(t, err)
	_, err = st.Write([]byte{0, 40, 0, 0})
	require.NoError(t, err)
	st.CancelWrite(quic.StreamErrorCode(CodeRequestCancelled))
	_ = st.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.ReadAll(st)
	var se *quic.StreamError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, quic.StreamErrorCode(CodeRequestCancelled), se.ErrorCode)
	assert.True(t, se.Remote)

	good := query("www.example.test", mdns.TypeAAAA, true)
	good.Id = 0
	resp, _ := doqExchange(t, conn, good)
	assert.Equal(t, []string{"www.example.test.\t300\tIN\tAAAA\t2001:db8::1"}, rrStrings(resp.Answer))
}

func TestDoQClient(t *testing.T) {
	srv := newServer(t, mustZones(t, exampleZone, "example.test."), nil, Config{})
	ep, ca := startDoQ(t, srv, core.Config{})
	c := &Client{Addr: ep.LocalAddr().String(), TLSConfig: tlsFor(ca)}
	t.Cleanup(func() { _ = c.Close() })
	q := query("txt.example.test", mdns.TypeTXT, false)
	q.Id = 4242
	resp, err := c.Exchange(t.Context(), q)
	require.NoError(t, err)
	assert.Equal(t, uint16(4242), resp.Id, "the caller's id comes back")
	assert.Equal(t, []string{"txt.example.test.\t3600\tIN\tTXT\t\"hello world\" \"second string\""}, rrStrings(resp.Answer))
	assert.Equal(t, uint16(4242), q.Id, "the query is not changed")
	assert.Nil(t, q.IsEdns0())

	// The padded query: what the server saw was a multiple of 128 bytes.
	wire, err := packDoQQuery(q)
	require.NoError(t, err)
	assert.Zero(t, len(wire)%128)
	assert.Equal(t, uint16(0), binary.BigEndian.Uint16(wire))

	// A pinned alknet peer asks over core.
	pair := coretest.NewPair(t, nil, coretest.Route{Handler: srv})
	conn := pair.Dial(t, ALPN)
	resp, err = Exchange(t.Context(), conn, query("example.test", mdns.TypeCAA, true))
	require.NoError(t, err)
	assert.Equal(t, []string{"example.test.\t3600\tIN\tCAA\t0 issue \"letsencrypt.org\""}, rrStrings(resp.Answer))

	// A server that answers with a non-zero id is refused by the client.
	_, err = exchangeStream(t.Context(), fakeStream(t, func(q []byte) []byte {
		m := new(mdns.Msg)
		_ = m.Unpack(q)
		m.Response = true
		m.Id = 7
		out, _ := m.Pack()
		return AppendMessage(nil, out)
	}), query("x.test", mdns.TypeA, true))
	assert.ErrorIs(t, err, ErrNonZeroID)
}

func TestDoQDrainAnswersInFlight(t *testing.T) {
	zs := mustZones(t, exampleZone, "example.test.")
	entered := make(chan struct{})
	release := make(chan struct{})
	h := HandlerFunc(func(ctx context.Context, req *Request) (*mdns.Msg, error) {
		close(entered)
		<-release
		return NewResolver(zs, nil).ServeDNS(ctx, req)
	})
	srv, err := NewServer(Config{Handler: h})
	require.NoError(t, err)
	ca := newTestCA(t, testServerName)
	ep, err := core.NewEndpoint(core.Config{ListenAddr: "127.0.0.1:0", SecretKey: coretest.Key(t), TLSCerts: []core.CertFiles{ca.files}})
	require.NoError(t, err)
	ep.Register(srv, core.AccessControl{})
	errc := make(chan error, 1)
	go func() { errc <- ep.Serve(context.Background()) }()
	select {
	case <-ep.Ready():
	case err := <-errc:
		t.Fatalf("serve: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("endpoint not ready within 10s")
	}
	c := &Client{Addr: ep.LocalAddr().String(), TLSConfig: tlsFor(ca)}
	defer c.Close()
	got := make(chan *mdns.Msg, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		r, err := c.Exchange(ctx, query("www.example.test", mdns.TypeA, true))
		if err != nil {
			t.Errorf("exchange: %v", err)
			r = new(mdns.Msg)
		}
		got <- r
	}()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("query did not arrive")
	}
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- ep.Shutdown(ctx)
	}()
	close(release)
	select {
	case r := <-got:
		assert.Len(t, r.Answer, 2, "the query in flight is answered during the drain")
	case <-time.After(10 * time.Second):
		t.Fatal("no answer")
	}
	require.NoError(t, <-shut)
	select {
	case err = <-errc:
		if err != nil && !errors.Is(err, core.ErrClosed) {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return within 10s of Shutdown")
	}
}

// TestDoQAnonymousPipelining: a stock resolver (anonymous, one connection)
// that sends many more queries at once than core's anonymous stream cap
// gets every answer: the queries over the cap wait (core.StreamQueuer)
// instead of being reset.
func TestDoQAnonymousPipelining(t *testing.T) {
	srv := newServer(t, mustZones(t, exampleZone, "example.test."), nil, Config{})
	ep, ca := startDoQ(t, srv, core.Config{MaxAnonStreams: 2})
	c := &Client{Addr: ep.LocalAddr().String(), TLSConfig: tlsFor(ca)}
	t.Cleanup(func() { _ = c.Close() })
	const n = 60
	errs := make(chan error, n)
	for range n {
		go func() {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			r, err := c.Exchange(ctx, query("www.example.test", mdns.TypeA, true))
			if err == nil && len(r.Answer) != 2 {
				err = fmt.Errorf("answer %v", r.Answer)
			}
			errs <- err
		}()
	}
	for range n {
		select {
		case err := <-errs:
			require.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Fatal("a pipelined query got no answer within 30s")
		}
	}
}

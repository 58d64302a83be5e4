// Command ownprotocol shows how to write your own alknet protocol and serve
// it next to the built-in ones on one endpoint.
//
// It registers "alknet/kv", a tiny key-value protocol (one request line per
// stream: "GET key" or "SET key value"), gated by the scope "kv", plus the
// open alknet/ping. Run it as a server:
//
//	go run ./examples/ownprotocol -listen 127.0.0.1:4500 -key server.key -allow ed25519:<client hex>
//
// and as a client:
//
//	go run ./examples/ownprotocol -key client.key -dial <nodeid>@127.0.0.1:4500 SET color blue
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"

	"github.com/alkdev/alknet/core"
)

// ALPN is the protocol string of the example.
const ALPN = "alknet/kv"

// maxRequest bounds one request line.
const maxRequest = 64 << 10

// KV is the handler: a map guarded by a mutex.
type KV struct {
	mu sync.Mutex
	m  map[string]string
}

// ALPN implements core.ProtocolHandler.
func (*KV) ALPN() []string { return []string{ALPN} }

// ServeConn implements core.ProtocolHandler.
func (kv *KV) ServeConn(ctx context.Context, c core.Conn) error {
	for {
		s, err := c.AcceptStream(ctx)
		if err != nil {
			if errors.Is(err, core.ErrShuttingDown) {
				return nil
			}
			return err
		}
		go kv.serveStream(s)
	}
}

func (kv *KV) serveStream(s core.Stream) {
	defer s.Close()
	line, err := bufio.NewReader(io.LimitReader(s, maxRequest)).ReadString('\n')
	if err != nil && err != io.EOF {
		return
	}
	fmt.Fprintln(s, kv.Do(strings.TrimSpace(line)))
	_ = s.CloseWrite()
}

// Do executes one request and returns the reply line.
func (kv *KV) Do(req string) string {
	f := strings.SplitN(req, " ", 3)
	kv.mu.Lock()
	defer kv.mu.Unlock()
	if kv.m == nil {
		kv.m = map[string]string{}
	}
	switch {
	case len(f) == 2 && f[0] == "GET":
		v, ok := kv.m[f[1]]
		if !ok {
			return "ERR not found"
		}
		return "OK " + v
	case len(f) == 3 && f[0] == "SET":
		kv.m[f[1]] = f[2]
		return "OK"
	default:
		return "ERR usage: GET key | SET key value"
	}
}

// Request dials addr on alknet/kv and sends one request.
func Request(ctx context.Context, ep *core.Endpoint, addr core.Addr, req string) (string, error) {
	c, err := ep.Dial(ctx, addr, ALPN)
	if err != nil {
		return "", err
	}
	defer c.Close(core.CodeOK, "")
	s, err := c.OpenStream(ctx)
	if err != nil {
		return "", err
	}
	defer s.Close()
	if _, err := fmt.Fprintln(s, req); err != nil {
		return "", err
	}
	_ = s.CloseWrite()
	reply, err := io.ReadAll(io.LimitReader(s, maxRequest))
	if err != nil {
		if ce, ok := core.AsCloseError(err); ok {
			return "", errors.New(ce.Reason)
		}
		return "", err
	}
	return strings.TrimSpace(string(reply)), nil
}

func main() {
	listen := flag.String("listen", "", "serve on this UDP address")
	keyPath := flag.String("key", "kv.key", "node key file (created if missing)")
	dial := flag.String("dial", "", "node address to send a request to")
	var allow multiFlag
	flag.Var(&allow, "allow", "fingerprint allowed to use alknet/kv (repeatable)")
	flag.Parse()

	key, _, err := core.LoadOrCreateKey(*keyPath)
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	if *dial != "" {
		addr, err := core.ParseAddr(*dial)
		if err != nil {
			log.Fatal(err)
		}
		ep, err := core.NewEndpoint(core.Config{SecretKey: key})
		if err != nil {
			log.Fatal(err)
		}
		defer ep.Close()
		reply, err := Request(ctx, ep, addr, strings.Join(flag.Args(), " "))
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(reply)
		return
	}

	var peers []core.PeerEntry
	for i, fp := range allow {
		peers = append(peers, core.PeerEntry{PeerID: fmt.Sprintf("peer%d", i), Fingerprints: []string{fp}, Scopes: []string{"kv"}, Enabled: true})
	}
	ep, err := core.NewEndpoint(core.Config{
		ListenAddr: *listen, SecretKey: key, Identities: core.StaticPeers(peers),
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	if err != nil {
		log.Fatal(err)
	}
	ep.Register(core.Ping{}, core.AccessControl{})
	ep.Register(&KV{}, core.AccessControl{RequiredScopes: []string{"kv"}})
	fmt.Println(ep.Addr())
	if err := ep.Serve(ctx); err != nil && !errors.Is(err, context.Canceled) {
		log.Fatal(err)
	}
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

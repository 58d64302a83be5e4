// Command filedrop embeds one alknet handler in a program of its own: it
// serves a directory over alknet/sftp (SFTP straight over QUIC, no SSH
// layer) to the keys it is given, with write access, and nothing else.
//
//	go run ./examples/filedrop -dir ./drop -listen 0.0.0.0:4600 -allow ed25519:<hex>
//
// Clients use stock OpenSSH: sftp -D "alknet pipe --alpn alknet/sftp <address>",
// or `alknet cp file <address>:/`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"strings"

	"github.com/alkdev/alknet/core"
	alksftp "github.com/alkdev/alknet/sftp"
)

// Options configure a drop box.
type Options struct {
	Dir    string         // directory to serve; created if missing
	Listen string         // UDP host:port
	Key    core.SecretKey // node key
	Allow  []string       // fingerprints allowed to read and write
	Logger *slog.Logger
}

// Start builds the endpoint with the sftp handler and starts serving; it
// returns once the endpoint accepts connections.
func Start(ctx context.Context, o Options) (*core.Endpoint, <-chan error, error) {
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, nil, err
	}
	var peers []core.PeerEntry
	for i, fp := range o.Allow {
		peers = append(peers, core.PeerEntry{
			PeerID: fmt.Sprintf("drop%d", i), Fingerprints: []string{fp},
			Scopes: []string{alksftp.ScopeRead, alksftp.ScopeWrite}, Enabled: true,
		})
	}
	files, err := alksftp.New(alksftp.Config{Root: o.Dir, Logger: o.Logger})
	if err != nil {
		return nil, nil, err
	}
	ep, err := core.NewEndpoint(core.Config{ListenAddr: o.Listen, SecretKey: o.Key, Identities: core.StaticPeers(peers), Logger: o.Logger})
	if err != nil {
		return nil, nil, err
	}
	ep.Register(files, core.AccessControl{RequiredScopes: []string{alksftp.ScopeRead}})
	errc := make(chan error, 1)
	go func() {
		err := ep.Serve(ctx)
		_ = files.Close()
		errc <- err
	}()
	select {
	case <-ep.Ready():
		return ep, errc, nil
	case err := <-errc:
		return nil, nil, err
	}
}

func main() {
	dir := flag.String("dir", "drop", "directory to serve")
	listen := flag.String("listen", "127.0.0.1:4600", "UDP address to listen on")
	keyPath := flag.String("key", "filedrop.key", "node key file (created if missing)")
	allow := flag.String("allow", "", "comma-separated fingerprints (ed25519:<hex>) allowed in")
	flag.Parse()
	key, _, err := core.LoadOrCreateKey(*keyPath)
	if err != nil {
		log.Fatal(err)
	}
	var fps []string
	if *allow != "" {
		fps = strings.Split(*allow, ",")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ep, errc, err := Start(ctx, Options{Dir: *dir, Listen: *listen, Key: key, Allow: fps, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ep.Addr())
	if err := <-errc; err != nil && !errors.Is(err, context.Canceled) {
		log.Fatal(err)
	}
}

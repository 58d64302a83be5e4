// Command webapp mounts an ordinary net/http mux on an alknet endpoint: one
// line, ep.Register(alkhttp.New(mux, nil), ...), serves it over HTTP/3 on
// the endpoint's UDP port and over h2 and HTTP/1.1 on TCP+TLS on the same
// port number. Handlers see who called with alkhttp.Caller: a pinned peer
// (its TLS key) or a bearer token, or nobody.
//
//	go run ./examples/webapp -listen 127.0.0.1:4600 -key server.key
//	curl -k https://127.0.0.1:4600/hello
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"os"
	"os/signal"

	"github.com/alkdev/alknet/core"
	alkhttp "github.com/alkdev/alknet/http"
)

// Mux is the example's web application: /hello greets the caller by peer
// id; /private is only for peers holding the scope "app".
func Mux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		who := "stranger"
		if c := alkhttp.Caller(r); c.Identity != nil {
			who = c.Identity.ID
		}
		fmt.Fprintf(w, "hello, %s (%s)\n", who, r.Proto)
	})
	mux.Handle("GET /private", alkhttp.Require(core.AccessControl{RequiredScopes: []string{"app"}},
		http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "secret plans") })))
	return mux
}

func main() {
	listen := flag.String("listen", "127.0.0.1:4600", "UDP and TCP address")
	keyFile := flag.String("key", "webapp.key", "node key (created when missing)")
	flag.Parse()
	key, _, err := core.LoadOrCreateKey(*keyFile)
	if err != nil {
		log.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ep, err := core.NewEndpoint(core.Config{ListenAddr: *listen, SecretKey: key, ListenTCP: true, Logger: logger})
	if err != nil {
		log.Fatal(err)
	}
	ep.Register(alkhttp.New(Mux(), nil), core.AccessControl{}) // the one line
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	fmt.Println(ep.Addr())
	if err := ep.Serve(ctx); err != nil && ctx.Err() == nil {
		log.Fatal(err)
	}
}

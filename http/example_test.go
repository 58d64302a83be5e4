package alkhttp_test

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/alkdev/alknet/core"
	alkhttp "github.com/alkdev/alknet/http"
)

// Mount a net/http mux on an endpoint in one line and fetch from it over
// HTTP/3 and h2 with clients that pin the node's key.
func ExampleNew() {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		who := "stranger"
		if c := alkhttp.Caller(r); c.Identity != nil {
			who = c.Identity.ID
		}
		fmt.Fprintf(w, "hello, %s over %s\n", who, r.Proto)
	})
	key, _ := core.GenerateSecretKey()
	ep, err := core.NewEndpoint(core.Config{ListenAddr: "127.0.0.1:0", SecretKey: key, ListenTCP: true})
	if err != nil {
		panic(err)
	}
	ep.Register(alkhttp.New(mux, nil), core.AccessControl{}) // the one line
	go func() { _ = ep.Serve(context.Background()) }()
	<-ep.Ready()
	defer ep.Close()

	for _, h3 := range []bool{true, false} {
		c, err := alkhttp.NewClient(core.SecretKey{}, ep.NodeID(), h3)
		if err != nil {
			panic(err)
		}
		resp, err := c.Get("https://" + ep.Addr().Host + "/hello")
		if err != nil {
			panic(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		c.CloseIdleConnections()
		fmt.Print(string(b))
	}
	// Output:
	// hello, stranger over HTTP/3.0
	// hello, stranger over HTTP/2.0
}

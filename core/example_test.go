package core_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"strings"

	"github.com/alkdev/alknet/core"
)

// upper is a tiny protocol: every stream is answered in upper case.
type upper struct{}

func (upper) ALPN() []string { return []string{"alknet/upper"} }

func (upper) ServeConn(ctx context.Context, c core.Conn) error {
	for {
		s, err := c.AcceptStream(ctx)
		if err != nil {
			return err
		}
		go func() {
			defer s.Close()
			b, _ := io.ReadAll(io.LimitReader(s, 1<<16))
			_, _ = io.WriteString(s, strings.ToUpper(string(b)))
			_ = s.CloseWrite()
		}()
	}
}

// A node that serves its own protocol to one known peer, and that peer
// calling it.
func Example() {
	serverKey, _ := core.GenerateSecretKey()
	clientKey, _ := core.GenerateSecretKey()

	peers := core.StaticPeers([]core.PeerEntry{{
		PeerID:       "laptop",
		Fingerprints: []string{clientKey.NodeID().Fingerprint()},
		Scopes:       []string{"upper"},
		Enabled:      true,
	}})
	srv, err := core.NewEndpoint(core.Config{ListenAddr: "127.0.0.1:0", SecretKey: serverKey, Identities: peers})
	if err != nil {
		log.Fatal(err)
	}
	srv.Register(core.Ping{}, core.AccessControl{})                              // open to anyone
	srv.Register(upper{}, core.AccessControl{RequiredScopes: []string{"upper"}}) // peers with scope "upper"
	go srv.Serve(context.Background())
	<-srv.Ready()
	defer srv.Shutdown(context.Background())

	cli, err := core.NewEndpoint(core.Config{SecretKey: clientKey})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	conn, err := cli.Dial(context.Background(), srv.Addr(), "alknet/upper") // pins the server's node id
	if err != nil {
		log.Fatal(err)
	}
	s, _ := conn.OpenStream(context.Background())
	_, _ = io.WriteString(s, "hello, alknet")
	_ = s.CloseWrite()
	reply, _ := io.ReadAll(s)
	fmt.Println(string(reply))
	_ = conn.Close(core.CodeOK, "")
	// Output: HELLO, ALKNET
}

func ExampleAccessControl_Check() {
	acl := core.AccessControl{RequiredScopes: []string{"sftp"}}
	fmt.Println(acl.Check(nil))
	fmt.Println(acl.Check(&core.Identity{ID: "bob", Scopes: []string{"ssh"}}))
	fmt.Println(acl.Check(&core.Identity{ID: "alice", Scopes: []string{"sftp"}}))
	// Output:
	// authentication required
	// missing scope sftp
	// <nil>
}

func ExampleParseAddr() {
	a, err := core.ParseAddr("yyyoryarywdyqnyjbefoadeqbhebnrounoktcfaadrpbs8y7daxo@[::1]:4433")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(a.Host)
	fmt.Println(a.ID.Fingerprint())
	// Output:
	// [::1]:4433
	// ed25519:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
}

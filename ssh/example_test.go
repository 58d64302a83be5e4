package ssh_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/alkdev/alknet/core"
	alkssh "github.com/alkdev/alknet/ssh"
)

// Serve SSH on a node, then run a command on it with the Go client over
// QUIC. OpenSSH users connect with
// ssh -o ProxyCommand='alknet pipe --alpn alknet/ssh --key KEY ADDR' host.
func Example() {
	nodeKey, _ := core.GenerateSecretKey()
	userKey, _ := core.GenerateSecretKey()
	peers := core.StaticPeers([]core.PeerEntry{{
		PeerID:       "laptop",
		Fingerprints: []string{userKey.NodeID().Fingerprint()},
		Scopes:       []string{"ssh", "ssh:exec"},
		Enabled:      true,
	}})

	srv, err := alkssh.New(alkssh.Config{
		HostKey:    nodeKey,
		Identities: peers,
	})
	if err != nil {
		log.Fatal(err)
	}
	ep, _ := core.NewEndpoint(core.Config{ListenAddr: "127.0.0.1:0", SecretKey: nodeKey, Identities: peers})
	ep.Register(srv, core.AccessControl{RequiredScopes: []string{alkssh.ScopeSSH}})
	go ep.Serve(context.Background())
	<-ep.Ready()
	defer ep.Close()

	client, _ := core.NewEndpoint(core.Config{ListenAddr: "127.0.0.1:0", SecretKey: userKey})
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := client.Dial(ctx, ep.Addr(), alkssh.ALPN)
	if err != nil {
		log.Fatal(err)
	}
	c, err := alkssh.NewClient(ctx, conn, userKey, "me")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	s, _ := c.NewSession()
	out, err := s.Output("echo hello from the node")
	fmt.Printf("%s%v\n", out, err)
	// Output:
	// hello from the node
	// <nil>
}

// A forwarding allowlist: first match decides, no match denies.
func ExampleParseRules() {
	rules, err := alkssh.ParseRules([]string{"!10.0.0.1", "10.0.0.0/8:22", "*.internal:443"})
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range rules {
		fmt.Println(r)
	}
	// Output:
	// !10.0.0.1
	// 10.0.0.0/8:22
	// *.internal:443
}

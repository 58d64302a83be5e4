package fs_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/store"
	"github.com/alkdev/alknet/fs"
)

// openStore opens a store in a data directory.
func openStore(dir string) (*fs.Store, func()) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		log.Fatal(err)
	}
	db, err := store.Open(filepath.Join(dir, "alknet.db"))
	if err != nil {
		log.Fatal(err)
	}
	st, err := fs.OpenStore(context.Background(), fs.StoreConfig{Dir: filepath.Join(dir, "blobs"), DB: db})
	if err != nil {
		log.Fatal(err)
	}
	return st, func() { _ = st.Close(); _ = db.Close() }
}

// A node serves its store on alknet/fs; another fetches a blob by hash,
// verified, into its own store.
func Example() {
	ctx := context.Background()
	base, _ := os.MkdirTemp("", "fs-example")
	defer os.RemoveAll(base)

	// The serving node.
	serverStore, closeServer := openStore(filepath.Join(base, "server"))
	defer closeServer()
	data := []byte("hello, verified world")
	info, err := serverStore.Put(ctx, bytes.NewReader(data), int64(len(data)), fs.PutOptions{Tag: "greeting"})
	if err != nil {
		log.Fatal(err)
	}
	srv, err := fs.New(fs.Config{Store: serverStore})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	// The node knows the client as a peer with scope fs.
	clientKey, _ := core.GenerateSecretKey()
	serverKey, _ := core.GenerateSecretKey()
	peers := core.StaticPeers([]core.PeerEntry{{PeerID: "client", Fingerprints: []string{clientKey.NodeID().Fingerprint()}, Scopes: []string{fs.ScopeRead}, Enabled: true}})
	ep, err := core.NewEndpoint(core.Config{ListenAddr: "127.0.0.1:0", SecretKey: serverKey, Identities: peers})
	if err != nil {
		log.Fatal(err)
	}
	ep.Register(srv, core.AccessControl{RequiredScopes: []string{fs.ScopeRead}})
	go func() { _ = ep.Serve(ctx) }()
	<-ep.Ready()
	defer ep.Close()

	cep, _ := core.NewEndpoint(core.Config{ListenAddr: "127.0.0.1:0", SecretKey: clientKey})
	defer cep.Close()
	c, err := fs.Dial(ctx, cep, ep.Addr())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	local, closeLocal := openStore(filepath.Join(base, "client"))
	defer closeLocal()
	res, err := c.Fetch(ctx, local, info.Hash, fs.FetchOptions{})
	if err != nil {
		log.Fatal(err)
	}
	got, _ := local.ReadBlob(info.Hash, 1<<20)
	fmt.Println(res.Size, string(got))
	fmt.Println(fs.Ticket{Node: ep.NodeID(), Hash: info.Hash}.String()[:12])
	// Output:
	// 21 hello, verified world
	// alknet:blob:
}

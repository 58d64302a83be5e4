package sftp_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
	alksftp "github.com/alkdev/alknet/sftp"
	"github.com/pkg/sftp"
)

// Serve a directory on alknet/sftp and read a file back with pkg/sftp's
// client over one stream. In a real program the handler is registered on
// an endpoint: ep.Register(srv, core.AccessControl{RequiredScopes: []string{alksftp.ScopeRead}}).
func Example() {
	dir, _ := os.MkdirTemp("", "sftp-example")
	defer os.RemoveAll(dir)
	_ = os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("hello over alknet/sftp\n"), 0o644)

	srv, err := alksftp.New(alksftp.Config{Root: dir})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	// An in-memory connection; the server side knows the peer as "laptop".
	peer := &core.Identity{ID: "laptop", Scopes: []string{alksftp.ScopeRead}}
	client, server := coretest.Pipe(alksftp.ALPN, coretest.Side{Identity: peer}, coretest.Side{})
	defer client.Close(core.CodeOK, "")
	go func() { _ = srv.ServeConn(context.Background(), server) }()

	st, _ := client.OpenStream(context.Background())
	c, err := sftp.NewClientPipe(st, st)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	f, err := c.Open("/hello.txt")
	if err != nil {
		log.Fatal(err)
	}
	b, _ := io.ReadAll(f)
	fmt.Print(string(b))

	_, err = c.Create("/new.txt")
	fmt.Println("write without sftp:write:", err != nil)
	// Output:
	// hello over alknet/sftp
	// write without sftp:write: true
}

// ServeSession serves one session over any byte stream, for example an
// SSH "sftp" subsystem channel; the identity decides what it may do.
func ExampleServer_ServeSession() {
	dir, _ := os.MkdirTemp("", "sftp-example")
	defer os.RemoveAll(dir)
	srv, _ := alksftp.New(alksftp.Config{Root: dir, PerPeerHome: true})
	defer srv.Close()

	a, b := coretest.Pipe(alksftp.ALPN, coretest.Side{}, coretest.Side{})
	defer a.Close(core.CodeOK, "")
	id := &core.Identity{ID: "alice", Scopes: []string{alksftp.ScopeRead, alksftp.ScopeWrite}}
	go func() {
		ch, _ := b.AcceptStream(context.Background()) // stands in for an SSH channel
		_ = srv.ServeSession(context.Background(), ch, id)
	}()
	st, _ := a.OpenStream(context.Background())
	c, _ := sftp.NewClientPipe(st, st)
	w, _ := c.Create("/notes.txt")
	_, _ = w.Write([]byte("in alice's home"))
	_ = w.Close()
	c.Close()

	b2, _ := os.ReadFile(filepath.Join(dir, "alice", "notes.txt"))
	fmt.Println(string(b2))
	// Output: in alice's home
}

// Download a file with the same checks alknet cp makes: written to a part
// file, verified by SHA-256 against the node, renamed into place.
func ExampleDownload() {
	dir, _ := os.MkdirTemp("", "sftp-example")
	defer os.RemoveAll(dir)
	_ = os.MkdirAll(filepath.Join(dir, "srv"), 0o700)
	_ = os.WriteFile(filepath.Join(dir, "srv", "report.txt"), []byte("quarterly numbers\n"), 0o644)
	srv, err := alksftp.New(alksftp.Config{Root: filepath.Join(dir, "srv")})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	peer := &core.Identity{ID: "laptop", Scopes: []string{alksftp.ScopeRead}}
	conn, server := coretest.Pipe(alksftp.ALPN, coretest.Side{Identity: peer}, coretest.Side{})
	defer conn.Close(core.CodeOK, "")
	go func() { _ = srv.ServeConn(context.Background(), server) }()

	// With a real node: conn, err := ep.Dial(ctx, addr, alksftp.ALPN)
	dst := filepath.Join(dir, "report.txt")
	err = alksftp.Download(context.Background(), conn, "/report.txt", dst, alksftp.CopyOptions{Resume: true})
	if err != nil {
		log.Fatal(err)
	}
	b, _ := os.ReadFile(dst)
	fmt.Print(string(b))
	// Output: quarterly numbers
}

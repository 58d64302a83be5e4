// Command consumer is a program outside the alknet repository that imports
// core and the sftp handler as published modules. It serves a directory on
// loopback, dials itself with a second key, writes a file over alknet/sftp,
// reads it back and checks both the bytes on disk and the bytes returned.
// It prints one line and exits 0 when the round trip is exact.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/alkdev/alknet/core"
	alksftp "github.com/alkdev/alknet/sftp"
	"github.com/pkg/sftp"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "consumer:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir, err := os.MkdirTemp("", "alknet-consumer")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	serverKey, err := core.GenerateSecretKey()
	if err != nil {
		return err
	}
	clientKey, err := core.GenerateSecretKey()
	if err != nil {
		return err
	}
	peers := core.StaticPeers([]core.PeerEntry{{
		PeerID: "client", Fingerprints: []string{clientKey.NodeID().Fingerprint()},
		Scopes: []string{alksftp.ScopeRead, alksftp.ScopeWrite}, Enabled: true,
	}})
	files, err := alksftp.New(alksftp.Config{Root: dir})
	if err != nil {
		return err
	}
	defer files.Close()
	server, err := core.NewEndpoint(core.Config{ListenAddr: "127.0.0.1:0", SecretKey: serverKey, Identities: peers})
	if err != nil {
		return err
	}
	server.Register(files, core.AccessControl{RequiredScopes: []string{alksftp.ScopeRead}})
	serveCtx, stop := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- server.Serve(serveCtx) }()
	defer func() { stop(); <-errc }()
	select {
	case <-server.Ready():
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
		return errors.New("server not ready within 60s")
	}

	client, err := core.NewEndpoint(core.Config{ListenAddr: "127.0.0.1:0", SecretKey: clientKey})
	if err != nil {
		return err
	}
	defer client.Close()
	conn, err := client.Dial(ctx, server.Addr(), alksftp.ALPN)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer conn.Close(core.CodeOK, "")
	st, err := conn.OpenStream(ctx)
	if err != nil {
		return err
	}
	c, err := sftp.NewClientPipe(st, st)
	if err != nil {
		return fmt.Errorf("sftp session: %w", err)
	}
	defer c.Close()

	payload := make([]byte, 256<<10)
	if _, err := rand.Read(payload); err != nil {
		return err
	}
	w, err := c.Create("/roundtrip.bin")
	if err != nil {
		return err
	}
	if _, err := w.Write(payload); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	onDisk, err := os.ReadFile(filepath.Join(dir, "roundtrip.bin"))
	if err != nil {
		return err
	}
	if !bytes.Equal(onDisk, payload) {
		return fmt.Errorf("file on disk differs: %d bytes written, %d on disk", len(payload), len(onDisk))
	}
	r, err := c.Open("/roundtrip.bin")
	if err != nil {
		return err
	}
	back, err := io.ReadAll(r)
	_ = r.Close()
	if err != nil {
		return err
	}
	if !bytes.Equal(back, payload) {
		return fmt.Errorf("read back differs: %d bytes written, %d read", len(payload), len(back))
	}
	fmt.Printf("ok: %d bytes over %s to %s\n", len(payload), alksftp.ALPN, server.Addr())
	return nil
}

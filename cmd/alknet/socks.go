package main

import (
	"fmt"
	"net"

	alkssh "github.com/alkdev/alknet/ssh"
	"github.com/spf13/cobra"
)

func newSocksCmd(g *globals) *cobra.Command {
	var listen, keyFile string
	cmd := &cobra.Command{
		Use:   "socks [--listen 127.0.0.1:1080] ADDR",
		Short: "Run a local SOCKS5 proxy whose connections leave from a node",
		Long: `Listen for SOCKS5 clients (no authentication, CONNECT, IPv4, IPv6 and
domain names) and carry each connection as a direct-tcpip channel of one SSH
connection over QUIC to ADDR, so it leaves from the node. Domain names are
resolved on the node's side (use socks5h:// with curl). The key (--key, or
the data directory's identity) is both the QUIC and the SSH key; the node
must grant it scopes ssh and ssh:forward. The SSH connection is
re-established with backoff when it drops.

Prints the listening address on stdout once it accepts clients, then runs
until interrupted.

  alknet socks ADDR &
  curl --proxy socks5h://127.0.0.1:1080 http://intranet.example/`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			link, err := g.newSSHLink(keyFile, args[0])
			if err != nil {
				return err
			}
			defer link.Close()
			ctx := cmd.Context()
			if _, err := link.get(ctx); err != nil {
				return err
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, ln.Addr())
			srv := &alkssh.SOCKSServer{Dial: link.dialTCP, Logger: link.log}
			return srv.Serve(ctx, ln)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:1080", "TCP address for SOCKS clients")
	cmd.Flags().StringVar(&keyFile, "key", "", "ed25519 private key for both layers (default: the data directory's identity)")
	return cmd
}

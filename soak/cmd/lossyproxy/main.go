// Command lossyproxy forwards UDP datagrams between clients and one upstream
// address, dropping, duplicating and reordering them at the given rates, so
// that alknet transfers can be tried on a bad network:
//
//	lossyproxy --listen 127.0.0.1:5000 --upstream 127.0.0.1:4433 --drop 0.01 --dup 0.01 --reorder 0.02
//
// It prints its listening address on stdout once it is ready, runs until
// SIGINT or SIGTERM, and then prints its counters on stderr.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/alkdev/alknet/soak/lossy"
)

func main() {
	var cfg lossy.Config
	flag.StringVar(&cfg.Listen, "listen", "127.0.0.1:0", "UDP address to listen on")
	flag.StringVar(&cfg.Upstream, "upstream", "", "UDP address of the node (required)")
	flag.Float64Var(&cfg.Drop, "drop", 0, "probability that a datagram is dropped (0..1)")
	flag.Float64Var(&cfg.Duplicate, "dup", 0, "probability that a datagram is duplicated (0..1)")
	flag.Float64Var(&cfg.Reorder, "reorder", 0, "probability that a datagram is held back so later ones overtake it (0..1)")
	flag.DurationVar(&cfg.ReorderDelay, "reorder-delay", 0, "how long a reordered datagram is held (default 5ms)")
	flag.Uint64Var(&cfg.Seed, "seed", 0, "random seed (default random)")
	flag.Parse()
	if cfg.Upstream == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: lossyproxy --upstream HOST:PORT [--listen HOST:PORT] [--drop R] [--dup R] [--reorder R]")
		os.Exit(2)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	p, err := lossy.New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "lossyproxy:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Println(p.Addr().String())
	if err := p.Serve(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "lossyproxy:", err)
		os.Exit(1)
	}
	s := p.Stats()
	fmt.Fprintf(os.Stderr, "received=%d forwarded=%d dropped=%d duplicated=%d reordered=%d\n",
		s.Received, s.Forwarded, s.Dropped, s.Duplicated, s.Reordered)
}

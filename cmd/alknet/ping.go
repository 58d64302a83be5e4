package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/spf13/cobra"
)

func newPingCmd(g *globals) *cobra.Command {
	var count int
	var interval time.Duration
	var size int
	var keyFile string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ping ADDR",
		Short: "Measure round trips to a node over alknet/ping",
		Long: `Dial ADDR (<nodeid>@<host>:<port>) on alknet/ping, pinning its node id, and
send -c echo requests. Prints the handshake time and each round trip; exits
non-zero when the node cannot be reached or an echo comes back wrong.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if count < 0 {
				return fmt.Errorf("-c %d: want 0 (until interrupted) or a positive count", count)
			}
			if size < 0 || size > maxPingSize {
				return fmt.Errorf("-s %d: want 0 to %d bytes", size, maxPingSize)
			}
			if interval < 0 {
				return fmt.Errorf("-i %s: must not be negative", interval)
			}
			d, err := g.newDialer(keyFile)
			if err != nil {
				return err
			}
			defer d.Close()
			start := time.Now()
			c, err := d.dial(cmd.Context(), args[0], core.PingALPN)
			if err != nil {
				return err
			}
			defer c.Close(core.CodeOK, "")
			hs := time.Since(start)
			if !asJSON {
				fmt.Fprintf(g.stdout, "connected to %s in %s\n", c.RemoteID(), fmtDur(hs))
			}
			var rtts []time.Duration
			payload := make([]byte, size)
		loop:
			for i := 1; count <= 0 || i <= count; i++ {
				if i > 1 && interval > 0 {
					select {
					case <-time.After(interval):
					case <-cmd.Context().Done():
						break loop
					}
				}
				_, _ = rand.Read(payload)
				rtt, err := echo(cmd.Context(), c, payload)
				if err != nil {
					if cmd.Context().Err() != nil {
						break loop
					}
					return describe(err)
				}
				rtts = append(rtts, rtt)
				if !asJSON {
					fmt.Fprintf(g.stdout, "%d bytes from %s: seq=%d time=%s\n", size, c.RemoteAddr(), i, fmtDur(rtt))
				}
			}
			// Interrupted, ping ends like ping(8): success once an echo
			// came back, else 130.
			if cmd.Context().Err() != nil && len(rtts) == 0 {
				return exitCode(130)
			}
			if asJSON {
				ms := make([]float64, len(rtts))
				for i, r := range rtts {
					ms[i] = float64(r.Microseconds()) / 1000
				}
				return json.NewEncoder(g.stdout).Encode(map[string]any{
					"node": c.RemoteID().String(), "handshake_ms": float64(hs.Microseconds()) / 1000, "rtt_ms": ms,
				})
			}
			return nil
		},
	}
	cmd.Flags().IntVarP(&count, "count", "c", 4, "number of echoes (0 = until interrupted)")
	cmd.Flags().DurationVarP(&interval, "interval", "i", time.Second, "wait between echoes")
	cmd.Flags().IntVarP(&size, "size", "s", 32, "payload bytes per echo")
	cmd.Flags().StringVar(&keyFile, "key", "", "ed25519 private key to present (default: the data directory's identity)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object at the end")
	return cmd
}

// maxPingSize bounds -s: 16 MiB.
const maxPingSize = 16 << 20

// echo sends payload on a new stream and checks what comes back. It writes
// and reads at once (the node echoes as it reads, so a payload larger than
// the flow-control windows would otherwise block both sides), and returns
// when ctx is done.
func echo(ctx context.Context, c core.Conn, payload []byte) (time.Duration, error) {
	start := time.Now()
	s, err := c.OpenStream(ctx)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	// A cancelled command unblocks every read and write of the stream.
	stop := context.AfterFunc(ctx, func() { _ = s.SetDeadline(time.Now()) })
	defer stop()
	werr := make(chan error, 1)
	go func() {
		_, err := s.Write(payload)
		if err == nil {
			err = s.CloseWrite()
		}
		werr <- err
	}()
	back, rerr := io.ReadAll(io.LimitReader(s, int64(len(payload))+1))
	if rerr != nil {
		_ = s.SetDeadline(time.Now()) // the writer returns too
	}
	err = <-werr
	if ctx.Err() != nil {
		return 0, context.Cause(ctx)
	}
	if rerr != nil {
		return 0, rerr
	}
	if err != nil {
		return 0, err
	}
	if !bytes.Equal(back, payload) {
		return 0, fmt.Errorf("echo mismatch: sent %d bytes, got %d different bytes", len(payload), len(back))
	}
	return time.Since(start), nil
}

func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.3f ms", float64(d.Microseconds())/1000)
}

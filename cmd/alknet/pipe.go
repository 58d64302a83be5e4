package main

import (
	"errors"
	"io"
	"os"
	"runtime"

	"github.com/alkdev/alknet/core"
	"github.com/spf13/cobra"
)

// pipeBuf is the copy buffer size: large, so pipe adds no per-line cost.
const pipeBuf = 256 << 10

func newPipeCmd(g *globals) *cobra.Command {
	var alpn, keyFile string
	var tcp bool
	cmd := &cobra.Command{
		Use:   "pipe --alpn ALPN ADDR",
		Short: "Connect stdin/stdout to one stream of a node's protocol",
		Long: `Dial ADDR on --alpn, open one stream, copy stdin to it and it to stdout.
End of stdin half-closes the stream; the command exits 0 when both directions
have finished. It is what OpenSSH's ProxyCommand and sftp -D run:

  ssh -o ProxyCommand='alknet pipe --alpn alknet/ssh ADDR' host
  sftp -D 'alknet pipe --alpn alknet/sftp ADDR'

--tcp dials TCP+TLS on the same port number instead of QUIC, for networks
that block UDP; the node id is pinned the same way.

--key takes a PKCS#8 or OpenSSH ed25519 private key (for example
~/.ssh/id_ed25519), so one key authenticates both the QUIC and the SSH layer.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if alpn == "" {
				return errors.New("--alpn is required")
			}
			pipeProcs()
			d, err := g.newDialer(keyFile)
			if err != nil {
				return err
			}
			defer d.Close()
			d.tcp = tcp
			c, err := d.dial(cmd.Context(), args[0], alpn)
			if err != nil {
				return err
			}
			defer c.Close(core.CodeOK, "")
			s, err := c.OpenStream(cmd.Context())
			if err != nil {
				return describe(err)
			}
			defer s.Close()
			return describe(splice(g.stdin, g.stdout, s))
		},
	}
	cmd.Flags().StringVar(&alpn, "alpn", "", "protocol to speak, e.g. alknet/ssh (required)")
	cmd.Flags().BoolVar(&tcp, "tcp", false, "dial over TCP+TLS instead of QUIC (where UDP is blocked)")
	cmd.Flags().StringVar(&keyFile, "key", "", "ed25519 private key to present (default: the data directory's identity)")
	return cmd
}

// pipeProcs runs pipe on one P unless GOMAXPROCS is set. pipe pumps one
// stream: every packet is handed from the UDP reader to the connection loop
// to the copy loop, and with several Ps each hand-off wakes another thread
// and idle Ps spin looking for work. On one P the same work takes about a
// quarter less CPU per byte (bench/ssh.sh, 2 cores), which matters most
// where pipe shares the machine with ssh and the node.
func pipeProcs() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
}

// splice copies in -> s and s -> out until both directions end. A failure
// to write to the stream after the remote has finished its side only means
// the remote stopped reading, which is a normal end.
func splice(in io.Reader, out io.Writer, s core.Stream) error {
	type upResult struct {
		err      error
		writeErr bool
	}
	up := make(chan upResult, 1)
	go func() {
		buf := make([]byte, pipeBuf)
		for {
			n, rerr := in.Read(buf)
			if n > 0 {
				if _, werr := s.Write(buf[:n]); werr != nil {
					up <- upResult{werr, true}
					return
				}
			}
			if rerr == io.EOF {
				up <- upResult{s.CloseWrite(), true}
				return
			}
			if rerr != nil {
				up <- upResult{rerr, false}
				return
			}
		}
	}()
	buf := make([]byte, pipeBuf)
	_, downErr := io.CopyBuffer(writerOnly{out}, readerOnly{s}, buf)
	if downErr != nil {
		return downErr
	}
	r := <-up
	if r.err != nil && !r.writeErr {
		return r.err
	}
	return nil
}

// readerOnly and writerOnly hide ReadFrom/WriteTo so CopyBuffer uses our
// large buffer.
type readerOnly struct{ io.Reader }
type writerOnly struct{ io.Writer }

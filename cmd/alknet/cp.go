package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/alkdev/alknet/core"
	alksftp "github.com/alkdev/alknet/sftp"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// partSuffix names the file a transfer writes before renaming it into
// place; --resume continues it.
const partSuffix = alksftp.PartSuffix

// cpEnd is one side of alknet cp.
type cpEnd struct {
	remote bool
	addr   string // node address, when remote
	path   string
}

// parseCpArg splits ADDR:/path (ADDR = <nodeid>@<host>:<port>, the host
// possibly a bracketed IPv6 address) or alknet://ADDR/path from a local
// path. Anything whose part before "@" is not a node id is local.
func parseCpArg(s string) (cpEnd, error) {
	if strings.HasPrefix(s, "alknet://") {
		a, p, err := core.ParseURL(s)
		if err != nil {
			// alknet://<nodeid>/path: a node to resolve.
			rest := strings.TrimPrefix(s, "alknet://")
			idPart, path, _ := strings.Cut(rest, "/")
			if id, idErr := core.ParseNodeID(idPart); idErr == nil {
				return cpEnd{remote: true, addr: id.String(), path: "/" + path}, nil
			}
			return cpEnd{}, err
		}
		if p == "" {
			p = "/"
		}
		return cpEnd{remote: true, addr: a.String(), path: p}, nil
	}
	at := strings.IndexByte(s, '@')
	if at <= 0 {
		// <nodeid>:/path: a node to resolve.
		if idPart, path, ok := strings.Cut(s, ":"); ok && strings.HasPrefix(path, "/") {
			if id, err := core.ParseNodeID(idPart); err == nil {
				return cpEnd{remote: true, addr: id.String(), path: path}, nil
			}
		}
		return cpEnd{path: s}, nil
	}
	if _, err := core.ParseNodeID(s[:at]); err != nil {
		return cpEnd{path: s}, nil
	}
	rest := s[at+1:]
	var hostEnd int
	if strings.HasPrefix(rest, "[") {
		i := strings.IndexByte(rest, ']')
		if i < 0 {
			return cpEnd{}, fmt.Errorf("%q: unterminated [ in the address", s)
		}
		hostEnd = i + 1
	} else {
		hostEnd = strings.IndexByte(rest, ':')
		if hostEnd < 0 {
			return cpEnd{}, fmt.Errorf("%q: want <nodeid>@<host>:<port>:/path", s)
		}
	}
	if hostEnd >= len(rest) || rest[hostEnd] != ':' {
		return cpEnd{}, fmt.Errorf("%q: want <nodeid>@<host>:<port>:/path", s)
	}
	portAndPath := rest[hostEnd+1:]
	colon := strings.IndexByte(portAndPath, ':')
	if colon < 0 {
		return cpEnd{}, fmt.Errorf("%q: missing :/path after the port", s)
	}
	port := portAndPath[:colon]
	if port == "" || strings.Trim(port, "0123456789") != "" {
		return cpEnd{}, fmt.Errorf("%q: bad port %q", s, port)
	}
	addr := s[:at+1] + rest[:hostEnd] + ":" + port
	if _, err := core.ParseAddr(addr); err != nil {
		return cpEnd{}, err
	}
	p := portAndPath[colon+1:]
	if p == "" {
		p = "/"
	}
	return cpEnd{remote: true, addr: addr, path: p}, nil
}

type cpOptions struct {
	recursive, resume, quiet, noVerify, tcp bool
	keyFile                                 string
}

func newCpCmd(g *globals) *cobra.Command {
	var o cpOptions
	cmd := &cobra.Command{
		Use:   "cp [-r] [--resume] SRC DST",
		Short: "Copy files to or from a node over alknet/sftp",
		Long: `Copy files between this machine and a node's alknet/sftp service. One of
SRC and DST is remote, written ADDR:/path (ADDR = <nodeid>@<host>:<port>;
IPv6 hosts in brackets: <nodeid>@[::1]:4433:/path) or alknet://ADDR/path.

Like cp, a DST that is an existing directory receives SRC inside it. Data
goes to DST.alknet-part and is renamed into place when complete, so DST is
never half-written. --resume continues a DST.alknet-part left by an earlier
run, from the longest prefix whose per-block SHA-256 both sides agree on
(when the node offers check-file; by size otherwise); an existing DST is
never resumed into, only replaced. When the node offers check-file, the
SHA-256 of both sides is compared at the end; a mismatch is an error.
An interrupted copy (SIGINT, SIGTERM) exits with status 130.

A progress bar (bytes, rate, ETA) is shown when stderr is a terminal.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.runCp(cmd.Context(), args[0], args[1], o)
		},
	}
	cmd.Flags().BoolVarP(&o.recursive, "recursive", "r", false, "copy directories recursively")
	cmd.Flags().BoolVar(&o.resume, "resume", false, "continue the .alknet-part files of an earlier run")
	cmd.Flags().BoolVarP(&o.quiet, "quiet", "q", false, "no progress bar")
	cmd.Flags().BoolVar(&o.noVerify, "no-verify", false, "skip the checksum comparison")
	cmd.Flags().StringVar(&o.keyFile, "key", "", "ed25519 private key to present (default: the data directory's identity)")
	cmd.Flags().BoolVar(&o.tcp, "tcp", false, "dial over TCP+TLS instead of QUIC (where UDP is blocked); each stream is a TCP connection")
	return cmd
}

func (g *globals) runCp(ctx context.Context, srcArg, dstArg string, o cpOptions) error {
	src, err := parseCpArg(srcArg)
	if err != nil {
		return err
	}
	dst, err := parseCpArg(dstArg)
	if err != nil {
		return err
	}
	if src.remote == dst.remote {
		return errors.New("one of SRC and DST must be remote (ADDR:/path) and the other local")
	}
	remote := src
	if dst.remote {
		remote = dst
	}
	d, err := g.newDialer(o.keyFile)
	if err != nil {
		return err
	}
	defer d.Close()
	d.tcp = o.tcp
	conn, err := d.dialStreams(ctx, remote.addr, alksftp.ALPN)
	if err != nil {
		return describe(err)
	}
	defer conn.Close(core.CodeOK, "")
	stop := context.AfterFunc(ctx, func() { _ = conn.Close(core.CodeOK, "interrupted") })
	defer stop()

	var bar *progressbar.ProgressBar
	co := alksftp.CopyOptions{
		Recursive: o.recursive,
		Resume:    o.resume,
		NoVerify:  o.noVerify,
		Planned:   func(total int64) { bar = g.progressBar(total, o.quiet) },
		Started: func(name string) {
			if bar != nil {
				bar.Describe(path.Base(filepath.ToSlash(name)))
			}
		},
		Moved: func(n int) {
			if bar != nil {
				_ = bar.Add(n)
			}
		},
		Notice: func(msg string) {
			if bar != nil {
				fmt.Fprintln(g.stderr)
			}
			fmt.Fprintln(g.stderr, "alknet: "+msg)
		},
	}
	if dst.remote {
		err = alksftp.Upload(ctx, conn, src.path, dst.path, co)
	} else {
		err = alksftp.Download(ctx, conn, src.path, dst.path, co)
	}
	if err != nil {
		if bar != nil {
			_ = bar.Exit()
			fmt.Fprintln(g.stderr)
		}
		if ctx.Err() != nil {
			fmt.Fprintln(g.stderr, "alknet: interrupted; run again with --resume to continue")
			return exitCode(130) // 128 + SIGINT, as shells report it
		}
		if errors.Is(err, alksftp.ErrIsDirectory) {
			side := src.path
			if !dst.remote {
				side = "remote " + side
			}
			return fmt.Errorf("%s is a directory (use -r)", side)
		}
		return describe(err)
	}
	if bar != nil {
		_ = bar.Finish()
	}
	return nil
}

// progressBar returns a byte progress bar on stderr, or nil when stderr
// is not a terminal or quiet is set.
func (g *globals) progressBar(total int64, quiet bool) *progressbar.ProgressBar {
	f, ok := g.stderr.(*os.File)
	if quiet || !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(f),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionShowCount(),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetWidth(30),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionUseIECUnits(true),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(f) }),
	)
}

package git

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/alkdev/alknet/core"
)

// HelperName is the program name under which git runs the remote helper
// for alknet:// URLs (QUIC).
const HelperName = "git-remote-alknet"

// HelperNameTCP is the program name under which git runs the remote helper
// for alknet+tcp:// URLs: the same helper, dialing TCP+TLS on the node's
// port number instead of QUIC, for networks that block UDP.
const HelperNameTCP = "git-remote-alknet+tcp"

// URL schemes of the remote helper.
const (
	Scheme    = "alknet"     // QUIC
	SchemeTCP = "alknet+tcp" // TCP+TLS
)

// IsHelperName reports whether a program name (the base name of argv[0])
// is one of the names git runs the helper under.
func IsHelperName(name string) bool { return name == HelperName || name == HelperNameTCP }

// URL is a parsed alknet:// or alknet+tcp:// repository URL.
type URL struct {
	Addr string // the node address, "<nodeid>@<host>:<port>", or a bare node id
	Path string // the repository path, "/<name>.git"
	TCP  bool   // alknet+tcp://: dial TCP+TLS instead of QUIC
}

// ParseURL splits alknet://<nodeid>@<host>:<port>/<name>.git (or the same
// with the scheme alknet+tcp) into the node address and the repository
// path. alknet://<nodeid>/<name>.git names the node by its id alone: Addr is
// then the bare id, which the dialer resolves (the alknet binary looks it up
// in the node's published record).
func ParseURL(raw string) (URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return URL{}, fmt.Errorf("alknet/git: url %q: %w", raw, err)
	}
	bare := u.User == nil && u.Host != "" && u.Port() == ""
	if bare {
		if _, err := core.ParseNodeID(u.Host); err != nil {
			bare = false
		}
	}
	if (u.Scheme != Scheme && u.Scheme != SchemeTCP) || (!bare && (u.User == nil || u.User.Username() == "" || u.Host == "")) {
		return URL{}, fmt.Errorf("alknet/git: url %q: want alknet://<nodeid>@<host>:<port>/<name>.git, alknet://<nodeid>/<name>.git or alknet+tcp://...", raw)
	}
	if u.Path == "" || u.Path == "/" {
		return URL{}, fmt.Errorf("alknet/git: url %q: no repository path", raw)
	}
	if bare {
		return URL{Addr: u.Host, Path: u.Path, TCP: u.Scheme == SchemeTCP}, nil
	}
	return URL{Addr: u.User.Username() + "@" + u.Host, Path: u.Path, TCP: u.Scheme == SchemeTCP}, nil
}

// Open opens a stream on conn (which negotiated ALPN) and sends the request
// line for service on repoPath. protocol is the GIT_PROTOCOL value
// ("version=2"), empty for version 0. The stream then carries the pack
// protocol: the server's advertisement comes first.
func Open(ctx context.Context, conn core.Conn, service, repoPath, host, protocol string) (core.Stream, error) {
	st, err := conn.OpenStream(ctx)
	if err != nil {
		return nil, fmt.Errorf("alknet/git: open stream: %w", err)
	}
	req := Request{Service: service, Path: repoPath, Host: host}
	for p := range strings.SplitSeq(protocol, ":") {
		if p != "" {
			req.Extra = append(req.Extra, p)
		}
	}
	if _, err := st.Write(req.Encode()); err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("alknet/git: send request: %w", err)
	}
	return st, nil
}

// DefaultHelperProtocol is what a helper asks for when git names no
// protocol version: git gives a connect helper none, and has defaulted to
// version 2 since 2.26. Fetches ask for it; pushes, which have no version 2,
// ask for nothing.
const DefaultHelperProtocol = "version=2"

// Dialer connects to a node address on ALPN alknet/git, over TCP+TLS when
// tcp is set (an alknet+tcp:// URL), else over QUIC.
type Dialer func(ctx context.Context, addr string, tcp bool) (core.Conn, error)

// Helper runs git's remote-helper protocol with the connect capability on
// stdin and stdout, as git runs "git-remote-alknet <remote> <url>". Each
// "connect <service>" dials the node with dial and then relays bytes both
// ways until the server ends the stream. protocol is the GIT_PROTOCOL value
// git set in the environment. A failure to connect reaches git as one
// "ERR <reason>" pkt-line, which git prints as "fatal: remote error:
// <reason>".
func Helper(ctx context.Context, rawURL, protocol string, stdin io.Reader, stdout io.Writer, dial Dialer) error {
	u, err := ParseURL(rawURL)
	if err != nil {
		return err
	}
	in := bufio.NewReader(stdin)
	for {
		line, err := in.ReadString('\n')
		if err != nil {
			if errors.Is(err, io.EOF) && line == "" {
				return nil // git is done with us
			}
			return fmt.Errorf("alknet/git: helper: read command: %w", err)
		}
		cmd := strings.TrimSuffix(line, "\n")
		switch {
		case cmd == "capabilities":
			if _, err := io.WriteString(stdout, "connect\n\n"); err != nil {
				return err
			}
		case strings.HasPrefix(cmd, "connect "):
			service := strings.TrimPrefix(cmd, "connect ")
			if _, err := io.WriteString(stdout, "\n"); err != nil {
				return err
			}
			return relay(ctx, u, service, protocol, in, stdout, dial)
		case cmd == "":
			return nil
		default:
			return fmt.Errorf("alknet/git: helper: unsupported command %q", cmd)
		}
	}
}

// relay connects service and copies in to the stream and the stream to out.
func relay(ctx context.Context, u URL, service, protocol string, in io.Reader, out io.Writer, dial Dialer) error {
	if service != UploadPack && service != ReceivePack {
		_, _ = out.Write(errLine("alknet: unsupported service " + service))
		return fmt.Errorf("%w: %q", ErrBadService, service)
	}
	conn, err := dial(ctx, u.Addr, u.TCP)
	if err != nil {
		return sendErr(out, err)
	}
	defer conn.Close(0, "")
	host := u.Addr[strings.LastIndex(u.Addr, "@")+1:]
	if service == ReceivePack && protocol == DefaultHelperProtocol {
		protocol = "" // pushes have no protocol v2
	}
	st, err := Open(ctx, conn, service, u.Path, host, protocol)
	if err != nil {
		return sendErr(out, err)
	}
	defer st.Close()
	// The copy from git ends when git closes our stdin; when the process
	// is a helper run by git, it exits with the answer complete.
	go func() {
		_, _ = io.Copy(st, in)
		_ = st.CloseWrite()
	}()
	cw := &countWriter{w: out}
	_, err = io.Copy(cw, st)
	if err != nil {
		if cw.n == 0 {
			// Refused before the server said anything (the node closed
			// the connection with a reason): git shows it as one line.
			return sendErr(out, err)
		}
		return fmt.Errorf("alknet/git: relay: %w", err)
	}
	return nil
}

// sendErr reports err to git as an ERR pkt-line, which git prints as
// "fatal: remote error: alknet: <reason>". The error is then reported, so
// the helper says nothing more.
func sendErr(out io.Writer, err error) error {
	msg := trimPrefix(describe(err))
	if _, werr := out.Write(errLine("alknet: " + msg)); werr != nil {
		return err
	}
	return nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// describe turns a connection error into what the user should see: the
// remote's close reason when it refused us.
func describe(err error) error {
	if ce, ok := core.AsCloseError(err); ok && ce.Remote && ce.Reason != "" {
		return errors.New(ce.Reason)
	}
	return err
}

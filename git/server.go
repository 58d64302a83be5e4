package git

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"sync"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/go-git/go-billy/v6/osfs"
	"github.com/go-git/go-git/v6/plumbing"
	"github.com/go-git/go-git/v6/plumbing/cache"
	"github.com/go-git/go-git/v6/plumbing/object"
	gitprotocol "github.com/go-git/go-git/v6/plumbing/protocol"
	"github.com/go-git/go-git/v6/plumbing/storer"
	"github.com/go-git/go-git/v6/plumbing/transport"
	"github.com/go-git/go-git/v6/storage/filesystem"
)

// Server serves bare repositories under a root to git clients: on ALPN
// alknet/git (ServeConn) and, through ServeRequest, to any other transport
// that carries a git-upload-pack or git-receive-pack command (the ssh exec
// hook).
type Server struct {
	cfg   Config
	log   *slog.Logger
	repos *repoStore

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// New returns a server for cfg.
func New(cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.MaxRequestLine == 0 {
		cfg.MaxRequestLine = DefaultMaxRequestLine
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	repos, err := newRepoStore(cfg.Root)
	if err != nil {
		return nil, err
	}
	return &Server{cfg: cfg, log: log, repos: repos}, nil
}

// ALPN implements core.ProtocolHandler.
func (s *Server) ALPN() []string { return []string{ALPN} }

// SingleStream implements core.SingleStreamer: a request is one stream to
// its end, so the server is offered on the node's TCP+TLS listener too,
// one request per TCP connection.
func (s *Server) SingleStream() bool { return true }

// Root returns the absolute path of the repository root.
func (s *Server) Root() string { return s.repos.root }

// ServeConn implements core.ProtocolHandler: every stream the peer opens
// carries one request.
func (s *Server) ServeConn(ctx context.Context, conn core.Conn) error {
	id := conn.Identity()
	log := s.log.With("alpn", ALPN, "remote", conn.RemoteAddr().String(), "peer", peerName(id))
	var wg sync.WaitGroup
	defer wg.Wait()
	for n := 0; ; n++ {
		st, err := conn.AcceptStream(ctx)
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer st.Close()
			s.serveStream(ctx, st, id, log.With("stream", n))
		}()
	}
}

// serveStream reads the request line of one stream and serves it.
func (s *Server) serveStream(ctx context.Context, st core.Stream, id *core.Identity, log *slog.Logger) {
	br := bufio.NewReader(st)
	_ = st.SetReadDeadline(time.Now().Add(30 * time.Second))
	req, err := ReadRequest(br, s.cfg.MaxRequestLine)
	_ = st.SetReadDeadline(time.Time{})
	if err != nil {
		log.Info("git request refused", "err", err)
		_, _ = st.Write(errLine("alknet: " + trimPrefix(err)))
		_ = st.CloseWrite()
		drain(br, st)
		return
	}
	err = s.ServeRequest(ctx, req.Service, req.Path, req.Protocol(), id, br, st)
	_ = st.CloseWrite()
	drain(br, st)
	if err != nil {
		log.Info("git request", "op", req.Service, "repo", req.Path, "err", err)
		return
	}
	log.Debug("git request", "op", req.Service, "repo", req.Path)
}

// drainLimit and drainTimeout bound what the server reads after its answer
// while it waits for the client's end of the stream.
const (
	drainLimit   = 64 << 10
	drainTimeout = 10 * time.Second
)

// drain reads what the client still sends (a protocol v2 client ends its
// session with a flush the server need not read) until the client's FIN,
// so that the stream is not reset under data the client has yet to read:
// on TCP, closing a socket with unread input sends an RST, which discards
// the end of the answer at the client.
func drain(r io.Reader, st core.Stream) {
	_ = st.SetReadDeadline(time.Now().Add(drainTimeout))
	_, _ = io.Copy(io.Discard, io.LimitReader(r, drainLimit))
}

// ServeRequest serves one git service (UploadPack or ReceivePack) on the
// repository named by repoPath for identity id: it checks access, writes the
// advertisement to w, then runs the pack protocol, reading the client's data
// from r. protocol is what git puts in GIT_PROTOCOL ("version=2"); empty
// means version 0. A refused request gets one "ERR <reason>" pkt-line on w
// (git prints "fatal: remote error: <reason>") and the error is returned.
// ServeRequest closes neither r nor w.
func (s *Server) ServeRequest(ctx context.Context, service, repoPath, protocol string, id *core.Identity, r io.Reader, w io.Writer) error {
	if !s.enter() {
		_, _ = w.Write(errLine("alknet: server closed"))
		return ErrClosed
	}
	defer s.wg.Done()
	err := s.serve(ctx, service, repoPath, protocol, id, r, w)
	var re *refusal
	if errors.As(err, &re) {
		_, _ = w.Write(errLine(re.msg))
	}
	return err
}

// refusal is an error whose message goes to the client.
type refusal struct {
	msg string
	err error
}

func (r *refusal) Error() string { return r.msg }
func (r *refusal) Unwrap() error { return r.err }

func refuse(err error, format string, args ...any) error {
	return &refusal{msg: "alknet: " + fmt.Sprintf(format, args...), err: err}
}

func (s *Server) serve(ctx context.Context, service, repoPath, protocol string, id *core.Identity, r io.Reader, w io.Writer) error {
	if service != UploadPack && service != ReceivePack {
		return refuse(ErrBadService, "unsupported service %q", service)
	}
	name, err := CleanName(repoPath)
	if err != nil {
		return refuse(err, "bad repository name %q", repoPath)
	}
	action := ActionRead
	if service == ReceivePack {
		action = ActionWrite
	}
	res := Resource(name)
	if id == nil {
		return refuse(ErrForbidden, "authentication required for %s", res)
	}
	dir, exists, err := s.repos.resolve(name)
	if err != nil {
		return refuse(err, "bad repository name %q", repoPath)
	}
	if exists && !isRepo(dir) {
		exists = false
	}
	if !exists && service == ReceivePack && Allowed(id, name, ActionCreate) {
		// A push to a missing repository creates it.
		dir, err = s.repos.create(name)
		if errors.Is(err, ErrExists) {
			dir, _, err = s.repos.resolve(name)
		}
		if err != nil {
			s.log.Warn("git create failed", "repo", name, "err", err)
			return refuse(err, "cannot create %s", name)
		}
		s.log.Info("git repository created", "repo", name, "peer", id.ID)
		exists = true
	}
	if !Allowed(id, name, action) {
		return refuse(ErrForbidden, "peer not authorized for %s: %s", res, action)
	}
	if !exists {
		return refuse(ErrNotFound, "repository not found: %s", name)
	}
	if service == UploadPack && s.cfg.SystemGit != "" {
		return s.systemUploadPack(ctx, dir, protocol, r, w)
	}
	st := filesystem.NewStorage(atomicRefs{osfs.New(dir, osfs.WithBoundOS())}, cache.NewObjectLRUDefault())
	defer st.Close()
	rc := io.NopCloser(r)
	wc := nopWriteCloser{w}
	if service == UploadPack {
		if transport.ProtocolVersion(protocol) == gitprotocol.V2 {
			return s.uploadPackV2(ctx, st, dir, r, w)
		}
		return transport.UploadPack(ctx, st, rc, wc, &transport.UploadPackRequest{
			GitProtocol:          protocol,
			SkipDeltaCompression: s.cfg.SkipDeltaCompression,
		})
	}
	lk := s.repos.lock(name)
	lk.Lock()
	defer lk.Unlock()
	_, err = s.receivePack(ctx, st, s.log.With("repo", name, "peer", id.ID), protocol, r, w)
	return err
}

func (s *Server) protected(ref string) bool {
	for _, p := range s.cfg.Protected {
		if ok, _ := path.Match(p, ref); ok {
			return true
		}
	}
	return false
}

// isAncestor reports whether commit old is reachable from commit new.
func isAncestor(st storer.EncodedObjectStorer, old, new plumbing.Hash) (bool, error) {
	oc, err := object.GetCommit(st, old)
	if err != nil {
		return false, err
	}
	nc, err := object.GetCommit(st, new)
	if err != nil {
		return false, err
	}
	return oc.IsAncestor(nc)
}

// enter registers a request; false when the server is closed.
func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

// Close refuses new requests and waits for running ones.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

func peerName(id *core.Identity) string {
	if id == nil {
		return "anonymous"
	}
	return id.ID
}

// trimPrefix drops the package prefix of an error message for the wire.
func trimPrefix(err error) string {
	const p = "alknet/git: "
	msg := err.Error()
	if len(msg) > len(p) && msg[:len(p)] == p {
		return msg[len(p):]
	}
	return msg
}

var (
	_ core.ProtocolHandler = (*Server)(nil)
	_ core.SingleStreamer  = (*Server)(nil)
)

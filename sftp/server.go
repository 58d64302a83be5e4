package sftp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alkdev/alknet/core"
)

// ALPN is the protocol string of SFTP on alknet: each QUIC stream carries
// one SFTP v3 session as raw packets, with no SSH layer.
const ALPN = "alknet/sftp"

// Scopes the server checks. ScopeRead is also the gate the alknet binary
// puts in front of ALPN.
const (
	ScopeRead  = "sftp"
	ScopeWrite = "sftp:write"
)

// Server serves SFTP sessions over a jailed directory. It is a
// core.ProtocolHandler for ALPN, and ServeSession serves one session over
// any byte stream (the ssh module's sftp subsystem uses it).
type Server struct {
	cfg  Config
	root string // absolute
	log  *slog.Logger

	mu    sync.Mutex // guards homes creation
	peers peerTable

	stateMu sync.Mutex // guards closed and wg.Add
	closed  bool
	wg      sync.WaitGroup
	done    chan struct{}
}

// New returns a server over cfg.Root, creating the directory (0700) when
// missing.
func New(cfg Config) (*Server, error) {
	if cfg.Root == "" {
		return nil, ErrNoRoot
	}
	cfg = cfg.withDefaults()
	abs, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("alknet/sftp: root: %w", err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("alknet/sftp: create root: %w", err)
	}
	r, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("alknet/sftp: open root: %w", err)
	}
	_ = r.Close()
	return &Server{cfg: cfg, root: abs, log: cfg.Logger, done: make(chan struct{})}, nil
}

// ALPN implements core.ProtocolHandler.
func (s *Server) ALPN() []string { return []string{ALPN} }

// SingleStream implements core.SingleStreamer: each stream is one session, so the
// server works over a TCP+TLS connection too.
func (s *Server) SingleStream() bool { return true }

// Root returns the absolute path of the directory sessions are jailed in.
func (s *Server) Root() string { return s.root }

// ServeConn implements core.ProtocolHandler: every stream the peer opens is
// one session. It refuses peers without scope sftp whatever the gate in
// front of it says.
func (s *Server) ServeConn(ctx context.Context, conn core.Conn) error {
	id := conn.Identity()
	log := s.log.With("alpn", ALPN, "remote", conn.RemoteAddr().String(), "peer", peerName(id))
	if !id.HasScope(ScopeRead) {
		log.Warn("sftp refused", "fingerprint", conn.RemoteID().Fingerprint(), "err", "missing scope sftp")
		_ = conn.Close(core.CodeForbidden, "peer not authorized for "+ALPN+": missing scope sftp")
		return nil
	}
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
			start := time.Now()
			err := s.ServeSession(ctx, st, id)
			if err != nil {
				log.Info("session ended", "stream", n, "dur", time.Since(start), "err", err)
			} else {
				log.Debug("session ended", "stream", n, "dur", time.Since(start))
			}
		}()
	}
}

// ServeSession serves one SFTP v3 session over rw with the permissions of
// id: any non-nil identity may read (the caller has already gated it, on
// ALPN with scope sftp or in the SSH server with ssh:sftp), and one holding
// scope sftp:write may also write. A nil id gets no access: rw is closed and
// ErrUnauthenticated returned. ServeSession returns when the client ends the
// session, ctx is cancelled, the session is idle too long or the server is
// closed; it closes rw. A clean end returns nil.
func (s *Server) ServeSession(ctx context.Context, rw io.ReadWriteCloser, id *core.Identity) error {
	if id == nil {
		_ = rw.Close()
		return ErrUnauthenticated
	}
	s.stateMu.Lock()
	if s.closed {
		s.stateMu.Unlock()
		_ = rw.Close()
		return core.ErrClosed
	}
	s.wg.Add(1)
	s.stateMu.Unlock()
	defer s.wg.Done()
	peer, err := s.peers.join(id.ID, s.cfg.MaxPeerSessions)
	if err != nil {
		_ = rw.Close()
		s.log.Warn("sftp session refused", "peer", id.ID, "err", err)
		return err
	}
	defer s.peers.leave(id.ID, peer)
	root, err := s.openHome(id)
	if err != nil {
		_ = rw.Close()
		return err
	}
	defer root.Close()
	sess := newSession(ctx, s, root, id, peer, rw)
	return sess.serve(ctx)
}

// Close ends every session and waits for them. Later sessions are refused
// with core.ErrClosed.
func (s *Server) Close() error {
	s.stateMu.Lock()
	if !s.closed {
		s.closed = true
		close(s.done)
	}
	s.stateMu.Unlock()
	s.wg.Wait()
	return nil
}

// HomeDir returns the absolute host path of the directory id's sessions
// are jailed in: the root, or with Config.PerPeerHome <root>/<peer id>,
// created (0700) when missing. It fails with ErrBadPeerID for a peer id
// that cannot name a directory, and when the home exists but is not a
// directory. Other services that should start a peer in the same place
// (an SSH shell's working directory) use it.
func (s *Server) HomeDir(id *core.Identity) (string, error) {
	if id == nil {
		return "", ErrUnauthenticated
	}
	r, err := s.openHome(id)
	if err != nil {
		return "", err
	}
	_ = r.Close()
	if !s.cfg.PerPeerHome {
		return s.root, nil
	}
	return filepath.Join(s.root, id.ID), nil
}

// openHome opens the session's jail: the root, or the peer's home in it.
func (s *Server) openHome(id *core.Identity) (*os.Root, error) {
	if !s.cfg.PerPeerHome {
		return os.OpenRoot(s.root)
	}
	if !validHomeName(id.ID) {
		return nil, ErrBadPeerID
	}
	top, err := os.OpenRoot(s.root)
	if err != nil {
		return nil, fmt.Errorf("alknet/sftp: open root: %w", err)
	}
	defer top.Close()
	s.mu.Lock()
	err = top.Mkdir(id.ID, 0o700)
	s.mu.Unlock()
	if err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("alknet/sftp: create home: %w", err)
	}
	fi, err := top.Lstat(id.ID)
	if err != nil {
		return nil, fmt.Errorf("alknet/sftp: home: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("alknet/sftp: home of peer %q is not a directory", id.ID)
	}
	return top.OpenRoot(id.ID)
}

// validHomeName reports whether a peer id can name a directory in the root.
func validHomeName(name string) bool {
	if name == "" || name == "." || name == ".." || len(name) > 255 {
		return false
	}
	for _, r := range name {
		if r == '/' || r == '\\' || r == 0 || r < 0x20 {
			return false
		}
	}
	return true
}

func peerName(id *core.Identity) string {
	if id == nil {
		return ""
	}
	return id.ID
}

// peerUse is what one peer holds open on the server, across all its
// sessions and connections (alknet/sftp and an SSH server's subsystem).
type peerUse struct {
	sessions int          // guarded by peerTable.mu
	handles  atomic.Int64 // open file and directory handles
}

// peerTable counts sessions and handles per peer id, so that one peer
// cannot exhaust the node's file descriptors with many sessions.
type peerTable struct {
	mu sync.Mutex
	m  map[string]*peerUse
}

// join admits one more session of peer, or fails with ErrTooManySessions
// when it already has limit (limit < 0: no limit).
func (t *peerTable) join(peer string, limit int) (*peerUse, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[string]*peerUse{}
	}
	u := t.m[peer]
	if u == nil {
		u = &peerUse{}
		t.m[peer] = u
	}
	if limit >= 0 && u.sessions >= limit {
		return nil, ErrTooManySessions
	}
	u.sessions++
	return u, nil
}

func (t *peerTable) leave(peer string, u *peerUse) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if u.sessions--; u.sessions <= 0 && t.m[peer] == u {
		delete(t.m, peer)
	}
}

var _ core.ProtocolHandler = (*Server)(nil)

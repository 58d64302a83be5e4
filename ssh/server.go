package ssh

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/alkdev/alknet/core"
	gossh "golang.org/x/crypto/ssh"
)

// extFingerprint carries the fingerprint of the key that authenticated out
// of PublicKeyCallback, in the Permissions of the successful attempt.
const extFingerprint = "alknet-fingerprint"

// defaultCiphers leaves out chacha20-poly1305 (see Config.Ciphers).
func defaultCiphers() []string {
	return []string{
		gossh.CipherAES128GCM, gossh.CipherAES256GCM,
		gossh.CipherAES128CTR, gossh.CipherAES192CTR, gossh.CipherAES256CTR,
	}
}

// Server is the SSH-over-QUIC protocol handler.
type Server struct {
	cfg    Config
	sshcfg *gossh.ServerConfig
	log    *slog.Logger
	shell  string
	home   string
	user   string
	path   string

	liveMu sync.Mutex
	live   map[*serverConn]struct{} // authenticated SSH connections

	// beforeTrack, when set (by tests), runs between authentication and
	// tracking: the window a peer-table reload can fall into.
	beforeTrack func()
}

// New copies cfg, fills defaults and validates it.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	signer, err := gossh.NewSignerFromKey(cfg.HostKey.PrivateKey())
	if err != nil {
		return nil, fmt.Errorf("host key: %w", err)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, live: map[*serverConn]struct{}{}}
	s.sshcfg = &gossh.ServerConfig{
		PublicKeyCallback:       s.checkKey,
		MaxAuthTries:            cfg.MaxAuthTries,
		PublicKeyAuthAlgorithms: []string{gossh.KeyAlgoED25519},
		ServerVersion:           "SSH-2.0-alknet",
		AuthLogCallback:         s.logAuth,
	}
	s.sshcfg.Ciphers = cfg.Ciphers
	if len(s.sshcfg.Ciphers) == 0 {
		s.sshcfg.Ciphers = defaultCiphers()
	}
	s.sshcfg.AddHostKey(signer)
	s.user, s.home, s.shell = currentUser()
	if cfg.Shell != "" {
		s.shell = cfg.Shell
	}
	s.path = os.Getenv("PATH")
	if s.path == "" {
		s.path = "/usr/local/bin:/usr/bin:/bin"
	}
	return s, nil
}

// ALPN implements core.ProtocolHandler.
func (s *Server) ALPN() []string { return []string{ALPN} }

// SingleStream implements core.SingleStreamer: each stream is one SSH connection, so the
// server works over a TCP+TLS connection too.
func (s *Server) SingleStream() bool { return true }

// HostKey returns the SSH host key: the node key's public half.
func (s *Server) HostKey() gossh.PublicKey {
	pk, _ := gossh.NewPublicKey(ed25519.PublicKey(s.cfg.HostKey.NodeID().PublicKey()))
	return pk
}

// ServeConn implements core.ProtocolHandler: every stream the client opens
// is one SSH connection. It returns when the QUIC connection ends, or, once
// the endpoint drains, when the open SSH connections have finished.
func (s *Server) ServeConn(ctx context.Context, conn core.Conn) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[*serverConn]struct{}{}
	)
	defer wg.Wait()
	for {
		st, err := conn.AcceptStream(ctx)
		if err != nil {
			if errors.Is(err, core.ErrShuttingDown) {
				mu.Lock()
				for c := range conns {
					c.drain()
				}
				mu.Unlock()
				return nil
			}
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := s.handshake(ctx, conn, st)
			if c == nil {
				return
			}
			if s.beforeTrack != nil {
				s.beforeTrack()
			}
			if !s.trackCurrent(c) {
				s.log.Warn("ssh auth refused", "remote", c.remote, "peer", c.fp, "reason", "access changed during login")
				_ = c.sc.Close()
				_ = c.idle.Close()
				return
			}
			mu.Lock()
			conns[c] = struct{}{}
			mu.Unlock()
			c.serve(ctx)
			s.untrack(c)
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
		}()
	}
}

// trackCurrent adds c to the connections Reauthorize checks, unless its
// key no longer resolves to the identity it logged in with. The check runs
// under the lock Reauthorize holds, so a reload is either seen here (the
// peer table is swapped before Reauthorize runs) or finds c tracked: a
// connection that authenticated while its peer was being revoked cannot
// slip between the two.
func (s *Server) trackCurrent(c *serverConn) bool {
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	id, _ := s.resolve(c.fp)
	if !c.id.Equal(id) {
		return false
	}
	s.live[c] = struct{}{}
	return true
}

func (s *Server) untrack(c *serverConn) {
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	delete(s.live, c)
}

// Reauthorize re-resolves the SSH key of every open SSH connection and
// closes those whose peer was removed, disabled, lost the ssh scope, or
// changed (the connection holds the identity resolved at login). The SSH key
// may differ from the QUIC key that core.Endpoint.Reauthorize checks, so the
// assembly layer calls both after each peer-table reload. It returns how
// many connections it closed.
func (s *Server) Reauthorize() int {
	s.liveMu.Lock()
	var revoke []*serverConn
	for c := range s.live {
		id, _ := s.resolve(c.fp)
		if !c.id.Equal(id) {
			revoke = append(revoke, c)
		}
	}
	s.liveMu.Unlock()
	for _, c := range revoke {
		s.log.Warn("ssh access revoked", "remote", c.remote, "peer", c.fp)
		_ = c.sc.Close()
	}
	return len(revoke)
}

// handshake runs the SSH key exchange and authentication on st. It returns
// nil (and has closed st) when either fails.
func (s *Server) handshake(ctx context.Context, qc core.Conn, st core.Stream) *serverConn {
	remote := qc.RemoteAddr().String()
	ic := newIdleConn(st, s.cfg.IdleTimeout)
	if s.cfg.HandshakeTimeout > 0 {
		_ = st.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	}
	stop := context.AfterFunc(ctx, func() { _ = ic.Close() })
	sc, chans, reqs, err := gossh.NewServerConn(ic, s.sshcfg)
	stop()
	if err != nil {
		_ = ic.Close()
		if ctx.Err() == nil {
			s.log.Info("ssh handshake failed", "remote", remote, "err", err)
		}
		return nil
	}
	_ = st.SetDeadline(time.Time{})
	fp := ""
	if sc.Permissions != nil {
		fp = sc.Permissions.Extensions[extFingerprint]
	}
	id, reason := s.resolve(fp)
	if id == nil { // revoked between the callback and now, or no fingerprint
		s.log.Warn("ssh auth refused", "remote", remote, "peer", fp, "reason", reason)
		_ = sc.Close()
		return nil
	}
	s.log.Info("ssh auth accepted", "remote", remote, "peer", fp, "peer_id", id.ID, "user", sc.User())
	return &serverConn{
		srv: s, sc: sc, chans: chans, reqs: reqs, id: id, fp: fp, remote: remote,
		idle: ic, log: s.log.With("remote", remote, "peer", fp),
		listeners: map[string]net.Listener{},
	}
}

// resolve maps a fingerprint to an identity allowed to use SSH.
func (s *Server) resolve(fp string) (*Identity, string) {
	if fp == "" || s.cfg.Identities == nil {
		return nil, "unknown key"
	}
	id, ok := s.cfg.Identities.IdentityByFingerprint(fp)
	if !ok || id == nil {
		return nil, "unknown key"
	}
	if !id.HasScope(ScopeSSH) {
		return nil, "missing scope " + ScopeSSH
	}
	return id, ""
}

// checkKey is the PublicKeyCallback. x/crypto/ssh calls it for keys that are
// only offered as well as for the one that is then proven by a signature;
// the fingerprint therefore travels in the returned Permissions, which the
// library keeps only for the attempt that succeeds.
func (s *Server) checkKey(meta gossh.ConnMetadata, key gossh.PublicKey) (*gossh.Permissions, error) {
	fp, err := core.SSHKeyFingerprint(key)
	if err != nil {
		return nil, err
	}
	if _, reason := s.resolve(fp); reason != "" {
		s.log.Warn("ssh auth refused", "remote", meta.RemoteAddr().String(), "peer", fp, "reason", reason)
		return nil, errors.New(reason)
	}
	return &gossh.Permissions{Extensions: map[string]string{extFingerprint: fp}}, nil
}

// logAuth logs failed attempts that checkKey did not already log.
func (s *Server) logAuth(meta gossh.ConnMetadata, method string, err error) {
	if err == nil || method == "publickey" || method == "none" {
		return
	}
	s.log.Warn("ssh auth refused", "remote", meta.RemoteAddr().String(), "method", method, "reason", "method not offered")
}

// currentUser returns the server user's name, home and login shell.
func currentUser() (name, home, shell string) {
	name, home = os.Getenv("USER"), os.Getenv("HOME")
	if u, err := user.Current(); err == nil {
		name, home = u.Username, u.HomeDir
	}
	if home == "" {
		home = "/"
	}
	shell = passwdShell(os.Getuid())
	if shell == "" {
		shell = os.Getenv("SHELL")
	}
	if shell == "" {
		shell = "/bin/sh"
	}
	return name, home, shell
}

// passwdShell reads the login shell of uid from /etc/passwd.
func passwdShell(uid int) string {
	f, err := os.Open("/etc/passwd")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	want := strconv.Itoa(uid)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) >= 7 && fields[2] == want {
			if _, err := os.Stat(fields[6]); err == nil {
				return fields[6]
			}
			return ""
		}
	}
	return ""
}

var _ core.ProtocolHandler = (*Server)(nil)

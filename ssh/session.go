package ssh

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
	gossh "golang.org/x/crypto/ssh"
)

// reasonNoHome refuses a shell or exec whose Config.HomeDir failed.
const reasonNoHome = "no home directory"

// Limits on what a client may put in a session's environment.
const (
	maxEnvVars     = 64
	maxEnvValueLen = 4096
)

// session is one session channel: at most one shell, exec or subsystem.
type session struct {
	c       *serverConn
	ch      gossh.Channel
	ctx     context.Context
	cancel  context.CancelFunc
	release func()
	io      sync.WaitGroup // stdin copier

	env     []string // client env that passed the allowlist
	term    string
	hasPty  bool
	size    pty.Winsize
	started bool
	done    chan struct{} // closed when the program has finished and the exit status is sent

	finishOnce sync.Once

	mu     sync.Mutex
	ptmx   *os.File
	proc   *os.Process
	exited bool
}

// openSession accepts a session channel and serves its requests.
func (c *serverConn) openSession(ctx context.Context, nc gossh.NewChannel) {
	msg, release := c.acquire("session")
	if release == nil {
		_ = nc.Reject(gossh.ResourceShortage, msg)
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		release()
		return
	}
	sctx, cancel := context.WithCancel(ctx)
	s := &session{c: c, ch: ch, ctx: sctx, cancel: cancel, release: release, done: make(chan struct{})}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		s.serve(reqs)
	}()
}

// serve handles requests until the channel closes, then makes sure the
// program is gone.
func (s *session) serve(reqs <-chan *gossh.Request) {
	defer s.release()
	for req := range reqs {
		s.handle(req)
	}
	s.cancel()
	if s.started {
		s.kill()
		<-s.done
	}
	_ = s.ch.Close()
	s.io.Wait()
	s.c.mu.Lock()
	delete(s.c.shells, s)
	s.c.mu.Unlock()
}

func reply(req *gossh.Request, ok bool) {
	if req.WantReply {
		_ = req.Reply(ok, nil)
	}
}

func (s *session) handle(req *gossh.Request) {
	switch req.Type {
	case "env":
		var p struct{ Name, Value string }
		ok := gossh.Unmarshal(req.Payload, &p) == nil && !s.started && allowedEnv(p.Name) &&
			len(p.Value) <= maxEnvValueLen && len(s.env) < maxEnvVars && !strings.ContainsRune(p.Value, 0)
		if ok {
			s.env = append(s.env, p.Name+"="+p.Value)
		}
		reply(req, ok)
	case "pty-req":
		var p struct {
			Term                 string
			Cols, Rows, Wpx, Hpx uint32
			Modes                string
		}
		ok := gossh.Unmarshal(req.Payload, &p) == nil && !s.started && !s.hasPty && !strings.ContainsRune(p.Term, 0)
		if ok {
			s.hasPty, s.term = true, p.Term
			s.size = winsize(p.Cols, p.Rows, p.Wpx, p.Hpx)
		}
		reply(req, ok)
	case "window-change":
		var p struct{ Cols, Rows, Wpx, Hpx uint32 }
		ok := gossh.Unmarshal(req.Payload, &p) == nil && s.hasPty
		if ok {
			s.mu.Lock()
			s.size = winsize(p.Cols, p.Rows, p.Wpx, p.Hpx)
			if s.ptmx != nil {
				_ = pty.Setsize(s.ptmx, &s.size)
			}
			s.mu.Unlock()
		}
		reply(req, ok)
	case "signal":
		var p struct{ Signal string }
		var sig syscall.Signal
		ok := false
		if gossh.Unmarshal(req.Payload, &p) == nil {
			sig, ok = signals[p.Signal]
		}
		if ok {
			s.signal(sig)
		}
		reply(req, ok)
	case "shell", "exec", "subsystem":
		if s.started {
			reply(req, false)
			return
		}
		if why := s.start(req); why != "" {
			s.c.log.Warn("ssh session refused", "op", req.Type, "reason", why)
			if req.Type == "subsystem" || !(strings.HasPrefix(why, "missing scope") || why == reasonNoHome) {
				// The reason precedes the failure reply on stderr, for
				// clients that show it (OpenSSH drops it).
				_, _ = io.WriteString(s.ch.Stderr(), "alknet: "+why+"\r\n")
				reply(req, false)
				return
			}
			// A shell or command the caller may not run "runs" and fails
			// with status 126 and the reason on stderr: OpenSSH drops
			// stderr data that precedes a failure reply, so this is the
			// only way the user learns why.
			s.started = true
			reply(req, true)
			go func() {
				defer close(s.done)
				_, _ = io.WriteString(s.ch.Stderr(), "alknet: "+why+"\r\n")
				s.finish(exitInfo{status: ExitRefused})
			}()
		}
	default:
		reply(req, false)
	}
}

// allowedEnv is the environment allowlist: LANG, LC_*, TERM and
// GIT_PROTOCOL (git sends it to ask for protocol version 2; the exec hook
// and a system git-upload-pack read it).
func allowedEnv(name string) bool {
	return name == "LANG" || name == "TERM" || name == "GIT_PROTOCOL" || (strings.HasPrefix(name, "LC_") && len(name) > 3 &&
		!strings.ContainsAny(name, "=\x00"))
}

func winsize(cols, rows, wpx, hpx uint32) pty.Winsize {
	c16 := func(v uint32) uint16 { return uint16(min(v, 0xffff)) }
	return pty.Winsize{Cols: c16(cols), Rows: c16(rows), X: c16(wpx), Y: c16(hpx)}
}

// start begins the program a shell, exec or subsystem request asks for. It
// returns a refusal reason, or "" once it has replied success and started.
func (s *session) start(req *gossh.Request) string {
	id := s.c.id
	var run func() (exitInfo, error)
	var why string
	switch req.Type {
	case "shell":
		if !id.HasScope(ScopeShell) {
			return "missing scope " + ScopeShell
		}
		shell := s.c.srv.shell
		cmd := exec.Command(shell)
		cmd.Args[0] = "-" + filepath.Base(shell) // a login shell, as sshd starts it
		if run, why = s.prepare(cmd); why != "" {
			return why
		}
		s.c.mu.Lock()
		if s.c.shells == nil {
			s.c.shells = map[*session]struct{}{}
		}
		s.c.shells[s] = struct{}{}
		s.c.mu.Unlock()
	case "exec":
		var p struct{ Command string }
		if gossh.Unmarshal(req.Payload, &p) != nil {
			return "bad exec request"
		}
		if hook := s.c.srv.cfg.Exec; hook != nil {
			if h, ok := hook(s.ctx, p.Command, id); ok {
				run = func() (exitInfo, error) {
					status, err := h(s.ctx, ExecIO{Stdin: s.ch, Stdout: s.ch, Stderr: s.ch.Stderr(), Env: s.env})
					if err != nil {
						return exitInfo{status: 1}, err
					}
					return exitInfo{status: uint32(status)}, nil
				}
				break
			}
		}
		if !id.HasScope(ScopeExec) {
			return "missing scope " + ScopeExec
		}
		if run, why = s.prepare(exec.Command(s.c.srv.shell, "-c", p.Command)); why != "" {
			return why
		}
	case "subsystem":
		var p struct{ Name string }
		if gossh.Unmarshal(req.Payload, &p) != nil {
			return "bad subsystem request"
		}
		sub, ok := s.c.srv.cfg.Subsystems[p.Name]
		if !ok {
			return "unknown subsystem"
		}
		if sub.Scope != "" && !id.HasScope(sub.Scope) {
			return "missing scope " + sub.Scope
		}
		run = func() (exitInfo, error) {
			if err := sub.Serve(s.ctx, subsystemChannel{s.ch, s}, id); err != nil {
				return exitInfo{status: 1}, err
			}
			return exitInfo{}, nil
		}
	}
	if s.c.isDraining() {
		return "server shutting down"
	}
	s.started = true
	reply(req, true)
	s.c.log.Info("ssh session", "op", req.Type, "peer_id", id.ID)
	go func() {
		defer close(s.done)
		info, err := run()
		if err != nil && !errors.Is(err, io.EOF) {
			s.c.log.Warn("ssh session error", "op", req.Type, "err", err)
		}
		s.finish(info)
	}()
	return ""
}

// exitInfo is how a program ended.
type exitInfo struct {
	status     uint32
	signal     string // without "SIG"; set when killed by a signal
	coreDumped bool
}

// finish reports how the program ended and closes the channel: all output
// has been written before, then exit-status (or exit-signal), EOF and close.
func (s *session) finish(info exitInfo) {
	s.finishOnce.Do(func() { s.sendExit(info) })
}

func (s *session) sendExit(info exitInfo) {
	if info.signal != "" {
		_, _ = s.ch.SendRequest("exit-signal", false, gossh.Marshal(struct {
			Signal     string
			CoreDumped bool
			Message    string
			Lang       string
		}{info.signal, info.coreDumped, "", ""}))
	} else {
		_, _ = s.ch.SendRequest("exit-status", false, gossh.Marshal(struct{ Status uint32 }{info.status}))
	}
	_ = s.ch.CloseWrite()
	_ = s.ch.Close()
}

// environ is the environment of a program: the server user's basics, TERM
// with a pty, and the client's allowlisted variables.
func (s *session) environ() []string {
	srv := s.c.srv
	env := []string{
		"HOME=" + srv.home, "USER=" + srv.user, "LOGNAME=" + srv.user,
		"SHELL=" + srv.shell, "PATH=" + srv.path,
	}
	if s.hasPty && s.term != "" {
		env = append(env, "TERM="+s.term)
	}
	return append(env, s.env...)
}

// prepare sets cmd up for this session and returns the function that runs
// it to the end, or a refusal reason.
func (s *session) prepare(cmd *exec.Cmd) (func() (exitInfo, error), string) {
	cmd.Env = s.environ()
	cmd.Dir = s.c.srv.home
	if hd := s.c.srv.cfg.HomeDir; hd != nil {
		dir, err := hd(s.c.id)
		if err != nil {
			s.c.log.Warn("ssh home directory", "err", err)
			return nil, reasonNoHome
		}
		cmd.Dir = dir
	}
	if s.hasPty {
		return func() (exitInfo, error) { return s.runPty(cmd) }, ""
	}
	return func() (exitInfo, error) { return s.runPipes(cmd) }, ""
}

// runPipes runs cmd with stdin, stdout and stderr on pipes. Every byte of
// output is copied to the channel before the exit status is sent.
func (s *session) runPipes(cmd *exec.Cmd) (exitInfo, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return exitInfo{status: 1}, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return exitInfo{status: 1}, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return exitInfo{status: 1}, err
	}
	if err := s.startProc(cmd); err != nil {
		return exitInfo{status: 127}, err
	}
	s.io.Add(1)
	go func() {
		defer s.io.Done()
		_, _ = io.CopyBuffer(stdin, struct{ io.Reader }{s.ch}, make([]byte, 64<<10))
		_ = stdin.Close()
	}()
	var out sync.WaitGroup
	out.Add(2)
	go func() {
		defer out.Done()
		_, _ = io.CopyBuffer(s.ch, struct{ io.Reader }{stdout}, make([]byte, 64<<10))
	}()
	go func() {
		defer out.Done()
		_, _ = io.CopyBuffer(s.ch.Stderr(), struct{ io.Reader }{stderr}, make([]byte, 32<<10))
	}()
	out.Wait()
	return s.waitProc(cmd)
}

// runPty runs cmd on a new pty of the requested size.
func (s *session) runPty(cmd *exec.Cmd) (exitInfo, error) {
	s.mu.Lock()
	size := s.size
	s.mu.Unlock()
	ptmx, err := pty.StartWithSize(cmd, &size)
	if err != nil {
		return exitInfo{status: 127}, err
	}
	s.mu.Lock()
	s.ptmx, s.proc = ptmx, cmd.Process
	_ = pty.Setsize(ptmx, &s.size) // a window-change may have come in meanwhile
	s.mu.Unlock()
	s.io.Add(1)
	go func() {
		defer s.io.Done()
		_, _ = io.CopyBuffer(ptmx, struct{ io.Reader }{s.ch}, make([]byte, 32<<10))
	}()
	outDone := make(chan struct{})
	go func() {
		defer close(outDone)
		_, _ = io.CopyBuffer(s.ch, struct{ io.Reader }{ptmx}, make([]byte, 32<<10))
	}()
	info, err := s.waitProc(cmd)
	// The pty reports EOF (EIO) once every holder of its other end is gone;
	// a background job that keeps it open gets a grace period.
	t := time.NewTimer(s.c.srv.cfg.KillGrace)
	select {
	case <-outDone:
	case <-t.C:
	}
	t.Stop()
	s.mu.Lock()
	_ = ptmx.Close()
	s.mu.Unlock()
	<-outDone
	return info, err
}

func (s *session) startProc(cmd *exec.Cmd) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return err
	}
	s.proc = cmd.Process
	return nil
}

// waitProc reaps cmd and translates its end.
func (s *session) waitProc(cmd *exec.Cmd) (exitInfo, error) {
	err := cmd.Wait()
	s.mu.Lock()
	s.exited = true
	s.mu.Unlock()
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok {
		return exitInfo{status: uint32(cmd.ProcessState.ExitCode())}, nil
	}
	if ws.Signaled() {
		name := signalName(ws.Signal())
		if name == "" {
			return exitInfo{status: 128 + uint32(ws.Signal())}, nil
		}
		return exitInfo{signal: name, coreDumped: ws.CoreDump()}, nil
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return exitInfo{status: uint32(ws.ExitStatus())}, err
	}
	return exitInfo{status: uint32(ws.ExitStatus())}, nil
}

// signal sends sig to the program's process group.
func (s *session) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil && !s.exited {
		_ = syscall.Kill(-s.proc.Pid, sig)
	}
}

// hangup sends SIGHUP, as a closing terminal would.
func (s *session) hangup() { s.signal(syscall.SIGHUP) }

// kill ends a program whose channel went away: SIGHUP, then SIGKILL after
// Config.KillGrace. In-process handlers see their context cancelled.
func (s *session) kill() {
	s.hangup()
	t := time.NewTimer(s.c.srv.cfg.KillGrace)
	defer t.Stop()
	select {
	case <-s.done:
	case <-t.C:
		s.signal(syscall.SIGKILL)
	}
}

// signals are the names RFC 4254 section 6.10 lists, without "SIG".
var signals = map[string]syscall.Signal{
	"ABRT": syscall.SIGABRT, "ALRM": syscall.SIGALRM, "FPE": syscall.SIGFPE,
	"HUP": syscall.SIGHUP, "ILL": syscall.SIGILL, "INT": syscall.SIGINT,
	"KILL": syscall.SIGKILL, "PIPE": syscall.SIGPIPE, "QUIT": syscall.SIGQUIT,
	"SEGV": syscall.SIGSEGV, "TERM": syscall.SIGTERM, "USR1": syscall.SIGUSR1,
	"USR2": syscall.SIGUSR2,
}

func signalName(sig syscall.Signal) string {
	for name, s := range signals {
		if s == sig {
			return name
		}
	}
	return ""
}

// subsystemChannel is the channel as a subsystem sees it: its Close reports
// exit status 0 before closing, as the end of a subsystem is a clean exit.
type subsystemChannel struct {
	gossh.Channel
	s *session
}

func (c subsystemChannel) Close() error {
	c.s.finish(exitInfo{})
	return nil
}

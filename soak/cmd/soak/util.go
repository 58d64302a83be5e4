package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"
)

// envReader reads knobs, collecting parse errors.
type envReader struct{ errs []string }

func (e *envReader) int(name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 0 {
		e.errs = append(e.errs, fmt.Sprintf("%s=%q: want a count >= 0", name, s))
		return def
	}
	return v
}

func (e *envReader) float(name string, def float64) float64 {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || v > 1 {
		e.errs = append(e.errs, fmt.Sprintf("%s=%q: want a rate between 0 and 1", name, s))
		return def
	}
	return v
}

func (e *envReader) duration(name string, def time.Duration) time.Duration {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		e.errs = append(e.errs, fmt.Sprintf("%s=%q: want a duration such as 30s", name, s))
		return def
	}
	return v
}

// status is a row's verdict.
type status string

const (
	statusPass  status = "PASS"
	statusFail  status = "FAIL"
	statusLimit status = "LIMIT" // could not be measured as asked; figures say why
	statusSkip  status = "SKIP"
)

// result is one row of the table.
type result struct {
	name    string
	status  status
	figures string
	notes   []string // printed under the table
}

func pass(name, figures string) result {
	return result{name: name, status: statusPass, figures: figures}
}

func fail(name, figures string, notes ...string) result {
	return result{name: name, status: statusFail, figures: figures, notes: notes}
}

func verdict(ok bool, name, figures string, notes ...string) result {
	if ok {
		return result{name: name, status: statusPass, figures: figures, notes: notes}
	}
	return fail(name, figures, notes...)
}

func printTable(w io.Writer, rs []result, total time.Duration) {
	fmt.Fprintf(w, "\nalknet soak (%s total)\n\n", total.Round(time.Second))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tRESULT\tFIGURES")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.name, r.status, r.figures)
	}
	_ = tw.Flush()
	for _, r := range rs {
		for _, n := range r.notes {
			fmt.Fprintf(w, "  %s: %s\n", r.name, n)
		}
	}
}

// procTable remembers every process the suite started, so that none
// outlives it.
type procTable struct {
	mu    sync.Mutex
	procs map[int]*exec.Cmd
}

func newProcTable() *procTable { return &procTable{procs: map[int]*exec.Cmd{}} }

func (t *procTable) add(c *exec.Cmd) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.procs[c.Process.Pid] = c
}

func (t *procTable) remove(c *exec.Cmd) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.procs, c.Process.Pid)
}

// killAll sends SIGKILL to every process still registered.
func (t *procTable) killAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for pid, c := range t.procs {
		_ = c.Process.Kill()
		delete(t.procs, pid)
	}
}

// tail keeps the last bytes written to it.
type tail struct {
	mu  sync.Mutex
	b   []byte
	max int
}

func newTail(n int) *tail { return &tail{max: n} }

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append([]byte(nil), t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// lastLine is the last non-empty line of s, for one-line notes.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// node is a running `alknet serve`.
type node struct {
	s      *suite
	data   string
	listen string
	addr   string // <nodeid>@host:port as printed
	extra  []string
	cmd    *exec.Cmd
	log    *tail
	done   chan struct{}
	err    error
}

// startNode runs `alknet --data data serve --listen listen` and waits until
// it prints its address, i.e. it is accepting.
func (s *suite) startNode(ctx context.Context, data, listen string, extra ...string) (*node, error) {
	n := &node{s: s, data: data, listen: listen, extra: extra}
	return n, n.start(ctx)
}

func (n *node) start(ctx context.Context) error {
	args := append([]string{"--data", n.data, "--log-level", "warn", "serve", "--listen", n.listen}, n.extra...)
	cmd := exec.Command(n.s.alknet, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	n.log = newTail(64 << 10)
	cmd.Stderr = n.log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start serve: %w", err)
	}
	n.s.procs.add(cmd)
	n.cmd, n.done = cmd, make(chan struct{})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, out)
	}()
	go func() {
		n.err = cmd.Wait()
		n.s.procs.remove(cmd)
		close(n.done)
	}()
	select {
	case l, ok := <-lines:
		if !ok {
			<-n.done
			return fmt.Errorf("serve exited before printing its address: %s", lastLine(n.log.String()))
		}
		n.addr = strings.TrimSpace(l)
		if n.listen == "127.0.0.1:0" || n.listen == "[::1]:0" {
			// later restarts reuse the port so that clients find the node again
			n.listen = n.addr[strings.IndexByte(n.addr, '@')+1:]
		}
		return nil
	case <-time.After(60 * time.Second):
		n.kill9()
		return fmt.Errorf("serve did not print its address within 60s: %s", lastLine(n.log.String()))
	case <-ctx.Done():
		n.kill9()
		return ctx.Err()
	}
}

// restart starts the node again on the same data directory and address.
func (n *node) restart(ctx context.Context) error { return n.start(ctx) }

func (n *node) pid() int { return n.cmd.Process.Pid }

// host is the node's host:port.
func (n *node) host() string { return n.addr[strings.IndexByte(n.addr, '@')+1:] }

// nodeID is the part of the address before "@".
func (n *node) nodeID() string { return n.addr[:strings.IndexByte(n.addr, '@')] }

// kill9 sends SIGKILL and waits for the process to be gone.
func (n *node) kill9() {
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-n.done:
	case <-time.After(10 * time.Second):
	}
}

// stop sends SIGTERM and waits up to a minute for a clean exit.
func (n *node) stop() error {
	select {
	case <-n.done:
		return n.err
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
		return n.err
	case <-time.After(60 * time.Second):
		n.kill9()
		return errors.New("serve did not stop within 60s of SIGTERM")
	}
}

// alive reports whether the process still runs.
func (n *node) alive() bool {
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// memKB reads VmRSS and VmHWM (KiB) of pid from /proc.
func memKB(pid int) (rss, hwm int64, err error) {
	rss, hwm, _, err = memStatus(pid)
	return rss, hwm, err
}

// memStatus reads VmRSS, VmHWM and VmData (KiB) of pid from /proc. VmData
// counts heap the process reserved whether or not it touched it.
func memStatus(pid int) (rss, hwm, vmData int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			rss, _ = strconv.ParseInt(f[1], 10, 64)
		case "VmHWM:":
			hwm, _ = strconv.ParseInt(f[1], 10, 64)
		case "VmData:":
			vmData, _ = strconv.ParseInt(f[1], 10, 64)
		}
	}
	return rss, hwm, vmData, nil
}

// cliResult is what a finished CLI run printed.
type cliResult struct {
	stdout, stderr string
	code           int
}

func (r cliResult) String() string {
	return fmt.Sprintf("exit %d: %s", r.code, lastLine(r.stderr+"\n"+r.stdout))
}

// cli runs the alknet binary with args, bounded by timeout.
func (s *suite) cli(ctx context.Context, timeout time.Duration, stdin io.Reader, args ...string) (cliResult, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.alknet, args...)
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := cliResult{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
		if ctx.Err() != nil {
			return r, fmt.Errorf("alknet %s: timed out after %s", strings.Join(args, " "), timeout)
		}
	case err != nil:
		return r, fmt.Errorf("alknet %s: %w", strings.Join(args, " "), err)
	}
	return r, nil
}

// mustCLI runs the binary and wants exit 0.
func (s *suite) mustCLI(ctx context.Context, args ...string) (string, error) {
	r, err := s.cli(ctx, 2*time.Minute, nil, args...)
	if err != nil {
		return "", err
	}
	if r.code != 0 {
		return "", fmt.Errorf("alknet %s: %s", strings.Join(args, " "), r)
	}
	return strings.TrimSpace(r.stdout), nil
}

// initData creates a data directory with an identity and returns its
// fingerprint.
func (s *suite) initData(ctx context.Context, dir string) (string, error) {
	if _, err := s.mustCLI(ctx, "--data", dir, "init"); err != nil {
		return "", err
	}
	return s.mustCLI(ctx, "--data", dir, "id", "--fingerprint")
}

// addPeers adds the fingerprints with `alknet peer add`, one peer entry
// per key, named prefix-0, prefix-1, ...
func (s *suite) addPeers(ctx context.Context, data, prefix string, fps []string, scopes ...string) error {
	// One peer per key, as an operator adds clients: per-peer caps (sftp
	// sessions and handles, connections per peer) then apply per client.
	for i := 0; len(fps) > 0; i++ {
		const n = 1
		args := []string{"--data", data, "peer", "add", fmt.Sprintf("%s-%d", prefix, i)}
		for _, fp := range fps[:n] {
			args = append(args, "--fingerprint", fp)
		}
		for _, sc := range scopes {
			args = append(args, "--scope", sc)
		}
		if _, err := s.mustCLI(ctx, args...); err != nil {
			return err
		}
		fps = fps[n:]
	}
	return nil
}

// randomFile writes size random bytes to path and returns their SHA-256.
func randomFile(path string, size int64) (string, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.Reader, size); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// fileSHA256 hashes a file; a missing file is "" and no error.
func fileSHA256(path string) (string, int64, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", 0, nil
	}
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", n, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// latencies collects durations from many goroutines.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) addAll(ds []time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, ds...)
	l.mu.Unlock()
}

// pct returns the q-quantile (0..1) and the count.
func (l *latencies) pct(q float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return 0
	}
	s := slices.Clone(l.d)
	slices.Sort(s)
	i := int(q * float64(len(s)-1))
	return s[i]
}

func (l *latencies) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.d)
}

// ms formats a duration in milliseconds with one decimal.
func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond)) }

// mib formats KiB as MiB.
func mib(kb int64) string { return fmt.Sprintf("%.0fMiB", float64(kb)/1024) }

// errCounter counts errors and keeps the first few distinct messages.
type errCounter struct {
	mu    sync.Mutex
	n     int
	first map[string]int
}

func (e *errCounter) add(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.n++
	if e.first == nil {
		e.first = map[string]int{}
	}
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	if _, ok := e.first[msg]; ok || len(e.first) < 5 {
		e.first[msg]++
	}
}

func (e *errCounter) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.n
}

// notes returns "N x message" lines, most frequent first.
func (e *errCounter) notes() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for m, c := range e.first {
		out = append(out, fmt.Sprintf("%dx %s", c, m))
	}
	slices.SortFunc(out, func(a, b string) int {
		ai, _ := strconv.Atoi(a[:strings.IndexByte(a, 'x')])
		bi, _ := strconv.Atoi(b[:strings.IndexByte(b, 'x')])
		return bi - ai
	})
	return out
}

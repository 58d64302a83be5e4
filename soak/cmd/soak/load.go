package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/core"
	alksftp "github.com/alkdev/alknet/sftp"
	alkssh "github.com/alkdev/alknet/ssh"
	"github.com/pkg/sftp"
	gossh "golang.org/x/crypto/ssh"
)

// connsPerKey is how many connections one client key holds: below serve's
// per-key cap (64 by default), so the suite measures the node, not that cap.
const connsPerKey = 32

// clientPool is a set of client endpoints, one UDP socket and one key each.
type clientPool struct {
	eps  []*core.Endpoint
	keys []core.SecretKey
}

// newClientPool makes n client endpoints with fresh keys and returns their
// fingerprints.
func newClientPool(n int) (*clientPool, []string, error) {
	p := &clientPool{}
	var fps []string
	for range n {
		k, err := core.GenerateSecretKey()
		if err != nil {
			p.close()
			return nil, nil, err
		}
		ep, err := core.NewEndpoint(core.Config{SecretKey: k, ListenAddr: "127.0.0.1:0", HandshakeTimeout: 30 * time.Second})
		if err != nil {
			p.close()
			return nil, nil, err
		}
		p.eps = append(p.eps, ep)
		p.keys = append(p.keys, k)
		fps = append(fps, k.NodeID().Fingerprint())
	}
	return p, fps, nil
}

func (p *clientPool) close() {
	var wg sync.WaitGroup
	for _, ep := range p.eps {
		wg.Go(func() { _ = ep.Close() })
	}
	wg.Wait()
}

// loadFile is what sftp workers fetch; loadFileSize bytes of random data.
const (
	loadFile     = "load.bin"
	loadFileSize = 64 << 10
)

// worker holds one connection of one ALPN and runs operations on it.
type worker struct {
	kind   string // ping, call, ssh, sftp
	conn   core.Conn
	callP  *call.Peer
	sshC   *gossh.Client
	sftpC  *sftp.Client
	nodeFP string
	sum    string // SHA-256 of the sftp file
}

var workerKinds = []string{"ping", "ping", "ping", "ping", "ping", "ping", "ping", "ping",
	"call", "call", "call", "call", "call", "call",
	"ssh", "ssh", "ssh", "sftp", "sftp", "sftp"} // 40% ping, 30% call, 15% ssh exec, 15% sftp get

func (w *worker) connect(ctx context.Context, ep *core.Endpoint, key core.SecretKey, addr core.Addr) error {
	var err error
	switch w.kind {
	case "ping":
		w.conn, err = ep.Dial(ctx, addr, core.PingALPN)
	case "call":
		w.callP, err = call.Dial(ctx, ep, addr, call.Config{})
		if err == nil {
			w.conn = w.callP.Conn()
		}
	case "ssh":
		if w.conn, err = ep.Dial(ctx, addr, alkssh.ALPN); err == nil {
			w.sshC, err = alkssh.NewClient(ctx, w.conn, key, "soak")
		}
	case "sftp":
		if w.conn, err = ep.Dial(ctx, addr, alksftp.ALPN); err == nil {
			var st core.Stream
			if st, err = w.conn.OpenStream(ctx); err == nil {
				w.sftpC, err = sftp.NewClientPipe(st, st)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("connect %s: %w", w.kind, err)
	}
	return nil
}

// op runs one operation and checks its answer.
func (w *worker) op(ctx context.Context) error {
	switch w.kind {
	case "ping":
		return pingOnce(ctx, w.conn, 64)
	case "call":
		var out struct {
			Fingerprint string `json:"fingerprint"`
		}
		if err := w.callP.Call(ctx, "node/info", nil, &out); err != nil {
			return fmt.Errorf("call node/info: %w", err)
		}
		if out.Fingerprint != w.nodeFP {
			return fmt.Errorf("call node/info: fingerprint %q, want %q", out.Fingerprint, w.nodeFP)
		}
		return nil
	case "ssh":
		return withCtx(ctx, func() error {
			sess, err := w.sshC.NewSession()
			if err != nil {
				return fmt.Errorf("ssh session: %w", err)
			}
			defer sess.Close()
			out, err := sess.Output("echo soak")
			if err != nil {
				return fmt.Errorf("ssh exec: %w", err)
			}
			if string(out) != "soak\n" {
				return fmt.Errorf("ssh exec: output %q, want %q", out, "soak\n")
			}
			return nil
		}, func() { _ = w.conn.Close(core.CodeOK, "operation timed out") })
	case "sftp":
		return withCtx(ctx, func() error {
			f, err := w.sftpC.Open("/" + loadFile)
			if err != nil {
				return fmt.Errorf("sftp open: %w", err)
			}
			defer f.Close()
			h := sha256.New()
			if _, err := io.Copy(h, f); err != nil {
				return fmt.Errorf("sftp read: %w", err)
			}
			if got := hex.EncodeToString(h.Sum(nil)); got != w.sum {
				return fmt.Errorf("sftp get: sha256 %s, want %s", got, w.sum)
			}
			return nil
		}, func() { _ = w.conn.Close(core.CodeOK, "operation timed out") })
	}
	return fmt.Errorf("unknown worker kind %q", w.kind)
}

func (w *worker) close() {
	if w.sftpC != nil {
		_ = w.sftpC.Close()
	}
	if w.sshC != nil {
		_ = w.sshC.Close()
	}
	if w.callP != nil {
		_ = w.callP.Close()
	} else if w.conn != nil {
		_ = w.conn.Close(core.CodeOK, "")
	}
}

// withCtx runs f, calling abort if ctx ends first (for clients whose calls
// take no context).
func withCtx(ctx context.Context, f func() error, abort func()) error {
	stop := context.AfterFunc(ctx, abort)
	err := f()
	if !stop() && err != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}

// pingOnce echoes size bytes on a new stream of an alknet/ping connection.
func pingOnce(ctx context.Context, conn core.Conn, size int) error {
	st, err := conn.OpenStream(ctx)
	if err != nil {
		return fmt.Errorf("ping open stream: %w", err)
	}
	defer st.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(dl)
	}
	msg := make([]byte, size)
	for i := range msg {
		msg[i] = byte(i)
	}
	if _, err := st.Write(msg); err != nil {
		return fmt.Errorf("ping write: %w", err)
	}
	if err := st.CloseWrite(); err != nil {
		return fmt.Errorf("ping close write: %w", err)
	}
	got, err := io.ReadAll(io.LimitReader(st, int64(size)+1))
	if err != nil {
		return fmt.Errorf("ping read: %w", err)
	}
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("ping: echo of %d bytes differs (got %d bytes)", size, len(got))
	}
	return nil
}

// rssSampler records the peak VmRSS/VmHWM of a process.
type rssSampler struct {
	peak atomic.Int64
	data atomic.Int64 // peak VmData
	stop chan struct{}
	done chan struct{}
}

func sampleRSS(pid int) *rssSampler {
	r := &rssSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			if rss, hwm, data, err := memStatus(pid); err == nil {
				r.peak.Store(max(r.peak.Load(), rss, hwm))
				r.data.Store(max(r.data.Load(), data))
			}
			select {
			case <-r.stop:
				return
			case <-t.C:
			}
		}
	}()
	return r
}

func (r *rssSampler) end() int64 {
	close(r.stop)
	<-r.done
	return r.peak.Load()
}

// dialAll runs connect for n workers with bounded parallelism.
func dialAll(ctx context.Context, n, parallel int, connect func(i int) error) *errCounter {
	errs := &errCounter{}
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := connect(i); err != nil {
				errs.add(err)
			}
		})
	}
	wg.Wait()
	return errs
}

// rowLoad: concurrent connections of mixed ALPNs, then idle connections.
func (s *suite) rowLoad(ctx context.Context) []result {
	return []result{s.loadMixed(ctx), s.loadIdle(ctx)}
}

func (s *suite) loadMixed(ctx context.Context) result {
	name := fmt.Sprintf("load: %d conns mixed ALPNs %s, think %s", s.k.loadConns, s.k.loadDuration, s.k.loadThink)
	data := filepath.Join(s.tmp, "load")
	fail1 := func(err error) result { return fail(name, "setup failed", err.Error()) }
	if _, err := s.initData(ctx, data); err != nil {
		return fail1(err)
	}
	sum, err := randomFile(filepath.Join(data, "files", loadFile), loadFileSize)
	if err != nil {
		return fail1(err)
	}
	nkeys := (s.k.loadConns + connsPerKey - 1) / connsPerKey
	pool, fps, err := newClientPool(nkeys)
	if err != nil {
		return fail1(err)
	}
	defer pool.close()
	if err := s.addPeers(ctx, data, "load", fps, "call", "ssh", "ssh:exec", "sftp"); err != nil {
		return fail1(err)
	}
	n, err := s.startNode(ctx, data, "127.0.0.1:0")
	if err != nil {
		return fail1(err)
	}
	defer n.kill9()
	addr, err := core.ParseAddr(n.addr)
	if err != nil {
		return fail1(err)
	}
	rss := sampleRSS(n.pid())

	workers := make([]*worker, s.k.loadConns)
	t0 := time.Now()
	connErrs := dialAll(ctx, s.k.loadConns, 32, func(i int) error {
		w := &worker{kind: workerKinds[i%len(workerKinds)], nodeFP: addr.ID.Fingerprint(), sum: sum}
		dctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		k := i % nkeys
		if err := w.connect(dctx, pool.eps[k], pool.keys[k], addr); err != nil {
			w.close()
			return err
		}
		workers[i] = w
		return nil
	})
	setup := time.Since(t0)
	logf("load: %d connections up in %s (%d errors)", s.k.loadConns-connErrs.count(), setup.Round(time.Millisecond), connErrs.count())

	lat := map[string]*latencies{}
	for _, k := range workerKinds {
		lat[k] = &latencies{}
	}
	all := &latencies{}
	opErrs := &errCounter{}
	var ops atomic.Int64
	runCtx, cancel := context.WithTimeout(ctx, s.k.loadDuration)
	var wg sync.WaitGroup
	for _, w := range workers {
		if w == nil {
			continue
		}
		wg.Go(func() {
			var mine []time.Duration
			for runCtx.Err() == nil {
				octx, ocancel := context.WithTimeout(ctx, 30*time.Second)
				t := time.Now()
				err := w.op(octx)
				d := time.Since(t)
				ocancel()
				if err != nil {
					if runCtx.Err() != nil && errors.Is(err, context.Canceled) {
						break
					}
					opErrs.add(fmt.Errorf("%s: %w", w.kind, err))
					if w.conn.Context().Err() != nil {
						return // the connection is gone; it counted as an error
					}
					continue
				}
				mine = append(mine, d)
				ops.Add(1)
				if s.k.loadThink > 0 {
					select {
					case <-runCtx.Done():
					case <-time.After(s.k.loadThink):
					}
				}
			}
			lat[w.kind].addAll(mine)
			all.addAll(mine)
		})
	}
	wg.Wait()
	cancel()
	alive := 0
	for _, w := range workers {
		if w != nil && w.conn.Context().Err() == nil {
			alive++
		}
	}
	for _, w := range workers {
		if w != nil {
			w.close()
		}
	}
	peak := rss.end()
	if !n.alive() {
		return fail(name, "serve died", lastLine(n.log.String()))
	}
	errsTotal := connErrs.count() + opErrs.count()
	figs := fmt.Sprintf("errors %d, ops %d (%.0f/s), p50 %s p99 %s, peak RSS %s, set-up %s",
		errsTotal, ops.Load(), float64(ops.Load())/s.k.loadDuration.Seconds(),
		ms(all.pct(0.5)), ms(all.pct(0.99)), mib(peak), setup.Round(100*time.Millisecond))
	var notes []string
	for _, k := range []string{"ping", "call", "ssh", "sftp"} {
		l := lat[k]
		notes = append(notes, fmt.Sprintf("%s: %d ops, p50 %s p99 %s", k, l.count(), ms(l.pct(0.5)), ms(l.pct(0.99))))
	}
	notes = append(notes, fmt.Sprintf("connections still open at the end: %d of %d", alive, s.k.loadConns))
	notes = append(notes, connErrs.notes()...)
	notes = append(notes, opErrs.notes()...)
	return verdict(errsTotal == 0 && alive == s.k.loadConns, name, figs, notes...)
}

func (s *suite) loadIdle(ctx context.Context) result {
	name := fmt.Sprintf("load: %d idle conns", s.k.idleConns)
	data := filepath.Join(s.tmp, "idle")
	fail1 := func(err error) result { return fail(name, "setup failed", err.Error()) }
	if _, err := s.initData(ctx, data); err != nil {
		return fail1(err)
	}
	nkeys := (s.k.idleConns + connsPerKey*3/2 - 1) / (connsPerKey * 3 / 2)
	pool, fps, err := newClientPool(nkeys)
	if err != nil {
		return fail1(err)
	}
	defer pool.close()
	if err := s.addPeers(ctx, data, "idle", fps, "call"); err != nil {
		return fail1(err)
	}
	// The default cap on known peers' connections is 4096: raise it for
	// the measurement, as an operator would in config.toml.
	limits := fmt.Sprintf("[limits]\nmax_conns = %d\n", s.k.idleConns+1024)
	if err := os.WriteFile(filepath.Join(data, "config.toml"), []byte(limits), 0o600); err != nil {
		return fail1(err)
	}
	n, err := s.startNode(ctx, data, "127.0.0.1:0")
	if err != nil {
		return fail1(err)
	}
	defer n.kill9()
	addr, err := core.ParseAddr(n.addr)
	if err != nil {
		return fail1(err)
	}
	// Warm up: one connection and a few echoes, so the baseline includes
	// what every server allocates on its first connection.
	if c, err := pool.eps[0].Dial(ctx, addr, core.PingALPN); err == nil {
		for range 3 {
			_ = pingOnce(ctx, c, 64)
		}
		_ = c.Close(core.CodeOK, "")
	}
	base, _, err := memKB(n.pid())
	if err != nil {
		return fail1(err)
	}
	conns := make([]core.Conn, s.k.idleConns)
	t0 := time.Now()
	// 24 dials at a time: quic-go refuses (CONNECTION_REFUSED) a finished
	// handshake while 32 connections already wait to be accepted, which a
	// burst of 64 can reach on two busy cores; this row measures memory,
	// not the connection rate.
	dialErrs := dialAll(ctx, s.k.idleConns, 24, func(i int) error {
		dctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		c, err := pool.eps[i%nkeys].Dial(dctx, addr, core.PingALPN)
		if err != nil {
			return err
		}
		conns[i] = c
		return nil
	})
	setup := time.Since(t0)
	// Refusals come as a close right after the handshake; give the last
	// ones a moment to arrive, then read the reasons.
	time.Sleep(2 * time.Second)
	open, refused := 0, &errCounter{}
	for _, c := range conns {
		if c == nil {
			continue
		}
		if c.Context().Err() == nil {
			open++
			continue
		}
		actx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := c.AcceptStream(actx)
		cancel()
		if ce, ok := core.AsCloseError(err); ok && ce.Reason != "" {
			refused.add(errors.New(ce.Reason))
		} else {
			refused.add(fmt.Errorf("closed: %v", err))
		}
	}
	rss, hwm, err := memKB(n.pid())
	if err != nil {
		return fail1(err)
	}
	for _, c := range conns {
		if c != nil {
			_ = c.Close(core.CodeOK, "")
		}
	}
	if !n.alive() {
		return fail(name, "serve died", lastLine(n.log.String()))
	}
	per := "n/a"
	if open > 0 {
		per = fmt.Sprintf("%.1fKiB", float64(rss-base)/float64(open))
	}
	figs := fmt.Sprintf("open %d/%d, RSS %s -> %s (peak %s), %s per idle conn, set-up %s",
		open, s.k.idleConns, mib(base), mib(rss), mib(hwm), per, setup.Round(100*time.Millisecond))
	notes := append(dialErrs.notes(), refused.notes()...)
	if open == s.k.idleConns {
		return pass(name, figs)
	}
	r := fail(name, figs, notes...)
	if dialErrs.count() == 0 && open > 0 && onlyLimitRefusals(refused) {
		r.status = statusLimit
		r.notes = append(r.notes, "serve refused connections over its [limits] max_conns or max_conns_per_peer")
	}
	return r
}

// onlyLimitRefusals reports whether every refusal was the node's
// connection limit.
func onlyLimitRefusals(e *errCounter) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.n == 0 {
		return false
	}
	limit := false
	for m := range e.first {
		switch {
		case strings.Contains(m, "too many connections"):
			limit = true
		case strings.Contains(m, "CONNECTION_REFUSED"):
		default:
			return false
		}
	}
	return limit && len(e.first) < 5
}

package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/core"
	"github.com/quic-go/quic-go"
)

// prober measures an authorized peer's ping round trips while an attack
// runs: most probes echo on one open connection, every fifth dials a new
// connection first, so that both serving and accepting are measured.
type prober struct {
	ep   *core.Endpoint
	addr core.Addr
	lat  latencies
	errs errCounter
	n    atomic.Int64
}

func (p *prober) run(ctx context.Context) {
	var conn core.Conn
	defer func() {
		if conn != nil {
			_ = conn.Close(core.CodeOK, "")
		}
	}()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.n.Add(1)
		pctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		start := time.Now()
		err := func() error {
			if i%5 == 0 || conn == nil || conn.Context().Err() != nil {
				if conn != nil {
					_ = conn.Close(core.CodeOK, "")
				}
				var err error
				if conn, err = p.ep.Dial(pctx, p.addr, core.PingALPN); err != nil {
					conn = nil
					return fmt.Errorf("dial: %w", err)
				}
			}
			return pingOnce(pctx, conn, 64)
		}()
		cancel()
		if err != nil {
			p.errs.add(err)
			continue
		}
		p.lat.add(time.Since(start))
	}
}

func (p *prober) figures() string {
	return fmt.Sprintf("authorized pings %d/%d ok, p50 %s p99 %s", int(p.n.Load())-p.errs.count(), p.n.Load(),
		ms(p.lat.pct(0.5)), ms(p.lat.pct(0.99)))
}

func (p *prober) ok() bool { return p.errs.count() == 0 && p.n.Load() > 0 }

// attackEnv is the node under attack and the authorized prober's endpoint.
type attackEnv struct {
	n        *node
	addr     core.Addr
	probe    *core.Endpoint
	attacker *clientPool // keys with scope call
	vmData   int64       // peak VmData (KiB) of the last phase
	// vmDataBase is VmData (KiB) at the start of the last phase.
	vmDataBase int64
}

// during runs attack for the attack duration while a prober measures, and
// returns the prober and the node's RSS before and at its peak (KiB); the
// peak VmData goes to env.vmData.
func (s *suite) during(ctx context.Context, env *attackEnv, attack func(ctx context.Context)) (*prober, int64, int64) {
	base, _, dataBase, _ := memStatus(env.n.pid())
	env.vmDataBase = dataBase
	rss := sampleRSS(env.n.pid())
	p := &prober{ep: env.probe, addr: env.addr}
	actx, cancel := context.WithTimeout(ctx, s.k.attackDuration)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { attack(actx) })
	wg.Go(func() { p.run(actx) })
	wg.Wait()
	peak := rss.end()
	env.vmData = rss.data.Load()
	return p, base, peak
}

// rowAttack: slow handshakes, stream floods and oversized call frames.
func (s *suite) rowAttack(ctx context.Context) []result {
	names := []string{
		fmt.Sprintf("attack: %d stalled handshakes %s", s.k.attackHandshakes, s.k.attackDuration),
		fmt.Sprintf("attack: stream flood, %d conns", s.k.attackFloodConns),
		"attack: oversized call frames",
	}
	data := filepath.Join(s.tmp, "attack")
	failAll := func(err error) []result {
		var rs []result
		for _, n := range names {
			rs = append(rs, fail(n, "setup failed", err.Error()))
		}
		return rs
	}
	if _, err := s.initData(ctx, data); err != nil {
		return failAll(err)
	}
	probeKey, err := core.GenerateSecretKey()
	if err != nil {
		return failAll(err)
	}
	attacker, afps, err := newClientPool(4)
	if err != nil {
		return failAll(err)
	}
	defer attacker.close()
	if err := s.addPeers(ctx, data, "prober", []string{probeKey.NodeID().Fingerprint()}, "call"); err != nil {
		return failAll(err)
	}
	if err := s.addPeers(ctx, data, "attacker", afps, "call"); err != nil {
		return failAll(err)
	}
	n, err := s.startNode(ctx, data, "127.0.0.1:0")
	if err != nil {
		return failAll(err)
	}
	defer n.kill9()
	addr, err := core.ParseAddr(n.addr)
	if err != nil {
		return failAll(err)
	}
	probe, err := core.NewEndpoint(core.Config{SecretKey: probeKey, ListenAddr: "127.0.0.1:0"})
	if err != nil {
		return failAll(err)
	}
	defer probe.Close()
	env := &attackEnv{n: n, addr: addr, probe: probe, attacker: attacker}
	// Each attack gets a freshly started node, so that its memory figures
	// are its own.
	var out []result
	for i, attack := range []func(context.Context, string, *attackEnv) result{s.attackHandshakes, s.attackStreams, s.attackFrames} {
		if i > 0 {
			if err := n.stop(); err != nil {
				out = append(out, fail(names[i], "serve did not stop", err.Error(), lastLine(n.log.String())))
				return out
			}
			if err := n.restart(ctx); err != nil {
				out = append(out, fail(names[i], "restart failed", err.Error()))
				return out
			}
		}
		out = append(out, attack(ctx, names[i], env))
	}
	return out
}

// stallConn is a UDP socket that sends but never delivers what it
// receives: a QUIC client behind it starts handshakes and never finishes
// them. It has no ReadMsgUDP, so quic-go reads through ReadFrom.
type stallConn struct {
	c      *net.UDPConn
	closed chan struct{}
	once   sync.Once
}

func (s *stallConn) ReadFrom([]byte) (int, net.Addr, error) {
	<-s.closed
	return 0, nil, net.ErrClosed
}
func (s *stallConn) WriteTo(b []byte, a net.Addr) (int, error) { return s.c.WriteTo(b, a) }
func (s *stallConn) Close() error {
	s.once.Do(func() { close(s.closed) })
	return s.c.Close()
}
func (s *stallConn) LocalAddr() net.Addr                { return s.c.LocalAddr() }
func (s *stallConn) SetDeadline(t time.Time) error      { return s.c.SetDeadline(t) }
func (s *stallConn) SetReadDeadline(t time.Time) error  { return nil }
func (s *stallConn) SetWriteDeadline(t time.Time) error { return s.c.SetWriteDeadline(t) }

func (s *suite) attackHandshakes(ctx context.Context, name string, env *attackEnv) result {
	const sockets = 16
	var started, finished atomic.Int64
	p, base, peak := s.during(ctx, env, func(ctx context.Context) {
		var trs []*quic.Transport
		var conns []*stallConn
		for range sockets {
			u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				continue
			}
			sc := &stallConn{c: u, closed: make(chan struct{})}
			conns = append(conns, sc)
			trs = append(trs, &quic.Transport{Conn: sc})
		}
		defer func() {
			// quic-go leaves a socket it did not create open and waits for
			// its read loop, so the sockets close first.
			for i, tr := range trs {
				_ = conns[i].Close()
				_ = tr.Close()
			}
		}()
		if len(trs) == 0 {
			return
		}
		target, err := net.ResolveUDPAddr("udp", env.n.host())
		if err != nil {
			return
		}
		tlsConf := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{core.PingALPN}, MinVersion: tls.VersionTLS13}
		qconf := &quic.Config{HandshakeIdleTimeout: s.k.attackDuration}
		// Spread the handshakes over the first half of the phase, so that
		// the second half runs with all of them pending.
		every := s.k.attackDuration / 2 / time.Duration(max(s.k.attackHandshakes, 1))
		var wg sync.WaitGroup
		t := time.NewTicker(max(every, 50*time.Microsecond))
		defer t.Stop()
		for i := range s.k.attackHandshakes {
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			if ctx.Err() != nil {
				break
			}
			started.Add(1)
			wg.Go(func() {
				c, err := trs[i%len(trs)].Dial(ctx, target, tlsConf, qconf)
				if err == nil {
					finished.Add(1)
					_ = c.CloseWithError(0, "")
				}
			})
		}
		<-ctx.Done()
		wg.Wait()
	})
	figs := fmt.Sprintf("%d started, %d completed; %s; RSS %s -> peak %s", started.Load(), finished.Load(), p.figures(), mib(base), mib(peak))
	return verdict(p.ok() && finished.Load() == 0 && env.n.alive(), name, figs, p.errs.notes()...)
}

// streamLimit is serve's documented default of concurrent streams per
// connection (core.Config.MaxIncomingStreams).
const streamLimit = 256

// openLimit bounds the streams one flooding connection can open in all:
// QUIC's credit of streamLimit at a time, plus the 64 streams over the
// anonymous cap (8) that core resets before it closes the connection.
const openLimit = streamLimit + 64 + 8

func (s *suite) attackStreams(ctx context.Context, name string, env *attackEnv) result {
	var maxPer, total, hitLimit, refused atomic.Int64
	connErrs, refusals := &errCounter{}, &errCounter{}
	p, base, peak := s.during(ctx, env, func(ctx context.Context) {
		// Unknown keys: the flood comes from callers the node does not know.
		pool, _, err := newClientPool(max(1, s.k.attackFloodConns/16))
		if err != nil {
			connErrs.add(err)
			return
		}
		defer pool.close()
		var wg sync.WaitGroup
		for i := range s.k.attackFloodConns {
			wg.Go(func() {
				conn, err := pool.eps[i%len(pool.eps)].Dial(ctx, env.addr, core.PingALPN)
				if err != nil {
					connErrs.add(err)
					return
				}
				defer conn.Close(core.CodeOK, "")
				opened := int64(0)
				for ctx.Err() == nil {
					octx, cancel := context.WithTimeout(ctx, time.Second)
					st, err := conn.OpenStream(octx)
					cancel()
					if err != nil {
						if ce, ok := core.AsCloseError(err); ok && ce.Remote {
							// The node closed the connection: a cap on
							// connections from unknown callers.
							refused.Add(1)
							refusals.add(fmt.Errorf("refused: %s", ce.Reason))
						} else if errors.Is(err, context.DeadlineExceeded) {
							hitLimit.Add(1)
						} else if ctx.Err() == nil {
							connErrs.add(err)
						}
						break
					}
					opened++
					total.Add(1)
					_, _ = st.Write([]byte{1}) // the echo side now holds the stream open
				}
				for {
					cur := maxPer.Load()
					if opened <= cur || maxPer.CompareAndSwap(cur, opened) {
						break
					}
				}
				<-ctx.Done()
			})
		}
		wg.Wait()
	})
	figs := fmt.Sprintf("%d streams opened, at most %d per conn (bound %d); of %d conns %d stopped at the stream limit, %d closed by the node; %s; RSS %s -> peak %s",
		total.Load(), maxPer.Load(), openLimit, s.k.attackFloodConns, hitLimit.Load(), refused.Load(), p.figures(), mib(base), mib(peak))
	ok := p.ok() && maxPer.Load() <= openLimit && hitLimit.Load()+refused.Load() == int64(s.k.attackFloodConns) && env.n.alive()
	notes := append(p.errs.notes(), connErrs.notes()...)
	return verdict(ok, name, figs, append(notes, refusals.notes()...)...)
}

// maxAttackRSSGrowthKB bounds the node's RSS growth under the oversized
// frame attack, and maxAttackDataGrowthKB its growth of reserved heap
// (VmData): the attack sends 192 MiB in all, so a node that allocates only
// for bytes that arrived stays far below either.
const (
	maxAttackRSSGrowthKB  = 512 << 10
	maxAttackDataGrowthKB = 1 << 20
)

func (s *suite) attackFrames(ctx context.Context, name string, env *attackEnv) result {
	var rejected atomic.Int64
	var rejectMsg atomic.Value
	var held atomic.Int64
	attackErrs := &errCounter{}
	p, base, peak := s.during(ctx, env, func(ctx context.Context) {
		var wg sync.WaitGroup
		// 1. A frame over the 64 MiB limit: the node must refuse it with
		//    INVALID_INPUT without reading the body.
		wg.Go(func() {
			conn, err := env.attacker.eps[0].Dial(ctx, env.addr, call.ALPN)
			if err != nil {
				attackErrs.add(fmt.Errorf("dial: %w", err))
				return
			}
			defer conn.Close(core.CodeOK, "")
			for ctx.Err() == nil {
				msg, err := oversizedFrame(ctx, conn, call.MaxFrameSize+1)
				if err != nil {
					if ctx.Err() == nil {
						attackErrs.add(err)
					}
					return
				}
				rejectMsg.Store(msg)
				rejected.Add(1)
				if rejected.Load() >= 100 {
					return
				}
			}
		})
		// 2. Frames that declare the largest allowed body and then send
		//    only part of it, on many streams of several connections: the
		//    node must not reserve what is only announced.
		for k := range env.attacker.eps[1:] {
			wg.Go(func() {
				conn, err := env.attacker.eps[1+k].Dial(ctx, env.addr, call.ALPN)
				if err != nil {
					attackErrs.add(fmt.Errorf("dial: %w", err))
					return
				}
				defer conn.Close(core.CodeOK, "")
				var inner sync.WaitGroup
				for range 64 {
					octx, cancel := context.WithTimeout(ctx, 2*time.Second)
					st, err := conn.OpenStream(octx)
					cancel()
					if err != nil {
						break
					}
					held.Add(1)
					inner.Go(func() {
						defer st.Close()
						var hdr [4]byte
						binary.BigEndian.PutUint32(hdr[:], call.MaxFrameSize)
						if _, err := st.Write(hdr[:]); err != nil {
							return
						}
						chunk := bytes.Repeat([]byte{' '}, 64<<10)
						for range 16 { // 1 MiB of the announced 64 MiB
							if _, err := st.Write(chunk); err != nil {
								return
							}
						}
						<-ctx.Done()
					})
				}
				inner.Wait()
			})
		}
		wg.Wait()
	})
	msg, _ := rejectMsg.Load().(string)
	growth := peak - base
	figs := fmt.Sprintf("%d over-limit frames refused; %d streams announcing 64MiB held, RSS %s -> peak %s, VmData %s -> peak %s; %s",
		rejected.Load(), held.Load(), mib(base), mib(peak), mib(env.vmDataBase), mib(env.vmData), p.figures())
	notes := append(p.errs.notes(), attackErrs.notes()...)
	if msg != "" {
		notes = append(notes, "refusal: "+msg)
	}
	dataGrowth := env.vmData - env.vmDataBase
	ok := p.ok() && rejected.Load() > 0 && bytes.Contains([]byte(msg), []byte("INVALID_INPUT")) &&
		growth <= maxAttackRSSGrowthKB && dataGrowth <= maxAttackDataGrowthKB && env.n.alive()
	if growth > maxAttackRSSGrowthKB {
		notes = append(notes, fmt.Sprintf("RSS grew by %s, over the %s bound", mib(growth), mib(maxAttackRSSGrowthKB)))
	}
	if dataGrowth > maxAttackDataGrowthKB {
		notes = append(notes, fmt.Sprintf("VmData grew by %s (bound %s): the node allocates announced frame bodies before their bytes arrive",
			mib(dataGrowth), mib(maxAttackDataGrowthKB)))
	}
	return verdict(ok, name, figs, notes...)
}

// oversizedFrame sends a frame header declaring size bytes on a new stream
// and returns the node's answer (the first frame's body), which must come
// without the body being sent.
func oversizedFrame(ctx context.Context, conn core.Conn, size uint32) (string, error) {
	octx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := conn.OpenStream(octx)
	if err != nil {
		return "", fmt.Errorf("open stream: %w", err)
	}
	defer st.Close()
	_ = st.SetDeadline(time.Now().Add(5 * time.Second))
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], size)
	if _, err := st.Write(hdr[:]); err != nil {
		return "", fmt.Errorf("write header: %w", err)
	}
	if _, err := io.ReadFull(st, hdr[:]); err != nil {
		return "", fmt.Errorf("no answer to a %d-byte frame header: %w", size, err)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > 64<<10 {
		return "", fmt.Errorf("answer frame of %d bytes", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(st, body); err != nil {
		return "", fmt.Errorf("read answer: %w", err)
	}
	return string(body), nil
}

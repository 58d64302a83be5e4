package mix

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alkdev/alknet/core"
)

// Stats are a node's counters since it started.
type Stats struct {
	Received      uint64 // packets read from the network or HandlePacket
	Relayed       uint64 // packets forwarded to the next hop
	Delivered     uint64 // envelopes handed to Deliver successfully
	LoopsSent     uint64 // loop cover packets sent
	DropsSent     uint64 // drop cover packets sent
	LoopsReceived uint64 // own loop packets come back
	DropsReceived uint64 // drop cover packets ended here

	DroppedInvalid   uint64 // wrong size or version, bad MAC or routing, corrupt payload
	DroppedEpoch     uint64 // epoch outside the accepted window
	DroppedReplay    uint64 // tag seen before in its epoch
	DroppedQueueFull uint64 // delay queue at MaxQueue
	DroppedSendFull  uint64 // released but SendQueue full
	DroppedUnknown   uint64 // next hop not in the directory
	DroppedForward   uint64 // next hop unreachable or refused
	DroppedDeliver   uint64 // no Deliver, or Deliver failed
	DroppedInternal  uint64 // replay cache failure

	Queued int // packets in the delay queue now
}

type counters struct {
	received, relayed, delivered                       atomic.Uint64
	loopsSent, dropsSent, loopsReceived, dropsReceived atomic.Uint64
	invalid, epoch, replay, queueFull, sendFull        atomic.Uint64
	unknown, forward, deliver, internal                atomic.Uint64
}

// Node is a mix node: a ProtocolHandler for ALPN that peels, delays and
// forwards packets. Run must be running for packets to leave the queue.
type Node struct {
	cfg   Config
	self  core.NodeID
	log   *slog.Logger
	q     *delayQueue
	sendq chan *job
	c     counters

	keyMu sync.Mutex
	keys  map[uint32]*MixKey

	randMu sync.Mutex // cfg.Rand may not be safe for concurrent use

	running atomic.Bool
}

// New returns a node for cfg.
func New(cfg Config) (*Node, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Node{
		cfg:   cfg,
		self:  cfg.Key.NodeID(),
		log:   cfg.Logger,
		q:     newDelayQueue(cfg.MaxQueue),
		sendq: make(chan *job, cfg.SendQueue),
		keys:  make(map[uint32]*MixKey),
	}, nil
}

// ALPN implements core.ProtocolHandler.
func (n *Node) ALPN() []string { return []string{ALPN} }

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	c := &n.c
	return Stats{
		Received: c.received.Load(), Relayed: c.relayed.Load(), Delivered: c.delivered.Load(),
		LoopsSent: c.loopsSent.Load(), DropsSent: c.dropsSent.Load(),
		LoopsReceived: c.loopsReceived.Load(), DropsReceived: c.dropsReceived.Load(),
		DroppedInvalid: c.invalid.Load(), DroppedEpoch: c.epoch.Load(), DroppedReplay: c.replay.Load(),
		DroppedQueueFull: c.queueFull.Load(), DroppedSendFull: c.sendFull.Load(),
		DroppedUnknown: c.unknown.Load(), DroppedForward: c.forward.Load(),
		DroppedDeliver: c.deliver.Load(), DroppedInternal: c.internal.Load(),
		Queued: n.q.len(),
	}
}

// KeyRecord returns this node's signed mix key record for epoch e.
func (n *Node) KeyRecord(e uint32) KeyRecord {
	return SignKeyRecord(n.cfg.Key, n.cfg.EpochPeriod, e)
}

// mixKey returns the private mix key for epoch e when e is in the window
// of accepted epochs at now.
func (n *Node) mixKey(e uint32, now time.Time) (*MixKey, error) {
	cur := Epoch(now, n.cfg.EpochPeriod)
	ok := e == cur ||
		(e+1 == cur && now.Before(EpochStart(cur, n.cfg.EpochPeriod).Add(n.cfg.Grace))) ||
		(e == cur+1 && !now.Before(EpochStart(e, n.cfg.EpochPeriod).Add(-n.cfg.Grace)))
	if !ok {
		return nil, fmt.Errorf("%w: epoch %d, now %d", ErrEpoch, e, cur)
	}
	n.keyMu.Lock()
	defer n.keyMu.Unlock()
	if k := n.keys[e]; k != nil {
		return k, nil
	}
	for old := range n.keys {
		if old+1 < cur {
			delete(n.keys, old)
		}
	}
	k := DeriveMixKey(n.cfg.Key, n.cfg.EpochPeriod, e)
	n.keys[e] = k
	return k, nil
}

// Status codes a node answers a packet with (SPEC.md, "Streams").
const (
	StatusQueued   byte = 0
	StatusSize     byte = 1
	StatusEpoch    byte = 2
	StatusInvalid  byte = 3
	StatusReplay   byte = 4
	StatusBusy     byte = 5
	StatusInternal byte = 6
)

// statusOf maps a HandlePacket error to its status code.
func statusOf(err error) byte {
	switch {
	case err == nil:
		return StatusQueued
	case errors.Is(err, ErrPacketSize), errors.Is(err, ErrVersion):
		return StatusSize
	case errors.Is(err, ErrEpoch):
		return StatusEpoch
	case errors.Is(err, ErrReplay):
		return StatusReplay
	case errors.Is(err, ErrQueueFull):
		return StatusBusy
	case errors.Is(err, ErrBadMAC), errors.Is(err, ErrBadElement), errors.Is(err, ErrRouting),
		errors.Is(err, ErrPayloadCorrupt), errors.Is(err, ErrNoDeliver):
		return StatusInvalid
	}
	return StatusInternal
}

// HandlePacket peels one layer off pkt (which it takes ownership of) and
// queues the result for its delay. The error says why a packet was
// dropped; every drop is counted.
func (n *Node) HandlePacket(ctx context.Context, pkt []byte) error {
	n.c.received.Add(1)
	err := n.handle(ctx, pkt)
	if err != nil {
		switch statusOf(err) {
		case StatusInvalid:
			if errors.Is(err, ErrNoDeliver) {
				n.c.deliver.Add(1)
			} else {
				n.c.invalid.Add(1)
			}
		case StatusSize:
			n.c.invalid.Add(1)
		case StatusEpoch:
			n.c.epoch.Add(1)
		case StatusReplay:
			n.c.replay.Add(1)
		case StatusBusy:
			n.c.queueFull.Add(1)
		default:
			n.c.internal.Add(1)
		}
		n.log.Debug("mix packet dropped", "err", err)
	}
	return err
}

func (n *Node) handle(ctx context.Context, pkt []byte) error {
	e, err := PacketEpoch(pkt)
	if err != nil {
		return err
	}
	now := n.cfg.Now()
	k, err := n.mixKey(e, now)
	if err != nil {
		return err
	}
	u, err := Unwrap(&k.private, pkt, func(epoch uint32, tag [TagSize]byte) error {
		dup, err := n.cfg.Replay.Seen(ctx, epoch, tag)
		if err != nil {
			return err
		}
		if dup {
			return ErrReplay
		}
		return nil
	})
	if err != nil {
		return err
	}
	switch u.Routing.Command {
	case Drop:
		n.c.dropsReceived.Add(1)
		return nil
	case Loop:
		if u.Routing.Node == n.self {
			n.c.loopsReceived.Add(1)
		} else {
			n.c.dropsReceived.Add(1)
		}
		return nil
	case Deliver:
		if n.cfg.Deliver == nil {
			return ErrNoDeliver
		}
	}
	d := min(u.Routing.Delay, n.cfg.MaxDelay)
	t := time.Now()
	j := &job{at: t.Add(d), queued: t, epoch: e, routing: u.Routing, packet: u.Packet, message: u.Message}
	if !n.q.push(j) {
		return ErrQueueFull
	}
	return nil
}

// ServeConn implements core.ProtocolHandler: each stream carries one
// packet and gets one status byte back.
func (n *Node) ServeConn(ctx context.Context, conn core.Conn) error {
	if !n.cfg.Open && !conn.Identity().HasScope(Scope) {
		_ = conn.Close(uint64(core.CodeForbidden), "scope mix required")
		return fmt.Errorf("%w: peer %s lacks scope %s", core.ErrForbidden, conn.RemoteID(), Scope)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		s, err := conn.AcceptStream(ctx)
		if err != nil {
			return nil
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.serveStream(ctx, s)
		}()
	}
}

func (n *Node) serveStream(ctx context.Context, s core.Stream) {
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(n.cfg.ReadTimeout))
	pkt := make([]byte, PacketSize)
	var err error
	if _, rerr := io.ReadFull(s, pkt); rerr != nil {
		err = fmt.Errorf("%w: %v", ErrPacketSize, rerr)
		n.c.received.Add(1)
		n.c.invalid.Add(1)
	} else if m, _ := s.Read(make([]byte, 1)); m != 0 {
		err = fmt.Errorf("%w: bytes after the packet", ErrPacketSize)
		n.c.received.Add(1)
		n.c.invalid.Add(1)
	} else {
		err = n.HandlePacket(ctx, pkt)
	}
	_, _ = s.Write([]byte{statusOf(err)})
	_ = s.CloseWrite()
}

// Run releases queued packets at their time, sends cover traffic and
// forgets old replay tags, until ctx is done. It returns after its
// goroutines have stopped.
func (n *Node) Run(ctx context.Context) error {
	if !n.running.CompareAndSwap(false, true) {
		return errors.New("alknet/mix: Run called twice")
	}
	var wg sync.WaitGroup
	for range n.cfg.Workers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case j := <-n.sendq:
					n.send(ctx, j)
				}
			}
		})
	}
	wg.Go(func() {
		n.q.run(ctx, func(j *job) {
			select {
			case n.sendq <- j:
			default:
				n.c.sendFull.Add(1)
				n.log.Warn("mix send queue full: packet dropped")
			}
		})
	})
	if n.cfg.LoopRate > 0 {
		wg.Go(func() { n.cover(ctx, Loop, n.cfg.LoopRate) })
	}
	if n.cfg.DropRate > 0 {
		wg.Go(func() { n.cover(ctx, Drop, n.cfg.DropRate) })
	}
	wg.Go(func() { n.forgetLoop(ctx) })
	wg.Wait()
	return nil
}

// send forwards or delivers a released job.
func (n *Node) send(ctx context.Context, j *job) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.SendTimeout)
	defer cancel()
	switch j.routing.Command {
	case Relay:
		dir := n.cfg.Directory()
		var next DirNode
		ok := false
		if dir != nil {
			next, ok = dir.Node(j.routing.Node)
		}
		if !ok {
			n.c.unknown.Add(1)
			n.log.Warn("mix next hop not in directory: packet dropped", "peer", j.routing.Node.String())
			return
		}
		if err := n.cfg.Forwarder.Send(ctx, next.NodeAddr(), j.packet); err != nil {
			n.c.forward.Add(1)
			n.log.Warn("mix forward failed: packet dropped", "peer", j.routing.Node.String(), "err", err)
			return
		}
		n.c.relayed.Add(1)
	case Deliver:
		d := Delivery{Recipient: j.routing.Node, Addr: j.message.Addr, Envelope: j.message.Envelope}
		if err := n.cfg.Deliver(ctx, d); err != nil {
			n.c.deliver.Add(1)
			n.log.Warn("mix delivery failed", "peer", j.routing.Node.String(), "err", err)
			return
		}
		n.c.delivered.Add(1)
	}
}

// forgetLoop drops replay tags of epochs that can no longer be accepted.
func (n *Node) forgetLoop(ctx context.Context) {
	t := time.NewTicker(max(n.cfg.EpochPeriod/8, time.Second))
	defer t.Stop()
	var done uint32
	for {
		cur := Epoch(n.cfg.Now(), n.cfg.EpochPeriod)
		if cur > 1 && cur-1 > done {
			if err := n.cfg.Replay.Forget(ctx, cur-1); err != nil {
				n.log.Warn("mix forget replay tags", "err", err)
			} else {
				done = cur - 1
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (n *Node) random() io.Reader { return lockedReader{&n.randMu, n.cfg.Rand} }

type lockedReader struct {
	mu *sync.Mutex
	r  io.Reader
}

func (l lockedReader) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return io.ReadFull(l.r, p)
}

// cover sends cover packets of kind (Loop or Drop) as a Poisson process
// of rate per second.
func (n *Node) cover(ctx context.Context, kind Command, rate float64) {
	mean := time.Duration(float64(time.Second) / rate)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wait, err := ExpDelay(n.random(), mean)
		if err != nil {
			n.log.Warn("mix cover traffic stopped", "err", err)
			return
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		if err := n.sendCover(ctx, kind); err != nil {
			n.log.Debug("mix cover packet not sent", "err", err)
			continue
		}
		if kind == Loop {
			n.c.loopsSent.Add(1)
		} else {
			n.c.dropsSent.Add(1)
		}
	}
}

func (n *Node) sendCover(ctx context.Context, kind Command) error {
	dir := n.cfg.Directory()
	if dir == nil {
		return fmt.Errorf("%w: no directory", ErrRoute)
	}
	opts := WrapOptions{Rand: n.random(), Now: n.cfg.Now()}
	final := Routing{Command: Drop}
	if kind == Loop {
		self, ok := dir.Node(n.self)
		if !ok {
			return fmt.Errorf("%w: this node is not in the directory", ErrRoute)
		}
		opts.Extra = []DirNode{self}
		final = Routing{Command: Loop, Node: n.self}
	}
	pkt, first, err := wrap(dir, opts, final, Message{})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.SendTimeout)
	defer cancel()
	return n.cfg.Forwarder.Send(ctx, first.NodeAddr(), pkt)
}

var _ core.ProtocolHandler = (*Node)(nil)

package call

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/alkdev/alknet/core"
)

// Route chooses which attached peer serves a forwarded call.
type Route struct{ peer string }

// Any routes to any peer that serves the operation (round robin).
func Any() Route { return Route{} }

// Specific routes to the peer attached under peerID.
func Specific(peerID string) Route { return Route{peer: peerID} }

type routeKey struct{}

// WithRoute returns ctx whose forwarded calls (Registry.Call on an imported
// operation) take route r. Calls from the wire use Any.
func WithRoute(ctx context.Context, r Route) context.Context {
	return context.WithValue(ctx, routeKey{}, r)
}

func routeFrom(ctx context.Context) Route {
	r, _ := ctx.Value(routeKey{}).(Route)
	return r
}

// ImportOptions control how Hub.Attach imports a peer's operations.
type ImportOptions struct {
	// Access is this hub's own gate on every imported operation, checked
	// against the hub's caller. Nil means {RequiredScopes: ["call"]}. The
	// access the peer declares for an operation is checked as well (with
	// the same scope names, against this hub's peer table): a peer can
	// narrow what the hub exposes, never widen it.
	Access *core.AccessControl
	// Prefix is put in front of every imported name ("spoke1/" makes
	// "work/run" reachable as "spoke1/work/run"). Empty keeps the names, and
	// peers serving the same name share it.
	Prefix string
}

// Limits on what a hub takes from a peer: the peer is not trusted to keep
// its descriptions small.
const (
	// MaxImports is the most operations Attach imports from one peer.
	MaxImports = 1024
	// MaxSchemaSize is the largest services/schema answer Attach accepts,
	// in bytes.
	MaxSchemaSize = 64 << 10
	// MaxSchemaDepth is the deepest nesting of JSON arrays and objects
	// Attach accepts in a services/schema answer.
	MaxSchemaDepth = 32
)

// Hub imports the operations of connected peers into a local registry and
// forwards calls to them. The hub authenticates to each peer as itself; the
// peer authorizes the hub, and sees the hub's caller only as forwarded_for.
type Hub struct {
	reg *Registry
	log *slog.Logger

	mu        sync.Mutex
	peers     map[string]*hubPeer
	providers map[string][]string // local name -> peer ids, in attach order
	rr        atomic.Uint64
	wg        sync.WaitGroup
	closed    bool
	changedCh chan struct{} // closed and replaced on every attach and detach
}

type hubPeer struct {
	id    string
	p     *Peer
	names map[string]string // local name -> name on the peer
	stop  chan struct{}
}

// NewHub returns a hub that registers imported operations in reg. logger
// nil is silent.
func NewHub(reg *Registry, logger *slog.Logger) *Hub {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Hub{reg: reg, log: logger, peers: map[string]*hubPeer{}, providers: map[string][]string{}, changedCh: make(chan struct{})}
}

// changed returns a channel closed at the next attach or detach.
func (h *Hub) changed() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.changedCh
}

func (h *Hub) notifyLocked() {
	close(h.changedCh)
	h.changedCh = make(chan struct{})
}

// Attach imports the external operations p lets this hub use
// (services/list, then services/schema for each) under peerID. Attaching a
// peerID again (after a reconnect) replaces its previous import. The import
// is dropped when p's connection closes. A name already served locally is
// not imported. It returns the number of operations imported.
func (h *Hub) Attach(ctx context.Context, peerID string, p *Peer, opts ImportOptions) (int, error) {
	if peerID == "" {
		return 0, errors.New("alknet/call: attach: empty peer id")
	}
	list, err := p.Services(ctx)
	if err != nil {
		return 0, fmt.Errorf("import from %s: %w", peerID, err)
	}
	if len(list) > MaxImports {
		h.log.Warn("import truncated", "peer", peerID, "ops", len(list), "limit", MaxImports)
		list = list[:MaxImports]
	}
	specs := make([]Spec, 0, len(list))
	for _, s := range list {
		if strings.HasPrefix(s.Name, "services/") {
			continue
		}
		spec, err := fetchSchema(ctx, p, s.Name)
		if err != nil {
			h.log.Warn("import without schema", "peer", peerID, "op", clip(s.Name), "err", err)
			spec = Spec{Name: s.Name, Kind: s.Kind, Description: clip(s.Description), Access: s.Access}
		}
		specs = append(specs, spec)
	}
	gate := core.AccessControl{RequiredScopes: []string{"call"}}
	if opts.Access != nil {
		gate = *opts.Access
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return 0, errors.New("alknet/call: hub closed")
	}
	if old, ok := h.peers[peerID]; ok {
		h.detachLocked(old)
	}
	hp := &hubPeer{id: peerID, p: p, names: map[string]string{}, stop: make(chan struct{})}
	for _, spec := range specs {
		local := opts.Prefix + spec.Name
		if e, ok := h.reg.lookup(local); ok {
			if e.owner != h {
				h.log.Warn("import skipped: served locally", "peer", peerID, "op", local)
				continue
			}
		} else {
			e := newEntry(local, spec.Kind, Options{Description: spec.Description, Access: spec.Access.control(), Errors: spec.Errors}, spec.Input, spec.Output, nil)
			e.fn = h.forwarder(e)
			e.owner = h
			e.gate = &gate
			if err := h.reg.add(e); err != nil {
				h.log.Warn("import skipped", "peer", peerID, "op", local, "err", err)
				continue
			}
		}
		hp.names[local] = spec.Name
		h.providers[local] = append(h.providers[local], peerID)
	}
	h.peers[peerID] = hp
	h.wg.Go(func() {
		select {
		case <-p.Done():
			h.detach(hp)
		case <-hp.stop:
		}
	})
	h.notifyLocked()
	h.log.Info("peer attached", "peer", peerID, "ops", len(hp.names))
	return len(hp.names), nil
}

// fetchSchema calls services/schema for name and decodes the answer once
// it is known to be within MaxSchemaSize and MaxSchemaDepth.
func fetchSchema(ctx context.Context, p *Peer, name string) (Spec, error) {
	var raw json.RawMessage
	if err := p.Call(ctx, "services/schema", SchemaInput{Name: name}, &raw); err != nil {
		return Spec{}, err
	}
	if len(raw) > MaxSchemaSize {
		return Spec{}, fmt.Errorf("%w: %d bytes (limit %d)", ErrSchemaTooLarge, len(raw), MaxSchemaSize)
	}
	if d := jsonDepth(raw); d > MaxSchemaDepth {
		return Spec{}, fmt.Errorf("%w: nested %d deep (limit %d)", ErrSchemaTooLarge, d, MaxSchemaDepth)
	}
	var spec Spec
	if err := json.Unmarshal(raw, &spec); err != nil {
		return Spec{}, fmt.Errorf("decode schema of %s: %w", clip(name), err)
	}
	if spec.Name != name {
		return Spec{}, fmt.Errorf("schema names %q, not %q", clip(spec.Name), clip(name))
	}
	return spec, nil
}

// jsonDepth returns the deepest nesting of arrays and objects in valid
// JSON b, skipping strings.
func jsonDepth(b []byte) int {
	depth, deepest, inString, escaped := 0, 0, false, false
	for _, c := range b {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}

// Detach drops the operations imported from peerID.
func (h *Hub) Detach(peerID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if hp, ok := h.peers[peerID]; ok {
		h.detachLocked(hp)
	}
}

// Peers returns the ids of the attached peers, sorted.
func (h *Hub) Peers() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	ids := make([]string, 0, len(h.peers))
	for id := range h.peers {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Close detaches every peer and waits for the hub's goroutines.
func (h *Hub) Close() error {
	h.mu.Lock()
	h.closed = true
	for _, hp := range h.peers {
		h.detachLocked(hp)
	}
	h.mu.Unlock()
	h.wg.Wait()
	return nil
}

func (h *Hub) detach(hp *hubPeer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.detachLocked(hp)
}

// detachLocked removes hp if it is still the attached instance of its id.
func (h *Hub) detachLocked(hp *hubPeer) {
	if h.peers[hp.id] != hp {
		return
	}
	delete(h.peers, hp.id)
	close(hp.stop)
	for local := range hp.names {
		ids := slices.DeleteFunc(h.providers[local], func(id string) bool { return id == hp.id })
		if len(ids) == 0 {
			delete(h.providers, local)
			h.reg.remove(local, h)
		} else {
			h.providers[local] = ids
		}
	}
	h.notifyLocked()
	h.log.Info("peer detached", "peer", hp.id)
}

// pick chooses the peer for one forwarded call.
func (h *Hub) pick(local string, r Route) (*hubPeer, string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ids := h.providers[local]
	if r.peer != "" {
		if hp, ok := h.peers[r.peer]; ok {
			if remote, ok := hp.names[local]; ok {
				return hp, remote, nil
			}
		}
		return nil, "", NewError(CodeNotFound, "peer %s does not serve %s", r.peer, local)
	}
	if len(ids) == 0 {
		return nil, "", NewError(CodeNotFound, "no peer serves %s", local)
	}
	hp := h.peers[ids[int(h.rr.Add(1)-1)%len(ids)]]
	return hp, hp.names[local], nil
}

// forwarder is the handler of an imported operation: it calls the chosen
// peer with the caller's identity as forwarded_for and relays every output.
// ctx is the call's context, so aborting the call here aborts it there.
func (h *Hub) forwarder(e *entry) handlerFunc {
	local := e.spec.Name
	return func(ctx context.Context, raw json.RawMessage, emit func(any) error) error {
		hp, remote, err := h.pick(local, routeFrom(ctx))
		if err != nil {
			return err
		}
		fwd := forwardedFrom(CallerFromContext(ctx).subject())
		err = hp.p.run(ctx, remote, raw, fwd, func(out json.RawMessage) error { return emit(out) })
		var ce *Error
		if errors.As(err, &ce) && ce.RemoteCode != "" && e.declared[ce.RemoteCode] {
			c := *ce
			c.Code = ce.RemoteCode
			return &c
		}
		return err
	}
}

package fs

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alkdev/alknet/core"
)

// DefaultMaxBlobSize bounds the size a node may declare for a blob a
// Client fetches, when FetchOptions.MaxSize is zero (1 TiB).
const DefaultMaxBlobSize = 1 << 40

// Client speaks alknet/fs over a connection. Requests run on streams
// that are kept open and reused one request at a time (up to 16 idle, for
// 10 seconds), so many small requests cost no stream set-up, and over a
// TCP+TLS connection no new connection each. A Client is safe for
// concurrent use. Everything it reads from a blob is verified against the
// hash before it is handed on: a node cannot make it accept or write a byte
// that does not belong to the blob.
type Client struct {
	conn core.Conn

	mu     sync.Mutex
	idle   []*pooled
	closed bool
}

// Stream reuse limits.
const (
	maxIdleStreams = 16
	idleStreamAge  = 10 * time.Second
)

// pooled is a stream between requests.
type pooled struct {
	st   core.Stream
	r    *bufio.Reader
	n    *atomic.Int64 // bytes read from the stream
	used time.Time
}

// NewClient returns a client over conn, a connection that negotiated ALPN.
func NewClient(conn core.Conn) *Client { return &Client{conn: conn} }

// Dial connects ep to the node at addr on ALPN and returns a client; Close
// closes the connection.
func Dial(ctx context.Context, ep *core.Endpoint, addr core.Addr) (*Client, error) {
	conn, err := ep.Dial(ctx, addr, ALPN)
	if err != nil {
		return nil, err
	}
	return NewClient(conn), nil
}

// Conn returns the client's connection.
func (c *Client) Conn() core.Conn { return c.conn }

// Close closes the idle streams and the connection.
func (c *Client) Close() error {
	c.mu.Lock()
	idle := c.idle
	c.idle, c.closed = nil, true
	c.mu.Unlock()
	for _, p := range idle {
		p.close()
	}
	return c.conn.Close(core.CodeOK, "")
}

func (p *pooled) close() {
	_ = p.st.Close()
	p.r.Reset(nil)
	clientReaders.Put(p.r)
}

// stream returns an idle stream used within maxAge, or a new one; reused
// says which.
func (c *Client) stream(ctx context.Context, maxAge time.Duration) (p *pooled, reused bool, err error) {
	c.mu.Lock()
	for len(c.idle) > 0 {
		p := c.idle[len(c.idle)-1]
		c.idle = c.idle[:len(c.idle)-1]
		if time.Since(p.used) < maxAge {
			c.mu.Unlock()
			return p, true, nil
		}
		c.mu.Unlock()
		p.close()
		c.mu.Lock()
	}
	c.mu.Unlock()
	p, err = c.newStream(ctx)
	return p, false, err
}

func (c *Client) newStream(ctx context.Context) (*pooled, error) {
	st, err := c.conn.OpenStream(ctx)
	if err != nil {
		return nil, err
	}
	p := &pooled{st: st, n: new(atomic.Int64)}
	p.r = clientReaders.Get().(*bufio.Reader)
	p.r.Reset(&countReader{r: st, n: p.n})
	return p, nil
}

// release keeps p for the next request, or closes it.
func (c *Client) release(p *pooled) {
	c.mu.Lock()
	if !c.closed && len(c.idle) < maxIdleStreams {
		p.used = time.Now()
		c.idle = append(c.idle, p)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	p.close()
}

// call is one request on a stream.
type call struct {
	c      *Client
	op     byte
	frame  []byte
	reused bool // the stream served an earlier request
	p      *pooled
	st     core.Stream
	r      *bufio.Reader
	w      *bufio.Writer
	stop   func() bool
	start  int64 // p.n when the call began
	// ok is set once the whole answer has been read: the stream is then
	// at a request boundary and may be reused.
	ok bool
}

func (c *Client) open(ctx context.Context, req *request) (*call, error) {
	frame, err := req.encode()
	if err != nil {
		return nil, err
	}
	// Nodes keep idle streams open for at least 30 s (Config.IdleTimeout),
	// so a stream idle for less than idleStreamAge is alive unless the
	// connection failed.
	p, reused, err := c.stream(ctx, idleStreamAge)
	if err != nil {
		return nil, err
	}
	cl := &call{c: c, op: req.op, frame: frame, reused: reused}
	cl.attach(ctx, p)
	if _, err := cl.w.Write(frame); err != nil {
		cl.close()
		return nil, cl.wrap(ctx, err)
	}
	return cl, nil
}

// attach makes p the call's stream.
func (cl *call) attach(ctx context.Context, p *pooled) {
	cl.p, cl.st, cl.r, cl.start = p, p.st, p.r, p.n.Load()
	cl.stop = context.AfterFunc(ctx, func() { _ = p.st.Close() })
	if cl.op == opPut {
		cl.w = bufio.NewWriterSize(p.st, 256<<10)
	} else {
		cl.w = bufio.NewWriterSize(p.st, len(cl.frame))
	}
}

// read returns the bytes read from the stream for this call.
func (cl *call) read() int64 { return cl.p.n.Load() - cl.start }

// send flushes the request and reads the status. A node that refuses a
// request may stop reading it before it is all sent: its answer, when there
// is one, is the error to report.
func (cl *call) send(ctx context.Context) error {
	werr := cl.w.Flush()
	if werr != nil {
		// The node may have answered already.
		_ = cl.st.CloseWrite()
	}
	serr := readStatus(cl.r)
	var re *RemoteError
	if serr != nil && !errors.As(serr, &re) && cl.reused && cl.op != opPut && cl.read() == 0 && ctx.Err() == nil {
		// A reused stream that died while idle (the node's idle timeout):
		// the request, only a frame, goes again on a fresh stream.
		cl.stop()
		cl.p.close()
		p, err := cl.c.newStream(ctx)
		if err != nil {
			cl.p = nil
			return err
		}
		cl.reused = false
		cl.attach(ctx, p)
		if _, err := cl.w.Write(cl.frame); err != nil {
			return cl.wrap(ctx, err)
		}
		return cl.send(ctx)
	}
	if werr != nil && !errors.As(serr, &re) {
		return cl.wrap(ctx, werr)
	}
	return cl.wrap(ctx, serr)
}

func (cl *call) wrap(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// close ends the call: the stream goes back to the client when the whole
// answer was read (and ctx did not fire), else it is closed.
func (cl *call) close() {
	if cl.p == nil {
		return
	}
	p := cl.p
	cl.p = nil
	if cl.stop() && cl.ok {
		cl.c.release(p)
		return
	}
	p.close()
}

var clientReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }}

type countReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n.Add(int64(k))
	return k, err
}

// Has asks what the node holds of hash: ErrNotFound when nothing.
func (c *Client) Has(ctx context.Context, hash Hash) (BlobStatus, error) {
	cl, err := c.open(ctx, &request{op: opHas, hash: hash})
	if err != nil {
		return BlobStatus{}, err
	}
	defer cl.close()
	if err := cl.send(ctx); err != nil {
		return BlobStatus{}, err
	}
	var hdr [11]byte
	if _, err := io.ReadFull(cl.r, hdr[:]); err != nil {
		return BlobStatus{}, readErr(err)
	}
	st := BlobStatus{Size: int64(binary.BigEndian.Uint64(hdr[:])), Complete: hdr[8]&1 != 0, SizeVerified: hdr[8]&2 != 0}
	n := int(binary.BigEndian.Uint16(hdr[9:]))
	if st.Size < 0 || n > MaxRanges {
		return BlobStatus{}, fmt.Errorf("%w: has answer", ErrBadResponse)
	}
	for range n {
		var rb [16]byte
		if _, err := io.ReadFull(cl.r, rb[:]); err != nil {
			return BlobStatus{}, readErr(err)
		}
		st.Present = append(st.Present, Range{binary.BigEndian.Uint64(rb[:]), binary.BigEndian.Uint64(rb[8:])})
	}
	if !st.Present.normalized() {
		return BlobStatus{}, fmt.Errorf("%w: has answer ranges", ErrBadResponse)
	}
	cl.ok = true
	return st, nil
}

// get runs one GET and feeds the verified encoding to sink. It returns the
// blob size and the bytes read from the stream.
func (c *Client) get(ctx context.Context, hash Hash, want Ranges, maxSize int64, sink sliceSink) (int64, int64, error) {
	cl, err := c.open(ctx, &request{op: opGet, hash: hash, ranges: want})
	if err != nil {
		return 0, 0, err
	}
	defer cl.close()
	if err := cl.send(ctx); err != nil {
		return 0, cl.read(), err
	}
	if want == nil {
		want = Ranges{{0, math.MaxUint64}}
	}
	size, err := readSlice(cl.r, hash, want, maxSize, sink)
	cl.ok = err == nil
	return size, cl.read(), cl.wrap(ctx, err)
}

// Read writes the verified bytes [off, off+n) of blob hash to w, in order
// (n < 0: to the end), and returns the blob size. The blob's last chunk
// group is fetched too, so that the size is proven, not just claimed. A
// range past the end is cut at the end.
func (c *Client) Read(ctx context.Context, hash Hash, off, n int64, w io.Writer) (int64, error) {
	if off < 0 {
		return 0, fmt.Errorf("%w: negative offset", ErrBadRequest)
	}
	end := int64(math.MaxInt64)
	if n >= 0 {
		end = off + n
	}
	var want Ranges
	if n != 0 {
		want = Ranges{GroupRange(off, min(end, 1<<62)-off)}
	}
	want = want.Union(Ranges{{math.MaxUint64 - 1, math.MaxUint64}})
	s := &rangeSink{w: w, off: off, end: end}
	size, _, err := c.get(ctx, hash, want, 1<<62, s)
	return size, err
}

// fetchSmall fetches a whole blob of at most limit bytes into memory,
// verified. It returns the data and the bytes read from the stream.
func (c *Client) fetchSmall(ctx context.Context, hash Hash, limit int64) ([]byte, int64, error) {
	var buf memSink
	_, wire, err := c.get(ctx, hash, nil, limit, &buf)
	return buf.b, wire, err
}

// memSink collects a whole blob, in order.
type memSink struct{ b []byte }

func (m *memSink) size(n int64) error {
	m.b = make([]byte, 0, n)
	return nil
}
func (m *memSink) parent(int64, []byte) error { return nil }
func (m *memSink) group(_ int64, b []byte) error {
	m.b = append(m.b, b...)
	return nil
}

// rangeSink writes the part of each verified group inside [off, end).
type rangeSink struct {
	w        io.Writer
	off, end int64
}

func (s *rangeSink) size(int64) error           { return nil }
func (s *rangeSink) parent(int64, []byte) error { return nil }
func (s *rangeSink) group(pos int64, b []byte) error {
	lo, hi := max(pos, s.off), min(pos+int64(len(b)), s.end)
	if lo >= hi {
		return nil
	}
	_, err := s.w.Write(b[lo-pos : hi-pos])
	return err
}

// FetchOptions are the options of Client.Fetch.
type FetchOptions struct {
	// Tag names the blob in the local store once it is complete.
	Tag string
	// Collection requires the blob to be a collection and records it as
	// one (see PutOptions.Collection).
	Collection bool
	// MaxSize bounds the size the node may declare. Zero means
	// DefaultMaxBlobSize (1 TiB).
	MaxSize int64
	// Progress, when set, is called with the verified bytes received
	// so far in this call, and once at the start with the bytes the store
	// already held (total is the blob size; -1 while unknown).
	Progress func(done, total int64)
}

// FetchResult says what a fetch did.
type FetchResult struct {
	Hash Hash  `json:"hash"`
	Size int64 `json:"size"`
	// Resumed is the verified bytes an earlier, interrupted fetch had
	// left, which this one did not transfer again.
	Resumed int64 `json:"resumed"`
	// Received is the verified blob bytes this fetch transferred.
	Received int64 `json:"received"`
	// Wire is every byte read from the node: data, tree nodes, headers.
	Wire int64 `json:"wire"`
	// Cached is true when the store held the whole blob already.
	Cached bool `json:"cached"`
}

// Fetch downloads blob hash into st, verifying every chunk group before it
// is written, and resuming from the verified groups an interrupted fetch
// left. On success the blob is complete in st. On failure what was
// verified stays as a partial blob for the next Fetch; the first group
// that fails verification stops the fetch with a *MismatchError.
func (c *Client) Fetch(ctx context.Context, st *Store, hash Hash, o FetchOptions) (FetchResult, error) {
	res := FetchResult{Hash: hash}
	if o.MaxSize == 0 {
		o.MaxSize = DefaultMaxBlobSize
	}
	if st.Has(hash) {
		info, err := st.adopt(ctx, hash, o.Tag, o.Collection)
		if err != nil {
			return res, err
		}
		res.Size, res.Cached = info.Size, true
		return res, nil
	}
	p, err := st.beginDownload(ctx, hash)
	if err != nil {
		return res, err
	}
	defer p.Close()
	if p.size >= 0 {
		res.Resumed = min(int64(p.count)*GroupSize, p.size)
	}
	if o.Progress != nil {
		o.Progress(res.Resumed, p.size)
	}
	sink := &fetchSink{p: p, ctx: ctx, progress: o.Progress, base: res.Resumed}
	for !p.complete() {
		// The missing groups include the last one until it arrives, and
		// with it the proof of the size.
		want := p.missing()
		if len(want) > MaxRanges {
			want = want[:MaxRanges]
		}
		before := p.count
		size, wire, err := c.get(ctx, hash, want, o.MaxSize, sink)
		res.Wire += wire
		res.Size = size
		if err == nil {
			err = p.flush()
		}
		if err != nil {
			res.Received = p.received
			return res, err
		}
		if p.count == before && !p.complete() {
			return res, fmt.Errorf("%w: node sent no new chunk group of %s", ErrBadResponse, hash)
		}
	}
	res.Received = p.received
	res.Size = max(res.Size, p.size)
	var members []Hash
	if o.Collection {
		coll, err := readCollection(p.data, p.size)
		if err != nil {
			return res, err
		}
		members = coll.hashes()
	}
	if _, err := p.finish(ctx, o.Tag, o.Collection, members); err != nil {
		return res, err
	}
	return res, nil
}

// fetchSink writes verified nodes into a partial blob and reports progress.
type fetchSink struct {
	p        *partial
	ctx      context.Context
	progress func(done, total int64)
	base     int64
}

func (s *fetchSink) size(n int64) error {
	if err := s.p.setSize(n); err != nil {
		return err
	}
	if s.progress != nil && s.p.count == 0 {
		s.base = 0
		s.progress(0, n)
	}
	return nil
}

func (s *fetchSink) parent(off int64, node []byte) error { return s.p.parent(off, node) }

func (s *fetchSink) groupBuf(pos int64) ([]byte, error) { return s.p.groupBuf(pos) }

func (s *fetchSink) group(pos int64, b []byte) error {
	if err := s.ctx.Err(); err != nil {
		return err
	}
	if err := s.p.group(pos, b); err != nil {
		return err
	}
	if s.progress != nil {
		s.progress(s.base+s.p.received, s.p.size)
	}
	return s.p.maybeCheckpoint(s.ctx)
}

// Put uploads size bytes from r as a blob (size < 0 is not allowed: the
// request declares the size) and returns its hash, as computed by the
// node. It needs scope fs:write.
func (c *Client) Put(ctx context.Context, r io.Reader, size int64, o PutOptions) (Hash, error) {
	if size < 0 {
		return Hash{}, fmt.Errorf("%w: put needs the size up front", ErrBadRequest)
	}
	cl, err := c.open(ctx, &request{op: opPut, size: size, collection: o.Collection, tag: o.Tag})
	if err != nil {
		return Hash{}, err
	}
	defer cl.close()
	if o.Progress != nil {
		r = &progressReader{r: r, fn: o.Progress}
	}
	ew := &errWriter{w: cl.w}
	n, err := io.CopyBuffer(ew, io.LimitReader(r, size), make([]byte, 256<<10))
	if err != nil && ew.err == nil {
		return Hash{}, cl.wrap(ctx, fmt.Errorf("read data: %w", err)) // the stream is dropped
	}
	if err == nil && n < size {
		return Hash{}, fmt.Errorf("%w: data ended after %d of %d bytes", ErrSizeMismatch, n, size)
	}
	if werr := ew.err; werr != nil {
		// The node may have refused the put before reading it: its
		// answer says why.
		var re *RemoteError
		if serr := readStatus(cl.r); errors.As(serr, &re) {
			return Hash{}, serr
		}
		return Hash{}, cl.wrap(ctx, werr)
	}
	if err := cl.send(ctx); err != nil {
		return Hash{}, err
	}
	var h Hash
	if _, err := io.ReadFull(cl.r, h[:]); err != nil {
		return Hash{}, readErr(err)
	}
	cl.ok = true
	if !o.Expect.IsZero() && h != o.Expect {
		return h, &MismatchError{Hash: o.Expect, Length: size}
	}
	return h, nil
}

// errWriter remembers a write error, to tell it from a read error.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	n, err := e.w.Write(p)
	if err != nil {
		e.err = err
	}
	return n, err
}

// Tag points name at hash on the node (scope fs:write).
func (c *Client) Tag(ctx context.Context, name string, hash Hash) error {
	if err := ValidateTag(name); err != nil {
		return err
	}
	cl, err := c.open(ctx, &request{op: opTag, hash: hash, tag: name})
	if err != nil {
		return err
	}
	defer cl.close()
	err = cl.send(ctx)
	cl.ok = err == nil
	return err
}

// Untag removes the tag name on the node (scope fs:write).
func (c *Client) Untag(ctx context.Context, name string) error {
	if err := ValidateTag(name); err != nil {
		return err
	}
	cl, err := c.open(ctx, &request{op: opUntag, tag: name})
	if err != nil {
		return err
	}
	defer cl.close()
	err = cl.send(ctx)
	cl.ok = err == nil
	return err
}

// List returns the node's tags (Tag.Created is not sent and stays zero).
func (c *Client) List(ctx context.Context) ([]Tag, error) {
	cl, err := c.open(ctx, &request{op: opList})
	if err != nil {
		return nil, err
	}
	defer cl.close()
	if err := cl.send(ctx); err != nil {
		return nil, err
	}
	var nb [4]byte
	if _, err := io.ReadFull(cl.r, nb[:]); err != nil {
		return nil, readErr(err)
	}
	n := binary.BigEndian.Uint32(nb[:])
	if n > MaxListEntries {
		return nil, fmt.Errorf("%w: %d tags (limit %d)", ErrTooLarge, n, MaxListEntries)
	}
	var out []Tag
	for range n {
		l, err := cl.r.ReadByte()
		if err != nil {
			return nil, readErr(err)
		}
		buf := make([]byte, int(l)+32+8+1)
		if _, err := io.ReadFull(cl.r, buf); err != nil {
			return nil, readErr(err)
		}
		t := Tag{Name: string(buf[:l]), Hash: Hash(buf[l : l+32]), Size: int64(binary.BigEndian.Uint64(buf[l+32:])), Collection: buf[l+40]&1 != 0}
		if err := ValidateTag(t.Name); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadResponse, err)
		}
		out = append(out, t)
	}
	cl.ok = true
	return out, nil
}

package call

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/alkdev/alknet/core"
)

// sharedStream is the one stream a Peer in Multiplex mode carries its calls
// on: a reader hands each frame to the call its id names.
type sharedStream struct {
	mu    sync.Mutex
	cur   *muxStream
	wmu   sync.Mutex // one whole frame at a time
	dials sync.Mutex // one stream open at a time
}

// muxStream is one incarnation of the shared stream.
type muxStream struct {
	s     core.Stream
	calls map[string]*muxCall // guarded by sharedStream.mu
	dead  chan struct{}       // closed when the stream broke
	err   error               // why, set before dead is closed
}

// muxCall is one call waiting for its frames.
type muxCall struct {
	frames chan wireEnvelope
	gone   chan struct{} // closed when the caller stopped waiting
}

// muxQueue is how many frames of one call the reader holds before it waits
// for that call's caller to take one.
const muxQueue = 64

// sharedStream returns the live shared stream, opening one when there is none.
func (p *Peer) sharedStream(ctx context.Context) (*muxStream, error) {
	sh := &p.shared
	sh.dials.Lock()
	defer sh.dials.Unlock()
	sh.mu.Lock()
	cur := sh.cur
	sh.mu.Unlock()
	if cur != nil {
		select {
		case <-cur.dead:
		default:
			return cur, nil
		}
	}
	s, err := p.conn.OpenStream(ctx)
	if err != nil {
		return nil, err
	}
	m := &muxStream{s: s, calls: map[string]*muxCall{}, dead: make(chan struct{})}
	if !p.goDrain(func() { p.readShared(m) }) {
		_ = s.Close()
		return nil, ErrClosed
	}
	sh.mu.Lock()
	sh.cur = m
	sh.mu.Unlock()
	return m, nil
}

// readShared reads the shared stream m until it ends and routes each frame
// by id; frames for ids that no call waits for are dropped.
func (p *Peer) readShared(m *muxStream) {
	sh := &p.shared
	br := bufio.NewReaderSize(m.s, 4096)
	var err error
	for {
		var body []byte
		body, err = ReadFrame(br, p.cfg.MaxFrameSize)
		if err != nil {
			break
		}
		env, derr := decodeWire(body)
		if derr != nil {
			err = derr
			break
		}
		sh.mu.Lock()
		c := m.calls[env.ID]
		sh.mu.Unlock()
		if c == nil {
			continue
		}
		select {
		case c.frames <- env:
		case <-c.gone:
		}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = ErrNoResponse // the callee ended the stream
	}
	m.err = err
	close(m.dead)
	_ = m.s.Close()
}

// runShared performs one call on the shared stream.
func (p *Peer) runShared(ctx context.Context, id string, frame []byte, each func(json.RawMessage) error) error {
	m, err := p.sharedStream(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	sh := &p.shared
	c := &muxCall{frames: make(chan wireEnvelope, muxQueue), gone: make(chan struct{})}
	sh.mu.Lock()
	m.calls[id] = c
	sh.mu.Unlock()
	var st callState
	defer func() {
		close(c.gone)
		sh.mu.Lock()
		delete(m.calls, id)
		sh.mu.Unlock()
		if !st.over {
			p.writeShared(m, TypeAborted, id)
		}
	}()
	if err := p.writeSharedFrame(m, frame); err != nil {
		st.over = true // nothing reached the callee
		return fmt.Errorf("call: %w", err)
	}
	for {
		select {
		case env := <-c.frames:
			if over, err := p.deliver(env, &st, each); over {
				return err
			}
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-m.dead:
			// frames already routed come first
			select {
			case env := <-c.frames:
				if over, err := p.deliver(env, &st, each); over {
					return err
				}
				continue
			default:
			}
			st.over = true
			if st.responded && m.err == ErrNoResponse {
				return nil
			}
			return m.err
		}
	}
}

// writeShared sends a frame of typ for id on m, best effort.
func (p *Peer) writeShared(m *muxStream, typ, id string) {
	frame, err := encodeFrame(typ, id, nil, p.cfg.MaxFrameSize)
	if err == nil {
		_ = p.writeSharedFrame(m, frame)
	}
}

// sharedWriteTimeout bounds one frame's write on the shared stream: a
// callee that stops reading breaks the stream rather than every caller.
const sharedWriteTimeout = 30 * time.Second

func (p *Peer) writeSharedFrame(m *muxStream, frame []byte) error {
	sh := &p.shared
	sh.wmu.Lock()
	defer sh.wmu.Unlock()
	select {
	case <-m.dead:
		return m.err
	default:
	}
	_ = m.s.SetWriteDeadline(time.Now().Add(sharedWriteTimeout))
	_, err := m.s.Write(frame)
	if err != nil {
		_ = m.s.Close() // a partial frame cannot be followed; the reader ends
	}
	return err
}

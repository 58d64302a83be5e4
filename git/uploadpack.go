package git

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-git/go-git/v6/plumbing"
	"github.com/go-git/go-git/v6/plumbing/format/pktline"
	"github.com/go-git/go-git/v6/plumbing/object"
	"github.com/go-git/go-git/v6/plumbing/protocol/packp"
	"github.com/go-git/go-git/v6/plumbing/protocol/packp/sideband"
	"github.com/go-git/go-git/v6/plumbing/revlist"
	"github.com/go-git/go-git/v6/plumbing/transport"
	"github.com/go-git/go-git/v6/storage"
)

// MaxCommandSize bounds one protocol v2 command (command line,
// capabilities and arguments, in pkt-lines) that the server reads before
// serving it: 32 MiB holds some 600,000 "have" lines.
const MaxCommandSize = 32 << 20

// errEndOfSession is a lone flush, or the end of the stream, where a
// protocol v2 command would start.
var errEndOfSession = errors.New("alknet/git: end of session")

// uploadPackV2 serves git-upload-pack with protocol version 2 on a stream
// that lasts the whole session: the capability advertisement, then one
// command after another until the client's closing flush. Each command is
// read whole (at most MaxCommandSize). A fetch whose negotiation is over
// and which asks for nothing but wants, haves and the pack's format is
// answered here (fetchV2) with the entries of the repository's packs as
// they are stored; go-git's encoder would inflate, re-deltify and deflate
// every object. Any other command goes to go-git as a stateless request,
// which version 2 allows (a request carries all its state).
func (s *Server) uploadPackV2(ctx context.Context, st storage.Storer, dir string, r io.Reader, w io.Writer) error {
	if err := transport.AdvertiseCapabilities(ctx, st, w, transport.UploadPackService); err != nil {
		return fmt.Errorf("alknet/git: upload-pack: advertise: %w", err)
	}
	br := bufio.NewReader(r)
	for {
		raw, err := readCommand(br, MaxCommandSize)
		if errors.Is(err, errEndOfSession) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("alknet/git: upload-pack: %w", err)
		}
		if req, ok := parseFetch(raw); ok {
			served, err := s.fetchV2(st, dir, req, w)
			if err != nil {
				return fmt.Errorf("alknet/git: upload-pack: %w", err)
			}
			if served {
				continue
			}
		}
		err = transport.UploadPack(ctx, st, io.NopCloser(bytes.NewReader(raw)), nopWriteCloser{w}, &transport.UploadPackRequest{
			GitProtocol:          "version=2",
			StatelessRPC:         true,
			SkipDeltaCompression: s.cfg.SkipDeltaCompression,
		})
		if err != nil {
			return err
		}
	}
}

// readCommand reads one protocol v2 command: pkt-lines up to and including
// the flush that ends it. A flush in first place, or the end of the stream,
// is errEndOfSession.
func readCommand(br *bufio.Reader, max int) ([]byte, error) {
	var raw []byte
	for {
		var hdr [4]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if len(raw) == 0 && errors.Is(err, io.EOF) {
				return nil, errEndOfSession
			}
			return nil, fmt.Errorf("read command: %w", err)
		}
		n, err := strconv.ParseUint(string(hdr[:]), 16, 16)
		if err != nil {
			return nil, fmt.Errorf("read command: bad pkt-line length %q", hdr[:])
		}
		if n == 0 && len(raw) == 0 {
			return nil, errEndOfSession
		}
		if n == 2 || n == 3 || (n == 1 && len(raw) == 0) {
			return nil, fmt.Errorf("read command: bad pkt-line length %q", hdr[:])
		}
		size := 0
		if n > 4 {
			size = int(n) - 4
		}
		if len(raw)+4+size > max {
			return nil, fmt.Errorf("read command: over %d bytes", max)
		}
		raw = append(raw, hdr[:]...)
		if size > 0 {
			start := len(raw)
			raw = append(raw, make([]byte, size)...)
			if _, err := io.ReadFull(br, raw[start:]); err != nil {
				return nil, fmt.Errorf("read command: %w", err)
			}
		}
		if n == 0 {
			return raw, nil
		}
	}
}

// fetchRequest is a protocol v2 fetch with only the arguments fetchV2
// serves.
type fetchRequest struct {
	wants, haves []plumbing.Hash
	done         bool
	ofsDelta     bool
	includeTag   bool
}

// parseFetch reads a fetch command whose arguments are only "want",
// "have", "done", "ofs-delta", "include-tag", "thin-pack" and
// "no-progress". Anything else (shallow, deepen, filter, want-ref...) is
// left to go-git.
func parseFetch(raw []byte) (fetchRequest, bool) {
	var req fetchRequest
	lines, ok := pktLines(raw)
	if !ok || len(lines) == 0 || lines[0] != "command=fetch" {
		return req, false
	}
	// Capabilities up to the delimiter, then the arguments.
	i := slices.Index(lines, "\x01")
	if i < 0 {
		return req, false
	}
	for _, l := range lines[i+1:] {
		switch {
		case strings.HasPrefix(l, "want "), strings.HasPrefix(l, "have "):
			h, ok := plumbing.FromHex(l[5:])
			if !ok || len(l) != 5+40 {
				return req, false
			}
			if l[0] == 'w' {
				req.wants = append(req.wants, h)
			} else {
				req.haves = append(req.haves, h)
			}
		case l == "done":
			req.done = true
		case l == "ofs-delta":
			req.ofsDelta = true
		case l == "include-tag":
			req.includeTag = true
		case l == "thin-pack", l == "no-progress":
		default:
			return req, false
		}
	}
	return req, len(req.wants) > 0
}

// fetchV2 answers a fetch. While the negotiation goes on (haves without
// "done", and some want not anchored on a common have) the answer is the
// acknowledgments section alone: ACK for each common have, NAK when none.
// Once it is over ("done", no have, or every want anchored: "ready", as
// upstream's ok_to_give_up) the answer is the pack, of reused entries
// (writePack), after the acknowledgments when the client did not say
// "done". It reports false, having written nothing, when a want is not in
// the repository: go-git then answers the command (with its error).
func (s *Server) fetchV2(st storage.Storer, dir string, req fetchRequest, w io.Writer) (bool, error) {
	for _, h := range req.wants {
		if st.HasEncodedObject(h) != nil {
			return false, nil
		}
	}
	var common []plumbing.Hash
	for _, h := range req.haves {
		if st.HasEncodedObject(h) == nil {
			common = append(common, h)
		}
	}
	out := &packp.FetchOutput{Packfile: true}
	if !req.done && len(req.haves) > 0 {
		ready, err := wantsAnchored(st, req.wants, common)
		if err != nil {
			return false, fmt.Errorf("negotiate: %w", err)
		}
		out.Acknowledgments = &packp.Acknowledgments{ACKs: common, Ready: ready}
		if !ready {
			// The client sends more haves (or "done") in its next
			// request; NAK when nothing is common.
			out.Packfile = false
			return true, out.Encode(w)
		}
	}
	objs, err := revlist.Objects(st, req.wants, common)
	if err != nil {
		return false, fmt.Errorf("walk wanted objects: %w", err)
	}
	if req.includeTag {
		if objs, err = addTags(st, objs); err != nil {
			return false, fmt.Errorf("include-tag: %w", err)
		}
	}
	set, err := openPacks(filepath.Join(dir, "objects"))
	if err != nil {
		return false, fmt.Errorf("open packs: %w", err)
	}
	defer set.Close()
	if err := out.Encode(w); err != nil {
		return true, err
	}
	mux := sideband.NewMuxer(sideband.Sideband64k, w)
	stats, err := writePack(mux, st, set, objs, req.ofsDelta)
	if err != nil {
		return true, fmt.Errorf("send pack: %w", err)
	}
	s.log.Debug("git fetch", "objects", len(objs), "haves", len(common), "reused", stats.Reused, "whole", stats.Whole)
	return true, pktline.WriteFlush(w)
}

// anchorSlop is how far before the oldest common have the walk of
// wantsAnchored looks, for clocks that disagree.
const anchorSlop = 24 * time.Hour

// wantsAnchored reports whether every want peels to a commit that is one
// of common or descends from one: then the client has a base for all it
// wants, and the server stops negotiating ("ready"). One walk over the
// history of the wants, each commit visited once, and none older than the
// oldest common have (less anchorSlop), as upstream bounds its walk: a
// commit that old cannot descend from a have, unless clocks lie, and then
// the answer is only "not ready yet", which is safe.
func wantsAnchored(st storage.Storer, wants, common []plumbing.Hash) (bool, error) {
	anchored := map[oid]bool{}
	var oldest time.Time
	for _, h := range common {
		if c, ok := peelCommit(st, h); ok {
			anchored[key(c.Hash)] = true
			if oldest.IsZero() || c.Committer.When.Before(oldest) {
				oldest = c.Committer.When
			}
		}
	}
	if len(anchored) == 0 {
		return false, nil
	}
	cutoff := oldest.Add(-anchorSlop)
	for _, h := range wants {
		c, ok := peelCommit(st, h)
		if !ok {
			return false, nil
		}
		ok, err := reachesAnchor(st, c, anchored, cutoff)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// reachesAnchor reports whether c or one of its ancestors not older than
// cutoff is in anchored, recording the answer for every commit it settles
// (true for a commit on the way to an anchor, false for one whose history
// has none).
func reachesAnchor(st storage.Storer, c *object.Commit, anchored map[oid]bool, cutoff time.Time) (bool, error) {
	if v, ok := anchored[key(c.Hash)]; ok {
		return v, nil
	}
	// Iterative depth-first walk: a commit is settled once its parents are.
	type frame struct {
		c    *object.Commit
		next int
	}
	stack := []frame{{c: c}}
	for len(stack) > 0 {
		f := &stack[len(stack)-1]
		if f.next == len(f.c.ParentHashes) {
			anchored[key(f.c.Hash)] = false
			stack = stack[:len(stack)-1]
			continue
		}
		ph := f.c.ParentHashes[f.next]
		f.next++
		v, seen := anchored[key(ph)]
		if seen && !v {
			continue
		}
		if seen && v {
			for _, g := range stack {
				anchored[key(g.c.Hash)] = true
			}
			return true, nil
		}
		pc, err := object.GetCommit(st, ph)
		if err != nil || pc.Committer.When.Before(cutoff) {
			anchored[key(ph)] = false // outside the repository (a shallow end), or too old
			continue
		}
		stack = append(stack, frame{c: pc})
	}
	return anchored[key(c.Hash)], nil
}

// peelCommit resolves h to a commit through annotated tags.
func peelCommit(st storage.Storer, h plumbing.Hash) (*object.Commit, bool) {
	for range 16 {
		obj, err := st.EncodedObject(plumbing.AnyObject, h)
		if err != nil {
			return nil, false
		}
		switch obj.Type() {
		case plumbing.CommitObject:
			c, err := object.DecodeCommit(st, obj)
			return c, err == nil
		case plumbing.TagObject:
			t, err := object.DecodeTag(st, obj)
			if err != nil {
				return nil, false
			}
			h = t.Target
		default:
			return nil, false
		}
	}
	return nil, false
}

// addTags adds the annotated tags of refs/tags/* that point, directly or
// through other tags, at an object being sent ("include-tag").
func addTags(st storage.Storer, objs []plumbing.Hash) ([]plumbing.Hash, error) {
	in := make(map[oid]bool, len(objs))
	for _, h := range objs {
		in[key(h)] = true
	}
	it, err := st.IterReferences()
	if err != nil {
		return nil, err
	}
	defer it.Close()
	err = it.ForEach(func(r *plumbing.Reference) error {
		if r.Type() != plumbing.HashReference || !r.Name().IsTag() {
			return nil
		}
		var chain []plumbing.Hash
		for h, i := r.Hash(), 0; i < 16; i++ {
			if in[key(h)] {
				for _, t := range chain {
					in[key(t)] = true
					objs = append(objs, t)
				}
				return nil
			}
			t, err := object.GetTag(st, h)
			if err != nil {
				return nil // not a tag, and not sent
			}
			chain = append(chain, h)
			h = t.Target
		}
		return nil
	})
	return objs, err
}

// pktLines splits a command into its pkt-line payloads without the
// trailing newline; a delimiter is "\x01". The final flush is dropped.
func pktLines(raw []byte) ([]string, bool) {
	var out []string
	for len(raw) >= 4 {
		n, err := strconv.ParseUint(string(raw[:4]), 16, 16)
		if err != nil {
			return nil, false
		}
		switch {
		case n == 0:
			return out, len(raw) == 4
		case n == 1:
			out = append(out, "\x01")
			raw = raw[4:]
			continue
		case n < 4 || int(n) > len(raw):
			return nil, false
		}
		out = append(out, strings.TrimSuffix(string(raw[4:n]), "\n"))
		raw = raw[n:]
	}
	return nil, false
}

package git

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/go-git/go-git/v6/plumbing"
	"github.com/go-git/go-git/v6/plumbing/format/packfile"
	"github.com/go-git/go-git/v6/plumbing/format/pktline"
	"github.com/go-git/go-git/v6/plumbing/protocol"
	"github.com/go-git/go-git/v6/plumbing/protocol/capability"
	"github.com/go-git/go-git/v6/plumbing/protocol/packp"
	"github.com/go-git/go-git/v6/plumbing/protocol/packp/sideband"
	"github.com/go-git/go-git/v6/plumbing/transport"
	"github.com/go-git/go-git/v6/storage"
)

// Reasons a ref update is refused, as git prints them after
// "! [remote rejected] <ref> (...)".
const (
	reasonAtomic     = "atomic push failure"
	reasonFunnyRef   = "funny refname"
	reasonDuplicate  = "duplicate ref in push"
	reasonMissingObj = "missing necessary objects"
	reasonSymbolic   = "symbolic ref refused"
	reasonExists     = "ref exists"
	reasonNoRef      = "ref does not exist"
	reasonStale      = "ref changed on the server (fetch first)"
)

// pushResult is what a push did, for the log and the tests.
type pushResult struct {
	Atomic  bool
	Options []string
	Applied []*packp.Command // ref updates made
	Refused map[plumbing.ReferenceName]string
}

// receivePack serves git-receive-pack on st: the reference advertisement
// (go-git's, with the atomic capability added), then the update request,
// the pack and the report. The ref updates are made here rather than by
// go-git, which has no transaction: every command is checked first
// (name, objects, the ref's current value, protected refs) and, when the
// client asked for --atomic, either all are applied or none is, a failure
// while applying rolling back the updates already made. The caller holds
// the repository's push lock.
func (s *Server) receivePack(ctx context.Context, st storage.Storer, log *slog.Logger, protocolParam string, r io.Reader, w io.Writer) (*pushResult, error) {
	if err := advertiseReceive(ctx, st, w, protocolParam); err != nil {
		return nil, err
	}
	rd := bufio.NewReader(r)
	if l, _, err := pktline.PeekLine(rd); err != nil {
		if errors.Is(err, io.EOF) {
			return &pushResult{}, nil // ls-remote: the client hung up
		}
		return nil, fmt.Errorf("alknet/git: receive-pack: %w", err)
	} else if l == pktline.Flush {
		return &pushResult{}, nil // nothing to push
	}
	req := &packp.UpdateRequests{}
	if err := req.Decode(rd); err != nil {
		return nil, fmt.Errorf("alknet/git: receive-pack: update request: %w", err)
	}
	res := &pushResult{Atomic: req.Capabilities.Supports(capability.Atomic), Refused: map[plumbing.ReferenceName]string{}}
	if req.Capabilities.Supports(capability.PushOptions) {
		var opts packp.PushOptions
		if err := opts.Decode(rd); err != nil {
			return nil, fmt.Errorf("alknet/git: receive-pack: push options: %w", err)
		}
		res.Options = opts.Options
	}
	var unpackErr error
	for _, c := range req.Commands {
		if c.Action() != packp.Delete {
			unpackErr = packfile.UpdateObjectStorage(st, rd)
			break
		}
	}

	rep := newReporter(w, req.Capabilities)
	if unpackErr != nil {
		if err := rep.send(req.Commands, unpackErr.Error(), nil); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("alknet/git: receive-pack: unpack: %w", unpackErr)
	}
	s.updateRefs(st, req.Commands, res)
	// Logged before the report, so that the push is in the log once the
	// client has its answer.
	log.Info("git push", "atomic", res.Atomic, "updated", len(res.Applied), "refused", len(res.Refused), "options", len(res.Options))
	if err := rep.send(req.Commands, "ok", res.Refused); err != nil {
		return res, err
	}
	return res, nil
}

// advertiseReceive writes go-git's receive-pack advertisement with the
// atomic capability added. A version 2 request gets a version 0
// advertisement, as from git (push has no version 2).
func advertiseReceive(ctx context.Context, st storage.Storer, w io.Writer, protocolParam string) error {
	v := transport.ProtocolVersion(protocolParam)
	if v != protocol.V0 && v != protocol.V1 && v != protocol.V2 {
		return fmt.Errorf("alknet/git: receive-pack: unsupported protocol %q", protocolParam)
	}
	var buf bytes.Buffer
	if err := transport.AdvertiseRefs(ctx, st, &buf, transport.ReceivePackService, false, v); err != nil {
		return fmt.Errorf("alknet/git: receive-pack: advertise: %w", err)
	}
	ar := &packp.AdvRefs{}
	if err := ar.Decode(&buf); err != nil {
		return fmt.Errorf("alknet/git: receive-pack: advertise: %w", err)
	}
	ar.Capabilities.Set(capability.Atomic)
	return ar.Encode(w)
}

// refUpdate is one command with the ref's value before the push.
type refUpdate struct {
	cmd     *packp.Command
	old     plumbing.Hash // the current value, zero when the ref is missing
	applied bool
}

// updateRefs checks every command, then applies them: all or none when
// the push is atomic, else each on its own. Refusals go to res.Refused.
func (s *Server) updateRefs(st storage.Storer, cmds []*packp.Command, res *pushResult) {
	seen := map[plumbing.ReferenceName]bool{}
	for _, c := range cmds {
		if seen[c.Name] {
			// A push that names a ref twice contradicts itself: refuse it
			// whole, as git does.
			for _, c := range cmds {
				res.Refused[c.Name] = reasonDuplicate
			}
			return
		}
		seen[c.Name] = true
	}
	updates := make([]*refUpdate, 0, len(cmds))
	for _, c := range cmds {
		u, why := s.checkCommand(st, c)
		if why != "" {
			res.Refused[c.Name] = why
			continue
		}
		updates = append(updates, u)
	}
	if res.Atomic && len(res.Refused) > 0 {
		for _, u := range updates {
			res.Refused[u.cmd.Name] = reasonAtomic
		}
		return
	}
	for i, u := range updates {
		if err := applyUpdate(st, u); err != nil {
			s.log.Warn("git ref update failed", "ref", u.cmd.Name.String(), "err", err)
			res.Refused[u.cmd.Name] = "failed to update ref"
			if !res.Atomic {
				continue
			}
			// Undo what this push changed, newest first, and refuse the
			// rest: an atomic push is all or nothing.
			for j := i - 1; j >= 0; j-- {
				if err := revertUpdate(st, updates[j]); err != nil {
					s.log.Error("git atomic push: rollback failed", "ref", updates[j].cmd.Name.String(), "err", err)
				}
			}
			for _, o := range updates {
				if o != u {
					res.Refused[o.cmd.Name] = reasonAtomic
				}
			}
			return
		}
	}
	for _, u := range updates {
		if u.applied {
			res.Applied = append(res.Applied, u.cmd)
		}
	}
}

// checkCommand decides whether a command may be applied: a valid ref name
// under refs/, the new object present, the ref's current value equal to
// the one the client saw, no rewind or delete of a protected ref. It
// returns the refusal reason, or "".
func (s *Server) checkCommand(st storage.Storer, c *packp.Command) (*refUpdate, string) {
	if !validRefName(c.Name) {
		return nil, reasonFunnyRef
	}
	cur, err := st.Reference(c.Name)
	switch {
	case errors.Is(err, plumbing.ErrReferenceNotFound):
		cur = nil
	case err != nil:
		s.log.Warn("git ref read failed", "ref", c.Name.String(), "err", err)
		return nil, "cannot read ref"
	case cur.Type() != plumbing.HashReference:
		return nil, reasonSymbolic
	}
	u := &refUpdate{cmd: c}
	if cur != nil {
		u.old = cur.Hash()
	}
	switch c.Action() {
	case packp.Create:
		if cur != nil {
			return nil, reasonExists
		}
	case packp.Update, packp.Delete:
		if cur == nil {
			return nil, reasonNoRef
		}
		if !cur.Hash().Equal(c.Old) {
			return nil, reasonStale
		}
	default:
		return nil, reasonFunnyRef
	}
	if c.Action() != packp.Delete {
		if err := st.HasEncodedObject(c.New); err != nil {
			return nil, reasonMissingObj
		}
	}
	if s.protected(c.Name.String()) {
		switch c.Action() {
		case packp.Delete:
			return nil, fmt.Sprintf("protected ref %s: delete refused", c.Name)
		case packp.Update:
			if ff, err := isAncestor(st, c.Old, c.New); err != nil || !ff {
				return nil, fmt.Sprintf("protected ref %s: non-fast-forward refused", c.Name)
			}
		}
	}
	return u, ""
}

// applyUpdate makes one checked update.
func applyUpdate(st storage.Storer, u *refUpdate) error {
	c := u.cmd
	var err error
	switch c.Action() {
	case packp.Create:
		err = st.SetReference(plumbing.NewHashReference(c.Name, c.New))
	case packp.Update:
		err = st.CheckAndSetReference(plumbing.NewHashReference(c.Name, c.New), plumbing.NewHashReference(c.Name, u.old))
	case packp.Delete:
		err = st.RemoveReference(c.Name)
	}
	if err == nil {
		u.applied = true
	}
	return err
}

// revertUpdate restores the value a ref had before an applied update.
func revertUpdate(st storage.Storer, u *refUpdate) error {
	if !u.applied {
		return nil
	}
	c := u.cmd
	switch c.Action() {
	case packp.Create:
		return st.RemoveReference(c.Name)
	default:
		return st.SetReference(plumbing.NewHashReference(c.Name, u.old))
	}
}

// validRefName accepts the names receive-pack may write: under refs/,
// valid as git's check-ref-format has it, and without characters that a
// filesystem could fold away (control, format and default-ignorable code
// points) or invalid UTF-8.
func validRefName(n plumbing.ReferenceName) bool {
	s := n.String()
	if !strings.HasPrefix(s, "refs/") || !n.IsSafe() || n.Validate() != nil || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r) ||
			unicode.Is(unicode.Variation_Selector, r) {
			return false
		}
	}
	return true
}

// reporter writes the report-status, through side-band-64k when the
// client asked for it.
type reporter struct {
	w        io.Writer
	caps     capability.List
	sideband bool
	mux      *sideband.Muxer
}

func newReporter(w io.Writer, caps capability.List) *reporter {
	r := &reporter{w: w, caps: caps}
	switch {
	case caps.Supports(capability.Sideband64k):
		r.mux, r.sideband = sideband.NewMuxer(sideband.Sideband64k, w), true
	case caps.Supports(capability.Sideband):
		r.mux, r.sideband = sideband.NewMuxer(sideband.Sideband, w), true
	}
	return r
}

// send writes "unpack <status>" and one line per command, in the order of
// the request, then the flush that ends the side band.
func (r *reporter) send(cmds []*packp.Command, unpack string, refused map[plumbing.ReferenceName]string) error {
	if !r.caps.Supports(capability.ReportStatus) {
		return nil
	}
	rs := &packp.ReportStatus{UnpackStatus: oneLine(unpack)}
	if refused != nil {
		for _, c := range cmds {
			status := "ok"
			if why, ok := refused[c.Name]; ok {
				status = oneLine(why)
			}
			rs.CommandStatuses = append(rs.CommandStatuses, &packp.CommandStatus{ReferenceName: c.Name, Status: status})
		}
	}
	var out io.Writer = r.w
	if r.sideband {
		out = r.mux
	}
	if err := rs.Encode(out); err != nil {
		return fmt.Errorf("alknet/git: receive-pack: report: %w", err)
	}
	if r.sideband {
		if err := pktline.WriteFlush(r.w); err != nil {
			return fmt.Errorf("alknet/git: receive-pack: report: %w", err)
		}
	}
	return nil
}

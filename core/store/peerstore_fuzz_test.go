package store_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/store"
)

// FuzzPutPeer feeds arbitrary peer entries (as the CLI and config files
// would pass them) to PutPeer. Property: an accepted entry reads back
// normalized (canonical fingerprint, the scopes given, in order, without
// duplicates) and resolves; a refused one fails with one of the package's
// or core's sentinel errors, on one line, and leaves the table empty.
func FuzzPutPeer(f *testing.F) {
	f.Add("laptop", []byte("0123456789abcdef0123456789abcdef"), "ssh", "sftp:write", "git:repo/alpha", "read")
	f.Add("a.b-c_d", []byte("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f"), "call", "call", "fs:bucket/*", "*")
	f.Add("Bad", []byte("short"), "SSH", "", "nokind", "Read")
	f.Add("x", []byte("0123456789abcdef0123456789abcdef"), "ssh shell", "a:", "git:", "")
	_, ps, _ := psTemp(f)
	f.Fuzz(func(t *testing.T, id string, key []byte, scope1, scope2, resType, action string) {
		ctx := t.Context()
		var nid core.NodeID
		copy(nid[:], key)
		fp := nid.Fingerprint()
		if len(key) != len(nid) {
			fp = "ed25519:" + string(key) // usually malformed
		}
		e := core.PeerEntry{
			PeerID: id, Fingerprints: []string{fp}, Scopes: []string{scope1, scope2},
			Resources: map[string][]string{resType: {action}}, Enabled: true,
		}
		err := ps.PutPeer(ctx, e)
		if err != nil {
			known := []error{store.ErrInvalidPeerID, store.ErrInvalidScope, store.ErrInvalidResource, store.ErrInvalidPeer, core.ErrInvalidFingerprint}
			if !slices.ContainsFunc(known, func(k error) bool { return errors.Is(err, k) }) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			if slices.Contains([]byte(err.Error()), '\n') {
				t.Fatalf("multi-line error: %q", err)
			}
			if list, _ := ps.ListPeers(ctx); len(list) != 0 {
				t.Fatalf("refused entry changed the table: %v", list)
			}
			return
		}
		defer func() {
			if err := ps.RemovePeer(ctx, id); err != nil {
				t.Fatal(err)
			}
		}()
		p, err := ps.GetPeer(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{scope1}
		if scope2 != scope1 {
			want = append(want, scope2)
		}
		if !slices.Equal(p.Scopes, want) || len(p.Fingerprints) != 1 {
			t.Fatalf("stored %+v from %+v", p.PeerEntry, e)
		}
		parsed, err := core.ParseFingerprint(p.Fingerprints[0])
		if err != nil || parsed.Fingerprint() != p.Fingerprints[0] {
			t.Fatalf("stored fingerprint %q is not canonical", p.Fingerprints[0])
		}
		got, ok := ps.IdentityByFingerprint(p.Fingerprints[0])
		if !ok || got.ID != id || !got.Allows(resType, action) {
			t.Fatalf("accepted peer %q does not resolve as stored: %+v", id, got)
		}
	})
}

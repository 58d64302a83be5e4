package dns

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alkdev/alknet/core/store"
	mdns "github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// openStore opens a database at path (a fresh one when empty) and a Store
// on it.
func openStore(t testing.TB, path string, follow bool) *Store {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "alknet.db")
	}
	db, err := store.New(store.Config{Path: path})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	s, err := NewStore(t.Context(), db, StoreConfig{Follow: follow})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func mustRR(t testing.TB, name, typ, value string, ttl uint32) mdns.RR {
	t.Helper()
	rr, err := ParseRecord(name, typ, value, ttl)
	require.NoError(t, err)
	return rr
}

func TestStoreZoneAndRecords(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, "", true)
	require.NoError(t, s.AddZone(ctx, Zone{Name: "Example.Test", NS: []string{"ns1.example.test"}}))
	assert.ErrorIs(t, s.AddZone(ctx, Zone{Name: "example.test.", NS: []string{"ns1.example.test"}}), ErrZoneExists)

	added, err := s.Add(ctx, mustRR(t, "www.example.test", "A", "192.0.2.1", 300))
	require.NoError(t, err)
	assert.True(t, added)
	added, err = s.Add(ctx, mustRR(t, "www.example.test", "A", "192.0.2.1", 300))
	require.NoError(t, err)
	assert.False(t, added, "the same record twice is one record")
	// A new record of the set sets the TTL of the whole set (RFC 2181 5.2).
	_, err = s.Add(ctx, mustRR(t, "www.example.test", "A", "192.0.2.2", 60))
	require.NoError(t, err)

	res, ok := s.Zones().Lookup("www.example.test.", mdns.TypeA)
	require.True(t, ok, "the writer sees its write at once")
	assert.Equal(t, []string{"www.example.test.\t60\tIN\tA\t192.0.2.1", "www.example.test.\t60\tIN\tA\t192.0.2.2"}, rrStrings(res.Answer))

	recs, err := s.Records(ctx, "example.test")
	require.NoError(t, err)
	var lines []string
	for _, r := range recs {
		lines = append(lines, r.String())
	}
	require.Len(t, lines, 4)
	assert.True(t, strings.HasPrefix(lines[0], "example.test.\t3600\tIN\tSOA\tns1.example.test. hostmaster.example.test. "), lines[0])
	assert.Equal(t, "example.test.\t3600\tIN\tNS\tns1.example.test.", lines[1])
	assert.Equal(t, "www.example.test.\t60\tIN\tA\t192.0.2.1", lines[2])

	_, err = s.Add(ctx, mustRR(t, "www.other.test", "A", "192.0.2.1", 300))
	assert.ErrorIs(t, err, ErrNoZone)
	assert.Contains(t, err.Error(), "www.other.test (alknet dns zone add creates one)")

	n, err := s.Remove(ctx, "www.example.test", "A", "192.0.2.1")
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	_, err = s.Remove(ctx, "www.example.test", "A", "192.0.2.1")
	assert.ErrorIs(t, err, ErrNotFound)
	n, err = s.Remove(ctx, "www.example.test", "", "")
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	res, _ = s.Zones().Lookup("www.example.test.", mdns.TypeA)
	assert.Equal(t, mdns.RcodeNameError, res.Rcode)

	_, err = s.Remove(ctx, "example.test", "SOA", "")
	assert.ErrorIs(t, err, ErrConflict)
	n, err = s.RemoveZone(ctx, "example.test")
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	_, ok = s.Zones().Lookup("example.test.", mdns.TypeSOA)
	assert.False(t, ok)
}

func TestStoreSerialIncreases(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, "", true)
	require.NoError(t, s.AddZone(ctx, Zone{Name: "example.test", NS: []string{"ns1.example.test"}}))
	serial := func() uint32 {
		res, _ := s.Zones().Lookup("example.test.", mdns.TypeSOA)
		return res.Answer[0].(*mdns.SOA).Serial
	}
	s0 := serial()
	assert.InDelta(t, time.Now().Unix(), int64(s0), 5, "a new zone's serial is the time")
	_, err := s.Add(ctx, mustRR(t, "a.example.test", "A", "192.0.2.1", 300))
	require.NoError(t, err)
	s1 := serial()
	_, err = s.Remove(ctx, "a.example.test", "", "")
	require.NoError(t, err)
	s2 := serial()
	assert.Greater(t, s1, s0)
	assert.Greater(t, s2, s1)
}

func TestStoreConflicts(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, "", false)
	require.NoError(t, s.AddZone(ctx, Zone{Name: "example.test", NS: []string{"ns1.example.test"}}))
	_, err := s.Add(ctx, mustRR(t, "a.example.test", "A", "192.0.2.1", 300))
	require.NoError(t, err)
	cases := []struct {
		rr  mdns.RR
		msg string
	}{
		{mustRR(t, "a.example.test", "CNAME", "b.example.test", 300), "a CNAME must be alone"},
		{mustRR(t, "example.test", "CNAME", "b.example.test", 300), "cannot be at a zone apex"},
		{mustRR(t, "example.test", "SOA", "ns.example.test. h.example.test. 1 1 1 1 1", 300), "comes with its zone"},
	}
	for _, c := range cases {
		_, err := s.Add(ctx, c.rr)
		require.ErrorIs(t, err, ErrConflict)
		assert.Contains(t, err.Error(), c.msg)
	}
	_, err = s.Add(ctx, mustRR(t, "c.example.test", "CNAME", "b.example.test", 300))
	require.NoError(t, err)
	_, err = s.Add(ctx, mustRR(t, "c.example.test", "TXT", "x", 300))
	assert.ErrorIs(t, err, ErrConflict)
	_, err = s.Add(ctx, mustRR(t, "c.example.test", "CNAME", "d.example.test", 300))
	assert.ErrorContains(t, err, "already has a CNAME")
	// Nothing of the refused writes is stored.
	recs, err := s.Records(ctx, "example.test")
	require.NoError(t, err)
	assert.Len(t, recs, 4)
}

func TestStorePutRRsetAndName(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, "", true)
	require.NoError(t, s.AddZone(ctx, Zone{Name: "nodes.test", NS: []string{"ns.nodes.test"}}))
	name := "yyyoryarywdyqnyjbefoadeqbhebnrounoktcfaadrpbs8y7daxo.nodes.test."
	require.NoError(t, s.PutName(ctx, name, []mdns.RR{
		mustRR(t, name, "A", "192.0.2.10", 60),
		mustRR(t, name, "AAAA", "2001:db8::10", 60),
		mustRR(t, name, "SVCB", `1 . alpn="alknet/ping,doq" port=4433`, 60),
	}))
	res, _ := s.Zones().Lookup(name, mdns.TypeANY)
	assert.Len(t, res.Answer, 3)

	// Replacing the name drops the types not given.
	require.NoError(t, s.PutName(ctx, name, []mdns.RR{mustRR(t, name, "A", "192.0.2.11", 60)}))
	res, _ = s.Zones().Lookup(name, mdns.TypeANY)
	assert.Equal(t, []string{name + "\t60\tIN\tA\t192.0.2.11"}, rrStrings(res.Answer))

	require.NoError(t, s.PutRRset(ctx, name, mdns.TypeA, []mdns.RR{
		mustRR(t, name, "A", "192.0.2.12", 30), mustRR(t, name, "A", "192.0.2.13", 30),
	}))
	res, _ = s.Zones().Lookup(name, mdns.TypeA)
	assert.Equal(t, []string{name + "\t30\tIN\tA\t192.0.2.12", name + "\t30\tIN\tA\t192.0.2.13"}, rrStrings(res.Answer))

	err := s.PutRRset(ctx, name, mdns.TypeA, []mdns.RR{mustRR(t, "other.nodes.test", "A", "192.0.2.1", 30)})
	assert.ErrorIs(t, err, ErrBadValue)
	require.NoError(t, s.PutName(ctx, name, nil))
	res, _ = s.Zones().Lookup(name, mdns.TypeA)
	assert.Equal(t, mdns.RcodeNameError, res.Rcode)
	// The apex keeps its SOA and NS when its other records are replaced.
	require.NoError(t, s.PutName(ctx, "nodes.test", []mdns.RR{mustRR(t, "nodes.test", "TXT", "hi", 60)}))
	res, _ = s.Zones().Lookup("nodes.test.", mdns.TypeANY)
	assert.Len(t, res.Answer, 3)
}

func TestStoreNestedZoneTakesItsRecords(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, "", true)
	require.NoError(t, s.AddZone(ctx, Zone{Name: "example.test", NS: []string{"ns1.example.test"}}))
	_, err := s.Add(ctx, mustRR(t, "x.sub.example.test", "A", "192.0.2.1", 60))
	require.NoError(t, err)
	require.NoError(t, s.AddZone(ctx, Zone{Name: "sub.example.test", NS: []string{"ns1.example.test"}}))
	recs, err := s.Records(ctx, "sub.example.test")
	require.NoError(t, err)
	assert.Len(t, recs, 3, "SOA, NS and the moved A")
	res, _ := s.Zones().Lookup("x.sub.example.test.", mdns.TypeA)
	assert.Len(t, res.Answer, 1)
}

// TestStoreFollowsAnotherConnection: a write through another database
// handle (as another process makes it) reaches a following store.
func TestStoreFollowsAnotherConnection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alknet.db")
	server := openStore(t, path, true)
	writer := openStore(t, path, false)
	reloaded := make(chan struct{}, 16)
	server.OnReload(func() {
		select {
		case reloaded <- struct{}{}:
		default:
		}
	})
	ctx := t.Context()
	require.NoError(t, writer.AddZone(ctx, Zone{Name: "example.test", NS: []string{"ns1.example.test"}}))
	_, err := writer.Add(ctx, mustRR(t, "live.example.test", "A", "192.0.2.5", 60))
	require.NoError(t, err)
	deadline := time.After(5 * time.Second)
	for {
		if res, ok := server.Zones().Lookup("live.example.test.", mdns.TypeA); ok && len(res.Answer) == 1 {
			assert.Equal(t, "live.example.test.\t60\tIN\tA\t192.0.2.5", res.Answer[0].String())
			return
		}
		select {
		case <-reloaded:
		case <-deadline:
			t.Fatal("the following store did not see the write within 5s")
		}
	}
}

func TestStoreRecordsOfMissingZone(t *testing.T) {
	s := openStore(t, "", false)
	_, err := s.Records(context.Background(), "nope.test")
	assert.ErrorIs(t, err, ErrNotFound)
}

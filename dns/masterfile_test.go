package dns

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestImportExportRoundTrip(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, "", true)
	n, err := s.Import(ctx, "example.test", strings.NewReader(exampleZone), ImportOptions{})
	require.NoError(t, err)
	assert.Equal(t, 24, n)
	res, ok := s.Zones().Lookup("svc.example.test.", mdns.TypeHTTPS)
	require.True(t, ok)
	assert.Len(t, res.Answer, 1)

	var out bytes.Buffer
	require.NoError(t, s.Export(ctx, "example.test", &out))
	assert.True(t, strings.HasPrefix(out.String(), "$ORIGIN example.test.\nexample.test.\t3600\tIN\tSOA\tns1.example.test. hostmaster.example.test. 7 "), out.String())

	// The export imports into another database as the same records.
	s2 := openStore(t, "", true)
	_, err = s2.Import(ctx, "example.test", bytes.NewReader(out.Bytes()), ImportOptions{})
	require.NoError(t, err)
	var again bytes.Buffer
	require.NoError(t, s2.Export(ctx, "example.test", &again))
	assert.Equal(t, out.String(), again.String())
}

func TestImportReplacesOrMerges(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, "", true)
	require.NoError(t, s.AddZone(ctx, Zone{Name: "example.test", NS: []string{"ns1.example.test"}}))
	_, err := s.Add(ctx, mustRR(t, "old.example.test", "A", "192.0.2.1", 60))
	require.NoError(t, err)

	_, err = s.Import(ctx, "example.test", strings.NewReader("new 60 IN A 192.0.2.2\n"), ImportOptions{Merge: true})
	require.NoError(t, err)
	recs, _ := s.Records(ctx, "example.test")
	assert.Len(t, recs, 4, "SOA, NS, old, new")

	// Replace without an SOA or apex NS in the file keeps them.
	_, err = s.Import(ctx, "example.test", strings.NewReader("new 60 IN A 192.0.2.3\n"), ImportOptions{})
	require.NoError(t, err)
	recs, _ = s.Records(ctx, "example.test")
	var names []string
	for _, r := range recs {
		names = append(names, r.Name+" "+r.Type+" "+r.Value)
	}
	require.Len(t, names, 3)
	assert.True(t, slices.Contains(names, "new.example.test. A 192.0.2.3"), names)
	res, _ := s.Zones().Lookup("old.example.test.", mdns.TypeA)
	assert.Equal(t, mdns.RcodeNameError, res.Rcode)
}

func TestImportRefuses(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, "", true)
	require.NoError(t, s.AddZone(ctx, Zone{Name: "example.test", NS: []string{"ns1.example.test"}}))
	_, err := s.Add(ctx, mustRR(t, "keep.example.test", "A", "192.0.2.1", 60))
	require.NoError(t, err)
	cases := []struct {
		name, file string
		want       error
		msg        string
	}{
		{"include", "$INCLUDE /etc/passwd\n", nil, "$INCLUDE"},
		{"outside", "www.other.test. 60 IN A 192.0.2.1\n", ErrBadName, "outside zone example.test."},
		{"soa below apex", "sub 60 IN SOA a. b. 1 1 1 1 1\n", ErrConflict, "below the apex"},
		{"type", "x 60 IN DNSKEY 256 3 8 AwEAAQ==\n", ErrBadType, "DNSKEY"},
		{"cname and data", "x 60 IN CNAME y\nx 60 IN A 192.0.2.1\n", ErrConflict, "CNAME"},
		{"syntax", "x 60 IN A not-an-address\n", ErrBadValue, ""},
		{"class", "x 60 CH TXT hi\n", ErrBadValue, "only IN"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := s.Import(ctx, "example.test", strings.NewReader(c.file), ImportOptions{})
			require.Error(t, err)
			if c.want != nil {
				assert.ErrorIs(t, err, c.want)
			}
			assert.Contains(t, err.Error(), c.msg)
			res, _ := s.Zones().Lookup("keep.example.test.", mdns.TypeA)
			assert.Len(t, res.Answer, 1, "a refused import changes nothing")
		})
	}
	_, err = s.Import(ctx, "new.test", strings.NewReader("a 60 IN A 192.0.2.1\n"), ImportOptions{})
	assert.ErrorIs(t, err, ErrNotFound)
	assert.Contains(t, err.Error(), "has no SOA")
	// With an SOA the zone is created.
	_, err = s.Import(ctx, "new.test", strings.NewReader("@ 60 IN SOA ns.new.test. h.new.test. 42 1 1 1 1\n@ 60 IN NS ns\na 60 IN A 192.0.2.1\n"), ImportOptions{})
	require.NoError(t, err)
	res, _ := s.Zones().Lookup("new.test.", mdns.TypeSOA)
	assert.Equal(t, uint32(42), res.Answer[0].(*mdns.SOA).Serial)
}

// FuzzParseMasterFile checks zone-file import: whatever a master file
// holds, an accepted one yields only checked records inside the zone, at
// most one SOA and that at the apex, and its records print to a master file
// that parses to the same records.
func FuzzParseMasterFile(f *testing.F) {
	f.Add(exampleZone)
	f.Add("$TTL 60\n@ SOA ns h 1 2 3 4 5\nwww A 192.0.2.1\n")
	f.Add("$GENERATE 1-3 host$ A 192.0.2.$\n")
	f.Add("a ( 60 IN\n TXT \"x\" )\n")
	f.Add("$INCLUDE x\n")
	f.Add("*.w 60 IN MX 10 .\n")
	f.Fuzz(func(t *testing.T, file string) {
		if len(file) > 1<<16 {
			return
		}
		rrs, err := ParseMasterFile(strings.NewReader(file), "example.test.")
		if err != nil {
			return
		}
		var b strings.Builder
		soas := 0
		for _, rr := range rrs {
			h := rr.Header()
			if !inZone("example.test.", h.Name) || !supportedTypes[h.Rrtype] || h.Class != mdns.ClassINET {
				t.Fatalf("accepted %s", rr)
			}
			if h.Rrtype == mdns.TypeSOA {
				soas++
				if h.Name != "example.test." {
					t.Fatalf("SOA below the apex: %s", rr)
				}
			}
			b.WriteString(rr.String() + "\n")
		}
		if soas > 1 {
			t.Fatalf("%d SOA records", soas)
		}
		again, err := ParseMasterFile(strings.NewReader(b.String()), "example.test.")
		if err != nil {
			t.Fatalf("export does not parse: %v\n%s", err, b.String())
		}
		if len(again) != len(rrs) {
			t.Fatalf("%d records, then %d", len(rrs), len(again))
		}
		for i := range rrs {
			if rrs[i].String() != again[i].String() {
				t.Fatalf("%q != %q", rrs[i], again[i])
			}
		}
	})
}

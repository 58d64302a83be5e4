package dns

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"time"

	mdns "github.com/miekg/dns"
)

// Import limits.
const (
	// MaxImportRecords bounds the records one master file may hold
	// ($GENERATE included).
	MaxImportRecords = 100000
	// MaxImportSize bounds the bytes of one master file.
	MaxImportSize = 64 << 20
)

// ParseMasterFile reads an RFC 1035 master file whose origin is zone and
// returns its records, checked and canonical. $INCLUDE is refused (a zone
// file must not name other files of the machine that imports it). Every
// record must lie in the zone; the only SOA allowed is the apex's.
func ParseMasterFile(r io.Reader, zone string) ([]mdns.RR, error) {
	apex, err := CanonicalName(zone)
	if err != nil {
		return nil, err
	}
	lr := &io.LimitedReader{R: r, N: MaxImportSize + 1}
	zp := mdns.NewZoneParser(bufio.NewReader(lr), apex, "")
	zp.SetIncludeAllowed(false)
	zp.SetDefaultTTL(3600)
	var out []mdns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if len(out) == MaxImportRecords {
			return nil, fmt.Errorf("%w: more than %d records", ErrTooMany, MaxImportRecords)
		}
		c, err := checkRR(rr)
		if err != nil {
			return nil, fmt.Errorf("record %d (%s): %w", len(out)+1, rr.Header().Name, err)
		}
		if !inZone(apex, c.Header().Name) {
			return nil, fmt.Errorf("%w: %s is outside zone %s", ErrBadName, c.Header().Name, apex)
		}
		if c.Header().Rrtype == mdns.TypeSOA && c.Header().Name != apex {
			return nil, fmt.Errorf("%w: SOA at %s, below the apex %s", ErrConflict, c.Header().Name, apex)
		}
		out = append(out, c)
	}
	if lr.N <= 0 {
		return nil, fmt.Errorf("%w: master file over %d bytes", ErrTooMany, MaxImportSize)
	}
	if err := zp.Err(); err != nil {
		var pe *mdns.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%w: %s", ErrBadValue, pe.Error())
		}
		return nil, err
	}
	soas := 0
	for _, rr := range out {
		if rr.Header().Rrtype == mdns.TypeSOA {
			soas++
		}
	}
	if soas > 1 {
		return nil, fmt.Errorf("%w: %d SOA records", ErrConflict, soas)
	}
	// The same checks the index makes (CNAME alone at its name).
	probe := out
	if soas == 0 {
		soa, _ := ParseRecord(apex, "SOA", "ns.invalid. hostmaster.invalid. 1 1 1 1 1", 1)
		probe = append([]mdns.RR{soa}, out...)
	}
	if _, err := NewZones(probe); err != nil {
		return nil, err
	}
	return out, nil
}

// ImportOptions control Store.Import.
type ImportOptions struct {
	// Merge adds the file's records to the zone instead of replacing the
	// zone's records with them.
	Merge bool
}

// Import loads a master file into zone in one transaction. The zone is
// created when missing, which needs an SOA in the file. Unless opts.Merge,
// the zone's records are replaced by the file's; an SOA in the file replaces
// the zone's (its serial never goes back), and without one the zone keeps
// its SOA (and its NS, when the file has none). It returns the number of
// records read.
func (s *Store) Import(ctx context.Context, zone string, r io.Reader, opts ImportOptions) (int, error) {
	apex, err := CanonicalName(zone)
	if err != nil {
		return 0, err
	}
	rrs, err := ParseMasterFile(r, apex)
	if err != nil {
		return 0, err
	}
	var soa *mdns.SOA
	hasNS := false
	for _, rr := range rrs {
		switch v := rr.(type) {
		case *mdns.SOA:
			soa = v
		case *mdns.NS:
			hasNS = hasNS || v.Hdr.Name == apex
		}
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		now := time.Now()
		var exists int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM dns_zones WHERE zone = ?`, apex).Scan(&exists); err != nil {
			return err
		}
		if exists == 0 {
			if soa == nil {
				return fmt.Errorf("%w: zone %s does not exist and the file has no SOA (alknet dns zone add creates one)", ErrNotFound, apex)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO dns_zones (zone, serial, created_at, updated_at) VALUES (?, ?, ?, ?)`,
				apex, soa.Serial, now.UnixMilli(), now.UnixMilli()); err != nil {
				return err
			}
			if err := rehome(ctx, tx, apex); err != nil {
				return err
			}
		}
		if !opts.Merge {
			q := `DELETE FROM dns_records WHERE zone = ?`
			if soa == nil {
				q += ` AND type <> 'SOA'`
				if !hasNS {
					q += ` AND NOT (type = 'NS' AND name = zone)`
				}
			}
			if _, err := tx.ExecContext(ctx, q, apex); err != nil {
				return err
			}
		} else if soa != nil {
			if _, err := tx.ExecContext(ctx, `DELETE FROM dns_records WHERE zone = ? AND type = 'SOA'`, apex); err != nil {
				return err
			}
		}
		// Non-CNAME records first, so that a CNAME meets its neighbours.
		for pass := range 2 {
			for _, rr := range rrs {
				if (rr.Header().Rrtype == mdns.TypeCNAME) != (pass == 1) {
					continue
				}
				z, err := zoneFor(ctx, tx, rr.Header().Name)
				if err != nil {
					return err
				}
				if z != apex {
					return fmt.Errorf("%w: %s belongs to zone %s", ErrConflict, rr.Header().Name, z)
				}
				if err := checkAdd(ctx, tx, apex, rr, false); err != nil {
					return err
				}
				if err := insertRR(ctx, tx, apex, rr, now); err != nil {
					return err
				}
			}
		}
		if soa != nil {
			if _, err := tx.ExecContext(ctx, `UPDATE dns_zones SET serial = max(serial, ?) WHERE zone = ?`, soa.Serial, apex); err != nil {
				return err
			}
		}
		if exists > 0 {
			if err := bumpSerial(ctx, tx, apex, now); err != nil {
				return err
			}
		}
		return s.db.Notify(ctx, tx, Channel, apex)
	})
	if err != nil {
		return 0, err
	}
	return len(rrs), nil
}

// Export writes zone as an RFC 1035 master file: $ORIGIN, the SOA with
// the current serial, then every record, one per line with absolute names.
// Import reads it back to the same records.
func (s *Store) Export(ctx context.Context, zone string, w io.Writer) error {
	recs, err := s.Records(ctx, zone)
	if err != nil {
		return err
	}
	apex, _ := CanonicalName(zone)
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "$ORIGIN %s\n", apex)
	for _, r := range recs {
		fmt.Fprintln(bw, r.String())
	}
	return bw.Flush()
}

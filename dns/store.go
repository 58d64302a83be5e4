package dns

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alkdev/alknet/core/store"
	mdns "github.com/miekg/dns"
)

// Channel is the notification channel of the DNS tables in the node
// database; the payload names the zone that changed.
const Channel = "dns"

const schema = `
CREATE TABLE IF NOT EXISTS dns_zones (
	zone       TEXT PRIMARY KEY NOT NULL,
	serial     INTEGER NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS dns_records (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	zone       TEXT NOT NULL REFERENCES dns_zones (zone) ON DELETE CASCADE,
	name       TEXT NOT NULL,
	type       TEXT NOT NULL,
	ttl        INTEGER NOT NULL,
	value      TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	UNIQUE (name, type, value)
);
CREATE INDEX IF NOT EXISTS dns_records_zone ON dns_records (zone);
CREATE INDEX IF NOT EXISTS dns_records_name ON dns_records (name);
`

// StoreConfig configures a Store.
type StoreConfig struct {
	// Follow keeps Zones current: the store subscribes to Channel and
	// rebuilds its index after every change, in this process or another,
	// until Close. False (the CLI) reads the database only when asked.
	Follow bool
	// Logger receives reload errors and records skipped because they no
	// longer parse. Nil is silent.
	Logger *slog.Logger
}

// Store keeps zones in the node database (tables dns_zones and
// dns_records of alknet.db). Every write runs in one transaction that also
// records a notification on Channel, so servers following the database see
// it within milliseconds. Zones is served from memory and never touches
// SQLite.
type Store struct {
	db  *store.DB
	log *slog.Logger
	ix  atomic.Pointer[Zones]

	reloadMu sync.Mutex
	hookMu   sync.Mutex
	hooks    map[int]func()
	nextHook int

	follow *store.Follower // nil unless StoreConfig.Follow
	closed atomic.Bool
}

// NewStore creates the DNS tables in db when missing and loads the zones.
// With cfg.Follow it keeps them current until Close. It does not close db.
func NewStore(ctx context.Context, db *store.DB, cfg StoreConfig) (*Store, error) {
	s := &Store{db: db, log: cfg.Logger, hooks: map[int]func(){}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.ix.Store(&Zones{zones: map[string]*zone{}})
	if err := db.Update(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, schema)
		return err
	}); err != nil {
		return nil, fmt.Errorf("alknet/dns: create tables: %w", err)
	}
	if !cfg.Follow {
		return s, nil
	}
	f, err := db.Follow(ctx, Channel, "dns", s.log, s.Reload)
	if err != nil {
		return nil, err
	}
	s.follow = f
	return s, nil
}

// Close stops following changes; Zones keeps answering from the last index.
// It does not close the database.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if s.follow != nil {
		s.follow.Close()
	}
	return nil
}

// Zones returns the current index. It never blocks.
func (s *Store) Zones() *Zones { return s.ix.Load() }

// OnReload registers f to run after every reload of the index (on the
// goroutine that reloaded); the returned function removes it.
func (s *Store) OnReload(f func()) (remove func()) {
	s.hookMu.Lock()
	defer s.hookMu.Unlock()
	id := s.nextHook
	s.nextHook++
	s.hooks[id] = f
	return func() {
		s.hookMu.Lock()
		defer s.hookMu.Unlock()
		delete(s.hooks, id)
	}
}

// write runs fn in a write transaction and, when following, reloads the
// index so that the writer sees its own change as soon as write returns.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := s.db.Update(ctx, fn); err != nil {
		return err
	}
	if s.follow != nil {
		return s.Reload(ctx)
	}
	return nil
}

// Reload rebuilds the index from the database now.
func (s *Store) Reload(ctx context.Context) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	var rrs []mdns.RR
	err := s.db.Read(ctx, func(tx *sql.Tx) error {
		var err error
		rrs, err = s.loadRRs(ctx, tx, "")
		return err
	})
	if err != nil {
		return err
	}
	zs, err := NewZones(rrs)
	if err != nil {
		// Writes keep the tables consistent; a database changed by hand
		// may not be. Keep serving the last good index.
		return fmt.Errorf("alknet/dns: index zones: %w", err)
	}
	s.ix.Store(zs)
	s.hookMu.Lock()
	hooks := make([]func(), 0, len(s.hooks))
	for _, h := range s.hooks {
		hooks = append(hooks, h)
	}
	s.hookMu.Unlock()
	for _, h := range hooks {
		h()
	}
	return nil
}

// loadRRs reads the records of zone ("" for all) with each SOA's serial
// taken from dns_zones. Rows that do not parse are logged and skipped.
func (s *Store) loadRRs(ctx context.Context, tx *sql.Tx, zone string) ([]mdns.RR, error) {
	q := `SELECT r.name, r.type, r.ttl, r.value, z.serial FROM dns_records r JOIN dns_zones z ON z.zone = r.zone`
	var args []any
	if zone != "" {
		q += ` WHERE r.zone = ?`
		args = append(args, zone)
	}
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []mdns.RR
	for rows.Next() {
		var name, typ, value string
		var ttl, serial int64
		if err := rows.Scan(&name, &typ, &ttl, &value, &serial); err != nil {
			return nil, err
		}
		rr, err := ParseRecord(name, typ, value, uint32(ttl))
		if err != nil {
			s.log.Warn("dns record skipped", "name", name, "type", typ, "err", err)
			continue
		}
		if soa, ok := rr.(*mdns.SOA); ok {
			soa.Serial = uint32(serial)
		}
		out = append(out, rr)
	}
	return out, rows.Err()
}

// Zone describes a zone to create.
type Zone struct {
	// Name is the apex.
	Name string
	// NS are the zone's name servers; at least one.
	NS []string
	// Mbox is the SOA responsible mailbox as a domain name; empty means
	// hostmaster.<zone>.
	Mbox string
	// TTL of the SOA and NS records; zero means 3600.
	TTL uint32
	// Minimum is the SOA MINIMUM field, the TTL of negative answers; zero
	// means 300.
	Minimum uint32
}

// AddZone creates a zone with its SOA and NS records. Records of an
// enclosing zone that fall inside the new one move to it.
func (s *Store) AddZone(ctx context.Context, z Zone) error {
	apex, err := CanonicalName(z.Name)
	if err != nil {
		return err
	}
	if strings.HasPrefix(apex, "*.") {
		return fmt.Errorf("%w: a zone apex cannot be a wildcard", ErrBadName)
	}
	if len(z.NS) == 0 {
		return fmt.Errorf("%w: zone %s needs a name server", ErrBadValue, apex)
	}
	ttl := cmp.Or(z.TTL, 3600)
	minimum := cmp.Or(z.Minimum, 300)
	mbox := z.Mbox
	if mbox == "" {
		mbox = "hostmaster." + apex
	}
	if mbox, err = CanonicalName(mbox); err != nil {
		return err
	}
	rrs := []mdns.RR{}
	soa, err := ParseRecord(apex, "SOA", fmt.Sprintf("%s %s 1 3600 600 604800 %d", z.NS[0], mbox, minimum), ttl)
	if err != nil {
		return err
	}
	rrs = append(rrs, soa)
	for _, ns := range z.NS {
		rr, err := ParseRecord(apex, "NS", ns, ttl)
		if err != nil {
			return err
		}
		rrs = append(rrs, rr)
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM dns_zones WHERE zone = ?`, apex).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: %s", ErrZoneExists, apex)
		}
		var cname int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM dns_records WHERE name = ? AND type = 'CNAME'`, apex).Scan(&cname); err != nil {
			return err
		}
		if cname > 0 {
			return fmt.Errorf("%w: %s has a CNAME; remove it first", ErrConflict, apex)
		}
		now := time.Now()
		if _, err := tx.ExecContext(ctx, `INSERT INTO dns_zones (zone, serial, created_at, updated_at) VALUES (?, ?, ?, ?)`,
			apex, now.Unix(), now.UnixMilli(), now.UnixMilli()); err != nil {
			return err
		}
		// Records of enclosing zones inside the new one move to it.
		if err := rehome(ctx, tx, apex); err != nil {
			return err
		}
		for _, rr := range rrs {
			if err := insertRR(ctx, tx, apex, rr, now); err != nil {
				return err
			}
		}
		return s.db.Notify(ctx, tx, Channel, apex)
	})
}

// rehome moves records at or below apex that belong to an enclosing zone
// into the zone apex.
func rehome(ctx context.Context, tx *sql.Tx, apex string) error {
	rows, err := tx.QueryContext(ctx, `SELECT id, name, zone FROM dns_records WHERE name = ? OR name LIKE ? ESCAPE '\'`,
		apex, "%."+likeEscape(apex))
	if err != nil {
		return err
	}
	var ids []int64
	for rows.Next() {
		var id int64
		var name, zone string
		if err := rows.Scan(&id, &name, &zone); err != nil {
			rows.Close()
			return err
		}
		// Only from a zone that encloses the new one, never from a zone
		// inside it.
		if zone != apex && inZone(zone, apex) {
			ids = append(ids, id)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, id := range ids {
		if _, err := tx.ExecContext(ctx, `UPDATE dns_records SET zone = ? WHERE id = ?`, apex, id); err != nil {
			return err
		}
	}
	return nil
}

func likeEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s)
}

// RemoveZone deletes a zone and its records. It returns how many records
// went with it.
func (s *Store) RemoveZone(ctx context.Context, name string) (int, error) {
	apex, err := CanonicalName(name)
	if err != nil {
		return 0, err
	}
	var n int
	err = s.write(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM dns_records WHERE zone = ?`, apex).Scan(&n); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM dns_zones WHERE zone = ?`, apex)
		if err != nil {
			return err
		}
		if k, _ := res.RowsAffected(); k == 0 {
			return fmt.Errorf("%w: zone %s", ErrNotFound, apex)
		}
		return s.db.Notify(ctx, tx, Channel, apex)
	})
	return n, err
}

// ZoneInfo is a zone as listed.
type ZoneInfo struct {
	Name    string `json:"name"`
	Serial  uint32 `json:"serial"`
	Records int    `json:"records"`
}

// ListZones lists the zones, sorted by name.
func (s *Store) ListZones(ctx context.Context) ([]ZoneInfo, error) {
	var out []ZoneInfo
	err := s.db.Read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT z.zone, z.serial, (SELECT count(*) FROM dns_records r WHERE r.zone = z.zone) FROM dns_zones z ORDER BY z.zone`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var zi ZoneInfo
			var serial int64
			if err := rows.Scan(&zi.Name, &serial, &zi.Records); err != nil {
				return err
			}
			zi.Serial = uint32(serial)
			out = append(out, zi)
		}
		return rows.Err()
	})
	return out, err
}

// zoneFor returns the zone with the longest apex holding name.
func zoneFor(ctx context.Context, tx *sql.Tx, name string) (string, error) {
	for n := name; n != ""; n = parentName(n) {
		var found int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM dns_zones WHERE zone = ?`, n).Scan(&found); err != nil {
			return "", err
		}
		if found > 0 {
			return n, nil
		}
	}
	return "", fmt.Errorf("%w: %s (alknet dns zone add creates one)", ErrNoZone, strings.TrimSuffix(name, "."))
}

// bumpSerial advances a zone's SOA serial: one more than before, or the
// current Unix time if that is larger.
func bumpSerial(ctx context.Context, tx *sql.Tx, zone string, now time.Time) error {
	_, err := tx.ExecContext(ctx, `UPDATE dns_zones SET serial = (CASE WHEN serial + 1 > ? THEN serial + 1 ELSE ? END) % 4294967296, updated_at = ? WHERE zone = ?`,
		now.Unix(), now.Unix(), now.UnixMilli(), zone)
	return err
}

func insertRR(ctx context.Context, tx *sql.Tx, zone string, rr mdns.RR, now time.Time) error {
	r := RecordOf(rr)
	_, err := tx.ExecContext(ctx, `INSERT INTO dns_records (zone, name, type, ttl, value, created_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (name, type, value) DO UPDATE SET ttl = excluded.ttl, zone = excluded.zone`,
		zone, r.Name, r.Type, r.TTL, r.Value, now.UnixMilli())
	return err
}

// typesAt returns the record types present at name.
func typesAt(ctx context.Context, tx *sql.Tx, name string) (map[string]int, error) {
	rows, err := tx.QueryContext(ctx, `SELECT type, count(*) FROM dns_records WHERE name = ? GROUP BY type`, name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var t string
		var n int
		if err := rows.Scan(&t, &n); err != nil {
			return nil, err
		}
		out[t] = n
	}
	return out, rows.Err()
}

// checkAdd refuses a record that cannot join what is at its name.
func checkAdd(ctx context.Context, tx *sql.Tx, zone string, rr mdns.RR, replacing bool) error {
	h := rr.Header()
	typ := mdns.TypeToString[h.Rrtype]
	if h.Rrtype == mdns.TypeSOA && h.Name != zone {
		return fmt.Errorf("%w: an SOA belongs at a zone apex (%s)", ErrConflict, zone)
	}
	if h.Rrtype == mdns.TypeCNAME && h.Name == zone {
		return fmt.Errorf("%w: a CNAME cannot be at a zone apex", ErrConflict)
	}
	have, err := typesAt(ctx, tx, h.Name)
	if err != nil {
		return err
	}
	if replacing {
		delete(have, typ)
	}
	others := 0
	for t, n := range have {
		if t != typ {
			others += n
		}
	}
	switch {
	case h.Rrtype == mdns.TypeCNAME && others > 0:
		return fmt.Errorf("%w: %s has other records; a CNAME must be alone", ErrConflict, h.Name)
	case h.Rrtype != mdns.TypeCNAME && have["CNAME"] > 0:
		return fmt.Errorf("%w: %s has a CNAME; remove it first", ErrConflict, h.Name)
	case h.Rrtype == mdns.TypeCNAME && have["CNAME"] > 0:
		var same int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM dns_records WHERE name = ? AND type = 'CNAME' AND value = ?`,
			h.Name, rdataString(rr)).Scan(&same); err != nil {
			return err
		}
		if same == 0 {
			return fmt.Errorf("%w: %s already has a CNAME; remove it first", ErrConflict, h.Name)
		}
	case h.Rrtype == mdns.TypeSOA && have["SOA"] > 0:
		return fmt.Errorf("%w: %s already has an SOA", ErrConflict, h.Name)
	}
	return nil
}

// Add adds rr to the zone that holds its name. All records of its RRset
// take rr's TTL (RFC 2181 section 5.2). Adding a record that exists changes
// only the TTL; added reports whether it is new. SOA records come with
// AddZone and PutRRset.
func (s *Store) Add(ctx context.Context, rr mdns.RR) (added bool, err error) {
	rr, err = checkRR(rr)
	if err != nil {
		return false, err
	}
	if rr.Header().Rrtype == mdns.TypeSOA {
		return false, fmt.Errorf("%w: an SOA comes with its zone (alknet dns zone add)", ErrConflict)
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		h := rr.Header()
		zone, err := zoneFor(ctx, tx, h.Name)
		if err != nil {
			return err
		}
		if err := checkAdd(ctx, tx, zone, rr, false); err != nil {
			return err
		}
		var exists int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM dns_records WHERE name = ? AND type = ? AND value = ?`,
			h.Name, mdns.TypeToString[h.Rrtype], rdataString(rr)).Scan(&exists); err != nil {
			return err
		}
		added = exists == 0
		now := time.Now()
		if err := insertRR(ctx, tx, zone, rr, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE dns_records SET ttl = ? WHERE name = ? AND type = ?`,
			h.Ttl, h.Name, mdns.TypeToString[h.Rrtype]); err != nil {
			return err
		}
		if err := bumpSerial(ctx, tx, zone, now); err != nil {
			return err
		}
		return s.db.Notify(ctx, tx, Channel, zone)
	})
	return added, err
}

// Remove deletes the records at name: all of them when typ is empty, those
// of one type when value is empty, else the one record. It returns how many
// went; none is ErrNotFound. The SOA at an apex goes only with its zone
// (RemoveZone).
func (s *Store) Remove(ctx context.Context, name, typ, value string) (int, error) {
	owner, err := CanonicalName(name)
	if err != nil {
		return 0, err
	}
	q := `SELECT id, zone, type FROM dns_records WHERE name = ?`
	args := []any{owner}
	if typ != "" {
		t, err := ParseType(typ)
		if err != nil {
			return 0, err
		}
		q += ` AND type = ?`
		args = append(args, mdns.TypeToString[t])
		if value != "" {
			rr, err := ParseRecord(owner, typ, value, 0)
			if err != nil {
				return 0, err
			}
			q += ` AND value = ?`
			args = append(args, rdataString(rr))
		}
	} else if value != "" {
		return 0, fmt.Errorf("%w: a value needs a type", ErrBadValue)
	}
	var n int
	err = s.write(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		var ids []int64
		zones := map[string]bool{}
		soa := false
		for rows.Next() {
			var id int64
			var zone, t string
			if err := rows.Scan(&id, &zone, &t); err != nil {
				rows.Close()
				return err
			}
			if t == "SOA" {
				soa = true
				continue
			}
			ids = append(ids, id)
			zones[zone] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(ids) == 0 {
			if soa && typ != "" {
				return fmt.Errorf("%w: the SOA goes only with its zone (alknet dns zone rm)", ErrConflict)
			}
			return fmt.Errorf("%w: no matching records at %s", ErrNotFound, owner)
		}
		for _, id := range ids {
			if _, err := tx.ExecContext(ctx, `DELETE FROM dns_records WHERE id = ?`, id); err != nil {
				return err
			}
		}
		n = len(ids)
		now := time.Now()
		for z := range zones {
			if err := bumpSerial(ctx, tx, z, now); err != nil {
				return err
			}
			if err := s.db.Notify(ctx, tx, Channel, z); err != nil {
				return err
			}
		}
		return nil
	})
	return n, err
}

// PutRRset replaces the RRset name/rrtype with rrs (all of that name and
// type) in one transaction; an empty rrs deletes it. rrtype SOA is allowed
// at an apex only, and the zone's serial is kept increasing. This is how a
// program serves records it computes (a node's signed address record, for
// one): the change reaches every server following the database.
func (s *Store) PutRRset(ctx context.Context, name string, rrtype uint16, rrs []mdns.RR) error {
	owner, err := CanonicalName(name)
	if err != nil {
		return err
	}
	typ, ok := mdns.TypeToString[rrtype]
	if !ok || !supportedTypes[rrtype] {
		return fmt.Errorf("%w: type %d", ErrBadType, rrtype)
	}
	clean := make([]mdns.RR, 0, len(rrs))
	for _, rr := range rrs {
		c, err := checkRR(rr)
		if err != nil {
			return err
		}
		if c.Header().Name != owner || c.Header().Rrtype != rrtype {
			return fmt.Errorf("%w: %s %s in the RRset of %s %s", ErrBadValue, c.Header().Name, mdns.TypeToString[c.Header().Rrtype], owner, typ)
		}
		clean = append(clean, c)
	}
	if rrtype == mdns.TypeSOA && len(clean) != 1 {
		return fmt.Errorf("%w: a zone has exactly one SOA", ErrConflict)
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		zone, err := zoneFor(ctx, tx, owner)
		if err != nil {
			return err
		}
		return s.putRRset(ctx, tx, zone, owner, rrtype, clean, time.Now())
	})
}

// PutName replaces every record at name with rrs (which must all be owned
// by name) in one transaction, so that a reader sees the old set or the
// new one. An empty rrs deletes the name. The SOA and NS of an apex are
// kept unless rrs holds them.
func (s *Store) PutName(ctx context.Context, name string, rrs []mdns.RR) error {
	owner, err := CanonicalName(name)
	if err != nil {
		return err
	}
	sets := map[uint16][]mdns.RR{}
	for _, rr := range rrs {
		c, err := checkRR(rr)
		if err != nil {
			return err
		}
		if c.Header().Name != owner {
			return fmt.Errorf("%w: %s among the records of %s", ErrBadValue, c.Header().Name, owner)
		}
		sets[c.Header().Rrtype] = append(sets[c.Header().Rrtype], c)
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		zone, err := zoneFor(ctx, tx, owner)
		if err != nil {
			return err
		}
		now := time.Now()
		have, err := typesAt(ctx, tx, owner)
		if err != nil {
			return err
		}
		for t := range have {
			rt := mdns.StringToType[t]
			if _, keep := sets[rt]; keep {
				continue
			}
			if owner == zone && (rt == mdns.TypeSOA || rt == mdns.TypeNS) {
				continue
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM dns_records WHERE name = ? AND type = ?`, owner, t); err != nil {
				return err
			}
		}
		// CNAME last so that it sees the other types gone.
		types := make([]uint16, 0, len(sets))
		for t := range sets {
			types = append(types, t)
		}
		slices.SortFunc(types, func(a, b uint16) int {
			return cmp.Compare(boolInt(a == mdns.TypeCNAME), boolInt(b == mdns.TypeCNAME))
		})
		for _, t := range types {
			if err := s.putRRset(ctx, tx, zone, owner, t, sets[t], now); err != nil {
				return err
			}
		}
		if len(sets) == 0 {
			if err := bumpSerial(ctx, tx, zone, now); err != nil {
				return err
			}
			return s.db.Notify(ctx, tx, Channel, zone)
		}
		return nil
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (s *Store) putRRset(ctx context.Context, tx *sql.Tx, zone, owner string, rrtype uint16, rrs []mdns.RR, now time.Time) error {
	typ := mdns.TypeToString[rrtype]
	if rrtype == mdns.TypeSOA && owner != zone {
		return fmt.Errorf("%w: an SOA belongs at a zone apex (%s)", ErrConflict, zone)
	}
	if rrtype == mdns.TypeSOA && len(rrs) == 0 {
		return fmt.Errorf("%w: the SOA goes only with its zone", ErrConflict)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM dns_records WHERE name = ? AND type = ?`, owner, typ); err != nil {
		return err
	}
	for _, rr := range rrs {
		if err := checkAdd(ctx, tx, zone, rr, true); err != nil {
			return err
		}
		if rrtype == mdns.TypeCNAME && len(rrs) > 1 {
			return fmt.Errorf("%w: a name has one CNAME at most", ErrConflict)
		}
		if err := insertRR(ctx, tx, zone, rr, now); err != nil {
			return err
		}
	}
	if rrtype == mdns.TypeSOA {
		soa := rrs[0].(*mdns.SOA)
		if _, err := tx.ExecContext(ctx, `UPDATE dns_zones SET serial = max(serial, ?) WHERE zone = ?`, soa.Serial, zone); err != nil {
			return err
		}
	}
	if err := bumpSerial(ctx, tx, zone, now); err != nil {
		return err
	}
	return s.db.Notify(ctx, tx, Channel, zone)
}

// Records lists the records of zone, or of every zone when zone is empty,
// sorted by zone, then name in DNS order (parents before children), type
// and value. The SOA shows the zone's current serial.
func (s *Store) Records(ctx context.Context, zone string) ([]Record, error) {
	if zone != "" {
		z, err := CanonicalName(zone)
		if err != nil {
			return nil, err
		}
		zone = z
	}
	var out []Record
	err := s.db.Read(ctx, func(tx *sql.Tx) error {
		if zone != "" {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM dns_zones WHERE zone = ?`, zone).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				return fmt.Errorf("%w: zone %s", ErrNotFound, zone)
			}
		}
		q := `SELECT r.zone, r.name, r.type, r.ttl, r.value, z.serial FROM dns_records r JOIN dns_zones z ON z.zone = r.zone`
		var args []any
		if zone != "" {
			q += ` WHERE r.zone = ?`
			args = append(args, zone)
		}
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var r Record
			var ttl, serial int64
			if err := rows.Scan(&r.Zone, &r.Name, &r.Type, &ttl, &r.Value, &serial); err != nil {
				return err
			}
			r.TTL = uint32(ttl)
			if r.Type == "SOA" {
				if rr, err := r.RR(); err == nil {
					rr.(*mdns.SOA).Serial = uint32(serial)
					r.Value = rdataString(rr)
				}
			}
			out = append(out, r)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	sortRecords(out)
	return out, nil
}

// sortRecords orders records by zone, name in canonical DNS order, SOA
// first, then type and value.
func sortRecords(rs []Record) {
	slices.SortFunc(rs, func(a, b Record) int {
		return cmp.Or(
			compareNames(a.Zone, b.Zone),
			compareNames(a.Name, b.Name),
			cmp.Compare(boolInt(a.Type != "SOA"), boolInt(b.Type != "SOA")),
			cmp.Compare(boolInt(a.Type != "NS"), boolInt(b.Type != "NS")),
			cmp.Compare(a.Type, b.Type),
			cmp.Compare(a.Value, b.Value),
		)
	})
}

// compareNames compares domain names label by label from the right.
func compareNames(a, b string) int {
	la, lb := mdns.SplitDomainName(a), mdns.SplitDomainName(b)
	for i, j := len(la)-1, len(lb)-1; i >= 0 && j >= 0; i, j = i-1, j-1 {
		if c := cmp.Compare(la[i], lb[j]); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(la), len(lb))
}

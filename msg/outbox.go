package msg

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/alkdev/alknet/core"
)

// OutboxConfig configures an Outbox. Store, Key and Dial are required.
type OutboxConfig struct {
	// Store holds the outbox table (and the key cache).
	Store *Store
	// Key is the node's message key: its node key signs what is sent, and
	// messages waiting for a recipient's key are sealed to it meanwhile.
	Key *PrivateKey
	// Dial connects to a mailbox node on ALPN, e.g.
	// func(ctx, a) { return ep.Dial(ctx, a, msg.ALPN) }.
	Dial func(ctx context.Context, addr core.Addr) (core.Conn, error)
	// MinBackoff is the wait after the first failed attempt; each further
	// failure doubles it (with ±20% jitter) up to MaxBackoff. Zero means 1s
	// and 10 minutes.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// MaxAge is how long a message is retried before the outbox gives up
	// and marks it failed. Zero means 14 days (a mailbox refuses older
	// messages anyway).
	MaxAge time.Duration
	// AttemptTimeout bounds one delivery attempt, dial included. Zero means
	// 30s.
	AttemptTimeout time.Duration
	// Workers is how many deliveries run at once. Zero means 8.
	Workers int
	// Logger receives one line per failed attempt. Nil is silent.
	Logger *slog.Logger
}

// Outbox is store-and-forward: Send writes a sealed message to the outbox
// table first, and Run delivers every due message, retrying with
// exponential backoff until the mailbox acknowledges it. Rows survive
// restarts; several processes may share the table (a row is leased to one
// attempt at a time).
type Outbox struct {
	cfg OutboxConfig
	st  *Store
	key *PrivateKey
	log *slog.Logger
}

// NewOutbox validates cfg and returns the outbox.
func NewOutbox(cfg OutboxConfig) (*Outbox, error) {
	if cfg.Store == nil || cfg.Key == nil || cfg.Dial == nil {
		return nil, errors.New("alknet/msg: OutboxConfig needs Store, Key and Dial")
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 10 * time.Minute
	}
	cfg.MaxBackoff = max(cfg.MaxBackoff, cfg.MinBackoff)
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 14 * 24 * time.Hour
	}
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = 30 * time.Second
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Outbox{cfg: cfg, st: cfg.Store, key: cfg.Key, log: cfg.Logger}, nil
}

// Send seals m for the node to and queues it for delivery to the mailbox
// node at via (to itself, or the node that hosts its mailbox). m's id and
// time are filled in when zero. When to's key record is not cached yet,
// the message is sealed to this node meanwhile and sealed again for to
// once an attempt has fetched its key from via. Send does no network I/O:
// Run (or Attempt) delivers.
func (o *Outbox) Send(ctx context.Context, to core.NodeID, via core.Addr, m *Message) (MessageID, error) {
	if to.IsZero() || via.ID.IsZero() {
		return MessageID{}, errors.New("alknet/msg: send: no recipient")
	}
	if m.ID == (MessageID{}) {
		m.ID = NewMessageID()
	}
	if m.Time.IsZero() {
		m.Time = time.Now()
	}
	var env []byte
	sealed := 0
	rec, _, err := o.st.CachedKey(ctx, to)
	switch {
	case err == nil:
		env, err = Seal(o.key.node, rec, m)
		sealed = 1
	case errors.Is(err, ErrNotFound):
		self := *m
		env, err = sealTo(o.key.node, o.key.NodeID(), o.key.kem.PublicKey(), &self)
		m.Sender, m.Recipient = self.Sender, to
	}
	if err != nil {
		return MessageID{}, err
	}
	return m.ID, o.insert(ctx, m.ID, to, via, env, sealed)
}

// Queue puts an envelope sealed elsewhere in the outbox for delivery to
// the mailbox node at via. Its outbox id is the first 16 bytes of the
// envelope's SHA-256.
func (o *Outbox) Queue(ctx context.Context, via core.Addr, envelope []byte) (MessageID, error) {
	to, err := EnvelopeRecipient(envelope)
	if err != nil {
		return MessageID{}, err
	}
	d := sha256.Sum256(envelope)
	var id MessageID
	copy(id[:], d[:])
	return id, o.insert(ctx, id, to, via, envelope, 1)
}

func (o *Outbox) insert(ctx context.Context, id MessageID, to core.NodeID, via core.Addr, env []byte, sealed int) error {
	now := time.Now().UnixMilli()
	return o.st.db.Update(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO msg_outbox (message_id, recipient, addr, envelope, sealed, next_try, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, id[:], to[:], via.String(), env, sealed, now, now)
		if err != nil {
			return fmt.Errorf("alknet/msg: queue %s: %w", id, err)
		}
		return o.st.db.Notify(ctx, tx, OutboxChannel, id.String())
	})
}

// OutboxEntry is one queued message, as List shows it.
type OutboxEntry struct {
	ID        MessageID   `json:"id"`
	Recipient core.NodeID `json:"recipient"`
	Addr      string      `json:"addr"`
	Size      int         `json:"size"`
	Sealed    bool        `json:"sealed"` // false while the recipient's key is not known yet
	State     string      `json:"state"`  // "pending" or "failed"
	Attempts  int         `json:"attempts"`
	NextTry   time.Time   `json:"next_try"`
	Created   time.Time   `json:"created"`
	LastError string      `json:"last_error,omitempty"`
}

// List returns the queued messages, oldest first.
func (o *Outbox) List(ctx context.Context) ([]OutboxEntry, error) { return o.st.Outbox(ctx) }

// Outbox returns the queued messages, oldest first.
func (s *Store) Outbox(ctx context.Context) ([]OutboxEntry, error) {
	var out []OutboxEntry
	err := s.db.Read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT message_id, recipient, addr, length(envelope), sealed, state, attempts, next_try, created_at, last_error
			FROM msg_outbox ORDER BY created_at, message_id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var e OutboxEntry
			var id, rcpt []byte
			var next, created int64
			if err := rows.Scan(&id, &rcpt, &e.Addr, &e.Size, &e.Sealed, &e.State, &e.Attempts, &next, &created, &e.LastError); err != nil {
				return err
			}
			copy(e.ID[:], id)
			copy(e.Recipient[:], rcpt)
			e.NextTry, e.Created = time.UnixMilli(next), time.UnixMilli(created)
			out = append(out, e)
		}
		return rows.Err()
	})
	return out, err
}

// Run delivers due messages until ctx ends: on start, after every change
// to the outbox (in this process or another) and when the next retry is
// due.
func (o *Outbox) Run(ctx context.Context) error {
	sub, err := o.st.db.Subscribe(OutboxChannel)
	if err != nil {
		return err
	}
	defer sub.Close()
	sem := make(chan struct{}, o.cfg.Workers)
	var wg sync.WaitGroup
	defer wg.Wait()
	busy := map[MessageID]bool{}
	var mu sync.Mutex
	done := make(chan struct{}, 1)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		due, next, err := o.due(ctx)
		if err != nil && ctx.Err() == nil {
			o.log.Warn("msg outbox", "err", err)
			next = time.Now().Add(time.Second)
		}
		for _, id := range due {
			mu.Lock()
			if busy[id] {
				mu.Unlock()
				continue
			}
			busy[id] = true
			mu.Unlock()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
			wg.Go(func() {
				defer func() { <-sem }()
				_ = o.Attempt(ctx, id)
				mu.Lock()
				delete(busy, id)
				mu.Unlock()
				select {
				case done <- struct{}{}:
				default:
				}
			})
		}
		wait := time.Hour
		if !next.IsZero() {
			wait = max(time.Until(next), 0)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case _, ok := <-sub.C:
			if !ok {
				return ErrClosed
			}
		case <-timer.C:
		case <-done:
		}
	}
}

// due returns the ids of pending messages whose retry time has come and
// that no attempt holds, and the earliest future retry time.
func (o *Outbox) due(ctx context.Context) ([]MessageID, time.Time, error) {
	now := time.Now().UnixMilli()
	var ids []MessageID
	var next time.Time
	err := o.st.db.Read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT message_id FROM msg_outbox WHERE state = 'pending' AND next_try <= ? AND lease_until <= ?
			ORDER BY next_try LIMIT 256`, now, now)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var b []byte
			if err := rows.Scan(&b); err != nil {
				return err
			}
			var id MessageID
			copy(id[:], b)
			ids = append(ids, id)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		var n sql.NullInt64
		err = tx.QueryRowContext(ctx, `SELECT min(max(next_try, lease_until)) FROM msg_outbox WHERE state = 'pending' AND max(next_try, lease_until) > ?`, now).Scan(&n)
		if err == nil && n.Valid {
			next = time.UnixMilli(n.Int64)
		}
		return err
	})
	return ids, next, err
}

// Attempt tries to deliver one queued message now, whatever its retry
// time, unless another attempt holds it. On acknowledgement the message
// leaves the outbox; on failure it is rescheduled with backoff, or marked
// failed when the mailbox refused it for good or it is older than MaxAge.
func (o *Outbox) Attempt(ctx context.Context, id MessageID) error {
	row, err := o.claim(ctx, id)
	if err != nil {
		return err
	}
	actx, cancel := context.WithTimeout(ctx, o.cfg.AttemptTimeout)
	defer cancel()
	err = o.attempt(actx, row)
	if err == nil {
		return o.st.db.Update(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `DELETE FROM msg_outbox WHERE message_id = ?`, id[:]); err != nil {
				return err
			}
			return o.st.db.Notify(ctx, tx, OutboxChannel, id.String())
		})
	}
	permanent := false
	var re *RemoteError
	if errors.As(err, &re) && !re.Code.Temporary() {
		permanent = true
	}
	if errors.Is(err, ErrEnvelope) || errors.Is(err, ErrTooLarge) {
		permanent = true
	}
	if time.Since(row.created) > o.cfg.MaxAge {
		permanent = true
		err = fmt.Errorf("gave up after %s: %w", o.cfg.MaxAge, err)
	}
	o.log.Info("msg delivery failed", "msg", id.String(), "peer", row.via.String(), "attempt", row.attempts, "permanent", permanent, "err", err)
	back := o.backoff(row.attempts)
	// The lease is released even when ctx ended (a shutdown), so the next
	// run need not wait for it to expire.
	uctx, ucancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer ucancel()
	uerr := o.st.db.Update(uctx, func(tx *sql.Tx) error {
		state := "pending"
		if permanent {
			state = "failed"
		}
		_, err2 := tx.ExecContext(uctx, `UPDATE msg_outbox SET state = ?, next_try = ?, lease_until = 0, last_error = ? WHERE message_id = ?`,
			state, time.Now().Add(back).UnixMilli(), lastError(err), id[:])
		if err2 != nil {
			return err2
		}
		return o.st.db.Notify(uctx, tx, OutboxChannel, id.String())
	})
	return errors.Join(err, uerr)
}

func lastError(err error) string {
	s := err.Error()
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}

// backoff is MinBackoff doubled per earlier attempt, capped, ±20%.
func (o *Outbox) backoff(attempts int) time.Duration {
	d := o.cfg.MinBackoff
	for i := 1; i < attempts && d < o.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, o.cfg.MaxBackoff)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

type outRow struct {
	id       MessageID
	to       core.NodeID
	via      core.Addr
	env      []byte
	sealed   bool
	attempts int
	created  time.Time
}

// claim leases the row to this attempt and counts the attempt.
func (o *Outbox) claim(ctx context.Context, id MessageID) (outRow, error) {
	r := outRow{id: id}
	now := time.Now()
	lease := now.Add(o.cfg.AttemptTimeout + 5*time.Second).UnixMilli()
	err := o.st.db.Update(ctx, func(tx *sql.Tx) error {
		var to, env []byte
		var addr string
		var created int64
		err := tx.QueryRowContext(ctx, `UPDATE msg_outbox SET lease_until = ?, attempts = attempts + 1
			WHERE message_id = ? AND state = 'pending' AND lease_until <= ?
			RETURNING recipient, addr, envelope, sealed, attempts, created_at`, lease, id[:], now.UnixMilli()).
			Scan(&to, &addr, &env, &r.sealed, &r.attempts, &created)
		if errors.Is(err, sql.ErrNoRows) {
			var one int
			if tx.QueryRowContext(ctx, `SELECT 1 FROM msg_outbox WHERE message_id = ?`, id[:]).Scan(&one) == nil {
				return ErrLeased
			}
			return fmt.Errorf("%w: message %s is not in the outbox", ErrNotFound, id)
		}
		if err != nil {
			return err
		}
		copy(r.to[:], to)
		r.env, r.created = env, time.UnixMilli(created)
		r.via, err = core.ParseAddr(addr)
		return err
	})
	return r, err
}

// attempt delivers a claimed row, sealing it for the recipient first if
// it still waits for the recipient's key.
func (o *Outbox) attempt(ctx context.Context, r outRow) error {
	conn, err := o.cfg.Dial(ctx, r.via)
	if err != nil {
		return err
	}
	defer conn.Close(core.CodeOK, "")
	c := NewClient(conn)
	if !r.sealed {
		if r.env, err = o.reseal(ctx, c, r); err != nil {
			return err
		}
	}
	_, err = c.Deliver(ctx, r.env)
	return err
}

// reseal fetches (or reads from the cache) the recipient's key, opens the
// copy sealed to this node and seals it for the recipient, keeping id and
// time; the outbox row is updated before delivery, so every later attempt
// sends the same bytes.
func (o *Outbox) reseal(ctx context.Context, c *Client, r outRow) ([]byte, error) {
	rec, _, err := o.st.CachedKey(ctx, r.to)
	if err != nil {
		q := r.to
		if q == r.via.ID {
			q = core.NodeID{}
		}
		if rec, err = c.Key(ctx, q); err != nil {
			return nil, err
		}
		if rec.Node != r.to {
			return nil, fmt.Errorf("%w: record of %s, want %s", ErrKeyRecord, rec.Node, r.to)
		}
		addr := ""
		if r.via.ID == r.to {
			addr = r.via.String()
		}
		if err := o.st.CacheKey(ctx, rec, addr); err != nil {
			return nil, err
		}
	}
	m, err := Open(o.key, r.env)
	if err != nil {
		return nil, fmt.Errorf("open the queued copy: %w", err)
	}
	out := &Message{ID: m.ID, Time: m.Time, ContentType: m.ContentType, Body: m.Body}
	env, err := Seal(o.key.node, rec, out)
	clear(m.Body)
	if err != nil {
		return nil, err
	}
	err = o.st.db.Update(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE msg_outbox SET envelope = ?, sealed = 1 WHERE message_id = ? AND sealed = 0`, env, r.id[:])
		return err
	})
	return env, err
}

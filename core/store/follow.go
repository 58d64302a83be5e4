package store

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// Follower keeps an in-memory view current with the database: it reloads
// after every notification on a channel, across processes. See Follow.
type Follower struct {
	sub    *Subscription
	cancel context.CancelFunc
	done   chan struct{}
}

// followRetry is how long a failed reload waits before it is tried again.
const followRetry = 100 * time.Millisecond

// Follow subscribes to channel, runs reload once (its error is Follow's),
// then again after every wake-up until Close. A failed reload is logged
// as "<what> reload" and retried until it succeeds; it stops when the
// database is closed.
func (db *DB) Follow(ctx context.Context, channel, what string, log *slog.Logger, reload func(context.Context) error) (*Follower, error) {
	sub, err := db.Subscribe(channel)
	if err != nil {
		return nil, err
	}
	if err := reload(ctx); err != nil {
		sub.Close()
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	wctx, cancel := context.WithCancel(context.Background())
	f := &Follower{sub: sub, cancel: cancel, done: make(chan struct{})}
	go f.watch(wctx, what, log, reload)
	return f, nil
}

func (f *Follower) watch(ctx context.Context, what string, log *slog.Logger, reload func(context.Context) error) {
	defer close(f.done)
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-f.sub.C:
			if !ok {
				return
			}
		case <-retry:
		}
		retry = nil
		if err := reload(ctx); err != nil {
			if ctx.Err() != nil || errors.Is(err, ErrClosed) {
				return
			}
			log.Warn(what+" reload", "err", err)
			retry = time.After(followRetry)
		}
	}
}

// Close stops following and waits for a reload in progress to end.
func (f *Follower) Close() {
	f.cancel()
	f.sub.Close()
	<-f.done
}

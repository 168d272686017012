package eventstore

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
)

// notifySubject is where a successful append is announced (core NATS, not
// stored): only a hint for waiters, who always re-read the store.
func notifySubject(subject string) string { return "notify." + subject }

// announce tells waiters in any process that subject changed.
func (s *Store) announce(subject string) { _ = s.nc.Publish(notifySubject(subject), nil) }

// Await loads aggregate id until done reports true for its snapshot or
// timeout passes, and returns the last snapshot it loaded. It wakes on the
// announcements of appends, and re-reads every 250ms in case one was missed.
func (r *Repository[S, E]) Await(ctx context.Context, id string, timeout time.Duration, done func(Snapshot[S]) bool) (Snapshot[S], error) {
	return r.AwaitAfter(ctx, id, 0, timeout, done)
}

// AwaitAfter is Await for a caller whose own append left aggregate id at
// stream sequence seq (0: none). A snapshot this process's cache holds and
// done accepts is returned without reading the store: the cache only holds
// states the aggregate was in, put there by an append of this process (the
// reservation processor's or the saga's, before they announce it) or by a
// read. And while the cache holds the aggregate at seq or later, the first
// look needs no read either: an append of another process after it is
// announced (and re-read every 250ms in case the announcement was lost).
// This matters under load, where a read waits for the batch the server is
// committing, and a buyer waiting for its order's outcome made two.
func (r *Repository[S, E]) AwaitAfter(ctx context.Context, id string, seq uint64, timeout time.Duration, done func(Snapshot[S]) bool) (Snapshot[S], error) {
	subject := r.Subject(id)
	// Answered from the cache, as the loop's first look would, before the
	// subscription and the timer: a directly placed order is final before
	// its buyer starts waiting, and a subscription costs the server a
	// SUB and an UNSUB per order.
	if snap, cached := r.cache.get(subject); cached && done(snap) {
		return snap, nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	changed := make(chan struct{}, 1)
	sub, err := r.store.nc.Subscribe(notifySubject(subject), func(_ *nats.Msg) {
		select {
		case changed <- struct{}{}:
		default:
		}
	})
	if err == nil {
		defer func() { _ = sub.Unsubscribe() }()
	}
	for first := true; ; first = false {
		snap, cached := r.cache.get(subject)
		if cached && done(snap) {
			return snap, nil
		}
		if !first || !cached || seq == 0 || snap.LastSeq < seq {
			var err error
			if snap, err = r.Load(ctx, id); err != nil || done(snap) {
				return snap, err
			}
		}
		select {
		case <-ctx.Done():
			return snap, nil
		case <-changed:
		case <-time.After(250 * time.Millisecond):
		}
	}
}

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
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	changed := make(chan struct{}, 1)
	sub, err := r.store.nc.Subscribe(notifySubject(r.Subject(id)), func(_ *nats.Msg) {
		select {
		case changed <- struct{}{}:
		default:
		}
	})
	if err == nil {
		defer func() { _ = sub.Unsubscribe() }()
	}
	for {
		snap, err := r.Load(ctx, id)
		if err != nil || done(snap) {
			return snap, err
		}
		select {
		case <-ctx.Done():
			return snap, nil
		case <-changed:
		case <-time.After(250 * time.Millisecond):
		}
	}
}

package eventstore

import (
	"context"
	"strings"

	"github.com/cockroachdb/errors"
)

// IsEventSubject reports whether subject holds events (orders.*,
// inventory.*) rather than the other messages the stream keeps beside them.
// The subject is a logical one, as every reader of this package sees it.
func IsEventSubject(subject string) bool {
	return strings.HasPrefix(subject, OrderSubjects+".") || strings.HasPrefix(subject, InventorySubjects+".")
}

// ReadEvents calls fn with every event of shard k whose stream sequence is
// in [from, to] (to 0: up to the end), in stream order, with its position
// and logical subject, reading page by page with direct gets. Other
// messages of the stream (idempotency records, reservation requests,
// timers) are skipped.
func (s *Store) ReadEvents(ctx context.Context, k int, from, to uint64, fn func(pos Position, subject string, e Envelope) error) error {
	sh, err := s.shardAt(k)
	if err != nil {
		return err
	}
	return s.readSubject(ctx, sh, ">", from, to, func(m RawMsg) error {
		if !IsEventSubject(m.Subject) {
			return nil
		}
		e, err := DecodeEnvelope(m.Data)
		if err != nil {
			return errors.Wrapf(err, "%s seq %d of shard %d", m.Subject, m.Seq, k)
		}
		return fn(Position{Shard: k, Seq: m.Seq}, m.Subject, e)
	})
}

// Export calls fn with every event of the store in global order, reading
// page by page with direct gets: memory stays constant whatever the size of
// the store. from and to (0: up to the end) bound the stream sequence of
// every shard alike; in one-shard mode they are the store's sequences.
//
// Global order is each shard's stream order, merged by the time the
// server stored each message, ties broken by the lower shard: of the
// shards' next events, the one stored first goes first. It is exact and
// repeatable (the same store exports the same lines), it keeps every
// aggregate's events in order (an aggregate lives on one shard), and in
// one-shard mode it is the stream order.
func (s *Store) Export(ctx context.Context, from, to uint64, fn func(pos Position, subject string, e Envelope) error) error {
	if len(s.shards) == 1 {
		return s.ReadEvents(ctx, 0, from, to, fn)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	heads := make([]<-chan rawOrErr, len(s.shards))
	for k, sh := range s.shards {
		heads[k] = s.readAhead(ctx, sh, from, to)
	}
	return mergeShards(heads, func(k int, m RawMsg) error {
		e, err := DecodeEnvelope(m.Data)
		if err != nil {
			return errors.Wrapf(err, "%s seq %d of shard %d", m.Subject, m.Seq, k)
		}
		return fn(Position{Shard: k, Seq: m.Seq}, m.Subject, e)
	})
}

// rawOrErr is one event read ahead, or the error that ended the reading.
type rawOrErr struct {
	m   RawMsg
	err error
}

// readAhead reads the events of sh in [from, to] into a channel, a page
// ahead of the merge, and closes it at the end or after an error.
func (s *Store) readAhead(ctx context.Context, sh *shard, from, to uint64) <-chan rawOrErr {
	out := make(chan rawOrErr, readBatch)
	go func() {
		defer close(out)
		err := s.readSubject(ctx, sh, ">", from, to, func(m RawMsg) error {
			if !IsEventSubject(m.Subject) {
				return nil
			}
			select {
			case out <- rawOrErr{m: m}:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		if err != nil {
			select {
			case out <- rawOrErr{err: err}:
			case <-ctx.Done():
			}
		}
	}()
	return out
}

// mergeShards hands fn the messages of every shard's channel, merged into
// global order: the head stored first, ties to the lower shard.
func mergeShards(in []<-chan rawOrErr, fn func(k int, m RawMsg) error) error {
	type head struct {
		m  RawMsg
		ok bool
	}
	heads := make([]head, len(in))
	next := func(k int) error {
		r, open := <-in[k]
		if !open {
			heads[k] = head{}
			return nil
		}
		if r.err != nil {
			return r.err
		}
		heads[k] = head{m: r.m, ok: true}
		return nil
	}
	for k := range in {
		if err := next(k); err != nil {
			return err
		}
	}
	for {
		best := -1
		for k, h := range heads {
			if h.ok && (best < 0 || h.m.Time.Before(heads[best].m.Time)) {
				best = k
			}
		}
		if best < 0 {
			return nil
		}
		if err := fn(best, heads[best].m); err != nil {
			return err
		}
		if err := next(best); err != nil {
			return err
		}
	}
}

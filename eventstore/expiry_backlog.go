package eventstore

import (
	"context"
	"log/slog"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/nats-io/nats.go/jetstream"
)

// hasLegacyTimers says whether shard sh's stream holds timers or fired schedules
// of earlier versions, which purgeHandledTimers removes once handled; a
// store that never had any needs no purging.
func (s *Store) hasLegacyTimers(ctx context.Context, sh *shard) bool {
	for _, subj := range []string{TimerSubjects + ".*", ExpirySubjects + ".*"} {
		if _, _, ok, err := s.nextMsg(ctx, sh, subj, 1); err != nil || ok {
			return true // when unsure, purge: it is cheap when there is nothing
		}
	}
	return false
}

// purgeHandledTimers removes, every five seconds, the timers every one of which
// is handled: those below the expiry consumer's ack floor. Kept, every
// order ever confirmed would leave a subject behind, and nats-server keeps
// an index entry in memory per subject. One purge removes them all with
// one fsync; removing each on its own would cost one fsync per timer.
func (s *Store) purgeHandledTimers(ctx context.Context, sh *shard, log *slog.Logger) {
	var purged uint64
	every := time.NewTicker(expiryPurgeEvery)
	defer every.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-every.C:
		}
		floor, err := s.expiryAckFloor(ctx, sh)
		if err != nil || floor <= purged {
			continue
		}
		if err := s.purgeBelow(ctx, sh, floor+1); err != nil {
			if ctx.Err() == nil {
				log.Warn("cannot remove handled expiry timers", "err", err)
			}
			continue
		}
		purged = floor
	}
}

func (s *Store) expiryAckFloor(ctx context.Context, sh *shard) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	cons, err := s.js.Consumer(ctx, sh.stream, ExpiryConsumer)
	if err != nil {
		return 0, errors.Wrap(unavailable(err), "read the expiry consumer")
	}
	return cons.CachedInfo().AckFloor.Stream, nil
}

// purgeBelow removes the timers and fired schedules stored before seq.
func (s *Store) purgeBelow(ctx context.Context, sh *shard, seq uint64) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	stream, err := s.js.Stream(ctx, sh.stream)
	if err != nil {
		return errors.Wrap(unavailable(err), "remove handled expiry timers")
	}
	for _, subj := range []string{TimerSubjects + ".*", ExpirySubjects + ".*"} {
		if err := stream.Purge(ctx, jetstream.WithPurgeSubject(sh.subject(subj)), jetstream.WithPurgeSequence(seq)); err != nil {
			return errors.Wrap(unavailable(err), "remove handled expiry timers")
		}
	}
	return nil
}

// ExpiryBacklog returns how many messages the expiry workers (over all
// shards) have still to
// pass or handle (order events since the oldest confirmation not yet due or
// handled, and timers of earlier versions), and how far past its due the
// oldest of them is (an event without a due was due when stored): an
// expiry worker that does not keep up shows here before it shows as stock
// held past its TTL. Both are zero when the expiry consumer was not
// created yet.
func (s *Store) ExpiryBacklog(ctx context.Context) (n uint64, overdue time.Duration, err error) {
	for _, sh := range s.shards {
		shn, shOverdue, err := s.expiryBacklog(ctx, sh)
		if err != nil {
			return n, overdue, err
		}
		n += shn
		overdue = max(overdue, shOverdue)
	}
	return n, overdue, nil
}

func (s *Store) expiryBacklog(ctx context.Context, sh *shard) (n uint64, overdue time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	cons, err := s.js.Consumer(ctx, sh.stream, ExpiryConsumer)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, errors.Wrap(unavailable(err), "read the expiry consumer")
	}
	info := cons.CachedInfo()
	n = info.NumPending + uint64(info.NumAckPending)
	if n == 0 {
		return 0, 0, nil
	}
	// Everything up to the ack floor is handled: the first timer after it
	// is the oldest one waiting.
	for _, subj := range []string{OrderSubjects + ".*", ExpirySubjects + ".*", TimerSubjects + ".*"} {
		m, h, ok, err := s.nextMsg(ctx, sh, subj, info.AckFloor.Stream+1)
		if err != nil {
			return n, 0, err
		}
		if !ok {
			continue
		}
		due := m.Time // a fired schedule was due when it fired
		if d, err := time.Parse(time.RFC3339Nano, h.Get(dueHeader)); err == nil {
			due = d
		}
		overdue = max(overdue, time.Since(due))
	}
	return n, overdue, nil
}

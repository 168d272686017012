package eventstore

import (
	"context"

	"github.com/cockroachdb/errors"
	"github.com/nats-io/nats.go/jetstream"
)

// StoredStats returns how many messages the store's streams hold, and how
// many bytes, over all shards.
func (s *Store) StoredStats(ctx context.Context) (msgs, bytes uint64, err error) {
	for _, sh := range s.shards {
		st, err := s.js.Stream(ctx, sh.stream)
		if err != nil {
			return 0, 0, errors.Wrap(unavailable(err), "read stream state")
		}
		msgs += st.CachedInfo().State.Msgs
		bytes += st.CachedInfo().State.Bytes
	}
	return msgs, bytes, nil
}

// StreamConfig returns the configuration of shard 0's stream, for a
// benchmark baseline stream that should be stored as the events are.
func (s *Store) StreamConfig(ctx context.Context) (jetstream.StreamConfig, error) {
	st, err := s.js.Stream(ctx, s.shards[0].stream)
	if err != nil {
		return jetstream.StreamConfig{}, errors.Wrap(unavailable(err), "read stream config")
	}
	return st.CachedInfo().Config, nil
}

// LastEventSeqs returns, per shard, the sequence of the last event (order
// or inventory) in its stream, 0 when it holds none.
func (s *Store) LastEventSeqs(ctx context.Context) ([]uint64, error) {
	out := make([]uint64, len(s.shards))
	for k, sh := range s.shards {
		st, err := s.js.Stream(ctx, sh.stream)
		if err != nil {
			return nil, errors.Wrap(unavailable(err), "read stream state")
		}
		for _, subj := range []string{OrderSubjects + ".*", InventorySubjects + ".*"} {
			m, err := st.GetLastMsgForSubject(ctx, sh.subject(subj))
			switch {
			case err == nil:
				out[k] = max(out[k], m.Sequence)
			case !errors.Is(err, jetstream.ErrMsgNotFound):
				return nil, errors.Wrapf(unavailable(err), "last message of %s", sh.subject(subj))
			}
		}
	}
	return out, nil
}

// ConsumersCaughtUp reports whether every named consumer exists on every
// shard and has had the last message of its subjects acknowledged. Backlog
// alone cannot say: it counts a consumer not created yet as empty, and a
// consumer just created may not have counted its pending messages yet.
func (s *Store) ConsumersCaughtUp(ctx context.Context, names ...string) (bool, error) {
	for _, sh := range s.shards {
		stream, err := s.js.Stream(ctx, sh.stream)
		if err != nil {
			return false, errors.Wrap(unavailable(err), "read the event store stream")
		}
		for _, name := range names {
			cons, err := stream.Consumer(ctx, name)
			if errors.Is(err, jetstream.ErrConsumerNotFound) {
				return false, nil
			}
			if err != nil {
				return false, errors.Wrapf(unavailable(err), "read consumer %s", name)
			}
			info := cons.CachedInfo()
			filters := info.Config.FilterSubjects
			if info.Config.FilterSubject != "" {
				filters = append(filters, info.Config.FilterSubject)
			}
			for _, f := range filters {
				last, err := stream.GetLastMsgForSubject(ctx, f)
				if errors.Is(err, jetstream.ErrMsgNotFound) {
					continue
				}
				if err != nil {
					return false, errors.Wrapf(unavailable(err), "last message for %s", f)
				}
				if info.AckFloor.Stream < last.Sequence {
					return false, nil
				}
			}
		}
	}
	return true, nil
}

// Follow calls fn with every event of one aggregate subject (orders.<id>,
// inventory.<sku>), from its first on, as they are stored, until ctx ends
// or stop is called. fn runs on one goroutine, in stream order.
func (s *Store) Follow(ctx context.Context, subject string, fn func(pos Position, data []byte)) (stop func(), err error) {
	sh := s.shardFor(lastToken(subject))
	cons, err := s.js.OrderedConsumer(ctx, sh.stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{sh.subject(subject)},
	})
	if err != nil {
		return nil, errors.Wrapf(unavailable(err), "follow %s", subject)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		var seq uint64
		if md, err := m.Metadata(); err == nil {
			seq = md.Sequence.Stream
		}
		fn(Position{Shard: sh.index, Seq: seq}, m.Data())
	})
	if err != nil {
		return nil, errors.Wrapf(unavailable(err), "follow %s", subject)
	}
	go func() { <-ctx.Done(); cc.Stop() }()
	return cc.Stop, nil
}

// lastToken returns what follows the last '.' of subject.
func lastToken(subject string) string {
	for i := len(subject) - 1; i >= 0; i-- {
		if subject[i] == '.' {
			return subject[i+1:]
		}
	}
	return subject
}

package eventstore

import (
	"context"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// StoredEvent is one event of a shard as a Subscription yields it: its
// position, its logical subject (orders.<id>, inventory.<sku>), when the
// server stored it, how many events of the shard came after it when it
// was delivered, and the envelope as stored (DecodeEnvelope reads it; the
// projections decode on all cores, off the reading goroutine).
type StoredEvent struct {
	Pos     Position
	Subject string
	Stored  time.Time
	Pending uint64
	Data    []byte
	// Header holds the message's headers, the trace context of the
	// append that stored it among them (tracing.Extract).
	Header nats.Header
}

// ErrEndOfRange ends a Subscription opened by ReplayRange: every event of
// its range was delivered.
var ErrEndOfRange = errors.New("end of the replayed range")

// Subscription delivers the events of one shard in stream order. It is
// not safe for concurrent use; Stop releases it.
type Subscription struct {
	sh      *shard
	it      jetstream.MessagesContext
	pending uint64
	// A ReplayRange reads every message (a consumer filtered on two
	// subjects costs the server a subject-tree intersection per message)
	// and skips those that are not events; it ends on its own.
	bounded             bool
	done                bool
	upTo                uint64
	remaining, messages uint64
}

// Subscribe delivers the events of shard k from stream sequence from on,
// waiting for new ones, through an ordered consumer (no state on the
// server beyond the subscription). buffer is how many messages the client
// fetches ahead.
func (s *Store) Subscribe(ctx context.Context, k int, from uint64, buffer int) (*Subscription, error) {
	return s.subscribe(ctx, k, from, buffer, OrderSubjects+".*", InventorySubjects+".*")
}

// SubscribeOrders is Subscribe for the events of orders alone: the server
// skips the inventory's, which a reader of order events (the integration
// feed) would only throw away.
func (s *Store) SubscribeOrders(ctx context.Context, k int, from uint64, buffer int) (*Subscription, error) {
	return s.subscribe(ctx, k, from, buffer, OrderSubjects+".*")
}

func (s *Store) subscribe(ctx context.Context, k int, from uint64, buffer int, logical ...string) (*Subscription, error) {
	sh, err := s.shardAt(k)
	if err != nil {
		return nil, err
	}
	filters := make([]string, len(logical))
	for i, l := range logical {
		filters[i] = sh.subject(l)
	}
	cons, err := s.js.OrderedConsumer(ctx, sh.stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: filters,
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    max(from, 1),
	})
	if err != nil {
		return nil, errors.Wrap(unavailable(err), "create ordered consumer")
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(buffer))
	if err != nil {
		return nil, errors.Wrap(unavailable(err), "consume events")
	}
	sub := &Subscription{sh: sh, it: it}
	if info := cons.CachedInfo(); info != nil {
		sub.pending = info.NumPending
	}
	return sub, nil
}

// ReplayRange delivers the events of shard k with a sequence in
// (from, upTo] (upTo 0: up to the last event stored when it starts), and
// then fails with ErrEndOfRange: it never waits for new events.
func (s *Store) ReplayRange(ctx context.Context, k int, from, upTo uint64, buffer int) (*Subscription, error) {
	sh, err := s.shardAt(k)
	if err != nil {
		return nil, err
	}
	sub := &Subscription{sh: sh, bounded: true, upTo: upTo}
	if upTo != 0 && from >= upTo {
		sub.done = true
		return sub, nil
	}
	// How many events there are comes from a consumer filtered on them;
	// the events are then read unfiltered.
	counter, err := s.js.OrderedConsumer(ctx, sh.stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{sh.subject(OrderSubjects + ".*"), sh.subject(InventorySubjects + ".*")},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    from + 1,
	})
	if err != nil {
		return nil, errors.Wrap(unavailable(err), "count the events to replay")
	}
	counted := counter.CachedInfo()
	if counted == nil {
		return nil, errors.AssertionFailedf("ordered consumer without info")
	}
	_ = s.js.DeleteConsumer(ctx, sh.stream, counted.Name)
	cons, err := s.js.OrderedConsumer(ctx, sh.stream, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   from + 1,
	})
	if err != nil {
		return nil, errors.Wrap(unavailable(err), "create ordered consumer")
	}
	info := cons.CachedInfo()
	if info == nil {
		return nil, errors.AssertionFailedf("ordered consumer without info")
	}
	// The events existing now are the first counted.NumPending among the
	// first info.NumPending messages; the range never needs more.
	sub.remaining, sub.messages, sub.pending = counted.NumPending, info.NumPending, counted.NumPending
	if sub.remaining == 0 {
		sub.done = true
		return sub, nil
	}
	if sub.it, err = cons.Messages(jetstream.PullMaxMessages(buffer)); err != nil {
		return nil, errors.Wrap(unavailable(err), "consume events")
	}
	return sub, nil
}

// Pending returns how many events the subscription had to deliver when it
// was created (for ReplayRange, those of its range).
func (sub *Subscription) Pending() uint64 { return sub.pending }

// Next waits for the next event until ctx ends.
func (sub *Subscription) Next(ctx context.Context) (StoredEvent, error) {
	return sub.next(jetstream.NextContext(ctx))
}

// NextWithin returns the next event if it comes within wait; ok is false
// when none did.
func (sub *Subscription) NextWithin(wait time.Duration) (ev StoredEvent, ok bool, err error) {
	ev, err = sub.next(jetstream.NextMaxWait(wait))
	if errors.Is(err, nats.ErrTimeout) {
		return StoredEvent{}, false, nil
	}
	return ev, err == nil, err
}

func (sub *Subscription) next(opt jetstream.NextOpt) (StoredEvent, error) {
	for {
		if sub.done {
			return StoredEvent{}, ErrEndOfRange
		}
		m, err := sub.it.Next(opt)
		if err != nil {
			if errors.Is(err, nats.ErrTimeout) {
				return StoredEvent{}, err
			}
			return StoredEvent{}, errors.Wrap(err, "next event")
		}
		md, err := m.Metadata()
		if err != nil {
			// Without its sequence an event cannot be checkpointed.
			return StoredEvent{}, errors.Wrap(err, "event metadata")
		}
		ev := StoredEvent{Pos: Position{Shard: sub.sh.index, Seq: md.Sequence.Stream}, Subject: sub.sh.logical(m.Subject()),
			Stored: md.Timestamp, Pending: md.NumPending, Data: m.Data(), Header: m.Headers()}
		if !sub.bounded {
			return ev, nil
		}
		seq := ev.Pos.Seq
		if sub.upTo != 0 && seq > sub.upTo {
			sub.done = true
			continue
		}
		sub.messages--
		last := sub.messages == 0 || md.NumPending == 0 || (sub.upTo != 0 && seq >= sub.upTo)
		if !IsEventSubject(ev.Subject) {
			sub.done = last
			continue
		}
		sub.remaining--
		sub.done = last || sub.remaining == 0
		return ev, nil
	}
}

// Stop releases the subscription.
func (sub *Subscription) Stop() {
	if sub.it != nil {
		sub.it.Stop()
	}
}

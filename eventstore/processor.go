package eventstore

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"

	"github.com/cockroachdb/errors"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orderengine/engine/domain"
)

// reservationBatch is the most requests a processor handles at once, and
// the consumer's MaxAckPending.
const reservationBatch = 1000

// ReservationConsumers names the durable consumers of every partition.
func ReservationConsumers() []string {
	names := make([]string, ReservationPartitions)
	for p := range names {
		names[p] = fmt.Sprintf("reservations-%d", p)
	}
	return names
}

// ReservationConsumer returns the durable consumer of partition p of shard
// k, creating it if needed. Every shard has its own partition consumers: a
// SKU's requests come from orders on every shard, each shard's in its own
// order. Processors pull from it in the priority group
// "processor" with the pinned-client policy, so one processor at a time
// works a partition and two engines do not fight over its hot SKUs; see
// HandOverPinnedTTL for how soon another takes over a dead one.
func (s *Store) ReservationConsumer(ctx context.Context, k, p int) (jetstream.Consumer, error) {
	sh, err := s.shardAt(k)
	if err != nil {
		return nil, err
	}
	cons, err := s.js.CreateOrUpdateConsumer(ctx, sh.stream, jetstream.ConsumerConfig{
		Durable:       ReservationConsumers()[p],
		FilterSubject: sh.subject(partitionSubjects(p)),
		// ConsumeReservations decides every request up to the last one of
		// a batch before acknowledging it, so one ack covers the batch.
		AckPolicy:      jetstream.AckAllPolicy,
		AckWait:        HandOverAckWait,
		MaxAckPending:  reservationBatch,
		MaxDeliver:     -1,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		PriorityPolicy: jetstream.PriorityPolicyPinned,
		PriorityGroups: []string{"processor"},
		PinnedTTL:      HandOverPinnedTTL,
	})
	if err != nil {
		return nil, errors.Wrapf(unavailable(err), "create reservation consumer %d of shard %d", p, k)
	}
	return cons, nil
}

func partitionSubjects(p int) string { return fmt.Sprintf("%s.%d.*", ReservationSubjects, p) }

// ReservationMsg is a stored reservation request, its shard and its
// sequence in that shard's stream.
type ReservationMsg struct {
	Shard   int
	Seq     uint64
	Request domain.ReservationRequest
	// Header is the stored message's headers, which carry the trace
	// context of the append that stored the request (the order's).
	Header nats.Header
}

// ConsumeReservations runs the processor of partition p of shard k until
// ctx ends.
// It hands handle the partition's requests a batch at a time, and
// acknowledges a batch only after handle succeeded; on failure the batch is
// redelivered. Of several processes consuming one partition, JetStream pins
// one (priority group, pinned client); another takes over within seconds
// when it stops pulling.
//
// handle always gets every request of the partition that is not known to
// be decided, up to the batch's last: the delivered batch when nothing else
// is outstanding on the consumer, otherwise the requests read back from the
// stream from the consumer's ack floor on. A delivery lost on the way (a
// pull the client gave up on) or held by a processor that died or lost its
// pin can therefore neither be skipped by the acknowledgement of a later
// batch nor make a SKU decide its requests out of order.
func (s *Store) ConsumeReservations(ctx context.Context, k, p int, log *slog.Logger, handle func(context.Context, []ReservationMsg) error) error {
	sh, err := s.shardAt(k)
	if err != nil {
		return err
	}
	cons, err := retryCreate(ctx, log, func() (jetstream.Consumer, error) { return s.ReservationConsumer(ctx, k, p) })
	if err != nil || cons == nil {
		return err
	}
	// handled is the consumer sequence of the last delivery of the last
	// batch this loop handled (0: none, or a batch failed since).
	var handled uint64
	return consumeLoop(ctx, cons, log, reservationBatch, []jetstream.FetchOpt{jetstream.FetchPriorityGroup("processor")},
		func(ctx context.Context, msgs []jetstream.Msg) error {
			reqs, whole, last := make([]ReservationMsg, 0, len(msgs)), true, uint64(0)
			var first, lastDelivery uint64
			for i, m := range msgs {
				meta, err := m.Metadata()
				if err != nil {
					return errors.Wrap(err, "reservation delivery without metadata")
				}
				last = max(last, meta.Sequence.Stream)
				if i == 0 {
					first = meta.Sequence.Consumer
				}
				lastDelivery = meta.Sequence.Consumer
				// A redelivery means an earlier delivery went astray.
				whole = whole && meta.NumDelivered == 1
				if r, ok := decodeRequest(log, m.Subject(), m.Data()); ok {
					reqs = append(reqs, ReservationMsg{Shard: k, Seq: meta.Sequence.Stream, Request: r, Header: m.Headers()})
				}
			}
			// The consumer numbers its deliveries without gaps. First
			// deliveries right after the last batch this loop handled
			// (decided and acknowledged, the ack perhaps still on its
			// way) therefore follow it in stream order with nothing
			// delivered elsewhere in between: no request before them is
			// undecided. This loop's first batch, and any batch after a
			// gap, a redelivery or a failure, asks the consumer instead.
			contiguous := whole && handled != 0 && first == handled+1 && lastDelivery == first+uint64(len(msgs))-1
			handled = 0
			if !contiguous {
				info, err := cons.Info(ctx)
				if err != nil {
					return errors.Wrap(unavailable(err), "read reservation consumer state")
				}
				// First deliveries come in stream order, so when nothing
				// but this batch is unacknowledged, every earlier request
				// was delivered before it and acknowledged, hence decided.
				if !whole || info.NumAckPending != len(msgs) {
					if reqs, err = s.partitionRequests(ctx, sh, p, log, info.AckFloor.Stream, last); err != nil {
						return err
					}
				}
			}
			if err := handle(ctx, reqs); err != nil {
				return err
			}
			handled = lastDelivery
			return nil
		})
}

// partitionRequests reads partition p's requests on shard sh with a stream
// sequence in (after, through] from the stream, in order.
func (s *Store) partitionRequests(ctx context.Context, sh *shard, p int, log *slog.Logger, after, through uint64) ([]ReservationMsg, error) {
	var out []ReservationMsg
	err := s.readSubject(ctx, sh, partitionSubjects(p), after+1, through, func(m RawMsg) error {
		if r, ok := decodeRequest(log, m.Subject, m.Data); ok {
			out = append(out, ReservationMsg{Shard: sh.index, Seq: m.Seq, Request: r, Header: m.Header})
		}
		return nil
	})
	return out, errors.Wrapf(err, "read the requests of partition %d of shard %d", p, sh.index)
}

func decodeRequest(log *slog.Logger, subject string, data []byte) (domain.ReservationRequest, bool) {
	var r domain.ReservationRequest
	if err := json.Unmarshal(data, &r); err != nil {
		// Nothing the engine wrote; skip it rather than block the partition.
		log.Error("unreadable reservation request", "subject", subject, "err", err)
		return r, false
	}
	return r, true
}

// ReservationFlowIdle reports whether the reservation processors and the
// order saga have handled everything stored: nothing undelivered or
// unacknowledged on their consumers, and no message stored while they were
// being read (a saga that appends and then acknowledges between two reads
// would otherwise look idle with its release requests still unread).
func (s *Store) ReservationFlowIdle(ctx context.Context) (bool, error) {
	before, err := s.LastSeqs(ctx)
	if err != nil {
		return false, err
	}
	pending, unacked, err := s.Backlog(ctx, append(ReservationConsumers(), SagaConsumer)...)
	if err != nil || pending+unacked > 0 {
		return false, err
	}
	after, err := s.LastSeqs(ctx)
	return err == nil && slices.Equal(after, before), err
}

func (s *Store) lastSeq(ctx context.Context, sh *shard) (uint64, error) {
	stream, err := s.js.Stream(ctx, sh.stream)
	if err != nil {
		return 0, errors.Wrap(unavailable(err), "read stream state")
	}
	return stream.CachedInfo().State.LastSeq, nil
}

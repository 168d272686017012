package eventstore

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strings"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orderengine/engine/domain"
)

// Subjects of the reservation flow, stored in the events stream so they are
// appended in the same atomic batch as the order events that cause them.
const (
	// ReservationSubjects holds reservation requests as resv.<partition>.<sku>.
	ReservationSubjects = "resv"
	// ScheduleSubjects holds one pending expiry timer per confirmed order.
	ScheduleSubjects = "sched"
	// ExpirySubjects receives a timer when it fires: expire.<order_id>.
	ExpirySubjects = "expire"
)

// ReservationPartitions is the fixed number of partitions SKUs are spread
// over. Changing it re-routes SKUs, so only change it with no requests
// outstanding.
const ReservationPartitions = 16

// reservationBatch is the most requests a processor handles at once, and
// the consumer's MaxAckPending.
const reservationBatch = 1000

// PartitionOf returns the partition of a SKU (FNV-1a, stable forever).
func PartitionOf(sku string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(sku))
	return int(h.Sum32() % ReservationPartitions)
}

// reservationMsg is the message that carries r to its SKU's partition.
func reservationMsg(r domain.ReservationRequest) (*nats.Msg, error) {
	data, err := json.Marshal(r)
	if err != nil {
		return nil, errors.Wrap(err, "encode reservation request")
	}
	m := nats.NewMsg(fmt.Sprintf("%s.%d.%s", ReservationSubjects, PartitionOf(r.SKU), r.SKU))
	m.Data = data
	m.Header.Set(jetstream.MsgIDHeader, r.ReservationID+":"+string(r.Action))
	return m, nil
}

// expiryTimer is a JetStream message schedule that publishes
// expire.<order_id> at due (rounded up to the second the scheduler uses).
// It is stored in the stream, so it survives restarts of the engine.
func expiryTimer(orderID string, due time.Time) *nats.Msg {
	m := nats.NewMsg(ScheduleSubjects + "." + orderID)
	m.Data = []byte(orderID)
	at := due.UTC().Truncate(time.Second)
	if at.Before(due) {
		at = at.Add(time.Second)
	}
	m.Header.Set(jetstream.MsgIDHeader, orderID+":expiry")
	m.Header.Set("Nats-Schedule", "@at "+at.Format(time.RFC3339))
	m.Header.Set("Nats-Schedule-Target", ExpirySubjects+"."+orderID)
	return m
}

// ReservationConsumer returns the durable consumer of partition p,
// creating it if needed. Processors pull from it in the priority group
// "processor" with the pinned-client policy, so one processor at a time
// works a partition and two engines do not fight over its hot SKUs.
//
// Delivery only tells a processor which SKUs have new requests and how far
// they go: the requests themselves are read back from the stream, from the
// SKU's last decided sequence on (ReservationRequests). Neither a delivery
// lost on the way nor a hand-over between processors can therefore make a
// SKU skip or reorder a request, and every message is acknowledged on its
// own (explicit acks), so one that was never handled is redelivered.
func (s *Store) ReservationConsumer(ctx context.Context, p int) (jetstream.Consumer, error) {
	cons, err := s.js.CreateOrUpdateConsumer(ctx, s.stream, jetstream.ConsumerConfig{
		Durable:        ReservationConsumers()[p],
		FilterSubject:  fmt.Sprintf("%s.%d.*", ReservationSubjects, p),
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        10 * time.Second,
		MaxAckPending:  reservationBatch,
		MaxDeliver:     -1,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		PriorityPolicy: jetstream.PriorityPolicyPinned,
		PriorityGroups: []string{"processor"},
		PinnedTTL:      5 * time.Second,
	})
	if err != nil {
		return nil, errors.Wrapf(unavailable(err), "create reservation consumer %d", p)
	}
	return cons, nil
}

// ReservationMsg is a stored reservation request and its stream sequence.
type ReservationMsg struct {
	Seq     uint64
	Request domain.ReservationRequest
}

// ReservationRequests returns the reservation requests stored for sku with
// a stream sequence in (after, through], in stream order.
func (s *Store) ReservationRequests(ctx context.Context, sku string, after, through uint64) ([]ReservationMsg, error) {
	if through <= after {
		return nil, nil
	}
	subject := fmt.Sprintf("%s.%d.%s", ReservationSubjects, PartitionOf(sku), sku)
	var out []ReservationMsg
	err := s.readSubject(ctx, subject, after+1, through, func(m RawMsg) error {
		var r domain.ReservationRequest
		if err := json.Unmarshal(m.Data, &r); err != nil {
			return errors.Wrapf(err, "reservation request %d of %s", m.Seq, sku)
		}
		out = append(out, ReservationMsg{Seq: m.Seq, Request: r})
		return nil
	})
	return out, err
}

// SagaConsumer is the durable consumer of the order saga.
const SagaConsumer = "order-saga"

// ReservationConsumers names the durable consumers of every partition.
func ReservationConsumers() []string {
	names := make([]string, ReservationPartitions)
	for p := range names {
		// "-x": explicit acks. A durable's ack policy cannot change, so the
		// earlier ack-all consumers ("reservations-<p>") are left behind.
		names[p] = fmt.Sprintf("reservations-x%d", p)
	}
	return names
}

// Backlog returns how many messages the named consumers have not yet
// delivered and how many they delivered but have not seen acknowledged. It
// only reads the consumers' state; consumers not created yet count as empty.
func (s *Store) Backlog(ctx context.Context, consumers ...string) (pending, unacked uint64, err error) {
	for _, name := range consumers {
		cons, err := s.js.Consumer(ctx, s.stream, name)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			continue
		}
		if err != nil {
			return 0, 0, errors.Wrap(unavailable(err), "read consumer state")
		}
		info := cons.CachedInfo()
		pending += info.NumPending
		unacked += uint64(info.NumAckPending)
	}
	return pending, unacked, nil
}

// ReservationFlowIdle reports whether the reservation processors and the
// order saga have handled everything stored: nothing undelivered or
// unacknowledged on their consumers, and no message stored while they were
// being read (a saga that appends and then acknowledges between two reads
// would otherwise look idle with its release requests still unread).
func (s *Store) ReservationFlowIdle(ctx context.Context) (bool, error) {
	before, err := s.lastSeq(ctx)
	if err != nil {
		return false, err
	}
	pending, unacked, err := s.Backlog(ctx, append(ReservationConsumers(), SagaConsumer)...)
	if err != nil || pending+unacked > 0 {
		return false, err
	}
	after, err := s.lastSeq(ctx)
	return err == nil && after == before, err
}

func (s *Store) lastSeq(ctx context.Context) (uint64, error) {
	stream, err := s.js.Stream(ctx, s.stream)
	if err != nil {
		return 0, errors.Wrap(unavailable(err), "read stream state")
	}
	return stream.CachedInfo().State.LastSeq, nil
}

// ReservationBatch is one delivery of a partition's requests.
type ReservationBatch struct {
	Requests []ReservationMsg
	// Whole reports that no request stored before the batch's last one is
	// outstanding anywhere else: each was delivered in this batch or has
	// been acknowledged, hence decided. A SKU's requests in the batch, past
	// the last one it decided, are then exactly its next ones, and need not
	// be read back from the stream (which is what keeps a hot SKU fast).
	Whole bool
}

// ConsumeReservations runs the processor of partition p until ctx ends. It
// hands handle the partition's deliveries a batch at a time, and
// acknowledges a batch only after handle succeeded; on failure the batch is
// redelivered. Of several processes consuming one partition, JetStream pins
// one (priority group, pinned client); another takes over within seconds
// when it stops pulling.
func (s *Store) ConsumeReservations(ctx context.Context, p int, log *slog.Logger, handle func(context.Context, ReservationBatch) error) error {
	cons, err := retryCreate(ctx, log, func() (jetstream.Consumer, error) { return s.ReservationConsumer(ctx, p) })
	if err != nil || cons == nil {
		return err
	}
	return consumeLoop(ctx, cons, log, reservationBatch, []jetstream.FetchOpt{jetstream.FetchPriorityGroup("processor")},
		func(ctx context.Context, msgs []jetstream.Msg) error {
			batch := ReservationBatch{Requests: make([]ReservationMsg, 0, len(msgs)), Whole: true}
			for _, m := range msgs {
				var r domain.ReservationRequest
				meta, err := m.Metadata()
				if err == nil {
					err = json.Unmarshal(m.Data(), &r)
				}
				if err != nil {
					// Nothing the engine wrote; skip it rather than block the partition.
					log.Error("unreadable reservation request", "subject", m.Subject(), "err", err)
					continue
				}
				// A redelivery means an earlier delivery went astray: the
				// requests around it may have been decided out of its sight.
				batch.Whole = batch.Whole && meta.NumDelivered == 1
				batch.Requests = append(batch.Requests, ReservationMsg{Seq: meta.Sequence.Stream, Request: r})
			}
			if batch.Whole {
				// First deliveries come in stream order, so if nothing but
				// this batch is unacknowledged, every earlier request was
				// delivered before it and acknowledged after being decided.
				info, err := cons.Info(ctx)
				batch.Whole = err == nil && info.NumAckPending == len(msgs)
			}
			return handle(ctx, batch)
		})
}

var sagaConsumerConfig = jetstream.ConsumerConfig{
	Durable:       SagaConsumer,
	FilterSubject: InventorySubjects + ".*",
	AckPolicy:     jetstream.AckExplicitPolicy,
	AckWait:       30 * time.Second,
	MaxAckPending: 4 * reservationBatch,
	MaxDeliver:    -1,
	DeliverPolicy: jetstream.DeliverAllPolicy,
}

// ConsumeOutcomes hands handle, in batches, every inventory event stored
// after the last acknowledged one, until ctx ends: the order saga learns
// reservation outcomes from it. The consumer is durable and shared, so
// several engine processes split the work; a batch is acknowledged after
// handle succeeded and redelivered otherwise.
func (s *Store) ConsumeOutcomes(ctx context.Context, log *slog.Logger, handle func(context.Context, []Envelope) error) error {
	cons, err := retryCreate(ctx, log, func() (jetstream.Consumer, error) {
		return s.js.CreateOrUpdateConsumer(ctx, s.stream, sagaConsumerConfig)
	})
	if err != nil || cons == nil {
		return err
	}
	return consumeLoop(ctx, cons, log, reservationBatch, nil, func(ctx context.Context, msgs []jetstream.Msg) error {
		envs := make([]Envelope, 0, len(msgs))
		for _, m := range msgs {
			e, err := DecodeEnvelope(m.Data())
			if err != nil {
				log.Error("unreadable inventory event", "subject", m.Subject(), "err", err)
				continue
			}
			envs = append(envs, e)
		}
		return handle(ctx, envs)
	})
}

var expiryConsumerConfig = jetstream.ConsumerConfig{
	Durable:       "expiries",
	FilterSubject: ExpirySubjects + ".*",
	AckPolicy:     jetstream.AckExplicitPolicy,
	AckWait:       30 * time.Second,
	MaxAckPending: 1000,
	MaxDeliver:    -1,
	DeliverPolicy: jetstream.DeliverAllPolicy,
}

// ConsumeExpiries calls handle with the order id of every fired expiry
// timer. handle returns how long to wait before trying again when the order
// is not due yet, or an error to retry later; otherwise the timer is done.
func (s *Store) ConsumeExpiries(ctx context.Context, log *slog.Logger, handle func(ctx context.Context, orderID string) (retryIn time.Duration, err error)) error {
	cons, err := retryCreate(ctx, log, func() (jetstream.Consumer, error) {
		return s.js.CreateOrUpdateConsumer(ctx, s.stream, expiryConsumerConfig)
	})
	if err != nil || cons == nil {
		return err
	}
	for ctx.Err() == nil {
		batch, err := cons.Fetch(100, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			sleep(ctx, time.Second)
			continue
		}
		for m := range batch.Messages() {
			id := strings.TrimPrefix(m.Subject(), ExpirySubjects+".")
			retry, err := handle(ctx, id)
			switch {
			case err != nil:
				log.Warn("expiry failed, will retry", "order_id", id, "err", err)
				_ = m.NakWithDelay(time.Second)
			case retry > 0:
				_ = m.NakWithDelay(retry)
			default:
				_ = m.Ack()
			}
		}
	}
	return nil
}

package eventstore

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"log/slog"

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
	// TimerSubjects held one expiry timer per confirmed order
	// (timer.<order_id>, due in the Engine-Due header) until the due moved
	// onto the confirmation's own message. Those still stored fire as before.
	TimerSubjects = "timer"
	// ScheduleSubjects held the expiry timers of earlier versions, JetStream
	// message schedules (sched.<order_id>) that the server fires into
	// ExpirySubjects (expire.<order_id>). Those still stored fire as before.
	ScheduleSubjects = "sched"
	ExpirySubjects   = "expire"
)

// ReservationPartitions is the fixed number of partitions SKUs are spread
// over. Changing it re-routes SKUs, so only change it with no requests
// outstanding.
const ReservationPartitions = 16

// PartitionOf returns the partition of a SKU (FNV-1a, stable forever).
func PartitionOf(sku string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(sku))
	return int(h.Sum32() % ReservationPartitions)
}

// reservationSubject is where sku's requests are stored (before the shard
// prefix): resv.<partition>.<sku>.
func reservationSubject(sku string) string {
	return fmt.Sprintf("%s.%d.%s", ReservationSubjects, PartitionOf(sku), sku)
}

// reservationMsg is the message that carries r to its SKU's partition.
func reservationMsg(r domain.ReservationRequest) (*nats.Msg, error) {
	data, err := json.Marshal(r)
	if err != nil {
		return nil, errors.Wrap(err, "encode reservation request")
	}
	m := nats.NewMsg(reservationSubject(r.SKU))
	m.Data = data
	m.Header.Set(jetstream.MsgIDHeader, r.ReservationID+":"+string(r.Action))
	return m, nil
}

// SagaConsumer is the durable consumer of the order saga.
const SagaConsumer = "order-saga"

// Backlog returns how many messages the named consumers, on every shard,
// have not yet delivered and how many they delivered but have not seen
// acknowledged. It only reads the consumers' state; consumers not created
// yet count as empty.
func (s *Store) Backlog(ctx context.Context, consumers ...string) (pending, unacked uint64, err error) {
	for _, sh := range s.shards {
		for _, name := range consumers {
			cons, err := s.js.Consumer(ctx, sh.stream, name)
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
	}
	return pending, unacked, nil
}

// sagaConsumerConfig is the saga's consumer on shard sh.
func sagaConsumerConfig(sh *shard) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       SagaConsumer,
		FilterSubject: sh.subject(InventorySubjects + ".*"),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       HandOverAckWait,
		MaxAckPending: 4 * reservationBatch,
		MaxDeliver:    -1,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
}

// ConsumeOutcomes hands handle, in batches, every inventory event stored
// after the last acknowledged one, until ctx ends: the order saga learns
// reservation outcomes from it. The consumer is durable and shared, so
// several engine processes split the work; a batch is acknowledged after
// handle succeeded and redelivered otherwise. Each shard has its consumer,
// and handle is called for the shards concurrently.
func (s *Store) ConsumeOutcomes(ctx context.Context, log *slog.Logger, handle func(context.Context, []Envelope) error) error {
	return s.perShard(func(sh *shard) error { return s.consumeOutcomes(ctx, sh, log, handle) })
}

func (s *Store) consumeOutcomes(ctx context.Context, sh *shard, log *slog.Logger, handle func(context.Context, []Envelope) error) error {
	cons, err := retryCreate(ctx, log, func() (jetstream.Consumer, error) {
		return s.js.CreateOrUpdateConsumer(ctx, sh.stream, sagaConsumerConfig(sh))
	})
	if err != nil || cons == nil {
		return err
	}
	return consumeLoop(ctx, cons, log, reservationBatch, nil, func(ctx context.Context, msgs []jetstream.Msg) error {
		ctx = withCauses(ctx, msgs)
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

// ReservationBacklog returns, for every partition, how many reservation
// requests are stored but not yet decided, over every shard: the requests
// its processor's consumer has not delivered yet and those delivered but
// not acknowledged (a processor acknowledges a batch only once it is
// decided). The figures are the consumers' own counts, read in two
// requests per shard whatever the number of partitions; a partition whose
// consumer does not exist yet counts 0. It fails with
// domain.ErrUnavailable when JetStream does not answer.
func (s *Store) ReservationBacklog(ctx context.Context) ([]uint64, error) {
	partition := make(map[string]int, ReservationPartitions)
	for p, name := range ReservationConsumers() {
		partition[name] = p
	}
	out := make([]uint64, ReservationPartitions)
	for _, sh := range s.shards {
		stream, err := s.js.Stream(ctx, sh.stream)
		if err != nil {
			return nil, errors.Wrap(unavailable(err), "read stream state")
		}
		list := stream.ListConsumers(ctx)
		for info := range list.Info() {
			if p, ok := partition[info.Name]; ok {
				out[p] += info.NumPending + uint64(info.NumAckPending)
			}
		}
		if err := list.Err(); err != nil {
			return nil, errors.Wrap(unavailable(err), "read reservation consumers' state")
		}
	}
	return out, nil
}

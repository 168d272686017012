package eventstore_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/internal/testnats"
)

// TestALongBatchStaysWithTheLiveProcessThatHandlesIt: two processes pull
// from one consumer whose ack wait is short (as the hand-over needs); one
// of them takes two ack waits to handle its batch. Its in-progress
// reports must keep the server from delivering that batch to the other.
func TestALongBatchStaysWithTheLiveProcessThatHandlesIt(t *testing.T) {
	_, nc := testnats.Start(t)
	ctx := context.Background()
	s := openStore(t, nc)
	js, _ := jetstream.New(nc)
	stream, subject := locate(s, eventstore.InventorySubjects+".LONG")
	const ackWait, n = 1500 * time.Millisecond, 20
	cons, err := js.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{
		Durable: "long-batch", FilterSubject: subject,
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: ackWait, MaxDeliver: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := js.Publish(ctx, subject, fmt.Appendf(nil, "%d", i)); err != nil {
			t.Fatal(err)
		}
	}

	var mu sync.Mutex
	deliveries := map[uint64][]string{} // stream sequence → "process/delivery count"
	var slow atomic.Bool                // the first batch is the slow one
	loop := func(ctx context.Context, name string) {
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		_ = eventstore.ConsumeLoop(ctx, cons, log, n, nil, func(ctx context.Context, msgs []jetstream.Msg) error {
			mu.Lock()
			for _, m := range msgs {
				meta, err := m.Metadata()
				if err != nil {
					t.Error(err)
					continue
				}
				deliveries[meta.Sequence.Stream] = append(deliveries[meta.Sequence.Stream], fmt.Sprintf("%s/%d", name, meta.NumDelivered))
			}
			mu.Unlock()
			if slow.CompareAndSwap(false, true) {
				time.Sleep(2 * ackWait)
			}
			return nil
		})
	}
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { loop(runCtx, "a") })
	wg.Go(func() { loop(runCtx, "b") })
	time.Sleep(2*ackWait + 2*time.Second)
	cancel()
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	if len(deliveries) != n {
		t.Errorf("%d messages handled, want %d", len(deliveries), n)
	}
	for seq, ds := range deliveries {
		if len(ds) != 1 {
			t.Errorf("message %d delivered %d times (%v) while its first delivery was being handled", seq, len(ds), ds)
		}
	}
}

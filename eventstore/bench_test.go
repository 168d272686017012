package eventstore_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/internal/enginetest"
	"github.com/orderengine/engine/internal/testnats"
)

// runConcurrently spreads b.N operations over n goroutines and reports
// operations per second.
func runConcurrently(b *testing.B, n int, op func(worker, i int) error) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := range n {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				if err := op(w, i); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "appends/s")
}

// BenchmarkAppend compares, on the same server configuration (embedded,
// sync_interval: always) in the same run:
//   - group-commit: Repository.Update, one event per command with expected
//     sequence and hash chain, concurrent appenders on distinct aggregates;
//   - raw-sync-publish: the baseline, one synchronous JetStream publish per
//     message (wait for the ack, then send the next), same concurrency and
//     about the same payload size.
//
// 64 appenders is the goal; 256 shows how the batch grows with load.
func BenchmarkAppend(b *testing.B) {
	for _, n := range []int{64, 256} {
		b.Run(fmt.Sprintf("group-commit/appenders=%d", n), func(b *testing.B) {
			_, nc := testnats.Start(b)
			s := enginetest.OpenStore(b, nc)
			repo := eventstore.NewRepository(s, tallyKind, 100_000)
			runConcurrently(b, n, func(w, i int) error {
				_, err := repo.Update(context.Background(), fmt.Sprintf("b%d", w), eventstore.UpdateOptions[tally]{
					CommandID: fmt.Sprintf("c%d", i),
				}, note("x"))
				return err
			})
			st := s.CommitStats()
			b.ReportMetric(float64(st.Messages)/float64(st.Batches), "msgs/batch")
		})
		b.Run(fmt.Sprintf("raw-sync-publish/appenders=%d", n), func(b *testing.B) {
			_, nc := testnats.Start(b)
			s := enginetest.OpenStore(b, nc)
			js, _ := jetstream.New(nc)
			payload := make([]byte, 420) // about the size of one envelope
			runConcurrently(b, n, func(w, i int) error {
				_, subject := locate(s, fmt.Sprintf("orders.b%d", w))
				_, err := js.Publish(context.Background(), subject, payload)
				return err
			})
		})
	}
}

// BenchmarkAppendSequential is one appender's Repository.Update after
// another on one aggregate: each a publish of its own, so its allocations
// per op are the append path's own, not shared out over a batch as in
// BenchmarkAppend (the tracing-off cost is read here).
func BenchmarkAppendSequential(b *testing.B) {
	_, nc := testnats.Start(b)
	s := enginetest.OpenStore(b, nc)
	repo := eventstore.NewRepository(s, tallyKind, 100)
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := repo.Update(ctx, "seq", eventstore.UpdateOptions[tally]{CommandID: fmt.Sprintf("c%d", i)}, note("x")); err != nil {
			b.Fatal(err)
		}
	}
}

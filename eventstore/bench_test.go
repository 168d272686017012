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
	"github.com/orderengine/engine/internal/testnats"
)

// appenders is the concurrency of the group-commit benchmarks: 64 goroutines
// appending to distinct aggregates, as in a busy checkout.
const appenders = 64

// runConcurrently spreads b.N operations over appenders goroutines and
// reports operations per second.
func runConcurrently(b *testing.B, op func(worker, i int) error) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := range appenders {
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

// BenchmarkAppendGroupCommit measures Repository.Update (one event with
// expected sequence, hash chained) from 64 concurrent appenders to distinct
// aggregates, on an embedded server with sync_interval: always.
func BenchmarkAppendGroupCommit(b *testing.B) {
	_, nc := testnats.Start(b)
	s, err := eventstore.Open(context.Background(), nc, eventstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	repo := eventstore.NewRepository(s, tallyKind, 100_000)
	runConcurrently(b, func(w, i int) error {
		_, err := repo.Update(context.Background(), fmt.Sprintf("b%d", w), eventstore.UpdateOptions[tally]{
			CommandID: fmt.Sprintf("c%d", i),
		}, note("x"))
		return err
	})
	st := s.CommitStats()
	b.ReportMetric(float64(st.Messages)/float64(st.Batches), "msgs/batch")
}

// BenchmarkRawSyncPublish is the baseline: one synchronous JetStream publish
// per message (wait for the ack, then send the next) from 64 concurrent
// publishers, same server configuration, same stream, same payload size.
func BenchmarkRawSyncPublish(b *testing.B) {
	_, nc := testnats.Start(b)
	s, err := eventstore.Open(context.Background(), nc, eventstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	js, _ := jetstream.New(nc)
	payload := make([]byte, 420) // about the size of one envelope
	runConcurrently(b, func(w, i int) error {
		_, err := js.Publish(context.Background(), fmt.Sprintf("orders.b%d", w), payload)
		return err
	})
}

package eventstore_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/internal/testnats"
)

// BenchmarkAtomicBatchSize measures what one JetStream atomic batch costs
// the embedded server (sync_interval: always, one R1 file stream, 300-byte
// messages, each expecting its subject empty as an order's create does) by
// its size, one batch at a time: the fixed part (the server stages every
// R1 batch in a file store of its own, created and removed per batch) and
// the part per message. It is why direct placement puts an order's
// placement and outcome in one batch rather than two
// (docs/design/write-path.md, section 5).
func BenchmarkAtomicBatchSize(b *testing.B) {
	for _, size := range []int{1, 2, 10, 100, 500} {
		b.Run(fmt.Sprintf("msgs=%d", size), func(b *testing.B) {
			nc, _ := costStream(b)
			payload := make([]byte, 300)
			b.ResetTimer()
			start := time.Now()
			msgs := make([]*nats.Msg, size)
			for i := range b.N {
				for j := range msgs {
					msgs[j] = nats.NewMsg("cost." + strconv.Itoa(i) + "." + strconv.Itoa(j))
					msgs[j].Data = payload
					msgs[j].Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
				}
				publishCostBatch(b, nc, msgs, i)
			}
			el := time.Since(start).Seconds()
			b.ReportMetric(float64(b.N*size)/el, "msgs/s")
			b.ReportMetric(el/float64(b.N)*1000, "ms/batch")
		})
	}
}

// BenchmarkPlainPublishPipelined is BenchmarkAtomicBatchSize's other side:
// the same messages as plain publishes, all sent before any
// acknowledgement is awaited, each expecting the stream's last sequence
// (as a feed batch's first message does) so that none can be stored out
// of turn. Every plain publish pays its own fsync, while the server
// coalesces an atomic batch's into one; this is why the committer and the
// feed store batches, and why the raw publish baseline is bound by the
// disk's latency rather than the CPU.
func BenchmarkPlainPublishPipelined(b *testing.B) {
	for _, size := range []int{10, 100} {
		b.Run(fmt.Sprintf("msgs=%d", size), func(b *testing.B) {
			_, js := costStream(b)
			var err error
			payload := make([]byte, 300)
			acks := make([]jetstream.PubAckFuture, size)
			var last uint64
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				for j := range size {
					m := nats.NewMsg("cost." + strconv.Itoa(i) + "." + strconv.Itoa(j))
					m.Data = payload
					m.Header.Set(jetstream.ExpectedLastSeqHeader, strconv.FormatUint(last, 10))
					last++
					if acks[j], err = js.PublishMsgAsync(m); err != nil {
						b.Fatal(err)
					}
				}
				for j, ack := range acks {
					select {
					case <-ack.Ok():
					case err := <-ack.Err():
						b.Fatalf("batch %d message %d: %v", i, j, err)
					}
				}
			}
			el := time.Since(start).Seconds()
			b.ReportMetric(float64(b.N*size)/el, "msgs/s")
			b.ReportMetric(el/float64(b.N)*1000, "ms/batch")
		})
	}
}

// costStream starts an embedded server with the R1 file stream COST
// (cost.>, atomic batches allowed) for the cost benchmarks.
func costStream(b *testing.B) (*nats.Conn, jetstream.JetStream) {
	b.Helper()
	_, nc := testnats.Start(b)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "COST", Subjects: []string{"cost.>"},
		Storage: jetstream.FileStorage, AllowAtomicPublish: true}); err != nil {
		b.Fatal(err)
	}
	return nc, js
}

// BenchmarkEventsPerMessage measures what storing an order's events as one
// message rather than one message per event would save, and what a second
// reader of every message costs: 64 orders per atomic batch (place's
// batches hold ~30, a flash sale's up to 256), each order's two events
// (placed and its outcome; 938 bytes each, the event store's average in
// engine bench's place) either as two messages or as one of both sizes,
// every message read by ordered consumers as the projection and the feed
// read the store. It reports the process's CPU (server, publisher and
// readers, user and system) per order, which the VM's speed moves less
// than the rates do (docs/design/write-path.md, section 10).
func BenchmarkEventsPerMessage(b *testing.B) {
	for _, c := range []struct{ msgsPerOrder, readers int }{{2, 2}, {1, 2}, {2, 1}} {
		b.Run(fmt.Sprintf("msgs-per-order=%d/readers=%d", c.msgsPerOrder, c.readers), func(b *testing.B) {
			benchEventsPerMessage(b, c.msgsPerOrder, c.readers)
		})
	}
}

func benchEventsPerMessage(b *testing.B, msgsPerOrder, readers int) {
	const orders, eventSize = 64, 938
	ns, _ := testnats.Start(b)
	nc := testnats.ConnectInProcess(b, ns)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "COST", Subjects: []string{"cost.>"},
		Storage: jetstream.FileStorage, AllowAtomicPublish: true})
	if err != nil {
		b.Fatal(err)
	}
	total := int64(b.N * orders * msgsPerOrder)
	var done sync.WaitGroup
	for range readers {
		c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
		if err != nil {
			b.Fatal(err)
		}
		done.Add(1)
		var seen atomic.Int64
		cc, err := c.Consume(func(m jetstream.Msg) {
			if _, err := m.Metadata(); err != nil {
				b.Error(err)
			}
			if seen.Add(1) == total {
				done.Done()
			}
		})
		if err != nil {
			b.Fatal(err)
		}
		defer cc.Stop()
	}
	payload := make([]byte, eventSize*2/msgsPerOrder)
	b.ResetTimer()
	cpu0, start := processCPU(b), time.Now()
	msgs := make([]*nats.Msg, orders*msgsPerOrder)
	for i := range b.N {
		for j := range msgs {
			msgs[j] = nats.NewMsg("cost." + strconv.Itoa(i) + "." + strconv.Itoa(j/msgsPerOrder))
			msgs[j].Data = payload
		}
		publishCostBatch(b, nc, msgs, i)
	}
	done.Wait()
	el, cpu := time.Since(start).Seconds(), processCPU(b)-cpu0
	b.ReportMetric(cpu.Seconds()*1e6/float64(b.N*orders), "cpu-µs/order")
	b.ReportMetric(float64(b.N*orders)/el, "orders/s")
}

// publishCostBatch publishes msgs as the i-th atomic batch (a single
// message as a plain publish) the way the committer does, with
// eventstore.PublishAtomic, and waits for the server's acknowledgement.
func publishCostBatch(b *testing.B, nc *nats.Conn, msgs []*nats.Msg, i int) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pr, err := eventstore.PublishAtomic(ctx, nc, msgs, "cost batch")
	if err != nil || pr.Error != nil {
		b.Fatalf("batch %d: %v %v", i, err, pr.Error)
	}
}

// processCPU is the CPU time this process has used so far, user and
// system.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

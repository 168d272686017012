package bench

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/projections"
)

// benchPlace measures orders accepted (202) per second over HTTP at the
// place concurrency, spread over the place SKUs with ample stock, and the
// POST latency; then, on the same embedded server once the engine is idle,
// the baseline: one synchronous JetStream publish per message (publish,
// wait for the ack, next) of the event store's average message size, into
// a stream configured as the event store, at the same concurrency.
func (b *bencher) benchPlace(ctx context.Context) error {
	o := b.opts
	e, err := b.startEngine(ctx, "place", o.placeConcurrency)
	if err != nil {
		return err
	}
	defer func() { _ = e.stop() }()
	for i := range o.placeSKUs {
		if err := e.api.setStock(ctx, placeSKU(i), 1_000_000_000_000); err != nil {
			return err
		}
	}

	var placed atomic.Int64
	lat := newLatencies(o.placeConcurrency)
	before := e.Store.CommitStats()
	cpuStart := markCPU()
	stop := progress(b.stderr, "place: engine, POST /v1/orders", "orders", &placed, 0, o.placeDuration)
	elapsed, err := runFor(ctx, o.placeConcurrency, o.placeDuration, func(ctx context.Context, w, i int) error {
		start := time.Now()
		a, _, err := e.api.placeOrder(ctx, placeSKU((w+i*o.placeConcurrency)%o.placeSKUs), 1)
		if err != nil {
			return err
		}
		if err := a.expect("place an order", http.StatusAccepted); err != nil {
			return err
		}
		lat[w] = append(lat[w], time.Since(start))
		placed.Add(1)
		return nil
	})
	stop()
	if err != nil {
		return err
	}
	after := e.Store.CommitStats()
	batches, msgs := after.Batches-before.Batches, after.Messages-before.Messages
	if err := waitIdle(ctx, e); err != nil {
		return err
	}
	// Until idle: the readers' share of an order counts even where they
	// catch up after the load.
	engineCPU := cpuStart.since()
	b.addMessagesPerOrder("place", before, e.Store.CommitStats(), placed.Load())

	size, err := averageMessageSize(ctx, e)
	if err != nil {
		return err
	}
	var published atomic.Int64
	rawLat := newLatencies(o.placeConcurrency)
	raw, err := rawStream(ctx, e)
	if err != nil {
		return err
	}
	payload := make([]byte, size)
	cpuStart = markCPU()
	stop = progress(b.stderr, fmt.Sprintf("place: raw sync publish, %d B", size), "msgs", &published, 0, o.placeDuration)
	rawElapsed, err := runFor(ctx, o.placeConcurrency, o.placeDuration, func(ctx context.Context, w, i int) error {
		start := time.Now()
		if _, err := raw.Publish(ctx, fmt.Sprintf("benchraw.%d", w), payload); err != nil {
			return errors.Wrap(err, "raw publish")
		}
		rawLat[w] = append(rawLat[w], time.Since(start))
		published.Add(1)
		return nil
	})
	stop()
	rawCPU := cpuStart.since()
	if err != nil {
		return err
	}

	rate := float64(placed.Load()) / elapsed.Seconds()
	rawRate := float64(published.Load()) / rawElapsed.Seconds()
	b.compare("place", fmt.Sprintf("orders accepted/s, C=%d", o.placeConcurrency), rate, "orders/s", "raw sync publish, msgs/s", rawRate, 1)
	b.add("place", "group commit: batches/s while loaded", float64(batches)/elapsed.Seconds(), "batches/s", "", nil)
	b.add("place", "group commit: messages per batch", float64(msgs)/float64(max(batches, 1)), "msgs", "", nil)
	b.addCPU("place", "order, until idle", engineCPU, placed.Load(), "per raw publish", rawCPU, published.Load())
	sorted, rawSorted := lat.sorted(), rawLat.sorted()
	for _, p := range []float64{50, 95, 99} {
		goal, met := "", func(float64) bool { return true }
		if p == 99 {
			goal, met = "< 50 ms", func(v float64) bool { return v < 50 }
		}
		r := Result{Name: "place", Metric: fmt.Sprintf("POST latency p%.0f", p), Value: percentile(sorted, p), Unit: "ms",
			Baseline: &benchBaseline{Name: fmt.Sprintf("raw publish p%.0f", p), Value: percentile(rawSorted, p)}}
		if goal != "" {
			ok := met(r.Value)
			r.Goal, r.GoalMet = goal, &ok
		}
		b.results = append(b.results, r)
	}
	return e.stop()
}

// addMessagesPerOrder reports how many durable messages the engine stored
// per order between two commit counts (the orders placed and everything
// they caused until the engine was idle), in all and by kind. A SKU's
// decisions are one event per batch of requests, so their share per order
// falls as the batches grow.
func (b *bencher) addMessagesPerOrder(name string, before, after eventstore.CommitStats, orders int64) {
	n := float64(max(orders, 1))
	b.add(name, "durable messages per order, all", float64(after.Messages-before.Messages)/n, "msgs", "", nil)
	kinds := make([]string, 0, len(after.ByKind))
	for k := range after.ByKind {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		if d := after.ByKind[k] - before.ByKind[k]; d > 0 {
			b.add(name, "durable messages per order, "+k, float64(d)/n, "msgs", "", nil)
		}
	}
}

func placeSKU(i int) string { return fmt.Sprintf("PLACE-%03d", i) }

// runFor runs op from n goroutines until dur has passed, each calling it
// again as soon as it returns; it returns the time until the last call
// returned, or the first error (which stops the others).
func runFor(ctx context.Context, n int, dur time.Duration, op func(ctx context.Context, worker, i int) error) (time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	first := firstError{cancel: cancel}
	start := time.Now()
	end := start.Add(dur)
	for w := range n {
		wg.Go(func() {
			for i := 0; time.Now().Before(end) && ctx.Err() == nil; i++ {
				if err := op(ctx, w, i); err != nil {
					first.set(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start), first.err
}

// waitIdle waits until the engine has decided every reservation, recorded
// every outcome and projected every event, so that the next measurement
// does not share the machine with the previous one's tail.
func waitIdle(ctx context.Context, e *benchEngine) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	for {
		idle, err := e.Store.ReservationFlowIdle(ctx)
		if err != nil {
			return err
		}
		if idle {
			st, err := e.Runner.Status(ctx)
			if err != nil {
				return err
			}
			if st.State == projections.StateInterrupted {
				return errors.New("the projection is interrupted: see the engine log in the bench directory")
			}
			if st.Lag == 0 && st.State == projections.StateLive {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return errors.Wrap(ctx.Err(), "wait for the engine to be idle")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// averageMessageSize is the event store's bytes per message so far.
func averageMessageSize(ctx context.Context, e *benchEngine) (int, error) {
	msgs, bytes, err := e.Store.StoredStats(ctx)
	if err != nil {
		return 0, errors.Wrap(err, "read the event store streams")
	}
	if msgs == 0 {
		return 0, errors.New("the event store is empty")
	}
	return int(bytes / msgs), nil
}

// rawStream creates the baseline's stream, configured as the event store
// (file storage, same replicas, same server) but on subjects of its own.
func rawStream(ctx context.Context, e *benchEngine) (jetstream.JetStream, error) {
	js, err := jetstream.New(e.Store.Conn())
	if err != nil {
		return nil, errors.Wrap(err, "open JetStream")
	}
	cfg, err := e.Store.StreamConfig(ctx)
	if err != nil {
		return nil, errors.Wrap(err, "read the event store stream")
	}
	cfg.Metadata = nil
	cfg.Name, cfg.Subjects, cfg.Description = "BENCH_RAW", []string{"benchraw.>"}, "engine bench: raw publish baseline"
	if _, err := js.CreateStream(ctx, cfg); err != nil {
		return nil, errors.Wrap(err, "create the raw publish stream")
	}
	return js, nil
}

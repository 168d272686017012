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

	"github.com/orderengine/engine/internal/host"
	"github.com/orderengine/engine/projections"
)

const (
	e2eSKUs = 100
	// e2eInFlight bounds the requests outstanding; an order that finds
	// them all busy is not sent, and the achieved rate shows it.
	e2eInFlight = 1024
	// e2eTrackEvery: every 10th order's visibility is measured.
	e2eTrackEvery = 10
)

// benchE2E holds a steady e2e-rate orders/s over HTTP (paced by the clock,
// up to 1,024 requests in flight) over 100 SKUs with ample stock, for
// e2e-duration, with everything running. Every 10th order, once accepted,
// is read back with GET /v1/orders/{id} carrying its Consistency-Token,
// which answers as soon as the read model includes the order (the engine
// polls its checkpoint every 15 ms): order→visible is that answer's time
// minus the 202's. Every 100 ms the projection's status is sampled: lag in
// events and in seconds. It fails unless every order sent was accepted and
// every tracked one became visible; an order due while all 1,024 requests
// are in flight is not sent, and counted (the engine did not keep up).
func (b *bencher) benchE2E(ctx context.Context) error {
	o := b.opts
	e, err := b.startEngine(ctx, "e2e", e2eInFlight)
	if err != nil {
		return err
	}
	defer func() { _ = e.stop() }()
	for i := range e2eSKUs {
		if err := e.api.setStock(ctx, fmt.Sprintf("E2E-%03d", i), 1_000_000_000_000); err != nil {
			return err
		}
	}
	if err := waitIdle(ctx, e); err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		visible  []time.Duration
		lagS     []float64
		lagMax   uint64
		sent     atomic.Int64
		accepted atomic.Int64
		skipped  atomic.Int64 // due while every request slot was busy
		wg       sync.WaitGroup
	)
	first := firstError{cancel: cancel}
	fail := first.set
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		// A failure cancels ctx, which ends the sampling.
		host.Every(ctx, 100*time.Millisecond, func(ctx context.Context) {
			st, err := e.Runner.Status(ctx)
			if err != nil {
				if ctx.Err() == nil {
					fail(err)
				}
				return
			}
			mu.Lock()
			lagS, lagMax = append(lagS, st.LagSeconds), max(lagMax, st.Lag)
			mu.Unlock()
		})
	}()

	order := func(i int64) {
		defer wg.Done()
		a, placed, err := e.api.placeOrder(ctx, fmt.Sprintf("E2E-%03d", i%e2eSKUs), 1)
		if err == nil {
			err = a.expect("place an order", http.StatusAccepted)
		}
		if err != nil {
			fail(err)
			return
		}
		accepted.Add(1)
		if i%e2eTrackEvery != 0 {
			return
		}
		returned := time.Now()
		g, err := e.api.do(ctx, http.MethodGet, "/v1/orders/"+placed.OrderID, nil, "Consistency-Token", a.Consistency)
		if err == nil {
			err = g.expect("read the order back", http.StatusOK)
		}
		if err != nil {
			fail(err)
			return
		}
		mu.Lock()
		visible = append(visible, time.Since(returned))
		mu.Unlock()
	}
	sem := make(chan struct{}, e2eInFlight)
	stop := progress(b.stderr, fmt.Sprintf("e2e: %d orders/s", o.e2eRate), "orders", &accepted, 0, o.e2eDuration)
	start := time.Now()
	tick := time.NewTicker(time.Millisecond)
	for el := time.Duration(0); el < o.e2eDuration && ctx.Err() == nil; el = time.Since(start) {
		for due := int64(el.Seconds() * float64(o.e2eRate)); sent.Load() < due; {
			i := sent.Add(1)
			select {
			case sem <- struct{}{}:
				wg.Add(1)
				go func() { defer func() { <-sem }(); order(i) }()
			default:
				skipped.Add(1)
			}
		}
		<-tick.C
	}
	tick.Stop()
	wg.Wait()
	elapsed := time.Since(start)
	stop()
	// The sampler runs until cancel: it may still report an error.
	if err := waitIdle(ctx, e); err != nil {
		first.set(err)
	}
	cancel()
	<-sampled
	if first.err != nil {
		return first.err
	}
	st, err := e.Runner.Status(context.Background())
	if err != nil {
		return err
	}
	if st.State != projections.StateLive || st.DeadLetters > 0 {
		return errors.Newf("the projection ended %s with %d dead letters", st.State, st.DeadLetters)
	}

	if len(visible) == 0 || len(lagS) == 0 {
		return errors.New("e2e: too short to measure: raise -e2e-duration")
	}
	slices.Sort(visible)
	slices.Sort(lagS)
	// Orders that found every request slot busy were not sent: the engine
	// did not keep up with the rate, and the latencies include queueing.
	b.add("e2e", "orders accepted/s", float64(accepted.Load())/elapsed.Seconds(), "orders/s",
		fmt.Sprintf("≈ %d (the rate asked)", o.e2eRate), func(v float64) bool { return v >= 0.97*float64(o.e2eRate) })
	b.add("e2e", fmt.Sprintf("orders not sent: %d requests already in flight", e2eInFlight), float64(skipped.Load()), "orders",
		"0", func(v float64) bool { return v == 0 })
	b.add("e2e", "order→visible in read model p50", percentile(visible, 50), "ms", "", nil)
	b.add("e2e", "order→visible in read model p99", percentile(visible, 99), "ms", "", nil)
	b.add("e2e", "projection lag p99", lagS[min(len(lagS)-1, len(lagS)*99/100)], "s", "", nil)
	b.add("e2e", "projection lag max", float64(lagMax), "events", "", nil)
	return e.stop()
}

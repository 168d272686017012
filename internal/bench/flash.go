package bench

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/orderengine/engine/domain"
)

// flashSKU is the one SKU of the flash sale.
const flashSKU = "FLASH-1"

// flashRun is what the engine's flash sale produced.
type flashRun struct {
	confirmed, rejected atomic.Int64
	outcome, confirm    latencies
	elapsed             time.Duration
}

// benchFlashSale: one SKU with flash-stock units, flash-orders single-unit
// orders from flash-concurrency buyers at once, each POST asking
// `Prefer: wait=10` so that it answers with the order's final outcome
// (confirmed or rejected). Measured: final outcomes per second (orders ÷
// time from the first POST to the last outcome) and order→outcome latency.
// It fails unless exactly flash-stock orders were confirmed and the SKU
// holds exactly that many reserved. Baselines, same Postgres, same number
// of buyers at once: the hot-row UPDATE and the optimistic-version variant.
func (b *bencher) benchFlashSale(ctx context.Context) error {
	o := b.opts
	e, err := b.startEngine(ctx, "flash-sale", o.flashConcurrency)
	if err != nil {
		return err
	}
	defer func() { _ = e.stop() }()
	if err := e.api.setStock(ctx, flashSKU, int64(o.flashStock)); err != nil {
		return err
	}
	before := e.Store.CommitStats()
	cpuStart := markCPU()
	run, err := b.flashEngine(ctx, e)
	if err != nil {
		return err
	}
	if err := waitIdle(ctx, e); err != nil {
		return err
	}
	engineCPU := cpuStart.since()
	b.addMessagesPerOrder("flash-sale", before, e.Store.CommitStats(), int64(o.flashOrders))
	if got := run.confirmed.Load(); got != int64(o.flashStock) {
		return errors.Newf("OVERSELL CHECK FAILED: %d orders confirmed for %d units", got, o.flashStock)
	}
	sku, err := e.App.SKUs.Load(ctx, flashSKU)
	if err != nil {
		return err
	}
	if sku.State.Reserved != int64(o.flashStock) || sku.State.OnHand != int64(o.flashStock) {
		return errors.Newf("OVERSELL CHECK FAILED: %s has %d reserved of %d on hand, want %d of %d",
			flashSKU, sku.State.Reserved, sku.State.OnHand, o.flashStock, o.flashStock)
	}

	pool, err := pgStockPool(ctx, e.dbURL, o.flashConcurrency)
	if err != nil {
		return err
	}
	defer pool.Close()
	var n atomic.Int64
	stop := progress(b.stderr, "flash-sale: Postgres hot row", "outcomes", &n, int64(o.flashOrders), 0)
	cpuStart = markCPU()
	hot, err := hotRowUpdate(ctx, pool, flashSKU, o.flashStock, o.flashOrders, o.flashConcurrency, &n)
	hotCPU := cpuStart.since()
	stop()
	if err != nil {
		return err
	}
	n.Store(0)
	stop = progress(b.stderr, "flash-sale: Postgres optimistic", "outcomes", &n, int64(o.flashOrders), 0)
	opt, err := optimisticUpdate(ctx, pool, flashSKU, o.flashStock, o.flashOrders, o.flashConcurrency, &n)
	stop()
	if err != nil {
		return err
	}

	rate := float64(o.flashOrders) / run.elapsed.Seconds()
	metric := fmt.Sprintf("final outcomes/s, %d orders for %d units, C=%d", o.flashOrders, o.flashStock, o.flashConcurrency)
	b.compare("flash-sale", metric, rate, "orders/s", "Postgres hot-row UPDATE", hot.perSecond(o.flashOrders), 1)
	b.compare("flash-sale", metric, rate, "orders/s",
		fmt.Sprintf("Postgres optimistic version (%d retries)", opt.retries), opt.perSecond(o.flashOrders), 0)
	b.add("flash-sale", "orders confirmed (must equal stock)", float64(run.confirmed.Load()), "orders",
		fmt.Sprintf("= %d", o.flashStock), func(v float64) bool { return v == float64(o.flashStock) })
	confirm, outcome, hotLat := run.confirm.sorted(), run.outcome.sorted(), hot.lat.sorted()
	for _, p := range []float64{50, 99} {
		b.results = append(b.results, Result{Name: "flash-sale", Metric: fmt.Sprintf("order→confirmed p%.0f", p),
			Value: percentile(confirm, p), Unit: "ms", Baseline: &benchBaseline{Name: fmt.Sprintf("hot-row UPDATE p%.0f", p), Value: percentile(hotLat, p)}})
	}
	b.add("flash-sale", "order→final outcome p99", percentile(outcome, 99), "ms", "", nil)
	b.addCPU("flash-sale", "order, until idle", engineCPU, int64(o.flashOrders), "per hot-row outcome", hotCPU, int64(o.flashOrders))
	return e.stop()
}

// flashEngine places the flash sale's orders through the API.
func (b *bencher) flashEngine(ctx context.Context, e *benchEngine) (*flashRun, error) {
	o := b.opts
	run := &flashRun{outcome: newLatencies(o.flashConcurrency), confirm: newLatencies(o.flashConcurrency)}
	var (
		next, done atomic.Int64
		wg         sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	first := firstError{cancel: cancel}
	fail := first.set
	stop := progress(b.stderr, "flash-sale: engine", "outcomes", &done, int64(o.flashOrders), 0)
	start := time.Now()
	for w := range o.flashConcurrency {
		wg.Go(func() {
			for next.Add(1) <= int64(o.flashOrders) && ctx.Err() == nil {
				t := time.Now()
				a, order, err := e.api.placeOrder(ctx, flashSKU, 1, "Prefer", "wait=10")
				if err == nil {
					err = a.expect("place a flash-sale order", http.StatusCreated, http.StatusAccepted)
				}
				status := domain.OrderStatus(order.Status)
				if err == nil && a.Status == http.StatusAccepted {
					// The ten seconds passed: wait on, the outcome counts when it comes.
					snap, werr := e.App.AwaitReservation(ctx, order.OrderID, time.Minute)
					status, err = snap.State.Status, werr
				}
				if err != nil {
					fail(err)
					return
				}
				took := time.Since(t)
				switch status {
				case domain.StatusConfirmed:
					run.confirmed.Add(1)
					run.confirm[w] = append(run.confirm[w], took)
				case domain.StatusRejected:
					run.rejected.Add(1)
				default:
					fail(errors.Newf("order %s is %s a minute after it was placed", order.OrderID, status))
					return
				}
				run.outcome[w] = append(run.outcome[w], took)
				done.Add(1)
			}
		})
	}
	wg.Wait()
	run.elapsed = time.Since(start)
	stop()
	return run, first.err
}

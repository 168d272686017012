package projections

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/orderengine/engine/commands"
	"github.com/orderengine/engine/domain"
)

// BenchmarkProjectionLag measures how far the read models trail the event
// store under a steady load. The reservation workers and a live Runner run;
// orders are placed at 2,000/s (paced by the clock, up to 512 commands in
// flight) over 100 SKUs with ample stock for BENCH_LAG_SECONDS (default 15).
//
// Every 10th order is tracked: the time its PlaceOrder returned (its
// OrderPlaced is then durably in the stream) is recorded, and every 50 ms
// one query looks up the tracked orders not yet seen in rm.orders; an order
// found is visible at that poll's time. order→visible is that time minus
// the time the command returned, so it is an upper bound with a 50 ms
// resolution (on average it overstates by ~25 ms). The same 50 ms tick
// samples Runner.Status LagSeconds (how old the last applied event is while
// events remain; 0 when caught up).
//
// Reported: visible-p50-ms and visible-p99-ms, status-lag-p99-s and
// status-lag-max-s, and orders/s: orders placed ÷ time from the first
// command to the last command's return (below 2,000 when the engine cannot
// keep up). It fails unless every placed order
// ends confirmed in rm.orders with its checkpoint at the stream's last
// event, and unless the Runner logged no warning (no batch ever failed).
func BenchmarkProjectionLag(b *testing.B) {
	const (
		rate     = 2000
		skus     = 100
		every    = 10
		inFlight = 512
		poll     = 50 * time.Millisecond
	)
	duration := time.Duration(benchEnvInt(b, "BENCH_LAG_SECONDS", 15)) * time.Second
	ctx := context.Background()
	store, app := benchStore(b)
	pool := newPool(b)
	for i := range skus {
		if _, err := app.SetOnHand(ctx, commands.Meta{CommandID: app.NewID()}, fmt.Sprint("SKU", i),
			commands.SetOnHand{OnHand: 1_000_000_000}); err != nil {
			b.Fatal(err)
		}
	}
	f := &fixture{store: store, app: app}
	workersCtx, stopWorkers := context.WithCancel(ctx)
	workersDone := make(chan error, 1)
	go func() { workersDone <- app.RunWorkers(workersCtx) }()
	defer func() {
		stopWorkers()
		if err := <-workersDone; err != nil {
			b.Errorf("workers: %v", err)
		}
	}()
	warns := &warnings{}
	r := NewRunner(store, pool, slog.New(warns))
	runCtx, stopRunner := context.WithCancel(ctx)
	runDone := make(chan error, 1)
	go func() { runDone <- r.Run(runCtx) }()
	defer func() {
		stopRunner()
		if err := <-runDone; err != nil {
			b.Errorf("run: %v", err)
		}
	}()
	eventually(b, "the runner to apply the stock", func() bool {
		cp, err := Checkpoint(ctx, pool, MainProjection)
		return err == nil && cp >= f.lastEventSeq(b)
	})

	var totalPlaced int64 // over the iterations so far
	b.ResetTimer()
	for range b.N {
		var (
			mu       sync.Mutex
			returned = map[uuid.UUID]time.Time{} // tracked, not yet seen
			visible  []time.Duration
			lags     []float64
			placed   atomic.Int64
			wg       sync.WaitGroup
		)
		sem := make(chan struct{}, inFlight)
		stopPoll := make(chan struct{})
		pollDone := make(chan struct{})
		sampleOnce := func() {
			if st, err := r.Status(ctx); err == nil {
				lags = append(lags, st.LagSeconds)
			} else {
				b.Errorf("status: %v", err)
			}
			mu.Lock()
			ids := make([]uuid.UUID, 0, len(returned))
			for id := range returned {
				ids = append(ids, id)
			}
			mu.Unlock()
			if len(ids) == 0 {
				return
			}
			rows, err := pool.Query(ctx, `SELECT order_id FROM rm.orders WHERE order_id = ANY($1)`, ids)
			if err != nil {
				b.Errorf("poll rm.orders: %v", err)
				return
			}
			seen, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
			if err != nil {
				b.Errorf("poll rm.orders: %v", err)
				return
			}
			now := time.Now()
			mu.Lock()
			for _, id := range seen {
				visible = append(visible, now.Sub(returned[id]))
				delete(returned, id)
			}
			mu.Unlock()
		}
		go func() {
			defer close(pollDone)
			t := time.NewTicker(poll)
			defer t.Stop()
			for {
				select {
				case <-stopPoll:
					return
				case <-t.C:
					sampleOnce()
				}
			}
		}()

		start := time.Now()
		end := start.Add(duration)
		tick := time.NewTicker(time.Millisecond)
		issued := 0
		for now := range tick.C {
			if !now.Before(end) {
				break
			}
			due := int(now.Sub(start).Seconds() * rate)
			for ; issued < due && time.Now().Before(end); issued++ {
				sem <- struct{}{}
				i := issued
				wg.Go(func() {
					defer func() { <-sem }()
					out, err := app.PlaceOrder(ctx, commands.Meta{CommandID: app.NewID()}, commands.PlaceOrder{
						CustomerID: fmt.Sprint("c", i%1000), Currency: "USD",
						Lines: []domain.Line{{SKU: fmt.Sprint("SKU", i%skus), Qty: 1, UnitPriceCents: 1250}}})
					if err != nil {
						b.Errorf("place order: %v", err)
						return
					}
					at := time.Now()
					placed.Add(1)
					if i%every == 0 {
						id := uuid.MustParse(out.Response.Body.(commands.OrderView).OrderID)
						mu.Lock()
						returned[id] = at
						mu.Unlock()
					}
				})
			}
		}
		tick.Stop()
		wg.Wait()
		elapsed := time.Since(start)
		// Keep polling until every tracked order is seen.
		eventually(b, "every tracked order in rm.orders", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(returned) == 0
		})
		close(stopPoll)
		<-pollDone
		totalPlaced += placed.Load()
		if b.Failed() {
			b.FailNow()
		}

		// Every order ends confirmed in the read models.
		f.quiesce(b)
		last := f.lastEventSeq(b)
		eventually(b, "the runner to catch up", func() bool {
			cp, err := Checkpoint(ctx, pool, MainProjection)
			return err == nil && cp >= last
		})
		var confirmed, total int64
		if err := pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'confirmed'), count(*) FROM rm.orders`).
			Scan(&confirmed, &total); err != nil {
			b.Fatal(err)
		}
		if total != totalPlaced || confirmed != total {
			b.Fatalf("rm.orders: %d confirmed of %d, want all %d placed", confirmed, total, totalPlaced)
		}
		if w := warns.all(); len(w) > 0 {
			b.Fatalf("the runner warned: %v", w)
		}

		slices.Sort(visible)
		slices.Sort(lags)
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		b.ReportMetric(ms(visible[len(visible)/2]), "visible-p50-ms")
		b.ReportMetric(ms(visible[len(visible)*99/100]), "visible-p99-ms")
		b.ReportMetric(lags[len(lags)*99/100], "status-lag-p99-s")
		b.ReportMetric(lags[len(lags)-1], "status-lag-max-s")
		b.ReportMetric(float64(placed.Load())/elapsed.Seconds(), "orders/s")
		b.Logf("%d orders in %v (%d tracked), %d status samples", placed.Load(), elapsed.Round(time.Millisecond),
			len(visible), len(lags))
	}
}

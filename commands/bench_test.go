package commands_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/internal/pglocal"
	"github.com/orderengine/engine/internal/testnats"
)

// backlog is the number of reservation requests the drain benchmarks work
// through; half of them can be granted, as in a sold-out flash sale.
const backlog = 100_000

// BenchmarkReserveDrain measures reservation decisions per second on ONE
// hot SKU: a backlog of single-unit orders is placed with the processors
// stopped, then the processors are started and the clock runs until every
// request is decided and its SKU event appended durably (sync_interval:
// always): decisions/s. Then the order saga is started and timed until it
// has recorded every outcome on its order, which confirms or rejects it
// (and asks for the release of what a rejected order held):
// outcomes-recorded/s. In production both run at once, sharing the disk.
func BenchmarkReserveDrain(b *testing.B) {
	for range b.N {
		_, nc := testnats.Start(b)
		e := newBenchEngine(b, nc)
		ctx := context.Background()
		if _, err := e.app.SetOnHand(ctx, metaFor(e), "HOT", setOnHand(backlog/2)); err != nil {
			b.Fatal(err)
		}
		ids := placeMany(b, e, "HOT", backlog)
		b.StartTimer()
		start := time.Now()
		stopProcessors := e.runFn(e.app.RunProcessors)
		waitDrained(b, e, eventstore.ReservationConsumers()...)
		decided := time.Since(start)
		start = time.Now()
		stopSaga := e.runFn(e.app.RunSaga)
		waitDrained(b, e, eventstore.ReservationConsumers()...)
		waitDrained(b, e, eventstore.SagaConsumer)
		settled := time.Since(start)
		b.StopTimer()
		stopSaga()
		stopProcessors()
		b.ReportMetric(float64(backlog)/decided.Seconds(), "decisions/s")
		b.ReportMetric(float64(backlog)/settled.Seconds(), "outcomes-recorded/s")
		if s := e.sku(b, "HOT"); s.Reserved != backlog/2 || s.OnHand != backlog/2 {
			b.Fatalf("after the drain: reserved %d on_hand %d", s.Reserved, s.OnHand)
		}
		if o := e.order(b, ids[len(ids)-1]); o.Status != domain.StatusRejected {
			b.Fatalf("last order %s, want rejected", o.Status)
		}
	}
}

// BenchmarkOrderToConfirmedLatency places orders at a steady rate over 100
// SKUs with ample stock, with the processors running, and reports the time
// from the place command to the order being seen confirmed: p50 and p99.
func BenchmarkOrderToConfirmedLatency(b *testing.B) {
	const rate, duration = 500, 10 * time.Second
	_, nc := testnats.Start(b)
	e := newBenchEngine(b, nc)
	ctx := context.Background()
	for i := range 100 {
		if _, err := e.app.SetOnHand(ctx, metaFor(e), fmt.Sprint("SKU", i), setOnHand(1_000_000)); err != nil {
			b.Fatal(err)
		}
	}
	stop := e.run()
	defer stop()
	b.ResetTimer()
	for range b.N {
		var mu sync.Mutex
		var lat []time.Duration
		var wg sync.WaitGroup
		tick := time.NewTicker(time.Second / rate)
		end := time.Now().Add(duration)
		for i := 0; time.Now().Before(end); i++ {
			<-tick.C
			wg.Go(func() {
				start := time.Now()
				id := e.place(b, line(fmt.Sprint("SKU", i%100), 1))
				if s := e.settle(b, id); s != domain.StatusConfirmed {
					b.Errorf("order %s", s)
				}
				mu.Lock()
				lat = append(lat, time.Since(start))
				mu.Unlock()
			})
		}
		tick.Stop()
		wg.Wait()
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(len(lat))/duration.Seconds(), "orders/s")
	}
}

// benchEngine is an engine whose processors start on demand.
type benchEngine struct{ *engine }

func newBenchEngine(b *testing.B, nc natsConn) benchEngine {
	b.Helper()
	b.StopTimer()
	store, err := eventstore.Open(context.Background(), nc, eventstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(store.Close)
	return benchEngine{&engine{app: newApp(store), stop: func() {}}}
}

// run starts all the workers and returns their stop.
func (e benchEngine) run() func() { return e.runFn(e.app.RunWorkers) }

// runFn runs fn until the returned stop is called.
func (e benchEngine) runFn(fn func(context.Context) error) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	return func() { cancel(); <-done }
}

// placeMany places n single-unit orders on sku from 64 goroutines, in
// arrival order, and returns their ids in placement order.
func placeMany(b *testing.B, e benchEngine, sku string, n int) []string {
	b.Helper()
	ids := make([]string, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				ids[i] = e.place(b, line(sku, 1))
			}
		})
	}
	wg.Wait()
	return ids
}

// waitDrained polls until the named consumers have processed and
// acknowledged everything.
func waitDrained(b *testing.B, e benchEngine, consumers ...string) {
	b.Helper()
	for {
		pending, unacked, err := e.app.Store.Backlog(context.Background(), consumers...)
		if err != nil {
			b.Fatal(err)
		}
		if pending == 0 && unacked == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkPostgresHotRow is the classic relational baseline for the drain:
// the same number of single-unit reservations on one stock row, each
// `UPDATE stock SET qty = qty - 1 WHERE sku = $1 AND qty > 0` in its own
// transaction (synchronous_commit on, fsync on) from 64 concurrent
// connections, on a private Postgres started from the installed binaries.
func BenchmarkPostgresHotRow(b *testing.B) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pglocal.ForTest(b)+" pool_max_conns=64")
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, `CREATE TABLE stock (sku text PRIMARY KEY, qty bigint NOT NULL CHECK (qty >= 0))`); err != nil {
		b.Fatal(err)
	}
	for range b.N {
		b.StopTimer()
		if _, err := pool.Exec(ctx, `INSERT INTO stock VALUES ('HOT', $1) ON CONFLICT (sku) DO UPDATE SET qty = $1`, backlog/2); err != nil {
			b.Fatal(err)
		}
		var granted atomic.Int64
		var next atomic.Int64
		var wg sync.WaitGroup
		b.StartTimer()
		start := time.Now()
		for range 64 {
			wg.Go(func() {
				for next.Add(1) <= backlog {
					tag, err := pool.Exec(ctx, `UPDATE stock SET qty = qty - 1 WHERE sku = $1 AND qty > 0`, "HOT")
					if err != nil {
						b.Error(err)
						return
					}
					granted.Add(tag.RowsAffected())
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(start)
		b.StopTimer()
		b.ReportMetric(float64(backlog)/elapsed.Seconds(), "decisions/s")
		if granted.Load() != backlog/2 {
			b.Fatalf("granted %d, want %d", granted.Load(), backlog/2)
		}
	}
}

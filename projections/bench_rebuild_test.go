package projections

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderengine/engine/commands"
	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/internal/testnats"
)

// benchEnvInt reads a positive integer from the environment, def when unset.
func benchEnvInt(tb testing.TB, name string, def int) int {
	tb.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		tb.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}

// benchStore opens an event store on a fresh embedded nats-server and the
// command side on it, without any worker running.
func benchStore(tb testing.TB) (*eventstore.Store, *commands.App) {
	tb.Helper()
	_, nc := testnats.Start(tb)
	store, err := eventstore.Open(context.Background(), nc, eventstore.Options{})
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(store.Close)
	return store, commands.NewApp(store, quietLog(), time.Hour)
}

// rebuildTables are the read models a rebuild produces, the ones the COPY
// baseline writes too (rm.checkpoints and rm.dead_letters aside).
var rebuildTables = []string{"orders", "order_lines", "inventory", "order_buckets"}

// BenchmarkRebuildVsCopy measures Rebuild on a store of N events
// (BENCH_REBUILD_EVENTS, default 1,000,000) against bulk-loading its result.
//
// The store is filled through the real command side, from 256 goroutines,
// with no worker running: every command appends exactly one event. One in
// ten is a SetOnHand on the goroutine's own SKU (256 SKUs, OnHandSet), the
// rest PlaceOrder with one or two lines (OrderPlaced). No live Runner runs,
// so Rebuild replays the whole stream, sequence 1 to the end, into rm_next
// and swaps it in.
//
// Then, on the same Postgres, the rows the rebuild produced (rm.orders,
// rm.order_lines, rm.inventory, rm.order_buckets) are read into memory (not
// timed) and written with COPY (pgx CopyFrom, one COPY per table) into empty
// tables created LIKE them INCLUDING ALL (same columns, defaults, checks and
// indexes; no foreign key). That COPY moves the final rows the N events
// produce, so it is the floor for materialising that state in Postgres:
//
//	rebuild-events/s = N / rebuild time
//	copy-rows/s      = rows copied / COPY time
//	copy-events/s    = N / COPY time (events-equivalent: the N events' result)
//	ratio-%          = 100 × rebuild-events/s ÷ copy-events/s
//	                 = 100 × COPY time ÷ rebuild time
//
// It fails unless the rebuilt read models hold every placed order with its
// lines, every SKU, a checkpoint at the last event and a rebuild that
// applied exactly N events; and unless every COPY moved every row.
func BenchmarkRebuildVsCopy(b *testing.B) {
	n := benchEnvInt(b, "BENCH_REBUILD_EVENTS", 1_000_000)
	ctx := context.Background()
	store, app := benchStore(b)
	pool := newPool(b)

	const workers = 256
	var (
		next   atomic.Int64
		orders atomic.Int64
		lines  atomic.Int64
		skus   atomic.Int64
		wg     sync.WaitGroup
	)
	fillStart := time.Now()
	for g := range workers {
		sku := fmt.Sprintf("SKU-%d", g)
		wg.Go(func() {
			first := true
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				m := commands.Meta{CommandID: app.NewID()}
				// The first command of each goroutine sets its SKU up.
				if first || i%10 == 0 {
					if _, err := app.SetOnHand(ctx, m, sku, commands.SetOnHand{OnHand: 1_000 + i}); err != nil {
						b.Errorf("set on hand: %v", err)
						return
					}
					if first {
						skus.Add(1)
					}
					first = false
					continue
				}
				ls := []domain.Line{{SKU: sku, Qty: 1 + i%3, UnitPriceCents: 1250}}
				if i%2 == 0 {
					ls = append(ls, domain.Line{SKU: fmt.Sprintf("SKU-%d", (g+1+int(i/2)%(workers-1))%workers), Qty: 2, UnitPriceCents: 999})
				}
				if _, err := app.PlaceOrder(ctx, m, commands.PlaceOrder{CustomerID: fmt.Sprint("c", i%5000), Currency: "USD", Lines: ls}); err != nil {
					b.Errorf("place order: %v", err)
					return
				}
				orders.Add(1)
				lines.Add(int64(len(ls)))
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	fill := time.Since(fillStart)
	last := lastSeqOf(b, store)
	b.Logf("filled the store with %d events (%d orders) in %v: %.0f appends/s; last sequence %d",
		n, orders.Load(), fill.Round(time.Millisecond), float64(n)/fill.Seconds(), last)

	var rebuildTime, copyTime time.Duration
	var rows int64
	b.ResetTimer()
	for range b.N {
		// Rebuild, timed.
		var done uint64
		stopProfile := profileRebuild(b)
		start := time.Now()
		if err := Rebuild(ctx, store, pool, quietLog(), func(d, _ uint64) { done = d }); err != nil {
			b.Fatalf("rebuild: %v", err)
		}
		took := time.Since(start)
		stopProfile()
		rebuildTime += took
		if done != uint64(n) {
			b.Fatalf("rebuild applied %d events, want %d", done, n)
		}
		checkRebuilt(b, pool, orders.Load(), lines.Load(), skus.Load(), last)

		// The COPY baseline: the rows read first, not timed.
		b.StopTimer()
		data := make(map[string][][]any, len(rebuildTables))
		var want int64
		for _, t := range rebuildTables {
			data[t] = readAll(b, pool, `SELECT * FROM rm.`+t)
			want += int64(len(data[t]))
			if _, err := pool.Exec(ctx, `DROP TABLE IF EXISTS copy_`+t+`; CREATE TABLE copy_`+t+` (LIKE rm.`+t+` INCLUDING ALL)`); err != nil {
				b.Fatalf("create copy_%s: %v", t, err)
			}
		}
		cols := columnsOf(b, pool)
		b.StartTimer()
		start = time.Now()
		var copied int64
		for _, t := range rebuildTables {
			c, err := pool.CopyFrom(ctx, pgx.Identifier{"copy_" + t}, cols[t], pgx.CopyFromRows(data[t]))
			if err != nil {
				b.Fatalf("copy into copy_%s: %v", t, err)
			}
			copied += c
		}
		copyTime += time.Since(start)
		b.StopTimer()
		if copied != want {
			b.Fatalf("copied %d rows, want %d", copied, want)
		}
		for _, t := range rebuildTables {
			var c int64
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM copy_`+t).Scan(&c); err != nil || c != int64(len(data[t])) {
				b.Fatalf("copy_%s holds %d rows (%v), want %d", t, c, err, len(data[t]))
			}
		}
		rows += copied
		b.Logf("rebuild of %d events: %v; COPY of %d rows: %v", n, took.Round(time.Millisecond), copied,
			time.Since(start).Round(time.Millisecond))
		b.StartTimer()
	}
	events := float64(n) * float64(b.N)
	b.ReportMetric(events/rebuildTime.Seconds(), "rebuild-events/s")
	b.ReportMetric(float64(rows)/copyTime.Seconds(), "copy-rows/s")
	b.ReportMetric(events/copyTime.Seconds(), "copy-events/s")
	b.ReportMetric(100*copyTime.Seconds()/rebuildTime.Seconds(), "ratio-%")
}

// profileRebuild starts a CPU profile into the file BENCH_REBUILD_CPUPROFILE
// names, when set, and returns what stops it. go test -cpuprofile would
// profile the filling of the store too, which dwarfs the rebuild.
func profileRebuild(b *testing.B) (stop func()) {
	b.Helper()
	name := os.Getenv("BENCH_REBUILD_CPUPROFILE")
	if name == "" {
		return func() {}
	}
	f, err := os.Create(name)
	if err != nil {
		b.Fatalf("create the CPU profile: %v", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatalf("start the CPU profile (not with -cpuprofile): %v", err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			b.Errorf("write the CPU profile: %v", err)
		}
	}
}

// checkRebuilt fails b unless rm holds what the bench's commands produced.
func checkRebuilt(b *testing.B, pool *pgxpool.Pool, orders, lines, skus int64, last uint64) {
	b.Helper()
	var gotOrders, gotLines, gotSKUs, placed int64
	err := pool.QueryRow(context.Background(), `SELECT
	(SELECT count(*) FROM rm.orders),
	(SELECT count(*) FROM rm.order_lines),
	(SELECT count(*) FROM rm.inventory),
	(SELECT COALESCE(sum(value), 0) FROM rm.order_buckets WHERE granularity = 'hour' AND metric = 'orders_placed')`).
		Scan(&gotOrders, &gotLines, &gotSKUs, &placed)
	if err != nil {
		b.Fatalf("count the read models: %v", err)
	}
	if gotOrders != orders || gotLines != lines || gotSKUs != skus || placed != orders {
		b.Fatalf("rebuilt %d orders, %d lines, %d SKUs, %d placed in buckets; want %d, %d, %d, %d",
			gotOrders, gotLines, gotSKUs, placed, orders, lines, skus, orders)
	}
	if cp := mustCheckpoint(b, pool); cp != last {
		b.Fatalf("checkpoint %d after the rebuild, want %d", cp, last)
	}
}

// lastSeqOf returns the stream sequence of the last event.
func lastSeqOf(tb testing.TB, store *eventstore.Store) uint64 {
	tb.Helper()
	return (&fixture{store: store}).lastEventSeq(tb)
}

// readAll returns every row of q, as pgx decodes them.
func readAll(tb testing.TB, pool *pgxpool.Pool, q string) [][]any {
	tb.Helper()
	rows, err := pool.Query(context.Background(), q)
	if err != nil {
		tb.Fatalf("%s: %v", q, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([]any, error) { return r.Values() })
	if err != nil {
		tb.Fatalf("%s: %v", q, err)
	}
	return out
}

// columnsOf returns the columns of each of rebuildTables in rm, in order.
func columnsOf(tb testing.TB, pool *pgxpool.Pool) map[string][]string {
	tb.Helper()
	out := map[string][]string{}
	for _, t := range rebuildTables {
		rows, err := pool.Query(context.Background(), `SELECT column_name FROM information_schema.columns
WHERE table_schema = 'rm' AND table_name = $1 ORDER BY ordinal_position`, t)
		if err != nil {
			tb.Fatalf("columns of rm.%s: %v", t, err)
		}
		cols, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			tb.Fatalf("columns of rm.%s: %v", t, err)
		}
		out[t] = cols
	}
	return out
}

package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderengine/engine/commands"
	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/projections"
)

// rebuildTables are the read models a rebuild produces, the ones the COPY
// baseline writes too (rm.checkpoints and rm.dead_letters aside).
var rebuildTables = []string{"orders", "order_lines", "inventory", "order_buckets"}

// fillers append the rebuild's events; the filling is not measured.
const fillers = 256

// rebuildFill is what the filling appended.
type rebuildFill struct {
	orders, lines, skus atomic.Int64
	events              atomic.Int64
}

// benchRebuild fills a fresh store with rebuild-events events through the
// command side, 256 goroutines, no worker running, one event per command:
// one in ten a SetOnHand on the goroutine's own SKU, the rest PlaceOrder
// with one or two lines. Then projections.Rebuild replays the whole stream
// into fresh tables and swaps them in (timed), and it fails unless the read
// models hold exactly what was placed. The baseline, same Postgres, same
// run: the rows the rebuild produced, read into memory (not timed), written
// with COPY (one per table) into empty tables created LIKE them INCLUDING
// ALL, the floor for materialising that state. Both are given in events/s:
// the COPY's as events-equivalent (the N events' result ÷ COPY time).
func (b *bencher) benchRebuild(ctx context.Context) error {
	n := int64(b.opts.rebuildEvents)
	cfg, log, app, closeAll, err := b.headless(ctx, "rebuild")
	if err != nil {
		return err
	}
	defer closeAll()
	store := app.Store
	pool, closeDB, err := b.host.OpenDatabase(ctx, cfg, b.stderr, log)
	if err != nil {
		return err
	}
	defer closeDB()

	var fill rebuildFill
	stop := progress(b.stderr, "rebuild: filling the store", "events", &fill.events, n, 0)
	err = fillStore(ctx, app, n, &fill)
	stop()
	if err != nil {
		return err
	}
	var applied atomic.Int64
	stop = progress(b.stderr, "rebuild: projections.Rebuild", "events", &applied, n, 0)
	start := time.Now()
	err = projections.Rebuild(ctx, store, pool, log, func(done, _ uint64) { applied.Store(int64(done)) })
	rebuildTime := time.Since(start)
	stop()
	if err != nil {
		return err
	}
	if applied.Load() != n {
		return errors.Newf("the rebuild applied %d events, want %d", applied.Load(), n)
	}
	if err := checkRebuilt(ctx, pool, store, &fill); err != nil {
		return err
	}

	copyTime, rows, err := copyBaseline(ctx, pool)
	if err != nil {
		return err
	}
	_, _ = fmt.Fprintf(b.stderr, "  rebuild of %d events: %v; COPY of %d rows: %v\n", n, rebuildTime.Round(time.Millisecond), rows, copyTime.Round(time.Millisecond))
	b.compare("rebuild", fmt.Sprintf("events/s over %d events", n), float64(n)/rebuildTime.Seconds(), "events/s",
		fmt.Sprintf("raw COPY of the %d resulting rows, events-equivalent/s", rows), float64(n)/copyTime.Seconds(), 0.3)
	return nil
}

// fillStore appends n events, as benchRebuild describes.
func fillStore(ctx context.Context, app *commands.App, n int64, f *rebuildFill) error {
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		first firstError
	)
	for g := range fillers {
		sku := fmt.Sprintf("SKU-%d", g)
		wg.Go(func() {
			setup := true // the first command of each goroutine sets its SKU up
			for {
				i := next.Add(1) - 1
				if i >= n {
					return
				}
				m := commands.Meta{CommandID: app.NewID()}
				var err error
				if setup || i%10 == 0 {
					_, err = app.SetOnHand(ctx, m, sku, commands.SetOnHand{OnHand: 1_000 + i})
					if err == nil && setup {
						f.skus.Add(1)
					}
					setup = false
				} else {
					ls := []domain.Line{{SKU: sku, Qty: 1 + i%3, UnitPriceCents: 1250}}
					if i%2 == 0 {
						ls = append(ls, domain.Line{SKU: fmt.Sprintf("SKU-%d", (g+1+int(i/2)%(fillers-1))%fillers), Qty: 2, UnitPriceCents: 999})
					}
					_, err = app.PlaceOrder(ctx, m, commands.PlaceOrder{CustomerID: fmt.Sprint("c", i%5000), Currency: "USD", Lines: ls})
					if err == nil {
						f.orders.Add(1)
						f.lines.Add(int64(len(ls)))
					}
				}
				if err != nil {
					first.set(err)
					return
				}
				f.events.Add(1)
			}
		})
	}
	wg.Wait()
	return first.err
}

// checkRebuilt fails unless the read models hold what the filling placed,
// with the checkpoint at the last event.
func checkRebuilt(ctx context.Context, pool *pgxpool.Pool, store *eventstore.Store, f *rebuildFill) error {
	var orders, lines, skus, placed int64
	err := pool.QueryRow(ctx, `SELECT
	(SELECT count(*) FROM rm.orders),
	(SELECT count(*) FROM rm.order_lines),
	(SELECT count(*) FROM rm.inventory),
	(SELECT COALESCE(sum(value), 0) FROM rm.order_buckets WHERE granularity = 'hour' AND metric = 'orders_placed')`).
		Scan(&orders, &lines, &skus, &placed)
	if err != nil {
		return errors.Wrap(err, "count the read models")
	}
	if orders != f.orders.Load() || lines != f.lines.Load() || skus != f.skus.Load() || placed != f.orders.Load() {
		return errors.Newf("rebuilt %d orders, %d lines, %d SKUs, %d placed in buckets; want %d, %d, %d, %d",
			orders, lines, skus, placed, f.orders.Load(), f.lines.Load(), f.skus.Load(), f.orders.Load())
	}
	last, err := store.LastEventSeqs(ctx)
	if err != nil {
		return err
	}
	cps, err := projections.Checkpoints(ctx, pool, projections.MainProjection)
	if err != nil {
		return err
	}
	for k, seq := range last {
		var cp uint64
		if k < len(cps) {
			cp = cps[k]
		}
		if cp != seq {
			return errors.Newf("checkpoint %d of shard %d after the rebuild, want %d", cp, k, seq)
		}
	}
	return nil
}

// copyBaseline reads every row the rebuild produced (not timed) and COPYs
// them into empty copies of their tables; it returns the COPY's time and
// rows, and fails unless every row arrived.
func copyBaseline(ctx context.Context, pool *pgxpool.Pool) (time.Duration, int64, error) {
	data := make(map[string][][]any, len(rebuildTables))
	cols := make(map[string][]string, len(rebuildTables))
	for _, t := range rebuildTables {
		rows, err := pool.Query(ctx, `SELECT * FROM rm.`+t)
		if err != nil {
			return 0, 0, errors.Wrapf(err, "read rm.%s", t)
		}
		data[t], err = pgx.CollectRows(rows, func(r pgx.CollectableRow) ([]any, error) { return r.Values() })
		if err != nil {
			return 0, 0, errors.Wrapf(err, "read rm.%s", t)
		}
		for _, f := range rows.FieldDescriptions() {
			cols[t] = append(cols[t], f.Name)
		}
		if _, err := pool.Exec(ctx, `DROP TABLE IF EXISTS copy_`+t+`; CREATE TABLE copy_`+t+` (LIKE rm.`+t+` INCLUDING ALL)`); err != nil {
			return 0, 0, errors.Wrapf(err, "create copy_%s", t)
		}
	}
	var copied int64
	start := time.Now()
	for _, t := range rebuildTables {
		c, err := pool.CopyFrom(ctx, pgx.Identifier{"copy_" + t}, cols[t], pgx.CopyFromRows(data[t]))
		if err != nil {
			return 0, 0, errors.Wrapf(err, "copy into copy_%s", t)
		}
		if c != int64(len(data[t])) {
			return 0, 0, errors.Newf("copied %d rows into copy_%s, want %d", c, t, len(data[t]))
		}
		copied += c
	}
	return time.Since(start), copied, nil
}

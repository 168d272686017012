package bench

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pgRun is one run of a Postgres stock baseline: attempts single-unit
// reservations on one row, each a transaction of its own (fsync and
// synchronous_commit on, as the engine's appends are durable).
type pgRun struct {
	granted int64
	retries int64
	elapsed time.Duration
	lat     latencies
}

func (r pgRun) perSecond(attempts int) float64 { return float64(attempts) / r.elapsed.Seconds() }

// pgStockPool connects to dbURL with up to conns connections (capped below
// the private server's max_connections) and creates the one-row stock
// table with stock units of sku.
func pgStockPool(ctx context.Context, dbURL string, conns int) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return nil, errors.Wrap(err, "parse the database URL")
	}
	cfg.MaxConns = int32(min(conns, 150))
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, errors.Wrap(err, "connect to Postgres")
	}
	_, err = pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS bench_stock (
	sku text PRIMARY KEY, qty bigint NOT NULL CHECK (qty >= 0), version bigint NOT NULL DEFAULT 0)`)
	if err != nil {
		pool.Close()
		return nil, errors.Wrap(err, "create bench_stock")
	}
	return pool, nil
}

func resetStock(ctx context.Context, pool *pgxpool.Pool, sku string, stock int) error {
	_, err := pool.Exec(ctx, `INSERT INTO bench_stock VALUES ($1, $2, 0)
ON CONFLICT (sku) DO UPDATE SET qty = $2, version = 0`, sku, stock)
	return errors.Wrap(err, "reset bench_stock")
}

// hotRowUpdate is the approach the usual tutorials recommend:
// UPDATE ... SET qty = qty - 1 WHERE sku = $1 AND qty > 0, one statement
// per reservation, from conc clients at once.
func hotRowUpdate(ctx context.Context, pool *pgxpool.Pool, sku string, stock, attempts, conc int, count *atomic.Int64) (pgRun, error) {
	return pgStockRun(ctx, pool, sku, stock, attempts, conc, count, func(ctx context.Context) (bool, int64, error) {
		tag, err := pool.Exec(ctx, `UPDATE bench_stock SET qty = qty - 1 WHERE sku = $1 AND qty > 0`, sku)
		return tag.RowsAffected() == 1, 0, errors.Wrap(err, "hot-row update")
	})
}

// optimisticUpdate is the optimistic-version variant: read the quantity
// and version, then update only if the version is unchanged, retrying when
// another client got there first.
func optimisticUpdate(ctx context.Context, pool *pgxpool.Pool, sku string, stock, attempts, conc int, count *atomic.Int64) (pgRun, error) {
	return pgStockRun(ctx, pool, sku, stock, attempts, conc, count, func(ctx context.Context) (bool, int64, error) {
		for retries := int64(0); ; retries++ {
			var qty, version int64
			if err := pool.QueryRow(ctx, `SELECT qty, version FROM bench_stock WHERE sku = $1`, sku).Scan(&qty, &version); err != nil {
				return false, retries, errors.Wrap(err, "read the stock row")
			}
			if qty == 0 {
				return false, retries, nil
			}
			tag, err := pool.Exec(ctx, `UPDATE bench_stock SET qty = qty - 1, version = version + 1
WHERE sku = $1 AND version = $2`, sku, version)
			if err != nil {
				return false, retries, errors.Wrap(err, "versioned update")
			}
			if tag.RowsAffected() == 1 {
				return true, retries, nil
			}
		}
	})
}

// pgStockRun makes attempts reservations with reserve from conc goroutines
// on a row reset to stock, and fails unless exactly min(stock, attempts)
// were granted and the row holds the rest.
func pgStockRun(ctx context.Context, pool *pgxpool.Pool, sku string, stock, attempts, conc int, count *atomic.Int64,
	reserve func(context.Context) (granted bool, retries int64, err error)) (pgRun, error) {
	if err := resetStock(ctx, pool, sku, stock); err != nil {
		return pgRun{}, err
	}
	run := pgRun{lat: newLatencies(conc)}
	var (
		next, granted, retries atomic.Int64
		wg                     sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	first := firstError{cancel: cancel}
	start := time.Now()
	for w := range conc {
		wg.Go(func() {
			for next.Add(1) <= int64(attempts) {
				t := time.Now()
				ok, r, err := reserve(ctx)
				if err != nil {
					first.set(err)
					return
				}
				run.lat[w] = append(run.lat[w], time.Since(t))
				if ok {
					granted.Add(1)
				}
				retries.Add(r)
				count.Add(1)
			}
		})
	}
	wg.Wait()
	run.elapsed, run.granted, run.retries = time.Since(start), granted.Load(), retries.Load()
	if first.err != nil {
		return run, first.err
	}
	var left int64
	if err := pool.QueryRow(ctx, `SELECT qty FROM bench_stock WHERE sku = $1`, sku).Scan(&left); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return run, errors.Wrap(err, "read the stock row")
	}
	if want := int64(min(stock, attempts)); run.granted != want || left != int64(stock)-want {
		return run, errors.Newf("Postgres baseline granted %d with %d left, want %d with %d left", run.granted, left, want, int64(stock)-want)
	}
	return run, nil
}

package projections

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/queries"
)

// DashboardReads serves the dashboard queries from rm.orders, rm.inventory
// and rm.order_buckets.
type DashboardReads struct{ Pool *pgxpool.Pool }

var _ queries.DashboardReader = DashboardReads{}

// Summary reads the summary's parts in one round trip; the revenue sums the
// hour buckets. It returns an error matching domain.ErrUnavailable when
// the database cannot be reached.
func (r DashboardReads) Summary(ctx context.Context, f queries.SummaryFilter) (queries.Summary, error) {
	s := queries.Summary{OrdersByStatus: map[domain.OrderStatus]int64{}, RevenueCents: map[string]int64{}}
	b := &pgx.Batch{}
	b.Queue(`SELECT status, count(*) FROM rm.orders GROUP BY status`).Query(func(rows pgx.Rows) error {
		var (
			status string
			n      int64
		)
		_, err := pgx.ForEachRow(rows, []any{&status, &n}, func() error {
			s.OrdersByStatus[domain.OrderStatus(status)] = n
			return nil
		})
		return err
	})
	b.Queue(`SELECT currency, sum(value)::bigint FROM rm.order_buckets
WHERE granularity = 'hour' AND metric = $1 GROUP BY currency`, queries.MetricRevenueCents).Query(func(rows pgx.Rows) error {
		var (
			currency string
			n        int64
		)
		_, err := pgx.ForEachRow(rows, []any{&currency, &n}, func() error {
			s.RevenueCents[currency] = n
			return nil
		})
		return err
	})
	b.Queue(`SELECT count(*) FROM rm.orders WHERE created_at >= $1`, f.Since).QueryRow(func(row pgx.Row) error {
		return row.Scan(&s.OrdersLastHour)
	})
	b.Queue(inventorySelect+` WHERE on_hand - reserved < $1 ORDER BY on_hand - reserved, sku LIMIT $2`,
		f.LowStockBelow, max(f.LowStockLimit, 1)).Query(func(rows pgx.Rows) error {
		var err error
		s.LowStock, err = pgx.CollectRows(rows, scanItem)
		return err
	})
	if err := r.Pool.SendBatch(ctx, b).Close(); err != nil {
		return queries.Summary{}, readErr(err, "read dashboard summary")
	}
	return s, nil
}

// Timeseries returns f's buckets from f.First to f.Last, zero-filled with
// generate_series. It returns an error matching domain.ErrUnavailable
// when the database cannot be reached.
func (r DashboardReads) Timeseries(ctx context.Context, f queries.TimeseriesFilter) ([]queries.Point, error) {
	step := 1
	if f.Bucket == queries.BucketHour {
		step = 60
	}
	// One statement per case, rather than "$6 = '' OR ...", so that the
	// join always uses the primary key in full.
	q := `SELECT s.t, COALESCE(sum(b.value), 0)::bigint
FROM generate_series($1::timestamptz, $2::timestamptz, make_interval(mins => $3)) AS s(t)
LEFT JOIN rm.order_buckets b ON b.granularity = $4 AND b.bucket = s.t AND b.metric = $5`
	args := []any{f.First, f.Last, step, f.Bucket, f.Metric}
	if f.Currency != "" {
		q += ` AND b.currency = $6`
		args = append(args, f.Currency)
	}
	q += ` GROUP BY s.t ORDER BY s.t`
	rows, err := r.Pool.Query(ctx, q, args...)
	if err != nil {
		return nil, readErr(err, "read time series %s", f.Metric)
	}
	points, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (queries.Point, error) {
		var p queries.Point
		err := row.Scan(&p.T, &p.V)
		p.T = p.T.UTC()
		return p, err
	})
	if err != nil {
		return nil, readErr(err, "read time series %s", f.Metric)
	}
	return points, nil
}

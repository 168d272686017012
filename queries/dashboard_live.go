package queries

import (
	"context"
	"encoding/json"
	"time"

	"github.com/cockroachdb/errors"
)

// LiveMinutes is how many minutes of orders per minute a live view holds.
const LiveMinutes = 30

// LiveView is one event of GET /v1/dashboard/stream: the summary of
// GET /v1/dashboard/summary (default filter) and the orders placed,
// confirmed and rejected per minute over the last LiveMinutes minutes, the
// current minute last.
type LiveView struct {
	Summary
	PerMinute map[string][]Point `json:"per_minute"`
}

// DashboardSource returns the source of the dashboard's Stream: the
// LiveView as JSON, read from r and p (p may be nil), with the reservation
// backlog when an option gives it (WithReservationBacklog). now is the clock.
func DashboardSource(r DashboardReader, p ProjectionStatus, now func() time.Time, opts ...Option) func(context.Context) ([]byte, error) {
	cfg := newConfig(opts)
	return func(ctx context.Context) ([]byte, error) {
		t := now()
		s, err := readSummary(ctx, r, p, SummaryFilter{Since: t.Add(-time.Hour), LowStockBelow: DefaultLowStockBelow, LowStockLimit: LowStockLimit})
		if err != nil {
			return nil, err
		}
		s.ReservationBacklog = cfg.reservationBacklog()
		v := LiveView{Summary: s, PerMinute: map[string][]Point{}}
		last := t.UTC().Truncate(time.Minute)
		for _, m := range []string{MetricOrdersPlaced, MetricOrdersConfirmed, MetricOrdersRejected} {
			f := TimeseriesFilter{Metric: m, Bucket: BucketMinute, First: last.Add(-(LiveMinutes - 1) * time.Minute), Last: last}
			points, err := r.Timeseries(ctx, f)
			if err != nil {
				return nil, err
			}
			if points == nil {
				points = []Point{}
			}
			v.PerMinute[m] = points
		}
		b, err := json.Marshal(v)
		return b, errors.Wrap(err, "encode live view")
	}
}

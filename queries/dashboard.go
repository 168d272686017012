package queries

import (
	"context"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/internal/httpx"
)

// The metrics of the dashboard's time series. The order counts have no
// currency; revenue_cents is kept per currency.
const (
	MetricOrdersPlaced    = "orders_placed"
	MetricOrdersConfirmed = "orders_confirmed"
	MetricOrdersRejected  = "orders_rejected"
	MetricRevenueCents    = "revenue_cents"
)

// The bucket sizes of the time series; buckets start on whole UTC minutes
// and hours.
const (
	BucketMinute = "minute"
	BucketHour   = "hour"
)

// Limits of the dashboard queries.
const (
	// MaxBuckets is the most points one time series may span.
	MaxBuckets = 10_000
	// DefaultLowStockBelow is the low_stock_below the summary uses when
	// none is given.
	DefaultLowStockBelow = 10
	// MaxLowStockBelow is the largest low_stock_below accepted.
	MaxLowStockBelow = 1_000_000_000_000
	// LowStockLimit is the most SKUs the summary lists as low on stock.
	LowStockLimit = 20
)

// metrics lists the metrics in the order the API documents them.
var metrics = []string{MetricOrdersPlaced, MetricOrdersConfirmed, MetricOrdersRejected, MetricRevenueCents}

// orderStatuses lists every status of domain, so the summary shows each,
// 0 when no order has it.
var orderStatuses = []domain.OrderStatus{
	domain.StatusPending, domain.StatusConfirmed, domain.StatusRejected, domain.StatusPaid,
	domain.StatusShipped, domain.StatusDelivered, domain.StatusCancelled, domain.StatusExpired,
}

// DashboardReader is what the dashboard queries need from the read model.
type DashboardReader interface {
	// Summary returns every field of the summary but Projections:
	// the orders per status (statuses without orders may be missing), the
	// revenue per currency, the orders created at or after f.Since and up
	// to f.LowStockLimit SKUs whose available stock is below
	// f.LowStockBelow, lowest available first.
	Summary(ctx context.Context, f SummaryFilter) (Summary, error)
	// Timeseries returns one point per bucket of f.Bucket from f.First to
	// f.Last (both bucket starts, inclusive) in time order, 0 for an empty
	// bucket. revenue_cents comes with f.Currency (the handler requires it:
	// a sum over currencies means nothing); without it, it would be that sum.
	Timeseries(ctx context.Context, f TimeseriesFilter) ([]Point, error)
}

// SummaryFilter says what the summary reads.
type SummaryFilter struct {
	Since         time.Time
	LowStockBelow int64
	LowStockLimit int
}

// TimeseriesFilter selects a time series.
type TimeseriesFilter struct {
	Metric   string
	Bucket   string
	First    time.Time
	Last     time.Time
	Currency string
}

// ProjectionStatus tells where the projections stand.
type ProjectionStatus interface {
	// Projections returns every projection with its checkpoint and lag.
	Projections(ctx context.Context) ([]ProjectionInfo, error)
}

// ProjectionInfo is one projection in the summary.
type ProjectionInfo struct {
	Name       string `json:"name"`
	Checkpoint uint64 `json:"checkpoint"`
	// Lag is how many events of the stream the projection has not
	// applied yet.
	Lag uint64 `json:"lag"`
	// State is the projection's state, as in GET /v1/admin/projections;
	// DeadLetters counts its unresolved dead letters. Viewers see both
	// here: the dashboard shows them.
	State       string `json:"state,omitempty"`
	DeadLetters int    `json:"dead_letters"`
}

// Summary is the answer of GET /v1/dashboard/summary.
type Summary struct {
	OrdersByStatus map[domain.OrderStatus]int64 `json:"orders_by_status"`
	RevenueCents   map[string]int64             `json:"revenue_cents"`
	OrdersLastHour int64                        `json:"orders_last_hour"`
	LowStock       []InventoryView              `json:"low_stock"`
	Projections    []ProjectionInfo             `json:"projections"`
	// ReservationBacklog is there when the engine reports it
	// (WithReservationBacklog).
	ReservationBacklog *ReservationBacklog `json:"reservation_backlog,omitempty"`
}

// ReservationBacklog tells how far behind the reservation processors are.
type ReservationBacklog struct {
	// Partitions holds, for each partition in order, the reservation
	// requests stored but not yet decided.
	Partitions []uint64 `json:"partitions"`
	// PeakLastMinute holds, for each partition in order, the highest
	// backlog sampled over the last minute: one that came and went between
	// two updates of a dashboard still shows.
	PeakLastMinute []uint64 `json:"peak_last_minute"`
	// Limit is the backlog of one partition past which new orders on its
	// SKUs are refused with 503; 0 means no limit.
	Limit uint64 `json:"limit"`
}

// BacklogReader reports the reservation backlog. The dashboard reads it
// for every summary and stream tick, so it must be cheap: a copy of the
// last sample, not a call to the event store.
type BacklogReader interface {
	ReservationBacklog() ReservationBacklog
}

// Point is one bucket of a time series: its start and its value.
type Point struct {
	T time.Time `json:"t"`
	V int64     `json:"v"`
}

// Timeseries is the answer of GET /v1/dashboard/timeseries.
type Timeseries struct {
	Metric   string  `json:"metric"`
	Bucket   string  `json:"bucket"`
	Currency string  `json:"currency,omitempty"`
	Points   []Point `json:"points"`
}

// HandleDashboardSummary answers GET /v1/dashboard/summary?low_stock_below=
// with the orders per status (every status, 0 when none), the revenue per
// currency, the orders created in the last hour, the SKUs low on stock
// (available below low_stock_below, default 10; at most 20, lowest first),
// the projections as p reports them (none when p is nil) and, with
// WithReservationBacklog, the reservation backlog per partition. A bad
// parameter is a 422.
func HandleDashboardSummary(r DashboardReader, p ProjectionStatus, c CheckpointReader, log *slog.Logger, opts ...Option) http.HandlerFunc {
	cfg := newConfig(opts)
	log = orDiscard(log)
	return func(w http.ResponseWriter, req *http.Request) {
		ps := newParams(req, "low_stock_below")
		f := SummaryFilter{
			Since:         time.Now().Add(-time.Hour),
			LowStockBelow: ps.intIn("low_stock_below", DefaultLowStockBelow, 0, MaxLowStockBelow),
			LowStockLimit: LowStockLimit,
		}
		err := ps.err()
		if err == nil {
			err = cfg.consistent(req, c, ps)
		}
		if err != nil {
			fail(w, req, log, err)
			return
		}
		s, err := readSummary(req.Context(), r, p, f)
		if err != nil {
			fail(w, req, log, err)
			return
		}
		s.ReservationBacklog = cfg.reservationBacklog()
		w.Header().Set("Cache-Control", "no-store")
		httpx.WriteJSON(w, http.StatusOK, s)
	}
}

// readSummary reads the summary from r and p (p may be nil) and fills in
// what the reader may leave out: every status, empty lists and maps.
func readSummary(ctx context.Context, r DashboardReader, p ProjectionStatus, f SummaryFilter) (Summary, error) {
	s, err := r.Summary(ctx, f)
	if err != nil {
		return Summary{}, err
	}
	if p != nil {
		if s.Projections, err = p.Projections(ctx); err != nil {
			return Summary{}, err
		}
	}
	byStatus := make(map[domain.OrderStatus]int64, len(orderStatuses))
	for _, st := range orderStatuses {
		byStatus[st] = 0
	}
	for st, n := range s.OrdersByStatus {
		byStatus[st] = n
	}
	s.OrdersByStatus = byStatus
	if s.RevenueCents == nil {
		s.RevenueCents = map[string]int64{}
	}
	if s.LowStock == nil {
		s.LowStock = []InventoryView{}
	}
	if s.Projections == nil {
		s.Projections = []ProjectionInfo{}
	}
	return s, nil
}

// reservationBacklog is the backlog to report, nil without a reader.
func (c config) reservationBacklog() *ReservationBacklog {
	if c.backlog == nil {
		return nil
	}
	b := c.backlog.ReservationBacklog()
	if b.Partitions == nil {
		b.Partitions = []uint64{}
	}
	if b.PeakLastMinute == nil {
		b.PeakLastMinute = []uint64{}
	}
	return &b
}

var currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)

// HandleDashboardTimeseries answers
// GET /v1/dashboard/timeseries?metric=&bucket=&from=&to=&currency= with one
// point per bucket, zero-filled, in time order. metric is required; bucket
// is minute (default) or hour; from and to are RFC 3339 times, from before
// to, and the series holds the buckets that start before to, from the one
// holding from. Without from and to it is the last 60 minutes or 48 hours,
// the current bucket last; with only one of them it is that many buckets
// from or up to it. currency is required for revenue_cents, and only
// there: EUR and USD cents added together would be a figure in no currency.
// At most 10,000 buckets. Bad parameters are a 422 naming each.
func HandleDashboardTimeseries(r DashboardReader, c CheckpointReader, log *slog.Logger, opts ...Option) http.HandlerFunc {
	cfg := newConfig(opts)
	log = orDiscard(log)
	return func(w http.ResponseWriter, req *http.Request) {
		ps := newParams(req, "metric", "bucket", "from", "to", "currency")
		f, err := timeseriesFilter(ps, time.Now())
		if err == nil {
			err = cfg.consistent(req, c, ps)
		}
		if err != nil {
			fail(w, req, log, err)
			return
		}
		points, err := r.Timeseries(req.Context(), f)
		if err != nil {
			fail(w, req, log, err)
			return
		}
		if points == nil {
			points = []Point{}
		}
		for i := range points {
			points[i].T = points[i].T.UTC()
		}
		w.Header().Set("Cache-Control", "no-store")
		httpx.WriteJSON(w, http.StatusOK, Timeseries{Metric: f.Metric, Bucket: f.Bucket, Currency: f.Currency, Points: points})
	}
}

// timeseriesFilter reads and checks the time series parameters; now is the
// time the defaults count back from.
func timeseriesFilter(ps *params, now time.Time) (TimeseriesFilter, error) {
	f := TimeseriesFilter{Metric: ps.str("metric"), Bucket: ps.str("bucket"), Currency: ps.str("currency")}
	if !slices.Contains(metrics, f.Metric) {
		ps.set("metric", "must be one of "+strings.Join(metrics, ", "))
	}
	step, n := time.Minute, 60
	switch f.Bucket {
	case "", BucketMinute:
		f.Bucket = BucketMinute
	case BucketHour:
		step, n = time.Hour, 48
	default:
		ps.set("bucket", "must be minute or hour")
	}
	switch {
	case f.Currency == "" && f.Metric == MetricRevenueCents:
		ps.set("currency", "is required for metric revenue_cents: revenue is kept per currency, never summed across them")
	case f.Currency != "":
		if !currencyRE.MatchString(f.Currency) {
			ps.set("currency", "must be an ISO 4217 code of three upper-case letters")
		} else if f.Metric != MetricRevenueCents {
			ps.set("currency", "applies only to metric revenue_cents")
		}
	}
	from, hasFrom := timeParam(ps, "from")
	to, hasTo := timeParam(ps, "to")
	if err := ps.err(); err != nil {
		return f, err
	}
	span := time.Duration(n) * step
	switch {
	case !hasFrom && !hasTo:
		to = now.UTC().Truncate(step).Add(step)
		from = to.Add(-span)
	case !hasTo:
		to = from.Truncate(step).Add(span)
	case !hasFrom:
		from = to.Add(-time.Nanosecond).Truncate(step).Add(step - span)
	}
	if !from.Before(to) {
		ps.set("from", "must be before to")
		return f, ps.err()
	}
	f.First = from.Truncate(step)
	f.Last = to.Add(-time.Nanosecond).Truncate(step)
	if f.Last.Year() > 9999 {
		// Past the year 9999 a time has no RFC 3339 form.
		ps.set("from", "the series must end by the year 9999")
		return f, ps.err()
	}
	if f.Last.Sub(f.First)/step >= MaxBuckets {
		ps.set("to", "the series may span at most 10000 buckets")
		return f, ps.err()
	}
	return f, nil
}

// timeParam returns the parameter as an RFC 3339 time in UTC, from the year
// 1970 to 9999; ok is false when it is absent or bad (then ps has a message).
func timeParam(ps *params, name string) (t time.Time, ok bool) {
	s := ps.str(name)
	if s == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil || t.Year() < 1970 || t.UTC().Year() > 9999 {
		ps.set(name, "must be an RFC 3339 time, such as 2026-01-02T15:04:05Z, from 1970 on")
		return time.Time{}, false
	}
	return t.UTC(), true
}

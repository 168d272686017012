package queries_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/projections"
	"github.com/orderengine/engine/queries"
)

// fixedStatus is an in-process ProjectionStatus with fixed answers.
type fixedStatus struct {
	infos []queries.ProjectionInfo
	err   error
}

func (s fixedStatus) Projections(context.Context) ([]queries.ProjectionInfo, error) {
	return s.infos, s.err
}

// dashServer mounts the dashboard queries on Postgres.
func dashServer(t *testing.T, pool *pgxpool.Pool, status queries.ProjectionStatus, opts ...queries.Option) http.Handler {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reads := projections.DashboardReads{Pool: pool}
	cp := projections.CheckpointReads{Pool: pool, Projection: "main"}
	r := chi.NewRouter()
	r.Get("/v1/dashboard/summary", queries.HandleDashboardSummary(reads, status, cp, log, opts...))
	r.Get("/v1/dashboard/timeseries", queries.HandleDashboardTimeseries(reads, cp, log, opts...))
	return r
}

// insertBucket adds value to an rm.order_buckets row.
func insertBucket(t *testing.T, pool *pgxpool.Pool, gran string, bucket time.Time, metric, currency string, value int64) {
	t.Helper()
	_, err := pool.Exec(context.Background(), `INSERT INTO rm.order_buckets (granularity, bucket, metric, currency, value)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (granularity, bucket, metric, currency)
		DO UPDATE SET value = rm.order_buckets.value + EXCLUDED.value`, gran, bucket, metric, currency, value)
	if err != nil {
		t.Fatal(err)
	}
}

var lags = []queries.ProjectionInfo{{Name: "main", Checkpoint: 42, Lag: 3}}

func TestDashboardSummary(t *testing.T) {
	t.Parallel()
	pool := newDB(t)
	h := dashServer(t, pool, fixedStatus{infos: lags})

	t.Run("empty read models show every status at 0", func(t *testing.T) {
		s := decode[queries.Summary](t, get(t, h, "/v1/dashboard/summary"), http.StatusOK)
		if len(s.OrdersByStatus) != 8 {
			t.Errorf("orders_by_status %v, want the 8 statuses", s.OrdersByStatus)
		}
		for st, n := range s.OrdersByStatus {
			if n != 0 {
				t.Errorf("%s: %d orders", st, n)
			}
		}
		if s.RevenueCents == nil || len(s.RevenueCents) != 0 || s.LowStock == nil || len(s.LowStock) != 0 ||
			s.OrdersLastHour != 0 || !slices.Equal(s.Projections, lags) {
			t.Errorf("got %+v", s)
		}
	})

	now := time.Now().UTC()
	for i, st := range []string{"pending", "pending", "confirmed", "paid", "rejected", "cancelled"} {
		created := now.Add(-30 * time.Minute)
		if i%2 == 1 {
			created = now.Add(-2 * time.Hour)
		}
		insertOrders(t, pool, order{id: newID(t), status: st, created: created})
	}
	// Revenue sums the hour buckets only; the minute ones hold the same.
	for _, b := range []struct {
		at       time.Time
		currency string
		v        int64
	}{
		{base, "USD", 3000}, {base.Add(time.Hour), "USD", -1000}, {base.Add(5 * time.Hour), "USD", 250}, {base, "EUR", 500},
	} {
		insertBucket(t, pool, "hour", b.at.Truncate(time.Hour), "revenue_cents", b.currency, b.v)
		insertBucket(t, pool, "minute", b.at.Truncate(time.Minute), "revenue_cents", b.currency, b.v)
	}
	insertBucket(t, pool, "hour", base.Truncate(time.Hour), "orders_placed", "", 6)
	// low-00 .. low-24 have available 0 .. 24, inserted backwards.
	for i := 24; i >= 0; i-- {
		insertItems(t, pool, queries.InventoryView{SKU: fmt.Sprintf("low-%02d", i), OnHand: 30, Reserved: 30 - int64(i), Version: 1})
	}
	insertItems(t, pool, queries.InventoryView{SKU: "also-03", OnHand: 3, Version: 1})

	skus := func(items []queries.InventoryView) []string {
		var out []string
		for _, it := range items {
			out = append(out, it.SKU)
		}
		return out
	}
	t.Run("summary", func(t *testing.T) {
		s := decode[queries.Summary](t, get(t, h, "/v1/dashboard/summary"), http.StatusOK)
		want := map[domain.OrderStatus]int64{"pending": 2, "confirmed": 1, "paid": 1, "rejected": 1, "cancelled": 1,
			"shipped": 0, "delivered": 0, "expired": 0}
		if fmt.Sprint(s.OrdersByStatus) != fmt.Sprint(want) {
			t.Errorf("orders_by_status %v, want %v", s.OrdersByStatus, want)
		}
		if fmt.Sprint(s.RevenueCents) != fmt.Sprint(map[string]int64{"EUR": 500, "USD": 2250}) {
			t.Errorf("revenue_cents %v", s.RevenueCents)
		}
		if s.OrdersLastHour != 3 {
			t.Errorf("orders_last_hour %d, want 3", s.OrdersLastHour)
		}
		wantLow := []string{"low-00", "low-01", "low-02", "also-03", "low-03", "low-04", "low-05", "low-06", "low-07", "low-08", "low-09"}
		if got := skus(s.LowStock); !slices.Equal(got, wantLow) {
			t.Errorf("low_stock %v, want %v", got, wantLow)
		}
		if s.LowStock[3].Available != 3 || s.LowStock[3].OnHand != 3 {
			t.Errorf("low_stock[3] %+v", s.LowStock[3])
		}
		if !slices.Equal(s.Projections, lags) {
			t.Errorf("projections %v", s.Projections)
		}
	})
	t.Run("low_stock_below", func(t *testing.T) {
		for _, tc := range []struct {
			below string
			want  int
			first string
		}{
			{"0", 0, ""}, {"1", 1, "low-00"}, {"4", 5, "low-00"}, {"1000000000000", 20, "low-00"}, {"", 11, "low-00"},
		} {
			s := decode[queries.Summary](t, get(t, h, "/v1/dashboard/summary?low_stock_below="+tc.below), http.StatusOK)
			if len(s.LowStock) != tc.want || (tc.want > 0 && s.LowStock[0].SKU != tc.first) {
				t.Errorf("low_stock_below=%s: %v", tc.below, skus(s.LowStock))
			}
		}
	})
	for _, tc := range []struct{ query, field string }{
		{"low_stock_below=-1", "low_stock_below"},
		{"low_stock_below=x", "low_stock_below"},
		{"low_stock_below=1e3", "low_stock_below"},
		{"low_stock_below=1000000000001", "low_stock_below"},
		{"low_stock_below=1&low_stock_below=2", "low_stock_below"},
		{"limit=3", "limit"},
		{"consistent_with=x", "consistent_with"},
	} {
		t.Run("422 for "+tc.query, func(t *testing.T) {
			checkProblem(t, get(t, h, "/v1/dashboard/summary?"+tc.query), http.StatusUnprocessableEntity, "validation_failed", tc.field)
		})
	}
	t.Run("projections unavailable is 503", func(t *testing.T) {
		h := dashServer(t, pool, fixedStatus{err: errors.Mark(errors.New("runner gone"), domain.ErrUnavailable)})
		checkProblem(t, get(t, h, "/v1/dashboard/summary"), http.StatusServiceUnavailable, "unavailable", "")
	})
	t.Run("no projection status is an empty list", func(t *testing.T) {
		s := decode[queries.Summary](t, get(t, dashServer(t, pool, nil), "/v1/dashboard/summary"), http.StatusOK)
		if s.Projections == nil || len(s.Projections) != 0 {
			t.Errorf("projections %v", s.Projections)
		}
	})
	t.Run("consistency token", func(t *testing.T) {
		h := dashServer(t, pool, nil, queries.WithConsistencyTimeout(100*time.Millisecond), queries.WithPollInterval(5*time.Millisecond))
		setCheckpoint(t, pool, 10)
		checkProblem(t, get(t, h, "/v1/dashboard/summary", "Consistency-Token", "11"), http.StatusServiceUnavailable, "consistency_timeout", "")
		checkProblem(t, get(t, h, "/v1/dashboard/timeseries?metric=orders_placed&consistent_with=11"), http.StatusServiceUnavailable, "consistency_timeout", "")
		decode[queries.Summary](t, get(t, h, "/v1/dashboard/summary", "Consistency-Token", "10"), http.StatusOK)
		decode[queries.Timeseries](t, get(t, h, "/v1/dashboard/timeseries?metric=orders_placed&consistent_with=10"), http.StatusOK)
	})
}

func TestDashboardTimeseries(t *testing.T) {
	t.Parallel()
	pool := newDB(t)
	h := dashServer(t, pool, nil)
	m0 := base.Truncate(time.Minute) // 03:04
	h0 := base.Truncate(time.Hour)   // 03:00
	insertBucket(t, pool, "minute", m0, "orders_placed", "", 2)
	insertBucket(t, pool, "minute", m0.Add(2*time.Minute), "orders_placed", "", 5)
	insertBucket(t, pool, "minute", m0.Add(2*time.Minute), "orders_confirmed", "", 4)
	insertBucket(t, pool, "hour", h0, "orders_placed", "", 7)
	insertBucket(t, pool, "minute", m0.Add(time.Minute), "revenue_cents", "USD", 3000)
	insertBucket(t, pool, "minute", m0.Add(time.Minute), "revenue_cents", "EUR", 500)
	insertBucket(t, pool, "minute", m0.Add(3*time.Minute), "revenue_cents", "USD", -1000)
	insertBucket(t, pool, "hour", h0, "revenue_cents", "USD", 2000)
	insertBucket(t, pool, "hour", h0, "revenue_cents", "EUR", 500)
	now := time.Now().UTC()
	insertBucket(t, pool, "minute", now.Truncate(time.Minute), "orders_rejected", "", 9)
	insertBucket(t, pool, "hour", now.Truncate(time.Hour), "orders_rejected", "", 9)
	insertBucket(t, pool, "hour", now.Truncate(time.Hour).Add(-47*time.Hour), "orders_rejected", "", 1)

	rfc := func(t time.Time) string { return t.Format(time.RFC3339) }
	values := func(ts queries.Timeseries) []int64 {
		var out []int64
		for _, p := range ts.Points {
			out = append(out, p.V)
		}
		return out
	}
	for _, tc := range []struct {
		name, query  string
		bucket       string
		first        time.Time
		want         []int64
		wantCurrency string
	}{
		{"zero-filled minutes", "metric=orders_placed&from=" + rfc(m0.Add(-time.Minute)) + "&to=" + rfc(m0.Add(4*time.Minute)),
			"minute", m0.Add(-time.Minute), []int64{0, 2, 0, 5, 0}, ""},
		{"from inside a bucket includes it, to is exclusive", "metric=orders_placed&from=" + rfc(base) + "&to=" + rfc(m0.Add(2*time.Minute)),
			"minute", m0, []int64{2, 0}, ""},
		{"to inside a bucket includes it", "metric=orders_placed&from=" + rfc(m0) + "&to=" + rfc(m0.Add(2*time.Minute+time.Second)),
			"minute", m0, []int64{2, 0, 5}, ""},
		{"revenue of one currency", "metric=revenue_cents&currency=USD&from=" + rfc(m0) + "&to=" + rfc(m0.Add(4*time.Minute)),
			"minute", m0, []int64{0, 3000, 0, -1000}, "USD"},
		{"revenue of a currency without sales", "metric=revenue_cents&currency=JPY&from=" + rfc(m0) + "&to=" + rfc(m0.Add(2*time.Minute)),
			"minute", m0, []int64{0, 0}, "JPY"},
		{"hours", "metric=revenue_cents&currency=EUR&bucket=hour&from=" + rfc(h0.Add(-time.Hour)) + "&to=" + rfc(h0.Add(time.Hour)),
			"hour", h0.Add(-time.Hour), []int64{0, 500}, "EUR"},
		{"other metric, same buckets", "metric=orders_confirmed&from=" + rfc(m0) + "&to=" + rfc(m0.Add(3*time.Minute)),
			"minute", m0, []int64{0, 0, 4}, ""},
		{"only from: 60 minutes from it", "metric=orders_placed&from=" + rfc(m0),
			"minute", m0, append([]int64{2, 0, 5}, make([]int64, 57)...), ""},
		{"only to: 48 hours up to it", "metric=orders_placed&bucket=hour&to=" + rfc(h0.Add(time.Hour)),
			"hour", h0.Add(-47 * time.Hour), append(make([]int64, 47), 7), ""},
		{"only to, inside a bucket: 48 hours, its bucket last", "metric=orders_placed&bucket=hour&to=" + rfc(h0.Add(90*time.Minute)),
			"hour", h0.Add(-46 * time.Hour), append(make([]int64, 46), 7, 0), ""},
		{"a non-UTC offset", "metric=orders_placed&from=2026-01-02T05:03:00%2B02:00&to=2026-01-02T05:05:00%2B02:00",
			"minute", m0.Add(-time.Minute), []int64{0, 2}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := decode[queries.Timeseries](t, get(t, h, "/v1/dashboard/timeseries?"+tc.query), http.StatusOK)
			if ts.Bucket != tc.bucket || ts.Currency != tc.wantCurrency || !slices.Equal(values(ts), tc.want) {
				t.Fatalf("got %s %s %v, want %s %s %v", ts.Bucket, ts.Currency, values(ts), tc.bucket, tc.wantCurrency, tc.want)
			}
			step := time.Minute
			if tc.bucket == "hour" {
				step = time.Hour
			}
			for i, p := range ts.Points {
				if want := tc.first.Add(time.Duration(i) * step); !p.T.Equal(want) || p.T.Location() != time.UTC {
					t.Fatalf("point %d at %v, want %v", i, p.T, want)
				}
			}
		})
	}
	t.Run("points are RFC 3339 in UTC", func(t *testing.T) {
		rec := get(t, h, "/v1/dashboard/timeseries?metric=orders_placed&from="+rfc(m0)+"&to="+rfc(m0.Add(time.Minute)))
		want := fmt.Sprintf(`{"metric":"orders_placed","bucket":"minute","points":[{"t":"%s","v":2}]}`, rfc(m0))
		if got := rec.Body.String(); got != want+"\n" && got != want {
			t.Errorf("body %s, want %s", got, want)
		}
	})
	t.Run("defaults: the last 60 minutes, the current one last", func(t *testing.T) {
		ts := decode[queries.Timeseries](t, get(t, h, "/v1/dashboard/timeseries?metric=orders_rejected"), http.StatusOK)
		if len(ts.Points) != 60 || ts.Bucket != "minute" || ts.Metric != "orders_rejected" {
			t.Fatalf("%s %s: %d points", ts.Metric, ts.Bucket, len(ts.Points))
		}
		// The minute may turn during the request.
		if last := ts.Points[59]; last.V != 9 && !last.T.After(now) {
			t.Errorf("last point %+v, want 9 at %v", last, now.Truncate(time.Minute))
		}
	})
	t.Run("defaults: the last 48 hours", func(t *testing.T) {
		ts := decode[queries.Timeseries](t, get(t, h, "/v1/dashboard/timeseries?metric=orders_rejected&bucket=hour"), http.StatusOK)
		if len(ts.Points) != 48 || ts.Bucket != "hour" {
			t.Fatalf("%s: %d points", ts.Bucket, len(ts.Points))
		}
		if ts.Points[0].V+ts.Points[47].V != 10 && !ts.Points[47].T.After(now) {
			t.Errorf("points %v", values(ts))
		}
	})
	t.Run("10000 buckets is the most", func(t *testing.T) {
		ts := decode[queries.Timeseries](t, get(t, h, "/v1/dashboard/timeseries?metric=orders_placed&from="+rfc(m0)+
			"&to="+rfc(m0.Add(10_000*time.Minute))), http.StatusOK)
		if len(ts.Points) != 10_000 || ts.Points[0].V != 2 {
			t.Errorf("%d points", len(ts.Points))
		}
	})

	for _, tc := range []struct{ query, field string }{
		{"", "metric"},
		{"metric=orders", "metric"},
		{"metric=ORDERS_PLACED", "metric"},
		{"metric=orders_placed&bucket=day", "bucket"},
		{"metric=orders_placed&bucket=Minute", "bucket"},
		{"metric=orders_placed&from=yesterday", "from"},
		{"metric=orders_placed&from=2026-01-02", "from"},
		{"metric=orders_placed&to=2026-01-02T03:04:05", "to"},
		{"metric=orders_placed&from=1969-12-31T23:59:59Z", "from"},
		{"metric=orders_placed&from=" + rfc(m0) + "&to=" + rfc(m0), "from"},
		{"metric=orders_placed&from=" + rfc(m0) + "&to=" + rfc(m0.Add(-time.Hour)), "from"},
		{"metric=orders_placed&from=" + rfc(m0) + "&to=" + rfc(m0.Add(10_000*time.Minute+time.Second)), "to"},
		{"metric=orders_placed&bucket=hour&from=2000-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", "to"},
		{"metric=orders_placed&bucket=hour&from=9999-12-31T23:30:00Z", "from"},
		{"metric=revenue_cents", "currency"},
		{"metric=revenue_cents&bucket=hour&from=" + rfc(m0), "currency"},
		{"metric=revenue_cents&currency=usd", "currency"},
		{"metric=revenue_cents&currency=USDX", "currency"},
		{"metric=orders_placed&currency=USD", "currency"},
		{"metric=orders_placed&metric=orders_rejected", "metric"},
		{"metric=orders_placed&limit=3", "limit"},
	} {
		t.Run("422 for "+tc.query, func(t *testing.T) {
			checkProblem(t, get(t, h, "/v1/dashboard/timeseries?"+tc.query), http.StatusUnprocessableEntity, "validation_failed", tc.field)
		})
	}
}

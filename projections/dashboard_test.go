package projections

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderengine/engine/domain"
)

// dumpBuckets returns every rm.order_buckets row as text, in key order.
func dumpBuckets(t testing.TB, pool *pgxpool.Pool) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT concat_ws(' ', granularity,
	to_char(bucket AT TIME ZONE 'UTC', 'HH24:MI'), metric, NULLIF(currency, ''), value)
FROM rm.order_buckets ORDER BY granularity, bucket, metric, currency`)
	if err != nil {
		t.Fatalf("dump buckets: %v", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatalf("dump buckets: %v", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("dump buckets: %v", err)
	}
	return out
}

func TestApplyEventsCountsBuckets(t *testing.T) {
	t.Parallel()
	h := newHistory(t)
	t0 := h.at // 03:04:05 UTC
	o1, o2, o3, o4 := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	placed := func(id, currency string, total int64, at time.Time) domain.OrderPlaced {
		return domain.OrderPlaced{OrderID: id, CustomerID: "c", Currency: currency, TotalCents: total, At: at,
			Lines: []domain.Line{{SKU: "A", Qty: 1, UnitPriceCents: total}}}
	}
	h.order(o1, placed(o1, "USD", 3000, t0))
	h.order(o2, placed(o2, "EUR", 500, t0))
	h.order(o4, placed(o4, "USD", 700, t0))
	h.order(o2, domain.OrderRejected{Reason: "short", At: t0.Add(10 * time.Second)})
	h.order(o1, domain.LineReserved{SKU: "A", At: t0.Add(20 * time.Second)})
	h.order(o1, domain.OrderConfirmed{At: t0.Add(30 * time.Second)})
	h.order(o4, domain.OrderCancelled{PreviousStatus: domain.StatusPending, At: t0.Add(40 * time.Second)})
	h.order(o1, domain.OrderPaid{AmountCents: 3000, PaymentRef: "p", At: t0.Add(2 * time.Minute)})
	h.order(o3, placed(o3, "USD", 1500, t0.Add(61*time.Minute)))
	h.order(o3, domain.OrderConfirmed{At: t0.Add(61 * time.Minute)})
	h.order(o3, domain.OrderPaid{AmountCents: 1500, PaymentRef: "q", At: t0.Add(62 * time.Minute)})
	h.order(o1, domain.OrderCancelled{PreviousStatus: domain.StatusPaid, RefundDueCents: 3000, At: t0.Add(time.Hour)})

	want := []string{
		"hour 03:00 orders_confirmed 1",
		"hour 03:00 orders_placed 3",
		"hour 03:00 orders_rejected 1",
		"hour 03:00 revenue_cents USD 3000",
		"hour 04:00 orders_confirmed 1",
		"hour 04:00 orders_placed 1",
		"hour 04:00 revenue_cents USD -1500",
		"minute 03:04 orders_confirmed 1",
		"minute 03:04 orders_placed 3",
		"minute 03:04 orders_rejected 1",
		"minute 03:06 revenue_cents USD 3000",
		"minute 04:04 revenue_cents USD -3000",
		"minute 04:05 orders_confirmed 1",
		"minute 04:05 orders_placed 1",
		"minute 04:06 revenue_cents USD 1500",
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		batch int
	}{
		{"one batch", len(h.events)},
		{"batches of 2", 2},
		{"batches of 5", 5},
		{"one event per batch", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pool := newPool(t)
			r := NewRunner(nil, pool, quietLog())
			apply := func(t *testing.T, events []streamEvent, batch int) {
				t.Helper()
				for i := 0; i < len(events); i += batch {
					if err := r.commitRaw(ctx, events[i:min(i+batch, len(events))]); err != nil {
						t.Fatalf("commit: %v", err)
					}
				}
			}
			apply(t, h.events, tc.batch)
			sameDump(t, want, dumpBuckets(t, pool))

			t.Run("events at or below the checkpoint are dropped", func(t *testing.T) {
				apply(t, h.events, tc.batch)
				apply(t, h.events[3:7], 2)
				sameDump(t, want, dumpBuckets(t, pool))
			})
			for _, from := range []uint64{0, 3, h.seq - 1} {
				t.Run(fmt.Sprintf("replay after the checkpoint moved back to %d adds nothing", from), func(t *testing.T) {
					if _, err := pool.Exec(ctx, `UPDATE rm.checkpoints SET last_seq = $1`, int64(from)); err != nil {
						t.Fatal(err)
					}
					apply(t, h.events[from:], 3)
					sameDump(t, want, dumpBuckets(t, pool))
					if cp := mustCheckpoint(t, pool); !eqSeqs(cp, []uint64{h.seq}) {
						t.Errorf("checkpoint %d, want %d", cp, h.seq)
					}
				})
			}
			// Without the order rows only the checkpoint keeps the events
			// from counting again.
			t.Run("the checkpoint alone keeps applied events from counting twice", func(t *testing.T) {
				if _, err := pool.Exec(ctx, `TRUNCATE rm.orders CASCADE`); err != nil {
					t.Fatal(err)
				}
				apply(t, h.events, tc.batch)
				sameDump(t, want, dumpBuckets(t, pool))
			})
		})
	}
}

// TestBucketsOnTheRunnerPath runs the real projection over the events of
// real commands and checks that the buckets agree with the order rows, and
// that replaying from a checkpoint moved back leaves them alone.
func TestBucketsOnTheRunnerPath(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	pool := newPool(t)
	scenario(t, f)
	last := f.lastEventSeq(t)
	runUntil(t, NewRunner(f.store, pool, quietLog()), last)
	ctx := context.Background()

	for _, gran := range []string{"minute", "hour"} {
		var placed, confirmed, rejected, revenue int64
		err := pool.QueryRow(ctx, `SELECT
	COALESCE(sum(value) FILTER (WHERE metric = 'orders_placed'), 0)::bigint,
	COALESCE(sum(value) FILTER (WHERE metric = 'orders_confirmed'), 0)::bigint,
	COALESCE(sum(value) FILTER (WHERE metric = 'orders_rejected'), 0)::bigint,
	COALESCE(sum(value) FILTER (WHERE metric = 'revenue_cents' AND currency = 'USD'), 0)::bigint
FROM rm.order_buckets WHERE granularity = $1`, gran).Scan(&placed, &confirmed, &rejected, &revenue)
		if err != nil {
			t.Fatal(err)
		}
		var wantPlaced, wantRejected, wantRevenue int64
		err = pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE status = 'rejected'),
	COALESCE(sum(total_cents - refunded_cents) FILTER (WHERE status IN ('paid', 'shipped', 'delivered')), 0)::bigint
FROM rm.orders`).Scan(&wantPlaced, &wantRejected, &wantRevenue)
		if err != nil {
			t.Fatal(err)
		}
		// The scenario confirms 4 of its 7 orders and pays 2, one of which
		// ships and is delivered; the cancelled one was never paid. Revenue
		// is net of the partial refunds and the return.
		if placed != 7 || placed != wantPlaced || confirmed != 4 || rejected != 3 || rejected != wantRejected ||
			revenue != wantRevenue || revenue == 0 {
			t.Errorf("%s buckets: placed %d confirmed %d rejected %d revenue %d; rows: %d orders, %d rejected, revenue %d",
				gran, placed, confirmed, rejected, revenue, wantPlaced, wantRejected, wantRevenue)
		}
	}

	before := dumpBuckets(t, pool)
	for _, tc := range []struct {
		name  string
		from  func(last uint64) uint64 // per shard
		batch int
	}{
		{"everything again in one batch", func(uint64) uint64 { return 0 }, maxBatch},
		{"second half in batches of 3", func(last uint64) uint64 { return last / 2 }, 3},
		{"one event at a time from the first", func(last uint64) uint64 { return min(last, 1) }, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, seq := range last {
				if _, err := pool.Exec(ctx, `UPDATE rm.checkpoints SET last_seq = $1 WHERE shard = $2`, int64(tc.from(seq)), k); err != nil {
					t.Fatalf("reset checkpoint: %v", err)
				}
			}
			r := NewRunner(f.store, pool, quietLog())
			r.batch = tc.batch
			runUntil(t, r, last)
			sameDump(t, before, dumpBuckets(t, pool))
		})
	}
}

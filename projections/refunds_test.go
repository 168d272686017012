package projections

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orderengine/engine/domain"
)

// TestApplyRefundsAndReturns checks that refunds and returns reach the
// order row (refunded_cents), its lines (returned_qty) and the revenue
// buckets (net of refunds), whatever the batching, and that a replay from
// a checkpoint moved back changes nothing.
func TestApplyRefundsAndReturns(t *testing.T) {
	t.Parallel()
	h := newHistory(t)
	t0 := h.at // 03:04:05 UTC
	id := uuid.NewString()
	h.order(id, domain.OrderPlaced{OrderID: id, CustomerID: "c", Currency: "JPY", TotalCents: 5000, At: t0,
		Lines: []domain.Line{{SKU: "A", Qty: 2, UnitPriceCents: 1000}, {SKU: "B", Qty: 3, UnitPriceCents: 1000}}})
	h.order(id, domain.OrderConfirmed{At: t0})
	h.order(id, domain.OrderPaid{AmountCents: 5000, PaymentRef: "p", At: t0})
	h.order(id, domain.OrderRefunded{AmountCents: 300, Reason: "late", RefundedCents: 300, At: t0.Add(time.Minute)})
	h.order(id, domain.OrderShipped{Carrier: "UPS", TrackingNumber: "1", At: t0.Add(time.Minute)})
	h.order(id, domain.OrderDelivered{At: t0.Add(time.Minute)})
	h.order(id, domain.LinesReturned{Lines: []domain.ReturnedLine{{SKU: "B", Qty: 1, RefundCents: 1000, ReturnedQty: 1}},
		Reason: "r", RefundCents: 1000, RefundedCents: 1300, At: t0.Add(time.Hour)})
	h.order(id, domain.LinesReturned{Lines: []domain.ReturnedLine{
		{SKU: "B", Qty: 2, RefundCents: 2000, ReturnedQty: 3}, {SKU: "A", Qty: 1, RefundCents: 1000, ReturnedQty: 1}},
		Reason: "r", RefundCents: 3000, RefundedCents: 4300, At: t0.Add(time.Hour)})
	h.order(id, domain.OrderRefunded{AmountCents: 200, Reason: "sorry", RefundedCents: 4500, At: t0.Add(time.Hour)})

	wantRows := []string{
		fmt.Sprintf(`orders {"order_id":"%s","customer_id":"c","status":"delivered","currency":"JPY","total_cents":5000,"refund_due_cents":0,"version":9,"created_at":"2026-01-02T03:04:05+00:00","updated_at":"2026-01-02T04:04:05+00:00","refunded_cents":4500}`, id),
		fmt.Sprintf(`lines {"order_id":"%s","line_no":0,"sku":"A","qty":2,"unit_price_cents":1000,"returned_qty":1}`, id),
		fmt.Sprintf(`lines {"order_id":"%s","line_no":1,"sku":"B","qty":3,"unit_price_cents":1000,"returned_qty":3}`, id),
	}
	wantBuckets := []string{
		"hour 03:00 orders_confirmed 1",
		"hour 03:00 orders_placed 1",
		"hour 03:00 revenue_cents JPY 4700",
		"hour 04:00 revenue_cents JPY -4200",
		"minute 03:04 orders_confirmed 1",
		"minute 03:04 orders_placed 1",
		"minute 03:04 revenue_cents JPY 5000",
		"minute 03:05 revenue_cents JPY -300",
		"minute 04:04 revenue_cents JPY -4200",
	}
	ctx := context.Background()
	for _, batch := range []int{len(h.events), 4, 2, 1} {
		t.Run(fmt.Sprintf("batches of %d", batch), func(t *testing.T) {
			t.Parallel()
			pool := newPool(t)
			r := NewRunner(nil, pool, quietLog())
			apply := func(t *testing.T, events []streamEvent) {
				t.Helper()
				for i := 0; i < len(events); i += batch {
					if err := r.commitRaw(ctx, events[i:min(i+batch, len(events))]); err != nil {
						t.Fatalf("commit: %v", err)
					}
				}
			}
			apply(t, h.events)
			sameDump(t, wantRows, dump(t, pool))
			sameDump(t, wantBuckets, dumpBuckets(t, pool))
			for _, from := range []uint64{0, 3, 6, h.seq - 1} {
				if _, err := pool.Exec(ctx, `UPDATE rm.checkpoints SET last_seq = $1`, int64(from)); err != nil {
					t.Fatal(err)
				}
				apply(t, h.events[from:])
				sameDump(t, wantRows, dump(t, pool))
				sameDump(t, wantBuckets, dumpBuckets(t, pool))
			}
		})
	}
}

package projections

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderengine/engine/domain"
)

// history builds stream events by hand, numbering sequences and aggregate
// versions as the store would.
type history struct {
	tb       testing.TB
	seq      uint64
	versions map[string]uint64
	events   []streamEvent
	at       time.Time
}

func newHistory(tb testing.TB) *history {
	return &history{tb: tb, versions: map[string]uint64{}, at: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (h *history) add(subject, id string, e any) {
	h.seq++
	h.versions[subject]++
	h.events = append(h.events, streamEvent{Seq: h.seq, Subject: subject, Data: envelope(h.tb, id, h.versions[subject], e)})
}

func (h *history) order(id string, e domain.OrderEvent) { h.add(orderPrefix+id, id, e) }
func (h *history) sku(sku string, e domain.SKUEvent)    { h.add(skuPrefix+sku, sku, e) }

func TestApplyEvents(t *testing.T) {
	t.Parallel()
	h := newHistory(t)
	at := h.at
	o1, o2 := uuid.NewString(), uuid.NewString()
	reserved := func(o string, qty int64) domain.ReservationDecision {
		return domain.ReservationDecision{Reserved: &domain.StockReserved{ReservationID: o + "-A", OrderID: o, Qty: qty, At: at}}
	}
	// A SKU may be refused before it exists.
	h.sku("GHOST", domain.ReservationRefused{ReservationID: o2 + "-GHOST", OrderID: o2, Qty: 1, At: at})
	h.sku("A", domain.OnHandSet{SKU: "A", OnHand: 10, At: at})
	h.order(o1, domain.OrderPlaced{OrderID: o1, CustomerID: "c1", Currency: "USD", TotalCents: 3000, At: at,
		Lines: []domain.Line{{SKU: "A", Qty: 2, UnitPriceCents: 1000}, {SKU: "B", Qty: 1, UnitPriceCents: 1000}}})
	h.order(o2, domain.OrderPlaced{OrderID: o2, CustomerID: "c2", Currency: "EUR", TotalCents: 500, At: at,
		Lines: []domain.Line{{SKU: "A", Qty: 3, UnitPriceCents: 100}, {SKU: "GHOST", Qty: 1, UnitPriceCents: 200}}})
	h.sku("A", domain.ReservationsDecided{At: at, Decisions: []domain.ReservationDecision{
		reserved(o1, 2), reserved(o2, 3),
		{Refused: &domain.ReservationRefused{ReservationID: "x-A", OrderID: "x", Qty: 99, Available: 5, At: at}},
	}})
	h.order(o1, domain.LineReserved{SKU: "A", At: at})
	h.order(o2, domain.LineRefused{SKU: "GHOST", At: at})
	h.order(o2, domain.OrderRejected{Reason: "short", At: at})
	h.sku("A", domain.ReservationReleased{ReservationID: o2 + "-A", Qty: 3, At: at})
	h.order(o1, domain.OrderConfirmed{At: at})
	h.order(o1, domain.OrderPaid{AmountCents: 3000, PaymentRef: "p", At: at})
	h.order(o1, domain.OrderShipped{Carrier: "UPS", TrackingNumber: "1", At: at})
	h.sku("A", domain.ReservationCommitted{ReservationID: o1 + "-A", Qty: 2, At: at.Add(time.Second)})
	h.sku("A", domain.Restocked{SKU: "A", Qty: 4, At: at.Add(2 * time.Second)})

	want := []string{
		fmt.Sprintf(`orders {"order_id":"%s","customer_id":"c1","status":"shipped","currency":"USD","total_cents":3000,"refund_due_cents":0,"version":5,"created_at":"2026-01-02T03:04:05+00:00","updated_at":"2026-01-02T03:04:05+00:00","refunded_cents":0}`, o1),
		fmt.Sprintf(`orders {"order_id":"%s","customer_id":"c2","status":"rejected","currency":"EUR","total_cents":500,"refund_due_cents":0,"version":3,"created_at":"2026-01-02T03:04:05+00:00","updated_at":"2026-01-02T03:04:05+00:00","refunded_cents":0}`, o2),
		`inventory {"sku":"A","on_hand":12,"reserved":0,"version":5,"updated_at":"2026-01-02T03:04:07+00:00"}`,
		`inventory {"sku":"GHOST","on_hand":0,"reserved":0,"version":1,"updated_at":"2026-01-02T03:04:05+00:00"}`,
	}
	for _, tc := range []struct {
		name  string
		batch int
	}{
		{"one batch", len(h.events)},
		{"batches of 2", 2},
		{"one event per batch", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pool := newPool(t)
			r := NewRunner(nil, pool, quietLog())
			for range 2 { // the second pass is a replay
				if _, err := pool.Exec(context.Background(), `UPDATE rm.checkpoints SET last_seq = 0`); err != nil {
					t.Fatal(err)
				}
				for i := 0; i < len(h.events); i += tc.batch {
					if err := r.commitRaw(context.Background(), h.events[i:min(i+tc.batch, len(h.events))]); err != nil {
						t.Fatalf("commit: %v", err)
					}
				}
			}
			var got []string
			for _, row := range dump(t, pool) {
				if row[:6] != "lines " {
					got = append(got, row)
				}
			}
			if o1 > o2 {
				got[0], got[1] = got[1], got[0]
			}
			sameDump(t, want, got)
			var lines int
			if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM rm.order_lines`).Scan(&lines); err != nil || lines != 4 {
				t.Errorf("%d lines (%v), want 4", lines, err)
			}
			if cp := mustCheckpoint(t, pool); !eqSeqs(cp, []uint64{h.seq}) {
				t.Errorf("checkpoint %d, want %d", cp, h.seq)
			}
		})
	}
}

// benchHistory is n orders through placed, reserved, confirmed and paid,
// with the stock reservations on 200 SKUs: 5n+200 events.
func benchHistory(tb testing.TB, n int) []streamEvent {
	h := newHistory(tb)
	const skus = 200
	for i := range skus {
		sku := fmt.Sprintf("SKU-%d", i)
		h.sku(sku, domain.OnHandSet{SKU: sku, OnHand: 1_000_000, At: h.at})
	}
	for i := range n {
		id := uuid.NewString()
		sku := fmt.Sprintf("SKU-%d", i%skus)
		h.order(id, domain.OrderPlaced{OrderID: id, CustomerID: "c", Currency: "USD", TotalCents: 2000, At: h.at,
			Lines: []domain.Line{{SKU: sku, Qty: 2, UnitPriceCents: 1000}}})
		h.sku(sku, domain.StockReserved{ReservationID: id + "-" + sku, OrderID: id, Qty: 2, At: h.at})
		h.order(id, domain.LineReserved{SKU: sku, At: h.at})
		h.order(id, domain.OrderConfirmed{At: h.at})
		h.order(id, domain.OrderPaid{AmountCents: 2000, PaymentRef: "p", At: h.at})
	}
	return h.events
}

// BenchmarkApplyBatch applies about 100k events, in batches of maxBatch with
// their checkpoint, to empty read models through the Runner's own pipeline
// (decoding one batch ahead), as Run does with the stream.
func BenchmarkApplyBatch(b *testing.B) {
	events := benchHistory(b, 20_000)
	pool := newPool(b)
	r := NewRunner(nil, pool, quietLog())
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		reset(b, pool)
		b.StartTimer()
		rest := events
		_, err := r.pipeline(ctx, func(context.Context) ([]streamEvent, error) {
			if len(rest) == 0 {
				return nil, io.EOF
			}
			batch := rest[:min(maxBatch, len(rest))]
			rest = rest[len(batch):]
			return batch, nil
		})
		if !errors.Is(err, io.EOF) {
			b.Fatalf("pipeline: %v", err)
		}
	}
	b.ReportMetric(float64(len(events)*b.N)/b.Elapsed().Seconds(), "events/s")
}

// commitRaw decodes events and commits them as one batch.
func (r *Runner) commitRaw(ctx context.Context, events []streamEvent) error {
	p := prepared{events: events}
	p.evs, p.decodeErr = decodeAll(events)
	return r.commit(ctx, p)
}

func reset(tb testing.TB, pool *pgxpool.Pool) {
	tb.Helper()
	_, err := pool.Exec(context.Background(), `TRUNCATE rm.orders, rm.order_lines, rm.inventory;
UPDATE rm.checkpoints SET last_seq = 0`)
	if err != nil {
		tb.Fatalf("reset: %v", err)
	}
}

// BenchmarkDecodeEvent decodes the events of benchHistory one by one: the
// projection's own CPU time and most of its allocations.
func BenchmarkDecodeEvent(b *testing.B) {
	events := benchHistory(b, 2_000)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := decodeEvent(events[i%len(events)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

package commands_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/internal/metrics"
	"github.com/orderengine/engine/internal/testnats"
)

// toldDecision is a grant or refusal stored in a ReservationsDecided: its
// stream sequence, whether the batch told its order, and whether it was
// decided on a placement (direct placement) rather than a request.
type toldDecision struct {
	seq          uint64
	told, placed bool
}

// decisionsOf returns sku's grants and refusals by reservation id.
func decisionsOf(t *testing.T, e *engine, sku string) map[string]toldDecision {
	t.Helper()
	out := map[string]toldDecision{}
	err := e.app.Store.History(context.Background(), "inventory."+sku, func(seq uint64, env eventstore.Envelope) error {
		ev, err := domain.DecodeSKUEvent(env.Type, env.SchemaVersion, env.Data)
		if err != nil {
			return err
		}
		batch, _ := ev.(domain.ReservationsDecided)
		for _, d := range batch.Decisions {
			if rid := reservationOf(d); rid != "" {
				out[rid] = toldDecision{seq, d.Told, batch.Placed}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("history of %s: %v", sku, err)
	}
	return out
}

func reservationOf(d domain.ReservationDecision) string {
	switch {
	case d.Reserved != nil:
		return d.Reserved.ReservationID
	case d.Refused != nil:
		return d.Refused.ReservationID
	}
	return ""
}

// orderEvents returns the types and stream sequences of order id's events.
func orderEvents(t *testing.T, e *engine, id string) (types []string, seqs []uint64) {
	t.Helper()
	err := e.app.Store.History(context.Background(), "orders."+id, func(seq uint64, env eventstore.Envelope) error {
		types, seqs = append(types, env.Type), append(seqs, seq)
		return nil
	})
	if err != nil {
		t.Fatalf("history of order %s: %v", id, err)
	}
	return types, seqs
}

// TestOutcomeIsToldInTheDecisionsBatch: an order on the SKU's shard that
// the processor's engine placed learns its outcome in the atomic batch that
// stores the SKU's decision (its outcome event is stored right after the
// decision, and the decision says Told, so the saga skips it); an order on
// another shard is told by the saga. Either way each order gets exactly one
// outcome event and the stock is never oversold.
func TestOutcomeIsToldInTheDecisionsBatch(t *testing.T) {
	_, nc := testnats.Start(t)
	e := newEngine(t, nc, time.Hour, true)
	e.app.DirectPlacement = false // through requests, as another engine's orders are
	const sku, stock, buyers = "TOLD", 5, 40
	e.setStock(t, sku, stock)
	confirmed, rejected := flashSale(t, []*engine{e}, sku, buyers)
	if confirmed != stock || rejected != buyers-stock {
		t.Fatalf("%d confirmed, %d rejected; want %d and %d", confirmed, rejected, stock, buyers-stock)
	}
	decisions := decisionsOf(t, e, sku)
	if len(decisions) != buyers {
		t.Fatalf("%d grants and refusals stored, want %d", len(decisions), buyers)
	}
	told := 0
	for rid, d := range decisions {
		id := rid[:len(rid)-len(sku)-1] // ReservationID is <order>-<sku>
		if domain.ReservationID(id, sku) != rid {
			t.Fatalf("reservation id %q does not name an order of %s", rid, sku)
		}
		sameShard := e.app.Orders.ShardOf(id) == e.app.SKUs.ShardOf(sku)
		if d.told != sameShard {
			t.Errorf("order %s (same shard as the SKU: %v): decision told %v", id, sameShard, d.told)
		}
		types, seqs := orderEvents(t, e, id)
		if len(types) != 2 || (types[1] != "OrderConfirmed" && types[1] != "OrderRejected") {
			t.Errorf("order %s stored %v, want its placement and one outcome", id, types)
			continue
		}
		if d.told {
			told++
			// The batch holds the decision and then its riders, one or
			// two messages each.
			if seqs[1] <= d.seq || seqs[1] > d.seq+2*buyers {
				t.Errorf("order %s: outcome at seq %d, decision at %d: not in the decision's batch", id, seqs[1], d.seq)
			}
		}
	}
	if told == 0 {
		t.Fatalf("no order of %d was on the SKU's shard (%d shards)", buyers, testnats.Shards())
	}
}

// TestAStaleOrderIsLeftToTheSaga: the processor's engine holds an order as
// placed, but another engine cancelled it meanwhile. The outcome prepared on
// the stale state must not be stored: the batch is refused on the order's
// expected sequence, the decision is stored again without it, and the saga
// finds the order cancelled, so the late grant is released.
func TestAStaleOrderIsLeftToTheSaga(t *testing.T) {
	_, nc := testnats.Start(t)
	a := newEngine(t, nc, time.Hour, false) // places, then decides
	b := newEngine(t, nc, time.Hour, false) // cancels behind a's back
	const sku = "STALE"
	a.setStock(t, sku, 100)
	var ids []string
	for sameShard := false; !sameShard; {
		if len(ids) == 50 {
			t.Fatalf("no order of 50 landed on the SKU's shard")
		}
		id := a.place(t, line(sku, 1))
		ids = append(ids, id)
		sameShard = a.app.Orders.ShardOf(id) == a.app.SKUs.ShardOf(sku)
	}
	for _, id := range ids {
		if _, err := b.app.CancelOrder(context.Background(), commandsMeta(b), id, cancelBody()); err != nil {
			t.Fatalf("cancel %s: %v", id, err)
		}
	}
	conflicts := testutil.ToFloat64(metrics.AppendConflicts.WithLabelValues("inventory"))
	a.startWorkers(t)
	eventually(t, "every late grant released", func() bool {
		s := a.sku(t, sku)
		return s.Reserved == 0 && s.Held.Len() == 0 && len(decisionsOf(t, a, sku)) == len(ids)
	})
	// The stale rider was tried: its batch was refused once at least.
	if got := testutil.ToFloat64(metrics.AppendConflicts.WithLabelValues("inventory")); got <= conflicts {
		t.Errorf("no SKU append was refused (%v before, %v after): the stale order was never tried as a rider", conflicts, got)
	}
	for rid, d := range decisionsOf(t, a, sku) {
		if d.told {
			t.Errorf("reservation %s: told on a stale order", rid)
		}
	}
	for _, id := range ids {
		types, _ := orderEvents(t, a, id)
		if fmt.Sprint(types) != "[OrderPlaced OrderCancelled]" {
			t.Errorf("order %s stored %v, want it placed and cancelled only", id, types)
		}
	}
}

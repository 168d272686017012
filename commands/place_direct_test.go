package commands_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/orderengine/engine/commands"
	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/internal/enginetest"
	"github.com/orderengine/engine/internal/testnats"
)

// placedDecisions returns the SKU's decisions stored on placements
// (ReservationsDecided marked Placed), by reservation id; each must be told.
func placedDecisions(t *testing.T, e *engine, sku string) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	for rid, d := range decisionsOf(t, e, sku) {
		if !d.placed {
			continue
		}
		if !d.told {
			t.Errorf("the decision on placement %s is not told", rid)
		}
		out[rid] = d.seq
	}
	return out
}

// onShardOf makes e's new order ids land on sku's shard: only there can
// an order be placed directly (its batch is one stream), and only there
// are its requests sequenced with the SKU's others.
func onShardOf(e *engine, sku string) {
	newID, shard := e.app.NewID, e.app.SKUs.ShardOf(sku)
	e.app.NewID = func() string {
		for {
			if id := newID(); e.app.Orders.ShardOf(id) == shard {
				return id
			}
		}
	}
}

// TestSingleLineOrdersArePlacedWithTheirDecision: in the engine that runs
// the SKU's processor, a flash sale's single-line orders are stored with
// their outcome and the SKU's decision in one batch: each order holds its
// placement and its outcome, right after a decision marked Placed, and no
// reservation request is stored at all. The stock is never oversold.
func TestSingleLineOrdersArePlacedWithTheirDecision(t *testing.T) {
	_, nc := testnats.Start(t)
	e := newEngine(t, nc, time.Hour, true)
	const sku, stock, buyers = "DIRECT", 5, 60
	onShardOf(e, sku)
	e.setStock(t, sku, stock)
	before := e.app.Store.CommitStats().ByKind[eventstore.ReservationSubjects]
	confirmed, rejected := flashSale(t, []*engine{e}, sku, buyers)
	if confirmed != stock || rejected != buyers-stock {
		t.Fatalf("%d confirmed, %d rejected; want %d and %d", confirmed, rejected, stock, buyers-stock)
	}
	if s := e.sku(t, sku); s.Reserved != stock || s.OnHand != stock {
		t.Fatalf("SKU holds %d reserved of %d on hand, want %d of %d", s.Reserved, s.OnHand, stock, stock)
	}
	placed := placedDecisions(t, e, sku)
	if len(placed) != buyers {
		t.Fatalf("%d of %d orders placed directly", len(placed), buyers)
	}
	for rid, seq := range placed {
		id := rid[:len(rid)-len(sku)-1]
		types, seqs := orderEvents(t, e, id)
		if len(types) != 2 || types[0] != "OrderPlaced" || (types[1] != "OrderConfirmed" && types[1] != "OrderRejected") {
			t.Errorf("order %s stored %v, want its placement and one outcome", id, types)
			continue
		}
		if seqs[0] <= seq || seqs[1] != seqs[0]+1 || seqs[1] > seq+2*buyers {
			t.Errorf("order %s at seqs %v, its decision at %d: not in the decision's batch", id, seqs, seq)
		}
	}
	if requests := e.app.Store.CommitStats().ByKind[eventstore.ReservationSubjects] - before; requests != 0 {
		t.Errorf("%d reservation requests stored, want none", requests)
	}
}

// TestAPlacementNeverOvertakesAStoredRequest: an order placed through a
// reservation request (a two-line order) and a single-line order for the
// same last unit, placed right after it, must be granted in that order.
// The single-line order's direct batch is fenced on the SKU's last request:
// while the first order's request is undecided, the batch is refused and
// the order takes the request path, behind it. Without the fence the
// direct order wins the unit in most rounds.
func TestAPlacementNeverOvertakesAStoredRequest(t *testing.T) {
	_, nc := testnats.Start(t)
	e := newEngine(t, nc, time.Hour, true)
	const rounds = 20
	for i := range rounds {
		sku, other := fmt.Sprintf("FENCE%d", i), fmt.Sprintf("OTHER%d", i)
		e.app.NewID = enginetest.NewApp(e.app.Store, time.Hour).NewID
		onShardOf(e, sku)
		e.setStock(t, sku, 1)
		e.setStock(t, other, 1)
		first := e.place(t, line(sku, 1), line(other, 1))
		second := e.place(t, line(sku, 1))
		if st := e.settle(t, first); st != domain.StatusConfirmed {
			t.Fatalf("round %d: the order placed first is %s, the unit went to the one placed after it (%s)", i, st, e.settle(t, second))
		}
		if st := e.settle(t, second); st != domain.StatusRejected {
			t.Fatalf("round %d: the order placed second is %s", i, st)
		}
	}
}

// TestAKeyedRetryOfADirectPlacementIsAReplay: a keyed single-line order
// placed directly is the key's record as on the request path. Its retry,
// in the engine that placed it or in another that never saw it (whose
// direct batch is refused on the order's subject, so it takes the request
// path), answers the first placement and stores nothing; the key with
// another order is refused.
func TestAKeyedRetryOfADirectPlacementIsAReplay(t *testing.T) {
	ns, nc := testnats.Start(t)
	a := newEngine(t, nc, time.Hour, true)
	b := newEngine(t, testnats.Connect(t, ns), time.Hour, true)
	const sku = "KEYED"
	a.setStock(t, sku, 3)
	key := "key-" + a.app.NewID()
	m := commands.Meta{CommandID: "idem-" + key, IdemKey: key, Fingerprint: "fp-1"}
	body := commands.PlaceOrder{CustomerID: "c1", Currency: "USD", Lines: []domain.Line{line(sku, 1)}}
	first, err := a.app.PlaceOrder(context.Background(), m, body)
	if err != nil || first.Replayed || first.State.ID != commands.KeyedOrderID(key) {
		t.Fatalf("first placement: %+v, %v", first, err)
	}
	if a.app.Orders.ShardOf(first.State.ID) != a.app.SKUs.ShardOf(sku) {
		t.Skip("the keyed order is off the SKU's shard: it is never placed directly")
	}
	if len(placedDecisions(t, a, sku)) != 1 {
		t.Fatal("the keyed order was not placed directly")
	}
	var wg sync.WaitGroup
	for _, e := range []*engine{a, b, b} {
		wg.Go(func() {
			again, err := e.app.PlaceOrder(context.Background(), m, body)
			if err != nil || !again.Replayed || again.State.ID != first.State.ID || again.Version != 1 {
				t.Errorf("retry: %+v, %v; want a replay of %s at version 1", again, err, first.State.ID)
			}
		})
	}
	wg.Wait()
	other := m
	other.Fingerprint = "fp-2"
	if _, err := b.app.PlaceOrder(context.Background(), other, body); !errors.Is(err, domain.ErrIdempotencyKeyReused) {
		t.Errorf("the key with another request: %v, want ErrIdempotencyKeyReused", err)
	}
	types, _ := orderEvents(t, a, first.State.ID)
	if len(types) != 2 {
		t.Errorf("the order stored %v, want its placement and outcome once", types)
	}
	if s := a.sku(t, sku); s.Reserved != 1 {
		t.Errorf("%d reserved, want 1", s.Reserved)
	}
}

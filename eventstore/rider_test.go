package eventstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/internal/testnats"
)

// stockKind is tallyKind on the inventory subjects: a second aggregate type
// for riders to ride with.
var stockKind = func() eventstore.Kind[tally, noted] {
	k := tallyKind
	k.Name, k.Prefix = "stock", eventstore.InventorySubjects
	return k
}()

// sameShardIDs returns an id for each repository that maps to one shard.
func sameShardIDs(t *testing.T, s *eventstore.Store) (string, string) {
	t.Helper()
	a := "stock-a"
	for i := range 1000 {
		if b := fmt.Sprintf("order-%d", i); s.ShardOf(a) == s.ShardOf(b) {
			return a, b
		}
	}
	t.Fatal("no two ids on one shard")
	return "", ""
}

// updateWithRider notes n on the stock aggregate with a rider noting n on
// order id, prepared on the order's snapshot before, on the first attempt
// only; it returns the attempts made.
func updateWithRider(t *testing.T, stock, orders *eventstore.Repository[tally, noted], stockID, orderID, n string, before eventstore.Snapshot[tally]) int {
	t.Helper()
	attempts := 0
	_, err := stock.UpdateFoldedWith(context.Background(), stockID, eventstore.UpdateOptions[tally]{CommandID: "stock-" + n, MaxAttempts: 3},
		func(s eventstore.Snapshot[tally], attempt int) ([]noted, tally, []*eventstore.Rider, error) {
			attempts = attempt
			events, _ := note(n)(s)
			after := tally{Count: s.State.Count + 1, Notes: append(append([]string(nil), s.State.Notes...), n)}
			if attempt > 1 {
				return events, after, nil, nil
			}
			rd, err := orders.Prepare(orderID, before, events, eventstore.UpdateOptions[tally]{CommandID: "rider-" + n})
			return events, after, []*eventstore.Rider{rd}, err
		})
	if err != nil {
		t.Fatalf("update with rider %s: %v", n, err)
	}
	return attempts
}

// TestRiderIsStoredWithItsUpdateOrNotAtAll: a rider prepared on its
// aggregate's current state is stored right after the update's events, in
// its batch, and lands in the cache; one prepared on a state that another
// process has moved past fails the batch, and the update's retry (without
// it) is stored alone.
func TestRiderIsStoredWithItsUpdateOrNotAtAll(t *testing.T) {
	ns, nc := testnats.Start(t)
	s := openStore(t, nc)
	other := eventstore.NewRepository(openStore(t, testnats.Connect(t, ns)), tallyKind, 10)
	stock, orders := eventstore.NewRepository(s, stockKind, 10), eventstore.NewRepository(s, tallyKind, 10)
	stockID, orderID := sameShardIDs(t, s)
	if _, err := orders.Update(context.Background(), orderID, eventstore.UpdateOptions[tally]{CommandID: "placed"}, note("placed")); err != nil {
		t.Fatal(err)
	}
	before, ok := orders.Cached(orderID)
	if !ok {
		t.Fatal("the order's own append left nothing in the cache")
	}

	if n := updateWithRider(t, stock, orders, stockID, orderID, "told", before); n != 1 {
		t.Fatalf("a fresh rider took %d attempts", n)
	}
	var stockSeq, riderSeq uint64
	_ = s.History(context.Background(), "inventory."+stockID, func(seq uint64, _ eventstore.Envelope) error { stockSeq = seq; return nil })
	_ = s.History(context.Background(), "orders."+orderID, func(seq uint64, _ eventstore.Envelope) error { riderSeq = seq; return nil })
	if riderSeq != stockSeq+1 {
		t.Errorf("rider stored at seq %d, the update at %d: not right after it", riderSeq, stockSeq)
	}
	if envs := history(t, s, "orders."+orderID); len(envs) != 2 || envs[1].CommandID != "rider-told" {
		t.Fatalf("order history %v, want placed then the rider", envs)
	}
	if c, _ := orders.Cached(orderID); c.LastSeq != riderSeq || c.State.Count != 2 {
		t.Errorf("cache after the rider: seq %d count %d, want %d and 2", c.LastSeq, c.State.Count, riderSeq)
	}

	// Another process appends to the order; this one still holds it as before.
	stale, _ := orders.Cached(orderID)
	if _, err := other.Update(context.Background(), orderID, eventstore.UpdateOptions[tally]{CommandID: "elsewhere"}, note("elsewhere")); err != nil {
		t.Fatal(err)
	}
	if n := updateWithRider(t, stock, orders, stockID, orderID, "late", stale); n != 2 {
		t.Errorf("a stale rider took %d attempts, want 2 (refused, then without it)", n)
	}
	envs := history(t, s, "orders."+orderID)
	if len(envs) != 3 || envs[2].CommandID != "elsewhere" {
		t.Errorf("order history has %d events, last %q; want the stale rider not stored", len(envs), envs[len(envs)-1].CommandID)
	}
	if got := history(t, s, "inventory."+stockID); len(got) != 2 || got[1].CommandID != "stock-late" {
		t.Errorf("stock history has %d events; want the retried update stored once", len(got))
	}
}

// TestAwaitAfterSeesAnotherProcessesAppend: a waiter whose own append is in
// its cache skips the first read, and still sees the next state another
// process stores.
func TestAwaitAfterSeesAnotherProcessesAppend(t *testing.T) {
	ns, nc := testnats.Start(t)
	mine := eventstore.NewRepository(openStore(t, nc), tallyKind, 10)
	theirs := eventstore.NewRepository(openStore(t, testnats.Connect(t, ns)), tallyKind, 10)
	res, err := mine.Update(context.Background(), "awaited", eventstore.UpdateOptions[tally]{CommandID: "one"}, note("one"))
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan eventstore.Snapshot[tally], 1)
	go func() {
		snap, err := mine.AwaitAfter(context.Background(), "awaited", res.After.LastSeq, time.Minute,
			func(s eventstore.Snapshot[tally]) bool { return s.State.Count == 2 })
		if err != nil {
			t.Errorf("await: %v", err)
		}
		got <- snap
	}()
	if _, err := theirs.Update(context.Background(), "awaited", eventstore.UpdateOptions[tally]{CommandID: "two"}, note("two")); err != nil {
		t.Fatal(err)
	}
	if snap := <-got; snap.State.Count != 2 || snap.Version != 2 {
		t.Errorf("await returned count %d version %d, want the other process's append", snap.State.Count, snap.Version)
	}
}

package commands_test

import (
	"context"
	"testing"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/orderengine/engine/commands"
	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/internal/testnats"
)

// TestCommandsReturnDomainResults checks what a command method answers
// without any HTTP: the state it left, its version and position, its
// events, and for a retried idempotency key the first outcome, replayed.
func TestCommandsReturnDomainResults(t *testing.T) {
	_, nc := testnats.Start(t)
	e := newEngine(t, nc, time.Hour, false)
	ctx := context.Background()
	keyed := func(key, fingerprint string) commands.Meta {
		return commands.Meta{CommandID: "idem-" + key, IdemKey: key, Fingerprint: fingerprint}
	}
	order := commands.PlaceOrder{CustomerID: "c1", Currency: "USD", Lines: []domain.Line{{SKU: "A", Qty: 1, UnitPriceCents: 100}}}

	first, err := e.app.PlaceOrder(ctx, keyed("k1", "f1"), order)
	if err != nil {
		t.Fatalf("place: %v", err)
	}
	if first.Replayed || first.Version != 1 || first.Position.Seq == 0 || len(first.Events) != 1 ||
		first.State.Status != domain.StatusPending || first.State.ID != commands.KeyedOrderID("k1") {
		t.Fatalf("place answered %+v", first)
	}

	t.Run("a retry with the key replays the first outcome", func(t *testing.T) {
		again, err := e.app.PlaceOrder(ctx, keyed("k1", "f1"), order)
		if err != nil {
			t.Fatal(err)
		}
		if !again.Replayed || again.Events != nil || again.Version != first.Version || again.Position != first.Position ||
			again.State.ID != first.State.ID {
			t.Errorf("retry answered %+v, want a replay of %+v", again, first)
		}
	})
	t.Run("the key with another request is refused", func(t *testing.T) {
		if _, err := e.app.PlaceOrder(ctx, keyed("k1", "f2"), order); !errors.Is(err, domain.ErrIdempotencyKeyReused) {
			t.Errorf("got %v, want ErrIdempotencyKeyReused", err)
		}
	})
	t.Run("an expected version that is not the order's is a failed precondition", func(t *testing.T) {
		stale := uint64(2)
		m := commands.Meta{CommandID: e.app.NewID(), IfMatch: &stale}
		if _, err := e.app.CancelOrder(ctx, m, first.State.ID, commands.CancelOrder{}); !errors.Is(err, domain.ErrPreconditionFailed) {
			t.Errorf("got %v, want ErrPreconditionFailed", err)
		}
	})
	t.Run("a keyed command replays its first outcome in a process that never saw it", func(t *testing.T) {
		current := uint64(1)
		m := keyed("k2", "f3")
		m.IfMatch = &current
		cancelled, err := e.app.CancelOrder(ctx, m, first.State.ID, commands.CancelOrder{Reason: "changed my mind"})
		if err != nil || cancelled.Replayed || cancelled.Version != 2 || cancelled.State.Status != domain.StatusCancelled {
			t.Fatalf("cancel answered %+v, %v", cancelled, err)
		}
		// A fresh process: nothing cached, the first outcome is folded from the store.
		other := newEngine(t, nc, time.Hour, false)
		again, err := other.app.CancelOrder(ctx, m, first.State.ID, commands.CancelOrder{Reason: "changed my mind"})
		if err != nil || !again.Replayed || again.Version != 2 || again.Position != cancelled.Position ||
			again.State.Status != domain.StatusCancelled {
			t.Errorf("retry answered %+v, %v; want a replay of %+v", again, err, cancelled)
		}
	})
}

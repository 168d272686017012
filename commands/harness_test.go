package commands_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/orderengine/engine/commands"
	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/internal/enginetest"
)

// engine is one engine instance on a NATS connection: a store, the command
// side, and (when started) its reservation workers.
type engine struct {
	app  *commands.App
	stop func()
}

type natsConn = *nats.Conn

func newApp(store *eventstore.Store) *commands.App {
	return enginetest.NewApp(store, time.Hour)
}

func setOnHand(n int64) commands.SetOnHand { return commands.SetOnHand{OnHand: n} }

func newEngine(t *testing.T, nc *nats.Conn, ttl time.Duration, workers bool) *engine {
	t.Helper()
	store := enginetest.OpenStore(t, nc)
	e := &engine{app: enginetest.NewApp(store, ttl), stop: func() {}}
	if workers {
		e.startWorkers(t)
	}
	// Registered after the store's Close, so it runs before it.
	t.Cleanup(func() { e.stop() })
	return e
}

// startWorkers runs the reservation processors and the expiry worker until
// stop is called.
func (e *engine) startWorkers(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.app.RunWorkers(ctx) }()
	e.stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("workers: %v", err)
		}
		e.stop = func() {}
	}
}

func (e *engine) setStock(t *testing.T, sku string, n int64) {
	t.Helper()
	if _, err := e.app.SetOnHand(context.Background(), commands.Meta{CommandID: e.app.NewID()}, sku, commands.SetOnHand{OnHand: n}); err != nil {
		t.Fatalf("set stock of %s: %v", sku, err)
	}
}

func (e *engine) place(t testing.TB, lines ...domain.Line) string {
	t.Helper()
	out, err := e.app.PlaceOrder(context.Background(), commands.Meta{CommandID: e.app.NewID()},
		commands.PlaceOrder{CustomerID: "c1", Currency: "USD", Lines: lines})
	if err != nil {
		t.Fatalf("place order: %v", err)
	}
	return out.State.ID
}

// settle waits until order id has left pending and returns its status.
func (e *engine) settle(t testing.TB, id string) domain.OrderStatus {
	t.Helper()
	snap, err := e.app.AwaitReservation(context.Background(), id, 60*time.Second)
	if err != nil {
		t.Fatalf("await order %s: %v", id, err)
	}
	return snap.State.Status
}

func (e *engine) sku(t testing.TB, sku string) domain.SKU {
	t.Helper()
	snap, err := e.app.SKUs.Load(context.Background(), sku)
	if err != nil {
		t.Fatalf("load %s: %v", sku, err)
	}
	return snap.State
}

func (e *engine) order(t testing.TB, id string) domain.Order {
	t.Helper()
	snap, err := e.app.Orders.Load(context.Background(), id)
	if err != nil {
		t.Fatalf("load order %s: %v", id, err)
	}
	return snap.State
}

// eventually polls cond until it holds or 30s pass.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func line(sku string, qty int64) domain.Line {
	return domain.Line{SKU: sku, Qty: qty, UnitPriceCents: 1000}
}

func commandsMeta(e *engine) commands.Meta { return commands.Meta{CommandID: e.app.NewID()} }

func cancelBody() commands.CancelOrder { return commands.CancelOrder{Reason: "changed my mind"} }

func payBody(cents int64) commands.PayOrder {
	return commands.PayOrder{AmountCents: cents, PaymentRef: "pay-1"}
}

func shipBody() commands.ShipOrder {
	return commands.ShipOrder{Carrier: "UPS", TrackingNumber: "1Z999"}
}

func restockBody(n int64) commands.Restock { return commands.Restock{Qty: n} }

// waitForProcessors waits until every reservation request in the stream has
// been processed and acknowledged.
func waitForProcessors(t *testing.T, e *engine) {
	t.Helper()
	eventually(t, "all reservation requests processed", func() bool {
		idle, err := e.app.Store.ReservationFlowIdle(context.Background())
		return err == nil && idle
	})
}

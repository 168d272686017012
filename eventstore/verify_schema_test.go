package eventstore_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orderengine/engine/commands"
	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/internal/testnats"
)

// Events stored in an older shape read back through the domain's
// upcasters, and the chain still verifies: history stays readable forever.
func TestOldSchemaVersionsReadBack(t *testing.T) {
	t.Parallel()
	_, nc := testnats.Start(t)
	store := openStore(t, nc)
	app := commands.NewApp(store, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Hour)
	js, _ := jetstream.New(store.Conn())
	f := verifyFixture{store: store, js: js}
	ctx := context.Background()
	place := func() string {
		out, err := app.PlaceOrder(ctx, commands.Meta{CommandID: app.NewID()}, commands.PlaceOrder{CustomerID: "c1", Currency: "USD",
			Lines: []domain.Line{{SKU: "SKU-1", Qty: 1, UnitPriceCents: 1000}}})
		if err != nil {
			t.Fatalf("place order: %v", err)
		}
		return out.State.ID
	}
	// storeRaw appends an event past the engine, correctly chained.
	storeRaw := func(id, typ string, schemaVersion int, data string) {
		_, envs := f.events(t, eventstore.OrderSubjects+"."+id)
		last := envs[len(envs)-1]
		e := eventstore.Envelope{Type: typ, SchemaVersion: schemaVersion, AggregateType: "order", AggregateID: id,
			Version: last.Version + 1, OccurredAt: time.Now(), CommandID: "legacy", Data: []byte(data)}
		e.Seal(last.Hash)
		f.publish(t, eventstore.OrderSubjects+"."+id, mustJSON(t, e))
	}
	lastEvent := func(id string) (eventstore.Envelope, domain.OrderEvent) {
		_, envs := f.events(t, eventstore.OrderSubjects+"."+id)
		e := envs[len(envs)-1]
		ev, err := domain.DecodeOrderEvent(e.Type, e.SchemaVersion, e.Data)
		if err != nil {
			t.Fatalf("decode %s v%d: %v", e.Type, e.SchemaVersion, err)
		}
		return e, ev
	}
	repo := eventstore.NewRepository(store, eventstore.NewOrderKind(time.Hour), 16)

	t.Run("a v1 OrderCancelled reads back as cancelled by unknown", func(t *testing.T) {
		id := place()
		storeRaw(id, "OrderCancelled", 1, `{"reason":"legacy","previous_status":"pending","refund_due_cents":0,"at":"2024-01-02T03:04:05Z"}`)
		snap, err := repo.Load(ctx, id)
		if err != nil {
			t.Fatalf("load: %v", err)
		}
		if snap.State.Status != domain.StatusCancelled || snap.Version != 2 {
			t.Fatalf("order is %s at version %d, want cancelled at 2", snap.State.Status, snap.Version)
		}
		env, ev := lastEvent(id)
		c, ok := ev.(domain.OrderCancelled)
		if env.SchemaVersion != 1 || !ok || c.CancelledBy != domain.CancelledByUnknown || c.Reason != "legacy" {
			t.Fatalf("v%d %#v, want OrderCancelled by unknown", env.SchemaVersion, ev)
		}
	})

	t.Run("a new OrderCancelled is stored as v2 and round-trips", func(t *testing.T) {
		id := place()
		if _, err := app.CancelOrder(ctx, commands.Meta{CommandID: app.NewID()}, id, commands.CancelOrder{}); err != nil {
			t.Fatal(err)
		}
		_, envs := f.events(t, eventstore.OrderSubjects+"."+id)
		if envs[0].Type != "OrderPlaced" || envs[0].SchemaVersion != 1 {
			t.Errorf("first event %s v%d, want OrderPlaced v1", envs[0].Type, envs[0].SchemaVersion)
		}
		env, ev := lastEvent(id)
		if c, ok := ev.(domain.OrderCancelled); env.SchemaVersion != 2 || !ok || c.CancelledBy != domain.CancelledByCustomer ||
			!strings.Contains(string(env.Data), `"cancelled_by":"customer"`) {
			t.Fatalf("v%d %s: %#v, want OrderCancelled v2 by customer", env.SchemaVersion, env.Data, ev)
		}
	})

	t.Run("a future schema version is an error, not a skip", func(t *testing.T) {
		id := place()
		storeRaw(id, "OrderCancelled", 3, `{"previous_status":"pending","refund_due_cents":0,"cancelled_by":"robot","at":"2030-01-02T03:04:05Z"}`)
		_, err := repo.Load(ctx, id)
		if err == nil || !strings.Contains(fmt.Sprint(err), "unsupported schema version 3") {
			t.Fatalf("load: %v, want unsupported schema version", err)
		}
	})

	// Every event above was chained correctly, whatever its shape.
	if rep := f.verify(t); !rep.OK {
		t.Fatalf("verify: %+v", rep.Problems)
	}
}

package projections

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/google/uuid"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/eventstore"
)

// envelope returns the JSON envelope of a domain event at version v of
// aggregate id, as the event store would store it.
func envelope(t testing.TB, id string, v uint64, e any) []byte {
	t.Helper()
	var (
		typ  string
		data []byte
		err  error
	)
	switch e := e.(type) {
	case domain.OrderEvent:
		typ, data, err = domain.EncodeOrderEvent(e)
	case domain.SKUEvent:
		typ, data, err = domain.EncodeSKUEvent(e)
	}
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	env := eventstore.Envelope{Type: typ, SchemaVersion: domain.SchemaVersion, AggregateID: id, Version: v,
		OccurredAt: time.Now().UTC(), Data: data}
	env.Seal("")
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return b
}

func TestPoisonEventsGoToDeadLettersAndProjectionGoesOn(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	pool := newPool(t)
	f.setStock(t, "SKU-A", 10)
	first := f.place(t, line("SKU-A", 1))
	f.settle(t, first)

	unknown := eventstore.Envelope{Type: "OrderTeleported", SchemaVersion: 1, AggregateID: uuid.NewString(),
		Version: 1, OccurredAt: time.Now().UTC(), Data: json.RawMessage(`{"to":"mars"}`)}
	unknownJSON, _ := json.Marshal(unknown)
	notUUID := "not-a-uuid"
	garbled := uuid.NewString()
	poisons := []struct {
		name, subject string
		data          []byte
		wantType      string
		wantErr       string
	}{
		{"unknown event type", "orders." + unknown.AggregateID, unknownJSON, "OrderTeleported", "unknown order event type"},
		{"invalid JSON", "orders." + uuid.NewString(), []byte("{not json\x00"), "", "decode event envelope"},
		{"NUL and invalid UTF-8 that Postgres text refuses", "orders." + garbled,
			[]byte(`{"type":"Bad\u0000Type","schema_version":1,"aggregate_id":"` + garbled + `","version":1,"data":{"s":"` + "\xff" + `"}}`),
			"BadType", "unknown order event type"},
		{"order id that is not a uuid", "orders." + notUUID,
			envelope(t, notUUID, 1, domain.OrderPlaced{OrderID: notUUID, CustomerID: "c", Currency: "USD",
				Lines: []domain.Line{line("SKU-A", 1)}, TotalCents: 1250, At: time.Now().UTC()}),
			"OrderPlaced", "invalid input syntax for type uuid"},
	}
	seqs := make(map[eventstore.Position]int)
	for i, p := range poisons {
		seqs[publish(t, f, p.subject, p.data)] = i
	}
	// Events after the poison ones must still be applied.
	f.setStock(t, "SKU-Z", 3)
	second := f.place(t, line("SKU-A", 2))
	f.settle(t, second)
	f.quiesce(t)

	r := NewRunner(f.store, pool, quietLog())
	runUntil(t, r, f.lastEventSeq(t))
	checkAgainstStore(t, f, pool, []string{first, second}, []string{"SKU-A", "SKU-Z"})

	dead, err := r.DeadLetters(context.Background())
	if err != nil {
		t.Fatalf("dead letters: %v", err)
	}
	if len(dead) != len(poisons) {
		t.Fatalf("%d dead letters, want %d: %+v", len(dead), len(poisons), dead)
	}
	for _, d := range dead {
		i, ok := seqs[eventstore.Position{Shard: d.Shard, Seq: d.Seq}]
		if !ok {
			t.Fatalf("dead letter for shard %d seq %d, which is no poison", d.Shard, d.Seq)
		}
		p := poisons[i]
		t.Run(p.name, func(t *testing.T) {
			if d.Subject != p.subject || d.EventType != p.wantType || d.Attempts != poisonAttempts ||
				!strings.Contains(d.Error, p.wantErr) || d.ResolvedAt != nil || len(d.Envelope) == 0 {
				t.Errorf("dead letter %+v", d)
			}
			err := r.Retry(context.Background(), d.ID)
			if err == nil {
				t.Fatalf("retry of a poison event succeeded")
			}
			again, _ := r.DeadLetters(context.Background())
			for _, a := range again {
				if a.ID == d.ID && (a.Attempts != poisonAttempts+1 || a.ResolvedAt != nil) {
					t.Errorf("after a failed retry: %+v", a)
				}
			}
		})
	}
}

func TestRetry(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	r := NewRunner(nil, pool, quietLog())
	ctx := context.Background()
	file := func(t *testing.T, seq int64, subject string, env []byte) int64 {
		t.Helper()
		var id int64
		err := pool.QueryRow(ctx, `INSERT INTO rm.dead_letters (projection, seq, subject, event_type, error, attempts, envelope)
VALUES ('main', $1, $2, 'x', 'boom', 3, $3::jsonb) RETURNING id`, seq, subject, string(env)).Scan(&id)
		if err != nil {
			t.Fatalf("file dead letter: %v", err)
		}
		return id
	}
	at := time.Now().UTC()

	t.Run("applies the event and resolves it", func(t *testing.T) {
		id := file(t, 10, "inventory.RETRY-1", envelope(t, "RETRY-1", 1, domain.OnHandSet{SKU: "RETRY-1", OnHand: 9, At: at}))
		if err := r.Retry(ctx, id); err != nil {
			t.Fatalf("retry: %v", err)
		}
		var onHand int64
		if err := pool.QueryRow(ctx, `SELECT on_hand FROM rm.inventory WHERE sku = 'RETRY-1'`).Scan(&onHand); err != nil || onHand != 9 {
			t.Fatalf("on_hand %d (%v), want 9", onHand, err)
		}
		dead, _ := r.DeadLetters(ctx)
		if dead[len(dead)-1].ResolvedAt == nil {
			t.Errorf("not resolved: %+v", dead[len(dead)-1])
		}
		if err := r.Retry(ctx, id); err != nil {
			t.Errorf("retry of a resolved dead letter: %v", err)
		}
	})
	t.Run("refuses an event its row has moved past", func(t *testing.T) {
		id := file(t, 11, "inventory.RETRY-1", envelope(t, "RETRY-1", 1, domain.Restocked{SKU: "RETRY-1", Qty: 5, At: at}))
		if err := r.Retry(ctx, id); err == nil {
			t.Fatal("retry succeeded")
		}
		var onHand int64
		if err := pool.QueryRow(ctx, `SELECT on_hand FROM rm.inventory WHERE sku = 'RETRY-1'`).Scan(&onHand); err != nil || onHand != 9 {
			t.Fatalf("on_hand %d (%v), want 9", onHand, err)
		}
	})
	t.Run("unknown id", func(t *testing.T) {
		if err := r.Retry(ctx, 424242); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("got %v, want ErrNotFound", err)
		}
	})
}

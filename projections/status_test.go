package projections

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/internal/enginetest"
)

// progressNow returns the Runner's state without touching the database.
func (r *Runner) progressNow() progress {
	r.mu.Lock()
	defer r.mu.Unlock()
	return overall(r.st)
}

func mustStatus(t testing.TB, r *Runner) ProjectionStatus {
	t.Helper()
	s, err := r.Status(context.Background())
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	return s
}

// startRunner runs r until the test ends and returns a function that stops it
// and waits for Run to return.
func startRunner(t testing.TB, r *Runner) (stop func()) {
	t.Helper()
	return enginetest.Run(t, r.Run)
}

func TestStatusCatchesUpThenGoesLive(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	pool := newPool(t)
	f.setStock(t, "SKU-A", 1000)
	for range 40 {
		f.place(t, line("SKU-A", 1))
	}
	f.quiesce(t)
	last := f.lastEventSeq(t)

	r := NewRunner(f.store, pool, quietLog())
	r.batch = 1 // many small batches keep it catching up long enough to be seen
	if s := mustStatus(t, r); s.State != StateStarting || !eqSeqs(s.Checkpoints, nil) || s.Lag != 0 || s.Name != MainProjection {
		t.Fatalf("before Run: %+v", s)
	}
	stop := startRunner(t, r)
	var seen []string
	deadline := time.Now().Add(60 * time.Second)
	for {
		s := mustStatus(t, r)
		if len(seen) == 0 || seen[len(seen)-1] != s.State {
			seen = append(seen, s.State)
		}
		if s.State == StateCatchingUp && s.Lag == 0 {
			t.Errorf("catching up with lag 0: %+v", s)
		}
		if s.State == StateLive && eqSeqs(s.Checkpoints, last) {
			if s.Lag != 0 || s.LagSeconds != 0 || s.DeadLetters != 0 {
				t.Errorf("live: %+v", s)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not live at checkpoints %v; states seen %v, last %+v", last, seen, s)
		}
		time.Sleep(2 * time.Millisecond)
	}
	if !slices.Contains(seen, StateCatchingUp) {
		t.Errorf("states seen %v, want catching_up among them", seen)
	}

	// New commands: it catches up again and is live at the new end.
	f.place(t, line("SKU-A", 2))
	f.quiesce(t)
	last = f.lastEventSeq(t)
	eventually(t, "live at the new end", func() bool {
		s := mustStatus(t, r)
		return s.State == StateLive && eqSeqs(s.Checkpoints, last) && s.Lag == 0
	})
	stop()
	if s := mustStatus(t, r); s.State != StateStopped || !eqSeqs(s.Checkpoints, last) {
		t.Errorf("after Run returned: %+v", s)
	}
}

func TestStatusIdleStreamIsLive(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	pool := newPool(t)
	r := NewRunner(f.store, pool, quietLog())
	startRunner(t, r)
	eventually(t, "live", func() bool { return mustStatus(t, r).State == StateLive })
	if s := mustStatus(t, r); s.Lag != 0 || !eqSeqs(s.Checkpoints, nil) {
		t.Errorf("idle: %+v", s)
	}
}

func TestStatusInterruptedUntilResumed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	pool := newPool(t)
	ctx := context.Background()
	f.setStock(t, "SKU-A", 5)
	r := NewRunner(f.store, pool, quietLog())
	startRunner(t, r)
	eventually(t, "live", func() bool { return mustStatus(t, r).State == StateLive })

	// Without its checkpoint table the projection cannot resume.
	if _, err := pool.Exec(ctx, `ALTER TABLE rm.checkpoints RENAME TO checkpoints_away`); err != nil {
		t.Fatal(err)
	}
	f.setStock(t, "SKU-A", 6)
	eventually(t, "interrupted", func() bool { return r.progressNow().state == StateInterrupted })
	if _, err := pool.Exec(ctx, `ALTER TABLE rm.checkpoints_away RENAME TO checkpoints`); err != nil {
		t.Fatal(err)
	}
	last := f.lastEventSeq(t)
	eventually(t, "live again", func() bool {
		s := mustStatus(t, r)
		return s.State == StateLive && eqSeqs(s.Checkpoints, last)
	})
}

func TestStatusLagSeconds(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	r := NewRunner(nil, pool, quietLog())
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	r.now = func() time.Time { return at.Add(2500 * time.Millisecond) }
	ev := decoded{env: eventstore.Envelope{OccurredAt: at}}

	r.applied(prepared{evs: []decoded{ev}, info: batchInfo{pending: 7, stored: at.Add(time.Second)}})
	if s := mustStatus(t, r); s.State != StateCatchingUp || s.Lag != 7 || s.LagSeconds != 2.5 {
		t.Errorf("behind: %+v", s)
	}
	// A batch that could not be decoded falls back on the stored time.
	r.applied(prepared{info: batchInfo{pending: 3, stored: at.Add(2 * time.Second)}})
	if s := mustStatus(t, r); s.State != StateCatchingUp || s.Lag != 3 || s.LagSeconds != 0.5 {
		t.Errorf("behind, undecodable: %+v", s)
	}
	r.applied(prepared{evs: []decoded{ev}})
	if s := mustStatus(t, r); s.State != StateLive || s.Lag != 0 || s.LagSeconds != 0 {
		t.Errorf("caught up: %+v", s)
	}
}

func TestStatusCountsUnresolvedDeadLetters(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	pool := newPool(t)
	f.setStock(t, "SKU-A", 10)
	unknown := eventstore.Envelope{Type: "OrderTeleported", SchemaVersion: 1, AggregateID: uuid.NewString(),
		Version: 1, OccurredAt: time.Now().UTC(), Data: json.RawMessage(`{"to":"mars"}`)}
	unknownJSON, _ := json.Marshal(unknown)
	publish(t, f, "orders."+unknown.AggregateID, unknownJSON)
	publish(t, f, "orders."+uuid.NewString(), []byte("{not json"))
	f.setStock(t, "SKU-A", 11)

	r := NewRunner(f.store, pool, quietLog())
	runUntil(t, r, f.lastEventSeq(t))
	if s := mustStatus(t, r); s.DeadLetters != 2 || !eqSeqs(s.Checkpoints, f.lastEventSeq(t)) {
		t.Fatalf("status %+v, want 2 dead letters", s)
	}

	// A resolved one no longer counts.
	ctx := context.Background()
	env := envelope(t, "SKU-R", 1, domain.OnHandSet{SKU: "SKU-R", OnHand: 4, At: time.Now().UTC()})
	var id int64
	err := pool.QueryRow(ctx, `INSERT INTO rm.dead_letters (projection, seq, subject, event_type, error, attempts, envelope)
VALUES ('main', 999999, 'inventory.SKU-R', 'OnHandSet', 'boom', 3, $1::jsonb) RETURNING id`, string(env)).Scan(&id)
	if err != nil {
		t.Fatal(err)
	}
	if s := mustStatus(t, r); s.DeadLetters != 3 {
		t.Errorf("status %+v, want 3 dead letters", s)
	}
	if err := r.Retry(ctx, id); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if s := mustStatus(t, r); s.DeadLetters != 2 {
		t.Errorf("status %+v, want 2 dead letters after a retry", s)
	}
}

package eventstore_test

import (
	"context"
	"encoding/json"
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

// verifyFixture is a store filled by the real command side: one SKU and
// three orders, placed and confirmed by the reservation workers, one of
// them paid, one cancelled. The workers are stopped before it returns, so
// tests can tamper with the stream without the engine writing beside them.
type verifyFixture struct {
	store  *eventstore.Store
	js     jetstream.JetStream
	orders []string
}

func newVerifyFixture(t *testing.T) verifyFixture {
	t.Helper()
	_, nc := testnats.Start(t)
	store := openStore(t, nc)
	app := commands.NewApp(store, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.RunWorkers(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("workers: %v", err)
		}
	}()
	meta := func() commands.Meta { return commands.Meta{CommandID: app.NewID()} }
	if _, err := app.SetOnHand(context.Background(), meta(), "SKU-1", commands.SetOnHand{OnHand: 100}); err != nil {
		t.Fatalf("set on hand: %v", err)
	}
	js, _ := jetstream.New(store.Conn())
	f := verifyFixture{store: store, js: js}
	for range 3 {
		out, err := app.PlaceOrder(context.Background(), meta(), commands.PlaceOrder{CustomerID: "c1", Currency: "USD",
			Lines: []domain.Line{{SKU: "SKU-1", Qty: 1, UnitPriceCents: 1000}}})
		if err != nil {
			t.Fatalf("place order: %v", err)
		}
		id := out.State.ID
		snap, err := app.AwaitReservation(context.Background(), id, 30*time.Second)
		if err != nil || snap.State.Status != domain.StatusConfirmed {
			t.Fatalf("order %s: %s, %v", id, snap.State.Status, err)
		}
		f.orders = append(f.orders, id)
	}
	if _, err := app.PayOrder(context.Background(), meta(), f.orders[0], commands.PayOrder{AmountCents: 1000, PaymentRef: "p"}); err != nil {
		t.Fatalf("pay: %v", err)
	}
	// A fourth event, so that one can go missing between two others.
	if _, err := app.ShipOrder(context.Background(), meta(), f.orders[0], commands.ShipOrder{Carrier: "c", TrackingNumber: "t"}); err != nil {
		t.Fatalf("ship: %v", err)
	}
	if _, err := app.CancelOrder(context.Background(), meta(), f.orders[1], commands.CancelOrder{Reason: "no"}); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	return f
}

// events returns the envelopes of one subject with their stream sequences.
func (f verifyFixture) events(t *testing.T, subject string) ([]uint64, []eventstore.Envelope) {
	t.Helper()
	var seqs []uint64
	var envs []eventstore.Envelope
	err := f.store.History(context.Background(), subject, func(seq uint64, e eventstore.Envelope) error {
		seqs, envs = append(seqs, seq), append(envs, e)
		return nil
	})
	if err != nil {
		t.Fatalf("history of %s: %v", subject, err)
	}
	return seqs, envs
}

// publish stores body on subject past the engine and returns its sequence.
func (f verifyFixture) publish(t *testing.T, subject string, body []byte) uint64 {
	t.Helper()
	_, stored := locate(f.store, subject)
	ack, err := f.js.Publish(context.Background(), stored, body)
	if err != nil {
		t.Fatalf("publish on %s: %v", subject, err)
	}
	return ack.Sequence
}

func (f verifyFixture) verify(t *testing.T) eventstore.VerifyReport {
	t.Helper()
	rep, err := f.store.VerifyChains(context.Background(), nil)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return rep
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// onlyProblem checks that rep names exactly one problem, and returns it.
func onlyProblem(t *testing.T, rep eventstore.VerifyReport) eventstore.Problem {
	t.Helper()
	if rep.OK || len(rep.Problems) != 1 {
		t.Fatalf("want exactly one problem, got ok=%v %+v", rep.OK, rep.Problems)
	}
	return rep.Problems[0]
}

func TestVerifyChains(t *testing.T) {
	t.Parallel()
	f := newVerifyFixture(t)
	var events uint64
	aggregates := map[string]bool{}
	err := f.store.Export(context.Background(), 0, 0, func(_ eventstore.Position, subject string, _ eventstore.Envelope) error {
		events++
		aggregates[subject] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("an untouched store verifies clean", func(t *testing.T) {
		var last, calls uint64
		rep, err := f.store.VerifyChains(context.Background(), func(done uint64) {
			if done <= last {
				t.Errorf("progress went from %d to %d", last, done)
			}
			last, calls = done, calls+1
		})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK || len(rep.Problems) != 0 || rep.Problems == nil {
			t.Fatalf("problems in a clean store: %+v", rep)
		}
		if rep.EventsChecked != events || rep.Aggregates != len(aggregates) || rep.Aggregates != 4 {
			t.Fatalf("checked %d events of %d aggregates, want %d of %d", rep.EventsChecked, rep.Aggregates, events, len(aggregates))
		}
		if last != events || calls != events {
			t.Fatalf("progress ended at %d after %d calls, want %d", last, calls, events)
		}
	})

	// The cases below each tamper with another order, in sequence.
	t.Run("a deleted event shows as a gap at the next one", func(t *testing.T) {
		subject := eventstore.OrderSubjects + "." + f.orders[0]
		seqs, envs := f.events(t, subject)
		if len(envs) < 4 {
			t.Fatalf("only %d events on %s", len(envs), subject)
		}
		name, _ := locate(f.store, subject)
		stream, err := f.js.Stream(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.DeleteMsg(context.Background(), seqs[1]); err != nil {
			t.Fatalf("delete seq %d: %v", seqs[1], err)
		}
		p := onlyProblem(t, f.verify(t))
		want := eventstore.Problem{Subject: subject, AggregateID: f.orders[0], Seq: seqs[2], Version: 3, ExpectedVersion: 2, Kind: eventstore.ProblemGap}
		p.Detail = ""
		if p != want {
			t.Fatalf("got %+v\nwant %+v", p, want)
		}
	})

	t.Run("a forged event with a made-up hash", func(t *testing.T) {
		subject := eventstore.OrderSubjects + "." + f.orders[1]
		_, envs := f.events(t, subject)
		forged := envs[len(envs)-1]
		forged.Version++
		forged.PrevHash = forged.Hash
		forged.Hash = strings.Repeat("ab", 32)
		seq := f.publish(t, subject, mustJSON(t, forged))
		p := onlyProblemAfter(t, f.verify(t), subject)
		if p.Seq != seq || p.Kind != eventstore.ProblemForged || p.Version != forged.Version {
			t.Fatalf("got %+v, want forged at seq %d", p, seq)
		}
	})

	t.Run("a correctly hashed event that does not link", func(t *testing.T) {
		subject := eventstore.OrderSubjects + "." + f.orders[2]
		_, envs := f.events(t, subject)
		forged := envs[len(envs)-1]
		forged.Version++
		forged.Seal(strings.Repeat("0", 64))
		seq := f.publish(t, subject, mustJSON(t, forged))
		p := onlyProblemAfter(t, f.verify(t), subject)
		if p.Seq != seq || p.Kind != eventstore.ProblemForged || p.ExpectedVersion != forged.Version {
			t.Fatalf("got %+v, want forged at seq %d", p, seq)
		}
	})

	t.Run("a replayed old event is out of place", func(t *testing.T) {
		subject := eventstore.InventorySubjects + ".SKU-1"
		_, envs := f.events(t, subject)
		seq := f.publish(t, subject, mustJSON(t, envs[0]))
		p := onlyProblemAfter(t, f.verify(t), subject)
		if p.Seq != seq || p.Kind != eventstore.ProblemOutOfPlace || p.Version != 1 {
			t.Fatalf("got %+v, want out_of_place at seq %d", p, seq)
		}
	})

	t.Run("a message that is no envelope is undecodable", func(t *testing.T) {
		subject := eventstore.OrderSubjects + ".not-an-order"
		seq := f.publish(t, subject, []byte("garbage"))
		p := onlyProblemAfter(t, f.verify(t), subject)
		if p.Seq != seq || p.Kind != eventstore.ProblemUndecodable || p.AggregateID != "not-an-order" {
			t.Fatalf("got %+v, want undecodable at seq %d", p, seq)
		}
	})
}

// onlyProblemAfter returns the one problem on subject, checking that the
// problems found earlier on other subjects are still the only others.
func onlyProblemAfter(t *testing.T, rep eventstore.VerifyReport, subject string) eventstore.Problem {
	t.Helper()
	var found []eventstore.Problem
	for _, p := range rep.Problems {
		if p.Subject == subject {
			found = append(found, p)
		}
	}
	if rep.OK || len(found) != 1 {
		t.Fatalf("want one problem on %s, got ok=%v %+v", subject, rep.OK, rep.Problems)
	}
	return found[0]
}

func TestVerifyChainsStopsWithTheContext(t *testing.T) {
	t.Parallel()
	_, nc := testnats.Start(t)
	store := openStore(t, nc)
	repo := eventstore.NewRepository(store, tallyKind, 16)
	if _, err := repo.Update(context.Background(), "t1", eventstore.UpdateOptions[tally]{CommandID: "c1"}, note("a")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := store.VerifyChains(ctx, nil); err == nil {
		t.Fatal("verify with a canceled context succeeded")
	}
}

package eventstore_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/internal/testnats"
)

// TestLostConnectionEndsReadsAndAppendsInFlight keeps reads (paged direct
// gets of a long history) and appends going on several goroutines, then
// stops nats-server. nats.go leaves a request whose connection dropped
// waiting for its whole timeout (10 s); the store must end every one of
// them at once, as unavailable.
func TestLostConnectionEndsReadsAndAppendsInFlight(t *testing.T) {
	ns, _ := testnats.Start(t)
	// The engine's connection options: reconnect for ever, no buffer.
	nc, _, err := eventstore.Connect(context.Background(), eventstore.ConnectOptions{URL: ns.ClientURL(), Name: "conn-loss"})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	s := openStore(t, nc)
	repo := eventstore.NewRepository(s, tallyKind, 100)
	ctx := context.Background()
	for i := range 4 {
		_, err := repo.Update(ctx, "long", eventstore.UpdateOptions[tally]{CommandID: fmt.Sprintf("seed-%d", i)},
			func(eventstore.Snapshot[tally]) ([]noted, error) {
				return slices.Repeat([]noted{{Note: "n", At: time.Unix(1700000000, 0).UTC()}}, 500), nil
			})
		if err != nil {
			t.Fatalf("seed: %v", err)
		}
	}

	const readers, writers = 8, 8
	type ending struct {
		role string
		at   time.Time
		err  error
	}
	endings := make([]ending, readers+writers)
	var wg sync.WaitGroup
	for i := range readers {
		wg.Go(func() {
			for {
				err := s.History(ctx, "orders.long", func(uint64, eventstore.Envelope) error { return nil })
				if err != nil {
					endings[i] = ending{"read", time.Now(), err}
					return
				}
			}
		})
	}
	for i := range writers {
		wg.Go(func() {
			for n := 0; ; n++ {
				_, err := repo.Update(ctx, fmt.Sprintf("w%d", i), eventstore.UpdateOptions[tally]{CommandID: fmt.Sprintf("w%d-%d", i, n)}, note("x"))
				if err != nil {
					endings[readers+i] = ending{"append", time.Now(), err}
					return
				}
			}
		})
	}
	time.Sleep(500 * time.Millisecond)
	killAt := time.Now()
	ns.Shutdown()
	wg.Wait()

	var worst time.Duration
	unknown := 0
	for i, e := range endings {
		d := e.at.Sub(killAt)
		worst = max(worst, d)
		// The goal is 1 s; the margin is for a busy machine. Without the
		// connection watch it took the 10 s request timeout.
		if d > 5*time.Second {
			t.Errorf("%s %d ended %v after the kill, want within 5s: %v", e.role, i, d, e.err)
		}
		if !errors.Is(e.err, domain.ErrUnavailable) {
			t.Errorf("%s %d ended with %v, want domain.ErrUnavailable", e.role, i, e.err)
		}
		if errors.Is(e.err, domain.ErrOutcomeUnknown) {
			unknown++
			if e.role != "append" {
				t.Errorf("read %d ended with an unknown outcome: %v", i, e.err)
			}
		}
	}
	t.Logf("%d readers and %d appenders all ended within %v of the kill; %d appends of unknown outcome", readers, writers, worst, unknown)
}

package projections

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestABusyProjectionLingersUntilAReadWaits: after a batch of at least
// busyBatch events the next batch stays open for more (here for ten
// minutes, longer than any wait below), a read that starts waiting for a
// token closes it at once, and after a small batch the projection applies
// each event as it comes again.
func TestABusyProjectionLingersUntilAReadWaits(t *testing.T) {
	f := newFixture(t)
	pool := newPool(t)
	// One SKU, so that every event is on one shard: each shard's batches
	// linger on their own.
	const sku = "BUSY-1"
	for i := range busyBatch + 8 {
		f.setStock(t, sku, int64(i))
	}
	r := NewRunner(f.store, pool, quietLog())
	r.linger = 10 * time.Minute
	var (
		mu      sync.Mutex
		batches []int
	)
	r.committed = func(_ uint64, n int) {
		mu.Lock()
		defer mu.Unlock()
		batches = append(batches, n)
	}
	sizes := func() []int {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(batches)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	applied := func(what string) {
		t.Helper()
		want := f.lastEventSeq(t)
		eventually(t, what, func() bool {
			cp, err := Checkpoints(context.Background(), pool, MainProjection)
			return err == nil && covers(cp, want)
		})
	}
	applied("the backlog applied")
	if got := sizes(); len(got) != 1 || got[0] < busyBatch {
		t.Fatalf("the backlog was applied in batches %v, want one of at least %d events", got, busyBatch)
	}

	// Two events half a second apart: a batch that did not linger would
	// end a millisecond after the first.
	f.setStock(t, sku, 100)
	time.Sleep(500 * time.Millisecond)
	f.setStock(t, sku, 101)
	time.Sleep(500 * time.Millisecond)
	if got := sizes(); len(got) != 1 {
		t.Fatalf("batches %v: the batch after a busy one did not linger", got)
	}
	finish := CheckpointReads{Pool: pool, Runner: r}.Await()
	applied("the lingering batch applied once a read waits")
	finish()
	if got := sizes(); !slices.Equal(got[1:], []int{2}) {
		t.Fatalf("batches after the backlog %v, want the two late events in one", got[1:])
	}

	// The last batch held two events: the projection is quiet again, and
	// applies the next event without a read waiting (the linger would
	// outlast eventually's deadline).
	f.setStock(t, sku, 102)
	applied("an event of a quiet projection applied")
	if got := sizes(); !slices.Equal(got[1:], []int{2, 1}) {
		t.Fatalf("batches after the backlog %v, want [2 1]", got[1:])
	}
}

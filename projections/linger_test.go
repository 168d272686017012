package projections

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// TestABusyProjectionLingersUntilAReadWaits: after a batch of at least
// r.busy events the next batch stays open for more (here for ten minutes,
// longer than any wait below), a read that starts waiting for a token
// closes it at once, and after a smaller batch the projection applies each
// event as it comes again. r.busy is 2 here, so that the backlog's last
// batch counts as busy however its delivery is split, and a read waits
// while the backlog is applied, so that no piece of it lingers.
func TestABusyProjectionLingersUntilAReadWaits(t *testing.T) {
	const sku = "BUSY-1"
	f, pool := backlogOf(t, sku, 40)
	r := NewRunner(f.store, pool, quietLog())
	r.linger, r.busy = 10*time.Minute, 2
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
	defer running(t, r)()
	applied := func(what string) {
		t.Helper()
		want := f.lastEventSeq(t)
		eventually(t, what, func() bool {
			cp, err := Checkpoints(context.Background(), pool, MainProjection)
			return err == nil && covers(cp, want)
		})
	}
	// A read waits while the backlog is applied: delivered in two pieces
	// on a loaded machine, its second piece would otherwise linger the
	// whole ten minutes behind the first.
	backlogRead := r.Await()
	applied("the backlog applied")
	backlogRead()
	backlog := sizes()
	if last := backlog[len(backlog)-1]; last < r.busy {
		t.Fatalf("the backlog was applied in batches %v: its last is not busy", backlog)
	}
	after := func() []int { return sizes()[len(backlog):] }

	// Two events half a second apart: a batch that did not linger would
	// end a millisecond after the first.
	f.setStock(t, sku, 100)
	time.Sleep(500 * time.Millisecond)
	f.setStock(t, sku, 101)
	time.Sleep(500 * time.Millisecond)
	if got := after(); len(got) != 0 {
		t.Fatalf("batches %v after the backlog: the batch after a busy one did not linger", got)
	}
	waits := CheckpointReads{Pool: pool, Runner: r}
	finish := waits.Await()
	applied("the lingering batch applied once a read waits")
	// While the read waits, the next event goes alone: a small batch.
	f.setStock(t, sku, 102)
	applied("an event applied while a read waits")
	finish()
	if got := after(); !slices.Equal(got, []int{2, 1}) {
		t.Fatalf("batches after the backlog %v, want [2 1]", got)
	}

	// The last batch held one event: the projection is quiet, and applies
	// the next event at once with no read waiting (a linger would outlast
	// eventually's deadline).
	f.setStock(t, sku, 103)
	applied("an event of a quiet projection applied")
	if got := after(); !slices.Equal(got, []int{2, 1, 1}) {
		t.Fatalf("batches after the backlog %v, want [2 1 1]", got)
	}
}

// TestWithTwoRunnersTellingOneIsEnough: every engine runs a Runner of its
// own on the one database, and a read tells only its own engine's. With
// two runners lingering over the same event, a read that tells one of
// them gets its event applied without the other ending its linger (ten
// minutes here, far longer than eventually waits).
func TestWithTwoRunnersTellingOneIsEnough(t *testing.T) {
	const sku = "BUSY-2"
	f, pool := backlogOf(t, sku, 10)
	a, b := NewRunner(f.store, pool, quietLog()), NewRunner(f.store, pool, quietLog())
	for _, r := range []*Runner{a, b} {
		// Busy after any batch: every batch but a runner's first lingers.
		r.linger, r.busy = 10*time.Minute, 1
		defer running(t, r)()
	}
	applied := func() bool {
		cp, err := Checkpoints(context.Background(), pool, MainProjection)
		return err == nil && covers(cp, f.lastEventSeq(t))
	}
	// Both told while the backlog is applied, so that neither lingers on it.
	doneA, doneB := a.Await(), b.Await()
	eventually(t, "the backlog applied", func() bool { return applied() })
	doneA()
	doneB()

	f.setStock(t, sku, 100)
	time.Sleep(500 * time.Millisecond)
	if applied() {
		t.Fatal("the event after the backlog was applied without a waiting read: neither runner lingered")
	}
	finish := CheckpointReads{Pool: pool, Runner: b}.Await()
	defer finish()
	eventually(t, "the event applied once one runner is told", func() bool { return applied() })
}

// backlogOf stores n events of one SKU, so that every event is on one shard
// (each shard's batches linger on their own), and returns the fixture and
// a database for runners to apply them to.
func backlogOf(t *testing.T, sku string, n int) (*fixture, *pgxpool.Pool) {
	t.Helper()
	f := newFixture(t)
	pool := newPool(t)
	for i := range n {
		f.setStock(t, sku, int64(i))
	}
	return f, pool
}

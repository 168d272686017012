package commands

import (
	"sync"
	"testing"
	"time"
)

// TestRunnersRunEverySKUAtOnceAndAgain checks that a start never waits for
// another SKU's run (each SKU's batches are independent), and that SKUs
// started after the first wave ended, when runners are idle and waiting,
// are run too.
func TestRunnersRunEverySKUAtOnceAndAgain(t *testing.T) {
	var r runners
	for wave := range 3 {
		const skus = 50
		release := make(chan struct{})
		var started sync.WaitGroup
		started.Add(skus)
		var mu sync.Mutex
		ran := map[string]int{}
		run := func(sku string) {
			mu.Lock()
			ran[sku]++
			mu.Unlock()
			started.Done()
			<-release
		}
		for i := range skus {
			r.start(string(rune('A'+i)), run) // must not block while the others run
		}
		waitOrFail(t, &started, "wave %d: every SKU's run started", wave)
		close(release)
		for i := range skus {
			if n := ran[string(rune('A'+i))]; n != 1 {
				t.Fatalf("wave %d: SKU %d ran %d times, want 1", wave, i, n)
			}
		}
	}
}

func waitOrFail(t *testing.T, wg *sync.WaitGroup, what string, args ...any) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out: "+what, args...)
	}
}

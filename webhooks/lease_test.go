package webhooks_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/orderengine/engine/feed"
	"github.com/orderengine/engine/webhooks"
)

// TestOneEngineDeliversAndAnotherTakesOver: two engines share the store
// and the database. The endpoint registered through the first is taken up
// by the second (it reads the endpoints again), but only the holder of the
// endpoint's delivery lease delivers, so no event is sent twice; when the
// first engine stops, the second takes the lease and delivers from the
// saved position on.
func TestOneEngineDeliversAndAnotherTakesOver(t *testing.T) {
	f := start(t) // engine 1: forwarder and webhook service
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	opts := webhooks.Options{MaxAttempts: 3, BaseBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
		Timeout: 300 * time.Millisecond, Refresh: 20 * time.Millisecond}
	second := webhooks.New(f.e.Store, f.pool, log, opts)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = second.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })

	r := newReceiver(t)
	f.register(t, r)
	want := map[string]int{}
	for range 5 {
		id := f.place(t)
		f.cancel(t, id)
		want[id] = 2
	}
	got := r.await(10)

	f.stop() // engine 1 goes, with its forwarder: run one for the store
	fwdCtx, fwdCancel := context.WithCancel(context.Background())
	var fwd sync.WaitGroup
	fwd.Go(func() {
		_ = (&feed.Forwarder{Store: f.e.Store, Log: log, RetryWait: 10 * time.Millisecond}).Run(fwdCtx)
	})
	t.Cleanup(func() { fwdCancel(); fwd.Wait() })
	for range 5 {
		id := f.place(t)
		f.cancel(t, id)
		want[id] = 2
	}
	got = append(got, r.await(10)...)
	cancel()
	wg.Wait() // no delivery is under way any more
	inOrder(t, got, want)
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, n := range r.tries {
		if n != 1 {
			t.Errorf("event %s was sent %d times", id, n)
		}
	}
	if len(r.tries) != 20 {
		t.Errorf("%d events sent, want 20", len(r.tries))
	}
}

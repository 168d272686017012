package webhooks_test

import (
	"testing"
	"time"

	"github.com/orderengine/engine/internal/enginetest"
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
	opts := testOptions
	opts.Refresh = 20 * time.Millisecond
	stopSecond := enginetest.Run(t, webhooks.New(f.e.Store, f.pool, quietLog, opts).Run)

	r := newReceiver(t)
	f.register(t, r)
	want := map[string]int{}
	f.placeAndCancel(t, 5, want)
	got := r.await(10)

	f.stop() // engine 1 goes, with its forwarder: run one for the store
	enginetest.Run(t, f.newForwarder().Run)
	f.placeAndCancel(t, 5, want)
	got = append(got, r.await(10)...)
	stopSecond() // no delivery is under way any more
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

package webhooks_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderengine/engine/commands"
	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/feed"
	"github.com/orderengine/engine/internal/enginetest"
	"github.com/orderengine/engine/internal/pglocal"
	"github.com/orderengine/engine/webhooks"
)

// TestMain stops the private Postgres the tests start.
func TestMain(m *testing.M) { os.Exit(pglocal.Main(m)) }

// receiver is a real HTTP endpoint whose answer to each attempt the test
// decides: answer returns the status to send, or 0 to hang until the
// engine gives up on the request (a timeout).
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	secret string
	answer func(ev feed.Event, attempt int) int
	tries  map[string]int
	got    chan feed.Event
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	r := &receiver{t: t, tries: map[string]int{}, got: make(chan feed.Event, 1000),
		answer: func(feed.Event, int) int { return http.StatusOK }}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return
	}
	r.mu.Lock()
	secret, answer := r.secret, r.answer
	r.mu.Unlock()
	if err := webhooks.Verify(secret, req.Header.Get(webhooks.HeaderSignature), body, time.Now(), 5*time.Minute); err != nil {
		r.t.Errorf("delivery with a bad signature: %v", err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var ev feed.Event
	if err := json.Unmarshal(body, &ev); err != nil || req.Header.Get(webhooks.HeaderEventID) != ev.ID {
		r.t.Errorf("delivery %s is not the event it says (%v)", body, err)
	}
	r.mu.Lock()
	r.tries[ev.ID]++
	attempt := r.tries[ev.ID]
	r.mu.Unlock()
	status := answer(ev, attempt)
	if status == 0 {
		<-req.Context().Done() // the engine's timeout ends it
		return
	}
	w.WriteHeader(status)
	if status/100 == 2 {
		r.got <- ev
	}
}

func (r *receiver) setAnswer(f func(ev feed.Event, attempt int) int) {
	r.mu.Lock()
	r.answer = f
	r.mu.Unlock()
}

// await returns the next n events the receiver accepted.
func (r *receiver) await(n int) []feed.Event {
	r.t.Helper()
	var out []feed.Event
	timeout := time.After(2 * time.Minute)
	for len(out) < n {
		select {
		case ev := <-r.got:
			out = append(out, ev)
		case <-timeout:
			r.t.Fatalf("the receiver got %d of %d events: %v", len(out), n, out)
		}
	}
	return out
}

type fixture struct {
	e    *enginetest.Engine
	pool *pgxpool.Pool
	app  *commands.App
	svc  *webhooks.Service
	// stop ends the forwarder and the service and waits for them.
	stop func()
}

// start runs an engine's command side, the feed forwarder and the webhook
// service, with attempts and backoff made short.
func start(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{e: enginetest.Start(t, time.Hour), pool: enginetest.Postgres(t)}
	f.app = f.e.App
	f.restart(t)
	return f
}

// quietLog discards what the services log.
var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// testOptions make attempts and backoff short.
var testOptions = webhooks.Options{MaxAttempts: 3, BaseBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Timeout: 300 * time.Millisecond}

// newForwarder is a feed forwarder for the fixture's store.
func (f *fixture) newForwarder() *feed.Forwarder {
	return &feed.Forwarder{Store: f.e.Store, Log: quietLog, RetryWait: 10 * time.Millisecond}
}

// placeAndCancel places n orders and cancels each, adding their two
// events each to want.
func (f *fixture) placeAndCancel(t *testing.T, n int, want map[string]int) {
	t.Helper()
	for range n {
		id := f.place(t)
		f.cancel(t, id)
		want[id] = 2
	}
}

// restart starts a new forwarder and webhook service, as an engine's
// start does; the previous ones must have been stopped.
func (f *fixture) restart(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f.svc = webhooks.New(f.e.Store, f.pool, quietLog, testOptions)
	fwd := f.newForwarder()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = fwd.Run(ctx) }()
	go func() { defer wg.Done(); _ = f.svc.Run(ctx) }()
	var once sync.Once
	f.stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(f.stop)
}

// TestDeliveryResumesAfterARestart: events stored while the forwarder and
// the webhook workers are down are delivered after they start again, none
// twice, each order's in order.
func TestDeliveryResumesAfterARestart(t *testing.T) {
	f := start(t)
	r := newReceiver(t)
	f.register(t, r)
	want := map[string]int{}
	f.placeAndCancel(t, 3, want)
	got := r.await(6)
	f.stop()
	f.placeAndCancel(t, 3, want)
	f.restart(t)
	got = append(got, r.await(6)...)
	// A last event marks the end: nothing came twice before it.
	last := f.place(t)
	want[last] = 1
	got = append(got, r.await(1)...)
	inOrder(t, got, want)
}

func (f *fixture) register(t *testing.T, r *receiver, types ...string) webhooks.Endpoint {
	t.Helper()
	ep, secret, err := f.svc.Register(context.Background(), webhooks.Registration{URL: r.srv.URL, EventTypes: types})
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	r.secret = secret
	r.mu.Unlock()
	return ep
}

func (f *fixture) place(t *testing.T) string {
	t.Helper()
	res, err := f.app.PlaceOrder(context.Background(), commands.Meta{CommandID: f.app.NewID()}, commands.PlaceOrder{CustomerID: "c", Currency: "EUR",
		Lines: []domain.Line{{SKU: "sku-1", Qty: 1, UnitPriceCents: 100}}})
	if err != nil {
		t.Fatal(err)
	}
	return res.State.ID
}

func (f *fixture) cancel(t *testing.T, id string) {
	t.Helper()
	if _, err := f.app.CancelOrder(context.Background(), commands.Meta{CommandID: f.app.NewID()}, id, commands.CancelOrder{Reason: "test"}); err != nil {
		t.Fatal(err)
	}
}

// inOrder checks that got holds each order's events exactly once and in
// order of their version, and that every order of want is complete.
func inOrder(t *testing.T, got []feed.Event, want map[string]int) {
	t.Helper()
	last := map[string]uint64{}
	seen := map[string]bool{}
	for _, ev := range got {
		if seen[ev.ID] {
			t.Errorf("event %s delivered twice", ev.ID)
		}
		seen[ev.ID] = true
		if ev.OrderVersion <= last[ev.OrderID] {
			t.Errorf("order %s: version %d delivered after %d", ev.OrderID, ev.OrderVersion, last[ev.OrderID])
		}
		last[ev.OrderID] = ev.OrderVersion
	}
	for id, n := range want {
		c := 0
		for _, ev := range got {
			if ev.OrderID == id {
				c++
			}
		}
		if c != n {
			t.Errorf("order %s: %d events delivered, want %d", id, c, n)
		}
	}
}

// TestDeliveryRetriesThroughFailuresAndTimeouts: every event's first
// attempt gets a 500 and its second hangs past the timeout; the third is
// accepted. Every event arrives, once, in order per order, and nothing is
// dead-lettered.
func TestDeliveryRetriesThroughFailuresAndTimeouts(t *testing.T) {
	f := start(t)
	r := newReceiver(t)
	r.setAnswer(func(_ feed.Event, attempt int) int {
		switch attempt {
		case 1:
			return http.StatusInternalServerError
		case 2:
			return 0
		}
		return http.StatusNoContent
	})
	ep := f.register(t, r)
	want := map[string]int{}
	for i := range 8 {
		id := f.place(t)
		want[id] = 1
		if i%2 == 0 {
			f.cancel(t, id)
			want[id] = 2
		}
	}
	inOrder(t, r.await(12), want)
	dls, err := f.svc.DeadLetters(context.Background(), ep.ID)
	if err != nil || len(dls) != 0 {
		t.Fatalf("dead letters %v, %v; want none", dls, err)
	}
}

// TestDeadLetterParksTheOrderUntilRedelivered: while the receiver is
// down, each order's first event is dead-lettered after its attempts and
// the order's later events are parked behind it, never delivered past it,
// even once the receiver is back; other orders go on. A redelivery while
// still down keeps every letter; once the receiver is back, one delivers
// every order's events in order and empties the list.
func TestDeadLetterParksTheOrderUntilRedelivered(t *testing.T) {
	f := start(t)
	r := newReceiver(t)
	var down sync.Map
	down.Store("down", true)
	r.setAnswer(func(feed.Event, int) int {
		if _, ok := down.Load("down"); ok {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	ep := f.register(t, r)
	ctx := context.Background()
	letters := func() []webhooks.DeadLetter {
		t.Helper()
		dls, err := f.svc.DeadLetters(ctx, ep.ID)
		if err != nil {
			t.Fatal(err)
		}
		return dls
	}
	type letter struct {
		order, typ string
		parked     bool
		attempts   int
	}
	waitLetters := func(want ...letter) {
		t.Helper()
		var got []letter
		waitFor(t, "dead letters", func() bool {
			got = got[:0]
			for _, d := range letters() {
				got = append(got, letter{d.OrderID, d.EventType, d.Parked, d.Attempts})
			}
			if len(got) != len(want) {
				return false
			}
			for i := range want {
				if got[i] != want[i] {
					return false
				}
			}
			return true
		}, func() any { return got })
	}

	a := f.place(t)
	f.cancel(t, a)
	b := f.place(t)
	waitLetters(letter{a, feed.TypeOrderPlaced, false, 3}, letter{a, feed.TypeOrderCancelled, true, 0}, letter{b, feed.TypeOrderPlaced, false, 3})

	// A redelivery while still down tries each order's first letter
	// again and leaves everything where it was.
	if n, err := f.svc.Redeliver(ctx, ep.ID); err != nil || n != 3 {
		t.Fatalf("redeliver: %d, %v", n, err)
	}
	waitLetters(letter{a, feed.TypeOrderPlaced, false, 6}, letter{a, feed.TypeOrderCancelled, true, 0}, letter{b, feed.TypeOrderPlaced, false, 6})

	// Back up: a new order goes through, but b's next event is parked
	// behind b's first, not delivered past it.
	down.Delete("down")
	c := f.place(t)
	f.cancel(t, b)
	if got := r.await(1); got[0].OrderID != c {
		t.Fatalf("delivered %+v, want only c's placement", got)
	}
	waitLetters(letter{a, feed.TypeOrderPlaced, false, 6}, letter{a, feed.TypeOrderCancelled, true, 0},
		letter{b, feed.TypeOrderPlaced, false, 6}, letter{b, feed.TypeOrderCancelled, true, 0})

	if n, err := f.svc.Redeliver(ctx, ep.ID); err != nil || n != 4 {
		t.Fatalf("redeliver: %d, %v", n, err)
	}
	inOrder(t, r.await(4), map[string]int{a: 2, b: 2})
	waitLetters()
	// The list is empty: b's next event goes straight through.
	f.place(t)
	if got := r.await(1); got[0].OrderID == a || got[0].OrderID == b {
		t.Fatalf("delivered %+v again", got)
	}
}

// waitFor polls cond until it holds, failing after two minutes with what
// state returns.
func waitFor(t *testing.T, what string, cond func() bool, state func() any) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s never reached the expected state: %+v", what, state())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

package feed_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/orderengine/engine/commands"
	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/feed"
	"github.com/orderengine/engine/internal/enginetest"
)

// placeAndCancel places n orders and cancels every second one, returning
// the events each order must have in the feed, in order.
func placeAndCancel(t *testing.T, app *commands.App, n int) map[string][]string {
	t.Helper()
	ctx := context.Background()
	want := map[string][]string{}
	for i := range n {
		res, err := app.PlaceOrder(ctx, commands.Meta{CommandID: app.NewID()}, commands.PlaceOrder{CustomerID: "c", Currency: "EUR",
			Lines: []domain.Line{{SKU: "sku-1", Qty: 1, UnitPriceCents: 100}}})
		if err != nil {
			t.Fatal(err)
		}
		id := res.State.ID
		want[id] = []string{feed.TypeOrderPlaced}
		if i%2 == 0 {
			if _, err := app.CancelOrder(ctx, commands.Meta{CommandID: app.NewID()}, id, commands.CancelOrder{Reason: "test"}); err != nil {
				t.Fatal(err)
			}
			want[id] = append(want[id], feed.TypeOrderCancelled)
		}
	}
	return want
}

// startForwarder runs a forwarder until the returned stop is called.
func startForwarder(t *testing.T, store *eventstore.Store, batch int) (stop func()) {
	t.Helper()
	f := &feed.Forwarder{Store: store, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Batch: batch, RetryWait: 10 * time.Millisecond}
	return enginetest.Run(t, f.Run)
}

// readFeed reads the feed from its start until it holds n messages.
func readFeed(t *testing.T, store *eventstore.Store, n int) []feed.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for store.OpenFeed(ctx) != nil {
		time.Sleep(10 * time.Millisecond)
	}
	r, err := store.ReadFeed(ctx, 1, 256)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	var out []feed.Event
	for len(out) < n {
		e, err := r.Next(ctx)
		if err != nil {
			t.Fatalf("after %d of %d feed messages: %v", len(out), n, err)
		}
		var ev feed.Event
		if err := json.Unmarshal(e.Data, &ev); err != nil {
			t.Fatal(err)
		}
		if e.Header.Get("Nats-Msg-Id") != ev.ID || e.Subject != feed.Subject(ev) || e.Header.Get(feed.HeaderType) != ev.Type {
			t.Errorf("message %d: subject %s, headers %v for event %s %s", e.Seq, e.Subject, e.Header, ev.ID, ev.Type)
		}
		out = append(out, ev)
	}
	return out
}

// checkFeed checks that the feed holds exactly want, each order's events
// once and in order.
func checkFeed(t *testing.T, got []feed.Event, want map[string][]string) {
	t.Helper()
	seen := map[string]bool{}
	byOrder := map[string][]feed.Event{}
	for _, ev := range got {
		if seen[ev.ID] {
			t.Errorf("event %s twice in the feed", ev.ID)
		}
		seen[ev.ID] = true
		byOrder[ev.OrderID] = append(byOrder[ev.OrderID], ev)
	}
	for id, types := range want {
		evs := byOrder[id]
		if len(evs) != len(types) {
			t.Errorf("order %s: %d events in the feed, want %d", id, len(evs), len(types))
			continue
		}
		for i, ev := range evs {
			if ev.Type != types[i] || (i > 0 && ev.OrderVersion <= evs[i-1].OrderVersion) {
				t.Errorf("order %s event %d: %s v%d, want %s after v%d", id, i, ev.Type, ev.OrderVersion, types[i], evs[max(i-1, 0)].OrderVersion)
			}
		}
	}
	if len(byOrder) != len(want) {
		t.Errorf("%d orders in the feed, want %d", len(byOrder), len(want))
	}
}

func count(want map[string][]string) int {
	n := 0
	for _, ts := range want {
		n += len(ts)
	}
	return n
}

// TestForwarderResumesWithoutLossOrDuplicates forwards every order event
// into the feed, in order per order, and after a restart goes on from
// where it stopped: the feed's own last message is its checkpoint.
func TestForwarderResumesWithoutLossOrDuplicates(t *testing.T) {
	e := enginetest.Start(t, time.Hour)
	want := placeAndCancel(t, e.App, 30)
	stop := startForwarder(t, e.Store, 7)
	checkFeed(t, readFeed(t, e.Store, count(want)), want)
	stop()

	more := placeAndCancel(t, e.App, 20)
	for id, ts := range more {
		want[id] = ts
	}
	startForwarder(t, e.Store, 0)
	got := readFeed(t, e.Store, count(want))
	checkFeed(t, got, want)
	// Nothing beyond: a last order marks the end, and must come right
	// after what was expected.
	last := placeAndCancel(t, e.App, 1)
	for id, ts := range last {
		want[id] = ts
	}
	checkFeed(t, readFeed(t, e.Store, count(want)), want)
}

// TestTwoForwardersForwardEachEventOnce: two engines run a forwarder each
// on one store. Each batch expects the feed's last sequence its forwarder
// knows, so the slower one's batch is refused and it resumes from the
// feed: every event is in the feed once, each order's in order.
func TestTwoForwardersForwardEachEventOnce(t *testing.T) {
	e := enginetest.Start(t, time.Hour)
	startForwarder(t, e.Store, 3)
	startForwarder(t, e.Store, 5)
	want := placeAndCancel(t, e.App, 40)
	// A last order marks the end: nothing may come twice before it.
	for id, ts := range placeAndCancel(t, e.App, 1) {
		want[id] = ts
	}
	checkFeed(t, readFeed(t, e.Store, count(want)), want)
}

// TestAStaleFeedBatchIsRefused: a batch that expects a feed sequence the
// feed has moved past is refused as a conflict, even with message ids the
// feed has never seen (a forwarder late by more than the duplicate
// window).
func TestAStaleFeedBatchIsRefused(t *testing.T) {
	e := enginetest.Start(t, time.Hour)
	ctx := context.Background()
	if err := e.Store.OpenFeed(ctx); err != nil {
		t.Fatal(err)
	}
	msg := func(id string) []eventstore.FeedMessage {
		return []eventstore.FeedMessage{{Subject: "feed.v1.order." + id + ".placed", ID: id + ":1", Data: []byte(`{}`)}}
	}
	last, err := e.Store.PublishFeed(ctx, msg("a"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Store.PublishFeed(ctx, msg("b"), last); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Store.PublishFeed(ctx, msg("c"), last); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("a batch after a stale sequence: %v, want a conflict", err)
	}
	if head, err := e.Store.FeedHead(ctx); err != nil || head != last+1 {
		t.Errorf("feed head %d (%v), want %d: the stale batch must store nothing", head, err, last+1)
	}
}

// TestAForwarderYieldsWhileTheWritePathRunsBehind: while Yield says the
// write path needs the machine, nothing is published, however many events
// wait; once it no longer does, every event goes into the feed, once and
// in order.
func TestAForwarderYieldsWhileTheWritePathRunsBehind(t *testing.T) {
	e := enginetest.Start(t, time.Hour)
	ctx := context.Background()
	var behind atomic.Bool
	behind.Store(true)
	f := &feed.Forwarder{Store: e.Store, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), RetryWait: 10 * time.Millisecond,
		Yield: behind.Load}
	enginetest.Run(t, f.Run)
	want := placeAndCancel(t, e.App, 20)
	time.Sleep(time.Second) // ten times the linger and the yield's poll
	for e.Store.OpenFeed(ctx) != nil {
		time.Sleep(10 * time.Millisecond)
	}
	if head, err := e.Store.FeedHead(ctx); err != nil || head != 0 {
		t.Fatalf("feed head %d (%v) while the forwarder yields, want 0: nothing published", head, err)
	}
	behind.Store(false)
	checkFeed(t, readFeed(t, e.Store, count(want)), want)
}

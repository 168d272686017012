package eventstore_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orderengine/engine/commands"
	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/internal/enginetest"
)

// TestFeedReaderReadsTheFeedAndNothingElse starts the embedded server as
// the engine does without ENGINE_NATS_LISTEN, stores events and feed
// messages, and restarts it listening, with a feed reader: the store's
// streams are where they were, the reader consumes the feed through its
// durable consumer, and it is refused publishing into the event store,
// JetStream administration, and answers redirected into the store.
func TestFeedReaderReadsTheFeedAndNothingElse(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ns, err := eventstore.StartEmbedded(eventstore.EmbeddedOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(ns.ClientURL(), nats.InProcessServer(ns))
	if err != nil {
		t.Fatal(err)
	}
	store := enginetest.OpenStore(t, nc)
	app := enginetest.NewApp(store, time.Hour)
	placeSome(t, app, 3)
	before, err := store.LastSeqs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.OpenFeed(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		id := string(rune('a' + i))
		if _, err := store.PublishFeed(ctx, []eventstore.FeedMessage{{Subject: "feed.v1.order." + id + ".placed", ID: id + ":1", Data: []byte(`{}`)}}, uint64(i)); err != nil {
			t.Fatal(err)
		}
	}
	store.Close()
	nc.Close()
	ns.Shutdown()
	ns.WaitForShutdown()

	reader := eventstore.FeedAccess{User: "erp", Password: "a-long-feed-password"}
	enginePassword := "engine-password-of-this-start"
	ns, err = eventstore.StartEmbedded(eventstore.EmbeddedOptions{Dir: dir, Listen: "127.0.0.1:-1", Feed: &reader, EnginePassword: enginePassword})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	nc, err = nats.Connect(ns.ClientURL(), nats.InProcessServer(ns), nats.UserInfo(eventstore.EngineUser, enginePassword))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	store = enginetest.OpenStore(t, nc)
	after, err := store.LastSeqs(ctx)
	if err != nil || len(after) != len(before) {
		t.Fatalf("after the restart: %v, %v", after, err)
	}
	for k := range before {
		if after[k] != before[k] {
			t.Fatalf("shard %d: last sequence %d after the restart, %d before", k, after[k], before[k])
		}
	}
	if err := store.EnsureFeedConsumer(ctx, reader.User); err != nil {
		t.Fatal(err)
	}

	for _, creds := range []nats.Option{nats.UserInfo(reader.User, "wrong-password-entirely"), nats.UserInfo(eventstore.EngineUser, "guess")} {
		if c, err := nats.Connect(ns.ClientURL(), creds); err == nil {
			c.Close()
			t.Fatal("connected with a wrong password")
		}
	}

	violations := make(chan error, 16)
	fc, err := nats.Connect(ns.ClientURL(), nats.UserInfo(reader.User, reader.Password),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { violations <- err }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fc.Close)
	fjs, err := jetstream.NewWithAPIPrefix(fc, eventstore.FeedAPIPrefix)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := fjs.Consumer(ctx, eventstore.FeedStream, reader.User)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(3)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for m := range batch.Messages() {
		n++
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatalf("ack: %v", err)
		}
	}
	if n != 3 {
		t.Fatalf("the reader fetched %d of 3 feed messages (%v)", n, batch.Error())
	}

	for _, subject := range []string{"orders.injected", "$JS.API.STREAM.DELETE." + store.Stream(0), "feed.v1.order.x.paid"} {
		if err := fc.Publish(subject, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
		err := <-violations
		if !strings.Contains(strings.ToLower(err.Error()), "permissions violation") || !strings.Contains(err.Error(), subject) {
			t.Fatalf("publishing to %s: %v, want a permissions violation", subject, err)
		}
	}
	// An answer redirected to an event subject goes to the reader's own
	// account, where nothing stores it.
	info := feedAPISubject("CONSUMER.INFO." + eventstore.FeedStream + "." + reader.User)
	if err := fc.PublishRequest(info, "orders.injected", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := fc.Request(info, nil, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	now, err := store.LastSeqs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for k := range before {
		if now[k] != before[k] {
			t.Fatalf("shard %d: last sequence %d, %d before the reader came", k, now[k], before[k])
		}
	}
}

// placeSome places n orders through app.
func placeSome(t *testing.T, app *commands.App, n int) {
	t.Helper()
	for range n {
		_, err := app.PlaceOrder(context.Background(), commands.Meta{CommandID: app.NewID()}, commands.PlaceOrder{CustomerID: "c", Currency: "EUR",
			Lines: []domain.Line{{SKU: "sku-1", Qty: 1, UnitPriceCents: 100}}})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func feedAPISubject(rest string) string { return eventstore.FeedAPIPrefix + "." + rest }

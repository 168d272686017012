package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/feed"
	"github.com/orderengine/engine/internal/pglocal"
	"github.com/orderengine/engine/webhooks"
)

// TestWebhookReceivesTheFeed registers a webhook through the admin API of
// a whole engine and follows an order through it: the receiver gets the
// types it asked for, signed, in order; then the endpoint is removed.
func TestWebhookReceivesTheFeed(t *testing.T) {
	var mu sync.Mutex
	secret := ""
	got := make(chan feed.Event, 16)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		s := secret
		mu.Unlock()
		if err := webhooks.Verify(s, r.Header.Get(webhooks.HeaderSignature), body, time.Now(), 5*time.Minute); err != nil {
			t.Errorf("bad signature: %v", err)
		}
		var ev feed.Event
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Errorf("delivery %s: %v", body, err)
		}
		got <- ev
	}))
	t.Cleanup(recv.Close)

	base, _, _ := startEngine(t, map[string]string{
		"ENGINE_HTTP_ADDR":  "127.0.0.1:0",
		"ENGINE_DATA_DIR":   t.TempDir(),
		"DATABASE_URL":      pglocal.ForTest(t),
		"ENGINE_API_TOKENS": "c:client,a:admin",
	})
	c := engineClient{t: t, base: base}
	if a := c.do("POST", "/v1/admin/webhooks", "c", `{"url":"`+recv.URL+`"}`, nil); a.status != http.StatusForbidden {
		t.Fatalf("a client registered a webhook: %d %v", a.status, a.body)
	}
	if a := c.do("POST", "/v1/admin/webhooks", "a", `{"url":"ftp://x","event_types":["order.teleported"]}`, nil); a.status != http.StatusUnprocessableEntity {
		t.Fatalf("bad registration: %d %v", a.status, a.body)
	}
	a := c.do("POST", "/v1/admin/webhooks", "a", `{"url":"`+recv.URL+`","event_types":["order.placed","order.confirmed","order.paid"]}`, nil)
	if a.status != http.StatusCreated || a.body["secret"] == nil {
		t.Fatalf("register: %d %v", a.status, a.body)
	}
	mu.Lock()
	secret = a.body["secret"].(string)
	mu.Unlock()
	id := a.body["id"].(string)

	c.do("PUT", "/v1/inventory/HOOK", "a", `{"on_hand": 5}`, nil)
	placed := c.do("POST", "/v1/orders", "c", `{"customer_id":"hook","currency":"EUR","lines":[{"sku":"HOOK","qty":2,"unit_price_cents":300}]}`,
		map[string]string{"Prefer": "wait=5"})
	if placed.status != http.StatusCreated || placed.body["status"] != "confirmed" {
		t.Fatalf("place: %d %v", placed.status, placed.body)
	}
	order := placed.body["order_id"].(string)
	if p := c.do("POST", "/v1/orders/"+order+"/payment", "c", `{"amount_cents":600,"payment_ref":"psp-1"}`, nil); p.status != http.StatusOK {
		t.Fatalf("pay: %d %v", p.status, p.body)
	}
	for _, want := range []string{feed.TypeOrderPlaced, feed.TypeOrderConfirmed, feed.TypeOrderPaid} {
		ev := <-got
		if ev.Type != want || ev.OrderID != order {
			t.Fatalf("received %s of %s, want %s of %s", ev.Type, ev.OrderID, want, order)
		}
	}

	if l := c.do("GET", "/v1/admin/webhooks", "a", "", nil); l.status != http.StatusOK || len(l.body["webhooks"].([]any)) != 1 ||
		l.body["webhooks"].([]any)[0].(map[string]any)["secret"] != nil {
		t.Fatalf("list: %d %v", l.status, l.body)
	}
	if d := c.do("GET", "/v1/admin/webhooks/"+id+"/dead-letters", "a", "", nil); d.status != http.StatusOK || len(d.body["dead_letters"].([]any)) != 0 {
		t.Fatalf("dead letters: %d %v", d.status, d.body)
	}
	if d := c.do("DELETE", "/v1/admin/webhooks/"+id, "a", "", nil); d.status != http.StatusNoContent {
		t.Fatalf("delete: %d %v", d.status, d.body)
	}
	if g := c.do("GET", "/v1/admin/webhooks/"+id, "a", "", nil); g.status != http.StatusNotFound {
		t.Fatalf("get after delete: %d %v", g.status, g.body)
	}
}

// freeAddr returns a loopback address nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// TestFeedReaderConsumesOverENGINE_NATS_LISTEN starts an engine whose
// embedded NATS listens for a feed reader: the reader consumes an order's
// events from its durable consumer over TCP and is refused publishing
// into the event store.
func TestFeedReaderConsumesOverENGINE_NATS_LISTEN(t *testing.T) {
	listen := freeAddr(t)
	base, stdout, _ := startEngine(t, map[string]string{
		"ENGINE_HTTP_ADDR":     "127.0.0.1:0",
		"ENGINE_DATA_DIR":      t.TempDir(),
		"DATABASE_URL":         pglocal.ForTest(t),
		"ENGINE_API_TOKENS":    "c:client,a:admin",
		"ENGINE_NATS_LISTEN":   listen,
		"ENGINE_FEED_USER":     "erp",
		"ENGINE_FEED_PASSWORD": "erp-password-long-enough",
	})
	if !strings.Contains(stdout.String(), "feed readers: nats://"+listen+" as user erp") {
		t.Errorf("stdout does not say how to read the feed:\n%s", stdout.String())
	}
	c := engineClient{t: t, base: base}
	placed := c.do("POST", "/v1/orders", "c", `{"customer_id":"erp","currency":"EUR","lines":[{"sku":"NONE","qty":1,"unit_price_cents":100}]}`, nil)
	if placed.status != http.StatusCreated && placed.status != http.StatusAccepted {
		t.Fatalf("place: %d %v", placed.status, placed.body)
	}
	order := placed.body["order_id"].(string)

	violations := make(chan error, 4)
	nc, err := nats.Connect("nats://"+listen, nats.UserInfo("erp", "erp-password-long-enough"),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { violations <- err }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.NewWithAPIPrefix(nc, eventstore.FeedAPIPrefix)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.Consumer(context.Background(), eventstore.FeedStream, "erp")
	if err != nil {
		t.Fatal(err)
	}
	for {
		m, err := cons.Next()
		if err != nil {
			t.Fatal(err)
		}
		var ev feed.Event
		if err := json.Unmarshal(m.Data(), &ev); err != nil {
			t.Fatal(err)
		}
		if err := m.Ack(); err != nil {
			t.Fatal(err)
		}
		if ev.OrderID == order && ev.Type == feed.TypeOrderPlaced {
			if m.Subject() != feed.Subject(ev) || m.Headers().Get("Nats-Msg-Id") != ev.ID {
				t.Errorf("message %s %v for event %+v", m.Subject(), m.Headers(), ev)
			}
			break
		}
	}
	if err := nc.Publish("orders."+order, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if err := <-violations; !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
		t.Fatalf("publishing into the event store: %v, want a permissions violation", err)
	}
}

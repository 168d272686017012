package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

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

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// engineClient talks to a real engine over HTTP (run, with its embedded
// NATS, reservation processors, saga and projection on a real Postgres).
type engineClient struct {
	t    *testing.T
	base string
}

// engineAnswer is one response: status, headers, the body decoded as a
// JSON object (nil when it is not one) and as it came.
type engineAnswer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (c engineClient) do(method, path, token, body string, header map[string]string) engineAnswer {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return engineAnswer{status: resp.StatusCode, header: resp.Header, body: out, raw: string(raw)}
}

// want fails unless a has status and, for a problem, code and exactly the
// error fields given.
func (c engineClient) want(what string, a engineAnswer, status int, code string, fields ...string) {
	c.t.Helper()
	if a.status != status {
		c.t.Fatalf("%s: %d %s, want %d", what, a.status, a.raw, status)
	}
	if code == "" {
		return
	}
	errs, _ := a.body["errors"].(map[string]any)
	if a.body["code"] != code || len(errs) != len(fields) || !strings.HasPrefix(a.header.Get("Content-Type"), "application/problem+json") {
		c.t.Fatalf("%s: %s, want code %s naming %v", what, a.raw, code, fields)
	}
	for _, f := range fields {
		if _, ok := errs[f]; !ok {
			c.t.Fatalf("%s: %s does not name %s", what, a.raw, f)
		}
	}
}

// TestRefundsAndReturnsThroughTheAPI pays an order, refunds it partially
// twice, is refused beyond what was paid, returns a line after delivery,
// and reads it all back from the read model, the audit trail and the
// dashboard; the read models still equal a fresh replay.
func TestRefundsAndReturnsThroughTheAPI(t *testing.T) {
	base, _, _ := startEngine(t, dashboardEnv(t))
	c := engineClient{t: t, base: base}
	path := func(id, action string) string { return "/v1/orders/" + id + "/" + action }

	c.want("set stock", c.do("PUT", "/v1/inventory/MUG", tokAdmin, `{"on_hand": 10}`, nil), 200, "")
	c.want("set stock", c.do("PUT", "/v1/inventory/TEA", tokAdmin, `{"on_hand": 10}`, nil), 200, "")

	t.Run("an unknown currency is a 422 naming currency", func(t *testing.T) {
		a := c.do("POST", "/v1/orders", tokClient, `{"customer_id":"c","currency":"XYZ","lines":[{"sku":"MUG","qty":1,"unit_price_cents":1}]}`, nil)
		c.want("place in XYZ", a, 422, "validation_failed", "currency")
	})

	placed := c.do("POST", "/v1/orders", tokClient,
		`{"customer_id":"refunds","currency":"BHD","lines":[{"sku":"MUG","qty":2,"unit_price_cents":1500},{"sku":"TEA","qty":3,"unit_price_cents":2000}]}`,
		map[string]string{"Prefer": "wait=10"})
	c.want("place", placed, 201, "")
	if placed.body["status"] != "confirmed" || placed.body["total_cents"] != 9000.0 {
		t.Fatalf("placed: %s", placed.raw)
	}
	id := placed.body["order_id"].(string)

	c.want("refund before payment", c.do("POST", path(id, "refunds"), tokClient, `{"amount_cents":1,"reason":"x"}`, nil), 409, "invalid_transition")
	c.want("pay", c.do("POST", path(id, "payment"), tokClient, `{"amount_cents":9000,"payment_ref":"psp-1"}`, nil), 200, "")

	first := c.do("POST", path(id, "refunds"), tokClient, `{"amount_cents":1000,"reason":"late delivery"}`,
		map[string]string{"Idempotency-Key": "refund-1"})
	c.want("first refund", first, 200, "")
	if first.body["refunded_cents"] != 1000.0 || first.body["status"] != "paid" {
		t.Fatalf("first refund: %s", first.raw)
	}
	t.Run("a refund retried with its Idempotency-Key is stored once", func(t *testing.T) {
		again := c.do("POST", path(id, "refunds"), tokClient, `{"amount_cents":1000,"reason":"late delivery"}`,
			map[string]string{"Idempotency-Key": "refund-1"})
		c.want("replayed refund", again, 200, "")
		if again.header.Get("Idempotent-Replayed") != "true" || again.raw != first.raw {
			t.Fatalf("replay: %s %v, first %s", again.raw, again.header, first.raw)
		}
		other := c.do("POST", path(id, "refunds"), tokClient, `{"amount_cents":999,"reason":"late delivery"}`,
			map[string]string{"Idempotency-Key": "refund-1"})
		c.want("key reused", other, 422, "idempotency_key_reused")
	})
	t.Run("a refund against a stale version is a 412", func(t *testing.T) {
		stale := c.do("POST", path(id, "refunds"), tokClient, `{"amount_cents":1,"reason":"x"}`, map[string]string{"If-Match": `"3"`})
		c.want("stale If-Match", stale, 412, "")
	})
	version := first.body["version"].(float64)
	second := c.do("POST", path(id, "refunds"), tokClient, `{"amount_cents":500,"reason":"dented box"}`,
		map[string]string{"If-Match": fmt.Sprintf(`"%v"`, version)})
	c.want("second refund", second, 200, "")
	if second.body["refunded_cents"] != 1500.0 {
		t.Fatalf("second refund: %s", second.raw)
	}
	c.want("refund beyond the payment", c.do("POST", path(id, "refunds"), tokClient, `{"amount_cents":7501,"reason":"x"}`, nil),
		422, "validation_failed", "amount_cents")
	c.want("refund without a reason", c.do("POST", path(id, "refunds"), tokClient, `{"amount_cents":1}`, nil),
		422, "validation_failed", "reason")
	c.want("return before delivery", c.do("POST", path(id, "returns"), tokClient, `{"lines":[{"sku":"TEA","qty":1}],"reason":"x"}`, nil),
		409, "invalid_transition")

	c.want("ship", c.do("POST", path(id, "shipment"), tokClient, `{"carrier":"DHL","tracking_number":"T1"}`, nil), 200, "")
	c.want("deliver", c.do("POST", path(id, "delivery"), tokClient, `{}`, nil), 200, "")
	c.want("return more than delivered", c.do("POST", path(id, "returns"), tokClient,
		`{"lines":[{"sku":"TEA","qty":4},{"sku":"PLATE","qty":1}],"reason":"broken"}`, nil),
		422, "validation_failed", "lines[0].qty", "lines[1].sku")
	returned := c.do("POST", path(id, "returns"), tokClient, `{"lines":[{"sku":"TEA","qty":2}],"reason":"broken"}`, nil)
	c.want("return", returned, 200, "")
	if returned.body["refunded_cents"] != 5500.0 || returned.body["status"] != "delivered" {
		t.Fatalf("return: %s", returned.raw)
	}
	token := returned.header.Get("Consistency-Token")

	t.Run("the read model shows the refunds and the returned units", func(t *testing.T) {
		o := c.do("GET", "/v1/orders/"+id, tokViewer, "", map[string]string{"Consistency-Token": token})
		c.want("read order", o, 200, "")
		lines, _ := o.body["lines"].([]any)
		if o.body["refunded_cents"] != 5500.0 || o.body["refund_due_cents"] != 0.0 || len(lines) != 2 {
			t.Fatalf("order: %s", o.raw)
		}
		mug, tea := lines[0].(map[string]any), lines[1].(map[string]any)
		if mug["returned_qty"] != 0.0 || tea["sku"] != "TEA" || tea["returned_qty"] != 2.0 || tea["qty"] != 3.0 {
			t.Fatalf("lines: %v", lines)
		}
		// Returned units wait for the warehouse: stock is what shipping left.
		inv := c.do("GET", "/v1/inventory/TEA", tokViewer, "", map[string]string{"Consistency-Token": token})
		if inv.body["on_hand"] != 7.0 {
			t.Fatalf("TEA after the return: %s", inv.raw)
		}
	})
	t.Run("the audit trail holds the refunds and the return", func(t *testing.T) {
		a := c.do("GET", "/v1/audit/orders/"+id+"/events", tokAuditor, "", nil)
		c.want("audit events", a, 200, "")
		var types []string
		for _, e := range a.body["events"].([]any) {
			types = append(types, e.(map[string]any)["type"].(string))
		}
		got := strings.Join(types, ",")
		if !strings.HasSuffix(got, "OrderPaid,OrderRefunded,OrderRefunded,OrderShipped,OrderDelivered,LinesReturned") {
			t.Fatalf("event types %s", got)
		}
		asOf := c.do("GET", fmt.Sprintf("/v1/audit/orders/%s/state?version=%v", id, version), tokAuditor, "", nil)
		if asOf.status != 200 || asOf.body["refunded_cents"] != 1000.0 || asOf.body["status"] != "paid" {
			t.Fatalf("state after the first refund: %s", asOf.raw)
		}
	})
	t.Run("the dashboard's revenue is net of refunds", func(t *testing.T) {
		s := c.do("GET", "/v1/dashboard/summary", tokViewer, "", map[string]string{"Consistency-Token": token})
		if rev, _ := s.body["revenue_cents"].(map[string]any); s.status != 200 || rev["BHD"] != 3500.0 {
			t.Fatalf("summary: %s", s.raw)
		}
	})
	t.Run("the read models still equal a replay", func(t *testing.T) {
		v := c.do("GET", "/v1/audit/verify/read-models", tokAuditor, "", nil)
		if v.status != 200 || v.body["ok"] != true {
			t.Fatalf("verify read models: %s", v.raw)
		}
	})
}

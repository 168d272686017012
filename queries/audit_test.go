package queries_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/orderengine/engine/commands"
	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/internal/enginetest"
	"github.com/orderengine/engine/queries"
)

// auditFixture is an order driven through placed, reserved+confirmed, paid
// and cancelled with a refund, with the time of each step.
type auditFixture struct {
	srv     *httptest.Server
	orderID string
	steps   []time.Time // steps[v-1] is when version v was appended
}

func newAuditFixture(t *testing.T) auditFixture {
	t.Helper()
	e := enginetest.Start(t, time.Hour)
	store, app := e.Store, e.App
	ctx := context.Background()
	clock := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	app.Now = func() time.Time { return clock }
	tick := func() { clock = clock.Add(time.Minute) }
	meta := func() commands.Meta { return commands.Meta{CommandID: app.NewID()} }

	out, err := app.PlaceOrder(ctx, meta(), commands.PlaceOrder{CustomerID: "aud", Currency: "EUR",
		Lines: []domain.Line{{SKU: "A1", Qty: 2, UnitPriceCents: 700}}})
	if err != nil {
		t.Fatal(err)
	}
	id := out.State.ID
	steps := []time.Time{clock}
	tick()
	// The saga's own command: the line was reserved, so the order confirms
	// itself (two events at one time).
	_, err = app.Orders.Update(ctx, id, eventstore.UpdateOptions[domain.Order]{CommandID: "grant"},
		func(s eventstore.Snapshot[domain.Order]) ([]domain.OrderEvent, error) {
			return domain.DecideOrder(s.State, domain.RecordReservation{SKU: "A1", Granted: true, At: clock})
		})
	if err != nil {
		t.Fatal(err)
	}
	steps = append(steps, clock)
	tick()
	if _, err := app.PayOrder(ctx, meta(), id, commands.PayOrder{AmountCents: 1400, PaymentRef: "p-1"}); err != nil {
		t.Fatal(err)
	}
	steps = append(steps, clock)
	tick()
	if _, err := app.CancelOrder(ctx, meta(), id, commands.CancelOrder{Reason: "late"}); err != nil {
		t.Fatal(err)
	}
	steps = append(steps, clock)

	r := chi.NewRouter()
	r.Get("/v1/audit/orders/{id}/events", queries.HandleOrderEvents(store, nil))
	r.Get("/v1/audit/orders/{id}/state", queries.HandleOrderState(store, nil))
	r.Get("/v1/audit/inventory/{sku}/events", queries.HandleInventoryEvents(store, nil))
	r.Get("/v1/audit/export", queries.HandleExport(store, nil))
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return auditFixture{srv: srv, orderID: id, steps: steps}
}

func (f auditFixture) get(t *testing.T, path string, into any) int {
	t.Helper()
	resp, err := http.Get(f.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if into != nil {
		_ = json.NewDecoder(resp.Body).Decode(into)
	}
	return resp.StatusCode
}

func TestAuditEventsComeFromTheStoreWithTheirChain(t *testing.T) {
	f := newAuditFixture(t)
	var body struct{ Events []queries.AuditEvent }
	if code := f.get(t, "/v1/audit/orders/"+f.orderID+"/events", &body); code != 200 {
		t.Fatalf("status %d", code)
	}
	// The grant that completes the order is recorded by its confirmation.
	want := []string{"OrderPlaced", "OrderConfirmed", "OrderPaid", "OrderCancelled"}
	if len(body.Events) != len(want) {
		t.Fatalf("%d events, want %d", len(body.Events), len(want))
	}
	for i, e := range body.Events {
		if e.Type != want[i] || e.Version != uint64(i+1) || e.Seq == 0 || len(e.Hash) != 64 {
			t.Errorf("event %d: %+v", i, e)
		}
		if i > 0 && (e.PrevHash != body.Events[i-1].Hash || e.Seq <= body.Events[i-1].Seq) {
			t.Errorf("event %d does not follow event %d in the chain", i, i-1)
		}
	}
	var inv struct{ Events []queries.AuditEvent }
	if code := f.get(t, "/v1/audit/inventory/NEVER/events", &inv); code != 404 {
		t.Errorf("unknown SKU: %d, want 404", code)
	}
	for _, path := range []string{"/v1/audit/orders/not-a-uuid/events", "/v1/audit/orders/01a20000-0000-7000-8000-000000000000/events"} {
		if code := f.get(t, path, nil); code != 404 {
			t.Errorf("%s: %d, want 404", path, code)
		}
	}
	if code := f.get(t, "/v1/audit/inventory/A.%3E/events", nil); code != 422 {
		t.Errorf("SKU A.>: %d, want 422", code)
	}
}

func TestAuditStateAsOfVersionAndTime(t *testing.T) {
	f := newAuditFixture(t)
	type want struct {
		status        string
		version       uint64
		refund, total int64
	}
	byVersion := map[uint64]want{
		1: {"pending", 1, 0, 1400}, 2: {"confirmed", 2, 0, 1400},
		3: {"paid", 3, 0, 1400}, 4: {"cancelled", 4, 1400, 1400},
	}
	for v, w := range byVersion {
		var got queries.OrderAsOf
		if code := f.get(t, "/v1/audit/orders/"+f.orderID+"/state?version="+itoa(v), &got); code != 200 {
			t.Fatalf("version %d: %d", v, code)
		}
		if got.Status != w.status || got.Version != w.version || got.RefundDueCents != w.refund || got.TotalCents != w.total {
			t.Errorf("version %d: %+v, want %+v", v, got.OrderView, w)
		}
	}
	// as_of: a moment after each step, and exactly at one.
	asOf := map[string]want{
		f.steps[0].Format(time.RFC3339):                       {"pending", 1, 0, 1400},
		f.steps[1].Add(30 * time.Second).Format(time.RFC3339): {"confirmed", 2, 0, 1400},
		f.steps[2].Add(30 * time.Second).Format(time.RFC3339): {"paid", 3, 0, 1400},
		f.steps[3].Add(time.Hour).Format(time.RFC3339):        {"cancelled", 4, 1400, 1400},
	}
	for at, w := range asOf {
		var got queries.OrderAsOf
		if code := f.get(t, "/v1/audit/orders/"+f.orderID+"/state?as_of="+at, &got); code != 200 {
			t.Fatalf("as_of %s: %d", at, code)
		}
		if got.Status != w.status || got.Version != w.version || got.RefundDueCents != w.refund || got.AsOf == nil {
			t.Errorf("as_of %s: %+v, want %+v", at, got.OrderView, w)
		}
	}
	for path, code := range map[string]int{
		"/state?as_of=" + f.steps[0].Add(-time.Second).Format(time.RFC3339): 404, // before it existed
		"/state?version=5":                            404,
		"/state?version=0":                            422,
		"/state?version=x":                            422,
		"/state?as_of=yesterday":                      422,
		"/state?version=1&as_of=2026-11-01T10:00:00Z": 422,
		"/state?bogus=1":                              422,
	} {
		if got := f.get(t, "/v1/audit/orders/"+f.orderID+path, nil); got != code {
			t.Errorf("%s: %d, want %d", path, got, code)
		}
	}
}

func itoa(v uint64) string { b, _ := json.Marshal(v); return string(b) }

func TestAuditExportStreamsEveryEventInStoreOrder(t *testing.T) {
	f := newAuditFixture(t)
	lines := func(query string) []map[string]any {
		t.Helper()
		resp, err := http.Get(f.srv.URL + "/v1/audit/export" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
			t.Fatalf("export%s: %d %s", query, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		var out []map[string]any
		dec := json.NewDecoder(resp.Body)
		for dec.More() {
			var l map[string]any
			if err := dec.Decode(&l); err != nil {
				t.Fatal(err)
			}
			out = append(out, l)
		}
		return out
	}
	all := lines("")
	// 4 order events; the idempotency records and reservation requests
	// stored beside them are not events.
	if len(all) != 4 {
		t.Fatalf("%d lines, want 4: %v", len(all), all)
	}
	for i, l := range all {
		if i > 0 && l["seq"].(float64) <= all[i-1]["seq"].(float64) {
			t.Errorf("line %d is out of store order", i)
		}
		if l["subject"] != "orders."+f.orderID || l["hash"] == "" {
			t.Errorf("line %d: %v", i, l)
		}
	}
	from, to := uint64(all[1]["seq"].(float64)), uint64(all[3]["seq"].(float64))
	if got := lines("?from_seq=" + itoa(from) + "&to_seq=" + itoa(to)); len(got) != 3 {
		t.Errorf("range %d..%d: %d lines, want 3: %v", from, to, len(got), got)
	}
	for _, q := range []string{"?from_seq=0", "?to_seq=x", "?from_seq=5&to_seq=4", "?bogus=1"} {
		if code := f.get(t, "/v1/audit/export"+q, nil); code != 422 {
			t.Errorf("export%s: %d, want 422", q, code)
		}
	}
}

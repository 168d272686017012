package feed_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/feed"
)

var at = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// envelope wraps a domain event as the store holds it, at its current
// schema version.
func envelope(t *testing.T, id string, v uint64, e domain.OrderEvent) eventstore.Envelope {
	t.Helper()
	typ, data, err := domain.EncodeOrderEvent(e)
	if err != nil {
		t.Fatal(err)
	}
	return eventstore.Envelope{Type: typ, SchemaVersion: domain.SchemaVersionOf(typ), AggregateType: "order",
		AggregateID: id, Version: v, OccurredAt: e.OccurredAt(), Data: data}
}

// everyOrderEvent is one of each order event the domain records.
func everyOrderEvent() []domain.OrderEvent {
	avail := int64(1)
	return []domain.OrderEvent{
		domain.OrderPlaced{OrderID: "o1", CustomerID: "c1", Currency: "EUR", TotalCents: 500,
			Lines: []domain.Line{{SKU: "sku-1", Qty: 2, UnitPriceCents: 250}}, At: at},
		domain.LineReserved{SKU: "sku-1", GrantedAt: at, At: at},
		domain.LineRefused{SKU: "sku-1", Available: 1, At: at},
		domain.OrderConfirmed{SKU: "sku-1", GrantedAt: at, At: at},
		domain.OrderRejected{Reason: "insufficient stock", ShortSKUs: []string{"sku-1"}, Available: &avail, At: at},
		domain.OrderRejected{Reason: "insufficient stock", At: at},
		domain.OrderPaid{AmountCents: 500, PaymentRef: "pay-1", At: at},
		domain.OrderShipped{Carrier: "DHL", TrackingNumber: "T1", At: at},
		domain.OrderDelivered{At: at},
		domain.OrderCancelled{Reason: "changed mind", PreviousStatus: domain.StatusPaid, RefundDueCents: 500, CancelledBy: domain.CancelledByCustomer, At: at},
		domain.OrderExpired{At: at},
		domain.OrderRefunded{AmountCents: 100, Reason: "damaged", RefundedCents: 100, At: at},
		domain.LinesReturned{Lines: []domain.ReturnedLine{{SKU: "sku-1", Qty: 1, RefundCents: 250, ReturnedQty: 1}},
			Reason: "too small", RefundCents: 250, RefundedCents: 350, At: at},
	}
}

// TestEveryEmittedTypeFollowsItsSchema checks the contract: every event
// the feed emits names a type and version with a schema in
// docs/feed/schemas, and carries that schema's required fields with the
// right JSON types; every type the feed lists is emitted by some event.
func TestEveryEmittedTypeFollowsItsSchema(t *testing.T) {
	emitted := map[string]bool{}
	for i, de := range everyOrderEvent() {
		ev, ok, err := feed.Translate(envelope(t, "o1", uint64(i+1), de))
		if err != nil {
			t.Fatalf("%T: %v", de, err)
		}
		if !ok {
			continue
		}
		emitted[ev.Type] = true
		if want := feed.Types[ev.Type]; ev.Version != want {
			t.Errorf("%s: version %d, Types says %d", ev.Type, ev.Version, want)
		}
		body, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		schema := loadSchema(t, ev.Type, ev.Version)
		var doc any
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatal(err)
		}
		for _, problem := range conform(schema, doc, "$") {
			t.Errorf("%s v%d: %s\n%s", ev.Type, ev.Version, problem, body)
		}
	}
	for typ := range feed.Types {
		if !emitted[typ] {
			t.Errorf("type %s is listed but no domain event emits it", typ)
		}
	}
	files, err := filepath.Glob("../docs/feed/schemas/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(feed.Types) {
		t.Errorf("%d schema files for %d types: %v", len(files), len(feed.Types), files)
	}
}

func loadSchema(t *testing.T, typ string, v int) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "docs", "feed", "schemas", typ+".v"+itoa(v)+".json"))
	if err != nil {
		t.Fatalf("no schema for %s v%d: %v", typ, v, err)
	}
	var s map[string]any
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("schema %s v%d: %v", typ, v, err)
	}
	return s
}

func itoa(v int) string { b, _ := json.Marshal(v); return string(b) }

// conform checks doc against the subset of JSON Schema the contract's
// schemas use: type, const, enum, required, properties and items.
func conform(schema map[string]any, doc any, path string) []string {
	var problems []string
	if c, ok := schema["const"]; ok && !reflect.DeepEqual(c, doc) {
		problems = append(problems, path+": is not the constant "+itoa2(c))
	}
	if enum, ok := schema["enum"].([]any); ok {
		found := false
		for _, e := range enum {
			found = found || reflect.DeepEqual(e, doc)
		}
		if !found {
			problems = append(problems, path+": not one of the enum")
		}
	}
	if typ, ok := schema["type"].(string); ok && !hasType(doc, typ) {
		return append(problems, path+": is not of type "+typ)
	}
	if obj, ok := doc.(map[string]any); ok {
		req, _ := schema["required"].([]any)
		for _, r := range req {
			if _, ok := obj[r.(string)]; !ok {
				problems = append(problems, path+": misses required "+r.(string))
			}
		}
		props, _ := schema["properties"].(map[string]any)
		for name, sub := range props {
			if v, ok := obj[name]; ok {
				problems = append(problems, conform(sub.(map[string]any), v, path+"."+name)...)
			}
		}
	}
	if arr, ok := doc.([]any); ok {
		if items, ok := schema["items"].(map[string]any); ok {
			for _, v := range arr {
				problems = append(problems, conform(items, v, path+"[]")...)
			}
		}
	}
	return problems
}

func itoa2(v any) string { b, _ := json.Marshal(v); return string(b) }

func hasType(v any, typ string) bool {
	switch typ {
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "integer":
		f, ok := v.(float64)
		return ok && f == float64(int64(f))
	case "number":
		_, ok := v.(float64)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	}
	return false
}

// TestTranslate pins the published language against the domain's: what
// each event says, under which name, and what stays internal.
func TestTranslate(t *testing.T) {
	v1Cancel := eventstore.Envelope{Type: "OrderCancelled", SchemaVersion: 1, AggregateType: "order", AggregateID: "o9",
		Version: 4, OccurredAt: at, Data: json.RawMessage(`{"reason":"r","previous_status":"pending","refund_due_cents":0,"at":"2026-03-01T12:00:00Z"}`)}
	tests := []struct {
		name     string
		env      eventstore.Envelope
		wantOK   bool
		wantType string
		wantData string
	}{
		{"placed", envelope(t, "o1", 1, everyOrderEvent()[0]), true, feed.TypeOrderPlaced,
			`{"customer_id":"c1","currency":"EUR","lines":[{"sku":"sku-1","qty":2,"unit_price_cents":250}],"total_cents":500}`},
		{"line steps stay internal", envelope(t, "o1", 2, everyOrderEvent()[1]), false, "", ""},
		{"confirmed leaks no grant", envelope(t, "o1", 2, everyOrderEvent()[3]), true, feed.TypeOrderConfirmed, `{}`},
		{"rejected without short SKUs says none", envelope(t, "o1", 2, everyOrderEvent()[5]), true, feed.TypeOrderRejected,
			`{"reason":"insufficient stock","short_skus":[]}`},
		{"a v1 cancellation is upcast first", v1Cancel, true, feed.TypeOrderCancelled,
			`{"reason":"r","cancelled_by":"unknown","refund_due_cents":0}`},
		{"returned", envelope(t, "o1", 7, everyOrderEvent()[12]), true, feed.TypeOrderReturned,
			`{"lines":[{"sku":"sku-1","qty":1,"refund_cents":250}],"reason":"too small","refund_cents":250,"refunded_total_cents":350}`},
		{"inventory events are not published", eventstore.Envelope{Type: "Restocked", AggregateType: "inventory", AggregateID: "sku-1", Version: 1}, false, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, ok, err := feed.Translate(tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tt.wantOK {
				t.Fatalf("ok = %v, want %v", ok, tt.wantOK)
			}
			if !ok {
				return
			}
			if ev.Type != tt.wantType || string(ev.Data) != tt.wantData {
				t.Errorf("got %s %s, want %s %s", ev.Type, ev.Data, tt.wantType, tt.wantData)
			}
			if want := feed.EventID(tt.env.AggregateID, tt.env.Version); ev.ID != want || ev.OrderVersion != tt.env.Version {
				t.Errorf("id %s version %d, want %s %d", ev.ID, ev.OrderVersion, want, tt.env.Version)
			}
		})
	}
	t.Run("an event from a newer engine is an error, not a skip", func(t *testing.T) {
		env := envelope(t, "o1", 1, everyOrderEvent()[0])
		env.SchemaVersion = 99
		if _, _, err := feed.Translate(env); err == nil {
			t.Fatal("translated an unknown schema version")
		}
	})
}

package domain

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
)

func TestOrderEventRoundTrip(t *testing.T) {
	t.Parallel()
	events := []OrderEvent{
		placedEvent(),
		OrderConfirmed{At: t0},
		OrderRejected{Reason: "short", ShortSKUs: []string{"a", "b"}, At: t0},
		OrderRejected{Reason: "short", At: t0},
		OrderPaid{AmountCents: 42, PaymentRef: "psp", At: t0},
		OrderShipped{Carrier: "DHL", TrackingNumber: "T", At: t0},
		OrderDelivered{At: t0.Add(time.Nanosecond)},
		OrderCancelled{Reason: "why", PreviousStatus: StatusPaid, RefundDueCents: 42, At: t0},
		OrderCancelled{PreviousStatus: StatusPending, At: t0},
		OrderExpired{At: t0},
		LineReserved{SKU: "apple", At: t0},
		LineRefused{SKU: "apple", Available: 3, At: t0},
		LineRefused{SKU: "apple", At: t0},
	}
	for _, e := range events {
		typ, data, err := EncodeOrderEvent(e)
		if err != nil || typ != e.EventType() {
			t.Fatalf("encode %T: %q, %v", e, typ, err)
		}
		got, err := DecodeOrderEvent(typ, SchemaVersionOf(typ), data)
		if err != nil {
			t.Fatalf("decode %s: %v", data, err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Fatalf("round trip of %s\n got %#v\nwant %#v", data, got, e)
		}
	}
}

func TestSKUEventRoundTrip(t *testing.T) {
	t.Parallel()
	events := []SKUEvent{
		OnHandSet{SKU: "a", OnHand: MaxStock, At: t0},
		Restocked{SKU: "a", Qty: 3, At: t0},
		StockReserved{ReservationID: "r", OrderID: "o", Qty: 2, At: t0},
		ReservationRefused{ReservationID: "r", OrderID: "o", Qty: 2, Available: 1, At: t0},
		ReservationReleased{ReservationID: "r", Qty: 2, At: t0},
		ReservationCommitted{ReservationID: "r", Qty: 2, At: t0},
	}
	for _, e := range events {
		typ, data, err := EncodeSKUEvent(e)
		if err != nil || typ != e.EventType() {
			t.Fatalf("encode %T: %q, %v", e, typ, err)
		}
		got, err := DecodeSKUEvent(typ, SchemaVersion, data)
		if err != nil {
			t.Fatalf("decode %s: %v", data, err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Fatalf("round trip of %s\n got %#v\nwant %#v", data, got, e)
		}
	}
}

// The JSON names are read by projections and auditors; pin a few.
func TestEventJSONShape(t *testing.T) {
	t.Parallel()
	_, data, err := EncodeOrderEvent(OrderCancelled{PreviousStatus: StatusPaid, RefundDueCents: 5, At: t0})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"previous_status":"paid","refund_due_cents":5,"at":"2025-03-14T09:26:53Z"}`; string(data) != want {
		t.Fatalf("got %s, want %s", data, want)
	}
	_, data, _ = EncodeOrderEvent(placedEvent())
	for _, key := range []string{`"order_id"`, `"customer_id"`, `"currency"`, `"lines"`, `"sku"`, `"qty"`, `"unit_price_cents"`, `"total_cents"`, `"at"`} {
		if !strings.Contains(string(data), key) {
			t.Errorf("OrderPlaced JSON %s lacks %s", data, key)
		}
	}
	_, data, _ = EncodeOrderEvent(LineRefused{SKU: "apple", At: t0})
	if want := `{"sku":"apple","available":0,"at":"2025-03-14T09:26:53Z"}`; string(data) != want {
		t.Fatalf("got %s, want %s", data, want)
	}
	_, data, _ = EncodeOrderEvent(LineReserved{SKU: "apple", At: t0})
	if want := `{"sku":"apple","at":"2025-03-14T09:26:53Z"}`; string(data) != want {
		t.Fatalf("got %s, want %s", data, want)
	}
	_, data, _ = EncodeSKUEvent(ReservationRefused{ReservationID: "r", OrderID: "o", Qty: 1, At: t0})
	if want := `{"reservation_id":"r","order_id":"o","qty":1,"available":0,"at":"2025-03-14T09:26:53Z"}`; string(data) != want {
		t.Fatalf("got %s, want %s", data, want)
	}
}

func TestDecodeIsLenientOnFieldsStrictOnTypes(t *testing.T) {
	t.Parallel()
	e, err := DecodeOrderEvent("OrderPaid", 1, []byte(`{"amount_cents":1,"payment_ref":"p","at":"2025-03-14T09:26:53Z","added_later":true}`))
	if err != nil || !reflect.DeepEqual(e, OrderPaid{AmountCents: 1, PaymentRef: "p", At: t0}) {
		t.Fatalf("unknown field: %#v, %v", e, err)
	}
	tests := []struct {
		name string
		err  func() error
	}{
		{"unknown order type", func() error { _, err := DecodeOrderEvent("OrderTeleported", 1, []byte(`{}`)); return err }},
		{"sku type as order", func() error { _, err := DecodeOrderEvent("Restocked", 1, []byte(`{}`)); return err }},
		{"unknown sku type", func() error { _, err := DecodeSKUEvent("OrderPaid", 1, []byte(`{}`)); return err }},
		{"future schema", func() error { _, err := DecodeOrderEvent("OrderPaid", SchemaVersion+1, []byte(`{}`)); return err }},
		{"schema 0", func() error { _, err := DecodeSKUEvent("Restocked", 0, []byte(`{}`)); return err }},
		{"bad JSON", func() error { _, err := DecodeOrderEvent("OrderPaid", 1, []byte(`{"amount_cents":"x"}`)); return err }},
		{"truncated JSON", func() error { _, err := DecodeSKUEvent("Restocked", 1, []byte(`{"qty":1`)); return err }},
	}
	for _, tt := range tests {
		if tt.err() == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
	if e, err := DecodeOrderEvent("OrderPaid", 1, []byte(`nope`)); err == nil || e != nil {
		t.Errorf("failed decode must return a nil event, got %#v", e)
	}
}

func TestEncodeRefusesValuesOutsideTheClosedSet(t *testing.T) {
	t.Parallel()
	if _, _, err := EncodeOrderEvent(&OrderPaid{}); !errors.IsAssertionFailure(err) {
		t.Errorf("pointer order event: %v", err)
	}
	if _, _, err := EncodeOrderEvent(nil); !errors.IsAssertionFailure(err) {
		t.Errorf("nil order event: %v", err)
	}
	if _, _, err := EncodeSKUEvent(&Restocked{}); !errors.IsAssertionFailure(err) {
		t.Errorf("pointer SKU event: %v", err)
	}
}

// Events decided by the deciders survive the codec unchanged, whatever
// zone the command's time was in.
func TestDecidedEventsRoundTrip(t *testing.T) {
	t.Parallel()
	c := validPlace()
	c.At = time.Now().In(time.FixedZone("CET", 3600)) // with a monotonic reading
	events, err := DecideOrder(Order{}, c)
	if err != nil {
		t.Fatal(err)
	}
	typ, data, _ := EncodeOrderEvent(events[0])
	got, err := DecodeOrderEvent(typ, SchemaVersion, data)
	if err != nil || !reflect.DeepEqual(got, events[0]) {
		t.Fatalf("got %#v, %v\nwant %#v", got, err, events[0])
	}
}

func FuzzDecodeOrderEvent(f *testing.F) {
	for _, e := range []OrderEvent{placedEvent(), OrderCancelled{PreviousStatus: StatusPaid, At: t0},
		LineReserved{SKU: "a", At: t0}, LineRefused{SKU: "a", Available: 1, At: t0}} {
		typ, data, _ := EncodeOrderEvent(e)
		f.Add(typ, data)
	}
	f.Fuzz(func(t *testing.T, typ string, data []byte) {
		e, err := DecodeOrderEvent(typ, SchemaVersion, data)
		if err != nil {
			return
		}
		// Whatever decodes can be folded without panicking.
		EvolveOrder(Order{}, e)
	})
}

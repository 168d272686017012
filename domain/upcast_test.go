package domain

import (
	"reflect"
	"testing"
)

func TestSchemaVersionOf(t *testing.T) {
	t.Parallel()
	for typ, want := range map[string]int{
		"OrderCancelled": 2, "OrderPlaced": 1, "OrderPaid": 1, "Restocked": 1, "OrderTeleported": 1,
	} {
		if got := SchemaVersionOf(typ); got != want {
			t.Errorf("SchemaVersionOf(%s) = %d, want %d", typ, got, want)
		}
	}
}

func TestOrderCancelledV1IsUpcast(t *testing.T) {
	t.Parallel()
	v1 := []byte(`{"reason":"why","previous_status":"paid","refund_due_cents":42,"at":"2025-03-14T09:26:53Z"}`)
	got, err := DecodeOrderEvent("OrderCancelled", 1, v1)
	if err != nil {
		t.Fatal(err)
	}
	want := OrderCancelled{Reason: "why", PreviousStatus: StatusPaid, RefundDueCents: 42, CancelledBy: CancelledByUnknown, At: t0}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v\nwant %#v", got, want)
	}
}

func TestOrderCancelledV2RoundTrip(t *testing.T) {
	t.Parallel()
	e := OrderCancelled{PreviousStatus: StatusConfirmed, CancelledBy: CancelledByOperator, At: t0}
	typ, data, err := EncodeOrderEvent(e)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"previous_status":"confirmed","refund_due_cents":0,"cancelled_by":"operator","at":"2025-03-14T09:26:53Z"}`; string(data) != want {
		t.Fatalf("got %s, want %s", data, want)
	}
	got, err := DecodeOrderEvent(typ, SchemaVersionOf(typ), data)
	if err != nil || !reflect.DeepEqual(got, e) {
		t.Fatalf("got %#v, %v\nwant %#v", got, err, e)
	}
}

func TestUpcastRefusals(t *testing.T) {
	t.Parallel()
	if _, err := DecodeOrderEvent("OrderCancelled", 3, []byte(`{}`)); err == nil {
		t.Error("future OrderCancelled version decoded")
	}
	if _, err := DecodeOrderEvent("OrderPaid", 2, []byte(`{}`)); err == nil {
		t.Error("OrderPaid v2 decoded: only OrderCancelled has a v2")
	}
	if e, err := DecodeOrderEvent("OrderCancelled", 1, []byte(`[1]`)); err == nil || e != nil {
		t.Errorf("v1 payload that is not an object: %#v, %v", e, err)
	}
	e, err := DecodeOrderEvent("OrderCancelled", 1, []byte(`null`))
	if err != nil || e.(OrderCancelled).CancelledBy != CancelledByUnknown {
		t.Errorf("null v1 payload: %#v, %v", e, err)
	}
}

package domain

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// Stored snapshots (eventstore) hold a state as JSON and fold the events
// after it: every state must come back from JSON exactly as folded, or a
// load from a snapshot would differ from a replay.
func TestStatesRoundTripThroughJSON(t *testing.T) {
	t.Parallel()
	orders := map[string]Order{}
	for _, st := range allStatuses {
		orders[string(st)] = foldOrder(t, historyFor(st))
	}
	orders["pending, one line reserved"] = foldOrder(t, append(historyFor(StatusPending), LineReserved{SKU: "apple", At: at(time.Second)}))
	orders["delivered, refunded and partly returned"] = foldOrder(t, delivered(
		OrderRefunded{AmountCents: 100, Reason: "late", RefundedCents: 100, At: at(time.Hour)},
		LinesReturned{Lines: []ReturnedLine{{SKU: "apple", Qty: 1, RefundCents: 150, ReturnedQty: 1}}, Reason: "r",
			RefundCents: 150, RefundedCents: 250, At: at(time.Hour)}))
	for name, o := range orders {
		data, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		var back Order
		if err := json.Unmarshal(data, &back); err != nil || !reflect.DeepEqual(back, o) {
			t.Errorf("order %q: %v\n got %+v\nwant %+v", name, err, back, o)
		}
	}
	skus := map[string]SKU{
		"none":    {},
		"history": foldSKU(t, skuHistory()),
		"small":   heldSKU(heldSmall),
		"sharded": heldSKU(heldSmall + 1),
		"large":   heldSKU(5000),
	}
	for name, s := range skus {
		data, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var back SKU
		if err := json.Unmarshal(data, &back); err != nil || !reflect.DeepEqual(back, s) {
			t.Errorf("sku %q: %v\n got %+v\nwant %+v", name, err, back, s)
		}
	}
}

package domain

import (
	"encoding/json"
	"maps"
	"reflect"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
)

// requestsFor returns the requests of action for every line of testLines.
func requestsFor(action ReservationAction) []ReservationRequest {
	var reqs []ReservationRequest
	for _, l := range testLines() {
		reqs = append(reqs, ReservationRequest{Action: action, ReservationID: ReservationID(testOrderID, l.SKU),
			OrderID: testOrderID, SKU: l.SKU, Qty: l.Qty})
	}
	return reqs
}

func TestReservationRequestsFor(t *testing.T) {
	t.Parallel()
	now := at(time.Hour)
	reserve, release, commit := requestsFor(ActionReserve), requestsFor(ActionRelease), requestsFor(ActionCommit)
	tests := []struct {
		name  string
		given OrderStatus
		when  []OrderEvent
		then  []ReservationRequest
	}{
		{name: "placement reserves every line", given: "", when: []OrderEvent{placedEvent()}, then: reserve},
		// The refused line holds nothing (its SKU refused it, and its one
		// reserve request is decided once), so only the others are
		// released: a single-line order rejected asks for no release.
		{name: "a refusal releases every line but the refused one", given: StatusPending,
			when: []OrderEvent{OrderRejected{Reason: "insufficient stock", ShortSKUs: []string{"pear-1"}, At: now}},
			then: without(release, "pear-1")},
		{name: "a refusal in old events releases every line but the refused one", given: StatusPending,
			when: []OrderEvent{LineRefused{SKU: "pear-1", At: now}, OrderRejected{Reason: "insufficient stock", ShortSKUs: []string{"pear-1"}, At: now}},
			then: without(release, "pear-1")},
		{name: "a rejection without a refused line releases every line", given: StatusPending,
			when: []OrderEvent{OrderRejected{Reason: "payment provider declined", At: now}}, then: release},
		{name: "a grant asks nothing", given: StatusPending, when: []OrderEvent{LineReserved{SKU: "apple", At: now}}},
		{name: "a confirmation asks nothing", given: StatusPending,
			when: []OrderEvent{OrderConfirmed{SKU: "apple", At: now}}},
		{name: "a confirmation in old events asks nothing", given: StatusPending,
			when: []OrderEvent{LineReserved{SKU: "apple", At: now}, OrderConfirmed{At: now}}},
		{name: "a pending cancel releases every line", given: StatusPending,
			when: []OrderEvent{OrderCancelled{PreviousStatus: StatusPending, At: now}}, then: release},
		{name: "a paid cancel releases every line", given: StatusPaid,
			when: []OrderEvent{OrderCancelled{PreviousStatus: StatusPaid, RefundDueCents: testTotal, At: now}}, then: release},
		{name: "an expiry releases every line", given: StatusConfirmed, when: []OrderEvent{OrderExpired{At: now}}, then: release},
		{name: "a shipment commits every line", given: StatusPaid,
			when: []OrderEvent{OrderShipped{Carrier: "DHL", TrackingNumber: "T", At: now}}, then: commit},
		{name: "payment asks nothing", given: StatusConfirmed,
			when: []OrderEvent{OrderPaid{AmountCents: testTotal, PaymentRef: "p", At: now}}},
		{name: "delivery asks nothing", given: StatusShipped, when: []OrderEvent{OrderDelivered{At: now}}},
		{name: "no events", given: StatusPending},
		{name: "later events use the lines evolved so far", given: "",
			when: []OrderEvent{placedEvent(), OrderCancelled{PreviousStatus: StatusPending, At: now}},
			then: append(reserve, release...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := ReservationRequestsFor(foldOrder(t, historyFor(tt.given)), tt.when)
			if !reflect.DeepEqual(got, tt.then) {
				t.Fatalf("requests = %+v\nwant       %+v", got, tt.then)
			}
		})
	}
}

// The lines of a placement come from the event, not from the state the
// events were appended to.
func TestReservationRequestsForUsesThePlacedLines(t *testing.T) {
	t.Parallel()
	e := placedWith(Line{SKU: "kiwi", Qty: 7, UnitPriceCents: 1})
	got := ReservationRequestsFor(Order{}, []OrderEvent{e})
	want := []ReservationRequest{{Action: ActionReserve, ReservationID: ReservationID(testOrderID, "kiwi"), OrderID: testOrderID, SKU: "kiwi", Qty: 7}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("requests = %+v, want %+v", got, want)
	}
}

func TestReservationRequestsForPanicsOutsideTheClosedSet(t *testing.T) {
	t.Parallel()
	defer func() {
		if err, ok := recover().(error); !ok || !errors.IsAssertionFailure(err) {
			t.Fatalf("want an assertion failure panic")
		}
	}()
	ReservationRequestsFor(foldOrder(t, historyFor(StatusPending)), []OrderEvent{&OrderConfirmed{At: t0}})
}

func TestReservationRequestCommand(t *testing.T) {
	t.Parallel()
	now := at(time.Hour)
	r := ReservationRequest{ReservationID: rid("1"), OrderID: "o1", SKU: testSKU, Qty: 3}
	with := func(a ReservationAction) ReservationRequest { r := r; r.Action = a; return r }
	tests := []struct {
		req  ReservationRequest
		want SKUCommand
	}{
		{with(ActionReserve), Reserve{SKU: testSKU, ReservationID: rid("1"), OrderID: "o1", Qty: 3, At: now}},
		{with(ActionRelease), Release{SKU: testSKU, ReservationID: rid("1"), At: now}},
		{with(ActionCommit), CommitReservation{SKU: testSKU, ReservationID: rid("1"), At: now}},
		{with("teleport"), nil},
	}
	for _, tt := range tests {
		if got := tt.req.Command(now); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: command = %#v, want %#v", tt.req.Action, got, tt.want)
		}
	}
	if _, err := DecideSKU(foldSKU(t, skuHistory()), with("teleport").Command(now)); !errors.IsAssertionFailure(err) {
		t.Errorf("unknown action: DecideSKU gave %v, want an assertion failure", err)
	}
}

// Requests derived from decided events drive the SKU deciders end to end,
// and their outcomes drive the order: apple is granted, pear-1 is short,
// so the order is rejected and apple's stock is given back.
func TestReservationRequestsDriveTheSKUs(t *testing.T) {
	t.Parallel()
	skus := map[string]SKU{
		"apple":  EvolveSKU(SKU{}, OnHandSet{SKU: "apple", OnHand: 10, At: t0}),
		"pear-1": EvolveSKU(SKU{}, OnHandSet{SKU: "pear-1", OnHand: 1, At: t0}),
	}
	var o Order
	queue := []OrderCommand{validPlace()} // apple 2, pear-1 3
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		events, err := DecideOrder(o, c)
		if err != nil {
			t.Fatalf("%T: %v", c, err)
		}
		for _, r := range ReservationRequestsFor(o, events) {
			evs, err := DecideSKU(skus[r.SKU], r.Command(at(time.Second)))
			if err != nil {
				t.Fatalf("%s %s: %v", r.Action, r.SKU, err)
			}
			skus[r.SKU] = EvolveSKUAll(skus[r.SKU], evs)
			for _, e := range evs {
				switch e := e.(type) {
				case StockReserved:
					queue = append(queue, RecordReservation{SKU: r.SKU, Granted: true, At: at(time.Minute)})
				case ReservationRefused:
					queue = append(queue, RecordReservation{SKU: r.SKU, Available: e.Available, At: at(time.Minute)})
				}
			}
		}
		for _, e := range events {
			o = EvolveOrder(o, e)
		}
	}
	want := map[string]bool{"apple": true, "pear-1": false}
	if o.Status != StatusRejected || o.RejectReason != "insufficient stock" || !maps.Equal(o.LineOutcomes, want) {
		t.Fatalf("order = %+v", o)
	}
	if a := skus["apple"]; a.Reserved != 0 || a.Held.Len() != 0 {
		t.Fatalf("apple not released: %+v", a)
	}
}

// The JSON names are read by the reservation processors; pin them.
func TestReservationRequestJSONShape(t *testing.T) {
	t.Parallel()
	data, err := json.Marshal(requestsFor(ActionRelease)[0])
	if err != nil {
		t.Fatal(err)
	}
	want := `{"action":"release","reservation_id":"` + testOrderID + `-apple","order_id":"` + testOrderID + `","sku":"apple","qty":2}`
	if string(data) != want {
		t.Fatalf("got %s, want %s", data, want)
	}
}

// without returns reqs without those for sku.
func without(reqs []ReservationRequest, sku string) []ReservationRequest {
	var out []ReservationRequest
	for _, r := range reqs {
		if r.SKU != sku {
			out = append(out, r)
		}
	}
	return out
}

package domain

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// delivered returns the events of a delivered order of testLines (2 apple
// at 150, 3 pear-1 at 1000, paid testTotal) followed by more.
func delivered(more ...OrderEvent) []OrderEvent {
	return append(historyFor(StatusDelivered), more...)
}

func TestDecideRefundAndReturnMatrix(t *testing.T) {
	t.Parallel()
	refund := RefundOrder{AmountCents: 100, Reason: "late delivery", At: at(time.Hour)}
	ret := ReturnLines{Lines: []ReturnLine{{SKU: "apple", Qty: 1}}, Reason: "damaged", At: at(time.Hour)}
	want := map[OrderStatus][2]outcome{
		//               Refund   Return
		"":              {notFound, notFound},
		StatusPending:   {refused, refused},
		StatusConfirmed: {refused, refused},
		StatusRejected:  {refused, refused},
		StatusPaid:      {recorded, refused},
		StatusShipped:   {recorded, refused},
		StatusDelivered: {recorded, recorded},
		StatusCancelled: {refused, refused},
		StatusExpired:   {refused, refused},
	}
	for _, st := range allStatuses {
		for i, c := range []OrderCommand{refund, ret} {
			t.Run(fmt.Sprintf("%s/%T", cmp(st == "", "not-existing", string(st)), c), func(t *testing.T) {
				t.Parallel()
				s := foldOrder(t, historyFor(st))
				events, err := DecideOrder(s, c)
				switch want[st][i] {
				case recorded:
					if err != nil || len(events) != 1 {
						t.Fatalf("want one event, got %v, %v", events, err)
					}
					if next := EvolveOrder(s, events[0]); next.Status != s.Status || next.Version != s.Version+1 {
						t.Fatalf("a refund or return moved the order: %+v", next)
					}
				case notFound:
					checkRefusal(t, events, err, ErrNotFound)
				case refused:
					checkRefusal(t, events, err, ErrInvalidTransition)
				}
			})
		}
	}
}

func TestDecideRefund(t *testing.T) {
	t.Parallel()
	h := time.Hour
	refunded := func(amount, total int64) OrderRefunded {
		return OrderRefunded{AmountCents: amount, Reason: "goodwill", RefundedCents: total, At: at(h)}
	}
	tests := []decisionCase{
		{
			name: "part of a paid order", given: historyFor(StatusPaid),
			when: RefundOrder{AmountCents: 500, Reason: "goodwill", At: at(h)},
			then: []OrderEvent{refunded(500, 500)},
		},
		{
			name: "a second refund adds up", given: append(historyFor(StatusShipped), refunded(500, 500)),
			when: RefundOrder{AmountCents: 700, Reason: "goodwill", At: at(h)},
			then: []OrderEvent{refunded(700, 1200)},
		},
		{
			name: "exactly what is left", given: delivered(refunded(500, 500)),
			when: RefundOrder{AmountCents: testTotal - 500, Reason: "goodwill", At: at(h)},
			then: []OrderEvent{refunded(testTotal-500, testTotal)},
		},
		{
			name: "one more than what is left", given: delivered(refunded(500, 500)),
			when:   RefundOrder{AmountCents: testTotal - 499, Reason: "goodwill", At: at(h)},
			fields: []string{"amount_cents"},
		},
		{
			name: "more than was paid", given: historyFor(StatusPaid),
			when:   RefundOrder{AmountCents: testTotal + 1, Reason: "x", At: at(h)},
			fields: []string{"amount_cents"},
		},
		{
			name: "anything once refunded in full", given: delivered(refunded(testTotal, testTotal)),
			when:   RefundOrder{AmountCents: 1, Reason: "x", At: at(h)},
			fields: []string{"amount_cents"},
		},
		{
			name: "after a return refunded everything", given: delivered(LinesReturned{
				Lines:  []ReturnedLine{{SKU: "apple", Qty: 2, RefundCents: 300, ReturnedQty: 2}, {SKU: "pear-1", Qty: 3, RefundCents: 3000, ReturnedQty: 3}},
				Reason: "r", RefundCents: testTotal, RefundedCents: testTotal, At: at(h),
			}),
			when:   RefundOrder{AmountCents: 1, Reason: "x", At: at(h)},
			fields: []string{"amount_cents"},
		},
		{name: "zero", given: historyFor(StatusPaid), when: RefundOrder{Reason: "x", At: at(h)}, fields: []string{"amount_cents"}},
		{name: "negative", given: historyFor(StatusPaid), when: RefundOrder{AmountCents: -1, Reason: "x", At: at(h)}, fields: []string{"amount_cents"}},
		{name: "without a reason", given: historyFor(StatusPaid), when: RefundOrder{AmountCents: 1, At: at(h)}, fields: []string{"reason"}},
		{name: "with a blank reason", given: historyFor(StatusPaid), when: RefundOrder{AmountCents: 1, Reason: "  ", At: at(h)}, fields: []string{"reason"}},
		{name: "with a control character", given: historyFor(StatusPaid), when: RefundOrder{AmountCents: 1, Reason: "a\x07", At: at(h)}, fields: []string{"reason"}},
		{name: "every field at once", given: historyFor(StatusPaid), when: RefundOrder{AmountCents: 0, Reason: strings.Repeat("r", 256), At: at(h)}, fields: []string{"amount_cents", "reason"}},
		{
			name: "the time is stored in UTC", given: historyFor(StatusPaid),
			when: RefundOrder{AmountCents: 500, Reason: "goodwill", At: at(h).In(time.FixedZone("X", -3600))},
			then: []OrderEvent{refunded(500, 500)},
		},
	}
	checkDecisions(t, tests)
}

func TestDecideReturn(t *testing.T) {
	t.Parallel()
	h := time.Hour
	ret := func(reason string, lines ...ReturnLine) ReturnLines {
		return ReturnLines{Lines: lines, Reason: reason, At: at(h)}
	}
	returned := func(refund, total int64, lines ...ReturnedLine) LinesReturned {
		return LinesReturned{Lines: lines, Reason: "damaged", RefundCents: refund, RefundedCents: total, At: at(h)}
	}
	tests := []decisionCase{
		{
			name: "one unit of a line", given: delivered(),
			when: ret("damaged", ReturnLine{SKU: "pear-1", Qty: 1}),
			then: []OrderEvent{returned(1000, 1000, ReturnedLine{SKU: "pear-1", Qty: 1, RefundCents: 1000, ReturnedQty: 1})},
		},
		{
			name: "two lines at once, in request order", given: delivered(),
			when: ret("damaged", ReturnLine{SKU: "pear-1", Qty: 3}, ReturnLine{SKU: "apple", Qty: 2}),
			then: []OrderEvent{returned(testTotal, testTotal,
				ReturnedLine{SKU: "pear-1", Qty: 3, RefundCents: 3000, ReturnedQty: 3},
				ReturnedLine{SKU: "apple", Qty: 2, RefundCents: 300, ReturnedQty: 2})},
		},
		{
			name:  "the rest of a line returned before",
			given: delivered(returned(1000, 1000, ReturnedLine{SKU: "pear-1", Qty: 1, RefundCents: 1000, ReturnedQty: 1})),
			when:  ret("damaged", ReturnLine{SKU: "pear-1", Qty: 2}),
			then:  []OrderEvent{returned(2000, 3000, ReturnedLine{SKU: "pear-1", Qty: 2, RefundCents: 2000, ReturnedQty: 3})},
		},
		{
			name:  "after a partial refund only what is left is refunded",
			given: delivered(OrderRefunded{AmountCents: 2500, Reason: "goodwill", RefundedCents: 2500, At: at(h)}),
			when:  ret("damaged", ReturnLine{SKU: "pear-1", Qty: 1}, ReturnLine{SKU: "apple", Qty: 2}),
			then: []OrderEvent{returned(800, testTotal,
				ReturnedLine{SKU: "pear-1", Qty: 1, RefundCents: 800, ReturnedQty: 1},
				ReturnedLine{SKU: "apple", Qty: 2, RefundCents: 0, ReturnedQty: 2})},
		},
		{
			name: "more units than delivered", given: delivered(),
			when: ret("damaged", ReturnLine{SKU: "pear-1", Qty: 4}), fields: []string{"lines[0].qty"},
		},
		{
			name:  "more units than are left to return",
			given: delivered(returned(1000, 1000, ReturnedLine{SKU: "pear-1", Qty: 1, RefundCents: 1000, ReturnedQty: 1})),
			when:  ret("damaged", ReturnLine{SKU: "pear-1", Qty: 3}), fields: []string{"lines[0].qty"},
		},
		{
			name:  "a line returned in full",
			given: delivered(returned(300, 300, ReturnedLine{SKU: "apple", Qty: 2, RefundCents: 300, ReturnedQty: 2})),
			when:  ret("damaged", ReturnLine{SKU: "apple", Qty: 1}), fields: []string{"lines[0].qty"},
		},
		{name: "zero units", given: delivered(), when: ret("damaged", ReturnLine{SKU: "apple"}), fields: []string{"lines[0].qty"}},
		{name: "a sku the order does not have", given: delivered(), when: ret("damaged", ReturnLine{SKU: "plum", Qty: 1}), fields: []string{"lines[0].sku"}},
		{name: "a malformed sku", given: delivered(), when: ret("damaged", ReturnLine{SKU: "a.>", Qty: 1}), fields: []string{"lines[0].sku"}},
		{
			name: "a sku twice", given: delivered(),
			when: ret("damaged", ReturnLine{SKU: "apple", Qty: 1}, ReturnLine{SKU: "apple", Qty: 1}), fields: []string{"lines[1].sku"},
		},
		{name: "no lines", given: delivered(), when: ret("damaged"), fields: []string{"lines"}},
		{name: "no reason", given: delivered(), when: ret("", ReturnLine{SKU: "apple", Qty: 1}), fields: []string{"reason"}},
		{
			name: "every field at once", given: delivered(),
			when:   ret("", ReturnLine{SKU: "apple", Qty: 3}, ReturnLine{SKU: "kiwi", Qty: 1}, ReturnLine{SKU: "pear-1", Qty: 0}),
			fields: []string{"lines[0].qty", "lines[1].sku", "lines[2].qty", "reason"},
		},
	}
	checkDecisions(t, tests)
}

func TestReturnMessages(t *testing.T) {
	t.Parallel()
	s := foldOrder(t, delivered())
	_, err := DecideOrder(s, ReturnLines{Lines: []ReturnLine{{SKU: "pear-1", Qty: 4}, {SKU: "kiwi", Qty: 1}}, Reason: "r", At: at(time.Hour)})
	want := map[string]string{
		"lines[0].qty": "must be between 1 and 3, the units delivered and not returned yet",
		"lines[1].sku": "is not a line of this order",
	}
	if ve := validationFields(t, err); !reflect.DeepEqual(ve, want) {
		t.Fatalf("fields = %q, want %q", ve, want)
	}
	_, err = DecideOrder(s, RefundOrder{AmountCents: testTotal + 1, Reason: "r", At: at(time.Hour)})
	if got, want := validationFields(t, err)["amount_cents"], fmt.Sprintf("must be between 1 and %d, what is left to refund of the payment of %d", testTotal, testTotal); got != want {
		t.Fatalf("amount message %q, want %q", got, want)
	}
}

// A cancellation of a paid order owes back only what partial refunds
// left, so the order never gives back more than it was paid.
func TestCancelAfterPartialRefund(t *testing.T) {
	t.Parallel()
	s := foldOrder(t, append(historyFor(StatusPaid), OrderRefunded{AmountCents: 1000, Reason: "g", RefundedCents: 1000, At: at(time.Hour)}))
	events, err := DecideOrder(s, CancelOrder{At: at(2 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	want := []OrderEvent{OrderCancelled{PreviousStatus: StatusPaid, RefundDueCents: testTotal - 1000, CancelledBy: CancelledByCustomer, At: at(2 * time.Hour)}}
	if !reflect.DeepEqual(events, want) {
		t.Fatalf("events = %#v\nwant     %#v", events, want)
	}
	s = EvolveOrder(s, events[0])
	if s.RefundedCents+s.RefundDueCents != s.PaidCents || s.Refundable() != 0 {
		t.Fatalf("refunded %d + due %d, paid %d", s.RefundedCents, s.RefundDueCents, s.PaidCents)
	}
}

func TestEvolveRefundAndReturn(t *testing.T) {
	t.Parallel()
	first := LinesReturned{Lines: []ReturnedLine{{SKU: "pear-1", Qty: 1, RefundCents: 1000, ReturnedQty: 1}}, Reason: "r", RefundCents: 1000, RefundedCents: 1000, At: at(time.Hour)}
	before := foldOrder(t, delivered(first))
	after := EvolveOrder(before, LinesReturned{Lines: []ReturnedLine{{SKU: "pear-1", Qty: 1, RefundCents: 1000, ReturnedQty: 2}, {SKU: "apple", Qty: 1, RefundCents: 150, ReturnedQty: 1}},
		Reason: "r", RefundCents: 1150, RefundedCents: 2150, At: at(2 * time.Hour)})
	after = EvolveOrder(after, OrderRefunded{AmountCents: 50, Reason: "g", RefundedCents: 2200, At: at(3 * time.Hour)})
	if after.ReturnedQty("pear-1") != 2 || after.ReturnedQty("apple") != 1 || after.RefundedCents != 2200 ||
		after.Refundable() != testTotal-2200 || after.Status != StatusDelivered || !after.UpdatedAt.Equal(at(3*time.Hour)) {
		t.Fatalf("state after returns and a refund: %+v", after)
	}
	// Earlier states stay as they were: Evolve copies the map it changes.
	if before.ReturnedQty("pear-1") != 1 || before.ReturnedQty("apple") != 0 || before.RefundedCents != 1000 {
		t.Fatalf("the earlier state changed: %+v", before)
	}
}

func TestRefundEventRoundTrip(t *testing.T) {
	t.Parallel()
	for _, e := range []OrderEvent{
		OrderRefunded{AmountCents: 42, Reason: "late", RefundedCents: 100, At: t0},
		LinesReturned{Lines: []ReturnedLine{{SKU: "a", Qty: 1, RefundCents: 5, ReturnedQty: 3}}, Reason: "r", RefundCents: 5, RefundedCents: 9, At: t0},
	} {
		typ, data, err := EncodeOrderEvent(e)
		if err != nil || typ != e.EventType() || SchemaVersionOf(typ) != 1 {
			t.Fatalf("encode %T: %q v%d, %v", e, typ, SchemaVersionOf(typ), err)
		}
		got, err := DecodeOrderEvent(typ, 1, data)
		if err != nil || !reflect.DeepEqual(got, e) {
			t.Fatalf("round trip of %s: %#v, %v", data, got, err)
		}
		if reqs := ReservationRequestsFor(foldOrder(t, delivered()), []OrderEvent{e}); len(reqs) != 0 {
			t.Fatalf("%T asked the inventory for %v: returns are restocked by the warehouse only", e, reqs)
		}
	}
}

func TestMinorUnits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code  string
		units int
		ok    bool
	}{
		{"USD", 2, true}, {"EUR", 2, true}, {"JPY", 0, true}, {"KRW", 0, true}, {"BHD", 3, true},
		{"KWD", 3, true}, {"CLF", 4, true}, {"XCG", 2, true},
		{"XYZ", 0, false}, {"XAU", 0, false}, {"XXX", 0, false}, {"HRK", 0, false}, {"usd", 0, false}, {"", 0, false},
	}
	for _, tt := range tests {
		units, ok := MinorUnits(tt.code)
		if units != tt.units || ok != tt.ok || ValidCurrency(tt.code) != tt.ok {
			t.Errorf("MinorUnits(%q) = %d, %v; want %d, %v", tt.code, units, ok, tt.units, tt.ok)
		}
	}
	for code, units := range currencyMinorUnits {
		if len(code) != 3 || strings.ToUpper(code) != code || units < 0 || units > 4 {
			t.Errorf("table entry %q: %d", code, units)
		}
	}
}

func TestPlaceOrderRefusesUnknownCurrency(t *testing.T) {
	t.Parallel()
	c := validPlace()
	c.Currency = "XYZ"
	_, err := DecideOrder(Order{}, c)
	if got := validationFields(t, err)["currency"]; got != CurrencyRule {
		t.Fatalf("currency message %q", got)
	}
	c.Currency = "JPY"
	if _, err := DecideOrder(Order{}, c); err != nil {
		t.Fatal(err)
	}
}

func validationFields(tb testing.TB, err error) map[string]string {
	tb.Helper()
	ve, ok := err.(*ValidationError)
	if !ok {
		tb.Fatalf("want a *ValidationError, got %v", err)
	}
	return ve.Fields
}

// decisionCase is one row of an order decider table: given a history, when
// a command, then these events, or a validation error naming fields.
type decisionCase struct {
	name   string
	given  []OrderEvent
	when   OrderCommand
	then   []OrderEvent
	fields []string
}

// checkDecisions runs a decider table, each row in parallel.
func checkDecisions(t *testing.T, tests []decisionCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			events, err := DecideOrder(foldOrder(t, tt.given), tt.when)
			if tt.fields != nil {
				checkErr(t, err, ErrValidation, tt.fields...)
			} else {
				checkErr(t, err, nil)
			}
			if !reflect.DeepEqual(events, tt.then) {
				t.Fatalf("events = %#v\nwant     %#v", events, tt.then)
			}
		})
	}
}

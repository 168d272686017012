package domain

import (
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
)

// t0 is the time every test history starts at.
var t0 = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

const (
	testOrderID = "01890a5d-ac96-774b-bcce-b302099a8057"
	testTTL     = 15 * time.Minute
)

func at(d time.Duration) time.Time { return t0.Add(d) }

func testLines() []Line {
	return []Line{
		{SKU: "apple", Qty: 2, UnitPriceCents: 150},
		{SKU: "pear-1", Qty: 3, UnitPriceCents: 1000},
	}
}

const testTotal = 2*150 + 3*1000

func validPlace() PlaceOrder {
	return PlaceOrder{OrderID: testOrderID, CustomerID: "cust_1", Currency: "EUR", Lines: testLines(), At: t0}
}

func placedEvent() OrderPlaced {
	return OrderPlaced{OrderID: testOrderID, CustomerID: "cust_1", Currency: "EUR", Lines: testLines(), TotalCents: testTotal, At: t0}
}

// historyFor returns events that bring a new order to status st ("" for
// an order that does not exist).
func historyFor(st OrderStatus) []OrderEvent {
	placed := placedEvent()
	confirmed := OrderConfirmed{At: at(time.Minute)}
	paid := OrderPaid{AmountCents: testTotal, PaymentRef: "pay-1", At: at(2 * time.Minute)}
	shipped := OrderShipped{Carrier: "DHL", TrackingNumber: "TN1", At: at(3 * time.Minute)}
	switch st {
	case "":
		return nil
	case StatusPending:
		return []OrderEvent{placed}
	case StatusConfirmed:
		return []OrderEvent{placed, confirmed}
	case StatusRejected:
		return []OrderEvent{placed, OrderRejected{Reason: "short", ShortSKUs: []string{"apple"}, At: at(time.Minute)}}
	case StatusPaid:
		return []OrderEvent{placed, confirmed, paid}
	case StatusShipped:
		return []OrderEvent{placed, confirmed, paid, shipped}
	case StatusDelivered:
		return []OrderEvent{placed, confirmed, paid, shipped, OrderDelivered{At: at(4 * time.Minute)}}
	case StatusCancelled:
		return []OrderEvent{placed, OrderCancelled{PreviousStatus: StatusPending, At: at(time.Minute)}}
	case StatusExpired:
		return []OrderEvent{placed, confirmed, OrderExpired{At: at(time.Minute + testTTL)}}
	}
	panic("unknown status " + st)
}

var allStatuses = []OrderStatus{"", StatusPending, StatusConfirmed, StatusRejected, StatusPaid,
	StatusShipped, StatusDelivered, StatusCancelled, StatusExpired}

func foldOrder(tb testing.TB, events []OrderEvent) Order {
	tb.Helper()
	var s Order
	for _, e := range events {
		s = EvolveOrder(s, e)
	}
	return s
}

func foldSKU(tb testing.TB, events []SKUEvent) SKU {
	tb.Helper()
	var s SKU
	for _, e := range events {
		s = EvolveSKU(s, e)
	}
	return s
}

// fieldKeys returns the sorted field paths of a validation error, or nil
// when err is not one.
func fieldKeys(tb testing.TB, err error) []string {
	tb.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		return nil
	}
	keys := make([]string, 0, len(ve.Fields))
	for k := range ve.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// checkErr asserts err matches want (nil meaning no error) and, for a
// validation error, that it names exactly the fields in fields.
func checkErr(tb testing.TB, err, want error, fields ...string) {
	tb.Helper()
	if want == nil {
		if err != nil {
			tb.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if !errors.Is(err, want) {
		tb.Fatalf("error = %v, want %v", err, want)
	}
	if want == ErrValidation {
		sort.Strings(fields)
		if got := fieldKeys(tb, err); !slices.Equal(got, fields) {
			tb.Fatalf("validation fields = %q, want %q (%v)", got, fields, err)
		}
	}
}

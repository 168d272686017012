package domain

import (
	"reflect"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
)

func TestEvolveOrderFoldsAHistory(t *testing.T) {
	t.Parallel()
	s := foldOrder(t, historyFor(StatusDelivered))
	want := Order{
		ID: testOrderID, CustomerID: "cust_1", Currency: "EUR", Lines: testLines(),
		TotalCents: testTotal, PaidCents: testTotal, PaymentRef: "pay-1",
		Carrier: "DHL", TrackingNumber: "TN1", Status: StatusDelivered, Version: 5,
		CreatedAt: t0, UpdatedAt: at(4 * time.Minute), ConfirmedAt: at(time.Minute),
	}
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("state = %+v\nwant    %+v", s, want)
	}
}

func TestEvolveOrderRecordsOutcomes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		given OrderStatus
		then  OrderEvent
		check func(Order) bool
	}{
		{"reject keeps the reason", StatusPending, OrderRejected{Reason: "short", At: t0},
			func(o Order) bool { return o.RejectReason == "short" && o.Status == StatusRejected }},
		{"cancel keeps reason and refund", StatusPaid, OrderCancelled{Reason: "r", PreviousStatus: StatusPaid, RefundDueCents: testTotal, At: at(time.Hour)},
			func(o Order) bool {
				return o.CancelReason == "r" && o.RefundDueCents == testTotal && o.Status == StatusCancelled && o.UpdatedAt.Equal(at(time.Hour))
			}},
		{"expire", StatusConfirmed, OrderExpired{At: at(time.Hour)},
			func(o Order) bool {
				return o.Status == StatusExpired && o.Terminal() && o.ConfirmedAt.Equal(at(time.Minute))
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := foldOrder(t, historyFor(tt.given))
			next := EvolveOrder(s, tt.then)
			if !tt.check(next) || next.Version != s.Version+1 {
				t.Fatalf("unexpected state %+v", next)
			}
		})
	}
}

func TestOrderExistsAndTerminal(t *testing.T) {
	t.Parallel()
	terminal := map[OrderStatus]bool{StatusRejected: true, StatusDelivered: true, StatusCancelled: true, StatusExpired: true}
	for _, st := range allStatuses {
		s := foldOrder(t, historyFor(st))
		if s.Exists() != (st != "") || s.Terminal() != terminal[st] || s.Status != st {
			t.Errorf("status %q: exists %v terminal %v", st, s.Exists(), s.Terminal())
		}
	}
}

func TestEvolveOrderPanicsOutsideTheClosedSet(t *testing.T) {
	t.Parallel()
	for _, e := range []OrderEvent{nil, &OrderConfirmed{At: t0}} {
		func() {
			defer func() {
				r := recover()
				if err, ok := r.(error); !ok || !errors.IsAssertionFailure(err) {
					t.Errorf("%T: recovered %v, want an assertion failure", e, r)
				}
			}()
			EvolveOrder(Order{}, e)
		}()
	}
}

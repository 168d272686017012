package domain

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
)

// outcome is what the transition matrix expects of one command in one
// status.
type outcome int

const (
	allowed  outcome = iota // events that move the order, no error
	recorded                // events that keep the status (a line outcome), no error
	noop                    // no events, no error (idempotent redelivery, late outcome)
	notFound                // ErrNotFound
	conflict                // ErrConflict
	refused                 // ErrInvalidTransition
)

func (o outcome) String() string {
	return [...]string{"allowed", "recorded", "noop", "not found", "conflict", "refused"}[o]
}

// matrixCommands are valid commands of every kind, timed so that an
// expiry is due.
var matrixCommands = []OrderCommand{
	validPlace(),
	ConfirmOrder{At: at(time.Hour)},
	RejectOrder{Reason: "short", At: at(time.Hour)},
	PayOrder{AmountCents: testTotal, PaymentRef: "pay-1", At: at(time.Hour)},
	ShipOrder{Carrier: "DHL", TrackingNumber: "TN1", At: at(time.Hour)},
	DeliverOrder{At: at(time.Hour)},
	CancelOrder{Reason: "changed my mind", At: at(time.Hour)},
	ExpireOrder{TTL: testTTL, At: at(time.Hour)},
	RecordReservation{SKU: "apple", Granted: true, At: at(time.Hour)},
	RecordReservation{SKU: "apple", Available: 1, At: at(time.Hour)},
}

// wantMatrix[status][command] follows the order's life in API.md. A
// reservation outcome is never refused: once the order is no longer
// pending it is late, and late outcomes need nothing.
var wantMatrix = map[OrderStatus][10]outcome{
	//                Place     Confirm   Reject    Pay       Ship      Deliver   Cancel    Expire    Grant     Refuse
	"":              {allowed, notFound, notFound, notFound, notFound, notFound, notFound, notFound, notFound, notFound},
	StatusPending:   {conflict, allowed, allowed, refused, refused, refused, allowed, refused, recorded, allowed},
	StatusConfirmed: {conflict, noop, refused, allowed, refused, refused, allowed, allowed, noop, noop},
	StatusRejected:  {conflict, refused, noop, refused, refused, refused, refused, refused, noop, noop},
	StatusPaid:      {conflict, refused, refused, refused, allowed, refused, allowed, refused, noop, noop},
	StatusShipped:   {conflict, refused, refused, refused, refused, allowed, refused, refused, noop, noop},
	StatusDelivered: {conflict, refused, refused, refused, refused, refused, refused, refused, noop, noop},
	StatusCancelled: {conflict, refused, refused, refused, refused, refused, refused, refused, noop, noop},
	StatusExpired:   {conflict, refused, refused, refused, refused, refused, refused, noop, noop, noop},
}

// commandName names c in subtests; the two reservation outcomes differ
// only by a field.
func commandName(c OrderCommand) string {
	if r, ok := c.(RecordReservation); ok {
		return fmt.Sprintf("%T/granted=%v", c, r.Granted)
	}
	return fmt.Sprintf("%T", c)
}

func TestDecideOrderTransitionMatrix(t *testing.T) {
	t.Parallel()
	for _, st := range allStatuses {
		for i, c := range matrixCommands {
			name := fmt.Sprintf("%s/%s", cmp(st == "", "not-existing", string(st)), commandName(c))
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				s := foldOrder(t, historyFor(st))
				events, err := DecideOrder(s, c)
				want := wantMatrix[st][i]
				switch want {
				case allowed, recorded:
					if err != nil || len(events) == 0 {
						t.Fatalf("want events, got %v, %v", events, err)
					}
					next := s
					for _, e := range events {
						next = EvolveOrder(next, e)
					}
					if next.Version != s.Version+uint64(len(events)) || (next.Status != s.Status) != (want == allowed) {
						t.Fatalf("events %v: want %s, got %+v", events, want, next)
					}
				case noop:
					if err != nil || len(events) != 0 {
						t.Fatalf("want no events and no error, got %v, %v", events, err)
					}
				case notFound:
					checkRefusal(t, events, err, ErrNotFound)
				case conflict:
					checkRefusal(t, events, err, ErrConflict)
				case refused:
					checkRefusal(t, events, err, ErrInvalidTransition)
				}
			})
		}
	}
}

func cmp(cond bool, a, b string) string {
	if cond {
		return a
	}
	return b
}

func checkRefusal(t *testing.T, events []OrderEvent, err, want error) {
	t.Helper()
	if len(events) != 0 {
		t.Fatalf("refused command emitted %v", events)
	}
	checkErr(t, err, want)
	// The invalid-transition message must name the status so the client
	// sees why.
	if want == ErrInvalidTransition && !strings.Contains(err.Error(), "status") {
		t.Fatalf("error %q does not name the status", err)
	}
}

func TestDecideOrder(t *testing.T) {
	t.Parallel()
	due := at(time.Minute + testTTL) // confirmed at t0+1m in historyFor
	tests := []struct {
		name   string
		given  OrderStatus
		when   OrderCommand
		then   []OrderEvent
		err    error
		fields []string
	}{
		{
			name: "place emits the order with its total", given: "", when: validPlace(),
			then: []OrderEvent{placedEvent()},
		},
		{
			name: "place normalises the time to UTC", given: "",
			when: func() OrderCommand { c := validPlace(); c.At = t0.In(time.FixedZone("X", 3600)); return c }(),
			then: []OrderEvent{placedEvent()},
		},
		{name: "confirm pending", given: StatusPending, when: ConfirmOrder{At: at(time.Minute)}, then: []OrderEvent{OrderConfirmed{At: at(time.Minute)}}},
		{name: "confirm is idempotent", given: StatusConfirmed, when: ConfirmOrder{At: at(time.Hour)}},
		{
			name: "reject pending", given: StatusPending,
			when: RejectOrder{Reason: "insufficient stock", ShortSKUs: []string{"apple"}, At: at(time.Minute)},
			then: []OrderEvent{OrderRejected{Reason: "insufficient stock", ShortSKUs: []string{"apple"}, At: at(time.Minute)}},
		},
		{name: "reject is idempotent", given: StatusRejected, when: RejectOrder{Reason: "again", At: at(time.Hour)}},
		{name: "reject needs a reason", given: StatusPending, when: RejectOrder{At: at(time.Minute)}, err: ErrValidation, fields: []string{"reason"}},
		{name: "confirm after reject is refused", given: StatusRejected, when: ConfirmOrder{At: at(time.Hour)}, err: ErrInvalidTransition},
		{name: "reject after confirm is refused", given: StatusConfirmed, when: RejectOrder{Reason: "late", At: at(time.Hour)}, err: ErrInvalidTransition},
		{
			name: "pay the exact total", given: StatusConfirmed,
			when: PayOrder{AmountCents: testTotal, PaymentRef: "psp-42", At: at(2 * time.Minute)},
			then: []OrderEvent{OrderPaid{AmountCents: testTotal, PaymentRef: "psp-42", At: at(2 * time.Minute)}},
		},
		{name: "pay less than the total", given: StatusConfirmed, when: PayOrder{AmountCents: testTotal - 1, PaymentRef: "p", At: at(time.Hour)}, err: ErrValidation, fields: []string{"amount_cents"}},
		{name: "pay more than the total", given: StatusConfirmed, when: PayOrder{AmountCents: testTotal + 1, PaymentRef: "p", At: at(time.Hour)}, err: ErrValidation, fields: []string{"amount_cents"}},
		{name: "pay without reference", given: StatusConfirmed, when: PayOrder{AmountCents: 0, At: at(time.Hour)}, err: ErrValidation, fields: []string{"amount_cents", "payment_ref"}},
		{name: "pay with a blank reference", given: StatusConfirmed, when: PayOrder{AmountCents: testTotal, PaymentRef: "   ", At: at(time.Hour)}, err: ErrValidation, fields: []string{"payment_ref"}},
		{name: "pay with a control character", given: StatusConfirmed, when: PayOrder{AmountCents: testTotal, PaymentRef: "a\nb", At: at(time.Hour)}, err: ErrValidation, fields: []string{"payment_ref"}},
		{name: "pay with a 255-byte reference", given: StatusConfirmed, when: PayOrder{AmountCents: testTotal, PaymentRef: strings.Repeat("r", 255), At: at(time.Hour)}, then: []OrderEvent{OrderPaid{AmountCents: testTotal, PaymentRef: strings.Repeat("r", 255), At: at(time.Hour)}}},
		{name: "pay with a 256-byte reference", given: StatusConfirmed, when: PayOrder{AmountCents: testTotal, PaymentRef: strings.Repeat("r", 256), At: at(time.Hour)}, err: ErrValidation, fields: []string{"payment_ref"}},
		{name: "pay a pending order is a transition error before validation", given: StatusPending, when: PayOrder{At: at(time.Hour)}, err: ErrInvalidTransition},
		{name: "pay twice", given: StatusPaid, when: PayOrder{AmountCents: testTotal, PaymentRef: "p", At: at(time.Hour)}, err: ErrInvalidTransition},
		{
			name: "ship paid", given: StatusPaid, when: ShipOrder{Carrier: "UPS", TrackingNumber: "1Z999", At: at(time.Hour)},
			then: []OrderEvent{OrderShipped{Carrier: "UPS", TrackingNumber: "1Z999", At: at(time.Hour)}},
		},
		{name: "ship without carrier and tracking", given: StatusPaid, when: ShipOrder{At: at(time.Hour)}, err: ErrValidation, fields: []string{"carrier", "tracking_number"}},
		{name: "ship with an invalid UTF-8 carrier", given: StatusPaid, when: ShipOrder{Carrier: "\xff", TrackingNumber: "t", At: at(time.Hour)}, err: ErrValidation, fields: []string{"carrier"}},
		{name: "ship with a bidi override", given: StatusPaid, when: ShipOrder{Carrier: "DHL", TrackingNumber: "t\u202e1", At: at(time.Hour)}, err: ErrValidation, fields: []string{"tracking_number"}},
		{name: "ship with unicode text", given: StatusPaid, when: ShipOrder{Carrier: "La Poste Économique", TrackingNumber: "№ 1", At: at(time.Hour)}, then: []OrderEvent{OrderShipped{Carrier: "La Poste Économique", TrackingNumber: "№ 1", At: at(time.Hour)}}},
		{name: "ship a confirmed order", given: StatusConfirmed, when: ShipOrder{Carrier: "UPS", TrackingNumber: "1", At: at(time.Hour)}, err: ErrInvalidTransition},
		{name: "deliver shipped", given: StatusShipped, when: DeliverOrder{At: at(time.Hour)}, then: []OrderEvent{OrderDelivered{At: at(time.Hour)}}},
		{name: "deliver twice", given: StatusDelivered, when: DeliverOrder{At: at(time.Hour)}, err: ErrInvalidTransition},
		{
			name: "cancel pending owes nothing", given: StatusPending, when: CancelOrder{At: at(time.Hour)},
			then: []OrderEvent{OrderCancelled{PreviousStatus: StatusPending, CancelledBy: CancelledByCustomer, At: at(time.Hour)}},
		},
		{
			name: "cancel confirmed owes nothing", given: StatusConfirmed, when: CancelOrder{Reason: "changed my mind", At: at(time.Hour)},
			then: []OrderEvent{OrderCancelled{Reason: "changed my mind", PreviousStatus: StatusConfirmed, CancelledBy: CancelledByCustomer, At: at(time.Hour)}},
		},
		{
			name: "cancel paid owes the payment back", given: StatusPaid, when: CancelOrder{Reason: "x", At: at(time.Hour)},
			then: []OrderEvent{OrderCancelled{Reason: "x", PreviousStatus: StatusPaid, RefundDueCents: testTotal, CancelledBy: CancelledByCustomer, At: at(time.Hour)}},
		},
		{
			name: "cancel by an operator", given: StatusConfirmed, when: CancelOrder{By: CancelledByOperator, At: at(time.Hour)},
			then: []OrderEvent{OrderCancelled{PreviousStatus: StatusConfirmed, CancelledBy: CancelledByOperator, At: at(time.Hour)}},
		},
		{name: "cancel by someone unknown", given: StatusPending, when: CancelOrder{By: "unknown", At: at(time.Hour)}, err: ErrValidation, fields: []string{"by"}},
		{name: "cancel with a 256-byte reason", given: StatusPending, when: CancelOrder{Reason: strings.Repeat("é", 128), At: at(time.Hour)}, err: ErrValidation, fields: []string{"reason"}},
		{name: "cancel with a control character", given: StatusPending, when: CancelOrder{Reason: "\x00", At: at(time.Hour)}, err: ErrValidation, fields: []string{"reason"}},
		{name: "cancel shipped", given: StatusShipped, when: CancelOrder{At: at(time.Hour)}, err: ErrInvalidTransition},
		{name: "cancel twice", given: StatusCancelled, when: CancelOrder{At: at(time.Hour)}, err: ErrInvalidTransition},
		{name: "expire exactly when due", given: StatusConfirmed, when: ExpireOrder{TTL: testTTL, At: due}, then: []OrderEvent{OrderExpired{At: due}}},
		{name: "expire after due", given: StatusConfirmed, when: ExpireOrder{TTL: testTTL, At: due.Add(time.Hour)}, then: []OrderEvent{OrderExpired{At: due.Add(time.Hour)}}},
		{name: "expire one nanosecond early", given: StatusConfirmed, when: ExpireOrder{TTL: testTTL, At: due.Add(-1)}, err: ErrInvalidTransition},
		{name: "expire is idempotent", given: StatusExpired, when: ExpireOrder{TTL: testTTL, At: due.Add(time.Hour)}},
		{name: "expire a paid order", given: StatusPaid, when: ExpireOrder{TTL: testTTL, At: due.Add(time.Hour)}, err: ErrInvalidTransition},
		{name: "expire a pending order", given: StatusPending, when: ExpireOrder{TTL: testTTL, At: due.Add(time.Hour)}, err: ErrInvalidTransition},
		{name: "place over an existing order", given: StatusDelivered, when: validPlace(), err: ErrConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			events, err := DecideOrder(foldOrder(t, historyFor(tt.given)), tt.when)
			checkErr(t, err, tt.err, tt.fields...)
			if !reflect.DeepEqual(events, tt.then) {
				t.Fatalf("events = %#v\nwant     %#v", events, tt.then)
			}
		})
	}
}

func TestDecideOrderProgrammingErrors(t *testing.T) {
	t.Parallel()
	confirmed := foldOrder(t, historyFor(StatusConfirmed))
	tests := []struct {
		name string
		s    Order
		c    OrderCommand
	}{
		{"nil command", confirmed, nil},
		{"pointer command", confirmed, &ConfirmOrder{At: t0}},
		{"zero time", confirmed, PayOrder{AmountCents: testTotal, PaymentRef: "p"}},
		{"zero time on place", Order{}, PlaceOrder{OrderID: testOrderID}},
		{"zero TTL", confirmed, ExpireOrder{At: at(time.Hour)}},
		{"negative TTL", foldOrder(t, historyFor(StatusExpired)), ExpireOrder{TTL: -time.Second, At: at(time.Hour)}},
		{"zero time on a reservation outcome", foldOrder(t, historyFor(StatusPending)), RecordReservation{SKU: "apple", Granted: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			events, err := DecideOrder(tt.s, tt.c)
			if !errors.IsAssertionFailure(err) || events != nil {
				t.Fatalf("want an assertion failure, got %v, %v", events, err)
			}
		})
	}
}

func TestDecidePlaceOrderValidation(t *testing.T) {
	t.Parallel()
	lines := func(n int) []Line {
		ls := make([]Line, n)
		for i := range ls {
			ls[i] = Line{SKU: fmt.Sprintf("sku-%d", i), Qty: 1, UnitPriceCents: 1}
		}
		return ls
	}
	withLine := func(l Line) func(*PlaceOrder) {
		return func(c *PlaceOrder) { c.Lines = []Line{l} }
	}
	tests := []struct {
		name   string
		edit   func(*PlaceOrder)
		fields []string // nil: valid
	}{
		{"valid", func(*PlaceOrder) {}, nil},
		{"qty 0", withLine(Line{SKU: "a", Qty: 0}), []string{"lines[0].qty"}},
		{"qty 1", withLine(Line{SKU: "a", Qty: 1}), nil},
		{"qty 10000", withLine(Line{SKU: "a", Qty: 10000}), nil},
		{"qty 10001", withLine(Line{SKU: "a", Qty: 10001}), []string{"lines[0].qty"}},
		{"qty negative", withLine(Line{SKU: "a", Qty: -1}), []string{"lines[0].qty"}},
		{"price -1", withLine(Line{SKU: "a", Qty: 1, UnitPriceCents: -1}), []string{"lines[0].unit_price_cents"}},
		{"price 0", withLine(Line{SKU: "a", Qty: 1, UnitPriceCents: 0}), nil},
		{"price 100000000", withLine(Line{SKU: "a", Qty: 1, UnitPriceCents: 100_000_000}), nil},
		{"price 100000001", withLine(Line{SKU: "a", Qty: 1, UnitPriceCents: 100_000_001}), []string{"lines[0].unit_price_cents"}},
		{"0 lines", func(c *PlaceOrder) { c.Lines = nil }, []string{"lines"}},
		{"empty lines", func(c *PlaceOrder) { c.Lines = []Line{} }, []string{"lines"}},
		{"1 line", func(c *PlaceOrder) { c.Lines = lines(1) }, nil},
		{"100 lines", func(c *PlaceOrder) { c.Lines = lines(100) }, nil},
		{"101 lines", func(c *PlaceOrder) { c.Lines = lines(101) }, []string{"lines"}},
		{"sku subject wildcard", withLine(Line{SKU: "A.>", Qty: 1}), []string{"lines[0].sku"}},
		{"sku with a space", withLine(Line{SKU: "a b", Qty: 1}), []string{"lines[0].sku"}},
		{"sku star", withLine(Line{SKU: "*", Qty: 1}), []string{"lines[0].sku"}},
		{"sku empty", withLine(Line{SKU: "", Qty: 1}), []string{"lines[0].sku"}},
		{"sku 64 chars", withLine(Line{SKU: strings.Repeat("s", 64), Qty: 1}), nil},
		{"sku 65 chars", withLine(Line{SKU: strings.Repeat("s", 65), Qty: 1}), []string{"lines[0].sku"}},
		{"sku starting with a dash", withLine(Line{SKU: "-a", Qty: 1}), []string{"lines[0].sku"}},
		{
			"duplicate sku", func(c *PlaceOrder) { c.Lines = append(c.Lines, Line{SKU: "apple", Qty: 1}) },
			[]string{"lines[2].sku"},
		},
		{"currency usd", func(c *PlaceOrder) { c.Currency = "usd" }, []string{"currency"}},
		{"currency US", func(c *PlaceOrder) { c.Currency = "US" }, []string{"currency"}},
		{"currency USD", func(c *PlaceOrder) { c.Currency = "USD" }, nil},
		{"order id upper case", func(c *PlaceOrder) { c.OrderID = strings.ToUpper(testOrderID) }, []string{"order_id"}},
		{"order id empty", func(c *PlaceOrder) { c.OrderID = "" }, []string{"order_id"}},
		{"customer id with a dot", func(c *PlaceOrder) { c.CustomerID = "a.b" }, []string{"customer_id"}},
		{
			"total overflows", withLine(Line{SKU: "a", Qty: 1 << 62, UnitPriceCents: 4}),
			[]string{"lines", "lines[0].qty"},
		},
		{
			"every field at once",
			func(c *PlaceOrder) {
				*c = PlaceOrder{Currency: "eur", At: t0, Lines: []Line{
					{SKU: "ok", Qty: 0, UnitPriceCents: -5},
					{SKU: "ok", Qty: 1, UnitPriceCents: 1},
				}}
			},
			[]string{"currency", "customer_id", "lines[0].qty", "lines[0].unit_price_cents", "lines[1].sku", "order_id"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := validPlace()
			tt.edit(&c)
			events, err := DecideOrder(Order{}, c)
			verr := c.Validate() // the check callers make before deciding
			if tt.fields == nil {
				if err != nil || len(events) != 1 || verr != nil {
					t.Fatalf("want one event, got %v, %v; Validate: %v", events, err, verr)
				}
				return
			}
			checkErr(t, err, ErrValidation, tt.fields...)
			checkErr(t, verr, ErrValidation, tt.fields...)
		})
	}
}

func TestDecidePlaceOrderMessages(t *testing.T) {
	t.Parallel()
	c := validPlace()
	c.Lines = []Line{{SKU: "a", Qty: 10001, UnitPriceCents: 100_000_001}, {SKU: "a", Qty: 1}}
	_, err := DecideOrder(Order{}, c)
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want a *ValidationError, got %v", err)
	}
	want := map[string]string{
		"lines[0].qty":              "must be between 1 and 10000",
		"lines[0].unit_price_cents": "must be between 0 and 100000000",
		"lines[1].sku":              "duplicate sku",
	}
	if !reflect.DeepEqual(ve.Fields, want) {
		t.Fatalf("fields = %q, want %q", ve.Fields, want)
	}
	c.Lines = nil
	_, err = DecideOrder(Order{}, c)
	if !errors.As(err, &ve) || ve.Fields["lines"] != "must have between 1 and 100 lines" {
		t.Fatalf("lines message: %v", err)
	}
	s := foldOrder(t, historyFor(StatusConfirmed))
	_, err = DecideOrder(s, PayOrder{AmountCents: 1, PaymentRef: "p", At: t0})
	if !errors.As(err, &ve) || ve.Fields["amount_cents"] != fmt.Sprintf("must equal the order total %d", testTotal) {
		t.Fatalf("amount message: %v", err)
	}
}

// The event must not alias the command's lines: the caller may reuse its
// slice after the command was decided.
func TestDecidePlaceOrderCopiesLines(t *testing.T) {
	t.Parallel()
	c := validPlace()
	events, err := DecideOrder(Order{}, c)
	if err != nil {
		t.Fatal(err)
	}
	c.Lines[0].Qty = 9999
	if got := events[0].(OrderPlaced).Lines[0].Qty; got != 2 {
		t.Fatalf("event line changed with the command: qty %d", got)
	}
	s := EvolveOrder(Order{}, events[0])
	events[0].(OrderPlaced).Lines[0].Qty = 7777
	if s.Lines[0].Qty != 2 {
		t.Fatalf("state line changed with the event: qty %d", s.Lines[0].Qty)
	}
}

func TestDecideOrderErrorsCarryHints(t *testing.T) {
	t.Parallel()
	_, err := DecideOrder(foldOrder(t, historyFor(StatusPending)), PayOrder{At: t0})
	if hints := errors.GetAllHints(err); len(hints) == 0 {
		t.Fatalf("no hint on %v", err)
	}
	if got, want := err.Error(), "cannot pay an order in status pending: invalid transition"; got != want {
		t.Fatalf("message = %q, want %q", got, want)
	}
}

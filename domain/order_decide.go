package domain

import (
	"fmt"
	"slices"
	"time"

	"github.com/cockroachdb/errors"
)

// DecideOrder decides which events command c produces on order s. It
// returns no events and a nil error when c is a redelivery of an outcome
// already recorded (confirm, reject, expire, a line's reservation), so the
// saga can retry freely, and for a reservation outcome that arrives after
// the order stopped being pending.
//
// Errors, to be compared with errors.Is:
//   - ErrConflict: PlaceOrder on an order that exists;
//   - ErrNotFound: any other command on an order that does not exist, or
//     a reservation outcome for a SKU the order has no line for;
//   - ErrInvalidTransition: the order's status does not allow c (checked
//     before the fields, so a client learns first that the action is
//     impossible), or an expiry that is not due yet;
//   - ErrValidation (a *ValidationError naming every bad field), among
//     them a refund beyond what is left of the payment and a return of
//     more units than were delivered and not returned yet;
//   - an assertion failure for programming errors: a command outside the
//     closed set, a command without a time, an expiry without a TTL.
func DecideOrder(s Order, c OrderCommand) ([]OrderEvent, error) {
	if c == nil {
		return nil, errors.AssertionFailedf("domain: nil order command")
	}
	if _, ok := c.(PlaceOrder); !ok && !s.Exists() {
		return nil, errors.Wrapf(ErrNotFound, "order")
	}
	switch c := c.(type) {
	case PlaceOrder:
		return decidePlace(s, c)
	case ConfirmOrder:
		return decideConfirm(s, c)
	case RejectOrder:
		return decideReject(s, c)
	case PayOrder:
		return decidePay(s, c)
	case ShipOrder:
		return decideShip(s, c)
	case DeliverOrder:
		return decideDeliver(s, c)
	case CancelOrder:
		return decideCancel(s, c)
	case ExpireOrder:
		return decideExpire(s, c)
	case RecordReservation:
		return decideRecordReservation(s, c)
	case RefundOrder:
		return decideRefund(s, c)
	case ReturnLines:
		return decideReturn(s, c)
	default:
		return nil, errors.AssertionFailedf("domain: unknown order command %T", c)
	}
}

// eventTime normalises a command's time for storage: UTC without a
// monotonic reading, so events encode, hash and compare identically
// wherever they were decided. A zero time means the caller forgot to
// stamp the command, which would corrupt as-of queries and expiry.
func eventTime(c any, at time.Time) (time.Time, error) {
	if at.IsZero() {
		return time.Time{}, errors.AssertionFailedf("domain: %T has no time", c)
	}
	return at.UTC(), nil
}

// Validate checks c's fields as placing it would, and fails with a
// *ValidationError naming every bad one: a caller can refuse bad input
// before anything else (the backlog check) without deciding.
func (c PlaceOrder) Validate() error {
	_, err := c.validate()
	return err
}

// validate checks c's fields and returns the order's total.
func (c PlaceOrder) validate() (int64, error) {
	var fe fieldErrors
	if !ValidOrderID(c.OrderID) {
		fe.add("order_id", "must be a lower-case UUID")
	}
	if !ValidCustomerID(c.CustomerID) {
		fe.add("customer_id", TokenRule)
	}
	if !ValidCurrency(c.Currency) {
		fe.add("currency", CurrencyRule)
	}
	total := checkLines(&fe, c.Lines)
	return total, fe.err()
}

func decidePlace(s Order, c PlaceOrder) ([]OrderEvent, error) {
	at, err := eventTime(c, c.At)
	if err != nil {
		return nil, err
	}
	if s.Exists() {
		return nil, errors.WithHint(errors.Wrapf(ErrConflict, "order already exists"),
			"order ids are assigned once; place a new order instead")
	}
	total, err := c.validate()
	if err != nil {
		return nil, err
	}
	return []OrderEvent{OrderPlaced{
		OrderID:    c.OrderID,
		CustomerID: c.CustomerID,
		Currency:   c.Currency,
		Lines:      slices.Clone(c.Lines),
		TotalCents: total,
		At:         at,
	}}, nil
}

// checkLines validates the lines and returns their total. Lines are only
// inspected one by one when their count is within limits, so an oversized
// request cannot make the error itself oversized.
func checkLines(fe *fieldErrors, lines []Line) int64 {
	if len(lines) < 1 || len(lines) > MaxLines {
		fe.add("lines", fmt.Sprintf("must have between 1 and %d lines", MaxLines))
		return 0
	}
	// A reservation is keyed by order and SKU, so two lines of one SKU
	// would collide in the inventory.
	seen := make(map[string]struct{}, len(lines))
	var total int64
	overflow := false
	for i, l := range lines {
		field := fmt.Sprintf("lines[%d].", i)
		if !ValidSKU(l.SKU) {
			fe.add(field+"sku", TokenRule)
		} else if _, dup := seen[l.SKU]; dup {
			fe.add(field+"sku", "duplicate sku")
		}
		seen[l.SKU] = struct{}{}
		checkRange(fe, field+"qty", l.Qty, 1, MaxQty)
		checkRange(fe, field+"unit_price_cents", l.UnitPriceCents, 0, MaxUnitPriceCents)
		// The limits make overflow impossible today; the check keeps it so
		// if they are ever raised.
		amount, ok := mulInt64(l.Qty, l.UnitPriceCents)
		if ok {
			total, ok = addInt64(total, amount)
		}
		overflow = overflow || !ok
	}
	if overflow {
		fe.add("lines", "order total overflows")
	}
	return total
}

func decideConfirm(s Order, c ConfirmOrder) ([]OrderEvent, error) {
	at, err := eventTime(c, c.At)
	if err != nil {
		return nil, err
	}
	switch s.Status {
	case StatusPending:
		return []OrderEvent{OrderConfirmed{At: at}}, nil
	case StatusConfirmed:
		return nil, nil
	}
	return nil, invalidTransition("only a pending order can be confirmed",
		"cannot confirm an order in status %s", s.Status)
}

func decideReject(s Order, c RejectOrder) ([]OrderEvent, error) {
	at, err := eventTime(c, c.At)
	if err != nil {
		return nil, err
	}
	switch s.Status {
	case StatusPending:
	case StatusRejected:
		return nil, nil
	default:
		return nil, invalidTransition("only a pending order can be rejected",
			"cannot reject an order in status %s", s.Status)
	}
	if c.Reason == "" {
		var fe fieldErrors
		fe.add("reason", "is required")
		return nil, fe.err()
	}
	return []OrderEvent{OrderRejected{Reason: c.Reason, ShortSKUs: slices.Clone(c.ShortSKUs), At: at}}, nil
}

func decidePay(s Order, c PayOrder) ([]OrderEvent, error) {
	at, err := eventTime(c, c.At)
	if err != nil {
		return nil, err
	}
	if s.Status != StatusConfirmed {
		return nil, invalidTransition("an order can be paid once it is confirmed, and only once",
			"cannot pay an order in status %s", s.Status)
	}
	var fe fieldErrors
	if c.AmountCents != s.TotalCents {
		fe.add("amount_cents", fmt.Sprintf("must equal the order total %d", s.TotalCents))
	}
	checkText(&fe, "payment_ref", c.PaymentRef, true)
	if err := fe.err(); err != nil {
		return nil, err
	}
	return []OrderEvent{OrderPaid{AmountCents: c.AmountCents, PaymentRef: c.PaymentRef, At: at}}, nil
}

func decideShip(s Order, c ShipOrder) ([]OrderEvent, error) {
	at, err := eventTime(c, c.At)
	if err != nil {
		return nil, err
	}
	if s.Status != StatusPaid {
		return nil, invalidTransition("an order can be shipped once it is paid",
			"cannot ship an order in status %s", s.Status)
	}
	var fe fieldErrors
	checkText(&fe, "carrier", c.Carrier, true)
	checkText(&fe, "tracking_number", c.TrackingNumber, true)
	if err := fe.err(); err != nil {
		return nil, err
	}
	return []OrderEvent{OrderShipped{Carrier: c.Carrier, TrackingNumber: c.TrackingNumber, At: at}}, nil
}

func decideDeliver(s Order, c DeliverOrder) ([]OrderEvent, error) {
	at, err := eventTime(c, c.At)
	if err != nil {
		return nil, err
	}
	if s.Status != StatusShipped {
		return nil, invalidTransition("an order can be delivered once it is shipped",
			"cannot deliver an order in status %s", s.Status)
	}
	return []OrderEvent{OrderDelivered{At: at}}, nil
}

func decideCancel(s Order, c CancelOrder) ([]OrderEvent, error) {
	at, err := eventTime(c, c.At)
	if err != nil {
		return nil, err
	}
	var refund int64
	switch s.Status {
	case StatusPending, StatusConfirmed:
	case StatusPaid:
		// The whole payment is owed back, less the partial refunds already
		// made: nothing has shipped yet.
		refund = s.Refundable()
	default:
		return nil, invalidTransition("an order can be cancelled while pending, confirmed or paid",
			"cannot cancel an order in status %s", s.Status)
	}
	var fe fieldErrors
	checkText(&fe, "reason", c.Reason, false)
	by := c.By
	switch by {
	case "":
		by = CancelledByCustomer
	case CancelledByCustomer, CancelledByOperator, CancelledBySystem:
	default:
		fe.add("by", "must be customer, operator or system")
	}
	if err := fe.err(); err != nil {
		return nil, err
	}
	return []OrderEvent{OrderCancelled{
		Reason:         c.Reason,
		PreviousStatus: s.Status,
		RefundDueCents: refund,
		CancelledBy:    by,
		At:             at,
	}}, nil
}

func decideExpire(s Order, c ExpireOrder) ([]OrderEvent, error) {
	at, err := eventTime(c, c.At)
	if err != nil {
		return nil, err
	}
	if c.TTL <= 0 {
		return nil, errors.AssertionFailedf("domain: ExpireOrder needs a positive TTL, got %s", c.TTL)
	}
	switch s.Status {
	case StatusConfirmed:
	case StatusExpired:
		return nil, nil
	default:
		return nil, invalidTransition("only a confirmed, unpaid order can expire",
			"cannot expire an order in status %s", s.Status)
	}
	// The saga may fire early (clock skew between nodes, a timer
	// scheduled from a stale view); the order itself decides.
	due := s.ExpiryDue(c.TTL)
	if at.Before(due) {
		return nil, errors.WithHint(
			errors.Wrapf(ErrInvalidTransition, "reservation not yet expired: due at %s", due.UTC().Format(time.RFC3339Nano)),
			"retry at or after the due time")
	}
	return []OrderEvent{OrderExpired{At: at}}, nil
}

// reasonInsufficientStock is the RejectReason of an order rejected because
// one of its lines was refused.
const reasonInsufficientStock = "insufficient stock"

func decideRecordReservation(s Order, c RecordReservation) ([]OrderEvent, error) {
	at, err := eventTime(c, c.At)
	if err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(s.Lines, func(l Line) bool { return l.SKU == c.SKU }) {
		return nil, errors.Wrapf(ErrNotFound, "order has no line for sku %s", c.SKU)
	}
	// A late outcome needs nothing: whatever moved the order out of
	// pending also asked to release every line, later in each SKU's
	// stream than this reserve, so a late grant is released there.
	if s.Status != StatusPending {
		return nil, nil
	}
	if _, recorded := s.LineOutcomes[c.SKU]; recorded {
		return nil, nil
	}
	if !c.Granted {
		// All or nothing: one short line rejects the order at once, and
		// the rejection releases the lines already granted. One event
		// says both (LineRefused is what older engines stored before it).
		available := c.Available
		return []OrderEvent{
			OrderRejected{Reason: reasonInsufficientStock, ShortSKUs: []string{c.SKU}, Available: &available, At: at},
		}, nil
	}
	var granted time.Time
	if !c.GrantedAt.IsZero() {
		granted = c.GrantedAt.UTC()
	}
	if allReservedBut(s, c.SKU) {
		// The grant that completes the order is recorded by the
		// confirmation itself: one event, one durable message.
		return []OrderEvent{OrderConfirmed{SKU: c.SKU, GrantedAt: granted, At: at}}, nil
	}
	return []OrderEvent{LineReserved{SKU: c.SKU, GrantedAt: granted, At: at}}, nil
}

// allReservedBut reports whether every line of s other than sku is
// reserved.
func allReservedBut(s Order, sku string) bool {
	for _, l := range s.Lines {
		if l.SKU != sku && !s.LineOutcomes[l.SKU] {
			return false
		}
	}
	return true
}

package domain

import (
	"maps"
	"slices"
	"time"

	"github.com/cockroachdb/errors"
)

// OrderStatus is where an order stands in its life; the values are stored
// in read models and shown to clients, so they never change.
type OrderStatus string

// The statuses of an order. rejected, delivered, cancelled and expired are
// terminal.
const (
	StatusPending   OrderStatus = "pending"
	StatusConfirmed OrderStatus = "confirmed"
	StatusRejected  OrderStatus = "rejected"
	StatusPaid      OrderStatus = "paid"
	StatusShipped   OrderStatus = "shipped"
	StatusDelivered OrderStatus = "delivered"
	StatusCancelled OrderStatus = "cancelled"
	StatusExpired   OrderStatus = "expired"
)

// Line is one SKU of an order; money is in minor units of the order's
// currency, as integers, so totals are exact.
type Line struct {
	SKU            string `json:"sku"`
	Qty            int64  `json:"qty"`
	UnitPriceCents int64  `json:"unit_price_cents" required:"true"` // 0 is a price: it must be said
}

// Order is the state of the order aggregate, rebuilt by folding its events
// with EvolveOrder. The zero value (Status == "") means the order does not
// exist, which is the decider's initial state.
type Order struct {
	ID             string
	CustomerID     string
	Currency       string
	Lines          []Line
	TotalCents     int64
	RefundDueCents int64
	PaidCents      int64
	// RefundedCents is the total of the partial refunds and the refunds of
	// returns (OrderRefunded, LinesReturned); a cancellation's refund is
	// RefundDueCents, apart. Together they never exceed PaidCents.
	RefundedCents int64
	// Returned holds, by SKU, the units of each line that came back.
	// Treat it as read-only, as LineOutcomes.
	Returned       map[string]int64
	PaymentRef     string
	Carrier        string
	TrackingNumber string
	CancelReason   string
	RejectReason   string
	Status         OrderStatus
	// LineOutcomes holds the reservation outcome of each line decided so
	// far, by SKU: true reserved, false refused. Treat it as read-only:
	// EvolveOrder copies it on write so that earlier states stay valid.
	LineOutcomes map[string]bool
	// Version is the number of events applied, which equals the stream
	// position the next append must expect.
	Version     uint64
	CreatedAt   time.Time
	UpdatedAt   time.Time
	ConfirmedAt time.Time
	// GrantedAt is the earliest grant time recorded on a reserved line
	// (LineReserved.GrantedAt); zero when none was recorded.
	GrantedAt time.Time
}

// ExpiryDue returns when a confirmed order's reservation expires: ttl
// after the earliest grant of its lines, since that unit has been held the
// longest, or after its confirmation when its events carry no grant time
// (stored by older engines). It is zero while the order is not confirmed
// yet.
func (o Order) ExpiryDue(ttl time.Duration) time.Time {
	if o.ConfirmedAt.IsZero() {
		return time.Time{}
	}
	if o.GrantedAt.IsZero() {
		return o.ConfirmedAt.Add(ttl)
	}
	return o.GrantedAt.Add(ttl)
}

// Exists reports whether the order has been placed.
func (o Order) Exists() bool {
	return o.Status != ""
}

// Terminal reports whether the order has reached a status no command can
// move it out of: rejected, delivered, cancelled or expired. A delivered
// order still takes refunds and returns, which record money and goods
// but never change its status.
func (o Order) Terminal() bool {
	switch o.Status {
	case StatusRejected, StatusDelivered, StatusCancelled, StatusExpired:
		return true
	}
	return false
}

// EvolveOrder returns the order with e applied. It never fails: events are
// facts already decided, so it trusts them instead of re-checking the
// rules, which keeps replays of old histories working when rules tighten.
// It never writes into memory it was given: the result shares no slice
// or map that EvolveOrder changed with s or e.
//
// EvolveOrder panics with an assertion failure only for a value outside
// the closed event set (nil, or a pointer to an event), which DecideOrder
// and DecodeOrderEvent never produce.
func EvolveOrder(s Order, e OrderEvent) Order {
	switch e := e.(type) {
	case OrderPlaced:
		s.ID = e.OrderID
		s.CustomerID = e.CustomerID
		s.Currency = e.Currency
		s.Lines = slices.Clone(e.Lines)
		s.TotalCents = e.TotalCents
		s.Status = StatusPending
		s.CreatedAt = e.At
	case OrderConfirmed:
		if e.SKU != "" {
			s = withGrant(s, e.SKU, e.GrantedAt)
		}
		s.Status = StatusConfirmed
		s.ConfirmedAt = e.At
	case OrderRejected:
		for _, sku := range e.ShortSKUs {
			s.LineOutcomes = withLineOutcome(s.LineOutcomes, sku, false)
		}
		s.Status = StatusRejected
		s.RejectReason = e.Reason
	case OrderPaid:
		s.Status = StatusPaid
		s.PaidCents = e.AmountCents
		s.PaymentRef = e.PaymentRef
	case OrderShipped:
		s.Status = StatusShipped
		s.Carrier = e.Carrier
		s.TrackingNumber = e.TrackingNumber
	case OrderDelivered:
		s.Status = StatusDelivered
	case OrderCancelled:
		s.Status = StatusCancelled
		s.CancelReason = e.Reason
		s.RefundDueCents = e.RefundDueCents
	case OrderExpired:
		s.Status = StatusExpired
	case LineReserved:
		s = withGrant(s, e.SKU, e.GrantedAt)
	case LineRefused:
		s.LineOutcomes = withLineOutcome(s.LineOutcomes, e.SKU, false)
	case OrderRefunded:
		s.RefundedCents = e.RefundedCents
	case LinesReturned:
		s = evolveReturn(s, e)
	default:
		panic(errors.AssertionFailedf("domain: unknown order event %T", e))
	}
	s.Version++
	s.UpdatedAt = e.OccurredAt()
	return s
}

// withGrant records that sku's line was reserved, granted at granted
// (zero when unknown); the order's GrantedAt is its earliest grant.
func withGrant(s Order, sku string, granted time.Time) Order {
	s.LineOutcomes = withLineOutcome(s.LineOutcomes, sku, true)
	if !granted.IsZero() && (s.GrantedAt.IsZero() || granted.Before(s.GrantedAt)) {
		s.GrantedAt = granted
	}
	return s
}

// withLineOutcome returns a copy of m with sku set to reserved.
func withLineOutcome(m map[string]bool, sku string, reserved bool) map[string]bool {
	out := maps.Clone(m)
	if out == nil {
		out = make(map[string]bool, 1)
	}
	out[sku] = reserved
	return out
}

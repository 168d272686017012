package domain

import (
	"fmt"
	"maps"
	"time"
)

// This file holds what happens to an order's money and goods after it is
// paid: partial refunds and per-line returns. Neither changes the order's
// status; both only ever give back what was paid. The invariants:
//
//   - RefundedCents + RefundDueCents never exceed PaidCents: a refund or a
//     return refunds at most what is still refundable, and a cancellation
//     owes back only what was not refunded yet;
//   - a line's returned quantity never exceeds its delivered quantity.
//
// Returned units are not put back into stock: a returned parcel may be
// damaged, incomplete or never arrive at the warehouse, so stock grows
// only when the warehouse says so (POST /v1/inventory/{sku}/restock).

// RefundOrder records a partial refund of a paid, shipped or delivered
// order, for a reason finance and the customer can read. AmountCents is in
// minor units of the order's currency.
type RefundOrder struct {
	AmountCents int64
	Reason      string
	At          time.Time
}

// ReturnLines records that the customer sent back some units of a
// delivered order's lines; the refund due for them is their price, up to
// what is still refundable.
type ReturnLines struct {
	Lines  []ReturnLine
	Reason string
	At     time.Time
}

// ReturnLine is one SKU of a return request and how many of its units
// came back.
type ReturnLine struct {
	SKU string `json:"sku"`
	Qty int64  `json:"qty"`
}

func (RefundOrder) isOrderCommand() {}
func (ReturnLines) isOrderCommand() {}

var (
	_ OrderCommand = RefundOrder{}
	_ OrderCommand = ReturnLines{}
)

// OrderRefunded records a partial refund. RefundedCents is the order's
// total of partial and return refunds after this one, so a read model can
// write it as it is instead of adding to what it holds.
type OrderRefunded struct {
	AmountCents   int64     `json:"amount_cents"`
	Reason        string    `json:"reason"`
	RefundedCents int64     `json:"refunded_cents"`
	At            time.Time `json:"at"`
}

// LinesReturned records a return of units of a delivered order and the
// refund due for them. RefundCents is the sum of the lines' refunds, and
// RefundedCents the order's total of partial and return refunds after
// this return; each line carries its returned quantity after the return,
// so read models write totals rather than add to them.
type LinesReturned struct {
	Lines         []ReturnedLine `json:"lines"`
	Reason        string         `json:"reason"`
	RefundCents   int64          `json:"refund_cents"`
	RefundedCents int64          `json:"refunded_cents"`
	At            time.Time      `json:"at"`
}

// ReturnedLine is one line of a return: Qty units came back, RefundCents
// is owed for them (their price, less when the order had less left to
// refund), and ReturnedQty is the line's returned quantity in all.
type ReturnedLine struct {
	SKU         string `json:"sku"`
	Qty         int64  `json:"qty"`
	RefundCents int64  `json:"refund_cents"`
	ReturnedQty int64  `json:"returned_qty"`
}

func (OrderRefunded) isOrderEvent() {}
func (LinesReturned) isOrderEvent() {}

// EventType returns "OrderRefunded".
func (OrderRefunded) EventType() string { return "OrderRefunded" }

// EventType returns "LinesReturned".
func (LinesReturned) EventType() string { return "LinesReturned" }

// OccurredAt returns At.
func (e OrderRefunded) OccurredAt() time.Time { return e.At }

// OccurredAt returns At.
func (e LinesReturned) OccurredAt() time.Time { return e.At }

var (
	_ OrderEvent = OrderRefunded{}
	_ OrderEvent = LinesReturned{}
)

// Refundable returns what can still be refunded on o: what was paid less
// the partial and return refunds and a cancellation's refund.
func (o Order) Refundable() int64 {
	return max(o.PaidCents-o.RefundedCents-o.RefundDueCents, 0)
}

// ReturnedQty returns how many units of sku's line came back.
func (o Order) ReturnedQty(sku string) int64 {
	return o.Returned[sku]
}

func decideRefund(s Order, c RefundOrder) ([]OrderEvent, error) {
	at, err := eventTime(c, c.At)
	if err != nil {
		return nil, err
	}
	switch s.Status {
	case StatusPaid, StatusShipped, StatusDelivered:
	default:
		return nil, invalidTransition("an order can be refunded once it is paid, until it is cancelled",
			"cannot refund an order in status %s", s.Status)
	}
	var fe fieldErrors
	left := s.Refundable()
	switch {
	case left == 0:
		fe.add("amount_cents", fmt.Sprintf("nothing is left to refund: the payment of %d is refunded in full", s.PaidCents))
	case c.AmountCents < 1 || c.AmountCents > left:
		fe.add("amount_cents", fmt.Sprintf("must be between 1 and %d, what is left to refund of the payment of %d", left, s.PaidCents))
	}
	checkText(&fe, "reason", c.Reason, true)
	if err := fe.err(); err != nil {
		return nil, err
	}
	return []OrderEvent{OrderRefunded{
		AmountCents: c.AmountCents, Reason: c.Reason, RefundedCents: s.RefundedCents + c.AmountCents, At: at,
	}}, nil
}

func decideReturn(s Order, c ReturnLines) ([]OrderEvent, error) {
	at, err := eventTime(c, c.At)
	if err != nil {
		return nil, err
	}
	if s.Status != StatusDelivered {
		return nil, invalidTransition("lines can be returned once the order is delivered",
			"cannot return lines of an order in status %s", s.Status)
	}
	var fe fieldErrors
	checkText(&fe, "reason", c.Reason, true)
	if len(c.Lines) < 1 || len(c.Lines) > MaxLines {
		fe.add("lines", fmt.Sprintf("must have between 1 and %d lines", MaxLines))
		return nil, fe.err()
	}
	ordered := make(map[string]Line, len(s.Lines))
	for _, l := range s.Lines {
		ordered[l.SKU] = l
	}
	seen := make(map[string]struct{}, len(c.Lines))
	for i, r := range c.Lines {
		field := fmt.Sprintf("lines[%d].", i)
		l, ok := ordered[r.SKU]
		switch _, dup := seen[r.SKU]; {
		case !ValidSKU(r.SKU):
			fe.add(field+"sku", TokenRule)
		case !ok:
			fe.add(field+"sku", "is not a line of this order")
		case dup:
			fe.add(field+"sku", "duplicate sku")
		}
		seen[r.SKU] = struct{}{}
		if !ok {
			continue
		}
		switch left := l.Qty - s.Returned[r.SKU]; {
		case left == 0:
			fe.add(field+"qty", fmt.Sprintf("nothing is left to return: all %d units came back", l.Qty))
		case r.Qty < 1 || r.Qty > left:
			fe.add(field+"qty", fmt.Sprintf("must be between 1 and %d, the units delivered and not returned yet", left))
		}
	}
	if err := fe.err(); err != nil {
		return nil, err
	}
	// Each line is refunded its price, in request order, as long as the
	// payment has something left: a return after goodwill refunds still
	// records the goods, with what remains of the payment.
	left := s.Refundable()
	e := LinesReturned{Reason: c.Reason, Lines: make([]ReturnedLine, 0, len(c.Lines)), At: at}
	for _, r := range c.Lines {
		// Qty <= MaxQty and the price <= MaxUnitPriceCents: no overflow.
		refund := min(r.Qty*ordered[r.SKU].UnitPriceCents, left)
		left -= refund
		e.RefundCents += refund
		e.Lines = append(e.Lines, ReturnedLine{
			SKU: r.SKU, Qty: r.Qty, RefundCents: refund, ReturnedQty: s.Returned[r.SKU] + r.Qty,
		})
	}
	e.RefundedCents = s.RefundedCents + e.RefundCents
	return []OrderEvent{e}, nil
}

// evolveReturn records a return's quantities; like withLineOutcome it
// copies the map so earlier states stay valid.
func evolveReturn(s Order, e LinesReturned) Order {
	returned := maps.Clone(s.Returned)
	if returned == nil {
		returned = make(map[string]int64, len(e.Lines))
	}
	for _, l := range e.Lines {
		returned[l.SKU] = l.ReturnedQty
	}
	s.Returned = returned
	s.RefundedCents = e.RefundedCents
	return s
}

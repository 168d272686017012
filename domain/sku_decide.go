package domain

import (
	"fmt"

	"github.com/cockroachdb/errors"
)

// DecideSKU decides which events command c produces on SKU s. Fields that
// do not depend on the state are validated first, then the state is
// consulted.
//
// The state knows only the reservations held now (SKU.Held), so DecideSKU
// decides a reservation request as if it were new: deciding each request
// once is the caller's part, which the reservation processor does by
// skipping every request at or below SKU.RequestSeq (DecideReservations).
// What the state can still tell it does: a Reserve of a reservation held
// already holds nothing more, and a Release or CommitReservation of a
// reservation not held (refused, released, committed, or never seen)
// returns no events and a nil error.
//
// Errors, to be compared with errors.Is:
//   - ErrValidation (a *ValidationError naming every bad field);
//   - ErrNotFound: Restock of a SKU that was never set;
//   - ErrInvalidTransition: SetOnHand below what is reserved;
//   - an assertion failure for programming errors: a command outside the
//     closed set, a command without a time, or a command addressed to
//     another SKU than the state it is decided on.
func DecideSKU(s SKU, c SKUCommand) ([]SKUEvent, error) {
	switch c := c.(type) {
	case SetOnHand:
		return decideSetOnHand(s, c)
	case Restock:
		return decideRestock(s, c)
	case Reserve:
		return decideReserve(s, c)
	case Release:
		return decideRelease(s, c)
	case CommitReservation:
		return decideCommit(s, c)
	default:
		return nil, errors.AssertionFailedf("domain: unknown SKU command %T", c)
	}
}

// checkSKU validates the SKU a command addresses. It must be a safe
// subject token; and once the state knows its SKU, a command for another
// one means the caller loaded the wrong stream.
func checkSKU(fe *fieldErrors, s SKU, sku string) error {
	if !ValidSKU(sku) {
		fe.add("sku", TokenRule)
		return nil
	}
	if s.SKU != "" && s.SKU != sku {
		return errors.AssertionFailedf("domain: command for SKU %q decided on SKU %q", sku, s.SKU)
	}
	return nil
}

func decideSetOnHand(s SKU, c SetOnHand) ([]SKUEvent, error) {
	at, err := eventTime(c, c.At)
	if err != nil {
		return nil, err
	}
	var fe fieldErrors
	if err := checkSKU(&fe, s, c.SKU); err != nil {
		return nil, err
	}
	checkRange(&fe, "on_hand", c.OnHand, 0, MaxStock)
	if err := fe.err(); err != nil {
		return nil, err
	}
	if c.OnHand < s.Reserved {
		return nil, errors.WithHint(
			errors.Wrapf(ErrInvalidTransition, "on_hand %d is below reserved %d", c.OnHand, s.Reserved),
			"stock held for orders cannot be counted away; wait for them to ship or be released")
	}
	// Emitted even when nothing changes: an explicit count is an auditable
	// fact.
	return []SKUEvent{OnHandSet{SKU: c.SKU, OnHand: c.OnHand, At: at}}, nil
}

func decideRestock(s SKU, c Restock) ([]SKUEvent, error) {
	at, err := eventTime(c, c.At)
	if err != nil {
		return nil, err
	}
	var fe fieldErrors
	if err := checkSKU(&fe, s, c.SKU); err != nil {
		return nil, err
	}
	checkRange(&fe, "qty", c.Qty, 1, MaxStock)
	if err := fe.err(); err != nil {
		return nil, err
	}
	if !s.Created {
		return nil, errors.WithHint(errors.Wrapf(ErrNotFound, "sku %s", c.SKU),
			"set the on-hand quantity first to create the SKU")
	}
	// Both terms are at most MaxStock, so the sum cannot overflow.
	if s.OnHand+c.Qty > MaxStock {
		fe.add("qty", fmt.Sprintf("would raise on_hand above %d", int64(MaxStock)))
		return nil, fe.err()
	}
	return []SKUEvent{Restocked{SKU: c.SKU, Qty: c.Qty, At: at}}, nil
}

func decideReserve(s SKU, c Reserve) ([]SKUEvent, error) {
	at, err := eventTime(c, c.At)
	if err != nil {
		return nil, err
	}
	var fe fieldErrors
	if err := checkSKU(&fe, s, c.SKU); err != nil {
		return nil, err
	}
	checkRange(&fe, "qty", c.Qty, 1, MaxQty)
	if c.ReservationID == "" {
		fe.add("reservation_id", "is required")
	}
	if c.OrderID == "" {
		fe.add("order_id", "is required")
	}
	if err := fe.err(); err != nil {
		return nil, err
	}
	if _, held := s.Held.Qty(c.ReservationID); held {
		return nil, nil
	}
	// A SKU that was never set has nothing available; the refusal is
	// recorded all the same, so the order is rejected rather than left
	// waiting.
	if s.Created && c.Qty <= s.Available() {
		return []SKUEvent{StockReserved{ReservationID: c.ReservationID, OrderID: c.OrderID, Qty: c.Qty, At: at}}, nil
	}
	return []SKUEvent{ReservationRefused{
		ReservationID: c.ReservationID,
		OrderID:       c.OrderID,
		Qty:           c.Qty,
		Available:     s.Available(),
		At:            at,
	}}, nil
}

func decideRelease(s SKU, c Release) ([]SKUEvent, error) {
	at, err := eventTime(c, c.At)
	if err != nil {
		return nil, err
	}
	var fe fieldErrors
	if err := checkSKU(&fe, s, c.SKU); err != nil {
		return nil, err
	}
	if c.ReservationID == "" {
		fe.add("reservation_id", "is required")
	}
	if err := fe.err(); err != nil {
		return nil, err
	}
	// Releasing is a clean-up the saga repeats after crashes and may send
	// for a reservation whose request has not been processed yet or was
	// refused: everything but a held reservation is a no-op.
	qty, held := s.Held.Qty(c.ReservationID)
	if !held {
		return nil, nil
	}
	return []SKUEvent{ReservationReleased{ReservationID: c.ReservationID, Qty: qty, At: at}}, nil
}

func decideCommit(s SKU, c CommitReservation) ([]SKUEvent, error) {
	at, err := eventTime(c, c.At)
	if err != nil {
		return nil, err
	}
	var fe fieldErrors
	if err := checkSKU(&fe, s, c.SKU); err != nil {
		return nil, err
	}
	if c.ReservationID == "" {
		fe.add("reservation_id", "is required")
	}
	if err := fe.err(); err != nil {
		return nil, err
	}
	// Shipping commits every line of an order whose lines were all
	// granted, and nothing releases a shipped order's lines, so a commit of
	// a reservation not held was decided already and changes nothing.
	qty, held := s.Held.Qty(c.ReservationID)
	if !held {
		return nil, nil
	}
	return []SKUEvent{ReservationCommitted{ReservationID: c.ReservationID, Qty: qty, At: at}}, nil
}

package domain

import (
	"time"

	"github.com/cockroachdb/errors"
)

// ReservationAction is what a reservation request asks of a SKU; the
// values are stored with the requests, so they never change.
type ReservationAction string

// The actions of a reservation request.
const (
	ActionReserve ReservationAction = "reserve"
	ActionRelease ReservationAction = "release"
	ActionCommit  ReservationAction = "commit"
)

// ReservationRequest asks the SKU aggregate to reserve, release or commit
// one order line. The event store appends the requests of an order's
// events in the same atomic batch as the events, so no request is lost
// and none exists for an event that was not stored.
type ReservationRequest struct {
	Action ReservationAction `json:"action"`
	// ReservationID is ReservationID(OrderID, SKU): the held reservation
	// a release or commit names. A request is decided once because the
	// SKU decides its requests in stream order past RequestSeq, not
	// because of this id.
	ReservationID string `json:"reservation_id"`
	OrderID       string `json:"order_id"`
	SKU           string `json:"sku"`
	Qty           int64  `json:"qty"`
}

// ReservationRequestsFor returns the requests that events, appended to an
// order that stood at before, ask for, in event order: OrderPlaced
// reserves every line of the event; OrderRejected, OrderCancelled and
// OrderExpired release every line; OrderShipped commits every line; other
// events ask for nothing. Lines for events after the first come from the
// order as evolved so far.
//
// Every line is released but the refused ones, not only the reserved ones:
// releasing an unknown reservation is a no-op in DecideSKU, and a release
// that follows a still-pending reserve in the SKU's stream releases that
// late grant, so the order need not know what the SKUs decided. A refused
// line holds nothing and never will (its one reserve request was decided),
// so its release would only cost a durable message: a flash sale's
// rejected single-line orders ask for none.
//
// ReservationRequestsFor panics with an assertion failure only for a
// value outside the closed event set, as EvolveOrder does.
func ReservationRequestsFor(before Order, events []OrderEvent) []ReservationRequest {
	var reqs []ReservationRequest
	s := before
	for _, e := range events {
		orderID, lines := s.ID, s.Lines
		var action ReservationAction
		refused := s.LineOutcomes
		switch e := e.(type) {
		case OrderPlaced:
			action, orderID, lines = ActionReserve, e.OrderID, e.Lines
		case OrderRejected:
			action = ActionRelease
			// It names the refused line itself (schema version 2).
			refused = EvolveOrder(s, e).LineOutcomes
		case OrderCancelled, OrderExpired:
			action = ActionRelease
		case OrderShipped:
			action = ActionCommit
		case OrderConfirmed, OrderPaid, OrderDelivered, LineReserved, LineRefused:
		case OrderRefunded, LinesReturned:
			// Returned units go back to stock only by a restock: the
			// warehouse decides what is fit to sell again.
		default:
			panic(errors.AssertionFailedf("domain: unknown order event %T", e))
		}
		if action != "" {
			for _, l := range lines {
				if reserved, known := refused[l.SKU]; action == ActionRelease && known && !reserved {
					continue // refused: it holds nothing to release
				}
				reqs = append(reqs, ReservationRequest{
					Action:        action,
					ReservationID: ReservationID(orderID, l.SKU),
					OrderID:       orderID,
					SKU:           l.SKU,
					Qty:           l.Qty,
				})
			}
		}
		s = EvolveOrder(s, e)
	}
	return reqs
}

// Command turns r into the SKU command it asks for, stamped with at. For
// an action outside the three it returns nil, which DecideSKU refuses
// with an assertion failure: a request decoded from a newer engine's
// stream must stop the processor, not be skipped.
func (r ReservationRequest) Command(at time.Time) SKUCommand {
	switch r.Action {
	case ActionReserve:
		return Reserve{SKU: r.SKU, ReservationID: r.ReservationID, OrderID: r.OrderID, Qty: r.Qty, At: at}
	case ActionRelease:
		return Release{SKU: r.SKU, ReservationID: r.ReservationID, At: at}
	case ActionCommit:
		return CommitReservation{SKU: r.SKU, ReservationID: r.ReservationID, At: at}
	}
	return nil
}

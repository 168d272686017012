package domain

import (
	"maps"
	"time"

	"github.com/cockroachdb/errors"
)

// ReservationState is what was decided about one reservation request.
// It is a small integer, and a Reservation holds no pointer, so that the
// map of a hot SKU's reservations is cheap to copy and to scan for the
// garbage collector (it is copied once per batch of decisions).
type ReservationState uint8

// The states of a reservation. Only held counts towards SKU.Reserved; the
// others are kept so that a redelivered request gets the same answer.
//
// The constants carry a State infix because ReservationReleased,
// ReservationCommitted and ReservationRefused are the event types.
const (
	ReservationStateHeld ReservationState = iota + 1
	ReservationStateReleased
	ReservationStateCommitted
	ReservationStateRefused
)

// String returns "held", "released", "committed" or "refused".
func (s ReservationState) String() string {
	switch s {
	case ReservationStateHeld:
		return "held"
	case ReservationStateReleased:
		return "released"
	case ReservationStateCommitted:
		return "committed"
	case ReservationStateRefused:
		return "refused"
	}
	return "unknown"
}

// Reservation is one order's claim on one SKU; the order is in its
// reservation id (ReservationID).
type Reservation struct {
	Qty   int64
	State ReservationState
}

// SKU is the state of one inventory item (subject inventory.<sku>). The
// zero value means the SKU does not exist yet, the decider's initial
// state. Invariant after every event: 0 <= Reserved <= OnHand.
type SKU struct {
	SKU      string
	OnHand   int64
	Reserved int64
	// Version is the number of events applied, refusals included.
	Version uint64
	// RequestSeq is the stream sequence of the last reservation request
	// decided (ReservationsDecided.ThroughSeq): every request of the SKU up
	// to it has been decided, in order.
	RequestSeq uint64
	// Created is set by the first OnHandSet. A SKU can have events before
	// that (refused reservations), so Version > 0 does not imply it.
	Created bool
	// Reservations holds every decision ever taken, by reservation id, so
	// a redelivered request is a no-op. Treat it as read-only: EvolveSKU
	// copies it on write so that earlier states stay valid.
	Reservations map[string]Reservation
	UpdatedAt    time.Time
}

// Available is the stock that can still be reserved.
func (s SKU) Available() int64 {
	return s.OnHand - s.Reserved
}

// ReservationID names the reservation of sku for orderID. One order
// reserves a SKU at most once (PlaceOrder refuses duplicate SKUs), so the
// pair is unique, and since both parts are validated tokens without '.',
// the result is a valid subject token and message id.
func ReservationID(orderID, sku string) string {
	return orderID + "-" + sku
}

// EvolveSKU returns the SKU with e applied. It never fails: events are
// facts already decided. It never mutates s: the reservations map is
// copied before it is written, so a caller may keep the previous state
// (for example to retry a batch after a concurrency conflict). To fold
// many events, EvolveSKUAll copies the map once instead of per event.
//
// EvolveSKU panics with an assertion failure only for a value outside the
// closed event set (nil, or a pointer to an event), which DecideSKU and
// DecodeSKUEvent never produce.
func EvolveSKU(s SKU, e SKUEvent) SKU {
	f := skuFold{s: s}
	f.apply(e)
	return f.s
}

// skuFold applies SKU events to a state it owns. It copies the
// reservations map the first time it writes it and writes in place from
// then on, so the map of the state it started from is never touched, and
// folding N events copies the map once, not N times. The rules of
// EvolveSKU, EvolveSKUAll and DecideSKUBatch all live in apply.
type skuFold struct {
	s SKU
	// owned reports that s.Reservations is a copy this fold made.
	owned bool
}

func (f *skuFold) apply(e SKUEvent) {
	f.fact(e)
	f.s.Version++
	f.s.UpdatedAt = e.OccurredAt()
}

// fact applies what e says, without counting it as an event.
func (f *skuFold) fact(e SKUEvent) {
	s := &f.s
	switch e := e.(type) {
	case ReservationsDecided:
		for _, d := range e.Decisions {
			if inner := d.Event(); inner != nil {
				f.fact(inner)
			}
		}
		s.RequestSeq = max(s.RequestSeq, e.ThroughSeq)
	case OnHandSet:
		s.SKU = e.SKU
		s.OnHand = e.OnHand
		s.Created = true
	case Restocked:
		s.SKU = e.SKU
		s.OnHand += e.Qty
	case StockReserved:
		s.Reserved += e.Qty
		f.put(e.ReservationID, Reservation{Qty: e.Qty, State: ReservationStateHeld})
	case ReservationRefused:
		f.put(e.ReservationID, Reservation{Qty: e.Qty, State: ReservationStateRefused})
	case ReservationReleased:
		s.Reserved -= e.Qty
		r := s.Reservations[e.ReservationID]
		r.Qty, r.State = e.Qty, ReservationStateReleased
		f.put(e.ReservationID, r)
	case ReservationCommitted:
		// Committed stock has left the warehouse: it stops being reserved
		// and stops being on hand.
		s.Reserved -= e.Qty
		s.OnHand -= e.Qty
		r := s.Reservations[e.ReservationID]
		r.Qty, r.State = e.Qty, ReservationStateCommitted
		f.put(e.ReservationID, r)
	default:
		panic(errors.AssertionFailedf("domain: unknown SKU event %T", e))
	}
}

// put sets reservation id to r, copying the map first if the fold does
// not own it yet.
func (f *skuFold) put(id string, r Reservation) {
	if !f.owned {
		// maps.Clone copies the table wholesale instead of re-hashing
		// every key, which matters on hot SKUs with long memories.
		m := maps.Clone(f.s.Reservations)
		if m == nil {
			m = make(map[string]Reservation, 1)
		}
		f.s.Reservations, f.owned = m, true
	}
	f.s.Reservations[id] = r
}

package domain

import (
	"time"

	"github.com/cockroachdb/errors"
)

// SKU is the state of one inventory item (subject inventory.<sku>). The
// zero value means the SKU does not exist yet, the decider's initial
// state. Invariant after every event: 0 <= Reserved <= OnHand.
type SKU struct {
	SKU      string
	OnHand   int64
	Reserved int64
	// Version is the number of events applied, refusals included.
	Version uint64
	// RequestSeqs holds, per shard of the event store (index k for shard
	// k), the stream sequence of the last reservation request from that
	// shard decided (ReservationsDecided.ThroughSeq): every request of the
	// SKU from that shard up to it has been decided, in order. A SKU's
	// requests come from orders on every shard, and each shard's stream
	// numbers them on its own. Read it with RequestSeqOf.
	RequestSeqs []uint64
	// Created is set by the first OnHandSet. A SKU can have events before
	// that (refused reservations), so Version > 0 does not imply it.
	Created bool
	// Held holds the reservations that hold stock now, and only those:
	// refused, released and committed ones are forgotten, so the state of a
	// SKU is bounded by its stock, not by its age. A redelivered request is
	// a no-op because of RequestSeq, not because its id is remembered (see
	// docs/design/reservation-idempotency.md). The sum of Held is Reserved.
	Held      HeldSet
	UpdatedAt time.Time
}

// RequestSeqOf returns the sequence of the last request from shard k that
// the SKU decided, 0 when none.
func (s SKU) RequestSeqOf(k int) uint64 {
	if k < 0 || k >= len(s.RequestSeqs) {
		return 0
	}
	return s.RequestSeqs[k]
}

// withRequestSeq returns seqs with shard k's entry raised to seq, in a new
// slice when it changes anything: a state is never written in place.
func withRequestSeq(seqs []uint64, k int, seq uint64) []uint64 {
	if k < 0 || (k < len(seqs) && seqs[k] >= seq) || (k >= len(seqs) && seq == 0) {
		return seqs
	}
	out := make([]uint64, max(len(seqs), k+1))
	copy(out, seqs)
	out[k] = seq
	return out
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
// facts already decided. It never mutates s: the held reservations are
// copied before they are written (only the shards written), so a caller
// may keep the previous state (for example to retry a batch after a
// concurrency conflict). To fold many events, EvolveSKUAll copies once
// instead of per event.
//
// EvolveSKU panics with an assertion failure only for a value outside the
// closed event set (nil, or a pointer to an event), which DecideSKU and
// DecodeSKUEvent never produce.
func EvolveSKU(s SKU, e SKUEvent) SKU {
	f := skuFold{s: s}
	f.apply(e)
	return f.s
}

// skuFold applies SKU events to a state it owns. It copies what it writes
// of the held set the first time and writes in place from then on, so the
// set of the state it started from is never touched, and folding N events
// copies each part once, not N times. The rules of EvolveSKU, EvolveSKUAll
// and DecideSKUBatch all live in apply.
type skuFold struct {
	s    SKU
	held heldCOW
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
		s.RequestSeqs = withRequestSeq(s.RequestSeqs, e.Shard, e.ThroughSeq)
	case OnHandSet:
		s.SKU = e.SKU
		s.OnHand = e.OnHand
		s.Created = true
	case Restocked:
		s.SKU = e.SKU
		s.OnHand += e.Qty
	case StockReserved:
		s.Reserved += e.Qty
		f.held.put(&s.Held, e.ReservationID, e.Qty)
	case ReservationRefused:
		// Nothing is held; the refusal is in the history, and the request
		// is behind RequestSeqs, so it is never decided again.
	case ReservationReleased:
		s.Reserved -= e.Qty
		f.held.remove(&s.Held, e.ReservationID)
	case ReservationCommitted:
		// Committed stock has left the warehouse: it stops being reserved
		// and stops being on hand.
		s.Reserved -= e.Qty
		s.OnHand -= e.Qty
		f.held.remove(&s.Held, e.ReservationID)
	default:
		panic(errors.AssertionFailedf("domain: unknown SKU event %T", e))
	}
}

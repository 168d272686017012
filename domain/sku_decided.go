package domain

import (
	"time"

	"github.com/cockroachdb/errors"
)

// ReservationsDecided records, in order, a processor's decisions on a batch
// of reservation requests for one SKU. A processor stores one per batch
// instead of one event per request: on a hot SKU this is the difference
// between one stored message per thousand decisions and a thousand, which
// is where a flash sale's throughput is won. Folding it equals folding its
// decisions one by one.
//
// ThroughSeq is the stream sequence of the last request the batch read: the
// SKU has decided every request up to it, in order. A processor starts the
// next batch right after it, which is what keeps one SKU's requests
// sequenced whatever the delivery did (a lost or repeated delivery, or two
// processors during a hand-over). Events stored before it existed read 0.
//
// Shard is the event store shard whose stream the requests were read from
// and ThroughSeq counts in: each shard's requests are sequenced on their
// own. Events stored before the store was sharded read shard 0, which is
// the one stream of a store in one-shard mode.
//
// Placed says the decisions are on orders placed in the same atomic batch
// (DecidePlacements), not on stored requests: they read no request, and
// ThroughSeq repeats the SKU's request sequence of Shard unchanged.
type ReservationsDecided struct {
	Decisions  []ReservationDecision `json:"decisions"`
	Shard      int                   `json:"shard,omitempty"`
	ThroughSeq uint64                `json:"through_seq,omitempty"`
	Placed     bool                  `json:"placed,omitempty"`
	At         time.Time             `json:"at"`
}

// ReservationDecision is one decision of a ReservationsDecided: exactly one
// of Reserved, Refused, Released and Committed is set.
//
// Told says the order was told this grant or refusal in the same atomic
// batch as the decision (the processor appended the order's outcome with
// it), so the order saga has nothing left to do for it. Decisions stored
// before it existed read false, and the saga tells their orders as always.
type ReservationDecision struct {
	Reserved  *StockReserved        `json:"reserved,omitempty"`
	Refused   *ReservationRefused   `json:"refused,omitempty"`
	Released  *ReservationReleased  `json:"released,omitempty"`
	Committed *ReservationCommitted `json:"committed,omitempty"`
	Told      bool                  `json:"told,omitempty"`
}

func (ReservationsDecided) isSKUEvent() {}

// EventType returns "ReservationsDecided".
func (ReservationsDecided) EventType() string { return "ReservationsDecided" }

// OccurredAt returns At.
func (e ReservationsDecided) OccurredAt() time.Time { return e.At }

// Event returns the decision as the single event it stands for, or nil when
// no field is set.
func (d ReservationDecision) Event() SKUEvent {
	switch {
	case d.Reserved != nil:
		return *d.Reserved
	case d.Refused != nil:
		return *d.Refused
	case d.Released != nil:
		return *d.Released
	case d.Committed != nil:
		return *d.Committed
	}
	return nil
}

// decisionOf wraps a reservation event; ok is false for any other event.
func decisionOf(e SKUEvent) (d ReservationDecision, ok bool) {
	switch e := e.(type) {
	case StockReserved:
		return ReservationDecision{Reserved: &e}, true
	case ReservationRefused:
		return ReservationDecision{Refused: &e}, true
	case ReservationReleased:
		return ReservationDecision{Released: &e}, true
	case ReservationCommitted:
		return ReservationDecision{Committed: &e}, true
	}
	return ReservationDecision{}, false
}

// DecideReservations decides a processor's batch of reservation requests,
// the SKU's requests from shard's stream from s.RequestSeqOf(shard)+1
// through the stream sequence through, like DecideSKUBatch, and records all the decisions as one
// ReservationsDecided at time at. The event is stored even when no request
// changed anything, so the next batch does not read them again. A batch
// through a sequence the SKU has already read past is a no-op. after's
// Version counts the events returned, so it matches the store.
func DecideReservations(s SKU, cmds []SKUCommand, shard int, through uint64, at time.Time) (after SKU, events []SKUEvent, errs []error) {
	if through <= s.RequestSeqOf(shard) {
		return s, nil, make([]error, len(cmds))
	}
	after, events, errs = DecideSKUBatch(s, cmds)
	batch := ReservationsDecided{Decisions: make([]ReservationDecision, 0, len(events)), Shard: shard, ThroughSeq: through, At: at.UTC().Round(0)}
	for _, e := range events {
		d, ok := decisionOf(e)
		if !ok {
			return SKU{}, nil, append(errs, errors.AssertionFailedf("domain: %T is not a reservation decision", e))
		}
		batch.Decisions = append(batch.Decisions, d)
	}
	after.Version = s.Version + 1
	after.UpdatedAt = batch.At
	after.RequestSeqs = withRequestSeq(s.RequestSeqs, shard, through)
	return after, []SKUEvent{batch}, errs
}

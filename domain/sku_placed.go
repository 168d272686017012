package domain

import (
	"time"

	"github.com/cockroachdb/errors"
)

// DecidePlacements decides the reserves of orders that are being placed in
// the same atomic batch as the decision, so that no request message is
// stored for them: the SKU's sequencer takes the placement itself. They
// are decided in order, like stored requests (DecideSKUBatch), and recorded
// as one ReservationsDecided marked Placed, each decision Told (the
// order's outcome is in the batch too). The SKU's request sequence of
// shard is repeated unchanged, because no stored request was read; the
// caller makes the batch conditional on no request of the SKU being left
// undecided, which is what keeps grants in placement order.
//
// errs has one entry per command; a command that fails decides nothing.
// No command, no event.
func DecidePlacements(s SKU, cmds []Reserve, shard int, at time.Time) (after SKU, events []SKUEvent, errs []error) {
	if len(cmds) == 0 {
		return s, nil, nil
	}
	generic := make([]SKUCommand, len(cmds))
	for i, c := range cmds {
		generic[i] = c
	}
	after, events, errs = DecideSKUBatch(s, generic)
	if len(events) == 0 {
		return s, nil, errs
	}
	batch := ReservationsDecided{Decisions: make([]ReservationDecision, 0, len(events)), Placed: true,
		Shard: shard, ThroughSeq: s.RequestSeqOf(shard), At: at.UTC().Round(0)}
	for _, e := range events {
		d, ok := decisionOf(e)
		if !ok {
			return s, nil, append(errs, errors.AssertionFailedf("domain: %T is not a reservation decision", e))
		}
		d.Told = true
		batch.Decisions = append(batch.Decisions, d)
	}
	after.Version = s.Version + 1
	after.UpdatedAt = batch.At
	return after, []SKUEvent{batch}, errs
}

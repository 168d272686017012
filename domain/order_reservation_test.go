package domain

import (
	"maps"
	"reflect"
	"testing"
	"time"
)

// placedWith returns the placement of a test order with lines.
func placedWith(lines ...Line) OrderPlaced {
	e := placedEvent()
	e.Lines, e.TotalCents = lines, 0
	for _, l := range lines {
		e.TotalCents += l.Qty * l.UnitPriceCents
	}
	return e
}

func TestDecideRecordReservation(t *testing.T) {
	t.Parallel()
	now := at(time.Minute)
	one := placedWith(Line{SKU: "apple", Qty: 2, UnitPriceCents: 150})
	two := placedEvent() // apple and pear-1
	grant := func(sku string) RecordReservation { return RecordReservation{SKU: sku, Granted: true, At: now} }
	refuse := func(sku string, avail int64) RecordReservation {
		return RecordReservation{SKU: sku, Available: avail, At: now}
	}
	reserved := func(sku string) LineReserved { return LineReserved{SKU: sku, At: at(time.Second)} }
	rejected := func(sku string, avail int64) OrderRejected {
		return OrderRejected{Reason: "insufficient stock", ShortSKUs: []string{sku}, Available: &avail, At: now}
	}
	tests := []struct {
		name  string
		given []OrderEvent
		when  OrderCommand
		then  []OrderEvent
		err   error
	}{
		{
			// One event, not a LineReserved and an OrderConfirmed: the
			// outcome of a flash sale's order costs one durable message.
			name: "single-line grant confirms in one event", given: []OrderEvent{one}, when: grant("apple"),
			then: []OrderEvent{OrderConfirmed{SKU: "apple", At: now}},
		},
		{
			name: "the confirming grant keeps its grant time", given: []OrderEvent{one},
			when: RecordReservation{SKU: "apple", Granted: true, GrantedAt: at(30 * time.Second), At: now},
			then: []OrderEvent{OrderConfirmed{SKU: "apple", GrantedAt: at(30 * time.Second), At: now}},
		},
		{
			name: "first of two grants only records the line", given: []OrderEvent{two}, when: grant("pear-1"),
			then: []OrderEvent{LineReserved{SKU: "pear-1", At: now}},
		},
		{
			name: "second of two grants confirms", given: []OrderEvent{two, reserved("pear-1")}, when: grant("apple"),
			then: []OrderEvent{OrderConfirmed{SKU: "apple", At: now}},
		},
		{
			name: "refusal after a grant rejects", given: []OrderEvent{two, reserved("apple")}, when: refuse("pear-1", 2),
			then: []OrderEvent{rejected("pear-1", 2)},
		},
		{
			name: "first refusal rejects at once, in one event", given: []OrderEvent{two}, when: refuse("apple", 0),
			then: []OrderEvent{rejected("apple", 0)},
		},
		{
			name: "time is normalised to UTC", given: []OrderEvent{one},
			when: RecordReservation{SKU: "apple", Granted: true, At: now.In(time.FixedZone("X", -3600))},
			then: []OrderEvent{OrderConfirmed{SKU: "apple", At: now}},
		},
		{name: "late grant on a cancelled order", given: historyFor(StatusCancelled), when: grant("apple")},
		{name: "late grant on a rejected order", given: []OrderEvent{two, rejected("apple", 0)}, when: grant("pear-1")},
		{name: "late grant on an order rejected by old events", given: []OrderEvent{two, LineRefused{SKU: "apple", At: now},
			OrderRejected{Reason: "insufficient stock", ShortSKUs: []string{"apple"}, At: now}}, when: grant("pear-1")},
		{name: "late grant on an expired order", given: historyFor(StatusExpired), when: grant("apple")},
		{name: "late refusal on a confirmed order", given: historyFor(StatusConfirmed), when: refuse("apple", 0)},
		{name: "duplicate grant", given: []OrderEvent{two, reserved("apple")}, when: grant("apple")},
		{name: "refusal of a line already granted", given: []OrderEvent{two, reserved("apple")}, when: refuse("apple", 0)},
		{name: "unknown sku", given: []OrderEvent{two}, when: grant("banana"), err: ErrNotFound},
		{name: "unknown sku on a terminal order", given: historyFor(StatusCancelled), when: grant("banana"), err: ErrNotFound},
		{name: "missing order", when: grant("apple"), err: ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := foldOrder(t, tt.given)
			events, err := DecideOrder(s, tt.when)
			checkErr(t, err, tt.err)
			if !reflect.DeepEqual(events, tt.then) {
				t.Fatalf("events = %#v\nwant     %#v", events, tt.then)
			}
		})
	}
}

func TestDecideRecordReservationNamesTheSKU(t *testing.T) {
	t.Parallel()
	_, err := DecideOrder(foldOrder(t, historyFor(StatusPending)), RecordReservation{SKU: "banana", Granted: true, At: t0})
	if got, want := err.Error(), "order has no line for sku banana: not found"; got != want {
		t.Fatalf("message = %q, want %q", got, want)
	}
}

// TestEvolveOrderRecordsOutcomesCarriedByTheFinalEvent: a confirmation
// and a rejection record the outcome of the line that decided them, as a
// LineReserved or LineRefused before them did.
func TestEvolveOrderRecordsOutcomesCarriedByTheFinalEvent(t *testing.T) {
	t.Parallel()
	s := foldOrder(t, historyFor(StatusPending))
	first := EvolveOrder(s, LineReserved{SKU: "pear-1", GrantedAt: at(20 * time.Second), At: at(time.Minute)})
	confirmed := EvolveOrder(first, OrderConfirmed{SKU: "apple", GrantedAt: at(10 * time.Second), At: at(time.Minute)})
	if want := map[string]bool{"apple": true, "pear-1": true}; !maps.Equal(confirmed.LineOutcomes, want) {
		t.Fatalf("after confirmation: %v, want %v", confirmed.LineOutcomes, want)
	}
	if !confirmed.GrantedAt.Equal(at(10*time.Second)) || confirmed.Status != StatusConfirmed {
		t.Fatalf("confirmed: granted at %v (want the earliest grant), status %s", confirmed.GrantedAt, confirmed.Status)
	}
	zero := int64(0)
	rejected := EvolveOrder(first, OrderRejected{Reason: "insufficient stock", ShortSKUs: []string{"apple"}, Available: &zero, At: at(time.Minute)})
	if want := map[string]bool{"apple": false, "pear-1": true}; !maps.Equal(rejected.LineOutcomes, want) {
		t.Fatalf("after rejection: %v, want %v", rejected.LineOutcomes, want)
	}
	if want := map[string]bool{"pear-1": true}; !maps.Equal(first.LineOutcomes, want) {
		t.Fatalf("the evolved events wrote into the state before them: %v", first.LineOutcomes)
	}
}

func TestEvolveOrderRecordsLineOutcomes(t *testing.T) {
	t.Parallel()
	s := foldOrder(t, historyFor(StatusPending))
	granted := EvolveOrder(s, LineReserved{SKU: "apple", At: at(time.Minute)})
	refused := EvolveOrder(granted, LineRefused{SKU: "pear-1", Available: 1, At: at(2 * time.Minute)})
	if s.LineOutcomes != nil {
		t.Fatalf("placement recorded outcomes: %v", s.LineOutcomes)
	}
	if want := map[string]bool{"apple": true}; !maps.Equal(granted.LineOutcomes, want) {
		t.Fatalf("after grant: %v, want %v (the later event must not write into it)", granted.LineOutcomes, want)
	}
	if want := map[string]bool{"apple": true, "pear-1": false}; !maps.Equal(refused.LineOutcomes, want) {
		t.Fatalf("after refusal: %v, want %v", refused.LineOutcomes, want)
	}
	if refused.Version != s.Version+2 || refused.Status != StatusPending || !refused.UpdatedAt.Equal(at(2*time.Minute)) {
		t.Fatalf("unexpected state %+v", refused)
	}
}

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
	rejected := func(sku string) OrderRejected {
		return OrderRejected{Reason: "insufficient stock", ShortSKUs: []string{sku}, At: now}
	}
	tests := []struct {
		name  string
		given []OrderEvent
		when  OrderCommand
		then  []OrderEvent
		err   error
	}{
		{
			name: "single-line grant confirms", given: []OrderEvent{one}, when: grant("apple"),
			then: []OrderEvent{LineReserved{SKU: "apple", At: now}, OrderConfirmed{At: now}},
		},
		{
			name: "first of two grants only records the line", given: []OrderEvent{two}, when: grant("pear-1"),
			then: []OrderEvent{LineReserved{SKU: "pear-1", At: now}},
		},
		{
			name: "second of two grants confirms", given: []OrderEvent{two, reserved("pear-1")}, when: grant("apple"),
			then: []OrderEvent{LineReserved{SKU: "apple", At: now}, OrderConfirmed{At: now}},
		},
		{
			name: "refusal after a grant rejects", given: []OrderEvent{two, reserved("apple")}, when: refuse("pear-1", 2),
			then: []OrderEvent{LineRefused{SKU: "pear-1", Available: 2, At: now}, rejected("pear-1")},
		},
		{
			name: "first refusal rejects at once", given: []OrderEvent{two}, when: refuse("apple", 0),
			then: []OrderEvent{LineRefused{SKU: "apple", Available: 0, At: now}, rejected("apple")},
		},
		{
			name: "time is normalised to UTC", given: []OrderEvent{one},
			when: RecordReservation{SKU: "apple", Granted: true, At: now.In(time.FixedZone("X", -3600))},
			then: []OrderEvent{LineReserved{SKU: "apple", At: now}, OrderConfirmed{At: now}},
		},
		{name: "late grant on a cancelled order", given: historyFor(StatusCancelled), when: grant("apple")},
		{name: "late grant on a rejected order", given: []OrderEvent{two, LineRefused{SKU: "apple", At: now}, rejected("apple")}, when: grant("pear-1")},
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

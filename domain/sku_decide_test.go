package domain

import (
	"maps"
	"reflect"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
)

const testSKU = "apple"

func rid(n string) string { return ReservationID(testOrderID[:35]+n, testSKU) }

// skuHistory: 10 on hand; r1 held (3), r2 released (2), r3 committed (1),
// r4 refused (50). Afterwards on_hand 9, reserved 3.
func skuHistory() []SKUEvent {
	return []SKUEvent{
		OnHandSet{SKU: testSKU, OnHand: 10, At: t0},
		StockReserved{ReservationID: rid("1"), OrderID: "o1", Qty: 3, At: at(1)},
		StockReserved{ReservationID: rid("2"), OrderID: "o2", Qty: 2, At: at(2)},
		ReservationReleased{ReservationID: rid("2"), Qty: 2, At: at(3)},
		StockReserved{ReservationID: rid("3"), OrderID: "o3", Qty: 1, At: at(4)},
		ReservationCommitted{ReservationID: rid("3"), Qty: 1, At: at(5)},
		ReservationRefused{ReservationID: rid("4"), OrderID: "o4", Qty: 50, Available: 7, At: at(6)},
	}
}

func TestSKUHistoryState(t *testing.T) {
	t.Parallel()
	s := foldSKU(t, skuHistory())
	want := SKU{
		SKU: testSKU, OnHand: 9, Reserved: 3, Version: 7, Created: true, UpdatedAt: at(6),
		Held: heldOf(map[string]int64{rid("1"): 3}),
	}
	// Only the held reservation is remembered: released, committed and
	// refused ones are not.
	if !reflect.DeepEqual(s, want) || s.Held.Len() != 1 {
		t.Fatalf("state = %+v\nwant    %+v", s, want)
	}
	if s.Available() != 6 {
		t.Fatalf("Available() = %d", s.Available())
	}
}

func TestDecideSKU(t *testing.T) {
	t.Parallel()
	now := at(time.Hour)
	existing := skuHistory()
	tests := []struct {
		name   string
		given  []SKUEvent
		when   SKUCommand
		then   []SKUEvent
		err    error
		fields []string
	}{
		{name: "set creates the SKU", when: SetOnHand{SKU: testSKU, OnHand: 5, At: now}, then: []SKUEvent{OnHandSet{SKU: testSKU, OnHand: 5, At: now}}},
		{name: "set to zero", when: SetOnHand{SKU: testSKU, OnHand: 0, At: now}, then: []SKUEvent{OnHandSet{SKU: testSKU, OnHand: 0, At: now}}},
		{name: "set to MaxStock", when: SetOnHand{SKU: testSKU, OnHand: MaxStock, At: now}, then: []SKUEvent{OnHandSet{SKU: testSKU, OnHand: MaxStock, At: now}}},
		{name: "set above MaxStock", when: SetOnHand{SKU: testSKU, OnHand: MaxStock + 1, At: now}, err: ErrValidation, fields: []string{"on_hand"}},
		{name: "set negative", when: SetOnHand{SKU: testSKU, OnHand: -1, At: now}, err: ErrValidation, fields: []string{"on_hand"}},
		{name: "set with a bad sku", when: SetOnHand{SKU: "a.*", OnHand: -1, At: now}, err: ErrValidation, fields: []string{"on_hand", "sku"}},
		{name: "set equal is still recorded", given: existing, when: SetOnHand{SKU: testSKU, OnHand: 9, At: now}, then: []SKUEvent{OnHandSet{SKU: testSKU, OnHand: 9, At: now}}},
		{name: "set down to reserved", given: existing, when: SetOnHand{SKU: testSKU, OnHand: 3, At: now}, then: []SKUEvent{OnHandSet{SKU: testSKU, OnHand: 3, At: now}}},
		{name: "set below reserved", given: existing, when: SetOnHand{SKU: testSKU, OnHand: 2, At: now}, err: ErrInvalidTransition},
		{name: "restock", given: existing, when: Restock{SKU: testSKU, Qty: 5, At: now}, then: []SKUEvent{Restocked{SKU: testSKU, Qty: 5, At: now}}},
		{name: "restock a missing SKU", when: Restock{SKU: testSKU, Qty: 5, At: now}, err: ErrNotFound},
		{name: "restock zero", given: existing, when: Restock{SKU: testSKU, Qty: 0, At: now}, err: ErrValidation, fields: []string{"qty"}},
		{name: "restock up to MaxStock", given: existing, when: Restock{SKU: testSKU, Qty: MaxStock - 9, At: now}, then: []SKUEvent{Restocked{SKU: testSKU, Qty: MaxStock - 9, At: now}}},
		{name: "restock past MaxStock", given: existing, when: Restock{SKU: testSKU, Qty: MaxStock - 8, At: now}, err: ErrValidation, fields: []string{"qty"}},
		{name: "restock more than MaxStock", given: existing, when: Restock{SKU: testSKU, Qty: MaxStock + 1, At: now}, err: ErrValidation, fields: []string{"qty"}},
		{
			name: "reserve what is available", given: existing, when: Reserve{SKU: testSKU, ReservationID: rid("5"), OrderID: "o5", Qty: 6, At: now},
			then: []SKUEvent{StockReserved{ReservationID: rid("5"), OrderID: "o5", Qty: 6, At: now}},
		},
		{
			name: "refuse when short", given: existing, when: Reserve{SKU: testSKU, ReservationID: rid("5"), OrderID: "o5", Qty: 7, At: now},
			then: []SKUEvent{ReservationRefused{ReservationID: rid("5"), OrderID: "o5", Qty: 7, Available: 6, At: now}},
		},
		{
			name: "refuse on a missing SKU", when: Reserve{SKU: testSKU, ReservationID: rid("5"), OrderID: "o5", Qty: 1, At: now},
			then: []SKUEvent{ReservationRefused{ReservationID: rid("5"), OrderID: "o5", Qty: 1, Available: 0, At: now}},
		},
		{name: "reserve again while held", given: existing, when: Reserve{SKU: testSKU, ReservationID: rid("1"), OrderID: "o1", Qty: 3, At: now}},
		// A reservation that holds nothing is forgotten: the processor never
		// decides its request twice (RequestSeq, see DecideReservations),
		// so a second request would be a new one and is decided as such.
		{
			name: "a reserve of a released id is decided anew", given: existing, when: Reserve{SKU: testSKU, ReservationID: rid("2"), OrderID: "o2", Qty: 2, At: now},
			then: []SKUEvent{StockReserved{ReservationID: rid("2"), OrderID: "o2", Qty: 2, At: now}},
		},
		{
			name: "a reserve of a refused id is decided anew", given: append(existing[:len(existing):len(existing)], Restocked{SKU: testSKU, Qty: 100, At: now}),
			when: Reserve{SKU: testSKU, ReservationID: rid("4"), OrderID: "o4", Qty: 50, At: now},
			then: []SKUEvent{StockReserved{ReservationID: rid("4"), OrderID: "o4", Qty: 50, At: now}},
		},
		{name: "reserve zero", given: existing, when: Reserve{SKU: testSKU, ReservationID: rid("5"), OrderID: "o5", Qty: 0, At: now}, err: ErrValidation, fields: []string{"qty"}},
		{name: "reserve MaxQty+1", given: existing, when: Reserve{SKU: testSKU, ReservationID: rid("5"), OrderID: "o5", Qty: MaxQty + 1, At: now}, err: ErrValidation, fields: []string{"qty"}},
		{name: "reserve without ids", given: existing, when: Reserve{SKU: testSKU, Qty: 1, At: now}, err: ErrValidation, fields: []string{"order_id", "reservation_id"}},
		{name: "release held", given: existing, when: Release{SKU: testSKU, ReservationID: rid("1"), At: now}, then: []SKUEvent{ReservationReleased{ReservationID: rid("1"), Qty: 3, At: now}}},
		{name: "release released", given: existing, when: Release{SKU: testSKU, ReservationID: rid("2"), At: now}},
		{name: "release committed", given: existing, when: Release{SKU: testSKU, ReservationID: rid("3"), At: now}},
		{name: "release refused", given: existing, when: Release{SKU: testSKU, ReservationID: rid("4"), At: now}},
		{name: "release unknown", given: existing, when: Release{SKU: testSKU, ReservationID: rid("9"), At: now}},
		{name: "release on a missing SKU", when: Release{SKU: testSKU, ReservationID: rid("9"), At: now}},
		{name: "release without id", given: existing, when: Release{SKU: testSKU, At: now}, err: ErrValidation, fields: []string{"reservation_id"}},
		{name: "commit held", given: existing, when: CommitReservation{SKU: testSKU, ReservationID: rid("1"), At: now}, then: []SKUEvent{ReservationCommitted{ReservationID: rid("1"), Qty: 3, At: now}}},
		{name: "commit committed", given: existing, when: CommitReservation{SKU: testSKU, ReservationID: rid("3"), At: now}},
		{name: "commit released", given: existing, when: CommitReservation{SKU: testSKU, ReservationID: rid("2"), At: now}},
		{name: "commit refused", given: existing, when: CommitReservation{SKU: testSKU, ReservationID: rid("4"), At: now}},
		{name: "commit unknown", given: existing, when: CommitReservation{SKU: testSKU, ReservationID: rid("9"), At: now}},
		{name: "commit on a missing SKU", when: CommitReservation{SKU: testSKU, ReservationID: rid("9"), At: now}},
		{name: "commit with a bad sku", given: existing, when: CommitReservation{SKU: "a b", ReservationID: rid("1"), At: now}, err: ErrValidation, fields: []string{"sku"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := foldSKU(t, tt.given)
			events, err := DecideSKU(s, tt.when)
			checkErr(t, err, tt.err, tt.fields...)
			if !reflect.DeepEqual(events, tt.then) {
				t.Fatalf("events = %#v\nwant     %#v", events, tt.then)
			}
			for _, e := range events {
				s = EvolveSKU(s, e)
			}
			checkSKUInvariants(t, s)
		})
	}
}

func TestDecideSKUProgrammingErrors(t *testing.T) {
	t.Parallel()
	s := foldSKU(t, skuHistory())
	for name, c := range map[string]SKUCommand{
		"nil":          nil,
		"pointer":      &Restock{SKU: testSKU, Qty: 1, At: t0},
		"zero time":    Restock{SKU: testSKU, Qty: 1},
		"another SKU":  Reserve{SKU: "pear", ReservationID: "r", OrderID: "o", Qty: 1, At: t0},
		"another SKU2": SetOnHand{SKU: "pear", OnHand: 1, At: t0},
	} {
		events, err := DecideSKU(s, c)
		if !errors.IsAssertionFailure(err) || events != nil {
			t.Errorf("%s: want an assertion failure, got %v, %v", name, events, err)
		}
	}
}

// EvolveSKU copies the held set on write: the previous state must be
// untouched, so a processor can keep it to retry after a conflict.
func TestEvolveSKUDoesNotMutateItsInput(t *testing.T) {
	t.Parallel()
	s := foldSKU(t, skuHistory())
	before := maps.Collect(s.Held.All())
	for _, e := range []SKUEvent{
		StockReserved{ReservationID: rid("5"), OrderID: "o5", Qty: 1, At: t0},
		ReservationRefused{ReservationID: rid("6"), OrderID: "o6", Qty: 1, At: t0},
		ReservationReleased{ReservationID: rid("1"), Qty: 3, At: t0},
		ReservationCommitted{ReservationID: rid("1"), Qty: 3, At: t0},
	} {
		next := EvolveSKU(s, e)
		if !maps.Equal(maps.Collect(s.Held.All()), before) {
			t.Fatalf("%T mutated the input state", e)
		}
		_, refused := e.(ReservationRefused)
		if maps.Equal(maps.Collect(next.Held.All()), before) != refused {
			t.Fatalf("%T: held %v, before %v", e, maps.Collect(next.Held.All()), before)
		}
	}
}

func TestEvolveSKUPanicsOutsideTheClosedSet(t *testing.T) {
	t.Parallel()
	defer func() {
		if err, ok := recover().(error); !ok || !errors.IsAssertionFailure(err) {
			t.Fatalf("want an assertion failure panic")
		}
	}()
	EvolveSKU(SKU{}, &Restocked{})
}

func checkSKUInvariants(tb testing.TB, s SKU) {
	tb.Helper()
	var held int64
	for id, q := range s.Held.All() {
		if q < 1 {
			tb.Fatalf("reservation %s holds %d", id, q)
		}
		held += q
	}
	// Every held reservation holds a unit at least, so the state is
	// bounded by the stock.
	if s.Reserved < 0 || s.Reserved > s.OnHand || s.OnHand < 0 || s.Reserved != held || s.OnHand > MaxStock ||
		int64(s.Held.Len()) > s.Reserved {
		tb.Fatalf("invariant broken: on_hand %d reserved %d held %d in %d reservations", s.OnHand, s.Reserved, held, s.Held.Len())
	}
}

// heldOf builds the held set m, as a fold would.
func heldOf(m map[string]int64) HeldSet {
	var h HeldSet
	var w heldCOW
	for id, q := range m {
		w.put(&h, id, q)
	}
	return h
}

package domain

import (
	"reflect"
	"testing"
	"time"
)

// TestDecidePlacements: the reserves of orders placed in the decision's own
// batch are decided like stored requests, in order, recorded as one
// ReservationsDecided marked Placed with every decision Told, and leave the
// SKU's request sequences as they were (no stored request was read).
func TestDecidePlacements(t *testing.T) {
	t.Parallel()
	reserve := func(order string, qty int64, d time.Duration) Reserve {
		return Reserve{SKU: testSKU, ReservationID: ReservationID(order, testSKU), OrderID: order, Qty: qty, At: at(d * time.Second)}
	}
	created := []SKUEvent{OnHandSet{SKU: testSKU, OnHand: 3, At: t0}, ReservationsDecided{Shard: 1, ThroughSeq: 70, At: at(1)}}
	cases := []struct {
		name    string
		history []SKUEvent
		cmds    []Reserve
		want    []ReservationDecision
		errs    int
	}{
		{name: "granted while stock lasts, then refused with what is left", history: created,
			cmds: []Reserve{reserve("o1", 2, 2), reserve("o2", 2, 3), reserve("o3", 1, 4)},
			want: []ReservationDecision{
				{Reserved: &StockReserved{ReservationID: ReservationID("o1", testSKU), OrderID: "o1", Qty: 2, At: at(2 * time.Second)}, Told: true},
				{Refused: &ReservationRefused{ReservationID: ReservationID("o2", testSKU), OrderID: "o2", Qty: 2, Available: 1, At: at(3 * time.Second)}, Told: true},
				{Reserved: &StockReserved{ReservationID: ReservationID("o3", testSKU), OrderID: "o3", Qty: 1, At: at(4 * time.Second)}, Told: true},
			}},
		{name: "a SKU never set refuses, recorded all the same", history: nil,
			cmds: []Reserve{reserve("o1", 1, 2)},
			want: []ReservationDecision{
				{Refused: &ReservationRefused{ReservationID: ReservationID("o1", testSKU), OrderID: "o1", Qty: 1, At: at(2 * time.Second)}, Told: true},
			}},
		{name: "a bad reserve is refused as an error and decides nothing", history: created,
			cmds: []Reserve{reserve("o1", 0, 2)}, errs: 1},
		{name: "nothing to decide stores nothing", history: created},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start := foldSKU(t, tc.history)
			after, events, errs := DecidePlacements(start, tc.cmds, 1, at(9*time.Second))
			failed := 0
			for _, err := range errs {
				if err != nil {
					failed++
				}
			}
			if failed != tc.errs || len(errs) != len(tc.cmds) {
				t.Fatalf("errors %v, want %d of %d", errs, tc.errs, len(tc.cmds))
			}
			if len(tc.want) == 0 {
				if len(events) != 0 || !reflect.DeepEqual(after, start) {
					t.Fatalf("events %#v, state moved: %#v", events, after)
				}
				return
			}
			want := ReservationsDecided{Decisions: tc.want, Placed: true, Shard: 1, ThroughSeq: start.RequestSeqOf(1), At: at(9 * time.Second)}
			if len(events) != 1 || !reflect.DeepEqual(events[0], want) {
				t.Fatalf("events %#v\nwant one %#v", events, want)
			}
			if after.RequestSeqOf(1) != start.RequestSeqOf(1) || after.Version != start.Version+1 {
				t.Errorf("request seq %d (was %d), version %d (was %d)", after.RequestSeqOf(1), start.RequestSeqOf(1), after.Version, start.Version)
			}
			if folded := EvolveSKU(start, events[0]); !reflect.DeepEqual(folded, after) {
				t.Errorf("folding the stored event\n got %#v\nwant %#v", folded, after)
			}
			typ, data, err := EncodeSKUEvent(events[0])
			if err != nil {
				t.Fatal(err)
			}
			if back, err := DecodeSKUEvent(typ, SchemaVersion, data); err != nil || !reflect.DeepEqual(back, events[0]) {
				t.Errorf("round trip: %v\n got %#v", err, back)
			}
		})
	}
}

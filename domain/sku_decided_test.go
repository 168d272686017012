package domain

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

func TestDecideReservationsStoresOneEventPerBatch(t *testing.T) {
	t.Parallel()
	start := foldSKU(t, []SKUEvent{OnHandSet{SKU: testSKU, OnHand: 3, At: t0}})
	cmds := []SKUCommand{
		Reserve{SKU: testSKU, ReservationID: "r1", OrderID: "o1", Qty: 2, At: at(1)},
		Reserve{SKU: testSKU, ReservationID: "r2", OrderID: "o2", Qty: 2, At: at(2)},
		Reserve{SKU: testSKU, ReservationID: "r1", OrderID: "o1", Qty: 2, At: at(3)}, // held already
		Release{SKU: testSKU, ReservationID: "r1", At: at(4)},
		CommitReservation{SKU: testSKU, ReservationID: "r2", At: at(5)}, // refused, so not held: a no-op
	}
	after, events, errs := DecideReservations(start, cmds, 40, at(6))
	want := ReservationsDecided{At: at(6), ThroughSeq: 40, Decisions: []ReservationDecision{
		{Reserved: &StockReserved{ReservationID: "r1", OrderID: "o1", Qty: 2, At: at(1)}},
		{Refused: &ReservationRefused{ReservationID: "r2", OrderID: "o2", Qty: 2, Available: 1, At: at(2)}},
		{Released: &ReservationReleased{ReservationID: "r1", Qty: 2, At: at(4)}},
	}}
	if len(events) != 1 || !reflect.DeepEqual(events[0], want) {
		t.Fatalf("events %#v\nwant one %#v", events, want)
	}
	for i, err := range errs {
		if err != nil {
			t.Errorf("errs[%d] = %v: a reserve of a held reservation and a commit of one not held are no-ops", i, err)
		}
	}
	if after.Version != start.Version+1 || after.Reserved != 0 || after.OnHand != 3 || after.RequestSeq != 40 {
		t.Errorf("after: version %d reserved %d on_hand %d request seq %d", after.Version, after.Reserved, after.OnHand, after.RequestSeq)
	}
	if folded := EvolveSKU(start, events[0]); !reflect.DeepEqual(folded, after) {
		t.Errorf("folding the stored event\n got %#v\nwant %#v", folded, after)
	}
	typ, data, err := EncodeSKUEvent(events[0])
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeSKUEvent(typ, SchemaVersion, data)
	if err != nil || !reflect.DeepEqual(back, events[0]) {
		t.Errorf("round trip: %v\n got %#v", err, back)
	}
}

// TestDecideReservationsRecordsHowFarItRead: every batch that reads past
// the SKU's request sequence stores it, even when it decides nothing, and a
// batch the SKU has already read past is a no-op.
func TestDecideReservationsRecordsHowFarItRead(t *testing.T) {
	t.Parallel()
	start := foldSKU(t, []SKUEvent{
		OnHandSet{SKU: testSKU, OnHand: 3, At: t0},
		ReservationsDecided{ThroughSeq: 10, At: at(1)},
	})
	reserve := Reserve{SKU: testSKU, ReservationID: "r", OrderID: "o", Qty: 1, At: at(2)}
	releaseUnknown := Release{SKU: testSKU, ReservationID: "nobody", At: at(2)}
	tests := []struct {
		name    string
		cmds    []SKUCommand
		through uint64
		want    []SKUEvent
	}{
		{"one decision", []SKUCommand{reserve}, 12, []SKUEvent{ReservationsDecided{ThroughSeq: 12, At: at(3), Decisions: []ReservationDecision{
			{Reserved: &StockReserved{ReservationID: "r", OrderID: "o", Qty: 1, At: at(2)}},
		}}}},
		{"only no-ops", []SKUCommand{releaseUnknown}, 12, []SKUEvent{ReservationsDecided{ThroughSeq: 12, At: at(3), Decisions: []ReservationDecision{}}}},
		{"already read", []SKUCommand{reserve}, 10, nil},
		{"behind", []SKUCommand{reserve}, 9, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			after, events, errs := DecideReservations(start, tt.cmds, tt.through, at(3))
			if !reflect.DeepEqual(events, tt.want) {
				t.Fatalf("events %#v\nwant %#v", events, tt.want)
			}
			for i, err := range errs {
				if err != nil {
					t.Errorf("command %d: %v", i, err)
				}
			}
			if tt.want == nil {
				if !reflect.DeepEqual(after, start) {
					t.Errorf("a batch already read changed the SKU: %#v", after)
				}
				return
			}
			if after.RequestSeq != tt.through || !reflect.DeepEqual(EvolveSKUAll(start, events), after) {
				t.Errorf("after %#v: request seq %d, want %d and the fold of the events", after, after.RequestSeq, tt.through)
			}
		})
	}
}

// TestDecideReservationsEqualsDecidingOneByOne checks on random batches that
// the stored batch event folds to the same state as the decisions one by
// one (but for Version, which counts stored events) and that 0 <= reserved
// <= on_hand holds.
func TestDecideReservationsEqualsDecidingOneByOne(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 8))
	through := uint64(0)
	for round := range 500 {
		s := foldSKU(t, []SKUEvent{OnHandSet{SKU: testSKU, OnHand: rng.Int64N(20), At: t0}})
		for batch := range 5 {
			var cmds []SKUCommand
			for i := range 1 + rng.IntN(40) {
				id := fmt.Sprint("r", rng.IntN(15))
				now := t0.Add(time.Duration(round*1000+batch*100+i) * time.Second)
				switch rng.IntN(3) {
				case 0:
					cmds = append(cmds, Reserve{SKU: testSKU, ReservationID: id, OrderID: "o" + id, Qty: 1 + rng.Int64N(4), At: now})
				case 1:
					cmds = append(cmds, Release{SKU: testSKU, ReservationID: id, At: now})
				default:
					cmds = append(cmds, CommitReservation{SKU: testSKU, ReservationID: id, At: now})
				}
			}
			oneByOne, _, wantErrs := DecideSKUBatch(s, cmds)
			through += uint64(len(cmds))
			after, events, errs := DecideReservations(s, cmds, through, t0.Add(time.Hour))
			for i := range cmds {
				if (errs[i] == nil) != (wantErrs[i] == nil) {
					t.Fatalf("command %d: err %v, one by one %v", i, errs[i], wantErrs[i])
				}
			}
			if got := EvolveSKUAll(s, events); !reflect.DeepEqual(got, after) {
				t.Fatalf("folding the stored events differs from the decided state")
			}
			if after.Reserved != oneByOne.Reserved || after.OnHand != oneByOne.OnHand ||
				!reflect.DeepEqual(after.Held, oneByOne.Held) {
				t.Fatalf("batch state differs from one by one")
			}
			if after.Version != s.Version+uint64(len(events)) {
				t.Fatalf("version %d after %d events from %d", after.Version, len(events), s.Version)
			}
			if after.Reserved < 0 || after.Reserved > after.OnHand {
				t.Fatalf("reserved %d on_hand %d", after.Reserved, after.OnHand)
			}
			s = after
		}
	}
}

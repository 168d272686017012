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
	after, events, errs := DecideReservations(start, cmds, 0, 40, at(6))
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
	if after.Version != start.Version+1 || after.Reserved != 0 || after.OnHand != 3 || after.RequestSeqOf(0) != 40 {
		t.Errorf("after: version %d reserved %d on_hand %d request seq %d", after.Version, after.Reserved, after.OnHand, after.RequestSeqOf(0))
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
			after, events, errs := DecideReservations(start, tt.cmds, 0, tt.through, at(3))
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
			if after.RequestSeqOf(0) != tt.through || !reflect.DeepEqual(EvolveSKUAll(start, events), after) {
				t.Errorf("after %#v: request seq %d, want %d and the fold of the events", after, after.RequestSeqOf(0), tt.through)
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
			after, events, errs := DecideReservations(s, cmds, 0, through, t0.Add(time.Hour))
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

// TestDecideReservationsPerShard: a SKU's requests come from every shard of
// the event store, each numbered by its own stream, so how far the SKU has
// read is kept per shard: a redelivery from any shard is skipped, and a
// shard's sequence never holds back another's.
func TestDecideReservationsPerShard(t *testing.T) {
	t.Parallel()
	start := foldSKU(t, []SKUEvent{
		OnHandSet{SKU: testSKU, OnHand: 3, At: t0},
		ReservationsDecided{ThroughSeq: 10, At: at(1)}, // stored before sharding: shard 0
		ReservationsDecided{Shard: 2, ThroughSeq: 5, At: at(1)},
	})
	reserve := Reserve{SKU: testSKU, ReservationID: "r", OrderID: "o", Qty: 1, At: at(2)}
	tests := []struct {
		name    string
		shard   int
		through uint64
		decides bool
		want    []uint64 // RequestSeqOf(0..3) after
	}{
		{"a shard not seen yet, below another's sequence", 1, 3, true, []uint64{10, 3, 5, 0}},
		{"redelivery from shard 2", 2, 5, false, []uint64{10, 0, 5, 0}},
		{"behind on shard 2", 2, 4, false, []uint64{10, 0, 5, 0}},
		{"ahead on shard 2", 2, 7, true, []uint64{10, 0, 7, 0}},
		{"redelivery from shard 0", 0, 10, false, []uint64{10, 0, 5, 0}},
		{"ahead on shard 0", 0, 11, true, []uint64{11, 0, 5, 0}},
		{"a shard past the others", 3, 1, true, []uint64{10, 0, 5, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			after, events, _ := DecideReservations(start, []SKUCommand{reserve}, tt.shard, tt.through, at(3))
			if decided := len(events) > 0; decided != tt.decides {
				t.Fatalf("decided %v, want %v (%#v)", decided, tt.decides, events)
			}
			if tt.decides {
				if e := events[0].(ReservationsDecided); e.Shard != tt.shard || e.ThroughSeq != tt.through {
					t.Errorf("stored shard %d through %d, want %d through %d", e.Shard, e.ThroughSeq, tt.shard, tt.through)
				}
				if !reflect.DeepEqual(EvolveSKUAll(start, events), after) {
					t.Errorf("folding the stored event differs from the decided state")
				}
			}
			for k, want := range tt.want {
				if got := after.RequestSeqOf(k); got != want {
					t.Errorf("RequestSeqOf(%d) = %d, want %d", k, got, want)
				}
			}
			if start.RequestSeqOf(2) != 5 || start.RequestSeqOf(1) != 0 {
				t.Errorf("deciding changed the state it started from: %v", start.RequestSeqs)
			}
		})
	}
}

// TestReservationsDecidedWithoutShardIsShardZero: events stored before the
// store was sharded carry no shard and count on shard 0.
func TestReservationsDecidedWithoutShardIsShardZero(t *testing.T) {
	t.Parallel()
	ev, err := DecodeSKUEvent("ReservationsDecided", SchemaVersion, []byte(`{"decisions":[],"through_seq":42,"at":"2025-03-14T09:26:53Z"}`))
	if err != nil {
		t.Fatal(err)
	}
	s := EvolveSKU(SKU{}, ev)
	if s.RequestSeqOf(0) != 42 || s.RequestSeqOf(1) != 0 {
		t.Errorf("request seqs %v, want [42]", s.RequestSeqs)
	}
}

// TestToldDecisionsRoundTrip: Told (the order was told in the decision's
// own batch) survives the codec, and a decision stored before it existed
// reads as not told, so the saga still tells its order.
func TestToldDecisionsRoundTrip(t *testing.T) {
	t.Parallel()
	when := time.Date(2026, 1, 1, 0, 0, 1, 0, time.UTC) // as in the stored JSON below
	granted := StockReserved{ReservationID: "r1", OrderID: "o1", Qty: 1, At: when}
	refused := ReservationRefused{ReservationID: "r2", OrderID: "o2", Qty: 1, Available: 0, At: when}
	tests := []struct {
		name string
		data string // as stored; empty: encode want
		want ReservationsDecided
	}{
		{"told and not told", "", ReservationsDecided{ThroughSeq: 3, At: when, Decisions: []ReservationDecision{
			{Reserved: &granted, Told: true}, {Refused: &refused}}}},
		{"stored before told existed", `{"decisions":[{"reserved":{"reservation_id":"r1","order_id":"o1","qty":1,"at":"2026-01-01T00:00:01Z"}}],"through_seq":3,"at":"2026-01-01T00:00:01Z"}`,
			ReservationsDecided{ThroughSeq: 3, At: when, Decisions: []ReservationDecision{{Reserved: &granted}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			typ, data := tt.want.EventType(), []byte(tt.data)
			if tt.data == "" {
				var err error
				if typ, data, err = EncodeSKUEvent(tt.want); err != nil {
					t.Fatal(err)
				}
			}
			got, err := DecodeSKUEvent(typ, SchemaVersionOf(typ), data)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("decoded %#v, want %#v", got, tt.want)
			}
		})
	}
}

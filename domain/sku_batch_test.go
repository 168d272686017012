package domain

import (
	"maps"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
)

func TestDecideSKUBatch(t *testing.T) {
	t.Parallel()
	now := at(time.Hour)
	reserve := func(n string, qty int64) Reserve {
		return Reserve{SKU: testSKU, ReservationID: rid(n), OrderID: "o" + n, Qty: qty, At: now}
	}
	s := foldSKU(t, skuHistory()) // 6 available
	cmds := []SKUCommand{
		reserve("5", 4),
		reserve("6", 3), // only 2 left
		reserve("7", 0),
		Release{SKU: testSKU, ReservationID: rid("5"), At: now},
		reserve("1", 3), // held already: holds nothing more
		Reserve{SKU: "pear", ReservationID: rid("8"), OrderID: "o8", Qty: 1, At: now},
		reserve("9", 6), // the release gave 4 back
	}
	after, events, errs := DecideSKUBatch(s, cmds)
	wantEvents := []SKUEvent{
		StockReserved{ReservationID: rid("5"), OrderID: "o5", Qty: 4, At: now},
		ReservationRefused{ReservationID: rid("6"), OrderID: "o6", Qty: 3, Available: 2, At: now},
		ReservationReleased{ReservationID: rid("5"), Qty: 4, At: now},
		StockReserved{ReservationID: rid("9"), OrderID: "o9", Qty: 6, At: now},
	}
	if !reflect.DeepEqual(events, wantEvents) {
		t.Fatalf("events = %#v\nwant     %#v", events, wantEvents)
	}
	if len(errs) != len(cmds) {
		t.Fatalf("%d errors for %d commands", len(errs), len(cmds))
	}
	for i, err := range errs {
		switch i {
		case 2:
			checkErr(t, err, ErrValidation, "qty")
		case 5:
			if !errors.IsAssertionFailure(err) {
				t.Errorf("errs[5] = %v, want an assertion failure", err)
			}
		default:
			checkErr(t, err, nil)
		}
	}
	if after.Reserved != 3+6 || after.Version != s.Version+4 || !after.UpdatedAt.Equal(now) {
		t.Fatalf("after = %+v", after)
	}
	checkSKUInvariants(t, after)
}

func TestDecideSKUBatchOfNothing(t *testing.T) {
	t.Parallel()
	s := foldSKU(t, skuHistory())
	after, events, errs := DecideSKUBatch(s, nil)
	if !reflect.DeepEqual(after, s) || events != nil || len(errs) != 0 {
		t.Fatalf("got %+v, %v, %v", after, events, errs)
	}
	if got := EvolveSKUAll(s, nil); !reflect.DeepEqual(got, s) {
		t.Fatalf("EvolveSKUAll of nothing = %+v", got)
	}
}

// runSKUBatchScript checks that deciding a script's commands as one batch
// equals deciding them one by one. The first byte splits the script: the
// commands before the split build the state the batch starts from, so
// batches start both from nothing and from long histories.
func runSKUBatchScript(tb testing.TB, script []byte) {
	tb.Helper()
	if len(script) == 0 {
		return
	}
	split, script := 2*int(script[0]), script[1:]
	var s, start SKU
	var cmds []SKUCommand
	var wantEvents []SKUEvent
	var wantErrs []error
	now := t0
	for i := 0; i+1 < len(script); i += 2 {
		if i == split {
			start = s
		}
		op, arg := script[i], script[i+1]
		now = now.Add(time.Second)
		var c SKUCommand
		switch op {
		case 255:
			c = Reserve{SKU: "pear", ReservationID: "r", OrderID: "o", Qty: 1, At: now}
		case 254:
			c = Restock{SKU: testSKU, Qty: 1} // no time
		default:
			c = skuCommandFor(op, arg, s, now)
		}
		events, err := DecideSKU(s, c)
		for _, e := range events {
			s = EvolveSKU(s, e)
		}
		if i >= split {
			cmds = append(cmds, c)
			wantEvents = append(wantEvents, events...)
			wantErrs = append(wantErrs, err)
		}
	}
	if split >= len(script)&^1 { // the batch is empty
		start = s
	}
	input := start
	input.Held = heldOf(maps.Collect(start.Held.All()))

	after, events, errs := DecideSKUBatch(start, cmds)
	if !reflect.DeepEqual(events, wantEvents) {
		tb.Fatalf("batch events = %#v\nsequential     %#v", events, wantEvents)
	}
	if !reflect.DeepEqual(after, s) {
		tb.Fatalf("batch state = %+v\nsequential    %+v", after, s)
	}
	if len(errs) != len(cmds) {
		tb.Fatalf("%d errors for %d commands", len(errs), len(cmds))
	}
	for i := range errs {
		checkSameError(tb, i, errs[i], wantErrs[i])
	}
	if folded := EvolveSKUAll(start, events); !reflect.DeepEqual(folded, s) {
		tb.Fatalf("EvolveSKUAll = %+v\nsequential  %+v", folded, s)
	}
	if !reflect.DeepEqual(start, input) {
		tb.Fatalf("the batch mutated its input: %+v\nwas %+v", start, input)
	}
}

// checkSameError asserts that got is the error want is: both nil, or of
// the same kind with the same message.
func checkSameError(tb testing.TB, i int, got, want error) {
	tb.Helper()
	if (got == nil) != (want == nil) {
		tb.Fatalf("errs[%d] = %v, sequential %v", i, got, want)
	}
	if got == nil {
		return
	}
	for _, kind := range []error{ErrValidation, ErrNotFound, ErrInvalidTransition, ErrConflict} {
		if errors.Is(got, kind) != errors.Is(want, kind) {
			tb.Fatalf("errs[%d] = %v, sequential %v: kinds differ on %v", i, got, want, kind)
		}
	}
	if errors.IsAssertionFailure(got) != errors.IsAssertionFailure(want) || got.Error() != want.Error() {
		tb.Fatalf("errs[%d] = %v, sequential %v", i, got, want)
	}
}

func TestDecideSKUBatchEqualsSequential(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(5, 6))
	for range 2000 {
		script := make([]byte, 1+2*(1+rng.IntN(80)))
		for i := range script {
			script[i] = byte(rng.UintN(256))
		}
		script[0] = byte(rng.IntN(len(script) / 2)) // split inside the script
		runSKUBatchScript(t, script)
	}
}

func FuzzSKUBatch(f *testing.F) {
	f.Add([]byte{2, 0, 9, 2, 3, 2, 5, 3, 3, 2, 3, 4, 3})     // set and reserve, then reserve, refuse, release, commit
	f.Add([]byte{0, 2, 1, 255, 0, 0, 9, 254, 0, 2, 4, 2, 4}) // errors inside the batch
	f.Fuzz(func(t *testing.T, script []byte) {
		runSKUBatchScript(t, script)
	})
}

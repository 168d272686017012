package domain

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"testing"
)

// A fold copies only what it writes; the set it started from never changes,
// and sets with the same content are equal whatever their history, so a
// live state compares equal to a cold replay.
func TestHeldSetCopiesOnWrite(t *testing.T) {
	t.Parallel()
	var base HeldSet
	var w heldCOW
	for i := range 1000 {
		w.put(&base, fmt.Sprint("r", i), int64(i%3+1))
	}
	want := maps.Collect(base.All())

	next := base
	var w2 heldCOW
	w2.put(&next, "new", 5)
	w2.remove(&next, "r7")
	w2.remove(&next, "never-held")
	if !maps.Equal(maps.Collect(base.All()), want) || base.Len() != 1000 {
		t.Fatalf("the fold wrote the set it started from")
	}
	if q, ok := next.Qty("new"); !ok || q != 5 || next.Len() != 1000 {
		t.Fatalf("next: new %d %v, len %d", q, ok, next.Len())
	}
	if _, ok := next.Qty("r7"); ok {
		t.Fatalf("r7 still held")
	}
	shared := 0
	for i := range base.shards {
		if base.shards[i] != nil && reflect.ValueOf(base.shards[i]).Pointer() == reflect.ValueOf(next.shards[i]).Pointer() {
			shared++
		}
	}
	if shared < heldShardCount-2 {
		t.Errorf("%d of %d shards shared after two writes: the fold copied more than it wrote", shared, heldShardCount)
	}

	// Emptied shards and sets go back to nil: equal content, equal values.
	w2.remove(&next, "new")
	w2.put(&next, "r7", 2)
	if !reflect.DeepEqual(next, base) || !next.Equal(base) {
		t.Errorf("same content, different values")
	}
	var empty HeldSet
	var w3 heldCOW
	w3.put(&empty, "x", 1)
	w3.remove(&empty, "x")
	if !reflect.DeepEqual(empty, HeldSet{}) {
		t.Errorf("emptied set %+v is not the zero set", empty)
	}
}

func TestHeldSetJSONRoundTrip(t *testing.T) {
	t.Parallel()
	h := heldOf(map[string]int64{"a": 1, "b": 2, "c": 3})
	data, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	var back HeldSet
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, h) {
		t.Fatalf("round trip of %s: %v", data, maps.Collect(back.All()))
	}
	if err := json.Unmarshal([]byte(`{"a":"x"}`), &back); err == nil {
		t.Fatal("decoded a quantity that is not a number")
	}
}

// Around heldSmall a set moves between one map and shards; whatever the
// path, it equals (reflect.DeepEqual) the set built afresh from its
// content, and no earlier value changes.
func TestHeldSetShapeFollowsItsSize(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(5, 6))
	var h HeldSet
	var w heldCOW
	content := map[string]int64{}
	var frozen HeldSet // the set a fold started from
	var frozenContent map[string]int64
	for step := range 5000 {
		if step%50 == 0 {
			w = heldCOW{} // a new fold, as each batch is
			frozen, frozenContent = h, maps.Clone(content)
		}
		id := fmt.Sprint("r", rng.IntN(2*heldSmall))
		if rng.IntN(2) == 0 {
			q := int64(1 + rng.IntN(3))
			w.put(&h, id, q)
			content[id] = q
		} else {
			w.remove(&h, id)
			delete(content, id)
		}
		if !reflect.DeepEqual(h, heldOf(content)) || h.Len() != len(content) {
			t.Fatalf("step %d: %d held, want %v", step, h.Len(), content)
		}
		if (h.shards != nil) != (len(content) > heldSmall) {
			t.Fatalf("step %d: %d held, sharded %v", step, len(content), h.shards != nil)
		}
		if !maps.Equal(maps.Collect(frozen.All()), frozenContent) || frozen.Len() != len(frozenContent) {
			t.Fatalf("step %d: the fold wrote the set it started from", step)
		}
	}
}

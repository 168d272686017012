package domain

import (
	"encoding/json"
	"iter"
	"maps"

	"github.com/cockroachdb/errors"
)

// heldShardCount is how many shards a HeldSet is split into; a power of
// two, and a multiple of 64 for heldCOW's bit set.
const heldShardCount = 256

// HeldSet is the set of a SKU's held reservations: reservation id to the
// quantity it holds. It holds nothing else, so its size is bounded by the
// stock (every held reservation holds at least one unit, and together at
// most OnHand).
//
// A HeldSet is a value: copying it is cheap, and a copy never sees later
// writes. Only a fold writes, and it copies the table of shards and each
// shard it writes on first write, so a batch of a few decisions on a SKU
// holding many reservations copies a few small shards, not the whole set.
type HeldSet struct {
	shards *[heldShardCount]map[string]int64
	n      int
}

// Len returns the number of held reservations.
func (h HeldSet) Len() int { return h.n }

// Qty returns what reservation id holds, and whether it is held.
func (h HeldSet) Qty(id string) (int64, bool) {
	if h.shards == nil {
		return 0, false
	}
	q, ok := h.shards[heldShard(id)][id]
	return q, ok
}

// All yields every held reservation and its quantity, in no fixed order.
func (h HeldSet) All() iter.Seq2[string, int64] {
	return func(yield func(string, int64) bool) {
		if h.shards == nil {
			return
		}
		for _, m := range h.shards {
			for id, q := range m {
				if !yield(id, q) {
					return
				}
			}
		}
	}
}

// Equal reports whether h and o hold the same reservations with the same
// quantities.
func (h HeldSet) Equal(o HeldSet) bool {
	if h.n != o.n {
		return false
	}
	for id, q := range h.All() {
		if oq, ok := o.Qty(id); !ok || oq != q {
			return false
		}
	}
	return true
}

// MarshalJSON encodes the set as an object of reservation id to quantity,
// which is what a stored snapshot of a SKU holds.
func (h HeldSet) MarshalJSON() ([]byte, error) {
	m := make(map[string]int64, h.n)
	maps.Insert(m, h.All())
	return json.Marshal(m)
}

// UnmarshalJSON decodes what MarshalJSON encoded.
func (h *HeldSet) UnmarshalJSON(data []byte) error {
	var m map[string]int64
	if err := json.Unmarshal(data, &m); err != nil {
		return errors.Wrap(err, "decode held reservations")
	}
	*h = HeldSet{}
	var w heldCOW
	for id, q := range m {
		w.put(h, id, q)
	}
	return nil
}

// heldShard picks the shard of id with FNV-1a: deterministic, so two
// processes agree, and cheap on the short ids reservations have.
func heldShard(id string) int {
	x := uint32(2166136261)
	for i := 0; i < len(id); i++ {
		x ^= uint32(id[i])
		x *= 16777619
	}
	return int(x & (heldShardCount - 1))
}

// heldCOW records which parts of a HeldSet a fold has copied: the table of
// shards, and each shard. What it copied it writes in place; what it did
// not, it copies first, so the set the fold started from is never touched.
type heldCOW struct {
	table bool
	owned [heldShardCount / 64]uint64
}

// shard returns the writable shard of id in h.
func (w *heldCOW) shard(h *HeldSet, id string) map[string]int64 {
	if !w.table {
		var t [heldShardCount]map[string]int64
		if h.shards != nil {
			t = *h.shards
		}
		h.shards, w.table, w.owned = &t, true, [heldShardCount / 64]uint64{}
	}
	i := heldShard(id)
	if w.owned[i/64]&(1<<(i%64)) == 0 {
		h.shards[i] = maps.Clone(h.shards[i])
		w.owned[i/64] |= 1 << (i % 64)
	}
	if h.shards[i] == nil {
		h.shards[i] = make(map[string]int64, 1)
	}
	return h.shards[i]
}

// put holds qty for id in h.
func (w *heldCOW) put(h *HeldSet, id string, qty int64) {
	m := w.shard(h, id)
	if _, ok := m[id]; !ok {
		h.n++
	}
	m[id] = qty
}

// remove drops id from h; a reservation not held is left alone without
// copying anything. An emptied shard, and an emptied set, go back to nil,
// so that equal sets are equal to reflect.DeepEqual too, whatever their
// history.
func (w *heldCOW) remove(h *HeldSet, id string) {
	if _, ok := h.Qty(id); !ok {
		return
	}
	i := heldShard(id)
	m := w.shard(h, id)
	delete(m, id)
	if len(m) == 0 {
		h.shards[i] = nil
	}
	if h.n--; h.n == 0 {
		h.shards, w.table = nil, false
	}
}

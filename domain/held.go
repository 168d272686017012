package domain

import (
	"encoding/json"
	"iter"
	"maps"

	"github.com/cockroachdb/errors"
)

// heldShardCount is how many shards a large HeldSet is split into; a
// power of two, and a multiple of 64 for heldCOW's bit set.
const heldShardCount = 256

// heldSmall is the most reservations a HeldSet keeps in one plain map. A
// set is small or sharded by its size alone, so two sets with the same
// content have the same shape (reflect.DeepEqual holds between a live
// state and a cold replay), and the many SKUs holding a few reservations
// each do not pay for a table of shards.
const heldSmall = 64

// HeldSet is the set of a SKU's held reservations: reservation id to the
// quantity it holds. It holds nothing else, so its size is bounded by the
// stock (every held reservation holds at least one unit, and together at
// most OnHand).
//
// A HeldSet is a value: copying it is cheap, and a copy never sees later
// writes. Only a fold writes, and it copies what it writes on first write:
// the small map whole, or, for a large set, the table of shards and each
// shard it writes, so a batch of a few decisions on a SKU holding many
// reservations copies a few small shards, not the whole set.
type HeldSet struct {
	small  map[string]int64 // up to heldSmall reservations
	shards *[heldShardCount]map[string]int64
	n      int
}

// Len returns the number of held reservations.
func (h HeldSet) Len() int { return h.n }

// Qty returns what reservation id holds, and whether it is held.
func (h HeldSet) Qty(id string) (int64, bool) {
	if h.shards == nil {
		q, ok := h.small[id]
		return q, ok
	}
	q, ok := h.shards[heldShard(id)][id]
	return q, ok
}

// All yields every held reservation and its quantity, in no fixed order.
func (h HeldSet) All() iter.Seq2[string, int64] {
	return func(yield func(string, int64) bool) {
		if h.shards == nil {
			for id, q := range h.small {
				if !yield(id, q) {
					return
				}
			}
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

// heldCOW records which parts of a HeldSet a fold has copied: the small
// map, or the table of shards and each shard. What it copied it writes in
// place; what it did not, it copies first, so the set the fold started
// from is never touched.
type heldCOW struct {
	small bool
	table bool
	owned [heldShardCount / 64]uint64
}

// put holds qty for id in h.
func (w *heldCOW) put(h *HeldSet, id string, qty int64) {
	if _, ok := h.Qty(id); ok {
		w.writable(h, id)[id] = qty
		return
	}
	if h.shards == nil && h.n == heldSmall {
		w.shard(h)
	}
	w.writable(h, id)[id] = qty
	h.n++
}

// remove drops id from h; a reservation not held is left alone without
// copying anything.
func (w *heldCOW) remove(h *HeldSet, id string) {
	if _, ok := h.Qty(id); !ok {
		return
	}
	m := w.writable(h, id)
	delete(m, id)
	h.n--
	switch {
	case h.n == 0:
		*h, *w = HeldSet{}, heldCOW{}
	case h.shards == nil:
	case h.n == heldSmall:
		w.unshard(h)
	case len(m) == 0:
		// Emptied shards go back to nil, so equal sets are equal to
		// reflect.DeepEqual too, whatever their history.
		h.shards[heldShard(id)] = nil
	}
}

// writable returns the map that holds, or will hold, id, copied if this
// fold has not copied it yet.
func (w *heldCOW) writable(h *HeldSet, id string) map[string]int64 {
	if h.shards == nil {
		if !w.small {
			m := make(map[string]int64, max(len(h.small)+1, 4))
			maps.Copy(m, h.small)
			h.small, w.small = m, true
		}
		return h.small
	}
	if !w.table {
		t := *h.shards
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

// shard moves a full small set into shards this fold owns.
func (w *heldCOW) shard(h *HeldSet) {
	var t [heldShardCount]map[string]int64
	for id, q := range h.small {
		i := heldShard(id)
		if t[i] == nil {
			t[i] = make(map[string]int64, 1)
		}
		t[i][id] = q
	}
	h.small, h.shards = nil, &t
	*w = heldCOW{table: true}
	for i := range w.owned {
		w.owned[i] = ^uint64(0)
	}
}

// unshard moves a set that shrank to heldSmall back into one map this
// fold owns.
func (w *heldCOW) unshard(h *HeldSet) {
	m := make(map[string]int64, heldSmall+1)
	maps.Insert(m, h.All())
	h.small, h.shards = m, nil
	*w = heldCOW{small: true}
}

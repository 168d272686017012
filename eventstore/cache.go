package eventstore

import "sync"

// snapshotCache keeps the last known snapshot per subject, the most
// recently used ones first. It holds two generations: entries go into the
// current one, and when it reaches half the bound the older generation is
// dropped whole and the current one becomes the older. So the last bound/2
// subjects put or read are always there, whatever came before them.
//
// It used to drop an arbitrary eighth when full. In a long sale that is
// the wrong eighth: an order is needed again when it expires, a TTL after
// it was last written, and once the cache had filled (after about two
// minutes at 800 orders/s) random drops would send, by arithmetic, about a
// fifth of the expiries to the store for the order's history, two reads
// each on a loaded server (BENCHMARKS.md, "The hot path's JSON": the long
// sale held 30 s longer with generations).
type snapshotCache[S any] struct {
	mu       sync.Mutex
	half     int
	cur, old map[string]Snapshot[S]
}

func newSnapshotCache[S any](bound int) *snapshotCache[S] {
	return &snapshotCache[S]{half: max(bound/2, 1), cur: map[string]Snapshot[S]{}, old: map[string]Snapshot[S]{}}
}

func (c *snapshotCache[S]) get(subject string) (Snapshot[S], bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.cur[subject]; ok {
		return s, true
	}
	s, ok := c.old[subject]
	if ok {
		c.keep(subject, s) // used again: it stays another generation
	}
	return s, ok
}

func (c *snapshotCache[S]) put(subject string, s Snapshot[S]) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if known, ok := c.cur[subject]; ok {
		if known.LastSeq > s.LastSeq {
			return // never replace a newer snapshot with an older one
		}
		c.cur[subject] = s
		return
	}
	if known, ok := c.old[subject]; ok && known.LastSeq > s.LastSeq {
		s = known
	}
	c.keep(subject, s)
}

// keep puts s into the current generation, which begins anew once it
// holds half the bound. mu is held.
func (c *snapshotCache[S]) keep(subject string, s Snapshot[S]) {
	delete(c.old, subject)
	if len(c.cur) >= c.half {
		c.old, c.cur = c.cur, make(map[string]Snapshot[S], c.half)
	}
	c.cur[subject] = s
}

func (c *snapshotCache[S]) remove(subject string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.cur, subject)
	delete(c.old, subject)
}

// keyedMutex serializes work per key without a fixed set of stripes, so two
// unrelated aggregates never wait for each other.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*keyedEntry
}

type keyedEntry struct {
	mu   sync.Mutex
	refs int
}

func (k *keyedMutex) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.m == nil {
		k.m = make(map[string]*keyedEntry)
	}
	e := k.m[key]
	if e == nil {
		e = &keyedEntry{}
		k.m[key] = e
	}
	e.refs++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}

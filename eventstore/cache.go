package eventstore

import "sync"

// snapshotCache keeps the last known snapshot per subject. It is bounded:
// when full, an arbitrary eighth of it is dropped (map iteration order is
// random), which is cheap and good enough for a cache that only saves reads.
type snapshotCache[S any] struct {
	mu  sync.Mutex
	max int
	m   map[string]Snapshot[S]
}

func newSnapshotCache[S any](max int) *snapshotCache[S] {
	if max <= 0 {
		max = 1
	}
	return &snapshotCache[S]{max: max, m: make(map[string]Snapshot[S])}
}

func (c *snapshotCache[S]) get(subject string) (Snapshot[S], bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.m[subject]
	return s, ok
}

func (c *snapshotCache[S]) put(subject string, s Snapshot[S]) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[subject]; ok && old.LastSeq > s.LastSeq {
		return // never replace a newer snapshot with an older one
	}
	if len(c.m) >= c.max {
		drop := c.max/8 + 1
		for k := range c.m {
			delete(c.m, k)
			if drop--; drop == 0 {
				break
			}
		}
	}
	c.m[subject] = s
}

func (c *snapshotCache[S]) remove(subject string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, subject)
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

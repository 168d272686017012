package eventstore

import (
	"strconv"
	"testing"
)

// TestSnapshotCacheKeepsTheRecentlyUsed checks the cache's promise: the
// last half-bound subjects put or read are there, whatever came before;
// it never holds more than its bound; an older snapshot never replaces a
// newer one; and remove forgets a subject in either generation.
func TestSnapshotCacheKeepsTheRecentlyUsed(t *testing.T) {
	const bound = 8
	key := func(i int) string { return "orders." + strconv.Itoa(i) }
	snap := func(seq uint64) Snapshot[int] { return Snapshot[int]{LastSeq: seq} }
	cases := []struct {
		name string
		run  func(c *snapshotCache[int]) // acts on the cache
		want map[string]uint64           // subject → LastSeq expected; 0 means absent
	}{
		{
			name: "the last half-bound puts are always there",
			run: func(c *snapshotCache[int]) {
				for i := range 20 {
					c.put(key(i), snap(uint64(i+1)))
				}
			},
			want: map[string]uint64{key(16): 17, key(17): 18, key(18): 19, key(19): 20, key(0): 0, key(10): 0},
		},
		{
			name: "a read keeps an entry for another generation",
			run: func(c *snapshotCache[int]) {
				c.put(key(0), snap(1))
				for i := 1; i <= 4; i++ {
					c.put(key(i), snap(1))
				}
				c.get(key(0))             // in the older generation: kept
				for i := 5; i <= 8; i++ { // the generation turns at 7
					c.put(key(i), snap(1))
				}
			},
			want: map[string]uint64{key(0): 1},
		},
		{
			name: "without the read it is dropped",
			run: func(c *snapshotCache[int]) {
				c.put(key(0), snap(1))
				for i := 1; i <= 8; i++ {
					c.put(key(i), snap(1))
				}
			},
			want: map[string]uint64{key(0): 0, key(8): 1},
		},
		{
			name: "an older snapshot never replaces a newer one, in either generation",
			run: func(c *snapshotCache[int]) {
				c.put(key(0), snap(5))
				c.put(key(0), snap(3))
				c.put(key(1), snap(5))
				for i := 2; i <= 5; i++ {
					c.put(key(i), snap(1))
				}
				c.put(key(1), snap(4)) // key(1) is in the older generation now
			},
			want: map[string]uint64{key(0): 5, key(1): 5},
		},
		{
			name: "remove forgets a subject in either generation",
			run: func(c *snapshotCache[int]) {
				c.put(key(0), snap(1))
				for i := 1; i <= 4; i++ {
					c.put(key(i), snap(1))
				}
				c.put(key(9), snap(1))
				c.remove(key(0))
				c.remove(key(9))
			},
			want: map[string]uint64{key(0): 0, key(9): 0, key(4): 1},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newSnapshotCache[int](bound)
			tc.run(c)
			for subject, want := range tc.want {
				got, ok := c.get(subject)
				switch {
				case want == 0 && ok:
					t.Errorf("%s is cached (seq %d), want it dropped", subject, got.LastSeq)
				case want != 0 && (!ok || got.LastSeq != want):
					t.Errorf("%s: cached %v at seq %d, want seq %d", subject, ok, got.LastSeq, want)
				}
			}
			if n := len(c.cur) + len(c.old); n > bound {
				t.Errorf("%d entries, over the bound of %d", n, bound)
			}
		})
	}
}

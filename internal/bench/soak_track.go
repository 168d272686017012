package bench

import (
	"bufio"
	"context"
	"os"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/eventstore"
)

// soakTracker follows one SKU's stored decisions, as any reader of the
// stream could: which reservations are held since when, and for each one
// released, how long after its due (grant + TTL) the release was stored.
type soakTracker struct {
	ttl time.Duration

	mu       sync.Mutex
	held     map[string]soakHold
	lags     []time.Duration
	released int64 // units released
	granted  int64 // units granted
	heldNow  int64 // units held
	// heldAfter is heldNow after each of the SKU's recent event versions.
	heldAfter map[uint64]int64
	err       error
	// releasedNow is released, for the progress line.
	releasedNow atomic.Int64
}

type soakHold struct {
	qty   int64
	grant time.Time
}

func newSoakTracker(ttl time.Duration) *soakTracker {
	return &soakTracker{ttl: ttl, held: map[string]soakHold{}, heldAfter: map[uint64]int64{}}
}

// follow reads sku's events with an ordered consumer until ctx ends.
func (t *soakTracker) follow(ctx context.Context, s *eventstore.Store, sku string) error {
	_, err := s.Follow(ctx, eventstore.InventorySubjects+"."+sku, func(_ eventstore.Position, data []byte) { t.apply(data) })
	return errors.Wrap(err, "follow the soak SKU")
}

func (t *soakTracker) apply(data []byte) {
	env, err := eventstore.DecodeEnvelope(data)
	var e domain.SKUEvent
	if err == nil {
		e, err = eventstore.DecodeSKUEvent(env.Type, env.SchemaVersion, env.Data)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		t.err = errors.CombineErrors(t.err, err)
		return
	}
	defer func() {
		t.releasedNow.Store(t.released)
		t.heldAfter[env.Version] = t.heldNow
		delete(t.heldAfter, env.Version-soakVersions)
	}()
	if d, ok := e.(domain.ReservationsDecided); ok {
		for _, dec := range d.Decisions {
			t.one(dec.Event())
		}
		return
	}
	t.one(e)
}

func (t *soakTracker) one(e domain.SKUEvent) {
	switch e := e.(type) {
	case domain.StockReserved:
		t.held[e.ReservationID] = soakHold{qty: e.Qty, grant: e.At}
		t.granted += e.Qty
		t.heldNow += e.Qty
	case domain.ReservationReleased:
		if h, ok := t.held[e.ReservationID]; ok {
			t.lags = append(t.lags, e.At.Sub(h.grant.Add(t.ttl)))
			t.released += h.qty
			t.heldNow -= h.qty
			delete(t.held, e.ReservationID)
		}
	case domain.ReservationCommitted:
		t.heldNow -= t.held[e.ReservationID].qty
		delete(t.held, e.ReservationID)
	}
}

// soakCounts is the tracker's view at one moment.
type soakCounts struct {
	held, overdue, late int64 // units held; of them past their due; past due + 5 s
	released, granted   int64
}

func (t *soakTracker) counts(now time.Time) soakCounts {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := soakCounts{released: t.released, granted: t.granted}
	for _, h := range t.held {
		c.held += h.qty
		if due := h.grant.Add(t.ttl); now.After(due) {
			c.overdue += h.qty
			if now.After(due.Add(5 * time.Second)) {
				c.late += h.qty
			}
		}
	}
	return c
}

// soakVersions is how many of the SKU's latest versions heldAt knows.
const soakVersions = 100_000

// heldAt returns the units held after the SKU's event version v; ok is
// false until the tracker has read that far.
func (t *soakTracker) heldAt(v uint64) (held int64, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	held, ok = t.heldAfter[v]
	return held, ok
}

// sortedLags returns every release's lag after its due, sorted.
func (t *soakTracker) sortedLags() []time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	l := slices.Clone(t.lags)
	slices.Sort(l)
	return l
}

// soakSample is one row of the soak's memory and expiry curve.
type soakSample struct {
	At                     time.Duration // since the load started
	RSSMiB, HeapMiB        float64
	Accepted               int64 // orders accepted in the interval
	Expiries               int64 // units released in the interval
	Held, Overdue, Late    int64
	Backlog                uint64  // expiry timers not handled yet
	OverdueS               float64 // how late the oldest of them is
	AcceptedPS, ExpiriesPS float64
}

// rssMiB reads this process's resident set (the engine, its embedded
// nats-server and the bench all run in it).
func rssMiB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// heapMiB is the Go heap marked live by the last garbage collection: what
// the process holds, without the garbage a collection has yet to free.
func heapMiB() float64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return float64(s[0].Value.Uint64()) / (1 << 20)
}

package commands

import (
	"testing"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/eventstore"
)

// TestBacklogAdmit: an order is refused exactly when a partition of one of
// its SKUs is past the limit; no limit (0) and no Backlog refuse nothing.
func TestBacklogAdmit(t *testing.T) {
	hot, cold := "apple", ""
	for _, sku := range []string{"pear", "plum", "kiwi", "fig", "lime"} {
		if eventstore.PartitionOf(sku) != eventstore.PartitionOf(hot) {
			cold = sku
			break
		}
	}
	lines := func(skus ...string) []domain.Line {
		var out []domain.Line
		for _, s := range skus {
			out = append(out, domain.Line{SKU: s, Qty: 1, UnitPriceCents: 1})
		}
		return out
	}
	for _, c := range []struct {
		name    string
		limit   uint64
		backlog uint64 // of the hot SKU's partition
		skus    []string
		refused bool
	}{
		{"under the limit", 10, 9, []string{hot}, false},
		{"at the limit", 10, 10, []string{hot}, false},
		{"past the limit", 10, 11, []string{hot}, true},
		{"one line past the limit", 10, 11, []string{cold, hot}, true},
		{"another partition", 10, 11, []string{cold}, false},
		{"no limit", 0, 1_000_000, []string{hot}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := &Backlog{limit: c.limit}
			b.parts[eventstore.PartitionOf(hot)].Store(c.backlog)
			err := b.Admit(lines(c.skus...))
			if refused := errors.Is(err, domain.ErrBacklogFull); refused != c.refused || (err != nil && !refused) {
				t.Errorf("Admit: %v, want refused %v", err, c.refused)
			}
		})
	}
	var none *Backlog
	if err := none.Admit(lines(hot)); err != nil {
		t.Errorf("no Backlog: %v", err)
	}
}

// TestBacklogPressed: the processors count as falling behind from a
// quarter of the limit on any partition, of the default limit when orders
// are never refused.
func TestBacklogPressed(t *testing.T) {
	for _, c := range []struct {
		name    string
		limit   uint64
		backlog uint64
		pressed bool
	}{
		{"idle", 10_000, 0, false},
		{"a batch in hand", 10_000, 500, false},
		{"just under a quarter", 10_000, 2_499, false},
		{"a quarter", 10_000, 2_500, true},
		{"past the limit", 10_000, 20_000, true},
		{"no limit, under a quarter of the default", 0, DefaultBacklogLimit/4 - 1, false},
		{"no limit, a quarter of the default", 0, DefaultBacklogLimit / 4, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := &Backlog{limit: c.limit}
			b.parts[eventstore.ReservationPartitions-1].Store(c.backlog)
			if got := b.Pressed(); got != c.pressed {
				t.Errorf("Pressed() = %v, want %v", got, c.pressed)
			}
		})
	}
	var none *Backlog
	if none.Pressed() {
		t.Error("no Backlog is pressed")
	}
}

// TestBacklogPeakLastMinute: each partition's highest sample stays on the
// dashboard for a minute after it was seen, then goes.
func TestBacklogPeakLastMinute(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	b := &Backlog{now: func() time.Time { return now }}
	sample := func(p int, n uint64) {
		parts := make([]uint64, eventstore.ReservationPartitions)
		parts[p] = n
		b.notePeaks(parts)
	}
	sample(3, 40)
	now = now.Add(10 * time.Second)
	sample(3, 5)
	sample(7, 2)
	if got := b.ReservationBacklog().PeakLastMinute; got[3] != 40 || got[7] != 2 {
		t.Errorf("peaks %v, want 40 on partition 3 and 2 on 7", got)
	}
	now = now.Add(55 * time.Second) // 65 s after the 40, 55 s after the 5
	if got := b.ReservationBacklog().PeakLastMinute; got[3] != 5 || got[7] != 2 {
		t.Errorf("peaks %v a minute on, want 5 on partition 3 and 2 on 7", got)
	}
}

package commands

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/internal/metrics"
	"github.com/orderengine/engine/queries"
)

// DefaultBacklogLimit is the backlog of one partition past which new
// orders on its SKUs are refused (ENGINE_RESERVATION_BACKLOG_LIMIT).
//
// A healthy processor decides some 45,000 requests/s on one partition
// (BENCHMARKS.md, reserve-drain), far more than the HTTP edge places
// (about 2,000 orders/s in the flash sale), so its backlog stays near
// zero and 10,000 is never reached in normal running, a flash sale
// included. Reaching it means the processor is stalled or far behind; at
// the flash sale's rate it fills in about 5 s, so the orders taken without
// an outcome stay within the 10 s a client may wait for one
// (Prefer: wait), and the store stops growing with requests nobody is
// deciding.
const DefaultBacklogLimit = 10_000

// DefaultBacklogEvery is how often the backlog is sampled: at 2,000
// orders/s a partition grows by at most 500 requests between two samples,
// a small overshoot of the default limit, for two requests per shard to
// JetStream.
const DefaultBacklogEvery = 250 * time.Millisecond

// Backlog keeps the reservation backlog of every partition, sampled from
// the processors' consumers (eventstore.Store.ReservationBacklog), so that
// placing an order can refuse at once, with an atomic read, when a
// partition of its SKUs is past the limit, instead of queueing requests
// without bound. Every engine process samples the consumers' shared state,
// so all of them refuse alike.
type Backlog struct {
	store *eventstore.Store
	limit uint64
	every time.Duration
	log   *slog.Logger
	parts [eventstore.ReservationPartitions]atomic.Uint64

	// peaks holds each partition's highest sample of each of the last
	// PeakWindow seconds, slot by second: a backlog that comes and goes
	// between two dashboard updates still shows. Only Sample and the
	// dashboard take mu, never the place path.
	mu    sync.Mutex
	peaks [peakSeconds]peakSlot
	now   func() time.Time
}

// peakSeconds is the window of Backlog's peaks.
const peakSeconds = 60

type peakSlot struct {
	second int64
	max    [eventstore.ReservationPartitions]uint64
}

// NewBacklog returns a Backlog of store's partitions that refuses new
// orders on a partition with more than limit requests undecided (0: never)
// and samples every every (0: DefaultBacklogEvery) once Run runs.
func NewBacklog(store *eventstore.Store, limit uint64, every time.Duration, log *slog.Logger) *Backlog {
	if every <= 0 {
		every = DefaultBacklogEvery
	}
	return &Backlog{store: store, limit: limit, every: every, log: log, now: time.Now}
}

// Run samples the backlog until ctx ends. A failed sample keeps the last
// figures: JetStream being away shows in readiness, and the orders it
// would refuse fail to be stored anyway.
func (b *Backlog) Run(ctx context.Context) error {
	metrics.ReservationBacklogLimit.Set(float64(b.limit))
	t := time.NewTicker(b.every)
	defer t.Stop()
	failing := false
	for {
		// Logged when it starts and stops failing, not four times a second.
		err := b.Sample(ctx)
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			b.log.Warn("reservation backlog unavailable; the last figures stand", "err", err)
		case err == nil && failing:
			b.log.Info("reservation backlog available again")
		}
		failing = err != nil
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Sample reads the backlog of every partition once and publishes it to
// the place path and the engine_reservation_backlog metric. It fails as
// eventstore.Store.ReservationBacklog does.
func (b *Backlog) Sample(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, max(2*b.every, 2*time.Second))
	defer cancel()
	parts, err := b.store.ReservationBacklog(ctx)
	if err != nil {
		return err
	}
	for p, n := range parts {
		b.parts[p].Store(n)
		metrics.ReservationBacklog.WithLabelValues(strconv.Itoa(p)).Set(float64(n))
	}
	b.notePeaks(parts)
	return nil
}

// notePeaks records a sample in the current second's slot.
func (b *Backlog) notePeaks(parts []uint64) {
	sec := b.now().Unix()
	b.mu.Lock()
	defer b.mu.Unlock()
	slot := &b.peaks[sec%peakSeconds]
	if slot.second != sec {
		*slot = peakSlot{second: sec}
	}
	for p, n := range parts {
		slot.max[p] = max(slot.max[p], n)
	}
}

// Admit returns nil when every partition of lines' SKUs is within the
// limit, or else an error of kind domain.ErrBacklogFull naming the first
// that is not. It reads only the last sample.
func (b *Backlog) Admit(lines []domain.Line) error {
	if b == nil || b.limit == 0 {
		return nil
	}
	for _, l := range lines {
		p := eventstore.PartitionOf(l.SKU)
		if n := b.parts[p].Load(); n > b.limit {
			return errors.WithHint(
				errors.Wrapf(domain.ErrBacklogFull, "partition %d, which holds SKU %q, has %d reservation requests not yet decided, over the limit of %d", p, l.SKU, n, b.limit),
				"nothing was written: send the order again after Retry-After")
		}
	}
	return nil
}

// Pressed reports whether the last sample of some partition reached a
// quarter of the limit (of DefaultBacklogLimit when the limit is off):
// the processors are falling behind, well before orders are refused, and
// work that can wait (the integration feed) should leave them the CPU. A
// processor keeping up holds a few hundred requests at most, its batch in
// hand included.
func (b *Backlog) Pressed() bool {
	if b == nil {
		return false
	}
	limit := b.limit
	if limit == 0 {
		limit = DefaultBacklogLimit
	}
	for p := range b.parts {
		if b.parts[p].Load() >= limit/4 {
			return true
		}
	}
	return false
}

// ReservationBacklog returns the last sample, each partition's highest
// sample of the last minute and the limit, for the dashboard.
func (b *Backlog) ReservationBacklog() queries.ReservationBacklog {
	out := queries.ReservationBacklog{Partitions: make([]uint64, len(b.parts)), PeakLastMinute: make([]uint64, len(b.parts)), Limit: b.limit}
	for p := range b.parts {
		out.Partitions[p] = b.parts[p].Load()
	}
	sec := b.now().Unix()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, slot := range b.peaks {
		if sec-slot.second >= peakSeconds {
			continue
		}
		for p, n := range slot.max {
			out.PeakLastMinute[p] = max(out.PeakLastMinute[p], n)
		}
	}
	return out
}

var _ queries.BacklogReader = (*Backlog)(nil)

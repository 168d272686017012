package commands

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/errors"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/internal/metrics"
	"github.com/orderengine/engine/internal/tracing"
)

// Direct placement: a single-line order placed in the process that runs its
// SKU's reservation processor skips the reservation request. The SKU's
// sequencer takes the placement itself: one atomic batch stores, for every
// order of the SKU placed meanwhile, its OrderPlaced and its outcome
// (OrderConfirmed or OrderRejected), and the SKU's ReservationsDecided
// marked Placed. Two messages per order instead of three, and one batch on
// the buyer's path instead of two (docs/design/write-path.md, section 5).
//
// It keeps every guarantee of the request path:
//   - Oversell: the SKU's update expects its last sequence, as the
//     processor's does, and decides on the state it expects.
//   - Placement order: the batch is fenced on the SKU's last stored request
//     (Rider.FenceRequests), so it is refused if any request of the SKU is
//     stored and not yet decided; the orders then take the request path,
//     behind it.
//   - Idempotency: a keyed order's create still expects its subject empty,
//     so a retry refuses the batch and takes the request path, which
//     answers it from the first event. A keyed order this process holds
//     in its cache goes there at once.
//   - All or nothing: nothing of a refused batch is stored, so its orders
//     are placed again the usual way. A batch whose fate is unknown (the
//     answer lost) is not: its callers get the error, as any append's do.
//
// A SKU with requests flowing (releases in a long sale, multi-line orders,
// another engine's orders) places through requests: its processor marks
// it whenever it decides requests of it, and a refused batch marks it too,
// for directCooling; the orders already queued behind a refused batch take
// the request path at once rather than make refused batches of their own.
// Measured in a long sale (800 orders/s, every grant expiring 30 s later):
// trying direct batches against the releases refused every one, each
// refusal costing 0.3–1.3 s to the orders queued behind it, and the expiry
// lag p99 went from 353 ms to 3.9 s.

// directCooling is how long a SKU places its orders through requests after
// its processor decided requests of it, or after its direct batch was
// refused.
const directCooling = 2 * time.Second

// maxPlacedPerBatch bounds a direct batch: two messages per order, under
// the committer's batch bound with room for the SKU's event and others'.
const maxPlacedPerBatch = 256

// errPlacementRefused says a direct batch stored nothing and its orders
// must take the request path.
var errPlacementRefused = errors.New("direct placement refused")

// placements queues, per SKU, the orders waiting for their SKU's next
// direct batch; at most one batch per SKU is being decided at a time, and
// the orders that arrive meanwhile make the next one.
type placements struct {
	mu      sync.Mutex
	queued  map[string][]*placement
	running map[string]bool
	cooling map[string]time.Time
	// processors counts the reservation processors this process runs, by
	// shard and partition: a SKU's orders are placed directly only where
	// its processor runs.
	processors [maxShards * eventstore.ReservationPartitions]atomic.Int32
	runners    runners
}

// runners runs SKUs' batches on goroutines that outlive one run. A SKU's
// run is short (often one batch of one order) and its calls are deep (seal,
// encode, hash), so a goroutine per run spent ~2% of a loaded engine's CPU
// growing its stack from the minimum each time; a runner grows it once.
type runners struct {
	// idle hands work to a runner waiting for it; unbuffered, so a send
	// succeeds only if one is waiting.
	idle chan runWork
	once sync.Once
}

type runWork struct {
	sku string
	run func(sku string)
}

// runnerIdle is how long a runner waits for more work before it ends: a
// quiet engine keeps no runners, a busy one about as many as it has SKUs
// in flight.
const runnerIdle = 5 * time.Second

// start calls run(sku) on an idle runner, or on a new one if none waits.
// It never blocks, so it may be called with the placements' lock held.
func (r *runners) start(sku string, run func(string)) {
	r.once.Do(func() { r.idle = make(chan runWork) })
	w := runWork{sku: sku, run: run}
	select {
	case r.idle <- w:
	default:
		go r.loop(w)
	}
}

func (r *runners) loop(w runWork) {
	t := time.NewTimer(runnerIdle)
	defer t.Stop()
	for {
		w.run(w.sku)
		t.Reset(runnerIdle)
		select {
		case w = <-r.idle:
		case <-t.C:
			return
		}
	}
}

// maxShards is the most event store shards (ENGINE_EVENT_SHARDS).
const maxShards = 64

type placement struct {
	place domain.PlaceOrder
	m     Meta
	done  chan placed
	// span is the order's "append order" span, nil while tracing is off.
	span trace.Span
}

type placed struct {
	res OrderResult
	err error
}

// processorRunning marks the processor of partition p of shard k as running
// in this process until the returned function is called.
func (ps *placements) processorRunning(k, p int) func() {
	if k >= maxShards {
		return func() {}
	}
	n := &ps.processors[k*eventstore.ReservationPartitions+p]
	n.Add(1)
	return func() { n.Add(-1) }
}

// placeDirect places the order directly when it can (ok), and otherwise
// leaves it to the request path (ok false, nothing stored).
func (a *App) placeDirect(ctx context.Context, m Meta, place domain.PlaceOrder) (res OrderResult, ok bool, err error) {
	if !a.DirectPlacement || len(place.Lines) != 1 {
		return OrderResult{}, false, nil
	}
	sku := place.Lines[0].SKU
	shard := a.SKUs.ShardOf(sku)
	if a.Orders.ShardOf(place.OrderID) != shard || shard >= maxShards {
		return OrderResult{}, false, nil
	}
	if a.placements.processors[shard*eventstore.ReservationPartitions+eventstore.PartitionOf(sku)].Load() == 0 {
		return OrderResult{}, false, nil
	}
	if _, known := a.Orders.Cached(place.OrderID); known {
		return OrderResult{}, false, nil // a keyed retry: the request path replays it
	}
	p := &placement{place: place, m: m, done: make(chan placed, 1)}
	if tracing.Enabled() {
		_, p.span = tracing.Start(ctx, "append order", trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithAttributes(tracing.AggregateKey.String("order"), tracing.AggregateIDKey.String(place.OrderID), tracing.EventsKey.Int(2)))
	}
	if !a.placements.enqueue(sku, p, a.Now(), func() { a.placements.runners.start(sku, a.runPlacements) }) {
		endSpans(nil, p.span)
		return OrderResult{}, false, nil
	}
	// Once queued, the answer is awaited whatever ctx does: the batch may
	// be on its way, and the caller must learn whether it was stored.
	r := <-p.done
	if errors.Is(r.err, errPlacementRefused) {
		endSpans(nil, p.span)
		return OrderResult{}, false, nil
	}
	endSpans(r.err, p.span)
	return r.res, true, r.err
}

// enqueue queues p for sku's next batch unless sku is cooling off; start is
// called when no batch of sku is running.
func (ps *placements) enqueue(sku string, p *placement, now time.Time, start func()) bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if until, ok := ps.cooling[sku]; ok {
		if now.Before(until) {
			return false
		}
		delete(ps.cooling, sku)
	}
	ps.init()
	ps.queued[sku] = append(ps.queued[sku], p)
	if !ps.running[sku] {
		ps.running[sku] = true
		start()
	}
	return true
}

// next takes the next batch of sku, or ends its run when none is queued.
func (ps *placements) next(sku string) []*placement {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	q := ps.queued[sku]
	if len(q) == 0 {
		delete(ps.queued, sku)
		delete(ps.running, sku)
		return nil
	}
	n := min(len(q), maxPlacedPerBatch)
	batch := q[:n:n]
	ps.queued[sku] = q[n:]
	return batch
}

// init makes the maps on first use. mu is held.
func (ps *placements) init() {
	if ps.queued == nil {
		ps.queued, ps.running, ps.cooling = map[string][]*placement{}, map[string]bool{}, map[string]time.Time{}
	}
}

// stepAside turns direct placement off for sku until until; the orders
// queued for it meanwhile take the request path.
func (ps *placements) stepAside(sku string, until time.Time) {
	ps.mu.Lock()
	ps.init()
	if until.After(ps.cooling[sku]) {
		ps.cooling[sku] = until
	}
	q := ps.queued[sku]
	delete(ps.queued, sku)
	ps.mu.Unlock()
	for _, p := range q {
		p.done <- placed{err: errPlacementRefused}
	}
}

// requestsDecided tells direct placement that sku's processor decided
// requests of it at now: requests are flowing, so its orders take the
// request path for a while (each direct batch would be refused).
func (a *App) requestsDecided(sku string, now time.Time) {
	a.placements.stepAside(sku, now.Add(directCooling))
}

// runPlacements decides sku's queued orders, a batch at a time, until none
// is left.
func (a *App) runPlacements(sku string) {
	for batch := a.placements.next(sku); batch != nil; batch = a.placements.next(sku) {
		ctx, cancel := context.WithTimeout(context.Background(), directTimeout)
		results, err := a.decidePlacements(ctx, sku, batch)
		cancel()
		if errors.Is(err, errPlacementRefused) {
			a.placements.stepAside(sku, a.Now().Add(directCooling))
			metrics.DirectPlacementsRefused.Inc()
		}
		for i, p := range batch {
			if err != nil {
				p.done <- placed{err: err}
				continue
			}
			p.done <- placed{res: results[i]}
		}
	}
}

// directTimeout bounds a direct batch's reads and commit, like a request's.
const directTimeout = 10 * time.Second

// decidePlacements stores batch's orders and their outcomes with sku's
// decision in one atomic batch, or nothing (errPlacementRefused, or the
// store's error).
func (a *App) decidePlacements(ctx context.Context, sku string, batch []*placement) ([]OrderResult, error) {
	now := a.Now()
	shard := a.SKUs.ShardOf(sku)
	placedEvents := make([][]domain.OrderEvent, len(batch))
	cmds := make([]domain.Reserve, len(batch))
	for i, p := range batch {
		evs, err := domain.DecideOrder(domain.Order{}, p.place)
		if err != nil {
			return nil, errPlacementRefused // the request path answers it with its own error
		}
		reqs := domain.ReservationRequestsFor(domain.Order{}, evs)
		if len(reqs) != 1 {
			return nil, errPlacementRefused
		}
		reserve, ok := reqs[0].Command(now).(domain.Reserve)
		if !ok {
			return nil, errPlacementRefused
		}
		placedEvents[i], cmds[i] = evs, reserve
	}
	var riders []*eventstore.Rider
	var decided []domain.SKUEvent
	ctx, traced := tracePlacements(ctx, sku, batch)
	// Not Settle: a placement admits new orders, so under overload the
	// grants, outcomes and releases of orders already taken go first.
	_, err := a.SKUs.UpdateFoldedWith(ctx, sku, eventstore.UpdateOptions[domain.SKU]{CommandID: a.NewID(), MaxAttempts: 2},
		func(s eventstore.Snapshot[domain.SKU], attempt int) ([]domain.SKUEvent, domain.SKU, []*eventstore.Rider, error) {
			if attempt > 1 {
				// Refused: a request stored meanwhile, a keyed order
				// stored already, or another engine moved the SKU on.
				return nil, s.State, nil, errPlacementRefused
			}
			after, events, errs := domain.DecidePlacements(s.State, cmds, shard, now)
			if len(events) != 1 || len(events[0].(domain.ReservationsDecided).Decisions) != len(batch) {
				return nil, s.State, nil, errPlacementRefused
			}
			for _, err := range errs {
				if err != nil {
					return nil, s.State, nil, errPlacementRefused
				}
			}
			var err error
			if riders, err = a.placementRiders(sku, batch, placedEvents, events[0].(domain.ReservationsDecided), now, &traced); err != nil {
				return nil, s.State, nil, err
			}
			if err := riders[0].FenceRequests(sku, s.State.RequestSeqOf(shard)); err != nil {
				return nil, s.State, nil, err
			}
			decided = events
			return events, after, riders, nil
		})
	traced.end(err)
	if err != nil {
		return nil, err
	}
	countDecisions(decided)
	metrics.OutcomesTold.WithLabelValues("placement").Add(float64(len(batch)))
	results := make([]OrderResult, len(batch))
	for i := range batch {
		// The answer is the order as placed (202 pending, version 1), as
		// on the request path; its outcome is in the cache for a waiting
		// buyer (Prefer: wait) and in the store for everyone.
		results[i] = OrderResult{State: foldOrder(placedEvents[i]), Version: 1,
			Events:   placedEvents[i],
			Position: eventstore.Position{Shard: shard, Seq: riders[i].FirstSeq()}}
	}
	return results, nil
}

// foldOrder is a new order after events.
func foldOrder(events []domain.OrderEvent) domain.Order {
	var o domain.Order
	for _, e := range events {
		o = domain.EvolveOrder(o, e)
	}
	return o
}

// placementRiders seals each order's placement and outcome, decided by the
// order's own decider on the SKU's decision, as a rider of the SKU's batch.
func (a *App) placementRiders(sku string, batch []*placement, placedEvents [][]domain.OrderEvent, decision domain.ReservationsDecided, now time.Time, traced *placementTrace) ([]*eventstore.Rider, error) {
	riders := make([]*eventstore.Rider, len(batch))
	for i, p := range batch {
		outs := appendOutcome(nil, sku, decision.Decisions[i].Event(), now)
		if len(outs) != 1 || outs[0].orderID != p.place.OrderID {
			return nil, errPlacementRefused
		}
		pending := foldOrder(placedEvents[i])
		outcome, err := domain.DecideOrder(pending, outs[0].command(now))
		if err != nil || len(outcome) == 0 {
			return nil, errPlacementRefused
		}
		events := append(append([]domain.OrderEvent(nil), placedEvents[i]...), outcome...)
		rd, err := a.Orders.Prepare(p.place.OrderID, eventstore.Snapshot[domain.Order]{}, events, eventstore.UpdateOptions[domain.Order]{
			CommandID: p.m.CommandID, CausationID: p.m.RequestID, CorrelationID: p.m.CorrelationID,
			New: true, KeyedCreate: p.m.IdemKey != "", Fingerprint: p.m.Fingerprint, OutboxDecided: true,
		})
		if err != nil {
			return nil, err
		}
		traced.rider(p, outs[0], rd)
		riders[i] = rd
	}
	return riders, nil
}

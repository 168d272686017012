package commands

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/cockroachdb/errors"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/internal/metrics"
	"github.com/orderengine/engine/internal/tracing"
)

// outcome is the decision on one reserve request, to be told to its order.
// decidedAt is when the SKU decided it: a grant's TTL runs from there.
type outcome struct {
	reservationID, orderID, sku string
	granted                     bool
	available                   int64
	decidedAt                   time.Time
}

// ProcessReservations decides a batch of one partition's reservation
// requests, which must hold every request of the partition not yet decided
// up to its last (eventstore.ConsumeReservations sees to it). Each SKU's
// requests are decided in stream order, in memory against its state, and
// their events appended together (one event per SKU, and the group commit
// merges the SKUs): this is what makes a hot SKU fast. The orders learn the
// outcomes from the SKU's events through the order saga (RecordOutcomes), so
// a hot partition never waits for order writes. Everything is idempotent: a
// request at or before the SKU's request sequence of the batch's shard is
// skipped. A batch comes from one shard's partition.
func (a *App) ProcessReservations(ctx context.Context, reqs []eventstore.ReservationMsg) error {
	// Per SKU and shard: sequences of different shards do not compare.
	type key struct {
		sku   string
		shard int
	}
	bySKU := map[key][]eventstore.ReservationMsg{}
	var skus []key
	for _, m := range reqs {
		k := key{m.Request.SKU, m.Shard}
		if _, seen := bySKU[k]; !seen {
			skus = append(skus, k)
		}
		bySKU[k] = append(bySKU[k], m)
	}
	return forEach(skus, 16, func(k key) error {
		reqs := bySKU[k]
		slices.SortFunc(reqs, func(x, y eventstore.ReservationMsg) int { return cmp.Compare(x.Seq, y.Seq) })
		return a.decideSKU(ctx, k.sku, reqs)
	})
}

// RecordOutcomes is the order saga: it tells each order what its line got,
// from the SKU's reserve decisions (StockReserved, ReservationRefused, or
// those inside a ReservationsDecided). The order then
// confirms itself (every line reserved) or rejects itself, asking for the
// release of its other lines. A repeated outcome is a no-op.
func (a *App) RecordOutcomes(ctx context.Context, envs []eventstore.Envelope) error {
	var outs []outcome
	for _, env := range envs {
		ev, err := eventstore.DecodeSKUEvent(env.Type, env.SchemaVersion, env.Data)
		if err != nil {
			return err
		}
		if batch, ok := ev.(domain.ReservationsDecided); ok {
			for _, d := range batch.Decisions {
				if !d.Told { // else recorded in the decision's own batch
					outs = appendOutcome(outs, env.AggregateID, d.Event(), env.OccurredAt)
				}
			}
			continue
		}
		outs = appendOutcome(outs, env.AggregateID, ev, env.OccurredAt)
	}
	// All at once: the group commit then stores them in a few atomic batches.
	return forEach(outs, max(len(outs), 1), func(o outcome) error { return a.recordOutcome(ctx, o) })
}

// decideSKU decides sku's requests past its request sequence of their
// shard, in order, and appends their events at once, with the outcomes
// their orders can be told in the same batch (tellWithDecision).
func (a *App) decideSKU(ctx context.Context, sku string, reqs []eventstore.ReservationMsg) error {
	now := a.Now()
	a.requestsDecided(sku, now)
	through, shard := reqs[len(reqs)-1].Seq, reqs[0].Shard
	var next []eventstore.ReservationMsg
	var refused []error
	var decided []domain.SKUEvent
	told := 0
	ctx, traced := traceDecisions(ctx, sku, reqs)
	_, err := a.SKUs.UpdateFoldedWith(ctx, sku, eventstore.UpdateOptions[domain.SKU]{CommandID: a.NewID(), MaxAttempts: 20, Settle: true, Header: traced.header},
		func(s eventstore.Snapshot[domain.SKU], attempt int) ([]domain.SKUEvent, domain.SKU, []*eventstore.Rider, error) {
			i, _ := slices.BinarySearchFunc(reqs, s.State.RequestSeqOf(shard)+1, func(m eventstore.ReservationMsg, seq uint64) int { return cmp.Compare(m.Seq, seq) })
			next = reqs[i:]
			cmds := make([]domain.SKUCommand, len(next))
			for i, r := range next {
				cmds[i] = r.Request.Command(now)
			}
			after, events, errs := domain.DecideReservations(s.State, cmds, shard, through, now)
			refused, decided = errs, events
			var riders []*eventstore.Rider
			// A refused batch may have been refused for a rider whose
			// order moved on: the retry leaves every order to the saga.
			if attempt == 1 {
				riders = a.tellWithDecision(sku, events, now, traced)
			}
			told = len(riders)
			return events, after, riders, nil
		})
	traced.end(err)
	if err != nil {
		return errors.Wrapf(err, "decide reservations of %s", sku)
	}
	countDecisions(decided)
	metrics.OutcomesTold.WithLabelValues("decision").Add(float64(told))
	for i, err := range refused {
		if err != nil {
			// A request the SKU cannot honour (a malformed one, from a
			// newer engine) must not block the partition: log it for
			// operators.
			r := next[i].Request
			a.Log.Error("reservation request refused", "sku", sku, "reservation_id", r.ReservationID, "action", r.Action, "err", err)
		}
	}
	return nil
}

// maxRiderMsgs bounds what the outcomes told with a decision add to its
// batch, well under the server's atomic batch limit of 1000 messages.
const maxRiderMsgs = 512

// maxToldDecisions is the most decisions a batch may hold for its orders to
// be told in it. Telling saves a waiting buyer a batch while the partition
// keeps up (a flash sale at 256 buyers decides ~100 requests a batch); a
// bigger batch means a backlog, which the processor drains fastest with
// nothing but decisions in its batches while the saga tells the orders
// beside it: with every batch telling, engine bench's reserve-drain fell
// from 44,000–72,000 to 16,624 decisions/s.
const maxToldDecisions = 256

// tellWithDecision prepares, for the grants and refusals among a SKU's
// decisions, the order appends that record them (what the saga would
// append a batch later), to be stored in the decision's own atomic batch,
// and marks those decisions Told so the saga skips them. An order a flash
// sale buyer waits on is then final after two batches (its placement, the
// SKU's decision) instead of three.
//
// Only orders this process holds in its cache and that live on the SKU's
// shard (a batch is one stream) are told here; the saga tells the others.
// A cached order may be stale: its append then fails the batch on its
// expected sequence, and the retry tells no order.
func (a *App) tellWithDecision(sku string, events []domain.SKUEvent, now time.Time, traced decisionTrace) []*eventstore.Rider {
	var riders []*eventstore.Rider
	msgs, orders, shard := 0, map[string]bool{}, a.SKUs.ShardOf(sku)
	for _, ev := range events {
		batch, ok := ev.(domain.ReservationsDecided)
		if !ok || len(batch.Decisions) > maxToldDecisions {
			continue
		}
		for i, d := range batch.Decisions {
			outs := appendOutcome(nil, sku, d.Event(), now)
			if len(outs) == 0 {
				continue
			}
			o := outs[0]
			// One rider per order: a second would expect the same sequence.
			if orders[o.orderID] || a.Orders.ShardOf(o.orderID) != shard {
				continue
			}
			snap, ok := a.Orders.Cached(o.orderID)
			if !ok {
				continue
			}
			evs, err := domain.DecideOrder(snap.State, o.command(now))
			if err != nil || len(evs) == 0 {
				continue // the saga decides it on the stored state
			}
			rd, err := a.Orders.Prepare(o.orderID, snap, evs, traced.options(o))
			if err != nil {
				a.Log.Error("prepare a reservation outcome", "order_id", o.orderID, "sku", sku, "err", err)
				continue
			}
			if msgs+rd.Messages() > maxRiderMsgs {
				return riders
			}
			msgs += rd.Messages()
			orders[o.orderID] = true
			riders = append(riders, rd)
			batch.Decisions[i].Told = true
		}
	}
	return riders
}

// countDecisions counts the reservation decisions stored in events.
func countDecisions(events []domain.SKUEvent) {
	for _, ev := range events {
		batch, ok := ev.(domain.ReservationsDecided)
		if !ok {
			continue
		}
		for _, d := range batch.Decisions {
			switch d.Event().(type) {
			case domain.StockReserved:
				metrics.ReservationDecisions.WithLabelValues("reserved").Inc()
			case domain.ReservationRefused:
				metrics.ReservationDecisions.WithLabelValues("refused").Inc()
			case domain.ReservationReleased:
				metrics.ReservationDecisions.WithLabelValues("released").Inc()
			case domain.ReservationCommitted:
				metrics.ReservationDecisions.WithLabelValues("committed").Inc()
			}
		}
	}
}

// appendOutcome adds the outcome a reserve decision on sku stands for;
// stored is the time of the event that holds it, for a decision without a
// time of its own.
func appendOutcome(outs []outcome, sku string, ev domain.SKUEvent, stored time.Time) []outcome {
	switch e := ev.(type) {
	case domain.StockReserved:
		return append(outs, outcome{reservationID: e.ReservationID, orderID: e.OrderID, sku: sku, granted: true,
			decidedAt: orTime(e.At, stored)})
	case domain.ReservationRefused:
		return append(outs, outcome{reservationID: e.ReservationID, orderID: e.OrderID, sku: sku, available: e.Available,
			decidedAt: orTime(e.At, stored)})
	}
	return outs
}

// orTime returns t, or else when t is zero.
func orTime(t, or time.Time) time.Time {
	if t.IsZero() {
		return or
	}
	return t
}

// command is the order command that records o, at time at.
func (o outcome) command(at time.Time) domain.RecordReservation {
	cmd := domain.RecordReservation{SKU: o.sku, Granted: o.granted, Available: o.available, At: at}
	if o.granted {
		cmd.GrantedAt = o.decidedAt
	}
	return cmd
}

// options are the append options of o's record: its command id makes it
// idempotent whether the processor or the saga stores it.
func (o outcome) options() eventstore.UpdateOptions[domain.Order] {
	return eventstore.UpdateOptions[domain.Order]{CommandID: "outcome-" + o.reservationID, MaxAttempts: 20, Settle: true}
}

// recordOutcome tells the order what its line got.
func (a *App) recordOutcome(ctx context.Context, o outcome) (err error) {
	if tracing.Enabled() {
		var span trace.Span
		ctx, span = traceOutcome(ctx, o)
		defer func() { tracing.Fail(span, err); span.End() }()
	}
	cmd := o.command(a.Now())
	res, err := a.Orders.Update(ctx, o.orderID, o.options(),
		func(s eventstore.Snapshot[domain.Order]) ([]domain.OrderEvent, error) {
			return domain.DecideOrder(s.State, cmd)
		})
	if errors.Is(err, domain.ErrNotFound) {
		a.Log.Error("reservation outcome for an unknown order", "order_id", o.orderID, "sku", o.sku)
		return nil
	}
	if err == nil && res.Replay == nil && res.After.LastSeq != res.Before.LastSeq {
		metrics.OutcomesTold.WithLabelValues("saga").Inc()
	}
	return err
}

// forEach runs fn for every item with at most n at a time and returns the
// first error once all have finished.
func forEach[T any](items []T, n int, fn func(T) error) error {
	var g errgroup.Group
	g.SetLimit(n)
	for _, it := range items {
		g.Go(func() error { return fn(it) })
	}
	return g.Wait()
}

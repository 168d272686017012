package commands

import (
	"context"
	"sync"

	"github.com/cockroachdb/errors"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/eventstore"
)

// outcome is the decision on one reserve request, to be told to its order.
type outcome struct {
	reservationID, orderID, sku string
	granted                     bool
	available                   int64
}

// ProcessReservations decides one partition's batch of reservation
// requests, in stream order per SKU. Each SKU's requests are decided in
// memory against its state and their events appended together (one atomic
// batch per SKU, and the group commit merges the SKUs): this is what makes a
// hot SKU fast. The orders learn the outcomes from the SKU's events through
// the order saga (RecordOutcomes), so a hot partition never waits for order
// writes. Everything is idempotent: a batch redelivered after a crash is a
// no-op for every request already decided.
func (a *App) ProcessReservations(ctx context.Context, reqs []domain.ReservationRequest) error {
	bySKU := map[string][]domain.ReservationRequest{}
	var skus []string
	for _, r := range reqs {
		if _, seen := bySKU[r.SKU]; !seen {
			skus = append(skus, r.SKU)
		}
		bySKU[r.SKU] = append(bySKU[r.SKU], r)
	}
	return forEach(skus, 16, func(sku string) error { return a.decideSKU(ctx, sku, bySKU[sku]) })
}

// RecordOutcomes is the order saga: it tells each order what its line got,
// from the SKU's reserve decisions (StockReserved, ReservationRefused, or
// those inside a ReservationsDecided). The order then
// confirms itself (every line reserved) or rejects itself, asking for the
// release of its other lines. A repeated outcome is a no-op.
func (a *App) RecordOutcomes(ctx context.Context, envs []eventstore.Envelope) error {
	var outs []outcome
	for _, env := range envs {
		ev, err := domain.DecodeSKUEvent(env.Type, env.SchemaVersion, env.Data)
		if err != nil {
			return err
		}
		if batch, ok := ev.(domain.ReservationsDecided); ok {
			for _, d := range batch.Decisions {
				outs = appendOutcome(outs, env.AggregateID, d.Event())
			}
			continue
		}
		outs = appendOutcome(outs, env.AggregateID, ev)
	}
	// All at once: the group commit then stores them in a few atomic batches.
	return forEach(outs, max(len(outs), 1), func(o outcome) error { return a.recordOutcome(ctx, o) })
}

// decideSKU decides reqs, all for sku, and appends their events at once.
func (a *App) decideSKU(ctx context.Context, sku string, reqs []domain.ReservationRequest) error {
	now := a.Now()
	cmds := make([]domain.SKUCommand, len(reqs))
	for i, r := range reqs {
		cmds[i] = r.Command(now)
	}
	var refused []error
	_, err := a.SKUs.UpdateFolded(ctx, sku, eventstore.UpdateOptions[domain.SKU]{CommandID: a.NewID(), MaxAttempts: 20},
		func(s eventstore.Snapshot[domain.SKU]) ([]domain.SKUEvent, domain.SKU, error) {
			after, events, errs := domain.DecideReservations(s.State, cmds, now)
			refused = errs
			return events, after, nil
		})
	if err != nil {
		return errors.Wrapf(err, "decide reservations of %s", sku)
	}
	for i, err := range refused {
		if err != nil {
			// A request the SKU cannot honour (commit of a reservation that is
			// not held) must not block the partition: log it for operators.
			a.Log.Error("reservation request refused", "sku", sku, "reservation_id", reqs[i].ReservationID, "action", reqs[i].Action, "err", err)
		}
	}
	return nil
}

// appendOutcome adds the outcome a reserve decision on sku stands for.
func appendOutcome(outs []outcome, sku string, ev domain.SKUEvent) []outcome {
	switch e := ev.(type) {
	case domain.StockReserved:
		return append(outs, outcome{reservationID: e.ReservationID, orderID: e.OrderID, sku: sku, granted: true})
	case domain.ReservationRefused:
		return append(outs, outcome{reservationID: e.ReservationID, orderID: e.OrderID, sku: sku, available: e.Available})
	}
	return outs
}

// recordOutcome tells the order what its line got.
func (a *App) recordOutcome(ctx context.Context, o outcome) error {
	cmd := domain.RecordReservation{SKU: o.sku, Granted: o.granted, Available: o.available, At: a.Now()}
	_, err := a.Orders.Update(ctx, o.orderID, eventstore.UpdateOptions[domain.Order]{CommandID: "outcome-" + o.reservationID, MaxAttempts: 20},
		func(s eventstore.Snapshot[domain.Order]) ([]domain.OrderEvent, error) {
			return domain.DecideOrder(s.State, cmd)
		})
	if errors.Is(err, domain.ErrNotFound) {
		a.Log.Error("reservation outcome for an unknown order", "order_id", o.orderID, "sku", o.sku)
		return nil
	}
	return err
}

// forEach runs fn for every item with at most n at a time and returns the
// first error.
func forEach[T any](items []T, n int, fn func(T) error) error {
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	sem := make(chan struct{}, n)
	for _, it := range items {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := fn(it); err != nil {
				once.Do(func() { first = err })
			}
		})
	}
	wg.Wait()
	return first
}

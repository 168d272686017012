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
// hot SKU fast. Then each reserve outcome is recorded on its order, which
// confirms or rejects it. Everything is idempotent, so a batch redelivered
// after a crash, at any point, changes nothing twice: a request already
// decided is a no-op on the SKU and its outcome a no-op on the order.
func (a *App) ProcessReservations(ctx context.Context, reqs []domain.ReservationRequest) error {
	bySKU := map[string][]domain.ReservationRequest{}
	var skus []string
	for _, r := range reqs {
		if _, seen := bySKU[r.SKU]; !seen {
			skus = append(skus, r.SKU)
		}
		bySKU[r.SKU] = append(bySKU[r.SKU], r)
	}
	var mu sync.Mutex
	var outcomes []outcome
	err := forEach(skus, 16, func(sku string) error {
		outs, err := a.decideSKU(ctx, sku, bySKU[sku])
		mu.Lock()
		outcomes = append(outcomes, outs...)
		mu.Unlock()
		return err
	})
	if err != nil {
		return err
	}
	// All at once: the group commit then stores a batch's outcomes in a few
	// atomic batches instead of one per handful of orders.
	return forEach(outcomes, max(len(outcomes), 1), func(o outcome) error { return a.recordOutcome(ctx, o) })
}

// decideSKU decides reqs, all for sku, and returns the outcome of each
// reserve request as the SKU now records it.
func (a *App) decideSKU(ctx context.Context, sku string, reqs []domain.ReservationRequest) ([]outcome, error) {
	now := a.Now()
	cmds := make([]domain.SKUCommand, len(reqs))
	for i, r := range reqs {
		cmds[i] = r.Command(now)
	}
	var refused []error
	res, err := a.SKUs.Update(ctx, sku, eventstore.UpdateOptions[domain.SKU]{CommandID: a.NewID(), MaxAttempts: 20},
		func(s eventstore.Snapshot[domain.SKU]) ([]domain.SKUEvent, error) {
			_, events, errs := domain.DecideSKUBatch(s.State, cmds)
			refused = errs
			return events, nil
		})
	if err != nil {
		return nil, errors.Wrapf(err, "decide reservations of %s", sku)
	}
	for i, err := range refused {
		if err != nil {
			// A request the SKU cannot honour (commit of a reservation that is
			// not held) must not block the partition: log it for operators.
			a.Log.Error("reservation request refused", "sku", sku, "reservation_id", reqs[i].ReservationID, "action", reqs[i].Action, "err", err)
		}
	}
	state := res.After.State
	var outs []outcome
	for _, r := range reqs {
		if r.Action != domain.ActionReserve {
			continue
		}
		rv, ok := state.Reservations[r.ReservationID]
		if !ok {
			continue
		}
		outs = append(outs, outcome{reservationID: r.ReservationID, orderID: r.OrderID, sku: r.SKU,
			granted: rv.State != domain.ReservationStateRefused, available: state.Available()})
	}
	return outs, nil
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

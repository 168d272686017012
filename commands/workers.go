package commands

import (
	"context"

	"golang.org/x/sync/errgroup"

	"github.com/orderengine/engine/eventstore"
)

// RunWorkers runs the reservation processors of every partition, the order
// saga, the expiry worker and, when set, the Backlog's sampling until ctx
// ends, then returns once each has finished the batch in hand. Consumers
// that cannot be set up yet (JetStream unreachable) are retried until they
// can.
func (a *App) RunWorkers(ctx context.Context) error {
	workers := []func(context.Context) error{a.RunProcessors, a.RunSaga, a.RunExpiries}
	if a.Backlog != nil {
		workers = append(workers, a.Backlog.Run)
	}
	return runAll(ctx, workers...)
}

// RunProcessors runs the reservation processor of every partition of every
// shard.
func (a *App) RunProcessors(ctx context.Context) error {
	var runs []func(context.Context) error
	for k := range a.Store.Shards() {
		for p := range eventstore.ReservationPartitions {
			runs = append(runs, func(ctx context.Context) error {
				// While it runs, its SKUs' single-line orders placed here
				// are placed directly (place_direct.go).
				defer a.placements.processorRunning(k, p)()
				return a.Store.ConsumeReservations(ctx, k, p, a.Log, a.ProcessReservations)
			})
		}
	}
	return runAll(ctx, runs...)
}

// RunSaga runs the order saga, which records reservation outcomes on orders.
func (a *App) RunSaga(ctx context.Context) error {
	return a.Store.ConsumeOutcomes(ctx, a.Log, a.RecordOutcomes)
}

// RunExpiries runs the worker that expires unpaid confirmed orders.
func (a *App) RunExpiries(ctx context.Context) error {
	return a.Store.ConsumeExpiries(ctx, a.Log, a.ExpireDue)
}

// runAll runs every fn until ctx ends and returns the first error once all
// have returned. A failing fn does not cancel the others: each worker retries
// its own consumer, so one giving up must not stop the rest mid-batch.
func runAll(ctx context.Context, fns ...func(context.Context) error) error {
	var g errgroup.Group
	for _, fn := range fns {
		g.Go(func() error { return fn(ctx) })
	}
	return g.Wait()
}

package commands

import (
	"context"
	"sync"

	"github.com/orderengine/engine/eventstore"
)

// RunWorkers runs the reservation processors of every partition, the order
// saga and the expiry worker until ctx ends, then returns once each has
// finished the batch in hand. Consumers that cannot be set up yet (JetStream
// unreachable) are retried until they can.
func (a *App) RunWorkers(ctx context.Context) error {
	return runAll(ctx, a.RunProcessors, a.RunSaga, a.RunExpiries)
}

// RunProcessors runs the reservation processor of every partition of every
// shard.
func (a *App) RunProcessors(ctx context.Context) error {
	var runs []func(context.Context) error
	for k := range a.Store.Shards() {
		for p := range eventstore.ReservationPartitions {
			runs = append(runs, func(ctx context.Context) error {
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

// runAll runs every fn until ctx ends and returns the first error.
func runAll(ctx context.Context, fns ...func(context.Context) error) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(fns))
	for _, fn := range fns {
		wg.Go(func() {
			if err := fn(ctx); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

package commands

import (
	"context"
	"sync"

	"github.com/orderengine/engine/eventstore"
)

// RunWorkers runs the reservation processors of every partition, the order
// saga and the expiry worker until ctx ends, then returns once each has finished the
// batch in hand. It returns an error when a consumer cannot be set up.
func (a *App) RunWorkers(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make(chan error, eventstore.ReservationPartitions+2)
	for p := range eventstore.ReservationPartitions {
		wg.Go(func() {
			if err := a.Store.ConsumeReservations(ctx, p, a.Log, a.ProcessReservations); err != nil {
				errs <- err
			}
		})
	}
	wg.Go(func() {
		if err := a.Store.ConsumeOutcomes(ctx, a.Log, a.RecordOutcomes); err != nil {
			errs <- err
		}
	})
	wg.Go(func() {
		if err := a.Store.ConsumeExpiries(ctx, a.Log, a.ExpireDue); err != nil {
			errs <- err
		}
	})
	wg.Wait()
	close(errs)
	return <-errs
}

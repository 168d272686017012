package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/orderengine/engine/commands"
	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/eventstore"
)

const drainSKU = "HOT-1"

// drainPlacers place the backlog; it is not measured.
const drainPlacers = 64

// benchReserveDrain: a backlog of drain-backlog single-unit orders on ONE
// SKU holding half as many units is placed with the reservation processors
// stopped (not timed). Then the processors are started and timed until
// every request is decided and its SKU event appended durably:
// decisions/s. Then the order saga is started and timed until every
// outcome is recorded on its order (outcomes recorded/s). It fails unless
// exactly half were reserved. The baseline, same Postgres: the same number
// of reservations as the hot-row UPDATE from 64 connections.
//
// The engine runs here without its HTTP API: the backlog must build up
// while the processors are stopped, which a running engine never lets
// happen.
func (b *bencher) benchReserveDrain(ctx context.Context) error {
	n := b.opts.drainBacklog
	stock := n / 2
	cfg, _, app, closeAll, err := b.headless(ctx, "reserve-drain")
	if err != nil {
		return err
	}
	defer closeAll()
	store := app.Store
	if _, err := app.SetOnHand(ctx, commands.Meta{CommandID: app.NewID()}, drainSKU, commands.SetOnHand{OnHand: int64(stock)}); err != nil {
		return err
	}
	var placed atomic.Int64
	stop := progress(b.stderr, "reserve-drain: placing backlog", "orders", &placed, int64(n), 0)
	err = placeBacklog(ctx, app, n, &placed)
	stop()
	if err != nil {
		return err
	}

	decided, err := timeDrain(ctx, b, "reserve-drain: engine decisions", app.RunProcessors, store, int64(n), eventstore.ReservationConsumers()...)
	if err != nil {
		return err
	}
	stopProcessors := runInBackground(ctx, app.RunProcessors)
	settled, err := timeDrain(ctx, b, "reserve-drain: saga outcomes", app.RunSaga, store, 0, eventstore.SagaConsumer)
	if err := errors.CombineErrors(err, stopProcessors()); err != nil {
		return err
	}
	sku, err := app.SKUs.Load(ctx, drainSKU)
	if err != nil {
		return err
	}
	if sku.State.Reserved != int64(stock) || sku.State.OnHand != int64(stock) {
		return errors.Newf("after the drain %s has %d reserved of %d on hand, want %d of %d",
			drainSKU, sku.State.Reserved, sku.State.OnHand, stock, stock)
	}

	pool, err := pgStockPool(ctx, cfg.DatabaseURL, drainPlacers)
	if err != nil {
		return err
	}
	defer pool.Close()
	var done atomic.Int64
	stop = progress(b.stderr, "reserve-drain: Postgres hot row", "decisions", &done, int64(n), 0)
	hot, err := hotRowUpdate(ctx, pool, drainSKU, stock, n, drainPlacers, &done)
	stop()
	if err != nil {
		return err
	}
	metric := fmt.Sprintf("reservation decisions/s, one SKU, backlog %d", n)
	b.compare("reserve-drain", metric, float64(n)/decided.Seconds(), "decisions/s",
		fmt.Sprintf("Postgres hot-row UPDATE, %d conns", drainPlacers), hot.perSecond(n), 10)
	b.add("reserve-drain", "outcomes recorded on orders/s (saga)", float64(n)/settled.Seconds(), "outcomes/s", "", nil)
	return nil
}

// placeBacklog places n single-unit orders on drainSKU.
func placeBacklog(ctx context.Context, app *commands.App, n int, placed *atomic.Int64) error {
	var (
		wg    sync.WaitGroup
		first firstError
	)
	for range drainPlacers {
		wg.Go(func() {
			for placed.Load() < int64(n) {
				if placed.Add(1) > int64(n) {
					placed.Add(-1)
					return
				}
				_, err := app.PlaceOrder(ctx, commands.Meta{CommandID: app.NewID()}, commands.PlaceOrder{
					CustomerID: "drain", Currency: "USD", Lines: []domain.Line{{SKU: drainSKU, Qty: 1, UnitPriceCents: 1999}}})
				if err != nil {
					first.set(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return first.err
}

// timeDrain runs worker until the consumers have nothing pending nor
// unacknowledged, and returns how long that took. The worker keeps
// running only while timed. total, when above 0, is the messages the
// consumers start with, for the progress line.
func timeDrain(ctx context.Context, b *bencher, label string, worker func(context.Context) error, store *eventstore.Store, total int64, consumers ...string) (time.Duration, error) {
	var done atomic.Int64
	stop := progress(b.stderr, label, "done", &done, total, 0)
	defer stop()
	start := time.Now()
	stopWorker := runInBackground(ctx, worker)
	for {
		pending, unacked, caughtUp, err := pollDrain(ctx, store, consumers)
		if err != nil {
			return 0, errors.CombineErrors(err, stopWorker())
		}
		if total > 0 {
			done.Store(max(0, total-int64(pending+unacked)))
		}
		if caughtUp {
			return time.Since(start), stopWorker()
		}
		// Each poll asks the server for every consumer's state: polling
		// faster would load the server being measured.
		time.Sleep(20 * time.Millisecond)
	}
}

// pollTimeout bounds one poll of the consumers' state. The client's
// default (5 s) is not enough for a server that the saga's drain keeps
// busy: one run of the whole bench failed on it with the drain still
// going.
const pollTimeout = 30 * time.Second

// pollDrain reads the consumers' backlog and, when it is empty, whether
// they have caught up with their streams.
func pollDrain(ctx context.Context, store *eventstore.Store, consumers []string) (pending, unacked uint64, caughtUp bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, pollTimeout)
	defer cancel()
	if pending, unacked, err = store.Backlog(ctx, consumers...); err != nil || pending > 0 || unacked > 0 {
		return pending, unacked, false, err
	}
	caughtUp, err = store.ConsumersCaughtUp(ctx, consumers...)
	return 0, 0, caughtUp, err
}

// runInBackground runs fn until the returned stop is called, which returns
// fn's error.
func runInBackground(ctx context.Context, fn func(context.Context) error) (stop func() error) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	return func() error {
		cancel()
		err := <-done
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	}
}

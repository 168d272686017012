package eventstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/internal/testnats"
)

// BenchmarkColdLoadSKU1MDecisions times a cold load (nothing cached) of a
// SKU that decided a million reservation requests, stored as a processor
// stores them: ReservationsDecided events of up to 1,000 decisions, each
// batch granting 500 new reservations and releasing the previous 500. The
// store keeps a snapshot every 1,000 events (the default), so
//   - replay reads the whole history (a store with snapshots off);
//   - snapshot reads the snapshot at version 1,000 and the events after it.
func BenchmarkColdLoadSKU1MDecisions(b *testing.B) {
	_, nc := testnats.Start(b)
	on := openSnapStore(b, nc, eventstore.DefaultSnapshotEvery)
	off := openSnapStore(b, nc, -1)
	ctx := context.Background()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	w := eventstore.NewRepository(on, eventstore.SKUKind, 10)
	set := func(eventstore.Snapshot[domain.SKU]) ([]domain.SKUEvent, error) {
		return []domain.SKUEvent{domain.OnHandSet{SKU: "SKU1M", OnHand: domain.MaxStock, At: at}}, nil
	}
	if _, err := w.Update(ctx, "SKU1M", eventstore.UpdateOptions[domain.SKU]{CommandID: "set"}, set); err != nil {
		b.Fatal(err)
	}
	id := func(batch, i int) string { return fmt.Sprintf("01890a5d-ac96-774b-bcce-%06d%06d-SKU1M", batch, i) }
	decisions := 0
	for batch := 0; decisions < 1_000_000; batch++ {
		cmds := make([]domain.SKUCommand, 0, 1000)
		for i := range 500 {
			cmds = append(cmds, domain.Reserve{SKU: "SKU1M", ReservationID: id(batch, i), OrderID: id(batch, i)[:36], Qty: 1, At: at})
			if batch > 0 {
				cmds = append(cmds, domain.Release{SKU: "SKU1M", ReservationID: id(batch-1, i), At: at})
			}
		}
		_, err := w.UpdateFolded(ctx, "SKU1M", eventstore.UpdateOptions[domain.SKU]{CommandID: fmt.Sprint("batch-", batch)},
			func(s eventstore.Snapshot[domain.SKU]) ([]domain.SKUEvent, domain.SKU, error) {
				after, events, _ := domain.DecideReservations(s.State, cmds, 0, uint64(batch+1), at)
				decisions += len(events[0].(domain.ReservationsDecided).Decisions)
				return events, after, nil
			})
		if err != nil {
			b.Fatal(err)
		}
	}
	want, err := eventstore.NewRepository(off, eventstore.SKUKind, 10).Load(ctx, "SKU1M")
	if err != nil {
		b.Fatal(err)
	}
	awaitSnapshot(b, snapshotBucket(b, nc, on), snapKey("inventory", "SKU1M"), eventstore.DefaultSnapshotEvery)
	b.Logf("%d decisions in %d events; %d held at the end", decisions, want.Version, want.State.Held.Len())
	for _, c := range []struct {
		name  string
		store *eventstore.Store
	}{{"replay", off}, {"snapshot", on}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				got, err := eventstore.NewRepository(c.store, eventstore.SKUKind, 10).Load(ctx, "SKU1M")
				if err != nil || got.Version != want.Version || got.State.Reserved != want.State.Reserved {
					b.Fatalf("load: version %d reserved %d, %v", got.Version, got.State.Reserved, err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/load")
		})
	}
}

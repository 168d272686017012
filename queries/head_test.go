package queries_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/orderengine/engine/commands"
	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/internal/enginetest"
	"github.com/orderengine/engine/queries"
)

// TestHeadCacheNeverRefusesATokenJustHandedOut: a write's token is covered
// as soon as the write is acknowledged, though the cache last read the
// store before it; tokens past the store are not, however many ask at once.
func TestHeadCacheNeverRefusesATokenJustHandedOut(t *testing.T) {
	t.Parallel()
	e := enginetest.Start(t, time.Hour)
	store, app := e.Store, e.App
	ctx := context.Background()
	head := queries.NewHeadCache(store)
	for i := range 20 {
		out, err := app.PlaceOrder(ctx, commands.Meta{CommandID: app.NewID()}, commands.PlaceOrder{CustomerID: "c", Currency: "USD",
			Lines: []domain.Line{{SKU: "A1", Qty: 1, UnitPriceCents: 100}}})
		if err != nil {
			t.Fatal(err)
		}
		token := eventstore.TokenAt(out.Position)
		if ok, err := head.Covers(ctx, token); err != nil || !ok {
			t.Fatalf("write %d: its token %s is not covered (%v)", i, token, err)
		}
		past := eventstore.TokenAt(eventstore.Position{Shard: out.Position.Shard, Seq: out.Position.Seq + 1_000_000})
		beyond := eventstore.TokenAt(eventstore.Position{Shard: store.Shards(), Seq: 1}) // a shard the store does not have
		var wg sync.WaitGroup
		for i := range 50 {
			wg.Go(func() {
				tok := past
				if i%2 == 1 {
					tok = beyond
				}
				if ok, err := head.Covers(ctx, tok); err != nil || ok {
					t.Errorf("a token past the store is covered (%v)", err)
				}
			})
		}
		wg.Wait()
	}
}

package projections

import (
	"context"
	"slices"
	"testing"

	"github.com/orderengine/engine/internal/testnats"
)

// TestUpgradeFromBeforeShardingKeepsWorking: an event store and read models
// written by the engine before sharding (one stream EVENTS; rm.checkpoints
// and rm.dead_letters without a shard column) are opened by this engine
// asking for 4 shards: the store stays in one-shard mode, the schema takes
// the old checkpoint as shard 0's, and the projection goes on from it.
func TestUpgradeFromBeforeShardingKeepsWorking(t *testing.T) {
	t.Parallel()
	_, nc := testnats.Start(t)
	ctx := context.Background()
	pool := newPool(t)

	old, stopOld := fixtureOn(t, nc, 1)
	orders, skus := scenario(t, old)
	old.quiesce(t)
	runUntil(t, NewRunner(old.store, pool, quietLog()), old.lastEventSeq(t))
	stopOld()
	// The schema as it was before sharding.
	if _, err := pool.Exec(ctx, `
ALTER TABLE rm.checkpoints DROP CONSTRAINT checkpoints_pkey;
ALTER TABLE rm.checkpoints DROP COLUMN shard;
ALTER TABLE rm.checkpoints ADD PRIMARY KEY (projection);
ALTER TABLE rm.dead_letters DROP CONSTRAINT dead_letters_projection_shard_seq_key;
ALTER TABLE rm.dead_letters DROP COLUMN shard;
ALTER TABLE rm.dead_letters ADD CONSTRAINT dead_letters_projection_seq_key UNIQUE (projection, seq);`); err != nil {
		t.Fatalf("restore the old schema: %v", err)
	}
	var oldCheckpoint int64
	if err := pool.QueryRow(ctx, `SELECT last_seq FROM rm.checkpoints WHERE projection = 'main'`).Scan(&oldCheckpoint); err != nil || oldCheckpoint == 0 {
		t.Fatalf("old checkpoint %d: %v", oldCheckpoint, err)
	}
	before := dump(t, pool)

	if err := ApplySchema(ctx, pool); err != nil {
		t.Fatalf("apply the schema over the old one: %v", err)
	}
	if err := ApplySchema(ctx, pool); err != nil {
		t.Fatalf("apply the schema again: %v", err)
	}
	if cps := mustCheckpoint(t, pool); !slices.Equal(cps, []uint64{uint64(oldCheckpoint)}) {
		t.Fatalf("checkpoints after the upgrade %v, want [%d] (shard 0)", cps, oldCheckpoint)
	}
	sameDump(t, before, dump(t, pool))

	f, _ := fixtureOn(t, nc, 4)
	if f.store.Shards() != 1 {
		t.Fatalf("the upgraded engine opened %d shards over a store from before sharding", f.store.Shards())
	}
	f.setStock(t, "SKU-E", 3)
	orders = append(orders, f.place(t, line("SKU-A", 1)), f.place(t, line("SKU-E", 2), line("SKU-B", 1)))
	skus = append(skus, "SKU-E")
	for _, id := range orders[len(orders)-2:] {
		f.settle(t, id)
	}
	f.quiesce(t)
	last := f.lastEventSeq(t)
	if last[0] <= uint64(oldCheckpoint) {
		t.Fatalf("nothing stored after the upgrade: last %v, checkpoint %d", last, oldCheckpoint)
	}
	runUntil(t, NewRunner(f.store, pool, quietLog()), last)
	checkAgainstStore(t, f, pool, orders, skus)
	fresh := newPool(t)
	runUntil(t, NewRunner(f.store, fresh, quietLog()), last)
	sameDump(t, dump(t, fresh), dump(t, pool))
}

package projections

import (
	"context"
	"log/slog"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/queries"
)

// ErrRebuildInProgress is returned when a rebuild is asked for while
// another runs, in this process or another one on the same database.
var ErrRebuildInProgress = queries.ErrRebuildInProgress

// RebuildLockKey is the key of the Postgres advisory lock a rebuild holds
// from start to end, so that rebuilds take turns across processes; while
// anyone holds it, no rebuild starts.
const RebuildLockKey = 7281947

// unpausedCatchUps bounds how often Rebuild catches up with the live
// projection before it pauses it for the last stretch.
const unpausedCatchUps = 20

// Rebuild rebuilds the read models from the event store without
// downtime: it replays the whole stream, from sequence 1 up to the last
// event at its start, into fresh tables under NextSchema, with the live
// projection's apply code and batching; it catches up with the live
// projection's checkpoint; then, in one transaction that holds the live
// checkpoint row locked (so the live Runner's next batch waits, and none is
// lost), it applies the events up to that checkpoint and swaps the schemas:
// rm becomes rm_old (dropped just after) and rm_next becomes rm. Queries are
// answered from the old rm until that commit, from the new one after; they
// never see a half-built model. A live Runner keeps going: its statements
// name rm and resolve to the new tables. progress, when not nil, hears the
// events applied so far and the events to apply.
//
// It returns ErrRebuildInProgress when a rebuild is already running; on any
// other failure rm is left as it was.
func Rebuild(ctx context.Context, store *eventstore.Store, pool *pgxpool.Pool, log *slog.Logger, progress func(done, total uint64)) error {
	conn, unlock, err := lockRebuild(ctx, pool)
	if err != nil {
		return err
	}
	defer unlock()
	return rebuildOn(ctx, conn, store, pool, log, progress, maxBatch)
}

// lockRebuild takes the rebuild lock on a connection of pool, which the
// rebuild then uses throughout; unlock releases both.
func lockRebuild(ctx context.Context, pool *pgxpool.Pool) (*pgxpool.Conn, func(), error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, nil, readErr(err, "rebuild")
	}
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, int64(RebuildLockKey)).Scan(&ok); err != nil {
		conn.Release()
		return nil, nil, readErr(err, "rebuild: lock")
	}
	if !ok {
		conn.Release()
		return nil, nil, errors.Wrap(ErrRebuildInProgress, "rebuild")
	}
	unlock := func() {
		ctx := context.WithoutCancel(ctx)
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, int64(RebuildLockKey)); err != nil {
			// A connection that may still hold the lock must not go back.
			_ = conn.Hijack().Close(ctx)
			return
		}
		conn.Release()
	}
	return conn, unlock, nil
}

func rebuildOn(ctx context.Context, conn *pgxpool.Conn, store *eventstore.Store, pool *pgxpool.Pool, log *slog.Logger,
	progress func(done, total uint64), batch int) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	start := time.Now()
	// An rm_old is what a failed drop left; nothing reads it.
	if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+oldSchema+` CASCADE`); err != nil {
		return readErr(err, "rebuild: drop schema %s", oldSchema)
	}
	if err := recreateSchema(ctx, conn, NextSchema); err != nil {
		return readErr(err, "rebuild")
	}
	r := NewRunner(store, pool, log)
	r.schema, r.db, r.batch = NextSchema, conn, batch
	// Until the swap, rm_next is the rebuild's alone: its batches need not
	// wait for the disk, the swap's commit waits for all of them.
	r.asyncCommit = true
	var done, total uint64
	r.committed = func(_ uint64, n int) {
		done += uint64(n)
		total = max(total, done)
		if progress != nil {
			progress(done, total)
		}
	}
	sized := func(pending uint64) {
		total = max(total, done+pending)
		if progress != nil {
			progress(done, total)
		}
	}
	// The bulk of the replay writes into tables without the indexes only
	// queries need, nor foreign keys; they are built before the catch-up,
	// so the tables swapped in are exactly what schema.sql creates.
	restore, err := dropForBulk(ctx, conn, NextSchema)
	if err != nil {
		return readErr(err, "rebuild")
	}
	r.bulk = true
	applied, err := r.replayShards(ctx, nil, nil, sized)
	r.bulk = false
	if err != nil {
		return readErr(err, "rebuild: replay into %s", NextSchema)
	}
	if err := restoreAfterBulk(ctx, conn, restore); err != nil {
		return readErr(err, "rebuild: index %s", NextSchema)
	}
	// Catch up with the live projection without pausing it, until what is
	// left fits in about a batch.
	for range unpausedCatchUps {
		cps, err := Checkpoints(ctx, conn, MainProjection)
		if err != nil {
			return readErr(err, "rebuild")
		}
		behind := uint64(0)
		for k := range applied {
			behind += at(cps, k) - min(at(cps, k), applied[k])
		}
		if behind <= uint64(r.batch) {
			break
		}
		if applied, err = r.replayShards(ctx, applied, full(cps, len(applied)), sized); err != nil {
			return readErr(err, "rebuild: catch up in %s", NextSchema)
		}
	}
	r.asyncCommit = false
	if applied, err = swapIn(ctx, conn, r, applied, sized); err != nil {
		return readErr(err, "rebuild: swap %s in", NextSchema)
	}
	log.Info("read models rebuilt and swapped in", "projection", MainProjection, "checkpoints", applied,
		"events", done, "took", time.Since(start).Round(time.Millisecond))
	dropOld(ctx, conn, log)
	return nil
}

// swapIn pauses the live projection, brings r's schema (NextSchema) up to
// its checkpoints and renames the schemas, in one transaction on conn. It
// returns the checkpoints of the swapped-in read models.
func swapIn(ctx context.Context, conn *pgxpool.Conn, r *Runner, applied []uint64, sized func(uint64)) ([]uint64, error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return applied, errors.Wrap(err, "begin")
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	// The live Runner holds a shard's row locked from the start to the
	// commit of each batch of that shard: taking them all (in shard order,
	// as no batch takes two) waits for the batches in flight, and keeps the
	// next ones waiting until the swap commits. They then go on in the new
	// rm, whose checkpoints are where these stand now.
	cps := make([]uint64, len(applied))
	for k := range cps {
		cp, err := lockCheckpoint(ctx, tx, MainProjection, k)
		if err != nil {
			return applied, err
		}
		cps[k] = cp
	}
	r.db = tx
	if applied, err = r.replayShards(ctx, applied, cps, sized); err != nil {
		return applied, err
	}
	if hook, ok := ctx.Value(beforeRenameKey{}).(func()); ok {
		hook()
	}
	// The stream's last events before the rebuild started may be ahead of
	// a live projection that lags (or of none running): the new rm is then
	// ahead, and the live Runner's next events there are no-ops.
	if _, err := tx.Exec(ctx, `ALTER SCHEMA `+LiveSchema+` RENAME TO `+oldSchema); err != nil {
		return applied, errors.Wrap(err, "rename the live schema")
	}
	if _, err := tx.Exec(ctx, `ALTER SCHEMA `+NextSchema+` RENAME TO `+LiveSchema); err != nil {
		return applied, errors.Wrap(err, "rename the rebuilt schema")
	}
	for k := range applied {
		applied[k] = max(applied[k], cps[k])
	}
	return applied, errors.Wrap(tx.Commit(ctx), "commit the swap")
}

// beforeRenameKey is the context key of a test's func(), which swapIn
// calls while it holds the live checkpoint, just before the renames.
type beforeRenameKey struct{}

// dropOld drops the replaced read models. The drop waits for the queries
// still reading them; it gives up its locks often (lock_timeout) so that
// it never blocks a query, nor deadlocks with one, for long, and tries
// again. If it keeps failing, rm_old stays until the next rebuild.
func dropOld(ctx context.Context, conn *pgxpool.Conn, log *slog.Logger) {
	var err error
	for range 100 {
		if err = dropOldOnce(ctx, conn); err == nil {
			return
		}
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || (pgErr.Code != "55P03" && pgErr.Code != "40P01") {
			break
		}
		sleep(ctx, 50*time.Millisecond)
	}
	log.Warn("could not drop the replaced read models; the next rebuild will", "schema", oldSchema, "err", err)
}

func dropOldOnce(ctx context.Context, conn *pgxpool.Conn) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '200ms'`); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `DROP SCHEMA IF EXISTS `+oldSchema+` CASCADE`); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

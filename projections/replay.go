package projections

import (
	"context"
	"log/slog"

	"github.com/cockroachdb/errors"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/queries"
)

// Difference is a row on which the live read models and a fresh replay
// disagree.
type Difference = queries.Difference

// maxDifferences is the most differences CompareWithReplay lists.
const maxDifferences = 1000

// verifyLock is the advisory lock that makes replay comparisons take turns
// on VerifySchema, across processes.
const verifyLock = 7281948

// errReplayDone ends a replayRange's pipeline: every event in its range
// was read.
var errReplayDone = errors.New("replay range read")

// replayRange applies to r's schema, through r.commit (the live batching
// and apply code), the events of shard k after from up to upTo, or with
// upTo 0 up to the last one in the shard's stream when it starts. sized
// hears, before the first batch, how many events the shard holds after
// from. It returns the sequence of the last event applied, from when there
// was none.
func (r *Runner) replayRange(ctx context.Context, k int, from, upTo uint64, sized func(pending uint64)) (uint64, error) {
	if upTo != 0 && from >= upTo {
		return from, nil
	}
	sub, err := r.store.ReplayRange(ctx, k, from, upTo, 2*r.batch)
	if err != nil {
		return from, err
	}
	defer sub.Stop()
	if sized != nil {
		sized(sub.Pending())
	}
	if sub.Pending() == 0 {
		return from, nil
	}
	last := from
	prev := r.committed
	r.committed = func(seq uint64, n int) {
		last = seq
		if prev != nil {
			prev(seq, n)
		}
	}
	defer func() { r.committed = prev }()
	next := func(ctx context.Context) ([]streamEvent, batchInfo, error) {
		var (
			events []streamEvent
			info   batchInfo
		)
		for len(events) < r.batch {
			m, err := sub.Next(ctx)
			if errors.Is(err, eventstore.ErrEndOfRange) {
				break
			}
			if err != nil {
				return nil, batchInfo{}, err
			}
			ev, bi := toStreamEvent(m)
			events, info = append(events, ev), bi
		}
		if len(events) == 0 {
			return nil, batchInfo{}, errReplayDone
		}
		return events, info, nil
	}
	_, err = r.pipelineWith(ctx, next)
	if errors.Is(err, errReplayDone) {
		err = nil
	}
	return last, err
}

// replayShards runs replayRange on every shard in turn, from applied[k]
// up to upTo[k] (everything stored when it starts, for a nil upTo), and
// returns where each shard then stands. Shards are independent, so their
// order does not matter to the result.
func (r *Runner) replayShards(ctx context.Context, applied, upTo []uint64, sized func(pending uint64)) ([]uint64, error) {
	out := make([]uint64, r.store.Shards())
	for k := range out {
		from := at(applied, k)
		out[k] = from
		if upTo != nil && at(upTo, k) <= from {
			continue
		}
		last, err := r.replayRange(ctx, k, from, at(upTo, k), sized)
		out[k] = max(from, last)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// ReplayComparison compares the live read models with a fresh replay of
// the event store; it is the queries.ReplayComparer of the HTTP API.
type ReplayComparison struct {
	Store *eventstore.Store
	Pool  *pgxpool.Pool
	Log   *slog.Logger
}

var _ queries.ReplayComparer = ReplayComparison{}

// CompareWithReplay calls the package's CompareWithReplay.
func (c ReplayComparison) CompareWithReplay(ctx context.Context) ([]Difference, error) {
	return CompareWithReplay(ctx, c.Store, c.Pool, c.Log)
}

// comparedTables are the read models CompareWithReplay compares, each with
// the SQL expression of its primary key as text.
var comparedTables = []struct{ table, key string }{
	{"orders", `order_id::text`},
	{"order_lines", `order_id::text || '/' || line_no`},
	{"inventory", `sku`},
	{"order_buckets", `granularity || '/' || to_char(bucket AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') || '/' || metric || '/' || currency`},
}

// CompareWithReplay replays the whole event store into VerifySchema (dropped
// afterwards) up to the live projection's checkpoint and compares the live
// read models with it row by row: rm.orders, rm.order_lines, rm.inventory
// and rm.order_buckets. It returns the rows that differ, in table and key
// order, at most 1000; none when the read models are what a replay
// yields (DESIGN.md, invariant 3). The live projection keeps running:
// the comparison reads the live tables in one snapshot and brings the
// replay up to the checkpoint of that snapshot, inside the same
// transaction. Comparisons take turns (an advisory lock). It returns an
// error matching domain.ErrUnavailable when the database cannot be
// reached.
func CompareWithReplay(ctx context.Context, store *eventstore.Store, pool *pgxpool.Pool, log *slog.Logger) ([]Difference, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, readErr(err, "compare with a replay")
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(verifyLock)); err != nil {
		return nil, readErr(err, "compare with a replay: lock")
	}
	defer func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(verifyLock)); err != nil {
			// A connection that may still hold the lock must not go back.
			_ = conn.Hijack().Close(context.WithoutCancel(ctx))
		}
	}()
	diffs, err := compareOn(ctx, conn, store, pool, log)
	if _, dropErr := conn.Exec(context.WithoutCancel(ctx), `DROP SCHEMA IF EXISTS `+VerifySchema+` CASCADE`); dropErr != nil {
		log.Warn("drop the replay comparison's schema", "schema", VerifySchema, "err", dropErr)
	}
	if err != nil {
		return nil, readErr(err, "compare with a replay")
	}
	return diffs, nil
}

func compareOn(ctx context.Context, conn *pgxpool.Conn, store *eventstore.Store, pool *pgxpool.Pool, log *slog.Logger) ([]Difference, error) {
	if err := recreateSchema(ctx, conn, VerifySchema); err != nil {
		return nil, err
	}
	r := NewRunner(store, pool, log)
	r.schema, r.db = VerifySchema, conn
	cps, err := Checkpoints(ctx, conn, MainProjection)
	if err != nil {
		return nil, err
	}
	// Most of the replay commits on its own, without holding a snapshot.
	applied, err := r.replayShards(ctx, nil, full(cps, r.store.Shards()), nil)
	if err != nil {
		return nil, err
	}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadWrite})
	if err != nil {
		return nil, errors.Wrap(err, "begin")
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	// The first query fixes the snapshot: the live tables as of this
	// checkpoint, which the replay then reaches in the same transaction.
	cps, err = Checkpoints(ctx, tx, MainProjection)
	if err != nil {
		return nil, err
	}
	r.db = tx
	if _, err := r.replayShards(ctx, applied, full(cps, r.store.Shards()), nil); err != nil {
		return nil, err
	}
	var diffs []Difference
	for _, t := range comparedTables {
		q := `SELECT COALESCE(l.k, v.k), COALESCE(l.j::text, ''), COALESCE(v.j::text, '')
FROM (SELECT ` + t.key + ` AS k, to_jsonb(t) AS j FROM rm.` + t.table + ` t) l
FULL OUTER JOIN (SELECT ` + t.key + ` AS k, to_jsonb(t) AS j FROM ` + VerifySchema + `.` + t.table + ` t) v ON l.k = v.k
WHERE l.j IS DISTINCT FROM v.j
ORDER BY 1 LIMIT $1`
		rows, err := tx.Query(ctx, q, maxDifferences-len(diffs))
		if err != nil {
			return nil, errors.Wrapf(err, "compare %s", t.table)
		}
		got, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Difference, error) {
			d := Difference{Table: t.table}
			return d, row.Scan(&d.Key, &d.Live, &d.Replayed)
		})
		if err != nil {
			return nil, errors.Wrapf(err, "compare %s", t.table)
		}
		diffs = append(diffs, got...)
		if len(diffs) >= maxDifferences {
			break
		}
	}
	return diffs, nil
}

// full returns per-shard sequences with an entry for each of n shards, so
// that a shard without a checkpoint replays nothing (0) rather than
// everything (replayShards reads a nil upTo as "up to the end").
func full(seqs []uint64, n int) []uint64 {
	out := make([]uint64, n)
	for k := range out {
		out[k] = at(seqs, k)
	}
	return out
}

package projections

import (
	"context"
	"log/slog"

	"github.com/cockroachdb/errors"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

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
// and apply code), the events after from up to upTo, or with upTo 0 up to
// the last one in the stream when it starts. sized hears, before the
// first batch, how many events the stream holds after from. It returns
// the sequence of the last event applied, from when there was none.
func (r *Runner) replayRange(ctx context.Context, from, upTo uint64, sized func(pending uint64)) (uint64, error) {
	if upTo != 0 && from >= upTo {
		return from, nil
	}
	js := r.store.JetStream()
	// How many events there are comes from a consumer filtered on them, but
	// the events are read unfiltered, skipping the other subjects: serving a
	// consumer with two subject filters costs the server a subject-tree
	// intersection per message (it was 73% of a rebuild's CPU, ~1,700
	// events/s), reading in sequence costs it nothing.
	counter, err := js.OrderedConsumer(ctx, r.store.Stream(), jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{orderPrefix + "*", skuPrefix + "*"},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    from + 1,
	})
	if err != nil {
		return from, errors.Wrap(err, "count the events to replay")
	}
	counted := counter.CachedInfo()
	if counted == nil {
		return from, errors.AssertionFailedf("ordered consumer without info")
	}
	_ = js.DeleteConsumer(ctx, r.store.Stream(), counted.Name)
	cons, err := js.OrderedConsumer(ctx, r.store.Stream(), jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   from + 1,
	})
	if err != nil {
		return from, errors.Wrap(err, "create ordered consumer")
	}
	info := cons.CachedInfo()
	if info == nil {
		return from, errors.AssertionFailedf("ordered consumer without info")
	}
	// The events existing now are the first counted.NumPending among the
	// first info.NumPending messages; the range never needs more, so it
	// never waits for new ones.
	remaining, messages := counted.NumPending, info.NumPending
	if sized != nil {
		sized(remaining)
	}
	if remaining == 0 {
		return from, nil
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(2 * r.batch))
	if err != nil {
		return from, errors.Wrap(err, "consume events")
	}
	defer it.Stop()
	last := from
	prev := r.committed
	r.committed = func(seq uint64, n int) {
		last = seq
		if prev != nil {
			prev(seq, n)
		}
	}
	defer func() { r.committed = prev }()
	done := false
	next := func(ctx context.Context) ([]streamEvent, batchInfo, error) {
		var (
			events []streamEvent
			info   batchInfo
		)
		for !done && len(events) < r.batch {
			m, err := it.Next(jetstream.NextContext(ctx))
			if err != nil {
				return nil, batchInfo{}, errors.Wrap(err, "next event")
			}
			ev, bi, err := toStreamEvent(m)
			if err != nil {
				return nil, batchInfo{}, err
			}
			if upTo != 0 && ev.Seq > upTo {
				done = true
				break
			}
			messages--
			if !eventstore.IsEventSubject(ev.Subject) {
				done = messages == 0 || bi.pending == 0 || (upTo != 0 && ev.Seq >= upTo)
				continue
			}
			events, info = append(events, ev), bi
			remaining--
			done = remaining == 0 || messages == 0 || bi.pending == 0 || (upTo != 0 && ev.Seq >= upTo)
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
	cp, err := Checkpoint(ctx, conn, MainProjection)
	if err != nil {
		return nil, err
	}
	// Most of the replay commits on its own, without holding a snapshot.
	applied, err := r.replayRange(ctx, 0, cp, nil)
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
	cp, err = Checkpoint(ctx, tx, MainProjection)
	if err != nil {
		return nil, err
	}
	r.db = tx
	if _, err := r.replayRange(ctx, applied, cp, nil); err != nil {
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

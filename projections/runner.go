// Package projections applies the events stream to the Postgres read models
// (rm.orders, rm.order_lines, rm.inventory) in checkpointed batches, and
// reads them back for the queries.
package projections

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	orderengine "github.com/orderengine/engine"
	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/internal/tracing"
)

// MainProjection names the one projection that covers orders, their lines
// and the inventory: its checkpoint and dead letters are filed under it.
const MainProjection = "main"

// maxBatch is the most events applied in one transaction: large enough to
// amortise the round trips and the commit's fsync, small enough to keep a
// transaction short and its rollback cheap.
const maxBatch = 1000

// DefaultLinger is how long a batch of a busy projection waits, from its
// first event, for more events before it is applied (a Runner's linger).
// Every batch is a Postgres transaction with its fixed round trips and
// passes over the batch's rows. Under a steady write load the stream
// brings a group commit's events at a time, so without a wait the
// projection ran ~70 transactions of ~70 events a second on the cores the
// write path needs; waiting up to 100 ms makes about ten. The transaction
// count was the cost, not the commit's fsync: asynchronous commits changed
// nothing measurable. Measured (docs/design/write-path.md section 6):
// place rose from 1,372–1,396 to 1,857–1,984 orders/s in three alternating
// pairs. A quiet projection does not wait (see busyBatch), nor one that a
// read is waiting for (Await).
const DefaultLinger = 100 * time.Millisecond

// busyBatch is the batch size from which the projection counts as busy:
// the batch after one of at least this many events lingers. A trickle of
// orders makes batches of a few events, applied at once.
const busyBatch = 32

// poisonAttempts is how often an event is tried on its own before it goes to
// the dead letters.
const poisonAttempts = 3

// Querier is what Checkpoint needs: *pgxpool.Pool, *pgx.Conn and pgx.Tx all
// have it.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

var (
	_ Querier = (*pgxpool.Pool)(nil)
	_ Querier = (pgx.Tx)(nil)
)

// Runner applies the events stream to the Postgres read models. One
// projection, MainProjection, covers orders, lines and inventory.
type Runner struct {
	store *eventstore.Store
	pool  *pgxpool.Pool
	// db begins the batches' transactions: pool, except for a Runner
	// that replays into another schema on a connection of its own.
	db beginner
	// schema is where the batches write: LiveSchema, except for a
	// rebuild's or a replay comparison's Runner.
	schema string
	log    *slog.Logger
	name   string
	batch  int
	// linger is how long a batch after a busy one waits for more events
	// (DefaultLinger; 0: no wait beyond the millisecond that ends every
	// batch).
	linger time.Duration
	// busy is the batch size after which the next batch lingers
	// (busyBatch).
	busy int
	// now is the clock of Status's lag_seconds.
	now func() time.Time
	// committed, when set, hears of every committed batch: the sequence
	// of its last event and how many events it held.
	committed func(last uint64, n int)
	// asyncCommit makes the batches' commits return before their WAL is
	// on disk (synchronous_commit off, for the transaction only). Only
	// for tables nobody reads before a synchronous commit (a rebuild's
	// swap) has flushed that WAL too: a crash loses the last batches,
	// each whole with its checkpoint, and the rebuild it interrupts
	// starts over from sequence 1 anyway.
	asyncCommit bool
	// bulk writes the orders a batch places, and their lines, with COPY
	// rather than an upsert: only into a rebuild's fresh tables, where no
	// order can exist before its OrderPlaced (placedRows.copy).
	bulk bool

	// waiting counts the reads waiting for a Consistency-Token (Await).
	waiting atomic.Int64

	mu sync.Mutex
	st []progress // per shard, guarded by mu
}

// NewRunner returns a Runner of the main projection; Run starts it.
func NewRunner(store *eventstore.Store, pool *pgxpool.Pool, log *slog.Logger) *Runner {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := 1 // a Runner without a store only retries dead letters
	if store != nil {
		n = store.Shards()
	}
	st := make([]progress, n)
	for k := range st {
		st[k].state = StateStarting
	}
	return &Runner{store: store, pool: pool, db: pool, schema: LiveSchema, log: log, name: MainProjection,
		batch: maxBatch, linger: DefaultLinger, busy: busyBatch, now: time.Now, st: st}
}

// NewRunnerInSchema returns a Runner of the main projection whose batches
// write into the read models under schema (e.g. NextSchema) instead of rm;
// its Status and dead-letter reads still look at rm. The schema must hold
// the read models already (Rebuild creates them). A name that is not a
// plain lower-case identifier is an error.
func NewRunnerInSchema(store *eventstore.Store, pool *pgxpool.Pool, log *slog.Logger, schema string) (*Runner, error) {
	if !schemaName.MatchString(schema) {
		return nil, errors.Newf("bad schema name %q", schema)
	}
	r := NewRunner(store, pool, log)
	r.schema = schema
	return r, nil
}

// ApplySchema executes orderengine.Schema; every statement in it is
// idempotent, so it runs at every start.
func ApplySchema(ctx context.Context, pool *pgxpool.Pool) error {
	// Concurrent starts would race on CREATE ... IF NOT EXISTS (it is not
	// atomic against itself in Postgres), so they take turns.
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return errors.Wrap(err, "apply schema")
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(7281946)`); err != nil {
		return errors.Wrap(err, "apply schema: lock")
	}
	_, err = conn.Exec(ctx, orderengine.Schema)
	_, unlockErr := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(7281946)`)
	if err != nil {
		return errors.Wrap(err, "apply schema")
	}
	return errors.Wrap(unlockErr, "apply schema: unlock")
}

// Checkpoints returns, per shard of the event store (index k for shard
// k), the last sequence of that shard's stream the projection has applied;
// a shard it has applied nothing of yet is 0 or beyond the slice's end.
func Checkpoints(ctx context.Context, db Querier, projection string) ([]uint64, error) {
	return checkpointsIn(ctx, db, LiveSchema, projection)
}

// checkpointsIn is Checkpoints in the read models under schema.
func checkpointsIn(ctx context.Context, db Querier, schema, projection string) ([]uint64, error) {
	var (
		shards []int32
		seqs   []int64
	)
	err := db.QueryRow(ctx, inSchema(`SELECT COALESCE(array_agg(shard ORDER BY shard), '{}'), COALESCE(array_agg(last_seq ORDER BY shard), '{}')
FROM rm.checkpoints WHERE projection = $1`, schema), projection).Scan(&shards, &seqs)
	if err != nil {
		return nil, errors.Wrapf(err, "read checkpoints of projection %s", projection)
	}
	var out []uint64
	for i, k := range shards {
		if k < 0 {
			continue
		}
		for int(k) >= len(out) {
			out = append(out, 0)
		}
		out[k] = uint64(seqs[i])
	}
	return out, nil
}

// at returns the entry of shard k in per-shard sequences, 0 when absent.
func at(seqs []uint64, k int) uint64 {
	if k < len(seqs) {
		return seqs[k]
	}
	return 0
}

// Run applies events until ctx ends, then returns nil. It follows every
// shard of the store at once, each from its own checkpoint with an ordered
// consumer filtered on the event subjects; when Postgres or JetStream fail
// it logs, waits (backing off up to 5s) and resumes that shard from its
// checkpoint again, so a half-applied batch is never kept. Status tells
// which of these it is doing.
func (r *Runner) Run(ctx context.Context) error {
	var g errgroup.Group
	for k := range r.store.Shards() {
		g.Go(func() error { r.runShard(ctx, k); return nil })
	}
	return g.Wait()
}

func (r *Runner) runShard(ctx context.Context, k int) {
	r.setState(k, StateStarting)
	defer r.setState(k, StateStopped)
	const minBackoff = 100 * time.Millisecond
	backoff := minBackoff
	for ctx.Err() == nil {
		progressed, err := r.follow(ctx, k)
		if ctx.Err() != nil {
			break
		}
		if progressed {
			backoff = minBackoff
		}
		r.setState(k, StateInterrupted)
		r.log.Warn("projection interrupted, resuming from its checkpoint", "projection", r.name, "shard", k, "err", err, "in", backoff)
		sleep(ctx, backoff)
		backoff = min(2*backoff, 5*time.Second)
	}
}

// follow reads shard k from its checkpoint and applies it batch by batch
// until an error or ctx ends. Every batch takes what the consumer holds, up
// to r.batch events, without waiting to fill up: a quiet stream is applied
// at once, a busy one in full batches.
func (r *Runner) follow(ctx context.Context, k int) (progressed bool, err error) {
	cps, err := checkpointsIn(ctx, r.pool, r.schema, r.name)
	if err != nil {
		return false, err
	}
	sub, err := r.store.Subscribe(ctx, k, at(cps, k)+1, 2*r.batch)
	if err != nil {
		return false, err
	}
	defer sub.Stop()
	// The consumer's pending count at its creation is the lag until the
	// first batch: zero on a stream with nothing new, so an idle
	// projection is live at once.
	r.resumed(k, sub.Pending())
	last := 0
	return r.pipelineWith(ctx, func(ctx context.Context) ([]streamEvent, batchInfo, error) {
		linger := time.Duration(0)
		if last >= r.busy {
			linger = r.linger
		}
		events, info, err := r.nextBatch(ctx, sub, linger)
		last = len(events)
		return events, info, err
	})
}

// nextBatch waits for the next event and takes the ones after it, up to
// r.batch: those that come within a millisecond of the one before, or,
// with a linger, all that come within linger of the first, unless a read
// is waiting for the read models (Await): then it stops lingering. The
// batchInfo is that of its last message.
func (r *Runner) nextBatch(ctx context.Context, sub *eventstore.Subscription, linger time.Duration) ([]streamEvent, batchInfo, error) {
	m, err := sub.Next(ctx)
	if err != nil {
		return nil, batchInfo{}, err
	}
	until := time.Now().Add(linger)
	events := make([]streamEvent, 0, r.batch)
	for {
		ev, info := toStreamEvent(m)
		events = append(events, ev)
		if len(events) == r.batch {
			return events, info, nil
		}
		for ok := false; !ok; {
			wait := time.Millisecond
			rest := time.Until(until)
			lingering := rest > 0 && r.waiting.Load() == 0 && ctx.Err() == nil
			if lingering {
				// In slices, so that a read that starts waiting cuts the
				// linger short.
				wait = max(wait, min(rest, lingerSlice))
			}
			m, ok, err = sub.NextWithin(wait)
			if err != nil {
				return nil, batchInfo{}, err
			}
			if !ok && !lingering {
				return events, info, nil
			}
		}
	}
}

// lingerSlice is how often a lingering batch looks for waiting reads.
const lingerSlice = 5 * time.Millisecond

// Await tells the Runner that a read waits for its read models to reach a
// Consistency-Token, until done is called: meanwhile its batches do not
// linger, so the read waits for one transaction, not for a fuller batch.
func (r *Runner) Await() (done func()) {
	r.waiting.Add(1)
	var once sync.Once
	return func() { once.Do(func() { r.waiting.Add(-1) }) }
}

// toStreamEvent takes what the projection needs from m.
func toStreamEvent(m eventstore.StoredEvent) (streamEvent, batchInfo) {
	return streamEvent{Shard: m.Pos.Shard, Seq: m.Pos.Seq, Subject: m.Subject, Data: m.Data, Header: m.Header},
		batchInfo{pending: m.Pending, stored: m.Stored}
}

// prepared is a batch read and decoded ahead of its turn; decodeErr is set
// (and evs nil) when one of its events cannot be decoded.
type prepared struct {
	events    []streamEvent
	evs       []decoded
	decodeErr error
	info      batchInfo
}

// pipeline commits the batches next returns until it or a commit fails.
// Reading and decoding (most of the projection's own CPU time) run one batch
// ahead in another goroutine, overlapping the previous batch's transaction.
// Commits stay strictly in stream order.
func (r *Runner) pipeline(ctx context.Context, next func(context.Context) ([]streamEvent, error)) (progressed bool, err error) {
	return r.pipelineWith(ctx, func(ctx context.Context) ([]streamEvent, batchInfo, error) {
		events, err := next(ctx)
		return events, batchInfo{}, err
	})
}

// pipelineWith is pipeline for a source that also tells, per batch, how
// much of the stream remains after it; the Runner's status follows it.
func (r *Runner) pipelineWith(ctx context.Context, next func(context.Context) ([]streamEvent, batchInfo, error)) (progressed bool, err error) {
	readCtx, stop := context.WithCancel(ctx)
	batches := make(chan prepared, 1)
	var readErr error
	go func() {
		defer close(batches)
		for {
			events, info, err := next(readCtx)
			if err != nil {
				readErr = err
				return
			}
			p := prepared{events: events, info: info}
			p.evs, p.decodeErr = decodeAll(events)
			select {
			case batches <- p:
			case <-readCtx.Done():
				return
			}
		}
	}()
	defer func() {
		// The reader must be gone before the caller stops its iterator.
		stop()
		for range batches {
		}
	}()
	for p := range batches {
		start := time.Now()
		err := r.commit(ctx, p)
		if tracing.Enabled() && r.schema == LiveSchema {
			r.traceBatch(p, start, err)
		}
		if err != nil {
			return progressed, err
		}
		r.applied(p)
		if r.committed != nil {
			r.committed(p.events[len(p.events)-1].Seq, len(p.events))
		}
		progressed = true
	}
	// batches is closed: readErr is written before the close.
	return progressed, readErr
}

// commit applies a batch and the new checkpoint in one transaction. If an
// event is at fault it rolls back and applies the events one by one
// instead, sending the ones that keep failing to the dead letters.
func (r *Runner) commit(ctx context.Context, p prepared) error {
	err := p.decodeErr
	if err == nil {
		err = r.inTx(ctx, func(tx pgx.Tx, from int) error {
			return applyDecoded(ctx, tx, p.evs[from:], r.queueCheckpoint(p.events), r.bulk)
		}, p.events)
	}
	if err == nil || !isPoison(err) || ctx.Err() != nil {
		return err
	}
	r.log.Warn("batch refused, applying its events one by one", "projection", r.name, "err", err,
		"from", p.events[0].Seq, "to", p.events[len(p.events)-1].Seq)
	return r.inTx(ctx, func(tx pgx.Tx, from int) error {
		for _, ev := range p.events[from:] {
			if err := r.applyOne(ctx, tx, ev); err != nil {
				return err
			}
		}
		b := &pgx.Batch{}
		r.queueCheckpoint(p.events)(b)
		return errors.Wrap(tx.SendBatch(ctx, b).Close(), "write checkpoint")
	}, p.events)
}

// inTx runs fn in a transaction that holds the projection's checkpoint row
// locked, so two runners (or a runner and Retry) take turns. fn gets the
// index of the first event above the checkpoint and applies only those
// from it: a replayed event is a no-op. When none is above, fn is not
// called.
func (r *Runner) inTx(ctx context.Context, fn func(tx pgx.Tx, from int) error, events []streamEvent) error {
	tx, err := r.db.Begin(ctx)
	if err != nil {
		return errors.Wrap(err, "begin")
	}
	// Rolling back after a commit is a no-op; after a failure it must run
	// even with ctx cancelled, or the connection returns to the pool dirty.
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	tx = wrapTx(tx, r.schema)
	cp, err := lockCheckpoint(ctx, tx, r.name, events[0].Shard)
	if err != nil {
		return err
	}
	i := 0
	for i < len(events) && events[i].Seq <= cp {
		i++
	}
	if i == len(events) {
		return nil
	}
	if err := fn(tx, i); err != nil {
		return err
	}
	return errors.Wrap(tx.Commit(ctx), "commit")
}

// lockCheckpoint returns the projection's checkpoint of shard k, creating
// its row if needed, and holds the row locked until tx ends.
func lockCheckpoint(ctx context.Context, tx pgx.Tx, projection string, k int) (uint64, error) {
	var seq int64
	err := tx.QueryRow(ctx, `INSERT INTO rm.checkpoints (projection, shard) VALUES ($1, $2)
ON CONFLICT (projection, shard) DO UPDATE SET projection = excluded.projection
RETURNING last_seq`, projection, k).Scan(&seq)
	if err != nil {
		return 0, errors.Wrapf(err, "lock checkpoint of projection %s shard %d", projection, k)
	}
	return uint64(seq), nil
}

// queueCheckpoint returns a function that adds the update of the checkpoint
// to the last of events to a batch. The checkpoint never moves back: after
// a rebuild swapped in read models ahead of a batch already under way, that
// batch's events are no-ops and must not pull the checkpoint back either.
func (r *Runner) queueCheckpoint(events []streamEvent) func(*pgx.Batch) {
	last, k := events[len(events)-1].Seq, events[0].Shard
	return func(b *pgx.Batch) {
		if r.asyncCommit {
			b.Queue(`SELECT set_config('synchronous_commit', 'off', true)`)
		}
		b.Queue(`UPDATE rm.checkpoints SET last_seq = GREATEST(last_seq, $2), updated_at = now()
WHERE projection = $1 AND shard = $3`, r.name, int64(last), k)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

package projections

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/queries"
)

// StateRebuilding is the state Admin reports for a projection whose read
// models are being rebuilt (they keep serving meanwhile).
const StateRebuilding = queries.RebuildRunning

// Rebuilds runs the admin API's rebuilds in the background, one at a time,
// and keeps the progress of the current or last one.
type Rebuilds struct {
	store *eventstore.Store
	pool  *pgxpool.Pool
	log   *slog.Logger
	// ctx is the rebuilds' context, cancelled by Close.
	ctx    context.Context
	cancel context.CancelFunc

	mu  sync.Mutex
	cur queries.RebuildReport // guarded by mu; State "" before the first
	// wg counts the rebuilds running in the background.
	wg sync.WaitGroup
}

var _ queries.ProjectionRebuilder = (*Rebuilds)(nil)

// NewRebuilds returns a Rebuilds of the main projection.
func NewRebuilds(store *eventstore.Store, pool *pgxpool.Pool, log *slog.Logger) *Rebuilds {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Rebuilds{store: store, pool: pool, log: log, ctx: ctx, cancel: cancel}
}

// Close stops the rebuild running in the background, if any (the read
// models stay as they were), and waits for it to end. Call it before
// closing the pool: pgxpool.Pool.Close waits for the rebuild's connection.
func (b *Rebuilds) Close() {
	b.cancel()
	b.wg.Wait()
}

// StartRebuild starts Rebuild of projection name in the background. An
// unknown name matches domain.ErrNotFound; a rebuild running already (here
// or in another process on the database) matches ErrRebuildInProgress.
// The rebuild outlives ctx (a request's); Close stops it.
func (b *Rebuilds) StartRebuild(ctx context.Context, name string) error {
	if name != MainProjection {
		return errors.Wrapf(domain.ErrNotFound, "no projection %q", name)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur.State == queries.RebuildRunning {
		return errors.Wrap(ErrRebuildInProgress, "rebuild")
	}
	if b.ctx.Err() != nil {
		return errors.Wrap(b.ctx.Err(), "rebuild: closed")
	}
	conn, unlock, err := lockRebuild(ctx, b.pool)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	b.cur = queries.RebuildReport{Name: name, State: queries.RebuildRunning, StartedAt: &now}
	b.wg.Go(func() {
		defer unlock()
		b.log.Info("rebuild started", "projection", name)
		err := rebuildOn(b.ctx, conn, b.store, b.pool, b.log, b.progress, maxBatch)
		b.finish(err)
	})
	return nil
}

func (b *Rebuilds) progress(done, total uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cur.EventsApplied, b.cur.EventsTotal = done, total
}

func (b *Rebuilds) finish(err error) {
	now := time.Now().UTC()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cur.FinishedAt = &now
	b.cur.State = queries.RebuildSucceeded
	if err != nil {
		b.log.Error("rebuild failed", "projection", b.cur.Name, "err", err)
		b.cur.State, b.cur.Error = queries.RebuildFailed, err.Error()
	}
}

// RebuildStatus reports the current or last rebuild of projection name.
// An unknown name matches domain.ErrNotFound.
func (b *Rebuilds) RebuildStatus(_ context.Context, name string) (queries.RebuildReport, error) {
	if name != MainProjection {
		return queries.RebuildReport{}, errors.Wrapf(domain.ErrNotFound, "no projection %q", name)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur.State == "" {
		return queries.RebuildReport{Name: name, State: queries.RebuildIdle}, nil
	}
	return b.cur, nil
}

// Rebuilding reports whether projection name is being rebuilt.
func (b *Rebuilds) Rebuilding(name string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cur.State == queries.RebuildRunning && b.cur.Name == name
}

// Wait waits for the rebuild running in the background, if any, to end.
func (b *Rebuilds) Wait() { b.wg.Wait() }

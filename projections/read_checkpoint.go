package projections

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderengine/engine/queries"
)

// CheckpointReads tells the queries how far one projection has applied the
// stream, from rm.checkpoints.
type CheckpointReads struct {
	Pool *pgxpool.Pool
	// Projection is the rm.checkpoints row to read; empty means
	// MainProjection, whose read models the queries serve.
	Projection string
	// Runner, when it runs in this process, is told while a read waits
	// for a token (queries.Awaitable), so that it applies what it has at
	// once.
	Runner *Runner
}

var (
	_ queries.CheckpointReader = CheckpointReads{}
	_ queries.Awaitable        = CheckpointReads{}
)

// Await tells r.Runner, if any, that a read waits for a token.
func (r CheckpointReads) Await() (done func()) {
	if r.Runner == nil {
		return func() {}
	}
	return r.Runner.Await()
}

// Checkpoints returns, per shard, the projection's last applied sequence
// of that shard's stream (a shard it has none of yet is 0 or absent). It
// returns an error matching domain.ErrUnavailable when the database
// cannot be reached.
func (r CheckpointReads) Checkpoints(ctx context.Context) ([]uint64, error) {
	name := r.Projection
	if name == "" {
		name = MainProjection
	}
	seqs, err := Checkpoints(ctx, r.Pool, name)
	if err != nil {
		return nil, readErr(err, "queries")
	}
	return seqs, nil
}

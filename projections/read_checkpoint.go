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
}

var _ queries.CheckpointReader = CheckpointReads{}

// Checkpoint returns the projection's last applied stream sequence, 0 when
// it has none yet. It returns an error matching domain.ErrUnavailable when
// the database cannot be reached.
func (r CheckpointReads) Checkpoint(ctx context.Context) (uint64, error) {
	name := r.Projection
	if name == "" {
		name = MainProjection
	}
	seq, err := Checkpoint(ctx, r.Pool, name)
	if err != nil {
		return 0, readErr(err, "queries")
	}
	return seq, nil
}

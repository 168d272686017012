package projections

import (
	"context"

	"github.com/orderengine/engine/queries"
)

// Statuses gives the dashboard each Runner's checkpoint and lag.
type Statuses struct{ Runners []*Runner }

var _ queries.ProjectionStatus = Statuses{}

// Projections returns name, checkpoint and lag of every Runner; it fails as
// Runner.Status does.
func (s Statuses) Projections(ctx context.Context) ([]queries.ProjectionInfo, error) {
	reports, err := Admin{Runners: s.Runners}.Projections(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]queries.ProjectionInfo, len(reports))
	for i, r := range reports {
		out[i] = queries.ProjectionInfo{Name: r.Name, Checkpoint: r.Checkpoint, Lag: r.Lag}
	}
	return out, nil
}

package projections

import (
	"context"

	"github.com/orderengine/engine/queries"
)

// Statuses gives the dashboard each Runner's checkpoint, lag, state and
// dead letters.
type Statuses struct {
	Runners []*Runner
	// Rebuilds, when set, marks a projection being rebuilt as such.
	Rebuilds *Rebuilds
}

var _ queries.ProjectionStatus = Statuses{}

// Projections returns the status of every Runner; it fails as
// Runner.Status does.
func (s Statuses) Projections(ctx context.Context) ([]queries.ProjectionInfo, error) {
	reports, err := Admin{Runners: s.Runners, Rebuilds: s.Rebuilds}.Projections(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]queries.ProjectionInfo, len(reports))
	for i, r := range reports {
		out[i] = queries.ProjectionInfo{Name: r.Name, Checkpoint: r.Checkpoint, Lag: r.Lag, State: r.State, DeadLetters: r.DeadLetters}
	}
	return out, nil
}

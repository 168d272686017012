package projections

import (
	"cmp"
	"context"
	"slices"

	"github.com/cockroachdb/errors"
	"github.com/jackc/pgx/v5"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/queries"
)

// Admin serves the admin endpoints from the running projections.
type Admin struct {
	Runners []*Runner
	// Rebuilds, when set, marks a projection being rebuilt with state
	// StateRebuilding.
	Rebuilds *Rebuilds
}

var _ queries.ProjectionAdmin = Admin{}

// Projections reports every Runner's Status, in the order of Runners. It
// returns an error matching domain.ErrUnavailable when the database cannot
// be reached.
func (a Admin) Projections(ctx context.Context) ([]queries.ProjectionReport, error) {
	out := make([]queries.ProjectionReport, 0, len(a.Runners))
	for _, r := range a.Runners {
		s, err := r.Status(ctx)
		if err != nil {
			return nil, err
		}
		if a.Rebuilds != nil && a.Rebuilds.Rebuilding(s.Name) {
			s.State = StateRebuilding
		}
		out = append(out, queries.ProjectionReport(s))
	}
	return out, nil
}

// DeadLetters returns the dead letters of every Runner's projection, newest
// first; with unresolvedOnly, only the unresolved ones.
func (a Admin) DeadLetters(ctx context.Context, unresolvedOnly bool) ([]queries.DeadLetterReport, error) {
	var out []queries.DeadLetterReport
	for _, r := range a.Runners {
		rows, err := r.pool.Query(ctx, `SELECT `+deadLetterColumns+` FROM rm.dead_letters
WHERE projection = $1 AND (NOT $2 OR resolved_at IS NULL) ORDER BY created_at DESC, id DESC`, r.name, unresolvedOnly)
		if err != nil {
			return nil, readErr(err, "read dead letters of projection %s", r.name)
		}
		dead, err := pgx.CollectRows(rows, scanDeadLetter)
		if err != nil {
			return nil, readErr(err, "read dead letters of projection %s", r.name)
		}
		out = append(out, dead...)
	}
	slices.SortStableFunc(out, func(a, b queries.DeadLetterReport) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), cmp.Compare(b.ID, a.ID))
	})
	return out, nil
}

// Retry applies dead letter id again, through the Runner of its
// projection, and returns it as it stands after. An unknown id (or one of a
// projection without a Runner here) matches domain.ErrNotFound; an event
// that still cannot be applied matches queries.ErrRetryFailed, with the
// attempt recorded as Runner.Retry does.
func (a Admin) Retry(ctx context.Context, id int64) (queries.DeadLetterReport, error) {
	d, r, err := a.find(ctx, id)
	if err != nil {
		return queries.DeadLetterReport{}, err
	}
	var failure error
	if err := r.retryTx(ctx, id, &failure); err != nil {
		return queries.DeadLetterReport{}, errors.Wrapf(err, "retry dead letter %d", id)
	}
	if failure != nil {
		// As in Runner.Retry: the transaction that tried was rolled back.
		_, err := r.pool.Exec(ctx, `UPDATE rm.dead_letters SET attempts = attempts + 1, error = $2 WHERE id = $1`,
			id, storableText(failure.Error()))
		if err != nil {
			return queries.DeadLetterReport{}, errors.Wrapf(err, "record failed retry of dead letter %d", id)
		}
		return queries.DeadLetterReport{}, errors.Mark(errors.Wrapf(failure, "retry dead letter %d", id), queries.ErrRetryFailed)
	}
	d, _, err = a.find(ctx, id)
	return d, err
}

// find returns dead letter id and the Runner of its projection.
func (a Admin) find(ctx context.Context, id int64) (queries.DeadLetterReport, *Runner, error) {
	for _, r := range a.Runners {
		rows, err := r.pool.Query(ctx, `SELECT `+deadLetterColumns+` FROM rm.dead_letters WHERE id = $1`, id)
		if err != nil {
			return queries.DeadLetterReport{}, nil, readErr(err, "read dead letter %d", id)
		}
		d, err := pgx.CollectExactlyOneRow(rows, scanDeadLetter)
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		}
		if err != nil {
			return queries.DeadLetterReport{}, nil, readErr(err, "read dead letter %d", id)
		}
		for _, pr := range a.Runners {
			if pr.name == d.Projection && pr.pool == r.pool {
				return d, pr, nil
			}
		}
	}
	return queries.DeadLetterReport{}, nil, errors.Wrapf(domain.ErrNotFound, "no dead letter %d", id)
}

const deadLetterColumns = `id, projection, shard, seq, subject, event_type, error, attempts, envelope, created_at, resolved_at`

func scanDeadLetter(row pgx.CollectableRow) (queries.DeadLetterReport, error) {
	var (
		d   queries.DeadLetterReport
		seq int64
		env []byte
	)
	err := row.Scan(&d.ID, &d.Projection, &d.Shard, &seq, &d.Subject, &d.EventType, &d.Error, &d.Attempts, &env,
		&d.CreatedAt, &d.ResolvedAt)
	d.Seq, d.Envelope = uint64(seq), env
	return d, err
}

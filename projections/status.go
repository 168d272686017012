package projections

import (
	"context"
	"time"
)

// The states of a Runner, as Status reports them.
const (
	// StateStarting: Run has not yet reached the stream.
	StateStarting = "starting"
	// StateLive: the projection has applied everything in the stream.
	StateLive = "live"
	// StateCatchingUp: events remain in the stream after the last one
	// applied.
	StateCatchingUp = "catching_up"
	// StateInterrupted: Postgres or JetStream failed; Run is waiting to
	// resume from the checkpoint.
	StateInterrupted = "interrupted"
	// StateStopped: Run has returned.
	StateStopped = "stopped"
)

// ProjectionStatus is how far a projection is and how it is doing.
type ProjectionStatus struct {
	Name string `json:"name"`
	// Checkpoint is the last stream sequence applied, from rm.checkpoints:
	// of shard 0 (the one stream of a one-shard store).
	Checkpoint uint64 `json:"checkpoint"`
	// Checkpoints is, per shard, the last sequence of its stream applied.
	Checkpoints []uint64 `json:"checkpoints"`
	// Lag is how many of the projection's events remain in the stream
	// after the last one applied, as last seen; 0 when idle.
	Lag uint64 `json:"lag"`
	// LagSeconds is how long ago the last applied event occurred, while
	// Lag is above 0; 0 otherwise (and while unknown).
	LagSeconds float64 `json:"lag_seconds"`
	// State is one of StateStarting, StateLive, StateCatchingUp,
	// StateInterrupted and StateStopped; Admin reports StateRebuilding
	// while a rebuild of the projection runs.
	State string `json:"state"`
	// DeadLetters counts the projection's unresolved dead letters.
	DeadLetters int `json:"dead_letters"`
}

// batchInfo is what the stream tells about the last message of a batch.
type batchInfo struct {
	// pending is how many messages matching the consumer's filter
	// remained in the stream after it when it was delivered.
	pending uint64
	// stored is when JetStream stored it; zero when unknown.
	stored time.Time
}

// progress is the Runner's in-memory view of itself, guarded by its mu.
type progress struct {
	state string
	lag   uint64
	// lastAt is when the last applied event occurred; zero when unknown.
	lastAt time.Time
}

// Name returns the name of the Runner's projection.
func (r *Runner) Name() string { return r.name }

func (r *Runner) setState(k int, s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.st[k].state = s
}

// resumed records the lag of shard k at the creation of a consumer.
func (r *Runner) resumed(k int, pending uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.st[k].lag = pending
	r.st[k].state = stateFor(pending)
}

// applied records a committed batch.
func (r *Runner) applied(p prepared) {
	at := p.info.stored
	if n := len(p.evs); n > 0 && !p.evs[n-1].env.OccurredAt.IsZero() {
		at = p.evs[n-1].env.OccurredAt
	}
	k := 0
	switch {
	case len(p.events) > 0:
		k = p.events[0].Shard
	case len(p.evs) > 0:
		k = p.evs[0].Shard
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.st[k].lag = p.info.pending
	r.st[k].state = stateFor(p.info.pending)
	if !at.IsZero() {
		r.st[k].lastAt = at
	}
}

// stateRank orders the states from the best to the worst: the projection
// as a whole is in the worst state of its shards.
var stateRank = map[string]int{StateLive: 0, StateCatchingUp: 1, StateStarting: 2, StateInterrupted: 3, StateStopped: 4}

// overall folds the shards' progress into the projection's: the worst
// state (stopped only when every shard is), the lags summed, and the
// oldest last event among the shards that lag.
func overall(sts []progress) progress {
	var out progress
	stopped := 0
	for _, st := range sts {
		if st.state == StateStopped {
			stopped++
			continue
		}
		if out.state == "" || stateRank[st.state] > stateRank[out.state] {
			out.state = st.state
		}
		out.lag += st.lag
		if st.lag > 0 && !st.lastAt.IsZero() && (out.lastAt.IsZero() || st.lastAt.Before(out.lastAt)) {
			out.lastAt = st.lastAt
		}
	}
	if stopped == len(sts) {
		out.state = StateStopped
	}
	return out
}

func stateFor(lag uint64) string {
	if lag == 0 {
		return StateLive
	}
	return StateCatchingUp
}

// Status returns the projection's state and lag as the Runner last saw
// them, with its checkpoint and the count of its unresolved dead letters
// read from Postgres (so both are right even before Run's first batch). It
// returns an error matching domain.ErrUnavailable when the database
// cannot be reached.
func (r *Runner) Status(ctx context.Context) (ProjectionStatus, error) {
	var dead int
	err := r.pool.QueryRow(ctx, `SELECT count(*) FROM rm.dead_letters WHERE projection = $1 AND resolved_at IS NULL`, r.name).Scan(&dead)
	if err != nil {
		return ProjectionStatus{}, readErr(err, "read status of projection %s", r.name)
	}
	cps, err := Checkpoints(ctx, r.pool, r.name)
	if err != nil {
		return ProjectionStatus{}, readErr(err, "read status of projection %s", r.name)
	}
	full := make([]uint64, len(r.st))
	for k := range full {
		full[k] = at(cps, k)
	}
	r.mu.Lock()
	st := overall(r.st)
	r.mu.Unlock()
	s := ProjectionStatus{Name: r.name, Checkpoint: at(cps, 0), Checkpoints: full, Lag: st.lag, State: st.state, DeadLetters: dead}
	if st.lag > 0 && !st.lastAt.IsZero() {
		s.LagSeconds = max(0, r.now().Sub(st.lastAt).Seconds())
	}
	return s, nil
}

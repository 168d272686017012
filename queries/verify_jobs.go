package queries

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/google/uuid"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/eventstore"
)

// States of a verification job.
const (
	VerifyRunning = "running"
	VerifyDone    = "done"
	VerifyFailed  = "failed"
)

// keptVerifyJobs bounds the finished jobs whose status stays readable.
const keptVerifyJobs = 16

// VerifyJobs runs audit verifications in the background, at most one at a
// time: verifying reads the whole store, which on a large one takes longer
// than any request may wait, and two at once would only halve each other's
// speed. A request that finds one running joins it.
type VerifyJobs struct {
	life context.Context
	v    Verifier
	c    ReplayComparer
	log  *slog.Logger

	mu      sync.Mutex
	running *verifyJob
	jobs    map[string]*verifyJob
	order   []string // ids oldest first, for forgetting finished jobs
}

// NewVerifyJobs runs verifications of v (and, with c not nil, of the read
// models against a replay) until life is canceled; a job running then
// fails.
func NewVerifyJobs(life context.Context, v Verifier, c ReplayComparer, log *slog.Logger) *VerifyJobs {
	return &VerifyJobs{life: life, v: v, c: c, log: orDiscard(log), jobs: map[string]*verifyJob{}}
}

type verifyJob struct {
	id      string
	started time.Time
	checked atomic.Uint64
	phase   atomic.Value // string
	done    chan struct{}
	// Set before done is closed.
	finished time.Time
	report   VerifyReport
	err      error
}

// VerifyJobStatus is the answer of GET /v1/audit/verify/jobs/{id}.
type VerifyJobStatus struct {
	ID    string `json:"id"`
	State string `json:"state"`
	// Phase is "chains" while the hash chains are read, then "read_models"
	// while the read models are compared with a replay.
	Phase         string     `json:"phase,omitempty"`
	EventsChecked uint64     `json:"events_checked"`
	StartedAt     time.Time  `json:"started_at"`
	FinishedAt    *time.Time `json:"finished_at,omitempty"`
	// Result is the report, once done.
	Result *VerifyReport `json:"result,omitempty"`
	// Error says why a failed job stopped.
	Error string `json:"error,omitempty"`
}

// start returns the running job, or starts one.
func (j *VerifyJobs) start() *verifyJob {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.running != nil {
		return j.running
	}
	job := &verifyJob{id: uuid.NewString(), started: time.Now().UTC(), done: make(chan struct{})}
	job.phase.Store("chains")
	j.running = job
	j.jobs[job.id] = job
	j.order = append(j.order, job.id)
	for len(j.order) > keptVerifyJobs {
		old := j.order[0]
		if j.jobs[old] == j.running {
			break
		}
		delete(j.jobs, old)
		j.order = j.order[1:]
	}
	go j.run(job)
	return job
}

func (j *VerifyJobs) run(job *verifyJob) {
	rep, err := j.verify(job)
	j.mu.Lock()
	job.finished, job.report, job.err = time.Now().UTC(), rep, err
	j.running = nil
	j.mu.Unlock()
	close(job.done)
	switch {
	case err != nil:
		j.log.Warn("audit verify failed", "job", job.id, "err", err)
	case !rep.OK:
		j.log.Warn("audit verify found problems", "job", job.id, "chain_problems", len(rep.Problems),
			"omitted", rep.ProblemsOmitted, "read_model_differences", len(rep.ReadModelDifferences))
	}
}

func (j *VerifyJobs) verify(job *verifyJob) (VerifyReport, error) {
	chains, err := j.v.VerifyChains(j.life, func(done uint64) { job.checked.Store(done) })
	if err != nil {
		return VerifyReport{}, err
	}
	if chains.Problems == nil {
		chains.Problems = []eventstore.Problem{}
	}
	job.checked.Store(chains.EventsChecked)
	rep := VerifyReport{VerifyReport: chains}
	if j.c == nil {
		return rep, nil
	}
	job.phase.Store("read_models")
	diffs, err := j.c.CompareWithReplay(j.life)
	if err != nil {
		return VerifyReport{}, err
	}
	rep.ReadModelsCompared = true
	rep.ReadModelDifferences = diffs
	if len(diffs) > 0 {
		rep.OK = false
	}
	return rep, nil
}

// job returns the job with id, if it is still kept.
func (j *VerifyJobs) job(id string) (*verifyJob, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	job, ok := j.jobs[id]
	return job, ok
}

// status is the job as the status resource shows it.
func (j *VerifyJobs) status(job *verifyJob) VerifyJobStatus {
	s := VerifyJobStatus{ID: job.id, State: VerifyRunning, EventsChecked: job.checked.Load(), StartedAt: job.started}
	s.Phase, _ = job.phase.Load().(string)
	select {
	case <-job.done:
	default:
		return s
	}
	phase := s.Phase
	s.Phase = ""
	s.FinishedAt = &job.finished
	if job.err != nil {
		s.State = VerifyFailed
		s.Error = jobError(j.life, phase, job.err)
		return s
	}
	s.State = VerifyDone
	s.Result = &job.report
	return s
}

// jobError says why a job failed in words fit for its caller.
func jobError(life context.Context, phase string, err error) string {
	switch {
	case life.Err() != nil:
		return "the engine shut down during verification; start another"
	case errors.Is(err, domain.ErrUnavailable) && phase == "chains": // only the event store is read
		return "the event store became unavailable during verification; start another"
	case errors.Is(err, domain.ErrUnavailable):
		return "the event store or the read-model database became unavailable during verification; start another"
	}
	return "verification failed; the engine's log has the reason"
}

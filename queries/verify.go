package queries

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/internal/httpx"
)

// Verifier checks every aggregate's hash chain in the event store.
type Verifier interface {
	VerifyChains(ctx context.Context, progress func(done uint64)) (eventstore.VerifyReport, error)
}

var _ Verifier = (*eventstore.Store)(nil)

// VerifyReport is what GET /v1/audit/verify answers: the hash-chain check
// and, when the read models are there, their comparison with a fresh replay.
type VerifyReport struct {
	eventstore.VerifyReport
	// ReadModelDifferences are the read-model rows that differ from a replay
	// of the whole store; absent when no read models were compared.
	ReadModelDifferences []Difference `json:"read_model_differences,omitempty"`
	ReadModelsCompared   bool         `json:"read_models_compared,omitempty"`
}

// Verification waits: at most DefaultVerifyWait for the answer, and never
// past verifyMargin before the request's deadline, so that a long
// verification is answered 202 with its job, never cut off as a 503.
const (
	DefaultVerifyWait = 10 * time.Second
	verifyMargin      = time.Second
)

// VerifyJobPath is where a verification job's status is read.
const VerifyJobPath = "/v1/audit/verify/jobs/"

// HandleVerify serves GET /v1/audit/verify: it starts a verification (or
// joins the one running) and waits for it a while. Done in time, it answers
// 200 with the report, {"ok", "events_checked", "aggregates", "problems":
// [...], "read_models_compared", "read_model_differences": [...]}; ok is
// false on any broken chain or differing row (a 200 all the same), and an
// unreadable store or database is the usual 503. Still running, it answers
// 202 with Location: /v1/audit/verify/jobs/{id} and the job's status.
func HandleVerify(jobs *VerifyJobs, log *slog.Logger, opts ...Option) http.HandlerFunc {
	cfg := newConfig(opts)
	log = orDiscard(log)
	return func(w http.ResponseWriter, r *http.Request) {
		if err := newParams(r).err(); err != nil {
			httpx.Fail(w, r, log, err)
			return
		}
		job := jobs.start()
		wait := cfg.verifyWait
		if dl, ok := r.Context().Deadline(); ok {
			wait = min(wait, time.Until(dl)-verifyMargin)
		}
		if wait > 0 {
			t := time.NewTimer(wait)
			defer t.Stop()
			select {
			case <-job.done:
				if job.err != nil {
					httpx.Fail(w, r, log, job.err)
					return
				}
				httpx.WriteJSON(w, http.StatusOK, job.report)
				return
			case <-t.C:
			case <-r.Context().Done():
				return // the client left; the job goes on
			}
		}
		accepted(w, jobs, job)
	}
}

// HandleStartVerify serves POST /v1/audit/verify: it starts a verification
// (or joins the one running) and answers 202 with its status resource at
// once, for callers that would rather poll than wait.
func HandleStartVerify(jobs *VerifyJobs, log *slog.Logger) http.HandlerFunc {
	log = orDiscard(log)
	return func(w http.ResponseWriter, r *http.Request) {
		if err := newParams(r).err(); err != nil {
			httpx.Fail(w, r, log, err)
			return
		}
		accepted(w, jobs, jobs.start())
	}
}

func accepted(w http.ResponseWriter, jobs *VerifyJobs, job *verifyJob) {
	w.Header().Set("Location", VerifyJobPath+job.id)
	w.Header().Set("Retry-After", strconv.Itoa(1))
	httpx.WriteJSON(w, http.StatusAccepted, jobs.status(job))
}

// HandleVerifyJob serves GET /v1/audit/verify/jobs/{id}: the job's state
// (running, done or failed), the events checked so far and, once done, the
// report. A job the engine no longer keeps (it keeps the last 16, until it
// restarts) is a 404.
func HandleVerifyJob(jobs *VerifyJobs, log *slog.Logger) http.HandlerFunc {
	log = orDiscard(log)
	return func(w http.ResponseWriter, r *http.Request) {
		if err := newParams(r).err(); err != nil {
			httpx.Fail(w, r, log, err)
			return
		}
		job, ok := jobs.job(chi.URLParam(r, "id"))
		if !ok {
			httpx.WriteProblem(w, httpx.NewProblem(http.StatusNotFound, "not_found", "no such verification job"))
			return
		}
		httpx.WriteJSON(w, http.StatusOK, jobs.status(job))
	}
}

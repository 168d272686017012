package queries

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/go-chi/chi/v5"

	"github.com/orderengine/engine/internal/httpx"
)

// ProjectionAdmin is what the admin endpoints need from the projections.
type ProjectionAdmin interface {
	// Projections reports every projection, in a stable order.
	Projections(ctx context.Context) ([]ProjectionReport, error)
	// DeadLetters returns the dead letters of every projection, newest
	// first; with unresolvedOnly, only those not resolved yet.
	DeadLetters(ctx context.Context, unresolvedOnly bool) ([]DeadLetterReport, error)
	// Retry applies dead letter id again and returns it as it stands
	// after. An unknown id is an error matching domain.ErrNotFound; an
	// event that still cannot be applied is an error matching
	// ErrRetryFailed, and the attempt is recorded.
	Retry(ctx context.Context, id int64) (DeadLetterReport, error)
}

// ErrRetryFailed marks a retried dead letter that could not be applied;
// its message says why.
var ErrRetryFailed = errors.New("retry failed")

// ProjectionReport is one element of GET /v1/admin/projections.
type ProjectionReport struct {
	Name       string `json:"name"`
	Checkpoint uint64 `json:"checkpoint"`
	// Checkpoints is, per shard of the event store, the last sequence of
	// its stream applied; Checkpoint is shard 0's.
	Checkpoints []uint64 `json:"checkpoints"`
	Lag         uint64   `json:"lag"`
	LagSeconds  float64  `json:"lag_seconds"`
	State       string   `json:"state"`
	DeadLetters int      `json:"dead_letters"`
}

// DeadLetterReport is an event a projection could not apply.
type DeadLetterReport struct {
	ID         int64  `json:"id"`
	Projection string `json:"projection"`
	// Shard is the event-store shard whose stream Seq counts in.
	Shard   int    `json:"shard"`
	Seq     uint64 `json:"seq"`
	Subject string `json:"subject"`
	// EventType is empty when the envelope could not be decoded.
	EventType  string          `json:"event_type"`
	Error      string          `json:"error"`
	Attempts   int             `json:"attempts"`
	CreatedAt  time.Time       `json:"created_at"`
	ResolvedAt *time.Time      `json:"resolved_at"`
	Envelope   json.RawMessage `json:"envelope"`
}

// DeadLetterList is the answer of GET /v1/admin/dead-letters.
type DeadLetterList struct {
	DeadLetters []DeadLetterReport `json:"dead_letters"`
}

// HandleListProjections answers GET /v1/admin/projections with a JSON array
// of every projection's checkpoint, lag, state and unresolved dead letters.
func HandleListProjections(a ProjectionAdmin, log *slog.Logger) http.HandlerFunc {
	log = orDiscard(log)
	return func(w http.ResponseWriter, req *http.Request) {
		if err := newParams(req).err(); err != nil {
			fail(w, req, log, err)
			return
		}
		out, err := a.Projections(req.Context())
		if err != nil {
			fail(w, req, log, err)
			return
		}
		if out == nil {
			out = []ProjectionReport{}
		}
		w.Header().Set("Cache-Control", "no-store")
		httpx.WriteJSON(w, http.StatusOK, out)
	}
}

// HandleListDeadLetters answers GET /v1/admin/dead-letters?unresolved= with
// the dead letters newest first; unresolved=true keeps the unresolved ones.
// Bad or unknown parameters are a 422.
func HandleListDeadLetters(a ProjectionAdmin, log *slog.Logger) http.HandlerFunc {
	log = orDiscard(log)
	return func(w http.ResponseWriter, req *http.Request) {
		p := newParams(req, "unresolved")
		unresolved := false
		switch p.str("unresolved") {
		case "", "false":
		case "true":
			unresolved = true
		default:
			p.set("unresolved", "must be true or false")
		}
		if err := p.err(); err != nil {
			fail(w, req, log, err)
			return
		}
		dead, err := a.DeadLetters(req.Context(), unresolved)
		if err != nil {
			fail(w, req, log, err)
			return
		}
		if dead == nil {
			dead = []DeadLetterReport{}
		}
		w.Header().Set("Cache-Control", "no-store")
		httpx.WriteJSON(w, http.StatusOK, DeadLetterList{DeadLetters: dead})
	}
}

// HandleRetryDeadLetter answers POST /v1/admin/dead-letters/{id}/retry with
// the dead letter after a successful retry (resolved_at set). An id that is
// not a positive integer, or unknown, is a 404; a retry that fails is a 409
// retry_failed whose detail says why (the dead letter stays, with one more
// attempt).
func HandleRetryDeadLetter(a ProjectionAdmin, log *slog.Logger) http.HandlerFunc {
	log = orDiscard(log)
	return func(w http.ResponseWriter, req *http.Request) {
		id, err := strconv.ParseInt(chi.URLParam(req, "id"), 10, 64)
		if err != nil || id < 1 {
			httpx.WriteProblem(w, httpx.NewProblem(http.StatusNotFound, "not_found", "no such dead letter"))
			return
		}
		if err := newParams(req).err(); err != nil {
			fail(w, req, log, err)
			return
		}
		d, err := a.Retry(req.Context(), id)
		if errors.Is(err, ErrRetryFailed) {
			msg := err.Error()
			for _, h := range errors.GetAllHints(err) {
				msg += " (" + h + ")"
			}
			httpx.WriteProblem(w, httpx.NewProblem(http.StatusConflict, "retry_failed", msg))
			return
		}
		if err != nil {
			fail(w, req, log, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, d)
	}
}

package queries

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/go-chi/chi/v5"

	"github.com/orderengine/engine/internal/httpx"
)

// ErrRebuildInProgress marks a rebuild asked for while another runs.
var ErrRebuildInProgress = errors.New("a rebuild is in progress")

// The states of RebuildReport.
const (
	RebuildIdle       = "idle"
	RebuildRunning    = "rebuilding"
	RebuildSucceeded  = "rebuilt"
	RebuildFailed     = "failed"
	rebuildInProgress = "rebuild_in_progress"
)

// ProjectionRebuilder is what the rebuild endpoints need.
type ProjectionRebuilder interface {
	// StartRebuild starts rebuilding projection name in the background.
	// An unknown name matches domain.ErrNotFound; a rebuild already
	// running matches ErrRebuildInProgress.
	StartRebuild(ctx context.Context, name string) error
	// RebuildStatus reports projection name's last or current rebuild.
	// An unknown name matches domain.ErrNotFound.
	RebuildStatus(ctx context.Context, name string) (RebuildReport, error)
}

// RebuildReport is a projection's current or last rebuild, as started in
// this process.
type RebuildReport struct {
	Name string `json:"name"`
	// State is RebuildIdle (none since the start), RebuildRunning,
	// RebuildSucceeded or RebuildFailed.
	State string `json:"state"`
	// EventsApplied of EventsTotal, the events in the stream.
	EventsApplied uint64     `json:"events_applied"`
	EventsTotal   uint64     `json:"events_total"`
	StartedAt     *time.Time `json:"started_at,omitempty"`
	FinishedAt    *time.Time `json:"finished_at,omitempty"`
	// Error says why a failed rebuild failed.
	Error string `json:"error,omitempty"`
}

// RebuildStarted is the answer of POST /v1/admin/projections/{name}/rebuild.
type RebuildStarted struct {
	Name  string `json:"name"`
	State string `json:"state"`
}

// HandleRebuildProjection serves POST /v1/admin/projections/{name}/rebuild:
// it starts the rebuild in the background and answers 202
// {"name", "state": "rebuilding"}; the read model keeps serving the old data
// until the rebuilt one takes over. An unknown projection is a 404, a
// rebuild already running a 409 rebuild_in_progress.
func HandleRebuildProjection(b ProjectionRebuilder, log *slog.Logger) http.HandlerFunc {
	log = orDiscard(log)
	return func(w http.ResponseWriter, r *http.Request) {
		name := chi.URLParam(r, "name")
		if err := newParams(r).err(); err != nil {
			fail(w, r, log, err)
			return
		}
		err := b.StartRebuild(r.Context(), name)
		if errors.Is(err, ErrRebuildInProgress) {
			httpx.WriteProblem(w, httpx.NewProblem(http.StatusConflict, rebuildInProgress,
				"a rebuild is already running; wait for it to finish"))
			return
		}
		if err != nil {
			fail(w, r, log, err)
			return
		}
		w.Header().Set("Location", "/v1/admin/projections/"+name+"/rebuild")
		httpx.WriteJSON(w, http.StatusAccepted, RebuildStarted{Name: name, State: RebuildRunning})
	}
}

// HandleRebuildStatus serves GET /v1/admin/projections/{name}/rebuild: the
// progress of the running rebuild, or how the last one ended. An unknown
// projection is a 404.
func HandleRebuildStatus(b ProjectionRebuilder, log *slog.Logger) http.HandlerFunc {
	log = orDiscard(log)
	return func(w http.ResponseWriter, r *http.Request) {
		if err := newParams(r).err(); err != nil {
			fail(w, r, log, err)
			return
		}
		rep, err := b.RebuildStatus(r.Context(), chi.URLParam(r, "name"))
		if err != nil {
			fail(w, r, log, err)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		httpx.WriteJSON(w, http.StatusOK, rep)
	}
}

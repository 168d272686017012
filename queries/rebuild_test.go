package queries_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/errors"
	"github.com/go-chi/chi/v5"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/queries"
)

// fakeRebuilder runs no rebuild: a started one stays running until finish.
type fakeRebuilder struct {
	mu      sync.Mutex
	running bool
	failing error
}

func (f *fakeRebuilder) StartRebuild(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.failing != nil:
		return f.failing
	case name != "main":
		return errors.Wrapf(domain.ErrNotFound, "no projection %q", name)
	case f.running:
		return errors.Wrap(queries.ErrRebuildInProgress, "rebuild")
	}
	f.running = true
	return nil
}

func (f *fakeRebuilder) RebuildStatus(_ context.Context, name string) (queries.RebuildReport, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if name != "main" {
		return queries.RebuildReport{}, errors.Wrapf(domain.ErrNotFound, "no projection %q", name)
	}
	if f.running {
		return queries.RebuildReport{Name: name, State: queries.RebuildRunning, EventsApplied: 5, EventsTotal: 10}, nil
	}
	return queries.RebuildReport{Name: name, State: queries.RebuildIdle}, nil
}

func rebuildRoutes(b queries.ProjectionRebuilder) http.Handler {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r := chi.NewRouter()
	r.Post("/v1/admin/projections/{name}/rebuild", queries.HandleRebuildProjection(b, log))
	r.Get("/v1/admin/projections/{name}/rebuild", queries.HandleRebuildStatus(b, log))
	return r
}

func TestHandleRebuildProjection(t *testing.T) {
	t.Parallel()
	b := &fakeRebuilder{}
	h := rebuildRoutes(b)
	get := func(path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec
	}

	rec := get("/v1/admin/projections/main/rebuild")
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"state":"idle"`) {
		t.Errorf("status before: %d %s", rec.Code, rec.Body)
	}
	rec = adminPost(t, h, "/v1/admin/projections/main/rebuild")
	var started queries.RebuildStarted
	if rec.Code != http.StatusAccepted || json.Unmarshal(rec.Body.Bytes(), &started) != nil ||
		started != (queries.RebuildStarted{Name: "main", State: "rebuilding"}) {
		t.Fatalf("start: %d %s", rec.Code, rec.Body)
	}
	if loc := rec.Header().Get("Location"); loc != "/v1/admin/projections/main/rebuild" {
		t.Errorf("Location %q", loc)
	}
	rec = adminPost(t, h, "/v1/admin/projections/main/rebuild")
	if rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), `"code":"rebuild_in_progress"`) {
		t.Errorf("second start: %d %s", rec.Code, rec.Body)
	}
	rec = get("/v1/admin/projections/main/rebuild")
	var rep queries.RebuildReport
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &rep) != nil ||
		rep.State != "rebuilding" || rep.EventsApplied != 5 || rep.EventsTotal != 10 {
		t.Errorf("status while running: %d %s", rec.Code, rec.Body)
	}
	for _, method := range []string{http.MethodPost, http.MethodGet} {
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, "/v1/admin/projections/nope/rebuild", nil))
		if rec.Code != http.StatusNotFound {
			t.Errorf("%s unknown projection: %d %s", method, rec.Code, rec.Body)
		}
	}
	rec = adminPost(t, h, "/v1/admin/projections/main/rebuild?x=1")
	if rec.Code != http.StatusUnprocessableEntity {
		t.Errorf("unknown parameter: %d %s", rec.Code, rec.Body)
	}
	b.failing = errors.Mark(errors.New("down"), domain.ErrUnavailable)
	rec = adminPost(t, rebuildRoutes(b), "/v1/admin/projections/main/rebuild")
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("database down: %d %s", rec.Code, rec.Body)
	}
}

package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderengine/engine/internal/pglocal"
	"github.com/orderengine/engine/projections"
)

// TestReadyzFailsWhileAProjectionCannotWork: the event store and the
// database answer, but the projection's own connection is gone, so reads
// would go stale: /readyz says not ready.
func TestReadyzFailsWhileAProjectionCannotWork(t *testing.T) {
	e := newAPIEnv(t)
	url := pglocal.ForTest(t)
	db, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	broken, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	broken.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ready := func(runners ...*projections.Runner) int {
		srv := httptest.NewServer(newServer(serverDeps{app: e.app, store: e.store, db: db, runners: runners, tokens: nil, log: log}))
		defer srv.Close()
		resp, err := http.Get(srv.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	if got := ready(); got != http.StatusOK {
		t.Fatalf("/readyz without projections: %d", got)
	}
	if got := ready(projections.NewRunner(e.store, broken, log)); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz with a projection that cannot reach its database: %d, want 503", got)
	}
}

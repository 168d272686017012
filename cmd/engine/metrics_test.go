package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderengine/engine/internal/httpx"
	"github.com/orderengine/engine/internal/pglocal"
	"github.com/orderengine/engine/internal/testnats"
	"github.com/orderengine/engine/projections"
)

// TestMetricsKeepProjectionSeriesWhilePostgresIsDown: an alert on the
// projection's lag must not go silent exactly when its database does; the
// series stay, with their last values, and engine_projection_status_up
// says they are stale. /metrics wants a viewer token.
func TestMetricsKeepProjectionSeriesWhilePostgresIsDown(t *testing.T) {
	e := newAPIEnv(t)
	ctx := context.Background()
	url := pglocal.ForTest(t)
	db, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if err := projections.ApplySchema(ctx, db); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `INSERT INTO rm.checkpoints (projection, last_seq) VALUES ($1, 42)`, projections.MainProjection); err != nil {
		t.Fatal(err)
	}
	tokens, err := httpx.ParseTokens(tokClient + ":client," + tokViewer + ":viewer")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httptest.NewServer(newServer(serverDeps{app: e.app, store: e.store, db: db,
		runners: []*projections.Runner{projections.NewRunner(e.store, db, log)}, tokens: tokens, log: log}))
	t.Cleanup(srv.Close)
	env := &apiEnv{srv: srv}

	wantProblem(t, env.do(t, apiCall{method: http.MethodGet, path: "/metrics"}), http.StatusUnauthorized, "unauthorized")
	wantProblem(t, env.do(t, apiCall{method: http.MethodGet, path: "/metrics", token: tokClient}), http.StatusForbidden, "forbidden")
	checkpoint := `engine_projection_checkpoint{projection="main"}`
	up := `engine_projection_status_up{projection="main"}`
	if got := metricValue(t, env, checkpoint); got != 42 {
		t.Fatalf("%s = %v with Postgres up, want 42", checkpoint, got)
	}
	if got := metricValue(t, env, up); got != 1 {
		t.Fatalf("%s = %v with Postgres up, want 1", up, got)
	}

	// Postgres goes away for this database: its sessions end and no new
	// one is let in.
	name := db.Config().ConnConfig.Database
	admin, err := pgx.Connect(ctx, mustWithDatabase(t, url, "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = admin.Close(ctx) }()
	t.Cleanup(func() {
		_, _ = admin.Exec(context.Background(), "ALTER DATABASE "+pgx.Identifier{name}.Sanitize()+" ALLOW_CONNECTIONS true")
	})
	if _, err := admin.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{name}.Sanitize()+" ALLOW_CONNECTIONS false"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name); err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(ctx); err == nil {
		t.Fatal("the database still answers")
	}
	scraped := env.do(t, apiCall{method: http.MethodGet, path: "/metrics", token: tokViewer})
	if !bytes.Contains(scraped.body, []byte("\n"+up+" 0\n")) {
		t.Errorf("/metrics with Postgres down has no %s 0", up)
	}
	if got := metricValue(t, env, checkpoint); got != 42 {
		t.Errorf("%s = %v with Postgres down, want the last value read, 42", checkpoint, got)
	}
}

func mustWithDatabase(t *testing.T, url, name string) string {
	t.Helper()
	u, err := pglocal.WithDatabase(url, name)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestMetricsShowTheExpiryBacklog: due expiry timers that no worker has
// handled yet show in engine_expiry_timers_pending and
// engine_expiry_overdue_seconds, and both fall back to 0 once handled.
func TestMetricsShowTheExpiryBacklog(t *testing.T) {
	ns, nc := testnats.Start(t)
	e := startEngineOn(t, ns)
	release := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- e.store.ConsumeExpiries(ctx, e.app.Log, func(ctx context.Context, _ string) (time.Duration, error) {
			select {
			case <-release: // a worker that cannot keep up, until released
			case <-ctx.Done():
			}
			return 0, ctx.Err()
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ConsumeExpiries: %v", err)
		}
	})
	const fired = 5
	for i := range fired {
		id := fmt.Sprintf("metrics-%d", i)
		_, subject := e.store.Locate(e.store.ShardOf(id), "expire."+id)
		if _, err := nc.Request(subject, nil, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "the backlog shows the fired timers", func() bool {
		return metricValue(t, e, "engine_expiry_timers_pending") == fired
	})
	time.Sleep(1100 * time.Millisecond)
	if age := metricValue(t, e, "engine_expiry_overdue_seconds"); age < 1 {
		t.Errorf("engine_expiry_overdue_seconds = %v, want at least 1 s after the timers were due", age)
	}
	close(release)
	waitUntil(t, "the backlog is empty once handled", func() bool {
		return metricValue(t, e, "engine_expiry_timers_pending") == 0 && metricValue(t, e, "engine_expiry_overdue_seconds") == 0
	})
}

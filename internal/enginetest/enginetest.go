// Package enginetest starts, for tests, the pieces of a real engine: an
// embedded NATS server, an event store on it, the command side, and a
// private Postgres database holding the schema. Every piece is real (no
// mocks) and is closed when the test ends, so a test names only what it
// does with them. Only tests import it.
package enginetest

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	orderengine "github.com/orderengine/engine"
	"github.com/orderengine/engine/commands"
	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/internal/pglocal"
	"github.com/orderengine/engine/internal/testnats"
)

// Engine is one engine's command side on an embedded NATS server of its
// own, with no worker running.
type Engine struct {
	NATS  *server.Server
	Conn  *nats.Conn
	Store *eventstore.Store
	App   *commands.App
}

// Start runs an embedded NATS server (testnats.Start), opens an event store
// on it (OpenStore) and builds a command side (NewApp) whose reservations
// last ttl.
func Start(tb testing.TB, ttl time.Duration) *Engine {
	tb.Helper()
	ns, nc := testnats.Start(tb)
	store := OpenStore(tb, nc)
	return &Engine{NATS: ns, Conn: nc, Store: store, App: NewApp(store, ttl)}
}

// OpenStore opens an event store on nc with the suites' shard count
// (testnats.Shards), closed when the test ends.
func OpenStore(tb testing.TB, nc *nats.Conn) *eventstore.Store {
	tb.Helper()
	store, err := eventstore.Open(context.Background(), nc, eventstore.Options{Shards: testnats.Shards()})
	if err != nil {
		tb.Fatalf("open event store: %v", err)
	}
	tb.Cleanup(store.Close)
	return store
}

// NewApp builds a command side on store whose reservations last ttl; its
// log is discarded: tests assert on results, not on log lines.
func NewApp(store *eventstore.Store, ttl time.Duration) *commands.App {
	return commands.NewApp(store, slog.New(slog.NewTextHandler(io.Discard, nil)), ttl)
}

// Postgres returns a pool on a fresh database of the private test Postgres
// (pglocal.ForTest) holding the schema, closed when the test ends. The
// package's TestMain must call pglocal.Main.
func Postgres(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pglocal.ForTest(tb))
	if err != nil {
		tb.Fatalf("connect to Postgres: %v", err)
	}
	tb.Cleanup(pool.Close)
	if _, err := pool.Exec(ctx, orderengine.Schema); err != nil {
		tb.Fatalf("apply schema: %v", err)
	}
	return pool
}

// Run runs fn in the background until the test ends, or until the returned
// stop is called: stop cancels fn's context, waits for fn to return, and
// fails the test if fn returned an error. Workers return nil when their
// context ends, so any error is one.
func Run(tb testing.TB, fn func(context.Context) error) (stop func()) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				tb.Errorf("background worker: %v", err)
			}
		})
	}
	tb.Cleanup(stop)
	return stop
}

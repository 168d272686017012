// Package host is the handle through which the in-process drivers of an
// engine (internal/bench, internal/demo) start and reach engines without
// importing cmd/engine: cmd/engine owns the wiring (configuration, data
// directory lock, store, Postgres, HTTP server) and hands it to them as a
// Wiring, so the drivers see only what they use and no import runs back up.
package host

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/time/rate"

	"github.com/orderengine/engine/commands"
	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/internal/httpx"
	"github.com/orderengine/engine/projections"
)

// Spec is what a driver chooses of an engine's configuration (serve's
// environment, API.md); everything else is serve's default.
type Spec struct {
	// HTTPAddr is the API listener, e.g. 127.0.0.1:0 for a free port.
	HTTPAddr       string
	DataDir        string
	DatabaseURL    string
	ReservationTTL time.Duration
	Limits         Limits
	// CommitLinger and CommitMaxBatch tune the group commit; zero: the
	// store's defaults.
	CommitLinger   time.Duration
	CommitMaxBatch int
	// EventShards is ENGINE_EVENT_SHARDS for a new store; 0: the default.
	EventShards int
	// FeedOff is ENGINE_FEED=off: no feed forwarder, no webhook delivery.
	FeedOff bool
	// DirectOff places every order through reservation requests, never
	// directly (commands.App.DirectPlacement): engine bench -direct=false.
	DirectOff bool
}

// Limits are the engine's request limits (ENGINE_RATE_* and friends);
// zero fields take serve's defaults.
type Limits struct {
	PerToken         rate.Limit
	Burst            int
	MaxInFlight      int
	MaxReadsInFlight int
	RequestTimeout   time.Duration
	MaxStreams       int
}

// Running is what a driver gets once an engine it started listens.
type Running struct {
	// URL is the API's base URL, e.g. http://127.0.0.1:8080.
	URL   string
	App   *commands.App
	Store *eventstore.Store
	Pool  *pgxpool.Pool
	// Runner is the main projection's runner.
	Runner *projections.Runner
}

// Configured is an engine configured from the environment as serve reads
// it, not yet started.
type Configured struct {
	// APITokens is ENGINE_API_TOKENS as given ("" when unset).
	APITokens      string
	ReservationTTL time.Duration
	// Run runs the engine as serve does until ctx ends, calling ready once
	// it listens, then shuts it down in order.
	Run func(ctx context.Context, tokens *httpx.Tokens, stdout io.Writer, log *slog.Logger, ready func(Running)) error
}

// Wiring is cmd/engine's wiring, handed to a driver.
type Wiring struct {
	// Run runs an engine configured by spec as serve does until ctx ends,
	// calling ready once it listens; errors are serve's.
	Run func(ctx context.Context, spec Spec, tokens *httpx.Tokens, stdout io.Writer, log *slog.Logger, ready func(Running)) error
	// Load reads serve's configuration from getenv; errors name the
	// variable that is wrong.
	Load func(getenv func(string) string) (Configured, error)
	// OpenStore connects to the event store spec names (the embedded server
	// under its data directory) as serve does; closeStore closes it.
	OpenStore func(ctx context.Context, spec Spec, name string) (store *eventstore.Store, closeStore func(), err error)
	// OpenDatabase opens the read models' Postgres spec names as serve
	// does, schema applied; closeDB closes it.
	OpenDatabase func(ctx context.Context, spec Spec, stdout io.Writer, log *slog.Logger) (pool *pgxpool.Pool, closeDB func(), err error)
	// ParseFlags parses args into fs for subcommand name as every engine
	// subcommand does (usage on -h, at most maxArgs arguments); after -h it
	// returns an error the caller hands back, which cmd/engine turns into
	// success.
	ParseFlags func(fs *flag.FlagSet, name string, args []string, maxArgs int, stdout, stderr io.Writer) error
	// ParseEventShards reads an ENGINE_EVENT_SHARDS value; "" is 0.
	ParseEventShards func(v string) (int, error)
}

// LogOptions are the options of every log handler the engine makes: level,
// and durations written as "82ms" rather than JSON's raw nanoseconds
// ("took":82000000), which nobody reads at a glance.
func LogOptions(level slog.Level) *slog.HandlerOptions {
	return &slog.HandlerOptions{Level: level, ReplaceAttr: readableDuration}
}

// readableDuration is a slog ReplaceAttr: a time.Duration value becomes
// its String form, which time.ParseDuration reads back.
func readableDuration(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.String(a.Key, a.Value.Duration().String())
	}
	return a
}

// PlainEvery is how often a progress line is written anew when its output
// is not a terminal.
const PlainEvery = 5 * time.Second

// IsTerminal reports whether w is a character device, where a carriage
// return rewrites the line instead of piling up in a file.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Every calls f each period until ctx ends: the drivers' periodic chores
// (restocks, samples, reports).
func Every(ctx context.Context, period time.Duration, f func(context.Context)) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f(ctx)
		}
	}
}

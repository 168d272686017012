package main

import (
	"context"
	"io"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderengine/engine/commands"
	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/internal/host"
	"github.com/orderengine/engine/internal/httpx"
)

// wiring hands engine bench and engine demo (internal/bench, internal/demo)
// this package's wiring, so that they start engines exactly as serve does
// without importing the main package.
func wiring() host.Wiring {
	return host.Wiring{
		Run: func(ctx context.Context, spec host.Spec, tokens *httpx.Tokens, stdout io.Writer, log *slog.Logger, ready func(host.Running)) error {
			return runEngine(ctx, configOf(spec), tokens, stdout, log, ready)
		},
		Load: func(getenv func(string) string) (host.Configured, error) {
			cfg, err := loadConfig(getenv)
			if err != nil {
				return host.Configured{}, err
			}
			return host.Configured{APITokens: cfg.APITokens, ReservationTTL: cfg.ReservationTTL,
				Run: func(ctx context.Context, tokens *httpx.Tokens, stdout io.Writer, log *slog.Logger, ready func(host.Running)) error {
					return runEngine(ctx, cfg, tokens, stdout, log, ready)
				}}, nil
		},
		OpenStore: func(ctx context.Context, spec host.Spec, name string) (*eventstore.Store, func(), error) {
			return openStore(ctx, configOf(spec), name)
		},
		OpenDatabase: func(ctx context.Context, spec host.Spec, stdout io.Writer, log *slog.Logger) (*pgxpool.Pool, func(), error) {
			return openDatabase(ctx, configOf(spec), stdout, log)
		},
		ParseFlags:       parseFlags,
		ParseEventShards: parseEventShards,
	}
}

// configOf is serve's configuration for spec: what spec leaves out (an
// external NATS, API tokens, pprof and metrics listeners) stays unset,
// but for the reservation backlog limit, which keeps serve's default so
// that bench and demo engines refuse orders as a served one would.
func configOf(spec host.Spec) config {
	return config{
		HTTPAddr:       spec.HTTPAddr,
		DataDir:        spec.DataDir,
		DatabaseURL:    spec.DatabaseURL,
		ReservationTTL: spec.ReservationTTL,
		Limits:         limitConfig(spec.Limits),
		CommitLinger:   spec.CommitLinger,
		CommitMaxBatch: spec.CommitMaxBatch,
		EventShards:    spec.EventShards,
		Feed:           feedConfig{Off: spec.FeedOff},
		BacklogLimit:   commands.DefaultBacklogLimit,
		DirectOff:      spec.DirectOff,
	}
}

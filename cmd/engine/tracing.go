package main

import (
	"context"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/orderengine/engine/internal/tracing"
)

// startTracing turns OpenTelemetry tracing on when cfg's environment
// names an OTLP endpoint (tracing.Setup); stop flushes the spans still
// buffered, waiting at most a few seconds for the collector, and turns
// tracing off. Without an endpoint it does nothing.
func startTracing(ctx context.Context, cfg config, log *slog.Logger) (stop func(), err error) {
	if cfg.OTelEnv == nil {
		return func() {}, nil
	}
	shutdown, err := tracing.Setup(ctx, cfg.OTelEnv, buildVersion(), log)
	if err != nil {
		return nil, err
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := shutdown(ctx); err != nil {
			log.Warn("tracing: spans lost at shutdown", "err", err)
		}
	}, nil
}

// buildVersion is the engine's module version, for the service.version
// of its spans: "(devel)" when built from a checkout.
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.Main.Version
	}
	return "unknown"
}

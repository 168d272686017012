package main

import (
	"strconv"
	"time"

	"github.com/cockroachdb/errors"
)

// config is the environment of API.md, read once at start.
type config struct {
	HTTPAddr       string
	DataDir        string
	NATSURL        string
	DatabaseURL    string
	APITokens      string
	ReservationTTL time.Duration
	Limits         limitConfig
	NATSAuth       natsAuth
	// PprofAddr is the admin listener for net/http/pprof; empty: none.
	PprofAddr string
	// MetricsAddr is a listener for /metrics without a token; empty: none.
	MetricsAddr string
	// CommitLinger and CommitMaxBatch tune the group commit
	// (eventstore.Options.Linger, MaxBatch); zero: the store's defaults.
	CommitLinger   time.Duration
	CommitMaxBatch int
	// EventShards is how many streams a new event store is spread over
	// (ENGINE_EVENT_SHARDS); 0 means eventstore.DefaultShards. An existing
	// store keeps its own count.
	EventShards int
	// Feed configures the integration feed and webhooks (feedconfig.go).
	Feed feedConfig
	// OTelEnv is the environment tracing.Setup reads: tracing is on when
	// it names an OTLP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT). Nil: off.
	OTelEnv func(string) string
	// BacklogLimit is ENGINE_RESERVATION_BACKLOG_LIMIT: the reservation
	// backlog of one partition past which new orders on its SKUs get 503;
	// 0 means no limit.
	BacklogLimit uint64
	// DirectOff is ENGINE_DIRECT_PLACEMENT=off: every order is placed
	// through reservation requests (commands.App.DirectPlacement), as
	// before direct placement; engine bench -direct=false sets it too.
	DirectOff bool
}

func loadConfig(getenv func(string) string) (config, error) {
	c := config{
		HTTPAddr:    or(getenv("ENGINE_HTTP_ADDR"), "127.0.0.1:8080"),
		DataDir:     or(getenv("ENGINE_DATA_DIR"), "./data"),
		NATSURL:     getenv("NATS_URL"),
		DatabaseURL: getenv("DATABASE_URL"),
		APITokens:   getenv("ENGINE_API_TOKENS"),
		PprofAddr:   getenv("ENGINE_PPROF_ADDR"),
		MetricsAddr: getenv("ENGINE_METRICS_ADDR"),
		OTelEnv:     getenv,
	}
	ttl, err := time.ParseDuration(or(getenv("ENGINE_RESERVATION_TTL"), "15m"))
	if err != nil || ttl <= 0 {
		return config{}, errors.WithHint(errors.Newf("ENGINE_RESERVATION_TTL %q is not a positive duration", getenv("ENGINE_RESERVATION_TTL")),
			"use a Go duration such as 15m or 90s")
	}
	c.ReservationTTL = ttl
	if v := getenv("ENGINE_COMMIT_LINGER"); v != "" {
		if c.CommitLinger, err = time.ParseDuration(v); err != nil {
			return config{}, envError("ENGINE_COMMIT_LINGER", v, "a Go duration such as 1ms or 300us (negative: no wait)")
		}
	}
	if v := getenv("ENGINE_COMMIT_MAX_BATCH"); v != "" {
		if c.CommitMaxBatch, err = strconv.Atoi(v); err != nil || c.CommitMaxBatch < 1 || c.CommitMaxBatch > 1000 {
			return config{}, envError("ENGINE_COMMIT_MAX_BATCH", v, "a number of messages from 1 to 1000")
		}
	}
	if c.Limits, err = parseLimits(getenv); err != nil {
		return config{}, err
	}
	if c.BacklogLimit, err = parseBacklogLimit(getenv("ENGINE_RESERVATION_BACKLOG_LIMIT")); err != nil {
		return config{}, err
	}
	if c.NATSAuth, err = loadNATSAuth(getenv); err != nil {
		return config{}, err
	}
	if c.EventShards, err = parseEventShards(getenv("ENGINE_EVENT_SHARDS")); err != nil {
		return config{}, err
	}
	if c.Feed, err = parseFeedConfig(getenv); err != nil {
		return config{}, err
	}
	switch v := getenv("ENGINE_DIRECT_PLACEMENT"); v {
	case "", "on":
	case "off":
		c.DirectOff = true
	default:
		return config{}, envError("ENGINE_DIRECT_PLACEMENT", v, "on or off")
	}
	return c, nil
}

func envError(name, value, want string) error {
	return errors.WithHint(errors.Newf("%s %q is not valid", name, value), "use "+want)
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// parseEventShards reads ENGINE_EVENT_SHARDS; empty is 0 (the default).
func parseEventShards(v string) (int, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 64 {
		return 0, envError("ENGINE_EVENT_SHARDS", v, "a whole number from 1 to 64")
	}
	return n, nil
}

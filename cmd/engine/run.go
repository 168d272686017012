package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/orderengine/engine/commands"
	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/feed"
	"github.com/orderengine/engine/internal/bench"
	"github.com/orderengine/engine/internal/demo"
	"github.com/orderengine/engine/internal/host"
	"github.com/orderengine/engine/internal/httpx"
	"github.com/orderengine/engine/projections"
	"github.com/orderengine/engine/webhooks"
)

const usage = `usage: engine [serve|verify|export|rebuild NAME|bench|demo]

  serve   run the order engine (default); configuration from the environment, see README.md.
          Without NATS_URL or DATABASE_URL it keeps its event store or its private Postgres
          under ENGINE_DATA_DIR and locks that directory (ENGINE_DATA_DIR/engine.lock) while it
          runs: a second engine, verify, export or rebuild on it fails at once, naming the
          pid. After a crash (kill -9, power loss) just start it again: the lock is free, and
          a private Postgres the dead engine left running is stopped and started afresh.
  verify  check every aggregate's hash chain, and the read models against a replay of the
          store (with DATABASE_URL or the private Postgres); exits 1 on any problem.
          Connects like serve (NATS_URL, or the embedded server under ENGINE_DATA_DIR,
          which must not be in use by a running engine: verify a running one via
          GET /v1/audit/verify, or via its NATS_URL and DATABASE_URL)
  export  write every event in store order as NDJSON to stdout (or -o FILE), with
          progress on stderr; -from-seq N, -to-seq N bound it. Connects like verify.
  rebuild NAME  rebuild projection NAME (main) from the whole event store into fresh tables
          and swap them in; queries keep being answered meanwhile. Progress on stderr;
          exits 1 on failure, leaving the read models as they were. Connects like verify
          (DATABASE_URL, or the private Postgres under ENGINE_DATA_DIR): rebuild a running
          engine's read models via its NATS_URL and DATABASE_URL.
  bench   measure the engine against its baselines, in one run, on this machine: starts
          fresh engines (embedded NATS, sync_interval: always) and a private Postgres (or
          DATABASE_URL's server, where it creates a database per scenario), drives load over
          HTTP on loopback and prints a table; -scenario place,flash-sale,reserve-drain,
          rebuild,e2e or all (default), -json FILE; engine bench -h lists every flag.
  demo    run the engine like serve, seed a catalogue of SKUs and drive a steady synthetic load
          (orders, payments, shipments, deliveries, cancellations, expiries, flash sales) until
          interrupted, so the dashboard at / moves; prints a ready-to-open link. -rate N orders/s
          (20), -skus N (24), -flash-every D (45s), -pace D (1s between an order's steps).
          ENGINE_RESERVATION_TTL defaults to 30s here, so unpaid orders expire while you watch.
`

// run is the whole program; main only calls it, tests call it too.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 {
		cmd = args[0]
	}
	switch cmd {
	case "serve":
		return serve(ctx, args[min(1, len(args)):], getenv, stdout, stderr)
	case "export":
		return export(ctx, args[1:], getenv, stdout, stderr)
	case "verify":
		return verify(ctx, args[1:], getenv, stdout, stderr)
	case "rebuild":
		return rebuild(ctx, args[1:], getenv, stdout, stderr)
	case "bench":
		return helped(bench.Run(ctx, wiring(), args[1:], getenv, stdout, stderr))
	case "demo":
		return helped(demo.Run(ctx, wiring(), args[1:], getenv, stdout, stderr))
	case "help", "-h", "--help":
		_, _ = fmt.Fprint(stdout, usage)
		return nil
	default:
		_, _ = fmt.Fprint(stderr, usage)
		return errors.Newf("unknown command %q", cmd)
	}
}

// serve runs the engine until ctx ends or SIGINT/SIGTERM arrives.
func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if err := parseFlags(flag.NewFlagSet("serve", flag.ContinueOnError), "serve", args, 0, stdout, stderr); err != nil {
		return helped(err)
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, host.LogOptions(slog.LevelInfo)))
	tokens, err := loadTokens(cfg.APITokens, cfg.DataDir, stdout)
	if err != nil {
		return err
	}
	return runEngine(ctx, cfg, tokens, stdout, log, nil)
}

// runEngine runs the engine until ctx ends, calling ready (when not nil)
// once it listens, then shuts down in order: stop accepting and finish the
// requests in flight, let the reservation workers finish their batches,
// stop the committer, drain and close NATS (the embedded server last), so
// every acknowledged command is on disk and none is half-written.
//
// With an embedded NATS or a private Postgres it holds ENGINE_DATA_DIR's
// lock from start to end (claimDataDir), so that a second engine on the
// directory fails at once and a crashed engine's leftovers can be cleaned up.
func runEngine(ctx context.Context, cfg config, tokens *httpx.Tokens, stdout io.Writer, log *slog.Logger, ready func(host.Running)) error {
	if cfg.NATSURL == "" || cfg.DatabaseURL == "" {
		lock, err := claimDataDir(cfg.DataDir, "the engine")
		if err != nil {
			return err
		}
		defer lock.release()
	}
	stopTracing, err := startTracing(ctx, cfg, log)
	if err != nil {
		return err
	}
	// Deferred first, so run last: the spans of the final batches are
	// flushed too.
	defer stopTracing()
	store, closeStore, err := openStore(ctx, cfg, "engine")
	if err != nil {
		return err
	}
	defer closeStore()
	if asked := cfg.EventShards; asked != 0 && asked != store.Shards() {
		// An existing store keeps its count: a store from before sharding
		// stays one stream, so an upgrade never splits a history.
		log.Warn("the event store keeps the shard count it was created with", "shards", store.Shards(), "ENGINE_EVENT_SHARDS", asked)
	}
	log.Info("event store open", "shards", store.Shards())
	if r := cfg.Feed.Reader; r != nil {
		if err := store.EnsureFeedConsumer(ctx, r.User); err != nil {
			return err
		}
		_, _ = fmt.Fprintf(stdout, "feed readers: nats://%s as user %s, durable consumer %s on stream %s, JetStream API prefix %s (docs/feed.md)\n",
			cfg.Feed.Listen, r.User, r.User, eventstore.FeedStream, eventstore.FeedAPIPrefix)
	}
	pool, closeDB, err := openDatabase(ctx, cfg, stdout, log)
	if err != nil {
		return err
	}
	defer closeDB()

	app := commands.NewApp(store, log, cfg.ReservationTTL)
	app.Backlog = commands.NewBacklog(store, cfg.BacklogLimit, 0, log)
	app.DirectPlacement = !cfg.DirectOff
	workersCtx, stopWorkers := context.WithCancel(context.Background())
	defer stopWorkers()
	workers := make(chan error, 4)
	nworkers := 2
	go func() { workers <- app.RunWorkers(workersCtx) }()
	// Closed before the pool (defers run last-first): the pool's Close waits
	// for a rebuild's connection.
	rebuilds := projections.NewRebuilds(store, pool, log)
	defer rebuilds.Close()
	runner := projections.NewRunner(store, pool, log)
	go func() { workers <- runner.Run(workersCtx) }()
	// The feed forwarder and the webhook workers read the store behind
	// the write path, as the projections do.
	var hooks *webhooks.Service
	if !cfg.Feed.Off {
		fwd := &feed.Forwarder{Store: store, Log: log, Yield: writePathBehind(app, store)}
		hooks = webhooks.New(store, pool, log, cfg.Feed.Webhooks)
		go func() { workers <- fwd.Run(workersCtx) }()
		go func() { workers <- hooks.Run(workersCtx) }()
		nworkers += 2
	}
	streams, endStreams := context.WithCancel(context.Background())
	defer endStreams()
	deps := serverDeps{app: app, store: store, db: pool, runners: []*projections.Runner{runner},
		rebuilds: rebuilds, tokens: tokens, log: log, limits: cfg.Limits, streams: streams, webhooks: hooks}
	deps.metrics = metricsHandler(deps)
	srv := &http.Server{
		Handler:           newServer(deps),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	// Shutdown waits for requests to finish but never ends a stream itself.
	srv.RegisterOnShutdown(endStreams)
	stopPprof, err := startPprof(cfg.PprofAddr, stdout, log)
	if err != nil {
		return err
	}
	defer stopPprof()
	stopMetrics, err := startMetrics(cfg.MetricsAddr, deps.metrics, stdout, log)
	if err != nil {
		return err
	}
	defer stopMetrics()
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return errors.Wrapf(err, "listen on %s", cfg.HTTPAddr)
	}
	_, _ = fmt.Fprintf(stdout, "engine listening on http://%s\n", ln.Addr())
	log.Info("engine started", "addr", ln.Addr().String(), "embedded_nats", cfg.NATSURL == "", "data_dir", cfg.DataDir)

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if ready != nil {
		ready(host.Running{URL: "http://" + ln.Addr().String(), App: app, Store: store, Pool: pool, Runner: runner})
	}
	select {
	case err := <-served:
		return errors.Wrap(err, "http server")
	case err := <-workers:
		_ = srv.Close()
		stopWorkers()
		err = errors.Wrap(err, "workers")
		for range nworkers - 1 {
			err = errors.CombineErrors(err, <-workers)
		}
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing requests in flight")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return errors.Wrap(err, "http shutdown")
	}
	log.Info("shutting down: finishing the reservation and projection batches in hand")
	stopWorkers()
	var werr error
	for range nworkers {
		werr = errors.CombineErrors(werr, <-workers)
	}
	return werr
}

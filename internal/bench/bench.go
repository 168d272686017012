package bench

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/errors"
	"golang.org/x/time/rate"

	"github.com/orderengine/engine/commands"
	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/internal/host"
	"github.com/orderengine/engine/internal/httpx"
	"github.com/orderengine/engine/internal/pglocal"
)

// Scenarios are engine bench's scenarios, in the order "all" runs them.
var Scenarios = []string{"place", "flash-sale", "reserve-drain", "rebuild", "e2e"}

// longScenarios run only when named: they take minutes by design.
var longScenarios = []string{"soak"}

// benchOptions are engine bench's flags.
type benchOptions struct {
	scenarios  []string
	jsonPath   string
	dir        string
	cpuProfile string
	// commitLinger and commitMaxBatch tune the engines' group commit.
	commitLinger   time.Duration
	commitMaxBatch int
	// feed runs the engines' feed forwarder and webhook service, as serve
	// does by default (ENGINE_FEED).
	feed bool
	// direct places single-line orders directly (commands.App.DirectPlacement).
	direct bool

	placeConcurrency, placeSKUs int
	placeDuration               time.Duration

	flashStock, flashOrders, flashConcurrency int

	drainBacklog int

	rebuildEvents int

	e2eRate     int
	e2eDuration time.Duration

	soakRate, soakRestock            int
	soakDuration, soakAfter, soakTTL time.Duration
	soakRestockEvery, soakSample     time.Duration
	memProfile                       string
}

func parseBenchOptions(w host.Wiring, args []string, stdout, stderr io.Writer) (benchOptions, error) {
	var o benchOptions
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	scenario := fs.String("scenario", "all", "scenarios to run, comma-separated: "+strings.Join(Scenarios, ", ")+", or all; and "+strings.Join(longScenarios, ", ")+", which all leaves out")
	fs.StringVar(&o.jsonPath, "json", "", "also write the results as JSON to this file")
	fs.StringVar(&o.dir, "dir", "", "work directory for the engines' data and the private Postgres (default: a temporary directory, removed at the end)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	fs.DurationVar(&o.commitLinger, "commit-linger", 0, "the engines' group-commit linger (ENGINE_COMMIT_LINGER; default: the store's)")
	fs.IntVar(&o.commitMaxBatch, "commit-max-batch", 0, "the engines' group-commit batch bound in messages (ENGINE_COMMIT_MAX_BATCH; default: the store's)")
	fs.BoolVar(&o.direct, "direct", true, "place single-line orders directly, in their SKU's decision batch, as serve does; -direct=false places every order through reservation requests (the path before direct placement)")
	fs.BoolVar(&o.feed, "feed", true, "run the engines' integration feed forwarder and webhook service, as serve does (ENGINE_FEED); -feed=false measures without them")
	fs.IntVar(&o.placeConcurrency, "place-concurrency", 64, "place: concurrent clients (and raw publishers)")
	fs.IntVar(&o.placeSKUs, "place-skus", 100, "place: SKUs the orders spread over")
	fs.DurationVar(&o.placeDuration, "place-duration", 15*time.Second, "place: how long each side is loaded")
	fs.IntVar(&o.flashStock, "flash-stock", 5000, "flash-sale: units in stock")
	fs.IntVar(&o.flashOrders, "flash-orders", 20000, "flash-sale: single-unit orders placed")
	fs.IntVar(&o.flashConcurrency, "flash-concurrency", 256, "flash-sale: buyers at once (and Postgres clients)")
	fs.IntVar(&o.drainBacklog, "drain-backlog", 100_000, "reserve-drain: requests in the backlog (half can be granted)")
	fs.IntVar(&o.rebuildEvents, "rebuild-events", 1_000_000, "rebuild: events in the store")
	fs.IntVar(&o.e2eRate, "e2e-rate", 1000, "e2e: orders/s")
	fs.DurationVar(&o.e2eDuration, "e2e-duration", 20*time.Second, "e2e: how long the rate is held")
	fs.IntVar(&o.soakRate, "soak-rate", 800, "soak: single-unit orders/s on the one hot SKU, open loop")
	fs.DurationVar(&o.soakDuration, "soak-duration", 5*time.Minute, "soak: how long the rate is held")
	fs.DurationVar(&o.soakAfter, "soak-after", 3*time.Minute, "soak: how long it watches after the load")
	fs.DurationVar(&o.soakTTL, "soak-ttl", 30*time.Second, "soak: the reservation TTL (nobody pays: every grant expires)")
	fs.DurationVar(&o.soakRestockEvery, "soak-restock-every", 10*time.Second, "soak: how often the SKU is restocked")
	fs.IntVar(&o.soakRestock, "soak-restock", 0, "soak: units per restock, and the initial stock (default: soak-rate × soak-restock-every)")
	fs.DurationVar(&o.soakSample, "soak-sample", 10*time.Second, "soak: how often memory and held units are sampled")
	fs.StringVar(&o.memProfile, "memprofile", "", "soak: write a heap profile at every sample to FILE.<seconds>s")
	if err := w.ParseFlags(fs, "bench", args, 0, stdout, stderr); err != nil {
		return o, err
	}
	for _, s := range strings.Split(*scenario, ",") {
		switch s = strings.TrimSpace(s); {
		case s == "all":
			o.scenarios = append(o.scenarios, Scenarios...)
		case slices.Contains(Scenarios, s), slices.Contains(longScenarios, s):
			o.scenarios = append(o.scenarios, s)
		default:
			return o, errors.WithHint(errors.Newf("unknown scenario %q", s), "use one of "+strings.Join(append(Scenarios, longScenarios...), ", ")+" or all")
		}
	}
	for name, v := range map[string]int{"place-concurrency": o.placeConcurrency, "place-skus": o.placeSKUs,
		"flash-stock": o.flashStock, "flash-orders": o.flashOrders, "flash-concurrency": o.flashConcurrency,
		"drain-backlog": o.drainBacklog, "rebuild-events": o.rebuildEvents, "e2e-rate": o.e2eRate, "soak-rate": o.soakRate} {
		if v <= 0 {
			return o, errors.Newf("-%s must be positive, got %d", name, v)
		}
	}
	if o.flashOrders < o.flashStock {
		return o, errors.Newf("-flash-orders (%d) must be at least -flash-stock (%d): a flash sale sells out", o.flashOrders, o.flashStock)
	}
	if o.drainBacklog < 2 {
		return o, errors.New("-drain-backlog must be at least 2")
	}
	if o.placeDuration <= 0 || o.e2eDuration <= 0 {
		return o, errors.New("-place-duration and -e2e-duration must be positive")
	}
	if o.soakDuration <= 0 || o.soakAfter < 0 || o.soakTTL <= 0 || o.soakRestockEvery <= 0 || o.soakSample <= 0 || o.soakRestock < 0 {
		return o, errors.New("-soak-duration, -soak-ttl, -soak-restock-every and -soak-sample must be positive, -soak-after and -soak-restock not negative")
	}
	if o.soakRestock == 0 {
		o.soakRestock = max(1, int(float64(o.soakRate)*o.soakRestockEvery.Seconds()))
	}
	return o, nil
}

// bencher runs the scenarios, each on engines and databases of its own,
// all on one Postgres server and one machine.
type bencher struct {
	// host starts the engines and opens their stores and databases.
	host    host.Wiring
	opts    benchOptions
	stdout  io.Writer
	stderr  io.Writer
	root    string
	results []Result
	// adminURL connects to the Postgres server the scenarios' databases are
	// created on; pgVersion is its version.
	adminURL  string
	pgVersion string
	// given is true when DATABASE_URL named the server: its databases are
	// dropped at the end.
	given     bool
	databases []string
	// shards is ENGINE_EVENT_SHARDS for the scenarios' new stores (0: the
	// default), so the shard count can be measured.
	shards int
}

// Run is `engine bench`: see engine's usage, or engine bench -h. It starts
// its engines through w. After -h it returns w.ParseFlags's error.
func Run(ctx context.Context, w host.Wiring, args []string, getenv func(string) string, stdout, stderr io.Writer) (err error) {
	opts, err := parseBenchOptions(w, args, stdout, stderr)
	if err != nil {
		return err
	}
	b := &bencher{host: w, opts: opts, stdout: stdout, stderr: stderr}
	if b.shards, err = b.host.ParseEventShards(getenv("ENGINE_EVENT_SHARDS")); err != nil {
		return err
	}
	if b.root = opts.dir; b.root == "" {
		if b.root, err = os.MkdirTemp("", "engine-bench-"); err != nil {
			return errors.Wrap(err, "create the bench directory")
		}
		defer func() { _ = os.RemoveAll(b.root) }()
	}
	if b.root, err = filepath.Abs(b.root); err != nil {
		return errors.Wrap(err, "locate the bench directory")
	}
	// MkdirTemp makes it 0700; as root, the private Postgres's user must get in.
	if err := os.MkdirAll(b.root, 0o755); err != nil {
		return errors.Wrap(err, "create the bench directory")
	}
	if err := os.Chmod(b.root, 0o755); err != nil {
		return errors.Wrap(err, "open up the bench directory")
	}
	if opts.cpuProfile != "" {
		stop, err := startCPUProfile(opts.cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	stopPG, err := b.startPostgres(ctx, getenv("DATABASE_URL"))
	if err != nil {
		return err
	}
	defer func() { err = errors.CombineErrors(err, stopPG()) }()

	started := time.Now()
	for _, name := range opts.scenarios {
		_, _ = fmt.Fprintf(stderr, "== %s (event store shards: %d)\n", name, cmp.Or(b.shards, eventstore.DefaultShards))
		if err := b.runScenario(ctx, name); err != nil {
			return errors.Wrapf(err, "scenario %s", name)
		}
	}
	took := time.Since(started)
	b.printTable(took)
	if opts.jsonPath != "" {
		return b.writeJSON(args, started, took)
	}
	return nil
}

func (b *bencher) runScenario(ctx context.Context, name string) error {
	switch name {
	case "place":
		return b.benchPlace(ctx)
	case "flash-sale":
		return b.benchFlashSale(ctx)
	case "reserve-drain":
		return b.benchReserveDrain(ctx)
	case "rebuild":
		return b.benchRebuild(ctx)
	case "e2e":
		return b.benchE2E(ctx)
	case "soak":
		return b.benchSoak(ctx)
	}
	return errors.Newf("unknown scenario %q", name)
}

// startPostgres uses the server DATABASE_URL names, or starts a private one
// under the bench directory. stop drops the databases made on a given
// server, or stops the private one.
func (b *bencher) startPostgres(ctx context.Context, given string) (stop func() error, err error) {
	if given != "" {
		b.adminURL, b.given = given, true
		stop = b.dropDatabases
	} else {
		inst, err := pglocal.StartLoaded(ctx, filepath.Join(b.root, "postgres"))
		if err != nil {
			return nil, errors.WithHint(errors.Wrap(err, "start a private Postgres"), "set DATABASE_URL to benchmark on an existing server")
		}
		b.adminURL, stop = inst.URL("postgres"), inst.Stop
	}
	if b.pgVersion, err = postgresVersion(ctx, b.adminURL); err != nil {
		return nil, errors.CombineErrors(err, stop())
	}
	return stop, nil
}

// database creates a fresh database for a scenario and returns its URL.
func (b *bencher) database(ctx context.Context, scenario string) (string, error) {
	name := "engine_bench_" + strings.ReplaceAll(scenario, "-", "_")
	if err := pglocal.DropDatabaseOn(ctx, b.adminURL, name); err != nil {
		return "", err
	}
	if err := pglocal.CreateDatabaseOn(ctx, b.adminURL, name); err != nil {
		return "", errors.WithHint(err, "the bench creates a database per scenario: DATABASE_URL's role needs CREATEDB")
	}
	b.databases = append(b.databases, name)
	return pglocal.WithDatabase(b.adminURL, name)
}

func (b *bencher) dropDatabases() error {
	var err error
	for _, name := range b.databases {
		err = errors.CombineErrors(err, pglocal.DropDatabaseOn(context.Background(), b.adminURL, name))
	}
	return err
}

// engineConfig is serve's configuration for a scenario's engine: its own
// data directory and database, a free loopback port, and limits that let
// the load through (the bench measures the engine, not its rate limits).
func (b *bencher) engineConfig(scenario, dbURL string) host.Spec {
	return host.Spec{
		HTTPAddr:       "127.0.0.1:0",
		DataDir:        filepath.Join(b.root, scenario),
		DatabaseURL:    dbURL,
		ReservationTTL: 15 * time.Minute,
		Limits:         host.Limits{PerToken: rate.Inf, Burst: 1, MaxInFlight: 100_000, MaxReadsInFlight: 100_000, RequestTimeout: time.Minute},
		CommitLinger:   b.opts.commitLinger,
		CommitMaxBatch: b.opts.commitMaxBatch,
		EventShards:    b.shards,
		FeedOff:        !b.opts.feed,
		DirectOff:      !b.opts.direct,
	}
}

// engineLog writes a scenario's engine logs to a file in the bench
// directory, where they don't break the progress lines.
func (b *bencher) engineLog(scenario string) (*slog.Logger, func(), error) {
	f, err := os.Create(filepath.Join(b.root, scenario+".log"))
	if err != nil {
		return nil, nil, errors.Wrap(err, "create the engine log")
	}
	return slog.New(slog.NewJSONHandler(f, host.LogOptions(slog.LevelWarn))), func() { _ = f.Close() }, nil
}

// parts prepares what a scenario's engine needs: a fresh database, the
// engine log, and serve's configuration for them.
func (b *bencher) parts(ctx context.Context, scenario string) (host.Spec, *slog.Logger, func(), error) {
	dbURL, err := b.database(ctx, scenario)
	if err != nil {
		return host.Spec{}, nil, nil, err
	}
	log, closeLog, err := b.engineLog(scenario)
	if err != nil {
		return host.Spec{}, nil, nil, err
	}
	return b.engineConfig(scenario, dbURL), log, closeLog, nil
}

// headless opens, for a scenario that needs no HTTP API, its parts, the
// event store and a command side with no worker running; closeAll closes
// them.
func (b *bencher) headless(ctx context.Context, scenario string) (cfg host.Spec, log *slog.Logger, app *commands.App, closeAll func(), err error) {
	cfg, log, closeLog, err := b.parts(ctx, scenario)
	if err != nil {
		return cfg, nil, nil, nil, err
	}
	store, closeStore, err := b.host.OpenStore(ctx, cfg, "engine-bench")
	if err != nil {
		closeLog()
		return cfg, nil, nil, nil, err
	}
	return cfg, log, commands.NewApp(store, log, cfg.ReservationTTL), func() { closeStore(); closeLog() }, nil
}

// benchEngine is a scenario's engine, running in this process and
// answering over HTTP on loopback.
type benchEngine struct {
	host.Running
	api   *apiClient
	dbURL string
	stop  func() error
}

// startEngine runs a fresh engine, as serve does, for a scenario; tweaks
// change its configuration first.
func (b *bencher) startEngine(ctx context.Context, scenario string, clients int, tweaks ...func(*host.Spec)) (*benchEngine, error) {
	cfg, log, closeLog, err := b.parts(ctx, scenario)
	if err != nil {
		return nil, err
	}
	for _, t := range tweaks {
		t(&cfg)
	}
	tok, tokens := httpx.GenerateAdminToken()
	ctx, cancel := context.WithCancel(ctx)
	ready := make(chan host.Running, 1)
	done := make(chan error, 1)
	go func() {
		done <- b.host.Run(ctx, cfg, tokens, io.Discard, log, func(r host.Running) { ready <- r })
	}()
	// stop may be called twice: on success, and deferred for errors.
	var once sync.Once
	var stopErr error
	stop := func() error {
		once.Do(func() { cancel(); stopErr = <-done; closeLog() })
		return stopErr
	}
	select {
	case r := <-ready:
		return &benchEngine{Running: r, api: newAPIClient(r.URL, tok, clients), dbURL: cfg.DatabaseURL, stop: stop}, nil
	case err := <-done:
		once.Do(func() { cancel(); closeLog() })
		return nil, errors.Wrap(err, "start the engine")
	}
}

func startCPUProfile(name string) (stop func(), err error) {
	f, err := os.Create(name)
	if err != nil {
		return nil, errors.Wrap(err, "create the CPU profile")
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, errors.Wrap(err, "start the CPU profile")
	}
	return func() { pprof.StopCPUProfile(); _ = f.Close() }, nil
}

// writeJSON writes the machine and every result to the -json file.
func (b *bencher) writeJSON(args []string, started time.Time, took time.Duration) error {
	doc := struct {
		Command   string    `json:"command"`
		StartedAt time.Time `json:"started_at"`
		Seconds   float64   `json:"duration_s"`
		Machine   Machine   `json:"machine"`
		Scenarios []Result  `json:"scenarios"`
	}{"engine bench " + strings.Join(args, " "), started.UTC(), took.Seconds(), b.machine(), b.results}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return errors.Wrap(err, "encode the results")
	}
	return errors.Wrap(os.WriteFile(b.opts.jsonPath, append(data, '\n'), 0o644), "write the results")
}

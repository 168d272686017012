package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/internal/host"
	"github.com/orderengine/engine/projections"
)

// verify runs `engine verify`: it reads every event of the store once and
// checks each aggregate's hash chain, showing progress on stderr, then
// prints a summary and every problem on stdout; then, when there are read
// models, it compares them with a fresh replay (verifyReadModels). It
// returns an error (exit code 1) on a broken chain, a differing row, or a
// store or database it cannot read.
//
// It connects as serve does: to NATS_URL, or to an embedded server on
// ENGINE_DATA_DIR. Whenever it would use ENGINE_DATA_DIR (embedded NATS, or
// the private Postgres there) it takes the directory's lock, so beside a
// running engine on the same directory it fails at once naming that
// engine's pid: verify a running engine through GET /v1/audit/verify, or
// run it on an external NATS_URL and DATABASE_URL and give verify those.
func verify(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if err := parseFlags(flag.NewFlagSet("verify", flag.ContinueOnError), "verify", args, 0, stdout, stderr); err != nil {
		return helped(err)
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	if cfg.NATSURL == "" || (cfg.DatabaseURL == "" && hasPrivatePostgres(cfg)) {
		lock, err := claimDataDir(cfg.DataDir, "engine verify")
		if err != nil {
			return err
		}
		defer lock.release()
	}
	store, closeStore, err := openStore(ctx, cfg, "engine verify")
	if err != nil {
		return err
	}
	defer closeStore()

	start := time.Now()
	bar := newProgressLine(stderr, start, "verifying: %d events checked")
	rep, err := store.VerifyChains(ctx, bar.update)
	bar.finish()
	if err != nil {
		return errors.Wrap(err, "verify the hash chains")
	}
	elapsed := time.Since(start).Round(time.Millisecond)
	var chainErr error
	if rep.OK {
		_, _ = fmt.Fprintf(stdout, "OK: %d events of %d aggregates verified in %s, every hash chain intact\n",
			rep.EventsChecked, rep.Aggregates, elapsed)
	} else {
		n := uint64(len(rep.Problems)) + rep.ProblemsOmitted
		_, _ = fmt.Fprintf(stdout, "BROKEN: %d problem(s) in %d events of %d aggregates (verified in %s)\n",
			n, rep.EventsChecked, rep.Aggregates, elapsed)
		for _, p := range rep.Problems {
			_, _ = fmt.Fprintf(stdout, "%-12s %s seq %d version %d (expected %d): %s\n",
				p.Kind, p.Subject, p.Seq, p.Version, p.ExpectedVersion, p.Detail)
		}
		if rep.ProblemsOmitted > 0 {
			_, _ = fmt.Fprintf(stdout, "... and %d more problem(s) not listed\n", rep.ProblemsOmitted)
		}
		chainErr = errors.Newf("%d problem(s) in the event store's hash chains", n)
	}
	return errors.CombineErrors(chainErr, verifyReadModels(ctx, cfg, store, stdout, stderr))
}

// verifyReadModels replays the whole store into scratch read models and
// compares them row by row with the live ones, when there are read models
// to compare: DATABASE_URL is set, or the private Postgres under
// ENGINE_DATA_DIR exists. It returns an error when any row differs.
func verifyReadModels(ctx context.Context, cfg config, store *eventstore.Store, stdout, stderr io.Writer) error {
	if cfg.DatabaseURL == "" && !hasPrivatePostgres(cfg) {
		_, _ = fmt.Fprintln(stdout, "read models: not compared (no DATABASE_URL and no private Postgres under ENGINE_DATA_DIR)")
		return nil
	}
	log := slog.New(slog.DiscardHandler)
	pool, closeDB, err := openDatabase(ctx, cfg, stderr, log)
	if err != nil {
		return err
	}
	defer closeDB()
	start := time.Now()
	diffs, err := projections.CompareWithReplay(ctx, store, pool, log)
	if err != nil {
		return errors.Wrap(err, "compare the read models with a replay")
	}
	if len(diffs) == 0 {
		_, _ = fmt.Fprintf(stdout, "OK: read models equal a fresh replay of the store (compared in %s)\n", time.Since(start).Round(time.Millisecond))
		return nil
	}
	_, _ = fmt.Fprintf(stdout, "BROKEN: %d read-model row(s) differ from a fresh replay\n", len(diffs))
	for _, d := range diffs {
		_, _ = fmt.Fprintf(stdout, "%s %s: live %s, replayed %s\n", d.Table, d.Key, orNone(d.Live), orNone(d.Replayed))
	}
	return errors.Newf("%d read-model row(s) differ from a replay of the event store", len(diffs))
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// progressLine shows how many events were checked, and how fast, on one
// line that it rewrites at most ten times a second.
type progressLine struct {
	w           io.Writer
	what        string // e.g. "verifying: %d events checked"
	start, last time.Time
	done        uint64
	// plain is set when w is no terminal (a log file, a pipe): a carriage
	// return would garble it, so it gets a whole line every host.PlainEvery.
	plain bool
}

const progressEvery = 100 * time.Millisecond

// newProgressLine shows progress on w, what being the format of the count
// (one %d), followed by the rate.
func newProgressLine(w io.Writer, start time.Time, what string) *progressLine {
	return &progressLine{w: w, what: what, start: start, plain: !host.IsTerminal(w)}
}

// due reports whether the line should be shown again at now.
func (p *progressLine) due(now time.Time) bool {
	every := progressEvery
	if p.plain {
		every = host.PlainEvery
	}
	if now.Sub(p.last) < every {
		return false
	}
	p.last = now
	return true
}

// update is VerifyChains' (and Export's) progress callback.
func (p *progressLine) update(done uint64) {
	p.done = done
	if now := time.Now(); p.due(now) {
		p.show(done, now)
	}
}

// finish shows the final count and ends the line.
func (p *progressLine) finish() {
	p.show(p.done, time.Now())
	p.end()
}

func (p *progressLine) show(done uint64, now time.Time) {
	p.put(p.what+" (%.0f events/s)", done, perSecond(done, p.start, now))
}

// put writes the line: in place on a terminal, as a line of its own
// elsewhere.
func (p *progressLine) put(format string, args ...any) {
	if p.plain {
		_, _ = fmt.Fprintf(p.w, format+"\n", args...)
		return
	}
	// \r returns to the line start; \033[K clears what a longer line left.
	_, _ = fmt.Fprintf(p.w, "\r"+format+"\033[K", args...)
}

// end ends a line rewritten in place.
func (p *progressLine) end() {
	if !p.plain {
		_, _ = io.WriteString(p.w, "\n")
	}
}

// perSecond is done per second since start.
func perSecond(done uint64, start, now time.Time) float64 {
	if d := now.Sub(start).Seconds(); d > 0 {
		return float64(done) / d
	}
	return 0
}

// hasPrivatePostgres reports whether ENGINE_DATA_DIR holds the cluster of a
// private Postgres.
func hasPrivatePostgres(cfg config) bool {
	_, err := os.Stat(filepath.Join(cfg.DataDir, "postgres", "PG_VERSION"))
	return err == nil
}

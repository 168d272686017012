package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"syscall"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/orderengine/engine/internal/host"
	"github.com/orderengine/engine/projections"
)

// rebuild runs `engine rebuild NAME`: it rebuilds projection NAME's read
// models from the whole event store into fresh tables and swaps them in
// (projections.Rebuild: queries keep being answered from the old ones until
// then, and a running engine's projection goes on in the new ones), showing
// progress on stderr, then prints a summary on stdout. It returns an error
// (exit code 1) when the rebuild fails; the read models are then as they
// were.
//
// It connects as verify does (NATS_URL or the embedded server under
// ENGINE_DATA_DIR; DATABASE_URL or the private Postgres there, taking the
// directory's lock when it uses either): to rebuild the read models of a
// running engine, give it that engine's NATS_URL and DATABASE_URL.
func rebuild(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rebuild", flag.ContinueOnError)
	if err := parseFlags(fs, "rebuild", args, 1, stdout, stderr); err != nil {
		return helped(err)
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("rebuild takes one argument: the projection's name (main)")
	}
	name := fs.Arg(0)
	if name != projections.MainProjection {
		return errors.WithHint(errors.Newf("unknown projection %q", name), "the one projection is "+projections.MainProjection)
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	// Only trouble is logged: info lines would break the progress line.
	log := slog.New(slog.NewTextHandler(stderr, host.LogOptions(slog.LevelWarn)))
	if cfg.NATSURL == "" || cfg.DatabaseURL == "" {
		lock, err := claimDataDir(cfg.DataDir, "engine rebuild")
		if err != nil {
			return err
		}
		defer lock.release()
	}
	store, closeStore, err := openStore(ctx, cfg, "engine rebuild")
	if err != nil {
		return err
	}
	defer closeStore()
	pool, closeDB, err := openDatabase(ctx, cfg, stdout, log)
	if err != nil {
		return err
	}
	defer closeDB()

	start := time.Now()
	bar := &rebuildLine{progressLine: newProgressLine(stderr, start, "rebuilding: %d events")}
	err = projections.Rebuild(ctx, store, pool, log, bar.update)
	bar.finish()
	if err != nil {
		return errors.Wrapf(err, "rebuild projection %s", name)
	}
	_, _ = fmt.Fprintf(stdout, "OK: projection %s rebuilt from %d events in %s and swapped in\n",
		name, bar.done, time.Since(start).Round(time.Millisecond))
	return nil
}

// rebuildLine is verify's progressLine with a total: events applied of the
// events to apply, the rate and the time left.
type rebuildLine struct {
	*progressLine
	total uint64
}

// update is Rebuild's progress callback.
func (p *rebuildLine) update(done, total uint64) {
	p.done, p.total = done, total
	if now := time.Now(); p.due(now) {
		p.show(now)
	}
}

// finish shows the final count and ends the line.
func (p *rebuildLine) finish() {
	p.show(time.Now())
	p.end()
}

func (p *rebuildLine) show(now time.Time) {
	r := perSecond(p.done, p.start, now)
	pct := 100.0
	if p.total > 0 {
		pct = 100 * float64(p.done) / float64(p.total)
	}
	eta := "--"
	if r > 0 && p.total >= p.done {
		eta = (time.Duration(float64(p.total-p.done) / r * float64(time.Second))).Round(time.Second).String()
	}
	p.put("rebuilding: %d/%d events (%.0f%%, %.0f events/s, ETA %s)", p.done, p.total, pct, r, eta)
}

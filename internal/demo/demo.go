package demo

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/orderengine/engine/internal/host"
	"github.com/orderengine/engine/internal/httpx"
)

// demoTTL is the reservation TTL of a demo unless ENGINE_RESERVATION_TTL
// says otherwise: short, so abandoned orders expire while one watches.
const demoTTL = "30s"

// Run is `engine demo`: it runs the engine as serve does, through w, and
// drives a synthetic shop against its API until interrupted, so that the
// dashboard has something to show. After -h it returns w.ParseFlags's
// error.
func Run(ctx context.Context, w host.Wiring, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	var p demoParams
	fs.Float64Var(&p.rate, "rate", 20, "orders placed per second (at most 1000)")
	fs.IntVar(&p.skus, "skus", 24, "SKUs in the catalogue (1 to 200)")
	fs.DurationVar(&p.flashEvery, "flash-every", 45*time.Second, "time between two flash sales on one SKU")
	fs.DurationVar(&p.pace, "pace", time.Second, "typical pause between two steps of one order (pay, ship, deliver)")
	if err := w.ParseFlags(fs, "demo", args, 0, stdout, stderr); err != nil {
		return err
	}
	if p.rate <= 0 || p.rate > 1000 || p.skus < 1 || p.skus > 200 || p.flashEvery <= 0 || p.pace <= 0 {
		return errors.WithHint(errors.New("demo: a flag is out of range"), "see engine demo -h")
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cfg, err := w.Load(func(k string) string {
		if v := getenv(k); v != "" || k != "ENGINE_RESERVATION_TTL" {
			return v
		}
		return demoTTL
	})
	if err != nil {
		return err
	}
	// One line per request would bury the demo's own progress lines.
	log := slog.New(slog.NewJSONHandler(stderr, host.LogOptions(slog.LevelWarn)))
	// The load runs with an admin token of its own, never printed when
	// ENGINE_API_TOKENS is set: the configured tokens are the user's.
	var tokens *httpx.Tokens
	p.token, tokens = httpx.GenerateAdminToken()
	link := "#token=" + p.token
	if cfg.APITokens != "" {
		if tokens, err = httpx.ParseTokens(cfg.APITokens + "," + p.token + ":admin"); err != nil {
			return err
		}
		link = " (sign in with a viewer, auditor or admin token of ENGINE_API_TOKENS)"
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	// The load ends with the engine, also when the engine fails on its own.
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	return cfg.Run(ctx, tokens, stdout, log, func(r host.Running) {
		_, _ = fmt.Fprintf(stdout, "dashboard: %s/%s\n", r.URL, link)
		_, _ = fmt.Fprintf(stdout, "demo: %.0f orders/s over %d SKUs, a flash sale every %s, reservations expire after %s; Ctrl-C stops\n",
			p.rate, p.skus, p.flashEvery, cfg.ReservationTTL)
		p.base = r.URL
		wg.Go(func() {
			if err := newDemoLoad(p, stdout, log).run(loadCtx); err != nil && loadCtx.Err() == nil {
				log.Error("demo load stopped", "err", err)
			}
		})
	})
}

package main

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/cockroachdb/errors"
)

// startPprof serves net/http/pprof on its own listener at addr, apart from
// the API (profiles reveal internals and cost CPU, so they are off unless
// ENGINE_PPROF_ADDR is set, and never on the API's port). It returns a
// function that stops it.
func startPprof(addr string, stdout io.Writer, log *slog.Logger) (stop func(), err error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// Profiles take as long as asked (?seconds=30): no write timeout.
	return startSideListener("pprof", addr, "/debug/pprof/", mux, 0, stdout, log)
}

// startMetrics serves /metrics without a token on its own listener at addr
// (ENGINE_METRICS_ADDR, off when empty), for a scraper that cannot send
// one; on the API's port /metrics wants a viewer, auditor or admin token.
// Like pprof it belongs on loopback or a network only operators reach.
func startMetrics(addr string, metrics http.Handler, stdout io.Writer, log *slog.Logger) (stop func(), err error) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	return startSideListener("metrics", addr, "/metrics", mux, 30*time.Second, stdout, log)
}

// startSideListener serves h on addr, apart from the API, until stop; an
// empty addr serves nothing.
func startSideListener(what, addr, path string, h http.Handler, writeTimeout time.Duration, stdout io.Writer, log *slog.Logger) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, errors.Wrapf(err, "listen for %s on %s", what, addr)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: writeTimeout}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error(what+" listener stopped", "err", err)
		}
	}()
	_, _ = fmt.Fprintf(stdout, "%s at http://%s%s\n", what, ln.Addr(), path)
	return func() { _ = srv.Close() }, nil
}

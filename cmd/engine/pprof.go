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
	if addr == "" {
		return func() {}, nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, errors.Wrapf(err, "listen for pprof on %s", addr)
	}
	// Profiles take as long as asked (?seconds=30): no write timeout.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("pprof listener stopped", "err", err)
		}
	}()
	_, _ = fmt.Fprintf(stdout, "pprof at http://%s/debug/pprof/\n", ln.Addr())
	return func() { _ = srv.Close() }, nil
}

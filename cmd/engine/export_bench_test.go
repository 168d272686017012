package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderengine/engine/commands"
	"github.com/orderengine/engine/eventstore"
)

// BenchmarkExport fills a store with BENCH_EXPORT_EVENTS events (default
// 1,000,000: SetOnHand on 10,000 SKUs from 256 appenders) on a nats-server
// running in the benchmark's process, then runs `engine export` against it
// (NATS_URL) in a separate engine process and reports that process's
// events/s and peak RSS: the export reads page by page, so its peak must
// not grow with the store. (The server's own memory is the server's.)
func BenchmarkExport(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("BENCH_EXPORT_EVENTS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	ns, err := eventstore.StartEmbedded(eventstore.EmbeddedOptions{Dir: b.TempDir(), Listen: "127.0.0.1:-1"})
	if err != nil {
		b.Fatal(err)
	}
	defer ns.Shutdown()
	fill(b, ns.ClientURL(), n)
	for range b.N {
		out, err := os.CreateTemp("", "export-*.ndjson")
		if err != nil {
			b.Fatal(err)
		}
		_ = out.Close()
		cmd := exec.Command(os.Args[0], "-test.run=^$", "--", "export", "-o", out.Name())
		cmd.Env = append(os.Environ(), "ENGINE_TEST_RUN_MAIN=1", "ENGINE_DATA_DIR="+b.TempDir(), "NATS_URL="+ns.ClientURL())
		cmd.Stderr = io.Discard
		start := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatalf("engine export: %v", err)
		}
		peak := watchPeakRSS(cmd.Process.Pid)
		if err := cmd.Wait(); err != nil {
			b.Fatalf("engine export: %v", err)
		}
		elapsed := time.Since(start)
		rss := peak()
		lines := countLines(b, out.Name())
		_ = os.Remove(out.Name())
		if lines != n {
			b.Fatalf("exported %d lines, the store holds %d events", lines, n)
		}
		b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
		b.ReportMetric(float64(rss)/1024, "peak-RSS-MiB")
	}
}

// fill appends n events to the store on the server at url.
func fill(b testing.TB, url string, n int) {
	b.Helper()
	ctx := context.Background()
	store, closeStore, err := openStore(ctx, config{NATSURL: url}, "fill")
	if err != nil {
		b.Fatal(err)
	}
	defer closeStore()
	app := commands.NewApp(store, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Hour)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 256 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				_, err := app.SetOnHand(ctx, commands.Meta{CommandID: app.NewID()}, fmt.Sprint("SKU", i%10_000), commands.SetOnHand{OnHand: i})
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func countLines(b *testing.B, path string) int {
	b.Helper()
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	buf := make([]byte, 1<<20)
	n := 0
	for {
		k, err := f.Read(buf)
		for _, c := range buf[:k] {
			if c == '\n' {
				n++
			}
		}
		if err != nil {
			return n
		}
	}
}

// watchPeakRSS samples the process's VmHWM (its own peak resident set) until
// it exits and returns a func giving the last value seen, in KiB. getrusage's
// ru_maxrss is no use here: Linux carries the parent's high-water mark over
// fork and exec, so it reports the benchmark's own size.
func watchPeakRSS(pid int) func() int64 {
	var peak atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
			if err != nil {
				return
			}
			for _, l := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
					kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
					if kb > peak.Load() {
						peak.Store(kb)
					}
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return func() int64 { <-done; return peak.Load() }
}

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
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
		if err := cmd.Run(); err != nil {
			b.Fatalf("engine export: %v", err)
		}
		elapsed := time.Since(start)
		lines := countLines(b, out.Name())
		_ = os.Remove(out.Name())
		if lines != n {
			b.Fatalf("exported %d lines, the store holds %d events", lines, n)
		}
		rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss // KiB
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

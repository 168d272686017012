package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/orderengine/engine/internal/testnats"
)

// TestMetricsShowTheExpiryBacklog: due expiry timers that no worker has
// handled yet show in engine_expiry_timers_pending and
// engine_expiry_overdue_seconds, and both fall back to 0 once handled.
func TestMetricsShowTheExpiryBacklog(t *testing.T) {
	ns, nc := testnats.Start(t)
	e := startEngineOn(t, ns)
	release := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- e.store.ConsumeExpiries(ctx, e.app.Log, func(ctx context.Context, _ string) (time.Duration, error) {
			select {
			case <-release: // a worker that cannot keep up, until released
			case <-ctx.Done():
			}
			return 0, ctx.Err()
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ConsumeExpiries: %v", err)
		}
	})
	const fired = 5
	for i := range fired {
		if _, err := nc.Request(fmt.Sprintf("expire.metrics-%d", i), nil, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "the backlog shows the fired timers", func() bool {
		return metricValue(t, e, "engine_expiry_timers_pending") == fired
	})
	time.Sleep(1100 * time.Millisecond)
	if age := metricValue(t, e, "engine_expiry_overdue_seconds"); age < 1 {
		t.Errorf("engine_expiry_overdue_seconds = %v, want at least 1 s after the timers were due", age)
	}
	close(release)
	waitUntil(t, "the backlog is empty once handled", func() bool {
		return metricValue(t, e, "engine_expiry_timers_pending") == 0 && metricValue(t, e, "engine_expiry_overdue_seconds") == 0
	})
}

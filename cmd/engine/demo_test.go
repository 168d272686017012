package main

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/orderengine/engine/internal/pglocal"
)

func TestDemoMovesEveryPartOfTheDashboard(t *testing.T) {
	env := map[string]string{
		"ENGINE_HTTP_ADDR":       "127.0.0.1:0",
		"ENGINE_DATA_DIR":        t.TempDir(),
		"DATABASE_URL":           pglocal.ForTest(t),
		"ENGINE_RESERVATION_TTL": "1s",
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"demo", "-rate", "20", "-flash-every", "2s", "-pace", "20ms"},
			func(k string) string { return env[k] }, stdout, stderr)
	}()
	link := regexp.MustCompile(`dashboard: (http://\S+)/#token=(\S+)`)
	var base, token string
	waitUntil(t, "the demo to print its dashboard link", func() bool {
		m := link.FindStringSubmatch(stdout.String())
		if m != nil {
			base, token = m[1], m[2]
		}
		return m != nil
	})
	// Every state an order can reach, and the rest of the summary, moves.
	var summary struct {
		OrdersByStatus map[string]int64 `json:"orders_by_status"`
		RevenueCents   map[string]int64 `json:"revenue_cents"`
	}
	waitUntil(t, "orders in every final state and revenue", func() bool {
		if code := getJSON(t, base+"/v1/dashboard/summary", token, &summary); code != http.StatusOK {
			t.Fatalf("summary: %d", code)
		}
		for _, st := range []string{"rejected", "delivered", "cancelled", "expired"} {
			if summary.OrdersByStatus[st] == 0 {
				return false
			}
		}
		return len(summary.RevenueCents) > 0
	})
	t.Logf("after the wait: %v, revenue %v", summary.OrdersByStatus, summary.RevenueCents)
	// Interrupted mid-load (orders in flight), as Ctrl-C does.
	cancel()
	if err := <-done; err != nil {
		t.Errorf("demo returned %v after an interrupt, want nil", err)
	}
	// The demo logs at WARN and above: a clean run and shutdown log nothing.
	if log := stderr.String(); log != "" {
		t.Errorf("the demo logged %d line(s), want none:\n%s", strings.Count(log, "\n"), log)
	}
}

// waitUntil polls cond until it holds, failing after a generous deadline.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// getJSON GETs url with token and decodes a 200 answer into out.
func getJSON(t *testing.T, url, token string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer func() { _ = res.Body.Close() }()
	if res.StatusCode == http.StatusOK {
		if err := json.NewDecoder(res.Body).Decode(out); err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
	}
	return res.StatusCode
}

package main

import (
	"bufio"
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orderengine/engine/internal/testnats"
)

// metricValue reads one sample from /metrics, 0 when absent.
func metricValue(t *testing.T, e *apiEnv, sample string) float64 {
	t.Helper()
	r := e.do(t, apiCall{method: http.MethodGet, path: "/metrics", token: tokViewer})
	wantStatus(t, r, http.StatusOK)
	sc := bufio.NewScanner(bytes.NewReader(r.body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), sample+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", sample, err)
			}
			return f
		}
	}
	return 0
}

// TestLoadPastTheRateLimitGetsOnly2xxAnd429: 200 orders from 20 clients
// sharing one token limited to 20/s with a burst of 10 are either accepted
// or refused with 429 and a Retry-After, and /metrics counts the 429s.
func TestLoadPastTheRateLimitGetsOnly2xxAnd429(t *testing.T) {
	ns, _ := testnats.Start(t)
	e := startEngineWith(t, ns, limitConfig{PerToken: 20, Burst: 10, MaxInFlight: 64, RequestTimeout: 10 * time.Second})
	limitedBefore := metricValue(t, e, `engine_rate_limited_total{reason="token_rate"}`)
	body := jsonBody(t, validOrder())
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			for range 10 {
				r := e.do(t, apiCall{method: http.MethodPost, path: "/v1/orders", token: tokClient, body: body})
				if r.status == http.StatusTooManyRequests {
					if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 {
						t.Errorf("429 with Retry-After %q", r.header.Get("Retry-After"))
					}
				}
				mu.Lock()
				statuses[r.status]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if statuses[http.StatusAccepted] == 0 || statuses[http.StatusTooManyRequests] == 0 ||
		statuses[http.StatusAccepted]+statuses[http.StatusTooManyRequests] != 200 {
		t.Fatalf("statuses %v: want only 202 and 429, both", statuses)
	}
	limited := metricValue(t, e, `engine_rate_limited_total{reason="token_rate"}`) - limitedBefore
	if int(limited) != statuses[http.StatusTooManyRequests] {
		t.Errorf("/metrics counts %v rate-limited requests, the clients saw %d", limited, statuses[http.StatusTooManyRequests])
	}
	if n := metricValue(t, e, `engine_http_requests_total{method="POST",route="/v1/orders",status="429"}`); n < limited {
		t.Errorf("/metrics: %v POST /v1/orders 429s, want at least %v", n, limited)
	}
	// Another token has its own bucket.
	wantStatus(t, e.do(t, apiCall{method: http.MethodPost, path: "/v1/orders", token: tokAdmin, body: body}), http.StatusAccepted)
}

// TestRequestsOverTheInFlightCapGet503: with the one command slot taken by
// an order waiting for its outcome (no processors run here), another order
// is refused at once with 503 and Retry-After, and health stays answerable.
func TestRequestsOverTheInFlightCapGet503(t *testing.T) {
	ns, _ := testnats.Start(t)
	e := startEngineWith(t, ns, limitConfig{PerToken: 1000, Burst: 1000, MaxInFlight: 1, RequestTimeout: 30 * time.Second})
	wait := func() <-chan apiResponse {
		done := make(chan apiResponse, 1)
		go func() {
			done <- e.do(t, apiCall{method: http.MethodPost, path: "/v1/orders", token: tokClient, body: jsonBody(t, validOrder()),
				header: map[string]string{"Prefer": "wait=5"}})
		}()
		return done
	}
	// The waiting order must hold the slot first; if the probe got there
	// before it, the order was the one refused: start it again.
	waiting := wait()
	var refused apiResponse
	for i := 0; i < 200 && refused.status != http.StatusServiceUnavailable; i++ {
		time.Sleep(10 * time.Millisecond)
		select {
		case r := <-waiting:
			if r.status != http.StatusServiceUnavailable {
				t.Fatalf("the waiting order: %v", r)
			}
			waiting = wait()
			continue
		default:
		}
		// Commands have their own budget: the probe is one too.
		refused = e.do(t, apiCall{method: http.MethodPost, path: "/v1/orders", token: tokClient, body: jsonBody(t, validOrder())})
	}
	if refused.status != http.StatusServiceUnavailable || refused.header.Get("Retry-After") == "" {
		t.Fatalf("second request while the slot is taken: %v (Retry-After %q), want 503 with Retry-After", refused, refused.header.Get("Retry-After"))
	}
	wantStatus(t, e.do(t, apiCall{method: http.MethodGet, path: "/healthz"}), http.StatusOK)
	if r := <-waiting; r.status != http.StatusAccepted {
		t.Errorf("the waiting order: %v, want 202 after its wait", r)
	}
}

// TestParseLimitsReadsTheReadBudget: ENGINE_MAX_READS_IN_FLIGHT sets the
// reads' own budget, apart from ENGINE_MAX_IN_FLIGHT's, and a value that is
// not a positive integer is refused naming the variable.
func TestParseLimitsReadsTheReadBudget(t *testing.T) {
	env := map[string]string{"ENGINE_MAX_IN_FLIGHT": "100", "ENGINE_MAX_READS_IN_FLIGHT": "300"}
	c, err := parseLimits(func(k string) string { return env[k] })
	if err != nil || c.MaxInFlight != 100 || c.MaxReadsInFlight != 300 {
		t.Fatalf("limits %+v, %v; want 100 commands and 300 reads", c, err)
	}
	if c, _ := parseLimits(func(string) string { return "" }); c.MaxReadsInFlight != defaultLimits.MaxReadsInFlight || c.MaxReadsInFlight == 0 {
		t.Errorf("default read budget %d", c.MaxReadsInFlight)
	}
	for _, bad := range []string{"0", "-1", "many"} {
		_, err := parseLimits(func(k string) string {
			if k == "ENGINE_MAX_READS_IN_FLIGHT" {
				return bad
			}
			return ""
		})
		if err == nil || !strings.Contains(err.Error(), "ENGINE_MAX_READS_IN_FLIGHT") {
			t.Errorf("ENGINE_MAX_READS_IN_FLIGHT=%s: %v, want an error naming it", bad, err)
		}
	}
}

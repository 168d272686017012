package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orderengine/engine/internal/pglocal"
)

// syncBuffer is an io.Writer the engine writes to while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startEngine calls run as main does, with env, and waits until /readyz
// answers 200. It returns the base URL, the engine's stdout and a stop
// function that cancels the context and returns run's error.
func startEngine(t *testing.T, env map[string]string) (base string, stdout *syncBuffer, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout = &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve"}, func(k string) string { return env[k] }, stdout, &syncBuffer{})
	}()
	addr := regexp.MustCompile(`listening on (http://\S+)`)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := addr.FindStringSubmatch(stdout.String()); m != nil {
			if resp, err := http.Get(m[1] + "/readyz"); err == nil {
				_ = resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					base = m[1]
					break
				}
			}
		}
		select {
		case err := <-done:
			cancel()
			t.Fatalf("engine stopped before it was ready: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if base == "" {
		cancel()
		t.Fatal("engine not ready within 30s")
	}
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			runErr = <-done
		})
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return base, stdout, stop
}

func call(t *testing.T, method, url, token, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestServeKeepsAcknowledgedCommandsAcrossARestart(t *testing.T) {
	env := map[string]string{
		"ENGINE_HTTP_ADDR":  "127.0.0.1:0",
		"ENGINE_DATA_DIR":   t.TempDir(),
		"DATABASE_URL":      pglocal.ForTest(t),
		"ENGINE_API_TOKENS": "c-token:client,a-token:admin",
	}
	base, _, stop := startEngine(t, env)
	if code, body := call(t, "PUT", base+"/v1/inventory/WIDGET", "a-token", `{"on_hand": 5}`); code != 200 || body["on_hand"] != 5.0 {
		t.Fatalf("set on hand: %d %v", code, body)
	}
	code, order := call(t, "POST", base+"/v1/orders", "c-token",
		`{"customer_id":"alice","currency":"EUR","lines":[{"sku":"WIDGET","qty":2,"unit_price_cents":250}]}`)
	if code != http.StatusAccepted || order["status"] != "pending" || order["total_cents"] != 500.0 {
		t.Fatalf("place order: %d %v", code, order)
	}
	if err := stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}

	// Same data directory: what was acknowledged before the stop is there.
	base, _, stop = startEngine(t, env)
	id := order["order_id"].(string)
	code, cancelled := call(t, "POST", base+"/v1/orders/"+id+"/cancellation", "c-token", `{"reason":"changed my mind"}`)
	// Version 2, or 3 when the processors confirmed the order first (the
	// confirmation is one event since the outcome's grant rides on it).
	if code != 200 || cancelled["status"] != "cancelled" || (cancelled["version"] != 2.0 && cancelled["version"] != 3.0) {
		t.Fatalf("cancel after restart: %d %v", code, cancelled)
	}
	// The reservation processors run too, so the version and reserved
	// depend on how far they got; on_hand is only ever moved by commands.
	if code, body := call(t, "POST", base+"/v1/inventory/WIDGET/restock", "a-token", `{"qty": 3}`); code != 200 || body["on_hand"] != 8.0 {
		t.Fatalf("restock after restart: %d %v", code, body)
	}
	if err := stop(); err != nil {
		t.Fatalf("second shutdown: %v", err)
	}
}

// TestServeWithoutTokensKeepsOneAdminToken: without ENGINE_API_TOKENS the
// first start prints a generated admin token once; later starts on the same
// data directory accept the same token without printing it (only its
// SHA-256 is kept there) and say how to rotate it; removing the file
// rotates it.
func TestServeWithoutTokensKeepsOneAdminToken(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"ENGINE_HTTP_ADDR": "127.0.0.1:0", "ENGINE_DATA_DIR": dir, "DATABASE_URL": pglocal.ForTest(t)}
	printed := regexp.MustCompile(`generated admin token \(shown once\): (\S+)`)

	base, stdout, stop := startEngine(t, env)
	m := printed.FindAllStringSubmatch(stdout.String(), -1)
	if len(m) != 1 {
		t.Fatalf("want the token printed once, stdout:\n%s", stdout.String())
	}
	tok := m[0][1]
	if code, _ := call(t, "PUT", base+"/v1/inventory/X1", tok, `{"on_hand": 1}`); code != 200 {
		t.Errorf("generated token refused: %d", code)
	}
	if code, _ := call(t, "PUT", base+"/v1/inventory/X1", "wrong", `{"on_hand": 1}`); code != 401 {
		t.Errorf("wrong token: %d, want 401", code)
	}
	if err := stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	kept, err := os.ReadFile(filepath.Join(dir, adminTokenFile))
	if err != nil {
		t.Fatalf("the token's digest is not kept: %v", err)
	}
	if strings.Contains(string(kept), tok) {
		t.Fatal("the data directory holds the token itself, not its digest")
	}

	base, stdout, stop = startEngine(t, env)
	if printed.MatchString(stdout.String()) {
		t.Errorf("a restart printed a new token:\n%s", stdout.String())
	}
	if !strings.Contains(stdout.String(), "to rotate it") {
		t.Errorf("a restart does not say how to rotate the token:\n%s", stdout.String())
	}
	if code, _ := call(t, "PUT", base+"/v1/inventory/X1", tok, `{"on_hand": 2}`); code != 200 {
		t.Errorf("the first start's token refused after a restart: %d", code)
	}
	if err := stop(); err != nil {
		t.Fatalf("second shutdown: %v", err)
	}

	if err := os.Remove(filepath.Join(dir, adminTokenFile)); err != nil {
		t.Fatal(err)
	}
	base, stdout, stop = startEngine(t, env)
	defer func() { _ = stop() }()
	m = printed.FindAllStringSubmatch(stdout.String(), -1)
	if len(m) != 1 || m[0][1] == tok {
		t.Fatalf("removing the file did not rotate the token, stdout:\n%s", stdout.String())
	}
	if code, _ := call(t, "PUT", base+"/v1/inventory/X1", tok, `{"on_hand": 3}`); code != 401 {
		t.Errorf("the rotated-out token: %d, want 401", code)
	}
}

// TestAdminTokenFileThatIsNotADigestIsRefused: a damaged token file stops
// the start with its path named, rather than locking everybody out.
func TestAdminTokenFileThatIsNotADigestIsRefused(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, adminTokenFile)
	if err := os.WriteFile(path, []byte("not a digest\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := loadTokens("", dir, io.Discard)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v, want one naming %s", err, path)
	}
}

func TestRunRefusesBadConfiguration(t *testing.T) {
	for name, env := range map[string]map[string]string{
		"token without role":                {"ENGINE_API_TOKENS": "abc"},
		"unknown role":                      {"ENGINE_API_TOKENS": "abc:root"},
		"bad reservation ttl":               {"ENGINE_RESERVATION_TTL": "soon"},
		"bad rate limit":                    {"ENGINE_RATE_LIMIT": "-1"},
		"bad burst":                         {"ENGINE_RATE_BURST": "many"},
		"bad in-flight cap":                 {"ENGINE_MAX_IN_FLIGHT": "0"},
		"bad request timeout":               {"ENGINE_REQUEST_TIMEOUT": "1"},
		"bad feed switch":                   {"ENGINE_FEED": "maybe"},
		"bad direct placement switch":       {"ENGINE_DIRECT_PLACEMENT": "sometimes"},
		"bad webhook attempts":              {"ENGINE_WEBHOOK_MAX_ATTEMPTS": "0"},
		"bad webhook timeout":               {"ENGINE_WEBHOOK_TIMEOUT": "-1s"},
		"listen without a feed password":    {"ENGINE_NATS_LISTEN": "127.0.0.1:0"},
		"listen with a short feed password": {"ENGINE_NATS_LISTEN": "127.0.0.1:0", "ENGINE_FEED_PASSWORD": "short"},
		"listen as the engine's user":       {"ENGINE_NATS_LISTEN": "127.0.0.1:0", "ENGINE_FEED_USER": "engine", "ENGINE_FEED_PASSWORD": "long-enough-password"},
		"listen with an external NATS":      {"ENGINE_NATS_LISTEN": "127.0.0.1:0", "ENGINE_FEED_PASSWORD": "long-enough-password", "NATS_URL": "nats://127.0.0.1:1"},
		"listen with the feed off":          {"ENGINE_NATS_LISTEN": "127.0.0.1:0", "ENGINE_FEED_PASSWORD": "long-enough-password", "ENGINE_FEED": "off"},
	} {
		t.Run(name, func(t *testing.T) {
			env["ENGINE_DATA_DIR"] = t.TempDir()
			env["ENGINE_HTTP_ADDR"] = "127.0.0.1:0"
			env["DATABASE_URL"] = "host=/nonexistent dbname=x"
			err := run(context.Background(), nil, func(k string) string { return env[k] }, &syncBuffer{}, &syncBuffer{})
			if err == nil {
				t.Fatal("run accepted a bad configuration")
			}
		})
	}
	if err := run(context.Background(), []string{"frobnicate"}, func(string) string { return "" }, &syncBuffer{}, &syncBuffer{}); err == nil {
		t.Error("unknown subcommand accepted")
	}
}

func TestPlaceOrderWithPreferWaitAnswersTheOutcome(t *testing.T) {
	base, _, _ := startEngine(t, map[string]string{
		"ENGINE_HTTP_ADDR":  "127.0.0.1:0",
		"ENGINE_DATA_DIR":   t.TempDir(),
		"DATABASE_URL":      pglocal.ForTest(t),
		"ENGINE_API_TOKENS": "c:client,a:admin",
	})
	if code, _ := call(t, "PUT", base+"/v1/inventory/ONE", "a", `{"on_hand": 1}`); code != 200 {
		t.Fatalf("set stock: %d", code)
	}
	place := func(prefer string) (int, map[string]any, http.Header) {
		req, _ := http.NewRequest("POST", base+"/v1/orders",
			strings.NewReader(`{"customer_id":"bob","currency":"USD","lines":[{"sku":"ONE","qty":1,"unit_price_cents":100}]}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer c")
		if prefer != "" {
			req.Header.Set("Prefer", prefer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body, resp.Header
	}
	code, body, hdr := place("wait=5")
	if code != http.StatusCreated || body["status"] != "confirmed" || hdr.Get("Preference-Applied") != "wait=5" {
		t.Errorf("first order: %d %v %v, want 201 confirmed", code, body["status"], hdr.Get("Preference-Applied"))
	}
	if code, body, _ = place("respond-async, wait=10"); code != http.StatusCreated || body["status"] != "rejected" {
		t.Errorf("second order on no stock: %d %v, want 201 rejected", code, body["status"])
	}
	if code, body, _ = place(""); code != http.StatusAccepted || body["status"] != "pending" {
		t.Errorf("without Prefer: %d %v, want 202 pending", code, body["status"])
	}
}

func TestServeWithoutDatabaseURLStartsItsOwnPostgres(t *testing.T) {
	// The private Postgres runs as the postgres user when the tests run as
	// root, so its directory must be reachable by that user: t.TempDir()'s
	// parent is not.
	dir, err := os.MkdirTemp("", "engine-data-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"ENGINE_HTTP_ADDR": "127.0.0.1:0", "ENGINE_DATA_DIR": dir, "ENGINE_API_TOKENS": "a:admin"}
	base, stdout, stop := startEngine(t, env)
	if !strings.Contains(stdout.String(), "started a private Postgres in "+dir) {
		t.Errorf("stdout does not say a private Postgres was started:\n%s", stdout.String())
	}
	if code, _ := call(t, "PUT", base+"/v1/inventory/P1", "a", `{"on_hand": 1}`); code != 200 {
		t.Errorf("command with a private Postgres: %d", code)
	}
	// And the query side answers from it once the projection caught up.
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, item := call(t, "GET", base+"/v1/inventory/P1", "a", "")
		if code == 200 && item["on_hand"] == 1.0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("query on the private Postgres: %d %v", code, item)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	// The second start reuses the cluster.
	_, stdout, stop = startEngine(t, env)
	if err := stop(); err != nil {
		t.Fatalf("second shutdown: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "postgres", "PG_VERSION")); err != nil {
		t.Errorf("no Postgres cluster under ENGINE_DATA_DIR/postgres: %v", err)
	}
}

func TestQueriesReadTheirWritesThroughTheProjection(t *testing.T) {
	dbURL := pglocal.ForTest(t)
	base, _, _ := startEngine(t, map[string]string{
		"ENGINE_HTTP_ADDR":  "127.0.0.1:0",
		"ENGINE_DATA_DIR":   t.TempDir(),
		"DATABASE_URL":      dbURL,
		"ENGINE_API_TOKENS": "c:client,v:viewer,a:admin",
	})
	c := engineClient{t: t, base: base}
	do := func(method, path, token, body string, header map[string]string) (engineAnswer, map[string]any) {
		t.Helper()
		a := c.do(method, path, token, body, header)
		return a, a.body
	}
	resp, _ := do("PUT", "/v1/inventory/READ", "a", `{"on_hand": 7}`, nil)
	token := resp.header.Get("Consistency-Token")
	resp, item := do("GET", "/v1/inventory/READ?consistent_with="+token, "v", "", nil)
	if resp.status != 200 || item["on_hand"] != 7.0 || item["available"] != 7.0 {
		t.Fatalf("inventory read after its write: %d %v", resp.status, item)
	}
	resp, placed := do("POST", "/v1/orders", "c", `{"customer_id":"reader","currency":"USD","lines":[{"sku":"READ","qty":3,"unit_price_cents":500}]}`,
		map[string]string{"Prefer": "wait=5"})
	if resp.status != http.StatusCreated || placed["status"] != "confirmed" {
		t.Fatalf("place: %d %v", resp.status, placed)
	}
	id := placed["order_id"].(string)
	placedToken := resp.header.Get("Consistency-Token")
	resp, order := do("GET", "/v1/orders/"+id, "v", "", map[string]string{"Consistency-Token": placedToken})
	if resp.status != 200 || order["status"] != "confirmed" || order["total_cents"] != 1500.0 || order["version"] != placed["version"] {
		t.Fatalf("order read after its write: %d %v", resp.status, order)
	}
	if resp.header.Get("ETag") != fmt.Sprintf(`"%v"`, placed["version"]) {
		t.Errorf("ETag %q for version %v", resp.header.Get("ETag"), placed["version"])
	}
	_, list := do("GET", "/v1/orders?customer_id=reader", "v", "", nil)
	if orders, _ := list["orders"].([]any); len(orders) != 1 {
		t.Errorf("list by customer: %v", list)
	}
	resp, summary := do("GET", "/v1/dashboard/summary", "v", "", map[string]string{"Consistency-Token": placedToken})
	if byStatus, _ := summary["orders_by_status"].(map[string]any); resp.status != 200 || byStatus["confirmed"] != 1.0 {
		t.Errorf("dashboard summary: %d %v", resp.status, summary)
	}
	if resp, _ := do("GET", "/v1/dashboard/summary", "c", "", nil); resp.status != http.StatusForbidden {
		t.Errorf("a client token reads the dashboard: %d, want 403", resp.status)
	}
	// What an operator scrapes: this traffic, the projection, the runtime.
	metricsReq, err := http.NewRequest(http.MethodGet, base+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	metricsReq.Header.Set("Authorization", "Bearer v")
	metricsResp, err := http.DefaultClient.Do(metricsReq)
	if err != nil {
		t.Fatal(err)
	}
	scraped, _ := io.ReadAll(metricsResp.Body)
	_ = metricsResp.Body.Close()
	for _, want := range []string{
		`engine_commands_total{command="PlaceOrder",outcome="ok"}`,
		`engine_http_requests_total{method="POST",route="/v1/orders",status="201"}`,
		`engine_http_request_duration_seconds_bucket{method="GET",route="/v1/orders/{id}"`,
		`engine_append_duration_seconds_count{aggregate="order"}`,
		`engine_reservation_decisions_total{decision="reserved"}`,
		`engine_projection_lag_events{projection="main"}`,
		`engine_projection_dead_letters{projection="main"} 0`,
		"go_goroutines",
	} {
		if !strings.Contains(string(scraped), want) {
			t.Errorf("/metrics has no %s", want)
		}
	}
	// Verify: chains intact and read models equal to a replay, until a row
	// is changed behind the engine's back.
	resp, report := do("GET", "/v1/audit/verify", "a", "", nil)
	if resp.status != 200 || report["ok"] != true || report["read_models_compared"] != true {
		t.Errorf("verify of an untouched engine: %d %v", resp.status, report)
	}
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	if _, err := conn.Exec(context.Background(), `UPDATE rm.inventory SET on_hand = on_hand + 1 WHERE sku = 'READ'`); err != nil {
		t.Fatal(err)
	}
	resp, report = do("GET", "/v1/audit/verify", "a", "", nil)
	if diffs, _ := report["read_model_differences"].([]any); resp.status != 200 || report["ok"] != false || len(diffs) != 1 {
		t.Errorf("verify after tampering with rm.inventory: %d %v", resp.status, report)
	}
	resp = c.do("GET", "/v1/admin/projections", "a", "", nil)
	var projs []struct {
		Name        string   `json:"name"`
		Checkpoints []uint64 `json:"checkpoints"`
	}
	if err := json.Unmarshal([]byte(resp.raw), &projs); err != nil || len(projs) != 1 || projs[0].Name != "main" || slices.Max(projs[0].Checkpoints) == 0 {
		t.Errorf("admin projections: %d %+v %v", resp.status, projs, err)
	}
}

// TestMetricsListenerServesWithoutAToken: ENGINE_METRICS_ADDR opens
// /metrics, and only it, on a listener of its own for a scraper without a
// token; on the API's port /metrics still wants one.
func TestMetricsListenerServesWithoutAToken(t *testing.T) {
	base, stdout, stop := startEngine(t, map[string]string{"ENGINE_HTTP_ADDR": "127.0.0.1:0", "ENGINE_METRICS_ADDR": "127.0.0.1:0",
		"ENGINE_DATA_DIR": t.TempDir(), "DATABASE_URL": pglocal.ForTest(t), "ENGINE_API_TOKENS": "v:viewer"})
	defer func() { _ = stop() }()
	m := regexp.MustCompile(`metrics at (http://\S+)/metrics`).FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("no metrics listener announced:\n%s", stdout.String())
	}
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(m[1] + "/metrics"); code != http.StatusOK || !strings.Contains(body, "engine_projection_checkpoint") {
		t.Errorf("metrics listener: %d, projection series %v", code, strings.Contains(body, "engine_projection_checkpoint"))
	}
	if code, _ := get(m[1] + "/v1/orders"); code != http.StatusNotFound {
		t.Errorf("the metrics listener serves the API: %d", code)
	}
	if code, _ := get(base + "/metrics"); code != http.StatusUnauthorized {
		t.Errorf("/metrics on the API's port without a token: %d, want 401", code)
	}
}

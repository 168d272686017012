package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// crashKillsEnv overrides the number of SIGKILLs of TestCrashLoopInDefaultMode.
const crashKillsEnv = "ENGINE_TEST_CRASH_KILLS"

// crashSKUs are the SKUs the crash loop's orders draw on, with crashStock
// units each: little enough that the sale runs out and orders get rejected.
var crashSKUs = []string{"CRASH-A", "CRASH-B", "CRASH-C", "CRASH-D"}

const crashStock = 400

// TestCrashLoopInDefaultMode is the operator's crash: the real engine
// binary in its default mode (embedded NATS, private Postgres, both under
// ENGINE_DATA_DIR), SIGKILLed at random moments under order load and
// started again each time. Every restart must be ready within 10s; at the
// end no acknowledged order is lost, no idempotency key has been applied
// twice, the stock adds up, and `engine verify` finds nothing wrong.
func TestCrashLoopInDefaultMode(t *testing.T) {
	kills := 20
	if testing.Short() {
		kills = 3
	}
	if v := os.Getenv(crashKillsEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number", crashKillsEnv, v)
		}
		kills = n
	}
	bin := buildEngine(t)
	dir := reachableDir(t)
	env := crashEnv(dir)

	first := startProc(t, bin, env, dir, time.Minute)
	for _, sku := range crashSKUs {
		if code := first.call(t, "PUT", "/v1/inventory/"+sku, "a", "stock-"+sku, fmt.Sprintf(`{"on_hand": %d}`, crashStock), nil); code != 200 {
			t.Fatalf("stock %s: %d", sku, code)
		}
	}

	led := newLedger()
	cur := &currentBase{}
	cur.set(first.base)
	loadCtx, stopLoad := context.WithCancel(context.Background())
	var clients sync.WaitGroup
	for c := range 4 {
		clients.Go(func() { led.drive(t, loadCtx, cur, c) })
	}

	var restarts []time.Duration
	proc := first
	for i := range kills {
		time.Sleep(time.Duration(300+rand.IntN(1700)) * time.Millisecond)
		proc.kill(t)
		if i == kills-1 {
			break
		}
		var took time.Duration
		proc, took = startTimed(t, bin, env, dir)
		restarts = append(restarts, took)
		cur.set(proc.base)
	}
	stopLoad()
	clients.Wait()
	proc, took := startTimed(t, bin, env, dir)
	restarts = append(restarts, took)

	acked := led.retryAll(t, proc)
	checkOrders(t, proc, led)
	checkStock(t, proc)

	if err := proc.stop(); err != nil {
		t.Fatalf("clean shutdown after the loop: %v", err)
	}
	verify := exec.Command(bin, "verify")
	verify.Env = env
	out, err := verify.CombinedOutput()
	if err != nil || strings.Count(string(out), "OK:") != 2 {
		t.Fatalf("engine verify after the loop: %v\n%s", err, out)
	}

	slices.Sort(restarts)
	stderr, _ := os.ReadFile(filepath.Join(dir, "engine.stderr"))
	t.Logf("%d kills, %d orders acknowledged before a kill or retry, %d keys in all, 0 lost, 0 applied twice; "+
		"ready after restart p50 %s, max %s; a dead engine's Postgres stopped on %d restarts",
		kills, acked, len(led.keys), restarts[len(restarts)/2].Round(time.Millisecond),
		restarts[len(restarts)-1].Round(time.Millisecond), strings.Count(string(stderr), "stopped the private Postgres"))
}

// buildEngine builds the engine binary, as a user would run it.
func buildEngine(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "engine")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// reachableDir is a temporary directory the postgres user can enter when
// the tests run as root, which t.TempDir() (under a 0700 directory) is not.
func reachableDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "engine-crash-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	return dir
}

// crashEnv is our environment without anything that would take the engine
// out of its default mode, plus its data directory and tokens. The TTL is
// long so that stock is held by confirmed orders until the end.
func crashEnv(dir string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ENGINE_") && !strings.HasPrefix(kv, "NATS_") && !strings.HasPrefix(kv, "DATABASE_URL=") {
			env = append(env, kv)
		}
	}
	return append(env,
		"ENGINE_DATA_DIR="+filepath.Join(dir, "data"),
		"ENGINE_HTTP_ADDR=127.0.0.1:0",
		"ENGINE_API_TOKENS=c:client,a:admin",
		"ENGINE_RESERVATION_TTL=1h",
	)
}

// proc is one engine process.
type proc struct {
	cmd    *exec.Cmd
	base   string
	exited chan struct{}
	err    error
}

var listening = regexp.MustCompile(`engine listening on (http://\S+)`)

// startProc starts the engine and waits up to within until /readyz says 200.
func startProc(t *testing.T, bin string, env []string, dir string, within time.Duration) *proc {
	t.Helper()
	deadline := time.Now().Add(within)
	stderr, err := os.OpenFile(filepath.Join(dir, "engine.stderr"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = stderr.Close() }()
	p := &proc{cmd: exec.Command(bin, "serve"), exited: make(chan struct{})}
	p.cmd.Env, p.cmd.Stderr = env, stderr
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				urls <- m[1]
			}
		}
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() { p.kill(t) })
	select {
	case p.base = <-urls:
	case <-p.exited:
		t.Fatalf("engine exited before it listened: %v; see %s", p.err, stderr.Name())
	case <-time.After(time.Until(deadline)):
		t.Fatalf("engine not listening within %s", within)
	}
	for {
		if resp, err := http.Get(p.base + "/readyz"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("engine not ready within %s", within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startTimed is a restart: ready within 10s, the bar.
func startTimed(t *testing.T, bin string, env []string, dir string) (*proc, time.Duration) {
	t.Helper()
	start := time.Now()
	p := startProc(t, bin, env, dir, 10*time.Second)
	return p, time.Since(start)
}

// kill SIGKILLs the engine, as a crash would, and reaps it.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// stop is a clean shutdown (SIGTERM), which must exit 0.
func (p *proc) stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.err
	case <-time.After(time.Minute):
		_ = p.cmd.Process.Kill()
		return fmt.Errorf("still running a minute after SIGTERM")
	}
}

// call sends one request with the token and idempotency key (when not
// empty) and decodes a JSON answer into out (when not nil).
func (p *proc) call(t *testing.T, method, path, token, key, body string, out any) int {
	t.Helper()
	resp, err := send(context.Background(), p.base, method, path, token, key, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: decode: %v", method, path, err)
		}
	}
	return resp.StatusCode
}

var crashClient = &http.Client{Timeout: 10 * time.Second}

func send(ctx context.Context, base, method, path, token, key, body string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	return crashClient.Do(req)
}

// currentBase is the base URL of the engine running now.
type currentBase struct {
	mu   sync.Mutex
	base string
}

func (c *currentBase) set(b string) { c.mu.Lock(); c.base = b; c.mu.Unlock() }
func (c *currentBase) get() string  { c.mu.Lock(); defer c.mu.Unlock(); return c.base }

// ledger is what the clients sent and what they were told.
type ledger struct {
	mu   sync.Mutex
	keys []string
	body map[string]string
	// acked is the order id a key was acknowledged with (2xx).
	acked map[string]string
}

func newLedger() *ledger {
	return &ledger{body: map[string]string{}, acked: map[string]string{}}
}

// drive places orders, each under a fresh key that it retries (on a lost
// connection, a 5xx or a 409 in flight) until acknowledged or until ctx
// ends, as a checkout would.
func (l *ledger) drive(t *testing.T, ctx context.Context, cur *currentBase, client int) {
	for n := 0; ctx.Err() == nil; n++ {
		key := fmt.Sprintf("crash-%d-%d", client, n)
		body := orderBody()
		l.mu.Lock()
		l.keys = append(l.keys, key)
		l.body[key] = body
		l.mu.Unlock()
		for ctx.Err() == nil {
			resp, err := send(ctx, cur.get(), "POST", "/v1/orders", "c", key, body)
			if err != nil {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			var o struct {
				OrderID string `json:"order_id"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&o)
			_ = resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				l.mu.Lock()
				l.acked[key] = o.OrderID
				l.mu.Unlock()
				break
			}
			if resp.StatusCode < 500 && resp.StatusCode != http.StatusConflict {
				t.Errorf("POST /v1/orders %s: %d", key, resp.StatusCode)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func orderBody() string {
	first := rand.IntN(len(crashSKUs))
	lines := []string{fmt.Sprintf(`{"sku":%q,"qty":%d,"unit_price_cents":100}`, crashSKUs[first], 1+rand.IntN(3))}
	if rand.IntN(2) == 0 {
		lines = append(lines, fmt.Sprintf(`{"sku":%q,"qty":%d,"unit_price_cents":250}`, crashSKUs[(first+1)%len(crashSKUs)], 1+rand.IntN(3)))
	}
	return `{"customer_id":"crash","currency":"USD","lines":[` + strings.Join(lines, ",") + `]}`
}

// retryAll sends every key again: an acknowledged one must answer its
// first order, replayed; the others place their order now, or answer the
// one stored before the answer was lost. Afterwards every key has exactly
// one order. It returns how many keys had been acknowledged.
func (l *ledger) retryAll(t *testing.T, p *proc) int {
	t.Helper()
	acked := len(l.acked)
	ids := map[string]string{}
	for _, key := range l.keys {
		resp, err := send(context.Background(), p.base, "POST", "/v1/orders", "c", key, l.body[key])
		if err != nil {
			t.Fatalf("retry %s: %v", key, err)
		}
		var o struct {
			OrderID string `json:"order_id"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&o)
		_ = resp.Body.Close()
		if resp.StatusCode/100 != 2 || o.OrderID == "" {
			t.Fatalf("retry %s: %d %q", key, resp.StatusCode, o.OrderID)
		}
		if first, ok := l.acked[key]; ok {
			if o.OrderID != first || resp.Header.Get("Idempotent-Replayed") != "true" {
				t.Errorf("retry of acknowledged key %s: order %s (replayed %q); first answer was order %s",
					key, o.OrderID, resp.Header.Get("Idempotent-Replayed"), first)
			}
		}
		if other, dup := ids[o.OrderID]; dup {
			t.Errorf("keys %s and %s share order %s", other, key, o.OrderID)
		}
		ids[o.OrderID] = key
		l.acked[key] = o.OrderID
	}
	return acked
}

// order is the part of GET /v1/orders the checks read.
type order struct {
	OrderID string `json:"order_id"`
	Status  string `json:"status"`
	Lines   []struct {
		SKU string `json:"sku"`
		Qty int    `json:"qty"`
	} `json:"lines"`
}

// checkOrders waits until no order is pending, then checks that the read
// model holds exactly one order per key and the event store exactly one
// OrderPlaced per key, with the ids the keys were answered with.
func checkOrders(t *testing.T, p *proc, l *ledger) {
	t.Helper()
	want := map[string]bool{}
	for _, id := range l.acked {
		want[id] = true
	}
	var orders []order
	deadline := time.Now().Add(time.Minute)
	for {
		orders = listOrders(t, p)
		pending := 0
		for _, o := range orders {
			if o.Status == "pending" {
				pending++
			}
		}
		if pending == 0 && len(orders) == len(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a minute: %d orders listed, %d pending; want %d, none pending", len(orders), pending, len(want))
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, o := range orders {
		if !want[o.OrderID] {
			t.Errorf("order %s answers no key", o.OrderID)
		}
		if o.Status != "confirmed" && o.Status != "rejected" {
			t.Errorf("order %s is %s; want confirmed or rejected", o.OrderID, o.Status)
		}
	}

	resp, err := send(context.Background(), p.base, "GET", "/v1/audit/export", "a", "", "")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	placed := map[string]int{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e struct {
			Type        string `json:"type"`
			AggregateID string `json:"aggregate_id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("export line %q: %v", sc.Text(), err)
		}
		if e.Type == "OrderPlaced" {
			placed[e.AggregateID]++
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(placed) != len(want) {
		t.Errorf("%d orders placed in the event store; want %d, one per key", len(placed), len(want))
	}
	for id, n := range placed {
		if n != 1 || !want[id] {
			t.Errorf("order %s: %d OrderPlaced events, answers a key: %v", id, n, want[id])
		}
	}
}

func listOrders(t *testing.T, p *proc) []order {
	t.Helper()
	var all []order
	cursor := ""
	for {
		var page struct {
			Orders     []order `json:"orders"`
			NextCursor string  `json:"next_cursor"`
		}
		if code := p.call(t, "GET", "/v1/orders?limit=200&cursor="+cursor, "a", "", "", &page); code != 200 {
			t.Fatalf("list orders: %d", code)
		}
		all = append(all, page.Orders...)
		if page.NextCursor == "" {
			return all
		}
		cursor = page.NextCursor
	}
}

// checkStock checks, once the read model has caught up, that each SKU
// still has its stock on hand and reserves exactly the confirmed orders'
// quantities.
func checkStock(t *testing.T, p *proc) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		held := map[string]int{}
		for _, o := range listOrders(t, p) {
			if o.Status == "confirmed" {
				for _, l := range o.Lines {
					held[l.SKU] += l.Qty
				}
			}
		}
		var wrong []string
		for _, sku := range crashSKUs {
			var item struct {
				OnHand    int `json:"on_hand"`
				Reserved  int `json:"reserved"`
				Available int `json:"available"`
			}
			if code := p.call(t, "GET", "/v1/inventory/"+sku, "a", "", "", &item); code != 200 {
				t.Fatalf("inventory %s: %d", sku, code)
			}
			if item.OnHand != crashStock || item.Reserved != held[sku] || item.Available != item.OnHand-item.Reserved || item.Available < 0 {
				wrong = append(wrong, fmt.Sprintf("%s: on_hand %d reserved %d available %d; confirmed orders hold %d of %d",
					sku, item.OnHand, item.Reserved, item.Available, held[sku], crashStock))
			}
		}
		if len(wrong) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stock does not add up:\n%s", strings.Join(wrong, "\n"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

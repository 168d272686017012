package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's chromium, or CHROMIUM_PATH; the browser tests
// skip, saying why, when there is none.
func chromiumPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv("CHROMIUM_PATH")
	if p == "" {
		p = "/usr/bin/chromium"
	}
	if _, err := exec.LookPath(p); err != nil {
		t.Skipf("no headless Chromium at %s (apt-get install chromium, or set CHROMIUM_PATH): %v", p, err)
	}
	return p
}

// browser starts a headless Chromium with the flags it needs as root and
// without a network, and returns a tab's context, bounded by a generous
// deadline, and the console messages that are errors, as they arrive.
func browser(t *testing.T, deadline time.Duration) (context.Context, func() []string) {
	t.Helper()
	profile := t.TempDir()
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath(t)), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(profile),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1280, 800))
	t.Cleanup(cancelAlloc)
	tab, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(cancelTab)
	var (
		mu     sync.Mutex
		errors []string
	)
	// Console subscribes (and starts the browser) before anything runs;
	// it sees console.error calls, uncaught exceptions and the browser's
	// own log (a failed request, a CSP refusal).
	messages := chromedp.Console(tab)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				mu.Lock()
				errors = append(errors, fmt.Sprintf("%s %s:%d %s", m.Type, m.URL, m.Line+1, m.Text))
				mu.Unlock()
			}
		}
	}()
	ctx, cancel := context.WithTimeout(tab, deadline)
	t.Cleanup(cancel)
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), errors...)
	}
}

// screenshotDir is DASHBOARD_SCREENSHOT_DIR, or a temporary directory.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("DASHBOARD_SCREENSHOT_DIR"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// until waits, within the tab's deadline, for a JavaScript condition.
func until(t *testing.T, ctx context.Context, what, cond string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](cond, chromedp.WithPollingTimeout(time.Minute))); err != nil {
		t.Fatalf("waiting for %s (%s): %v", what, cond, err)
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// countIs is a condition: the page's tile of status shows n.
func countIs(status string, n int) string {
	return fmt.Sprintf(`(document.querySelector('[data-status=%q] .count') || {}).textContent === %q`, status, fmt.Sprint(n))
}

// noOverflow is a condition: nothing is wider than the viewport.
const noOverflow = `document.documentElement.scrollWidth <= window.innerWidth`

// chartFits is a condition: the chart is drawn at its box's width (the
// page redraws it shortly after a resize).
const chartFits = `(c => c.querySelector('svg') && Math.abs(c.querySelector('svg').getAttribute('width') - c.clientWidth) <= 1)(document.getElementById('chart'))`

func TestDashboardInBrowser(t *testing.T) {
	chromiumPath(t)
	base, _, _ := startEngine(t, dashboardEnv(t))
	for _, s := range []string{`"WIDGET", 100`, `"GADGET", 5`} {
		sku, n, _ := strings.Cut(s, ", ")
		if code, body := call(t, "PUT", base+"/v1/inventory/"+strings.Trim(sku, `"`), tokAdmin, `{"on_hand": `+n+`}`); code != 200 {
			t.Fatalf("set on hand %s: %d %v", sku, code, body)
		}
	}
	ctx, consoleErrors := browser(t, 3*time.Minute)
	dir := screenshotDir(t)

	err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800), chromedp.Navigate(base+"/#token="+tokAuditor))
	if err != nil {
		t.Fatal(err)
	}
	until(t, ctx, "the stream to be live and show no orders", `document.getElementById('conn').dataset.state === 'live' && `+countIs("confirmed", 0))
	if hash := eval[string](t, ctx, `location.hash`); hash != "" {
		t.Errorf("the token is still in the address bar: %q", hash)
	}
	if got := eval[string](t, ctx, `sessionStorage.getItem('engine.token')`); got != tokAuditor {
		t.Errorf("sessionStorage holds %q, want the token of the link", got)
	}
	if role := eval[string](t, ctx, `document.getElementById('role').textContent`); role != "signed in as auditor" {
		t.Errorf("role shown: %q", role)
	}

	var ids []string
	for range 3 {
		ids = append(ids, placeConfirmed(t, base, `{"customer_id":"c1","currency":"EUR","lines":[{"sku":"WIDGET","qty":2,"unit_price_cents":1250}]}`))
	}
	if code, o := call(t, "POST", base+"/v1/orders", tokClient, `{"customer_id":"c2","currency":"USD","lines":[{"sku":"GADGET","qty":6,"unit_price_cents":999}]}`); code != 202 {
		t.Fatalf("place an order beyond the stock: %d %v", code, o)
	}
	until(t, ctx, "the page to count 3 confirmed orders and 1 rejected", countIs("confirmed", 3)+` && `+countIs("rejected", 1))
	until(t, ctx, "the chart to plot the orders placed this minute",
		`(document.querySelector('polyline[data-series=placed]') || {dataset: {}}).dataset.total === '4'`)
	// The current minute is still filling: drawn apart (a hollow point at
	// the right edge, dashed from the minute before), the solid line stops
	// a minute earlier, and the legend says what the dashes mean.
	if !eval[bool](t, ctx, `(() => {
		const dot = document.querySelector('circle.partial-point[data-partial=placed]');
		const dash = document.querySelector('line.partial[data-partial=placed]');
		const line = document.querySelector('polyline[data-series=placed]');
		const note = document.getElementById('partial-note');
		if (!dot || !dash || !line || !note || !note.offsetParent) return false;
		const xs = line.getAttribute('points').trim().split(' ').map(p => +p.split(',')[0]);
		const cx = +dot.getAttribute('cx');
		return +dash.getAttribute('x2') === cx && xs[xs.length - 1] < cx && +dash.getAttribute('x1') === xs[xs.length - 1] &&
			getComputedStyle(dash).strokeDasharray !== 'none';
	})()`) {
		t.Error("the current minute is not drawn as partial (hollow point, dashed segment, legend note)")
	}
	until(t, ctx, "GADGET to be listed as low on stock", `document.getElementById('lowstock').textContent.includes('GADGET')`)
	until(t, ctx, "the projection to be listed", `document.getElementById('projections').textContent.includes('main')`)
	until(t, ctx, "the reservation backlog of every partition, under the default limit",
		`!document.getElementById('backlog-card').hidden && document.querySelectorAll('#backlog .part').length === 16 && `+
			`/limit 10\D?000 /.test(document.getElementById('backlog-limit').textContent) && !document.querySelector('#backlog .bar.over')`)

	if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.ID("order-id"), ids[0]), chromedp.Click(chromedp.CSS("#lookup-form button"))); err != nil {
		t.Fatal(err)
	}
	until(t, ctx, "the order and its event timeline", `document.getElementById('order').textContent.includes('confirmed') && `+
		`[...document.querySelectorAll('#timeline li')].some(li => li.dataset.type === 'OrderConfirmed')`)
	types := eval[[]string](t, ctx, `[...document.querySelectorAll('#timeline li')].map(li => li.dataset.type)`)
	if len(types) < 2 || types[0] != "OrderPlaced" || types[len(types)-1] != "OrderConfirmed" {
		t.Errorf("timeline %v, want OrderPlaced first and OrderConfirmed last", types)
	}

	for _, vp := range []struct {
		name string
		w, h int64
		opts []chromedp.EmulateViewportOption
	}{
		{"1280x800", 1280, 800, nil},
		{"390x844", 390, 844, []chromedp.EmulateViewportOption{chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulateScale(2)}},
	} {
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(vp.w, vp.h, vp.opts...)); err != nil {
			t.Fatal(err)
		}
		until(t, ctx, "the chart to be redrawn at "+vp.name, chartFits)
		until(t, ctx, "the layout at "+vp.name+" to have no horizontal overflow", noOverflow)
		if w := eval[float64](t, ctx, `window.innerWidth`); int64(w) != vp.w {
			t.Errorf("%s: innerWidth %v", vp.name, w)
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, "dashboard-"+vp.name+".png")
		if err := os.WriteFile(file, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot %s", file)
	}
	signInAgain(t, ctx, ids[1])
	if errs := consoleErrors(); len(errs) > 0 {
		t.Errorf("the page logged errors:\n%s", strings.Join(errs, "\n"))
	}
}

// signInAgain signs out, is refused with a client token, signs in with a
// viewer token through the form and looks up order id, whose timeline a
// viewer may not see: the page says so rather than provoking a 403.
func signInAgain(t *testing.T, ctx context.Context, id string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("signout"))); err != nil {
		t.Fatal(err)
	}
	until(t, ctx, "the sign-in form", `!document.getElementById('signin').hidden && sessionStorage.getItem('engine.token') === null`)
	signIn := func(token string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.ID("token"), token), chromedp.Click(chromedp.CSS("#signin-form button"))); err != nil {
			t.Fatal(err)
		}
	}
	signIn(tokClient)
	until(t, ctx, "a client token to be refused", `document.getElementById('banner').textContent.includes('client token cannot view') && !document.getElementById('signin').hidden`)
	signIn(tokViewer)
	until(t, ctx, "the viewer's live page", `document.getElementById('conn').dataset.state === 'live' && document.getElementById('role').textContent === 'signed in as viewer'`)
	if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.ID("order-id"), id), chromedp.Click(chromedp.CSS("#lookup-form button"))); err != nil {
		t.Fatal(err)
	}
	until(t, ctx, "the order, without its timeline", `document.getElementById('order').textContent.includes(`+fmt.Sprintf("%q", id)+`) && `+
		`document.getElementById('timeline-note').textContent.includes('needs an auditor or admin token') && `+
		`document.querySelectorAll('#timeline li').length === 0`)
}

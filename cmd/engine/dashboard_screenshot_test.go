package main

import (
	"context"
	"github.com/orderengine/engine/internal/demo"
	"io"
	"log/slog"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestDashboardScreenshotForREADME writes the README's screenshot, the
// page after a few minutes of the demo's load, to the file
// DASHBOARD_README_SCREENSHOT names (docs/dashboard.png); without it, it
// skips. It waits for a few minutes of data, so it is not part of CI.
func TestDashboardScreenshotForREADME(t *testing.T) {
	file := os.Getenv("DASHBOARD_README_SCREENSHOT")
	if file == "" {
		t.Skip("set DASHBOARD_README_SCREENSHOT=$PWD/docs/dashboard.png to make the README's screenshot")
	}
	chromiumPath(t)
	env := dashboardEnv(t)
	env["ENGINE_RESERVATION_TTL"] = "20s"
	base, _, _ := startEngine(t, env)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := demo.Params{Base: base, Token: tokAdmin, Rate: 10, SKUs: 24, FlashEvery: 40 * time.Second, Pace: time.Second}
	go func() { _ = demo.Drive(ctx, p, io.Discard, slog.New(slog.DiscardHandler)) }()

	tab, consoleErrors := browser(t, 15*time.Minute)
	if err := chromedp.Do(tab, chromedp.EmulateViewport(1280, 800), chromedp.Navigate(base+"/#token="+tokAuditor)); err != nil {
		t.Fatal(err)
	}
	// Five minutes with orders make a chart worth looking at.
	deadline := time.Now().Add(10 * time.Minute)
	for {
		var series struct{ Points []struct{ V int64 } }
		if code := getJSON(t, base+"/v1/dashboard/timeseries?metric=orders_placed", tokAuditor, &series); code != http.StatusOK {
			t.Fatalf("time series: %d", code)
		}
		minutes := 0
		for _, p := range series.Points {
			if p.V > 0 {
				minutes++
			}
		}
		if minutes >= 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d minutes with orders", minutes)
		}
		time.Sleep(time.Second)
	}
	var delivered struct {
		Orders []struct {
			OrderID string `json:"order_id"`
		}
	}
	if code := getJSON(t, base+"/v1/orders?status=delivered&limit=1", tokAuditor, &delivered); code != http.StatusOK || len(delivered.Orders) == 0 {
		t.Fatalf("no delivered order: %d", code)
	}
	if err := chromedp.Do(tab, chromedp.SetValue(chromedp.ID("order-id"), delivered.Orders[0].OrderID),
		chromedp.Click(chromedp.CSS("#lookup-form button"))); err != nil {
		t.Fatal(err)
	}
	until(t, tab, "the delivered order's timeline", `[...document.querySelectorAll('#timeline li')].some(li => li.dataset.type === 'OrderDelivered')`)
	until(t, tab, "the chart to fit", chartFits)
	until(t, tab, "the reservation backlog", `document.querySelectorAll('#backlog .part').length === 16`)
	// The current minute is drawn as partial; late in the minute its point
	// stands among the others instead of near zero. The page is updated
	// every second, so a few seconds more let it catch up.
	if s := time.Now().Second(); s < 45 {
		time.Sleep(time.Duration(48-s) * time.Second)
	}
	png, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, png, 0o644); err != nil {
		t.Fatal(err)
	}
	if errs := consoleErrors(); len(errs) > 0 {
		t.Errorf("the page logged errors: %v", errs)
	}
}

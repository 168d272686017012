package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/orderengine/engine/commands"
	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/internal/enginetest"
	"github.com/orderengine/engine/internal/httpx"
	"github.com/orderengine/engine/queries"
)

// TestOrdersPastTheReservationBacklogLimitGet503UntilItDrains: with the
// reservation processors stopped, orders on one SKU pile up until its
// partition is past a limit of 3; then new orders on that partition get
// 503 reservation_backlog_full with Retry-After and nothing is stored,
// while a SKU of another partition is still taken. /metrics and the
// dashboard summary show the backlog. Once the processors run again the
// partition drains and orders on it are taken again.
func TestOrdersPastTheReservationBacklogLimitGet503UntilItDrains(t *testing.T) {
	const limit = 3
	e := newAPIEnv(t)
	e.app.Backlog = commands.NewBacklog(e.store, limit, 10*time.Millisecond, e.app.Log)
	tokens, err := httpx.ParseTokens(tokClient + ":client," + tokViewer + ":viewer")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(newServer(serverDeps{app: e.app, store: e.store, db: enginetest.Postgres(t), tokens: tokens, log: e.app.Log}))
	t.Cleanup(srv.Close)
	api := &apiEnv{srv: srv}
	enginetest.Run(t, e.app.Backlog.Run)

	hot := "apple"
	cold := ""
	for i := 0; cold == ""; i++ {
		if sku := fmt.Sprintf("pear_%d", i); eventstore.PartitionOf(sku) != eventstore.PartitionOf(hot) {
			cold = sku
		}
	}
	order := func(sku string) apiCall {
		return apiCall{method: http.MethodPost, path: "/v1/orders", token: tokClient, body: jsonBody(t,
			commands.PlaceOrder{CustomerID: "c1", Currency: "USD", Lines: []domain.Line{{SKU: sku, Qty: 1, UnitPriceCents: 100}}})}
	}

	// The processors' consumers exist, as in a running engine, but no
	// processor pulls: every order adds a request to the hot partition
	// until a sample shows it past the limit.
	for p := range eventstore.ReservationPartitions {
		if _, err := e.store.ReservationConsumer(context.Background(), 0, p); err != nil {
			t.Fatal(err)
		}
	}
	var refused apiResponse
	for placed := 0; ; placed++ {
		if placed == 10_000 {
			t.Fatalf("%d orders taken on a partition with a backlog limit of %d", placed, limit)
		}
		r := api.do(t, order(hot))
		if r.status != http.StatusAccepted {
			refused = r
			if placed < limit {
				t.Errorf("refused after %d orders, with a limit of %d", placed, limit)
			}
			break
		}
	}
	p := wantProblem(t, refused, http.StatusServiceUnavailable, "reservation_backlog_full")
	if !strings.Contains(p.Detail, "nothing was written") {
		t.Errorf("detail %q does not say that nothing was written", p.Detail)
	}

	before := e.streamState(t)
	keyed := order(hot)
	keyed.header = map[string]string{"Idempotency-Key": "backpressure-1"}
	wantProblem(t, api.do(t, keyed), http.StatusServiceUnavailable, "reservation_backlog_full")
	if after := e.streamState(t); after != before {
		t.Errorf("a refused order stored something: stream %+v, then %+v", before, after)
	}
	wantStatus(t, api.do(t, order(cold)), http.StatusAccepted)
	// Bad input is told as such, full partition or not.
	bad := apiCall{method: http.MethodPost, path: "/v1/orders", token: tokClient, body: jsonBody(t,
		commands.PlaceOrder{CustomerID: "c1", Currency: "USD", Lines: []domain.Line{{SKU: hot, Qty: 0, UnitPriceCents: 100}}})}
	wantProblem(t, api.do(t, bad), http.StatusUnprocessableEntity, "validation_failed")

	hotSeries := fmt.Sprintf(`engine_reservation_backlog{partition="%d"}`, eventstore.PartitionOf(hot))
	if n := metricValue(t, api, hotSeries); n <= limit {
		t.Errorf("%s = %v, want past the limit of %d", hotSeries, n, limit)
	}
	if n := metricValue(t, api, "engine_reservation_backlog_limit"); n != limit {
		t.Errorf("engine_reservation_backlog_limit = %v, want %d", n, limit)
	}
	summary := decodeBody[queries.Summary](t, api.do(t, apiCall{method: http.MethodGet, path: "/v1/dashboard/summary", token: tokViewer}))
	if b := summary.ReservationBacklog; b == nil || len(b.Partitions) != eventstore.ReservationPartitions || b.Limit != limit ||
		b.Partitions[eventstore.PartitionOf(hot)] <= limit || b.PeakLastMinute[eventstore.PartitionOf(hot)] < b.Partitions[eventstore.PartitionOf(hot)] {
		t.Errorf("dashboard summary's reservation backlog %+v, want partition %d past the limit of %d", b, eventstore.PartitionOf(hot), limit)
	}

	// The processors catch up; the next sample lets orders in again.
	enginetest.Run(t, e.app.RunProcessors)
	waitUntil(t, "an order on the drained partition to be taken", func() bool {
		r := api.do(t, keyed)
		if r.status != http.StatusAccepted {
			wantProblem(t, r, http.StatusServiceUnavailable, "reservation_backlog_full")
		}
		return r.status == http.StatusAccepted
	})
	if n := metricValue(t, api, hotSeries); n > limit {
		t.Errorf("%s = %v after the order was taken, want within the limit", hotSeries, n)
	}
}

func TestParseBacklogLimit(t *testing.T) {
	for v, want := range map[string]uint64{"": commands.DefaultBacklogLimit, "0": 0, "250": 250} {
		if got, err := parseBacklogLimit(v); err != nil || got != want {
			t.Errorf("ENGINE_RESERVATION_BACKLOG_LIMIT=%q: %d, %v; want %d", v, got, err, want)
		}
	}
	for _, bad := range []string{"-1", "many", "1e4"} {
		if _, err := parseBacklogLimit(bad); err == nil || !strings.Contains(err.Error(), "ENGINE_RESERVATION_BACKLOG_LIMIT") {
			t.Errorf("ENGINE_RESERVATION_BACKLOG_LIMIT=%s: %v, want an error naming it", bad, err)
		}
	}
}

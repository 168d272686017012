package main

import (
	"net/http"
	"strings"
	"testing"
)

// TestResponsesAreNosniffAndV1IsNoStore: every answer tells browsers not
// to sniff its type, and every /v1 answer (orders, inventory, audit,
// dashboard, whoami, problems and command answers alike) tells caches not
// to keep it.
func TestResponsesAreNosniffAndV1IsNoStore(t *testing.T) {
	e, _, srv := fullServer(t)
	order := e.placeOrder(t, tokClient)
	env := &apiEnv{srv: srv}
	for _, c := range []apiCall{
		{method: http.MethodGet, path: "/healthz"},
		{method: http.MethodGet, path: "/openapi.json"},
		{method: http.MethodGet, path: "/no/such/route"},
		{method: http.MethodGet, path: "/v1/whoami", token: tokViewer},
		{method: http.MethodGet, path: "/v1/orders/" + order.OrderID, token: tokViewer},
		{method: http.MethodGet, path: "/v1/orders", token: tokViewer},
		{method: http.MethodGet, path: "/v1/inventory", token: tokViewer},
		{method: http.MethodGet, path: "/v1/inventory/nope", token: tokViewer},
		{method: http.MethodGet, path: "/v1/dashboard/summary", token: tokViewer},
		{method: http.MethodGet, path: "/v1/dashboard/timeseries?metric=orders_placed&bucket=minute", token: tokViewer},
		{method: http.MethodGet, path: "/v1/audit/orders/" + order.OrderID + "/events", token: tokAuditor},
		{method: http.MethodGet, path: "/v1/audit/orders/" + order.OrderID + "/state", token: tokAuditor},
		{method: http.MethodGet, path: "/v1/audit/inventory/widget/events", token: tokAuditor},
		{method: http.MethodGet, path: "/v1/admin/projections", token: tokAdmin},
		{method: http.MethodPost, path: "/v1/orders", token: tokClient, body: jsonBody(t, validOrder())},
		{method: http.MethodPost, path: "/v1/orders", token: tokClient, body: []byte(`{"lines":"x"}`)},
	} {
		r := env.do(t, c)
		if got := r.header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s %s (%d): X-Content-Type-Options %q, want nosniff", c.method, c.path, r.status, got)
		}
		if !strings.HasPrefix(c.path, "/v1/") {
			continue
		}
		if got := r.header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("%s %s (%d): Cache-Control %q, want no-store", c.method, c.path, r.status, got)
		}
	}
}

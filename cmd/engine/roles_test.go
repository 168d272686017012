package main

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/orderengine/engine/internal/enginetest"
	"github.com/orderengine/engine/internal/httpx"
	"github.com/orderengine/engine/projections"
	"github.com/orderengine/engine/webhooks"
)

// roleMatrix is API.md's roles, route by route: who may call what. A route
// the router serves must have a row here (the test fails otherwise), so a
// new route cannot ship without deciding who may call it.
var roleMatrix = map[string][]string{
	"GET /healthz":       nil, // nil: public, no token needed
	"GET /readyz":        nil,
	"GET /metrics":       {tokViewer, tokAuditor, tokAdmin},
	"GET /openapi.json":  nil,
	"GET /":              nil,
	"GET /assets/{name}": nil,
	"GET /v1/whoami":     {tokClient, tokViewer, tokAuditor, tokAdmin},

	"POST /v1/orders":                   {tokClient, tokAdmin},
	"POST /v1/orders/{id}/payment":      {tokClient, tokAdmin},
	"POST /v1/orders/{id}/shipment":     {tokClient, tokAdmin},
	"POST /v1/orders/{id}/delivery":     {tokClient, tokAdmin},
	"POST /v1/orders/{id}/cancellation": {tokClient, tokAdmin},
	"POST /v1/orders/{id}/refunds":      {tokClient, tokAdmin},
	"POST /v1/orders/{id}/returns":      {tokClient, tokAdmin},
	"PUT /v1/inventory/{sku}":           {tokAdmin},
	"POST /v1/inventory/{sku}/restock":  {tokAdmin},

	"GET /v1/orders/{id}":       {tokClient, tokViewer, tokAuditor, tokAdmin},
	"GET /v1/orders":            {tokClient, tokViewer, tokAuditor, tokAdmin},
	"GET /v1/inventory/{sku}":   {tokClient, tokViewer, tokAuditor, tokAdmin},
	"GET /v1/inventory":         {tokClient, tokViewer, tokAuditor, tokAdmin},
	"GET /v1/dashboard/summary": {tokViewer, tokAuditor, tokAdmin},
	"GET /v1/dashboard/timeseries": {
		tokViewer, tokAuditor, tokAdmin,
	},
	"GET /v1/dashboard/stream": {tokViewer, tokAuditor, tokAdmin},

	"GET /v1/audit/orders/{id}/events":          {tokAuditor, tokAdmin},
	"GET /v1/audit/orders/{id}/state":           {tokAuditor, tokAdmin},
	"GET /v1/audit/inventory/{sku}/events":      {tokAuditor, tokAdmin},
	"GET /v1/audit/export":                      {tokAuditor, tokAdmin},
	"GET /v1/audit/verify":                      {tokAuditor, tokAdmin},
	"POST /v1/audit/verify":                     {tokAuditor, tokAdmin},
	"GET /v1/audit/verify/jobs/{id}":            {tokAuditor, tokAdmin},
	"GET /v1/audit/verify/read-models":          {tokAuditor, tokAdmin},
	"GET /v1/admin/projections":                 {tokAdmin},
	"POST /v1/admin/projections/{name}/rebuild": {tokAdmin},
	"GET /v1/admin/projections/{name}/rebuild":  {tokAdmin},
	"GET /v1/admin/dead-letters":                {tokAdmin},
	"POST /v1/admin/dead-letters/{id}/retry":    {tokAdmin},

	"POST /v1/admin/webhooks":                             {tokAdmin},
	"GET /v1/admin/webhooks":                              {tokAdmin},
	"GET /v1/admin/webhooks/{id}":                         {tokAdmin},
	"DELETE /v1/admin/webhooks/{id}":                      {tokAdmin},
	"GET /v1/admin/webhooks/{id}/dead-letters":            {tokAdmin},
	"POST /v1/admin/webhooks/{id}/dead-letters/redeliver": {tokAdmin},
}

// fullServer is newServer with everything, read models included (a real
// Postgres, the main projection): the routes a deployed engine serves.
func fullServer(t *testing.T) (*apiEnv, chi.Routes, *httptest.Server) {
	t.Helper()
	return fullServerWith(t, limitConfig{})
}

// fullServerWith is fullServer with the given request limits (zero fields:
// the defaults). Its projection runner is not started: the read models
// stay at checkpoint 0 unless the test runs it.
func fullServerWith(t *testing.T, limits limitConfig) (*apiEnv, chi.Routes, *httptest.Server) {
	t.Helper()
	e := newAPIEnv(t)
	db := enginetest.Postgres(t)
	tokens, err := httpx.ParseTokens(tokClient + ":client," + tokViewer + ":viewer," + tokAuditor + ":auditor," + tokAdmin + ":admin")
	if err != nil {
		t.Fatal(err)
	}
	rebuilds := projections.NewRebuilds(e.store, db, e.app.Log)
	t.Cleanup(rebuilds.Close)
	runner := projections.NewRunner(e.store, db, e.app.Log)
	// The webhook service is not run: its routes answer, nothing is delivered.
	hooks := webhooks.New(e.store, db, e.app.Log, webhooks.Options{})
	router := newServer(serverDeps{app: e.app, store: e.store, db: db, runners: []*projections.Runner{runner},
		rebuilds: rebuilds, tokens: tokens, log: e.app.Log, limits: limits, webhooks: hooks})
	srv := httptest.NewServer(router)
	t.Cleanup(srv.Close)
	return e, router.(chi.Routes), srv
}

// TestRoleMatrix calls every route the full server serves (read models
// included) without a token and with each role's token, and checks 401,
// 403 or let through exactly as roleMatrix says.
func TestRoleMatrix(t *testing.T) {
	e, router, srv := fullServer(t)
	order := e.placeOrder(t, tokClient)
	env := &apiEnv{srv: srv}

	fill := strings.NewReplacer("/assets/{name}", "/assets/app.js", "{id}", order.OrderID, "{sku}", "widget", "{name}", projections.MainProjection)
	err := chi.Walk(router, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		key := method + " " + route
		allowed, ok := roleMatrix[key]
		if !ok {
			t.Errorf("%s has no row in the role matrix", key)
			return nil
		}
		call := apiCall{method: method, path: fill.Replace(route), body: []byte(`{}`)}
		if method == http.MethodGet {
			call.body = nil
		}
		// A stream never ends by itself: its status is all there is to check.
		call.headersOnly = route == streamPath
		t.Run(key, func(t *testing.T) {
			if r := env.do(t, call); allowed == nil {
				if r.status == http.StatusUnauthorized || r.status == http.StatusForbidden {
					t.Errorf("public route without a token: %s", r)
				}
				return
			} else if r.status != http.StatusUnauthorized {
				t.Errorf("without a token: %s, want 401", r)
			}
			for _, tok := range []string{tokClient, tokViewer, tokAuditor, tokAdmin} {
				call.token = tok
				r := env.do(t, call)
				denied := r.status == http.StatusUnauthorized || r.status == http.StatusForbidden
				switch may := slices.Contains(allowed, tok); {
				case may && denied:
					t.Errorf("%s refused: %s", tok, r)
				case !may && r.status != http.StatusForbidden:
					t.Errorf("%s: %s, want 403", tok, r)
				}
			}
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

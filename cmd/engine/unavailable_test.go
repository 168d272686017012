package main

import (
	"net/http"
	"testing"
)

func TestCommandsAnswer503WhileJetStreamIsDown(t *testing.T) {
	e := newAPIEnv(t)
	e.setOnHand(t, "GONE", 5)
	e.ns.Shutdown()
	e.ns.WaitForShutdown()

	for name, c := range map[string]apiCall{
		"place an order": {method: http.MethodPost, path: "/v1/orders", token: tokClient, body: jsonBody(t, validOrder())},
		"restock":        {method: http.MethodPost, path: "/v1/inventory/GONE/restock", token: tokAdmin, body: []byte(`{"qty":1}`)},
	} {
		t.Run(name, func(t *testing.T) {
			r := e.do(t, c)
			wantProblem(t, r, http.StatusServiceUnavailable, "unavailable")
			if r.header.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
		})
	}
	r := e.do(t, apiCall{method: http.MethodGet, path: "/readyz"})
	if r.status != http.StatusServiceUnavailable {
		t.Errorf("/readyz with JetStream down: %s", r)
	}
}

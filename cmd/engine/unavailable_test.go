package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/orderengine/engine/eventstore"
)

func TestCommandsAnswer503WhileJetStreamIsDown(t *testing.T) {
	e := newAPIEnv(t)
	e.setOnHand(t, "GONE", 5)
	e.ns.Shutdown()
	e.ns.WaitForShutdown()
	e.awaitDisconnected(t)

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

// TestEngineRecoversWhenJetStreamComesBack: commands refused while the
// server was down left nothing behind, and once it is back (same store, same
// address) the engine is ready and takes commands again by itself.
func TestEngineRecoversWhenJetStreamComesBack(t *testing.T) {
	e := newAPIEnv(t)
	e.setOnHand(t, "BACK", 5)
	e.placeOrder(t, tokClient)
	before := e.subjectMsgs(t, "orders.*")
	dir := e.ns.JetStreamConfig().StoreDir
	addr := e.ns.Addr().String()
	e.ns.Shutdown()
	e.ns.WaitForShutdown()
	e.awaitDisconnected(t)
	for range 3 {
		wantProblem(t, e.do(t, apiCall{method: http.MethodPost, path: "/v1/orders", token: tokClient, body: jsonBody(t, validOrder())}),
			http.StatusServiceUnavailable, "unavailable")
	}

	ns, err := eventstore.StartEmbedded(eventstore.EmbeddedOptions{Dir: dir, Listen: addr})
	if err != nil {
		t.Fatalf("restart nats-server: %v", err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	deadline := time.Now().Add(30 * time.Second)
	for e.do(t, apiCall{method: http.MethodGet, path: "/readyz"}).status != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("/readyz not ready 30s after JetStream came back")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := e.subjectMsgs(t, "orders.*"); got != before || before == 0 {
		t.Errorf("orders.* holds %d messages after the refused commands, want %d", got, before)
	}
	e.placeOrder(t, tokClient)
}

// awaitDisconnected waits until the engine's connection has seen the server
// go. A command sent before that is on its way to a server that may or may
// not have taken it, and answers 503 outcome_unknown rather than unavailable.
func (e *apiEnv) awaitDisconnected(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for e.store.Conn().IsConnected() {
		if time.Now().After(deadline) {
			t.Fatal("the engine's NATS connection still looks connected 5s after the server stopped")
		}
		time.Sleep(time.Millisecond)
	}
}

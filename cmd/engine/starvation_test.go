package main

import (
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"
)

// TestConsistencyTokenBeyondTheStoreIs422AtOnce: a token no write ever
// answered with cannot be reached by the read models; waiting the whole
// consistency timeout for it would only hold a request slot. Both spellings
// are refused at once with a 422 naming the one that was sent.
func TestConsistencyTokenBeyondTheStoreIs422AtOnce(t *testing.T) {
	e, _, srv := fullServerWith(t, limitConfig{})
	e.placeOrder(t, tokClient)
	env := &apiEnv{srv: srv}
	for _, c := range []struct {
		field string
		call  apiCall
	}{
		{"consistent_with", apiCall{method: http.MethodGet, path: "/v1/orders?consistent_with=99999999999", token: tokViewer}},
		{"Consistency-Token", apiCall{method: http.MethodGet, path: "/v1/inventory/widget", token: tokViewer,
			header: map[string]string{"Consistency-Token": "99999999999"}}},
		{"consistent_with", apiCall{method: http.MethodGet, path: "/v1/dashboard/summary?consistent_with=99999999999", token: tokViewer}},
	} {
		start := time.Now()
		r := env.do(t, c.call)
		// The read models never reach the token (the projection does not
		// run here), so only the check against the store answers quickly.
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("%s answered after %v, want at once", c.call.path, took)
		}
		wantFieldError(t, wantProblem(t, r, http.StatusUnprocessableEntity, "validation_failed"), c.field)
	}
}

// TestSlowReadsCannotStarveCommands: reads waiting for a Consistency-Token
// the read models have not reached (the projection does not run) fill the
// read budget; orders placed meanwhile are all accepted.
func TestSlowReadsCannotStarveCommands(t *testing.T) {
	const reads = 8
	_, _, srv := fullServerWith(t, limitConfig{MaxInFlight: 64, MaxReadsInFlight: reads, RequestTimeout: 30 * time.Second})
	env := &apiEnv{srv: srv}
	placed := env.do(t, apiCall{method: http.MethodPost, path: "/v1/orders", token: tokClient, body: jsonBody(t, validOrder())})
	wantStatus(t, placed, http.StatusAccepted)
	consistencyToken(t, placed) // a well-formed token
	token := url.QueryEscape(placed.header.Get("Consistency-Token"))

	var wg sync.WaitGroup
	defer wg.Wait()
	slow := apiCall{method: http.MethodGet, path: "/v1/orders?consistent_with=" + token, token: tokViewer}
	for range reads {
		wg.Go(func() {
			if r := env.do(t, slow); r.status != http.StatusServiceUnavailable {
				t.Errorf("a read waiting for an unprojected token: %s, want 503 consistency_timeout", r)
			}
		})
	}
	// The budget is full once one more read is refused as overloaded.
	full := false
	for i := 0; i < 200 && !full; i++ {
		time.Sleep(10 * time.Millisecond)
		r := env.do(t, apiCall{method: http.MethodGet, path: "/v1/whoami", token: tokViewer})
		full = r.status == http.StatusServiceUnavailable
	}
	if !full {
		t.Fatal("the slow reads never filled the read budget")
	}
	var mu sync.Mutex
	statuses := map[int]int{}
	var posts sync.WaitGroup
	for range 20 {
		posts.Go(func() {
			r := env.do(t, apiCall{method: http.MethodPost, path: "/v1/orders", token: tokClient, body: jsonBody(t, validOrder())})
			mu.Lock()
			statuses[r.status]++
			mu.Unlock()
		})
	}
	posts.Wait()
	if statuses[http.StatusAccepted] != 20 {
		t.Errorf("orders placed while reads fill their budget: %v, want 20 × 202", statuses)
	}
	// The reads still held their slots while the orders went through.
	wantProblem(t, env.do(t, slow), http.StatusServiceUnavailable, "overloaded")
}

package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/orderengine/engine/queries"
)

// verifyJobPath is where the README puts verification jobs.
const verifyJobPath = "/v1/audit/verify/jobs/"

// verifyJobStatus is the job's status resource as a client reads it.
type verifyJobStatus struct {
	ID            string                `json:"id"`
	State         string                `json:"state"`
	EventsChecked uint64                `json:"events_checked"`
	FinishedAt    *time.Time            `json:"finished_at"`
	Result        *queries.VerifyReport `json:"result"`
}

// TestVerifyLongerThanTheRequestMayWaitIsAJob: a verification that cannot
// be answered before the request's deadline (here 500 ms, so the wait ends
// at once) is answered 202 with Location: its job, whose status shows the
// events checked and, once done, the report; never a 503 as if the store
// were down.
func TestVerifyLongerThanTheRequestMayWaitIsAJob(t *testing.T) {
	e, _, srv := fullServerWith(t, limitConfig{RequestTimeout: 500 * time.Millisecond})
	for range 3 {
		e.placeOrder(t, tokClient)
	}
	env := &apiEnv{srv: srv}
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		t.Run(method, func(t *testing.T) {
			r := env.do(t, apiCall{method: method, path: "/v1/audit/verify", token: tokAuditor})
			wantStatus(t, r, http.StatusAccepted)
			loc := r.header.Get("Location")
			if !strings.HasPrefix(loc, verifyJobPath) {
				t.Fatalf("Location %q, want a job under %s", loc, verifyJobPath)
			}
			if st := decodeBody[verifyJobStatus](t, r); st.State != "running" && st.State != "done" {
				t.Errorf("status in the 202: %+v", st)
			}
			var st verifyJobStatus
			deadline := time.Now().Add(30 * time.Second)
			for st.State != "done" {
				if time.Now().After(deadline) {
					t.Fatalf("job still %+v after 30 s", st)
				}
				time.Sleep(20 * time.Millisecond)
				got := env.do(t, apiCall{method: http.MethodGet, path: loc, token: tokAuditor})
				wantStatus(t, got, http.StatusOK)
				st = decodeBody[verifyJobStatus](t, got)
				if st.State == "failed" {
					t.Fatalf("job failed: %+v", st)
				}
			}
			// The orders' events, at the least (the read models were never
			// projected here, so they differ from the replay: not ok).
			if st.Result == nil || st.Result.EventsChecked < 3 || st.EventsChecked != st.Result.EventsChecked ||
				!st.Result.ReadModelsCompared || st.FinishedAt == nil {
				t.Errorf("done job: %+v", st)
			}
			var raw map[string]json.RawMessage
			got := env.do(t, apiCall{method: http.MethodGet, path: loc, token: tokAuditor})
			if err := json.Unmarshal(got.body, &raw); err != nil {
				t.Fatal(err)
			}
			var result map[string]json.RawMessage
			if err := json.Unmarshal(raw["result"], &result); err != nil {
				t.Fatal(err)
			}
			for _, field := range []string{"ok", "events_checked", "problems"} {
				if _, ok := result[field]; !ok {
					t.Errorf("the job's result has no %q: %s", field, raw["result"])
				}
			}
		})
	}
	wantProblem(t, env.do(t, apiCall{method: http.MethodGet, path: verifyJobPath + "nope", token: tokAuditor}),
		http.StatusNotFound, "not_found")
}

package commands

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/go-chi/chi/v5/middleware"

	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/internal/httpx"
	"github.com/orderengine/engine/internal/metrics"
)

// serve runs one command request end to end: decode the body into Req,
// check the idempotency key (replay, reuse with another body, in flight),
// execute, and answer. Whatever fails, the answer is a problem document and
// nothing is half-written: the command's events and its idempotency record
// are one atomic batch.
func serve[Req any](a *App, w http.ResponseWriter, r *http.Request, exec func(context.Context, Meta, Req) (Outcome, error)) {
	outcome := "ok"
	defer func() { metrics.Commands.WithLabelValues(reflect.TypeFor[Req]().Name(), outcome).Inc() }()
	fail := func(p *httpx.Problem) {
		outcome = p.Code
		httpx.WriteProblem(w, p)
	}
	body, err := httpx.ReadBody(w, r)
	if err != nil {
		fail(httpx.ProblemFor(r.Context(), a.Log, err))
		return
	}
	req, err := httpx.Decode[Req](body)
	if err != nil {
		fail(httpx.ProblemFor(r.Context(), a.Log, err))
		return
	}
	m, err := a.meta(r, body)
	if err != nil {
		fail(httpx.ProblemFor(r.Context(), a.Log, err))
		return
	}
	if m.IdemKey != "" {
		release, ok := a.inflight.acquire(m.IdemKey)
		if !ok {
			fail(httpx.NewProblem(http.StatusConflict, "idempotency_key_in_flight",
				"a request with this Idempotency-Key is still being processed; retry later"))
			return
		}
		defer release()
		// The key is not looked up here: exec's append fails on a used key,
		// and then answers with its record (eventstore.UpdateOptions).
	}
	out, err := exec(r.Context(), m, req)
	if err != nil {
		fail(httpx.ProblemFor(r.Context(), a.Log, err))
		return
	}
	if out.Replay != nil {
		outcome = replay(w, m, *out.Replay)
		return
	}
	for k, v := range out.Response.Header {
		w.Header().Set(k, v)
	}
	w.Header().Set("Consistency-Token", eventstore.TokenAt(eventstore.Position{Shard: out.Shard, Seq: out.Seq}).String())
	httpx.WriteJSON(w, out.Response.Status, out.Response.Body)
}

// replay answers with the first response to the same key, or 422 when the
// key was used for another request, and returns the outcome to count.
func replay(w http.ResponseWriter, m Meta, rec eventstore.IdemRecord) (outcome string) {
	if rec.Fingerprint != m.Fingerprint {
		httpx.WriteProblem(w, httpx.NewProblem(http.StatusUnprocessableEntity, "idempotency_key_reused",
			"this Idempotency-Key was used for a different request"))
		return "idempotency_key_reused"
	}
	metrics.IdempotentReplays.Inc()
	for k, v := range rec.Header {
		w.Header().Set(k, v)
	}
	w.Header().Set("Idempotent-Replayed", "true")
	// The record is stored right after the command's events, in one batch.
	w.Header().Set("Consistency-Token", eventstore.TokenAt(eventstore.Position{Shard: rec.Shard, Seq: rec.Seq - 1}).String())
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rec.Status)
	_, _ = w.Write(append(rec.Body, '\n'))
	return "replayed"
}

// meta reads the request's command metadata: Idempotency-Key, If-Match and
// the ids that travel into the events' envelopes.
func (a *App) meta(r *http.Request, body []byte) (Meta, error) {
	m := Meta{RequestID: middleware.GetReqID(r.Context())}
	// Bounded as the request id is (httpx.RequestID): both stay in the
	// events for good.
	m.CorrelationID = r.Header.Get("X-Correlation-Id")
	if !httpx.ValidID(m.CorrelationID) {
		m.CorrelationID = m.RequestID
	}
	if key := r.Header.Get("Idempotency-Key"); key != "" || len(r.Header.Values("Idempotency-Key")) > 0 {
		if !httpx.PrintableASCII(key, 255) {
			p := httpx.NewProblem(http.StatusBadRequest, "invalid_idempotency_key", "Idempotency-Key must be 1-255 printable characters")
			p.Errors = map[string]string{"Idempotency-Key": "must be 1-255 printable characters"}
			return Meta{}, p
		}
		// Scoped to the caller: two clients may pick the same key.
		scoped := sha256.Sum256([]byte(httpx.PrincipalFrom(r.Context()).ID + "\x00" + key))
		m.IdemKey = hex.EncodeToString(scoped[:])
		fp := sha256.Sum256([]byte(r.Method + " " + r.URL.Path + "\n" + string(body)))
		m.Fingerprint = hex.EncodeToString(fp[:])
		// Derived from the key, so the events of two racing twins carry the
		// same Nats-Msg-Id and JetStream keeps only one.
		m.CommandID = "idem-" + m.IdemKey[:32]
	} else {
		m.CommandID = a.NewID()
	}
	// "*" matches any existing order, which every order command requires anyway.
	if im := r.Header.Get("If-Match"); im != "" && strings.TrimSpace(im) != "*" {
		v, err := strconv.ParseUint(strings.TrimPrefix(strings.Trim(strings.TrimPrefix(im, "W/"), `"`), "v"), 10, 64)
		if err != nil {
			return Meta{}, httpx.NewProblem(http.StatusBadRequest, "invalid_if_match", `If-Match must be an order version such as "3"`)
		}
		m.IfMatch = &v
	}
	return m, nil
}

// inflightKeys are the idempotency keys whose first request this process is
// still executing. Across processes the record's expected-sequence check
// makes racing twins store one effect; this gives the caller a clear 409.
type inflightKeys struct {
	mu sync.Mutex
	m  map[string]struct{}
}

func (k *inflightKeys) acquire(key string) (release func(), ok bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.m == nil {
		k.m = make(map[string]struct{})
	}
	if _, busy := k.m[key]; busy {
		return nil, false
	}
	k.m[key] = struct{}{}
	return func() {
		k.mu.Lock()
		delete(k.m, key)
		k.mu.Unlock()
	}, true
}

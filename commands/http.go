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
	"github.com/orderengine/engine/queries"
)

// serve runs one command request end to end: decode the body into Req,
// read the command metadata (Idempotency-Key, If-Match), hold the key while
// exec runs the command, and answer with render's status and body for its
// result. A replay is rendered from the first outcome the same way, so it
// answers as the first request was answered. Whatever fails, the answer is
// a problem document and nothing is half-written: the command's events and
// its idempotency record are one atomic batch.
func serve[Req, S, E any](a *App, w http.ResponseWriter, r *http.Request,
	exec func(context.Context, Meta, Req) (Result[S, E], error), render func(http.Header, Result[S, E]) (int, any)) {
	outcome := "ok"
	defer func() { metrics.Commands.WithLabelValues(reflect.TypeFor[Req]().Name(), outcome).Inc() }()
	fail := func(err error) {
		p := httpx.ProblemFor(r.Context(), a.Log, err)
		outcome = p.Code
		httpx.WriteProblem(w, p)
	}
	body, err := httpx.ReadBody(w, r)
	if err != nil {
		fail(err)
		return
	}
	req, err := httpx.Decode[Req](body)
	if err != nil {
		fail(err)
		return
	}
	m, err := a.meta(r, body)
	if err != nil {
		fail(err)
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
		// and then answers with the first outcome (eventstore.UpdateOptions).
	}
	res, err := exec(r.Context(), m, req)
	if err != nil {
		fail(err)
		return
	}
	status, view := render(w.Header(), res)
	if res.Replayed {
		outcome = "replayed"
		metrics.IdempotentReplays.Inc()
		w.Header().Set("Idempotent-Replayed", "true")
	}
	w.Header().Set("Consistency-Token", eventstore.TokenAt(res.Position).String())
	httpx.WriteJSON(w, status, view)
}

// renderOrder answers an order command with status and the order as the
// command left it.
func renderOrder(status int) func(http.Header, OrderResult) (int, any) {
	return func(h http.Header, res OrderResult) (int, any) {
		h.Set("ETag", etag(res.Version))
		h.Set("Location", "/v1/orders/"+res.State.ID)
		return status, queries.NewOrderView(res.State, res.Version)
	}
}

// renderSKU answers an inventory command with the SKU as the command left it.
func renderSKU(h http.Header, res SKUResult) (int, any) {
	h.Set("ETag", etag(res.Version))
	return http.StatusOK, queries.NewInventoryView(res.State, res.Version)
}

func etag(v uint64) string { return `"` + strconv.FormatUint(v, 10) + `"` }

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
		// Scoped to the caller and to the resource it is sent to: two
		// clients may pick the same key, and a key names one request to one
		// resource (docs/design/write-path.md says why not one key across
		// resources).
		scoped := sha256.Sum256([]byte(httpx.PrincipalFrom(r.Context()).ID + "\x00" + r.Method + " " + r.URL.Path + "\x00" + key))
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

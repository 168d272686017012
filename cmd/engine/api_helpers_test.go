package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orderengine/engine/commands"
	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/internal/enginetest"
	"github.com/orderengine/engine/internal/httpx"
	"github.com/orderengine/engine/internal/testnats"
	"github.com/orderengine/engine/queries"
)

// The bearer tokens every test server accepts, one per role of API.md.
const (
	tokClient  = "tok-client"
	tokViewer  = "tok-viewer"
	tokAuditor = "tok-auditor"
	tokAdmin   = "tok-admin"
)

// apiEnv is one engine behind a real HTTP server, on its own embedded
// nats-server: tests that count the stream's messages own it alone.
type apiEnv struct {
	ns    *server.Server
	srv   *httptest.Server
	app   *commands.App
	store *eventstore.Store
	js    jetstream.JetStream
}

func newAPIEnv(t *testing.T) *apiEnv {
	t.Helper()
	ns, _ := testnats.Start(t)
	return startEngineOn(t, ns)
}

// secondEngine is another engine process, as far as the API can tell: its
// own connection, store, App and HTTP server, on e's nats-server.
func (e *apiEnv) secondEngine(t *testing.T) *apiEnv {
	t.Helper()
	return startEngineOn(t, e.ns)
}

func startEngineOn(t *testing.T, ns *server.Server) *apiEnv {
	t.Helper()
	return startEngineWith(t, ns, limitConfig{})
}

// startEngineWith is startEngineOn with the given request limits (zero:
// the defaults).
func startEngineWith(t *testing.T, ns *server.Server, limits limitConfig) *apiEnv {
	t.Helper()
	return startEngineConn(t, ns, testnats.Connect(t, ns), limits)
}

// startEngineConn is startEngineWith on a connection the caller made (and
// closes), such as one with the engine's own options from eventstore.Connect.
func startEngineConn(t *testing.T, ns *server.Server, nc *nats.Conn, limits limitConfig) *apiEnv {
	t.Helper()
	store := enginetest.OpenStore(t, nc)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	app := enginetest.NewApp(store, testReservationTTL)
	tokens, err := httpx.ParseTokens(tokClient + ":client," + tokViewer + ":viewer," + tokAuditor + ":auditor," + tokAdmin + ":admin")
	if err != nil {
		t.Fatalf("parse tokens: %v", err)
	}
	srv := httptest.NewServer(newServer(serverDeps{app: app, store: store, tokens: tokens, log: app.Log, limits: limits}))
	t.Cleanup(srv.Close)
	return &apiEnv{ns: ns, srv: srv, app: app, store: store, js: js}
}

// testReservationTTL is long enough that no order confirmed by a test
// expires while the test runs.
const testReservationTTL = 15 * time.Minute

// noContentType makes a call send no Content-Type header at all.
const noContentType = "-"

// apiCall is one HTTP request to the test server.
type apiCall struct {
	method, path string
	// token is sent as "Authorization: Bearer <token>"; auth, when set, is
	// the raw Authorization header instead. Neither: no header.
	token, auth string
	body        []byte
	// contentType defaults to application/json; noContentType sends none.
	contentType string
	header      map[string]string
	// chunked sends the body without a Content-Length.
	chunked bool
	// headersOnly returns once the headers are in, with the body read only
	// when the answer is not a 200 (a 200 stream would never end).
	headersOnly bool
}

// apiResponse is what the server answered, body read in full.
type apiResponse struct {
	status int
	header http.Header
	body   []byte
}

func (r apiResponse) String() string {
	return fmt.Sprintf("%d %s", r.status, bytes.TrimSpace(r.body))
}

func (e *apiEnv) do(t testing.TB, c apiCall) apiResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var body io.Reader
	if c.body != nil {
		body = bytes.NewReader(c.body)
		if c.chunked {
			body = io.MultiReader(body) // hides the length: sent chunked
		}
	}
	req, err := http.NewRequestWithContext(ctx, c.method, e.srv.URL+c.path, body)
	if err != nil {
		t.Fatalf("new request %s %s: %v", c.method, c.path, err)
	}
	switch c.contentType {
	case "":
		req.Header.Set("Content-Type", "application/json")
	case noContentType:
	default:
		req.Header.Set("Content-Type", c.contentType)
	}
	switch {
	case c.auth != "":
		req.Header.Set("Authorization", c.auth)
	case c.token != "":
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range c.header {
		req.Header[http.CanonicalHeaderKey(k)] = []string{v}
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", c.method, c.path, err)
	}
	defer func() { _ = res.Body.Close() }()
	if c.headersOnly && res.StatusCode == http.StatusOK {
		return apiResponse{status: res.StatusCode, header: res.Header}
	}
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", c.method, c.path, err)
	}
	return apiResponse{status: res.StatusCode, header: res.Header, body: b}
}

// apiProblem is an RFC 9457 problem document as the engine writes it.
type apiProblem struct {
	Type   string            `json:"type"`
	Title  string            `json:"title"`
	Status int               `json:"status"`
	Detail string            `json:"detail"`
	Code   string            `json:"code"`
	Errors map[string]string `json:"errors"`
}

// wantProblem checks that r is an application/problem+json answer with the
// given status and code, and returns the document.
func wantProblem(t testing.TB, r apiResponse, status int, code string) apiProblem {
	t.Helper()
	if r.status != status {
		t.Fatalf("got %s, want status %d (%s)", r, status, code)
	}
	if mt, _, err := mime.ParseMediaType(r.header.Get("Content-Type")); err != nil || mt != "application/problem+json" {
		t.Errorf("Content-Type = %q, want application/problem+json", r.header.Get("Content-Type"))
	}
	var p apiProblem
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("decode problem %s: %v", r, err)
	}
	if p.Status != r.status {
		t.Errorf("problem status = %d, HTTP status %d", p.Status, r.status)
	}
	if p.Code != code {
		t.Errorf("problem code = %q, want %q (%s)", p.Code, code, r)
	}
	if p.Type == "" || p.Title == "" {
		t.Errorf("problem without type or title: %s", r)
	}
	if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
		if r.header.Get("Retry-After") == "" {
			t.Errorf("%d without Retry-After", status)
		}
	}
	return p
}

// wantFieldError checks that a validation problem names exactly field.
func wantFieldError(t testing.TB, p apiProblem, field string) {
	t.Helper()
	if _, ok := p.Errors[field]; !ok || len(p.Errors) != 1 {
		t.Errorf("errors = %v, want exactly the key %q", p.Errors, field)
	}
}

// wantStatus fails the test unless r has the given status.
func wantStatus(t testing.TB, r apiResponse, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("got %s, want status %d", r, status)
	}
}

// decodeBody decodes r's JSON body into T after checking its content type.
func decodeBody[T any](t testing.TB, r apiResponse) T {
	t.Helper()
	if mt, _, err := mime.ParseMediaType(r.header.Get("Content-Type")); err != nil || mt != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", r.header.Get("Content-Type"))
	}
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decode %s: %v", r, err)
	}
	return v
}

// streams returns the events streams, one per shard.
func (e *apiEnv) streams(t testing.TB) []jetstream.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []jetstream.Stream
	for k := range e.store.Shards() {
		s, err := e.js.Stream(ctx, e.store.Stream(k))
		if err != nil {
			t.Fatalf("stream %s: %v", e.store.Stream(k), err)
		}
		out = append(out, s)
	}
	return out
}

// streamState is what tells whether anything was stored: the message
// count and the last sequence of every shard.
type streamState struct {
	msgs     uint64
	lastSeqs string
}

func (e *apiEnv) streamState(t testing.TB) streamState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var st streamState
	for _, s := range e.streams(t) {
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatalf("stream info: %v", err)
		}
		st.msgs += info.State.Msgs
		st.lastSeqs += fmt.Sprintf("%d ", info.State.LastSeq)
	}
	return st
}

// storedSubjects returns how many messages each subject matching filter (a
// logical subject, such as orders.*) holds, over every shard, by logical
// subject.
func (e *apiEnv) storedSubjects(t testing.TB, filter string) map[string]uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out := map[string]uint64{}
	for k, s := range e.streams(t) {
		_, stored := e.store.Locate(k, filter)
		prefix := strings.TrimSuffix(stored, filter)
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(stored))
		if err != nil {
			t.Fatalf("stream info for %s: %v", stored, err)
		}
		for subj, c := range info.State.Subjects {
			out[strings.TrimPrefix(subj, prefix)] += c
		}
	}
	return out
}

// subjectMsgs counts the messages on the subjects matching filter.
func (e *apiEnv) subjectMsgs(t testing.TB, filter string) uint64 {
	t.Helper()
	var n uint64
	for _, c := range e.storedSubjects(t, filter) {
		n += c
	}
	return n
}

// refuse sends c, checks that it is refused with status and code, and that
// the stream holds exactly what it held before. Callers must not share the
// env with a test writing concurrently.
func (e *apiEnv) refuse(t testing.TB, c apiCall, status int, code string) apiProblem {
	t.Helper()
	before := e.streamState(t)
	p := wantProblem(t, e.do(t, c), status, code)
	if after := e.streamState(t); after != before {
		t.Errorf("a refused request changed the stream: %+v, was %+v", after, before)
	}
	return p
}

// refuseOnOrder is refuse for a command on one order: only that order's
// subject is checked, so it is safe while other orders change.
func (e *apiEnv) refuseOnOrder(t testing.TB, orderID string, c apiCall, status int, code string) apiProblem {
	t.Helper()
	subject := eventstore.OrderSubjects + "." + orderID
	before := e.subjectMsgs(t, subject)
	p := wantProblem(t, e.do(t, c), status, code)
	if after := e.subjectMsgs(t, subject); after != before {
		t.Errorf("a refused request changed %s: %d events, was %d", subject, after, before)
	}
	return p
}

// jsonBody marshals v or fails the test.
func jsonBody(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal %T: %v", v, err)
	}
	return b
}

// testLines returns n lines with distinct SKUs.
func testLines(n int, qty, price int64) []domain.Line {
	lines := make([]domain.Line, n)
	for i := range lines {
		lines[i] = domain.Line{SKU: fmt.Sprintf("sku-%d", i), Qty: qty, UnitPriceCents: price}
	}
	return lines
}

// validOrder is a place-order request the engine accepts; its total is
// 2*150 + 3*1000 = 3300.
func validOrder() commands.PlaceOrder {
	return commands.PlaceOrder{CustomerID: "cust-1", Currency: "USD", Lines: []domain.Line{
		{SKU: "apple", Qty: 2, UnitPriceCents: 150},
		{SKU: "pear_1", Qty: 3, UnitPriceCents: 1000},
	}}
}

const validOrderTotal = 3300

func ordersPath(id, action string) string { return "/v1/orders/" + id + "/" + action }

// placeOrder places validOrder through the API as token and returns the view.
func (e *apiEnv) placeOrder(t testing.TB, token string) queries.OrderView {
	t.Helper()
	r := e.do(t, apiCall{method: http.MethodPost, path: "/v1/orders", token: token, body: jsonBody(t, validOrder())})
	wantStatus(t, r, http.StatusAccepted)
	return decodeBody[queries.OrderView](t, r)
}

// confirm confirms an order straight through the App: the reservation saga
// that would do it does not exist yet.
func (e *apiEnv) confirm(t testing.TB, orderID string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := e.app.Orders.Update(ctx, orderID, eventstore.UpdateOptions[domain.Order]{CommandID: "test-confirm-" + orderID},
		func(s eventstore.Snapshot[domain.Order]) ([]domain.OrderEvent, error) {
			return domain.DecideOrder(s.State, domain.ConfirmOrder{At: time.Now().UTC()})
		})
	if err != nil {
		t.Fatalf("confirm order %s: %v", orderID, err)
	}
}

// orderCommand sends a command on an existing order as the client and
// expects 200 with the order in status want.
func (e *apiEnv) orderCommand(t testing.TB, id, action string, body any, want domain.OrderStatus) queries.OrderView {
	t.Helper()
	r := e.do(t, apiCall{method: http.MethodPost, path: ordersPath(id, action), token: tokClient, body: jsonBody(t, body)})
	wantStatus(t, r, http.StatusOK)
	v := decodeBody[queries.OrderView](t, r)
	if v.Status != string(want) {
		t.Fatalf("%s: status %q, want %q", action, v.Status, want)
	}
	return v
}

// orderIn places an order and drives it to status st: confirmed through the
// App, everything after through the API.
func (e *apiEnv) orderIn(t testing.TB, st domain.OrderStatus) queries.OrderView {
	t.Helper()
	v := e.placeOrder(t, tokClient)
	steps := []struct {
		status domain.OrderStatus
		run    func() queries.OrderView
	}{
		{domain.StatusConfirmed, func() queries.OrderView {
			e.confirm(t, v.OrderID)
			v.Status, v.Version = string(domain.StatusConfirmed), v.Version+1
			return v
		}},
		{domain.StatusPaid, func() queries.OrderView {
			return e.orderCommand(t, v.OrderID, "payment", commands.PayOrder{AmountCents: v.TotalCents, PaymentRef: "pay-1"}, domain.StatusPaid)
		}},
		{domain.StatusShipped, func() queries.OrderView {
			return e.orderCommand(t, v.OrderID, "shipment", commands.ShipOrder{Carrier: "DHL", TrackingNumber: "TN-1"}, domain.StatusShipped)
		}},
		{domain.StatusDelivered, func() queries.OrderView {
			return e.orderCommand(t, v.OrderID, "delivery", commands.DeliverOrder{}, domain.StatusDelivered)
		}},
	}
	if st == domain.StatusPending {
		return v
	}
	for _, s := range steps {
		v = s.run()
		if s.status == st {
			return v
		}
	}
	t.Fatalf("orderIn: cannot drive an order to %q", st)
	return v
}

// setOnHand creates or counts sku through the API as admin.
func (e *apiEnv) setOnHand(t testing.TB, sku string, onHand int64) queries.InventoryView {
	t.Helper()
	r := e.do(t, apiCall{method: http.MethodPut, path: "/v1/inventory/" + sku, token: tokAdmin, body: jsonBody(t, commands.SetOnHand{OnHand: onHand})})
	wantStatus(t, r, http.StatusOK)
	return decodeBody[queries.InventoryView](t, r)
}

// consistencyToken parses the Consistency-Token header, which must be a
// number.
// A command's token names one shard, the one it wrote: the sequence there
// is returned, so tokens of one aggregate's commands compare.
func consistencyToken(t testing.TB, r apiResponse) uint64 {
	t.Helper()
	tok, err := eventstore.ParseToken(r.header.Get("Consistency-Token"))
	if err != nil {
		t.Errorf("Consistency-Token %q is not a token: %v", r.header.Get("Consistency-Token"), err)
	}
	var n uint64
	for _, seq := range tok {
		if seq != 0 && n != 0 {
			t.Errorf("Consistency-Token %q names several shards", r.header.Get("Consistency-Token"))
		}
		n = max(n, seq)
	}
	return n
}

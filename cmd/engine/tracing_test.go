package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/orderengine/engine/internal/testnats"
	"github.com/orderengine/engine/internal/tracing"
)

// tracedOrder places one order for a SKU of its own through the engine at
// base, sending traceparent (when not empty) as a caller in a trace of its
// own would, and waits for the outcome (Prefer: wait) and then for the
// read model to hold it (Consistency-Token). It returns the order id.
func tracedOrder(t *testing.T, base, sku, traceparent string) string {
	t.Helper()
	c := engineClient{t: t, base: base}
	c.want("set stock", c.do("PUT", "/v1/inventory/"+sku, tokAdmin, `{"on_hand": 5}`, nil), http.StatusOK, "")
	header := map[string]string{"Prefer": "wait=10"}
	if traceparent != "" {
		header["traceparent"] = traceparent
	}
	placed := c.do("POST", "/v1/orders", tokClient,
		`{"customer_id":"tracer","currency":"USD","lines":[{"sku":"`+sku+`","qty":2,"unit_price_cents":300}]}`, header)
	c.want("place", placed, http.StatusCreated, "")
	if placed.body["status"] != "confirmed" {
		t.Fatalf("order not confirmed: %s", placed.raw)
	}
	id, _ := placed.body["order_id"].(string)
	read := c.do("GET", "/v1/orders/"+id, tokViewer, "", map[string]string{"Consistency-Token": placed.header.Get("Consistency-Token")})
	c.want("read back", read, http.StatusOK, "")
	if read.body["status"] != "confirmed" {
		t.Fatalf("read model: %s", read.raw)
	}
	return id
}

// TestTracingFollowsAnOrderThroughTheEngine places an order over HTTP,
// as a caller with a trace of its own, against the real engine (embedded
// NATS, reservation processors, saga, projection on a real Postgres), with
// the SDK's in-memory exporter, and finds the order's whole path in that
// one trace: the HTTP request, the order's append, the processor's
// decision on its reservation request, the outcome recorded on the order
// (with the SKU's decision, or by the saga in an append of its own), the
// projection of both order events, each the child of the step before.
// The group commit's, the SKU batch's and the projection batch's own spans
// link to them. The trace has that shape whether the order is placed
// directly (its decision and outcome in its placement's batch, told by
// "placement") or through a reservation request.
func TestTracingFollowsAnOrderThroughTheEngine(t *testing.T) {
	for _, direct := range []string{"on", "off"} {
		t.Run("direct placement "+direct, func(t *testing.T) {
			env := dashboardEnv(t)
			env["ENGINE_DIRECT_PLACEMENT"] = direct
			testOrderTrace(t, env, direct == "on")
		})
	}
}

func testOrderTrace(t *testing.T, env map[string]string, direct bool) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(tracing.Use(tp))
	base, _, stop := startEngine(t, env)

	caller := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0x0e, 0x4d, 0x1e}, SpanID: trace.SpanID{0xca, 0x11}, TraceFlags: trace.FlagsSampled})
	id := tracedOrder(t, base, "TRACED", tracing.Traceparent(caller))
	// Stopping waits for the workers and the projection, whose spans end
	// after the answers the test waited for.
	if err := stop(); err != nil {
		t.Fatalf("engine stopped with %v", err)
	}

	all := exp.GetSpans()
	var mine tracetest.SpanStubs
	for _, s := range all {
		if s.SpanContext.TraceID() == caller.TraceID() {
			mine = append(mine, s)
		}
	}
	byName := map[string][]tracetest.SpanStub{}
	for _, s := range mine {
		byName[s.Name] = append(byName[s.Name], s)
	}
	one := func(name string) tracetest.SpanStub {
		t.Helper()
		if len(byName[name]) != 1 {
			t.Fatalf("%d spans %q in the order's trace, want 1; the trace holds %v", len(byName[name]), name, names(mine))
		}
		return byName[name][0]
	}
	childOf := func(child, parent tracetest.SpanStub) {
		t.Helper()
		if child.Parent.SpanID() != parent.SpanContext.SpanID() {
			t.Errorf("%q is not a child of %q", child.Name, parent.Name)
		}
	}
	httpSpan := one("POST /v1/orders")
	if httpSpan.Parent.SpanID() != caller.SpanID() || httpSpan.SpanKind != trace.SpanKindServer {
		t.Errorf("the HTTP span does not continue the caller's span: parent %v kind %v", httpSpan.Parent.SpanID(), httpSpan.SpanKind)
	}
	placed := one("append order")
	for _, s := range byName["append order"] {
		if s.Parent.SpanID() == httpSpan.SpanContext.SpanID() {
			placed = s
		}
	}
	childOf(placed, httpSpan)
	reserve := one("reservation reserve")
	childOf(reserve, placed)
	recorded := one("record outcome")
	childOf(recorded, reserve)
	childOf(one("project OrderPlaced"), placed)
	if attr(recorded, tracing.OrderIDKey) != id {
		t.Errorf("record outcome is about order %q, want %s", attr(recorded, tracing.OrderIDKey), id)
	}
	// The outcome is appended with the order's placement (told_by
	// placement) or with the SKU's decision (decision), its event carrying
	// the record outcome's context, or by the saga (an append of its own,
	// the record outcome's child).
	confirmed := one("project OrderConfirmed")
	by := attr(recorded, tracing.ToldByKey)
	if (by == "placement") != direct {
		t.Errorf("record outcome told by %q with direct placement %v", by, direct)
	}
	switch by {
	case "placement", "decision":
		childOf(confirmed, recorded)
	case "saga":
		var outcome tracetest.SpanStub
		for _, s := range byName["append order"] {
			if s.Parent.SpanID() == recorded.SpanContext.SpanID() {
				outcome = s
			}
		}
		childOf(confirmed, outcome)
	default:
		t.Errorf("record outcome told by %q", by)
	}

	// The batch spans are roots of their own, linked to the order's spans.
	linked := func(name string, to tracetest.SpanStub) {
		t.Helper()
		for _, s := range all {
			if s.Name != name {
				continue
			}
			for _, l := range s.Links {
				if l.SpanContext.SpanID() == to.SpanContext.SpanID() {
					return
				}
			}
		}
		t.Errorf("no %q span links to %q", name, to.Name)
	}
	if !direct {
		linked("commit batch", placed)
	}
	linked("reserve batch", placed)
	for _, s := range all {
		for _, l := range s.Links {
			if s.Name == "reserve batch" && l.SpanContext.SpanID() == placed.SpanContext.SpanID() {
				// The SKU's append is the batch's child; placed directly,
				// the order's events ride in it, so the group commit links
				// to it.
				skuAppend := childOfAny(t, all, "append inventory", s)
				if direct {
					linked("commit batch", skuAppend)
				}
			}
		}
	}
	// Each event's projection span links to its batch's.
	batchLinked := false
	for _, s := range all {
		for _, l := range confirmed.Links {
			batchLinked = batchLinked || (s.Name == "project batch" && s.SpanContext.SpanID() == l.SpanContext.SpanID())
		}
	}
	if !batchLinked {
		t.Errorf("project OrderConfirmed links to no project batch: %v", confirmed.Links)
	}
}

// childOfAny returns a span named name that is a child of parent, and fails
// the test if there is none.
func childOfAny(t *testing.T, spans tracetest.SpanStubs, name string, parent tracetest.SpanStub) tracetest.SpanStub {
	t.Helper()
	for _, s := range spans {
		if s.Name == name && s.Parent.SpanID() == parent.SpanContext.SpanID() {
			return s
		}
	}
	t.Errorf("no %q span is a child of %q", name, parent.Name)
	return tracetest.SpanStub{}
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

// attr returns the string value of s's attribute key.
func attr(s tracetest.SpanStub, key attribute.Key) string {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

// otlpReceiver is an OTLP/HTTP collector as far as the engine can tell:
// it accepts POST /v1/traces (protobuf) and keeps what it got.
type otlpReceiver struct {
	*httptest.Server
	mu       sync.Mutex
	spans    map[string]int // by span name
	services map[string]bool
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	rc := &otlpReceiver{spans: map[string]int{}, services: map[string]bool{}}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		var req coltrace.ExportTraceServiceRequest
		if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" || err != nil || proto.Unmarshal(body, &req) != nil {
			t.Errorf("receiver: unexpected %s %s (%s, %d bytes)", r.Method, r.URL.Path, r.Header.Get("Content-Type"), len(body))
			http.Error(w, "bad export", http.StatusBadRequest)
			return
		}
		rc.mu.Lock()
		defer rc.mu.Unlock()
		for _, rs := range req.GetResourceSpans() {
			for _, kv := range rs.GetResource().GetAttributes() {
				if kv.GetKey() == "service.name" {
					rc.services[kv.GetValue().GetStringValue()] = true
				}
			}
			for _, ss := range rs.GetScopeSpans() {
				for _, sp := range ss.GetSpans() {
					rc.spans[sp.GetName()]++
				}
			}
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
		_, _ = w.Write(out)
	}))
	t.Cleanup(rc.Close)
	return rc
}

// TestTracesReachAnOTLPCollector: with OTEL_EXPORTER_OTLP_ENDPOINT set,
// the engine exports its spans over OTLP/HTTP to that address, under its
// service name; stopping it flushes the last ones.
func TestTracesReachAnOTLPCollector(t *testing.T) {
	rc := newOTLPReceiver(t)
	env := dashboardEnv(t)
	env["OTEL_EXPORTER_OTLP_ENDPOINT"] = rc.URL
	base, _, stop := startEngine(t, env)
	if !tracing.Enabled() {
		t.Fatal("tracing is off with OTEL_EXPORTER_OTLP_ENDPOINT set")
	}
	tracedOrder(t, base, "EXPORTED", "")
	if err := stop(); err != nil {
		t.Fatalf("engine stopped with %v", err)
	}
	if tracing.Enabled() {
		t.Error("tracing still on after the engine stopped")
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, name := range []string{"POST /v1/orders", "append order", "commit batch", "reservation reserve",
		"record outcome", "project OrderPlaced", "project OrderConfirmed", "project batch"} {
		if rc.spans[name] == 0 {
			t.Errorf("the collector got no %q span; it got %v", name, rc.spans)
		}
	}
	if !rc.services[tracing.ServiceName] {
		t.Errorf("service names %v, want %s", rc.services, tracing.ServiceName)
	}
}

// TestTracingIsOffWithoutAnEndpoint: without OTEL_EXPORTER_OTLP_ENDPOINT
// (other OTEL_ variables notwithstanding) tracing stays off, so there is
// no exporter and nothing to export, and the stored messages carry no
// trace context even for a request that came with a traceparent.
func TestTracingIsOffWithoutAnEndpoint(t *testing.T) {
	ns, nc := testnats.Start(t)
	env := dashboardEnv(t)
	env["NATS_URL"] = ns.ClientURL()
	env["OTEL_SERVICE_NAME"] = "not-this-one"
	env["OTEL_EXPORTER_OTLP_HEADERS"] = "x-tenant=shop"
	base, _, stop := startEngine(t, env)
	tracedOrder(t, base, "UNTRACED", "00-0e4d1e00000000000000000000000000-ca11000000000000-01")
	if tracing.Enabled() {
		t.Error("tracing is on without an endpoint")
	}
	if err := stop(); err != nil {
		t.Fatalf("engine stopped with %v", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	checked := 0
	for name := range js.StreamNames(ctx).Name() {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		for seq := uint64(1); seq <= s.CachedInfo().State.LastSeq; seq++ {
			m, err := s.GetMsg(ctx, seq)
			if err != nil {
				continue // deleted (idempotency records expire, say)
			}
			checked++
			for _, h := range []string{"traceparent", "tracestate", tracing.CauseHeader} {
				if v := nats.Header(m.Header).Get(h); v != "" {
					t.Errorf("%s seq %d (%s) carries %s %q", name, seq, m.Subject, h, v)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no stored message to check")
	}
}

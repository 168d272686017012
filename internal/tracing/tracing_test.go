package tracing

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

var sample = trace.NewSpanContext(trace.SpanContextConfig{
	TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6}, TraceFlags: trace.FlagsSampled, Remote: true})

func TestTraceparent(t *testing.T) {
	for name, tc := range map[string]struct {
		in   string
		want trace.SpanContext
	}{
		"round trip":      {Traceparent(sample), sample},
		"not sampled":     {"00-01020300000000000000000000000000-0405060000000000-00", trace.NewSpanContext(trace.SpanContextConfig{TraceID: sample.TraceID(), SpanID: sample.SpanID(), Remote: true})},
		"empty":           {"", trace.SpanContext{}},
		"version ff":      {"ff-01020300000000000000000000000000-0405060000000000-01", trace.SpanContext{}},
		"zero trace id":   {"00-00000000000000000000000000000000-0405060000000000-01", trace.SpanContext{}},
		"short span id":   {"00-01020300000000000000000000000000-0405-01", trace.SpanContext{}},
		"missing flags":   {"00-01020300000000000000000000000000-0405060000000000", trace.SpanContext{}},
		"not hexadecimal": {"00-0102030000000000000000000000000g-0405060000000000-01", trace.SpanContext{}},
	} {
		t.Run(name, func(t *testing.T) {
			if got := ParseTraceparent(tc.in); !got.Equal(tc.want) {
				t.Errorf("ParseTraceparent(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestHeadersCarryTheTraceContext(t *testing.T) {
	h := nats.Header{}
	Inject(context.Background(), h)
	if len(h) != 0 {
		t.Errorf("a context without a span wrote %v", h)
	}
	Inject(trace.ContextWithSpanContext(context.Background(), sample), h)
	if h.Get("traceparent") != Traceparent(sample) {
		t.Errorf("traceparent %q, want %q", h.Get("traceparent"), Traceparent(sample))
	}
	if got := Extract(h); !got.Equal(sample) {
		t.Errorf("Extract = %v, want %v", got, sample)
	}
	if Extract(nil).IsValid() || Extract(nats.Header{"Nats-Msg-Id": {"x"}}).IsValid() {
		t.Error("a trace context read from headers without one")
	}
}

func TestCausesFindEachRequestsTrace(t *testing.T) {
	other := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{9}, SpanID: trace.SpanID{8}, Remote: true})
	h := nats.Header{}
	AddCause(h, "r1", sample)
	AddCause(h, "r2", other)
	AddCause(h, "r3", trace.SpanContext{}) // nothing to record
	h[CauseHeader] = append(h[CauseHeader], "garbled", "r4 not-a-traceparent")
	causes := map[string]trace.SpanContext{}
	Causes(h, causes)
	if len(causes) != 2 || !causes["r1"].Equal(sample) || !causes["r2"].Equal(other) {
		t.Fatalf("causes %v", causes)
	}
	ctx := WithCauses(context.Background(), causes)
	if !CauseOf(ctx, "r2").Equal(other) || CauseOf(ctx, "r3").IsValid() || CauseOf(context.Background(), "r1").IsValid() {
		t.Error("CauseOf does not answer from the context's causes")
	}
}

// TestOffAllocatesNothing: what the hot paths call while tracing is off
// allocates nothing.
func TestOffAllocatesNothing(t *testing.T) {
	if Enabled() {
		t.Fatal("tracing on at the start of a test")
	}
	ctx := context.Background()
	h := nats.Header{"Nats-Msg-Id": {"c:0"}}
	next := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	mw := HTTP("/healthz")(next)
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	w := httptest.NewRecorder()
	if n := testing.AllocsPerRun(100, func() {
		_, span := Start(ctx, "x")
		span.End()
		Inject(ctx, h)
		_ = Extract(h)
		mw.ServeHTTP(w, req)
	}); n != 0 {
		t.Errorf("%v allocations per call while off", n)
	}
}

func TestSetupWithoutAnEndpointLeavesTracingOff(t *testing.T) {
	for name, env := range map[string]map[string]string{
		"nothing":                {},
		"other variables only":   {"OTEL_SERVICE_NAME": "x", "OTEL_EXPORTER_OTLP_HEADERS": "a=b"},
		"SDK disabled":           {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_SDK_DISABLED": "true"},
		"traces exporter 'none'": {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_TRACES_EXPORTER": "none"},
	} {
		t.Run(name, func(t *testing.T) {
			shutdown, err := Setup(context.Background(), func(k string) string { return env[k] }, "test", slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			if Enabled() {
				t.Error("tracing on")
			}
			if err := shutdown(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestSetupRefusesAnEndpointThatIsNotAURL(t *testing.T) {
	_, err := Setup(context.Background(), func(k string) string {
		return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "localhost:4318"}[k]
	}, "test", slog.New(slog.DiscardHandler))
	if err == nil || Enabled() {
		t.Fatalf("Setup with a host:port endpoint: %v, enabled %v", err, Enabled())
	}
}

// TestSetupExportsToTheEndpoint: Setup sends spans to the traces path
// under OTEL_EXPORTER_OTLP_ENDPOINT, and its shutdown flushes them and
// turns tracing off.
func TestSetupExportsToTheEndpoint(t *testing.T) {
	var posts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/traces" && r.Header.Get("Content-Type") == "application/x-protobuf" {
			posts.Add(1)
		}
	}))
	defer srv.Close()
	shutdown, err := Setup(context.Background(), func(k string) string {
		return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL + "/"}[k]
	}, "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if !Enabled() {
		t.Fatal("tracing off with an endpoint")
	}
	_, span := Start(context.Background(), "exported")
	span.End()
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if posts.Load() == 0 {
		t.Error("nothing was exported to /v1/traces")
	}
	if Enabled() {
		t.Error("tracing still on after shutdown")
	}
}

// TestHTTPContinuesTheCallersTrace: the middleware's server span is the
// child of the request's traceparent; a skipped path gets no span.
func TestHTTPContinuesTheCallersTrace(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	defer Use(sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp)))()
	var inner trace.SpanContext
	h := HTTP("/healthz")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/orders" {
			inner = trace.SpanContextFromContext(r.Context())
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	req := httptest.NewRequest(http.MethodPost, "/v1/orders", nil)
	req.Header.Set("traceparent", Traceparent(sample))
	h.ServeHTTP(httptest.NewRecorder(), req)
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/healthz", nil))
	spans := exp.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("%d spans", len(spans))
	}
	s := spans[0]
	if s.SpanContext.TraceID() != sample.TraceID() || s.Parent.SpanID() != sample.SpanID() || !inner.Equal(s.SpanContext) {
		t.Errorf("span %v (parent %v), handler saw %v", s.SpanContext, s.Parent, inner)
	}
	if s.Status.Code.String() != "Error" {
		t.Errorf("a 503 left status %v", s.Status)
	}
}

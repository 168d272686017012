package tracing

import (
	"context"
	"strings"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// The W3C trace context headers, spelled as the standard does: NATS
// headers are case-sensitive.
const (
	traceparentHeader = "traceparent"
	tracestateHeader  = "tracestate"
	// CauseHeader holds, on an event that decides the requests of several
	// traces at once (a SKU's batch of reservation decisions), one value
	// per request: "<key> <traceparent>", so that whoever acts on the
	// decision for one request (the order saga) continues that request's
	// trace rather than the batch's.
	CauseHeader = "Engine-Trace-Cause"
)

var propagator = propagation.TraceContext{}

// natsCarrier lets the W3C propagator read and write NATS headers.
type natsCarrier nats.Header

func (c natsCarrier) Get(k string) string {
	if v := c[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (c natsCarrier) Set(k, v string) { c[k] = []string{v} }

func (c natsCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// Inject writes the trace context of the span in ctx into h (traceparent,
// tracestate). It writes nothing when ctx holds no valid span context,
// which is always the case while tracing is off.
func Inject(ctx context.Context, h nats.Header) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	propagator.Inject(ctx, natsCarrier(h))
}

// Extract reads the trace context stored in h; the zero (invalid) span
// context when h carries none. It does not allocate then.
func Extract(h nats.Header) trace.SpanContext {
	if len(h[traceparentHeader]) == 0 {
		return trace.SpanContext{}
	}
	return trace.SpanContextFromContext(propagator.Extract(context.Background(), natsCarrier(h)))
}

// AddCause records in h that the message decides key's request, which was
// traced as sc (see CauseHeader). An invalid sc records nothing.
func AddCause(h nats.Header, key string, sc trace.SpanContext) {
	if sc.IsValid() {
		h[CauseHeader] = append(h[CauseHeader], key+" "+Traceparent(sc))
	}
}

// Causes adds the causes h records (AddCause) to into, by key.
func Causes(h nats.Header, into map[string]trace.SpanContext) {
	for _, v := range h[CauseHeader] {
		key, tp, ok := strings.Cut(v, " ")
		if !ok {
			continue
		}
		if sc := ParseTraceparent(tp); sc.IsValid() {
			into[key] = sc
		}
	}
}

type causesKey struct{}

// WithCauses returns ctx carrying causes, the span contexts of the
// requests a batch of messages decided, by key: a consumer that hands a
// batch on as decoded events (the order saga's) passes them this way.
func WithCauses(ctx context.Context, causes map[string]trace.SpanContext) context.Context {
	if len(causes) == 0 {
		return ctx
	}
	return context.WithValue(ctx, causesKey{}, causes)
}

// CauseOf returns the span context ctx carries for key (WithCauses); the
// zero one when there is none.
func CauseOf(ctx context.Context, key string) trace.SpanContext {
	causes, _ := ctx.Value(causesKey{}).(map[string]trace.SpanContext)
	return causes[key]
}

// Package tracing is the engine's OpenTelemetry tracing: the switch that
// turns it on (an OTLP endpoint in the environment), the spans' names, and
// the W3C trace context carried from one step of an order to the next in
// the NATS headers of the stored messages. Headers, not the event
// envelope: the envelope is hash-chained for audit, and a trace id is a
// fact about one run of the engine, not about the order.
//
// Tracing is off unless Setup (or Use, in tests) turned it on. Off, every
// function here returns at once without allocating, so the hot paths pay
// one atomic load per call site; callers that would build span options or
// attributes check Enabled first.
package tracing

import (
	"context"
	"strings"
	"sync/atomic"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Scope is the instrumentation scope of every span the engine starts.
const Scope = "github.com/orderengine/engine"

// tracer is the engine's tracer while tracing is on; nil when off.
var tracer atomic.Pointer[trace.Tracer]

// Enabled reports whether spans are being recorded and exported.
func Enabled() bool { return tracer.Load() != nil }

// Use turns tracing on with tp until restore is called, which puts back
// what was there before (off, normally). Setup calls it; tests call it with
// a provider on the SDK's in-memory exporter. Calls must not overlap.
func Use(tp trace.TracerProvider) (restore func()) {
	t := tp.Tracer(Scope)
	prev := tracer.Swap(&t)
	return func() { tracer.Store(prev) }
}

// Start starts a span named name as a child of the span in ctx. Off, it
// returns ctx and the span already in it (a no-op one), allocating
// nothing; but the caller's opts are built before the call, so hot paths
// check Enabled first.
func Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	t := tracer.Load()
	if t == nil {
		return ctx, trace.SpanFromContext(ctx)
	}
	return (*t).Start(ctx, name, opts...)
}

// StartFrom starts a span named name whose parent is parent (a span
// context read from a message's headers) rather than anything in ctx; an
// invalid parent makes it a root span. The returned context carries the
// span, and ctx's deadline and values.
func StartFrom(ctx context.Context, parent trace.SpanContext, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if parent.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, parent)
	} else {
		opts = append(opts, trace.WithNewRoot())
	}
	return Start(ctx, name, opts...)
}

// Links returns a link to every valid span context of scs, at most max of
// them (the SDK drops links beyond its limit anyway, 128 by default).
func Links(scs []trace.SpanContext, max int) []trace.Link {
	var links []trace.Link
	for _, sc := range scs {
		if len(links) == max {
			break
		}
		if sc.IsValid() {
			links = append(links, trace.Link{SpanContext: sc})
		}
	}
	return links
}

// Traceparent is sc in the W3C traceparent format,
// "00-<trace id>-<span id>-<flags>".
func Traceparent(sc trace.SpanContext) string {
	return "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-" + sc.TraceFlags().String()
}

// ParseTraceparent reads a W3C traceparent; the zero (invalid) span
// context when it is not one.
func ParseTraceparent(s string) trace.SpanContext {
	parts := strings.Split(s, "-")
	if len(parts) < 4 || len(parts[0]) != 2 || parts[0] == "ff" {
		return trace.SpanContext{}
	}
	tid, err := trace.TraceIDFromHex(parts[1])
	if err != nil {
		return trace.SpanContext{}
	}
	sid, err := trace.SpanIDFromHex(parts[2])
	if err != nil || len(parts[3]) != 2 {
		return trace.SpanContext{}
	}
	var flags trace.TraceFlags
	switch parts[3][1] {
	case '1', '3', '5', '7', '9', 'b', 'd', 'f':
		flags = trace.FlagsSampled
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: flags, Remote: true})
}

// Fail marks span failed with err; a nil err changes nothing.
func Fail(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
}

package eventstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/internal/enginetest"
	"github.com/orderengine/engine/internal/testnats"
	"github.com/orderengine/engine/internal/tracing"
)

// storedHeader returns the headers of the last message on subject.
func storedHeader(t *testing.T, s *eventstore.Store, nc *nats.Conn, subject string) nats.Header {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, stored := locate(s, subject)
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(ctx, stored)
	if err != nil {
		t.Fatalf("last message of %s: %v", subject, err)
	}
	return m.Header
}

// TestAppendStoresTheTraceContextInHeaders: while tracing is on, an
// append is a span, child of the caller's, whose trace context goes into
// the stored message's headers (not into the hash-chained envelope), and
// the group commit's span links to it; while off, nothing is stored.
func TestAppendStoresTheTraceContextInHeaders(t *testing.T) {
	_, nc := testnats.Start(t)
	s := enginetest.OpenStore(t, nc)
	repo := eventstore.NewRepository(s, tallyKind, 100)

	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	ctx, caller := tp.Tracer("test").Start(context.Background(), "caller")
	defer caller.End()

	t.Run("off", func(t *testing.T) {
		if _, err := repo.Update(ctx, "untraced", eventstore.UpdateOptions[tally]{CommandID: "u1"}, note("a")); err != nil {
			t.Fatal(err)
		}
		if h := storedHeader(t, s, nc, "orders.untraced"); h.Get("traceparent") != "" {
			t.Errorf("stored traceparent %q while tracing is off", h.Get("traceparent"))
		}
		if n := len(exp.GetSpans()); n != 0 {
			t.Errorf("%d spans while tracing is off", n)
		}
	})

	t.Run("on", func(t *testing.T) {
		defer tracing.Use(tp)()
		extra := nats.Header{"Engine-Test": {"kept"}}
		if _, err := repo.Update(ctx, "traced", eventstore.UpdateOptions[tally]{CommandID: "t1", Header: extra}, note("a")); err != nil {
			t.Fatal(err)
		}
		var appendSpan, commit tracetest.SpanStub
		for _, sp := range exp.GetSpans() {
			switch sp.Name {
			case "append tally":
				appendSpan = sp
			case "commit batch":
				commit = sp
			}
		}
		if appendSpan.Parent.SpanID() != caller.SpanContext().SpanID() || appendSpan.SpanContext.TraceID() != caller.SpanContext().TraceID() {
			t.Fatalf("append span %v is not a child of the caller's %v; spans %v", appendSpan.SpanContext, caller.SpanContext(), exp.GetSpans())
		}
		if len(commit.Links) != 1 || !commit.Links[0].SpanContext.Equal(appendSpan.SpanContext) || commit.Parent.IsValid() {
			t.Errorf("commit span: parent %v, links %v; want a root linked to the append", commit.Parent, commit.Links)
		}
		h := storedHeader(t, s, nc, "orders.traced")
		if got := tracing.Extract(h); got.TraceID() != appendSpan.SpanContext.TraceID() || got.SpanID() != appendSpan.SpanContext.SpanID() {
			t.Errorf("stored trace context %v, want the append span's %v", got, appendSpan.SpanContext)
		}
		if h.Get("Engine-Test") != "kept" {
			t.Errorf("UpdateOptions.Header not stored: %v", h)
		}
		// The chain is what it would be without tracing.
		history(t, s, "orders.traced")
	})
}

// BenchmarkAppendTraced is BenchmarkAppendSequential with tracing on
// (every span sampled, exported to memory): what a traced append costs.
func BenchmarkAppendTraced(b *testing.B) {
	_, nc := testnats.Start(b)
	s := enginetest.OpenStore(b, nc)
	repo := eventstore.NewRepository(s, tallyKind, 100)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp))
	defer tracing.Use(tp)()
	ctx, span := tp.Tracer("bench").Start(context.Background(), "caller")
	defer span.End()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := repo.Update(ctx, "seq", eventstore.UpdateOptions[tally]{CommandID: fmt.Sprintf("c%d", i)}, note("x")); err != nil {
			b.Fatal(err)
		}
		if i%1000 == 999 {
			exp.Reset()
		}
	}
}

package commands_test

import (
	"context"
	"slices"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderengine/engine/commands"
	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/internal/testnats"
	"github.com/orderengine/engine/internal/tracing"
)

// TestOrdersTraceGoesOnThroughTheProcessorAndTheSaga: an order's trace
// goes from its placement's append to the processor's decision on its
// request and to the outcome recorded on the order, whichever records it:
// the saga (the deciding engine does not hold the order, so the saga
// appends the outcome in a span of its own) or the decision itself (the
// deciding engine placed the order and tells it in the decision's batch).
func TestOrdersTraceGoesOnThroughTheProcessorAndTheSaga(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tracing.Use(tp)()
	ns, nc := testnats.Start(t)
	front := newEngine(t, nc, time.Hour, false)
	back := newEngine(t, testnats.Connect(t, ns), time.Hour, true)
	back.app.DirectPlacement = false // the request path; placed directly, see cmd/engine's trace test
	back.setStock(t, "TRACE", 100)

	place := func(e *engine, name string) (trace.SpanContext, string) {
		ctx, span := tp.Tracer("test").Start(context.Background(), name)
		defer span.End()
		out, err := e.app.PlaceOrder(ctx, commands.Meta{CommandID: e.app.NewID()},
			commands.PlaceOrder{CustomerID: "c1", Currency: "USD", Lines: []domain.Line{line("TRACE", 1)}})
		if err != nil {
			t.Fatalf("place order: %v", err)
		}
		return span.SpanContext(), out.State.ID
	}
	viaSaga, sagaOrder := place(front, "placed elsewhere")
	// The decision tells only orders on the SKU's shard (a batch is one
	// stream): place until one lands there.
	var viaDecision trace.SpanContext
	var decisionOrder string
	for i := 0; decisionOrder == "" || back.app.Orders.ShardOf(decisionOrder) != back.app.SKUs.ShardOf("TRACE"); i++ {
		if i == 50 {
			t.Fatal("no order of 50 landed on the SKU's shard")
		}
		viaDecision, decisionOrder = place(back, "placed where decided")
	}
	for _, id := range []string{sagaOrder, decisionOrder} {
		if st := front.settle(t, id); st != domain.StatusConfirmed {
			t.Fatalf("order %s %s", id, st)
		}
	}
	back.stop() // every span of the workers ended

	spans := exp.GetSpans()
	byID := map[trace.SpanID]tracetest.SpanStub{}
	for _, s := range spans {
		byID[s.SpanContext.SpanID()] = s
	}
	// path returns the names from the span named name in root's trace up
	// to the trace's root.
	path := func(root trace.SpanContext, name string) []string {
		t.Helper()
		for _, s := range spans {
			if s.Name != name || s.SpanContext.TraceID() != root.TraceID() {
				continue
			}
			var names []string
			for cur, ok := s, true; ok; cur, ok = byID[cur.Parent.SpanID()] {
				names = append(names, cur.Name)
			}
			return names
		}
		t.Fatalf("no %q span in the trace", name)
		return nil
	}
	for _, tc := range []struct {
		root trace.SpanContext
		from string
		want []string
	}{
		{viaSaga, "record outcome", []string{"record outcome", "reservation reserve", "append order", "placed elsewhere"}},
		{viaDecision, "record outcome", []string{"record outcome", "reservation reserve", "append order", "placed where decided"}},
	} {
		if got := path(tc.root, tc.from); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.from, got, tc.want)
		}
	}
	toldBy := map[trace.TraceID]string{}
	outcomeAppended := false
	for _, s := range spans {
		if s.Name == "record outcome" {
			for _, kv := range s.Attributes {
				if kv.Key == tracing.ToldByKey {
					toldBy[s.SpanContext.TraceID()] = kv.Value.AsString()
				}
			}
		}
		if p, ok := byID[s.Parent.SpanID()]; ok && s.Name == "append order" && p.Name == "record outcome" && s.SpanContext.TraceID() == viaSaga.TraceID() {
			outcomeAppended = true
		}
	}
	if toldBy[viaSaga.TraceID()] != "saga" || toldBy[viaDecision.TraceID()] != "decision" {
		t.Errorf("told by %v", toldBy)
	}
	if !outcomeAppended {
		t.Error("the saga's outcome append is not the child of its record outcome")
	}
}

package commands

import (
	"context"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/internal/tracing"
)

// decisionTrace is the tracing of one SKU's batch of reservation
// requests: a span for the batch, linked to every request's trace, and a
// span per request in that request's own trace, so that each order's trace
// goes on through the processor. header records the per-request spans on
// the SKU's event (tracing.CauseHeader) for the saga. The zero value,
// while tracing is off, traces nothing.
type decisionTrace struct {
	batch    trace.Span
	requests []trace.Span
	header   nats.Header
	// byID is the span of each request, by reservation id; told the
	// spans of the outcomes told with the decision (options).
	byID map[string]trace.SpanContext
	told *[]trace.Span
}

// traceDecisions starts the spans of deciding reqs of sku; ctx comes back
// carrying the batch span, the parent of the SKU's append. Off, it
// returns ctx and the zero decisionTrace.
func traceDecisions(ctx context.Context, sku string, reqs []eventstore.ReservationMsg) (context.Context, decisionTrace) {
	if !tracing.Enabled() {
		return ctx, decisionTrace{}
	}
	scs := make([]trace.SpanContext, len(reqs))
	for i, r := range reqs {
		scs[i] = tracing.Extract(r.Header)
	}
	base := ctx
	ctx, batch := tracing.Start(ctx, "reserve batch", trace.WithNewRoot(), trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithLinks(tracing.Links(scs, 128)...),
		trace.WithAttributes(tracing.SKUKey.String(sku), tracing.EventsKey.Int(len(reqs))))
	dt := decisionTrace{batch: batch, requests: make([]trace.Span, 0, len(reqs)), header: nats.Header{},
		byID: make(map[string]trace.SpanContext, len(reqs)), told: new([]trace.Span)}
	for i, r := range reqs {
		_, span := tracing.StartFrom(base, scs[i], "reservation "+string(r.Request.Action),
			trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithLinks(trace.Link{SpanContext: batch.SpanContext()}),
			trace.WithAttributes(tracing.SKUKey.String(sku), tracing.ReservationIDKey.String(r.Request.ReservationID),
				tracing.OrderIDKey.String(r.Request.OrderID)))
		dt.requests = append(dt.requests, span)
		tracing.AddCause(dt.header, r.Request.ReservationID, span.SpanContext())
		dt.byID[r.Request.ReservationID] = span.SpanContext()
	}
	return ctx, dt
}

// options are the append options of o's record told with the decision
// (tellWithDecision): while tracing, with the trace context of a "record
// outcome" span, the child of the span of o's request, in the headers of
// the order's event, so the order's trace goes on to its projection.
func (dt decisionTrace) options(o outcome) eventstore.UpdateOptions[domain.Order] {
	opts := o.options()
	if dt.told == nil {
		return opts
	}
	ctx, span := tracing.StartFrom(context.Background(), dt.byID[o.reservationID], "record outcome",
		trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(outcomeAttrs(o, "decision")...))
	*dt.told = append(*dt.told, span)
	opts.Header = nats.Header{}
	tracing.Inject(ctx, opts.Header)
	return opts
}

// end ends every span, marked failed with err if any.
func (dt decisionTrace) end(err error) {
	if dt.told != nil {
		endSpans(err, *dt.told...)
	}
	endSpans(err, dt.requests...)
	endSpans(err, dt.batch)
}

// traceOutcome starts the saga's span for telling o's order what its line
// got: a child of the processor's span of the request that decided it,
// found through the SKU event's headers (tracing.CauseOf), so the order's
// trace goes on into its outcome's append.
func traceOutcome(ctx context.Context, o outcome) (context.Context, trace.Span) {
	return tracing.StartFrom(ctx, tracing.CauseOf(ctx, o.reservationID), "record outcome",
		trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(outcomeAttrs(o, "saga")...))
}

// outcomeAttrs describe o on its "record outcome" span; by says who
// appended it: "decision" (with the SKU's decision) or "saga".
func outcomeAttrs(o outcome, by string) []attribute.KeyValue {
	return []attribute.KeyValue{tracing.OrderIDKey.String(o.orderID), tracing.SKUKey.String(o.sku),
		tracing.ReservationIDKey.String(o.reservationID), tracing.GrantedKey.Bool(o.granted), tracing.ToldByKey.String(by)}
}

// placementTrace is the tracing of one direct placement batch
// (place_direct.go), in the shape of the request path's: a "reserve
// batch" span of its own, linked to each order's "append order" span, the
// parent of the SKU's append; in each order's trace, a "reservation
// reserve" span, child of its append, and a "record outcome" span (told
// by "placement"), child of that. The order's placement event carries its
// append's context and its outcome the record's, so its projections go on
// in its trace. The zero value, while tracing is off, traces nothing.
type placementTrace struct {
	batch trace.Span
	spans []trace.Span
}

// tracePlacements starts the spans of deciding batch on sku; ctx comes
// back carrying the batch span.
func tracePlacements(ctx context.Context, sku string, batch []*placement) (context.Context, placementTrace) {
	if !tracing.Enabled() {
		return ctx, placementTrace{}
	}
	scs := make([]trace.SpanContext, len(batch))
	for i, p := range batch {
		if p.span != nil {
			scs[i] = p.span.SpanContext()
		}
	}
	ctx, span := tracing.Start(ctx, "reserve batch", trace.WithNewRoot(), trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithLinks(tracing.Links(scs, 128)...),
		trace.WithAttributes(tracing.SKUKey.String(sku), tracing.EventsKey.Int(len(batch))))
	return ctx, placementTrace{batch: span}
}

// rider traces the decision on p's order (o) and puts the trace contexts
// on rd's two events. Off, it does nothing.
func (pt *placementTrace) rider(p *placement, o outcome, rd *eventstore.Rider) {
	if pt.batch == nil || p.span == nil {
		return
	}
	base := context.Background()
	rctx, reserve := tracing.StartFrom(base, p.span.SpanContext(), "reservation reserve",
		trace.WithSpanKind(trace.SpanKindConsumer), trace.WithLinks(trace.Link{SpanContext: pt.batch.SpanContext()}),
		trace.WithAttributes(tracing.SKUKey.String(o.sku), tracing.ReservationIDKey.String(o.reservationID),
			tracing.OrderIDKey.String(o.orderID)))
	octx, record := tracing.Start(rctx, "record outcome",
		trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(outcomeAttrs(o, "placement")...))
	pt.spans = append(pt.spans, record, reserve)
	placedHeader, outcomeHeader := nats.Header{}, nats.Header{}
	tracing.Inject(trace.ContextWithSpan(base, p.span), placedHeader)
	tracing.Inject(octx, outcomeHeader)
	rd.AddHeader(0, placedHeader)
	rd.AddHeader(1, outcomeHeader)
}

// end ends every span, marked failed with err if any.
func (pt *placementTrace) end(err error) {
	endSpans(err, pt.spans...)
	endSpans(err, pt.batch)
}

// endSpans ends every span that is not nil, marked failed with err if any.
func endSpans(err error, spans ...trace.Span) {
	for _, s := range spans {
		if s != nil {
			tracing.Fail(s, err)
			s.End()
		}
	}
}

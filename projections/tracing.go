package projections

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/orderengine/engine/internal/tracing"
)

// traceBatch records the spans of one batch applied (or failed) from
// start until now: one for the batch, a root span of its own since it
// holds the events of many traces, linked to them; and one per event that
// carries a trace context, in that event's trace (a child of the append
// that stored it), so that an order's trace ends with its read model
// written. The per-event spans are made after the fact with the batch's
// times: the batch is one transaction, its events are not applied one by
// one.
func (r *Runner) traceBatch(p prepared, start time.Time, err error) {
	end := time.Now()
	scs := make([]trace.SpanContext, len(p.events))
	for i, ev := range p.events {
		scs[i] = tracing.Extract(ev.Header)
	}
	first, last := p.events[0], p.events[len(p.events)-1]
	_, batch := tracing.Start(context.Background(), "project batch", trace.WithNewRoot(), trace.WithTimestamp(start),
		trace.WithSpanKind(trace.SpanKindConsumer), trace.WithLinks(tracing.Links(scs, 128)...),
		trace.WithAttributes(tracing.ProjectionKey.String(r.name), tracing.ShardKey.Int(first.Shard),
			tracing.EventsKey.Int(len(p.events)), tracing.SeqKey.Int64(int64(first.Seq)), tracing.LastSeqKey.Int64(int64(last.Seq))))
	tracing.Fail(batch, err)
	link := trace.Link{SpanContext: batch.SpanContext()}
	for i, ev := range p.events {
		if !scs[i].IsValid() {
			continue
		}
		name := "project event"
		if len(p.evs) == len(p.events) {
			name = "project " + p.evs[i].env.Type
		}
		_, span := tracing.StartFrom(context.Background(), scs[i], name, trace.WithTimestamp(start),
			trace.WithSpanKind(trace.SpanKindConsumer), trace.WithLinks(link),
			trace.WithAttributes(tracing.ProjectionKey.String(r.name), tracing.ShardKey.Int(ev.Shard),
				tracing.SeqKey.Int64(int64(ev.Seq)), tracing.SubjectKey.String(ev.Subject)))
		tracing.Fail(span, err)
		span.End(trace.WithTimestamp(end))
	}
	batch.End(trace.WithTimestamp(end))
}

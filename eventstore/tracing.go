package eventstore

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderengine/engine/internal/tracing"
)

// withCauses returns ctx carrying the trace contexts of the requests
// msgs decided (tracing.CauseHeader), by reservation id, for the saga to
// continue each order's trace (tracing.CauseOf). Off, ctx as it is.
func withCauses(ctx context.Context, msgs []jetstream.Msg) context.Context {
	if !tracing.Enabled() {
		return ctx
	}
	causes := map[string]trace.SpanContext{}
	for _, m := range msgs {
		tracing.Causes(m.Headers(), causes)
	}
	return tracing.WithCauses(ctx, causes)
}

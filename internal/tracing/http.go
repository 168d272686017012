package tracing

import (
	"net/http"
	"slices"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// HTTP returns the middleware that starts a server span per request,
// named after its method and chi route ("POST /v1/orders"), continuing
// the caller's trace when the request carries a traceparent. The
// handlers' appends are children of it. Requests for the paths in skip
// (probes, scrapes: many, and of no interest in a trace) get none. Off, it
// only calls next.
func HTTP(skip ...string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return httpSpans(next, skip)
	}
}

func httpSpans(next http.Handler, skip []string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !Enabled() || slices.Contains(skip, r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		ctx := propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(semconv.HTTPRequestMethodKey.String(r.Method), semconv.URLPath(r.URL.Path)))
		defer span.End()
		if id := middleware.GetReqID(ctx); id != "" {
			span.SetAttributes(requestIDKey.String(id))
		}
		// chi's writer keeps Flusher and the like, which the dashboard's
		// event stream needs.
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r.WithContext(ctx))
		if rc := chi.RouteContext(ctx); rc != nil && rc.RoutePattern() != "" {
			span.SetName(r.Method + " " + rc.RoutePattern())
			span.SetAttributes(semconv.HTTPRoute(rc.RoutePattern()))
		}
		status := ww.Status()
		if status == 0 {
			status = http.StatusOK
		}
		span.SetAttributes(semconv.HTTPResponseStatusCode(status))
		if status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
	})
}

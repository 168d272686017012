package tracing

import (
	"context"
	"log/slog"
	"strings"

	"github.com/cockroachdb/errors"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
)

// ServiceName is the service.name of the engine's spans unless
// OTEL_SERVICE_NAME (or service.name in OTEL_RESOURCE_ATTRIBUTES) says
// otherwise.
const ServiceName = "order-engine"

// Configured reports whether getenv asks for tracing: an OTLP endpoint
// (OTEL_EXPORTER_OTLP_ENDPOINT, or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), and
// neither OTEL_SDK_DISABLED=true nor OTEL_TRACES_EXPORTER=none.
func Configured(getenv func(string) string) bool {
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") || strings.EqualFold(getenv("OTEL_TRACES_EXPORTER"), "none") {
		return false
	}
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Setup turns tracing on when getenv asks for it (Configured): spans go
// in batches over OTLP/HTTP (protobuf) to the endpoint, the traces path
// /v1/traces appended to OTEL_EXPORTER_OTLP_ENDPOINT as the OTLP
// specification says, or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as it is. The
// SDK reads the other standard variables itself from the process
// environment: OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, _COMPRESSION, the
// sampler (OTEL_TRACES_SAMPLER, default parent-based always-on), the batch
// processor's OTEL_BSP_*, OTEL_RESOURCE_ATTRIBUTES. Export failures are
// logged as warnings: tracing never fails a command.
//
// shutdown flushes the spans still buffered, within ctx, and turns tracing
// off again; without an endpoint Setup changes nothing and shutdown does
// nothing. It fails only when the endpoint is not a URL.
func Setup(ctx context.Context, getenv func(string) string, version string, log *slog.Logger) (shutdown func(context.Context) error, err error) {
	if !Configured(getenv) {
		return func(context.Context) error { return nil }, nil
	}
	url := getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	if url == "" {
		url = strings.TrimRight(getenv("OTEL_EXPORTER_OTLP_ENDPOINT"), "/") + "/v1/traces"
	}
	if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
		return nil, errors.WithHint(errors.Newf("OTLP endpoint %q is not an http(s) URL", url),
			"set OTEL_EXPORTER_OTLP_ENDPOINT to the collector's OTLP/HTTP address, e.g. http://localhost:4318")
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(url))
	if err != nil {
		return nil, errors.Wrap(err, "OTLP trace exporter")
	}
	name := ServiceName
	if n := getenv("OTEL_SERVICE_NAME"); n != "" {
		name = n
	}
	// Later options win: the environment's resource attributes over ours.
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(name), semconv.ServiceVersion(version)),
		resource.WithTelemetrySDK(), resource.WithHost(), resource.WithProcessPID(),
		resource.WithFromEnv())
	if err != nil && res == nil {
		return nil, errors.Wrap(err, "trace resource")
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("tracing: export failed", "err", err)
	}))
	restore := Use(tp)
	log.Info("tracing on: exporting spans over OTLP/HTTP", "endpoint", url, "service", name)
	return func(ctx context.Context) error {
		restore()
		return errors.Wrap(tp.Shutdown(ctx), "flush traces")
	}, nil
}

package telemetry

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Propagator is the W3C trace-context (and baggage) propagator SetupTracing
// installs globally.
var Propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// Tracing is the process's tracer provider and how to flush it.
type Tracing struct {
	// Provider is the SDK provider, or a no-op one when tracing is off.
	Provider trace.TracerProvider
	// Enabled reports whether spans are exported.
	Enabled  bool
	shutdown func(context.Context) error
}

// Shutdown flushes pending spans and stops the exporter. Call it once at exit.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.shutdown == nil {
		return nil
	}
	return t.shutdown(ctx)
}

// SetupTracing configures tracing from the standard OTEL_* environment
// variables only, and installs the provider and the W3C propagator as the
// process's globals (the bus runner and sellerclient use them).
//
// The exporter follows OTEL_TRACES_EXPORTER: otlp (OTLP over HTTP/protobuf
// by default, or gRPC with OTEL_EXPORTER_OTLP_PROTOCOL=grpc, configured by
// the standard OTEL_EXPORTER_OTLP_* variables), console (spans as JSON
// lines on stdout) or none. An unset OTEL_TRACES_EXPORTER means none, as
// does OTEL_SDK_DISABLED=true: the provider is then a no-op and nothing
// changes for users who do not set anything, except that the trace context
// still propagates (events' traceparent, HTTP headers). Only trace
// exporters are built in (autoexport also brings every metrics and logs
// exporter, about 80 packages more to compile for nothing dealflow uses).
// serviceName is the default service.name (OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES override it).
func SetupTracing(ctx context.Context, serviceName string) (*Tracing, error) {
	otel.SetTextMapPropagator(Propagator)
	exp := strings.TrimSpace(strings.ToLower(os.Getenv("OTEL_TRACES_EXPORTER")))
	if exp == "" || exp == "none" || strings.EqualFold(strings.TrimSpace(os.Getenv("OTEL_SDK_DISABLED")), "true") {
		return &Tracing{Provider: noop.NewTracerProvider()}, nil
	}
	exporter, err := spanExporter(ctx, exp)
	if err != nil {
		return nil, fmt.Errorf("telemetry: traces exporter %q: %w", exp, err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", serviceName)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES override
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithProcessPID(),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		_ = exporter.Shutdown(ctx)
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	// The sampler honours OTEL_TRACES_SAMPLER/_ARG (default parentbased_always_on).
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	return &Tracing{Provider: tp, Enabled: true, shutdown: tp.Shutdown}, nil
}

// spanExporter is the exporter OTEL_TRACES_EXPORTER names.
func spanExporter(ctx context.Context, name string) (sdktrace.SpanExporter, error) {
	switch name {
	case "otlp":
		proto := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
		if proto == "" {
			proto = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
		}
		switch strings.TrimSpace(proto) {
		case "", "http/protobuf":
			return otlptracehttp.New(ctx) // endpoint, headers, TLS from OTEL_EXPORTER_OTLP_*
		case "grpc":
			return otlptracegrpc.New(ctx)
		default:
			return nil, fmt.Errorf("OTLP protocol %q is not http/protobuf or grpc", proto)
		}
	case "console":
		return stdouttrace.New()
	}
	return nil, errors.New("not one of otlp, console, none")
}

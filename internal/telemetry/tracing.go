package telemetry

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
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
// The exporter is chosen by go.opentelemetry.io/contrib/exporters/autoexport
// from OTEL_TRACES_EXPORTER (otlp, console, none; OTEL_EXPORTER_OTLP_* for
// otlp). Unlike autoexport's own default, an unset OTEL_TRACES_EXPORTER
// means none, as does OTEL_SDK_DISABLED=true: the provider is then a no-op
// and nothing changes for users who do not set anything, except that the
// trace context still propagates (events' traceparent, HTTP headers).
// serviceName is the default service.name (OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES override it).
func SetupTracing(ctx context.Context, serviceName string) (*Tracing, error) {
	otel.SetTextMapPropagator(Propagator)
	exp := strings.TrimSpace(strings.ToLower(os.Getenv("OTEL_TRACES_EXPORTER")))
	if exp == "" || exp == "none" || strings.EqualFold(strings.TrimSpace(os.Getenv("OTEL_SDK_DISABLED")), "true") {
		return &Tracing{Provider: noop.NewTracerProvider()}, nil
	}
	exporter, err := autoexport.NewSpanExporter(ctx)
	if err != nil {
		return nil, fmt.Errorf("telemetry: traces exporter %q: %w", exp, err)
	}
	if autoexport.IsNoneSpanExporter(exporter) {
		return &Tracing{Provider: noop.NewTracerProvider()}, nil
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

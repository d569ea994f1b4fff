package sellerclient

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// TestTracingOffStillPropagates: with a no-op tracer provider the client
// uses no span machinery, yet a seller still receives the caller's W3C
// trace context (the event's traceparent), unchanged; without one in the
// context, no traceparent is sent.
func TestTracingOffStillPropagates(t *testing.T) {
	t.Parallel()
	f := newFake(t, routes(map[string]reply{"GET /products": {body: `{"products":[],"total_count":0,"limit":500,"offset":0}`}}))
	c := New(Config{AllowPrivate: true, RetryBase: time.Millisecond, TracerProvider: noop.NewTracerProvider()})
	if c.hc.Transport != c.base || !c.injectTrace {
		t.Fatalf("transport %T (inject %v) with a no-op provider, want the bare transport and the client's own injection", c.hc.Transport, c.injectTrace)
	}
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	parent := trace.ContextWithRemoteSpanContext(context.Background(),
		trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true}))
	for _, c2 := range []struct {
		name string
		ctx  context.Context
		want string
	}{
		{"with the caller's trace context", parent, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		{"without one", context.Background(), ""},
	} {
		if _, err := c.ListProducts(c2.ctx, f.URL); err != nil {
			t.Fatalf("%s: %v", c2.name, err)
		}
		if got := f.last(t).Header.Get("Traceparent"); got != c2.want {
			t.Errorf("%s: traceparent %q, want %q", c2.name, got, c2.want)
		}
	}
	// With a real provider every request is a client span (otelhttp).
	if _, ok := New(Config{AllowPrivate: true, TracerProvider: sdktrace.NewTracerProvider()}).hc.Transport.(*otelhttp.Transport); !ok {
		t.Error("a real tracer provider does not get the otelhttp transport")
	}
}

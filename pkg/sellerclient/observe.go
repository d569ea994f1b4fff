package sellerclient

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Observer is told about every HTTP attempt the client makes (a retried
// call reports each attempt). operation is one of Operations' values; code
// is the HTTP status ("200", "503", ...) or an error class: timeout,
// refused, network, bad_response (a 2xx body that does not parse, is
// truncated or too large), redirect_refused, invalid_url, canceled.
// Both are low-cardinality, fit for metrics labels. It must be safe for
// concurrent use.
type Observer func(operation, code string, d time.Duration)

// Operations maps the client's methods to the operation names an Observer
// and the client spans report.
var Operations = map[string]string{
	"AgentCard":       "card",
	"MediaKit":        "media_kit",
	"ListPackages":    "packages",
	"SearchPackages":  "packages",
	"Packages":        "packages",
	"PublicPackage":   "package",
	"Package":         "package",
	"ListProducts":    "products",
	"DiscoverSellers": "registry",
	"VerifyAgent":     "verify",
	"CreateQuote":     "quote",
	"GetQuote":        "quote",
	"Negotiate":       "negotiate",
	"BookDeal":        "deal",
	"GetDeal":         "deal",
	// GetDealPerformance reads a deal's delivery (the pacer).
	"GetDealPerformance": "performance",
}

// operation is the low-cardinality name of a method.
func operation(op string) string {
	if o, ok := Operations[op]; ok {
		return o
	}
	return "other"
}

// opKey carries the operation to the span name formatter.
type opKey struct{}

// tracedTransport wraps base so every request is an OpenTelemetry client
// span (otelhttp) whose W3C traceparent header is sent to the seller. The
// propagator is fixed to trace context, so the header goes out even when the
// process installed no global propagator.
//
// With a no-op provider (tracing off, the default) no span could record:
// tracedTransport then returns base unwrapped and reports off, and the
// client writes the caller's trace context (the traceparent of the event
// being handled) into the request it builds (injectTrace), with no clone of
// the request. otelhttp would compute its span and metric attributes for
// every request all the same, about 5 % of a 1,000-seller media-kit fetch's
// CPU.
func tracedTransport(base http.RoundTripper, tp trace.TracerProvider) (rt http.RoundTripper, off bool) {
	if base == nil {
		base = http.DefaultTransport
	}
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if _, off := tp.(noop.TracerProvider); off {
		return base, true
	}
	return otelhttp.NewTransport(base,
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithPropagators(propagation.TraceContext{}),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			if op, ok := r.Context().Value(opKey{}).(string); ok {
				return r.Method + " " + op
			}
			return r.Method
		}),
		otelhttp.WithSpanOptions(trace.WithAttributes(attribute.String("peer.service", "seller-agent"))),
	), false
}

// injectTrace writes ctx's W3C trace context, if it has one, into h: the
// client's own propagation when tracing is off.
func injectTrace(ctx context.Context, h propagation.TextMapCarrier) {
	if trace.SpanContextFromContext(ctx).IsValid() {
		propagation.TraceContext{}.Inject(ctx, h)
	}
}

// withOp marks ctx with the operation for the span name.
func withOp(ctx context.Context, op string) context.Context {
	return context.WithValue(ctx, opKey{}, operation(op))
}

// WithOperation names, for the span of every request made with ctx
// through a TracedTransport, the operation it belongs to ("POST
// create_media_buy"): another protocol's client (AdCP) reports its calls
// as this client does. name must be of a small, fixed set.
func WithOperation(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, opKey{}, name)
}

// TracedTransport wraps base so every request is an OpenTelemetry client
// span named after its operation (WithOperation) whose traceparent goes to
// the seller; base as is when tp (or, nil, the global provider) is a no-op.
func TracedTransport(base http.RoundTripper, tp trace.TracerProvider) http.RoundTripper {
	rt, _ := tracedTransport(base, tp)
	return rt
}

// observe reports one attempt to the configured Observer.
func (c *Client) observe(op string, status int, err error, start time.Time) {
	if c.cfg.Observe == nil {
		return
	}
	c.cfg.Observe(operation(op), attemptCode(status, err), time.Since(start))
}

// attemptCode is the code label of an attempt: the error class when it
// failed without a usable answer, else the HTTP status.
func attemptCode(status int, err error) string {
	if err == nil {
		return strconv.Itoa(status)
	}
	var e *Error
	if !errors.As(err, &e) {
		return "error"
	}
	switch e.Code {
	case "timeout":
		return "timeout"
	case "connection_refused":
		return "refused"
	case "network":
		return "network"
	case "bad_response", "truncated_body", "body_too_large":
		return "bad_response"
	case "redirect_refused":
		return "redirect_refused"
	case "invalid_url", "private_address":
		return "invalid_url"
	case "canceled":
		return "canceled"
	}
	if e.Status > 0 {
		return strconv.Itoa(e.Status)
	}
	return "error"
}

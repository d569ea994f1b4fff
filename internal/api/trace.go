package api

import (
	"context"
	"crypto/rand"
	"net/http"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/dealflow/dealflow/internal/bus"
)

// callerTrace is the W3C trace context a caller sent with its request.
var callerTrace propagation.TraceContext

// span starts the server span of a request that changes a campaign, in
// the campaign's one trace:
//
//   - a new campaign (campaignTP empty) is a child of the caller's
//     traceparent when it sent one, so the caller's trace is the
//     campaign's;
//   - a request about an existing campaign (an approval, a rejection)
//     continues the campaign's trace (campaignTP), with a link to the
//     caller's span when the caller is in another trace.
//
// With tracing off the span is not recorded, but ctx still carries a span
// context (the caller's, the campaign's, or a fresh one), so the events
// published in ctx and the returned logger's trace_id and span_id agree
// with the stages' log lines for the campaign.
func (a *server) span(r *http.Request, name, campaignTP string) (context.Context, trace.Span, zerolog.Logger) {
	ctx := r.Context()
	caller := trace.SpanContextFromContext(callerTrace.Extract(ctx, propagation.HeaderCarrier(r.Header)))
	parent := ctx
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}
	campaign := trace.SpanContextFromContext(bus.ContextWithTraceparent(ctx, campaignTP))
	switch {
	case campaign.IsValid():
		parent = trace.ContextWithRemoteSpanContext(ctx, campaign)
		if caller.IsValid() && caller.TraceID() != campaign.TraceID() {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: caller}))
		}
	case caller.IsValid():
		parent = trace.ContextWithRemoteSpanContext(ctx, caller)
	default:
		parent = trace.ContextWithRemoteSpanContext(ctx, freshSpanContext())
	}
	tp := a.opts.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	ctx, sp := tp.Tracer("github.com/dealflow/dealflow/internal/app").Start(parent, name, opts...)
	sc := sp.SpanContext()
	if !sc.IsValid() {
		// A no-op tracer carries the parent's span context on.
		sc = trace.SpanContextFromContext(parent)
	}
	log := a.log.With().Str("trace_id", sc.TraceID().String()).Str("span_id", sc.SpanID().String()).Logger()
	return ctx, sp, log
}

// freshSpanContext is a random, sampled span context: the root of a new
// campaign's trace when neither the caller nor a tracer gave one.
func freshSpanContext() trace.SpanContext {
	var tid trace.TraceID
	var sid trace.SpanID
	_, _ = rand.Read(tid[:])
	_, _ = rand.Read(sid[:])
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true})
}

package bus

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/dealflow/dealflow/pkg/events"
)

// Outcomes of handling one delivery of an event, as reported to an Observer.
const (
	OutcomeOK           = "ok"            // handled, outputs published, acked
	OutcomeRetried      = "retried"       // transient failure (or a failed ack): redelivered later
	OutcomeDeadLettered = "dead_lettered" // copied to the dead-letter subject
	OutcomeAgain        = "again"         // handled for now (Again): outputs published, looked at again later
)

// Dead-letter reason classes, a small fixed set for metrics labels.
const (
	DeadLetterMalformed     = "malformed"      // undecodable, unknown type or bad campaign id
	DeadLetterSchema        = "schema"         // the handler found the payload invalid (events.ErrInvalid)
	DeadLetterPermanent     = "permanent"      // the handler returned a Permanent error (or panicked)
	DeadLetterMaxDeliveries = "max_deliveries" // transient failures until MaxDeliver
	DeadLetterHardLimit     = "hard_limit"     // the handler outran its hard limit twice (HardLimitError)
)

// Observer is told what the stage runner does with each event; the
// Prometheus implementation is telemetry.Metrics. Implementations must be
// safe for concurrent use and cheap: they run on the handling path. Labels
// passed in are low-cardinality (stage names, known event types, the
// outcome and reason constants above).
type Observer interface {
	// EventReceived is called once a delivery is decoded, before the
	// handler runs; eventTime is the event's CloudEvents time (lag = now -
	// eventTime).
	EventReceived(stage, eventType string, eventTime time.Time)
	// EventHandled is called once per delivery with OutcomeOK,
	// OutcomeRetried, OutcomeAgain or OutcomeDeadLettered and the handling time (handler
	// and publication).
	EventHandled(stage, eventType, outcome string, d time.Duration)
	// DeadLettered is called when a delivery is dead-lettered, with one of
	// the DeadLetter* classes.
	DeadLettered(stage, reason string)
}

type nopObserver struct{}

func (nopObserver) EventReceived(string, string, time.Time)            {}
func (nopObserver) EventHandled(string, string, string, time.Duration) {}
func (nopObserver) DeadLettered(string, string)                        {}
func (b *Bus) observer() Observer {
	if b.Observer == nil {
		return nopObserver{}
	}
	return b.Observer
}

// tracerName is the instrumentation scope of the runner's spans.
const tracerName = "github.com/dealflow/dealflow/internal/bus"

func (b *Bus) tracer() trace.Tracer {
	tp := b.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return tp.Tracer(tracerName)
}

// traceContext is the W3C propagator for the events' traceparent extension.
var traceContext propagation.TraceContext

// handling is one delivery being handled: its span, its start and the
// decoded event's labels.
type handling struct {
	b         *Bus
	stage     string
	eventType string
	started   time.Time
	span      trace.Span
	done      bool
}

// beginHandling reports the received event, starts the stage's span as a
// child of the event's traceparent, and returns a context that carries the
// span and a logger with the delivery's (stage, stream_seq, num_delivered),
// the event's and the span's ids: handlers log with Logger(ctx, fallback)
// (zerolog.Ctx) so every line has trace_id and span_id. The logger's fields
// are added in one chain (each With copies the fields so far), and the span
// gets its attributes only when it records (with tracing off it never
// does), since this runs for every event handled.
func (b *Bus) beginHandling(ctx context.Context, stage string, in events.Event, md *jetstream.MsgMetadata) (context.Context, zerolog.Logger, handling) {
	b.observer().EventReceived(stage, in.Type(), in.Time())
	if tp := events.TraceparentOf(in); tp != "" {
		ctx = traceContext.Extract(ctx, &traceparentCarrier{tp: tp})
	}
	kind, _ := events.KindOf(in.Type())
	ctx, span := b.tracer().Start(ctx, stage+" "+kind.Name, trace.WithSpanKind(trace.SpanKindConsumer))
	if span.IsRecording() {
		span.SetAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.operation.type", "process"),
			attribute.String("messaging.consumer.group.name", stage),
			attribute.String("cloudevents.event_id", in.ID()),
			attribute.String("cloudevents.event_type", in.Type()),
			attribute.String("dealflow.campaign_id", in.Subject()),
		)
	}
	log := b.Log
	if log.GetLevel() != zerolog.Disabled { // a disabled logger writes nothing: no context to build (a 500-byte buffer)
		lc := log.With().Str("stage", stage).Uint64("stream_seq", md.Sequence.Stream).Uint64("num_delivered", md.NumDelivered).
			Str("event_id", in.ID()).Str("event_type", in.Type()).Str("campaign_id", in.Subject())
		if sc := span.SpanContext(); sc.IsValid() {
			lc = lc.Str("trace_id", sc.TraceID().String()).Str("span_id", sc.SpanID().String())
		}
		log = lc.Logger()
	}
	ctx = log.WithContext(ctx)
	return ctx, log, handling{b: b, stage: stage, eventType: in.Type(), started: time.Now(), span: span}
}

// traceparentCarrier carries one traceparent to and from the W3C
// propagator without the map a propagation.MapCarrier needs.
type traceparentCarrier struct{ tp string }

// Get returns the traceparent; the propagator's other keys are empty.
func (c *traceparentCarrier) Get(key string) string {
	if key == events.TraceparentExt {
		return c.tp
	}
	return ""
}

// Set keeps the traceparent and drops the other keys (tracestate: the
// events carry none).
func (c *traceparentCarrier) Set(key, value string) {
	if key == events.TraceparentExt {
		c.tp = value
	}
}

// Keys lists the one key carried.
func (*traceparentCarrier) Keys() []string { return []string{events.TraceparentExt} }

// end reports the outcome (once) and ends the span. reason is a DeadLetter*
// class for OutcomeDeadLettered; err is the handler's error, if any.
func (h *handling) end(outcome, reason string, err error) {
	if h == nil || h.done {
		return
	}
	h.done = true
	o := h.b.observer()
	o.EventHandled(h.stage, h.eventType, outcome, time.Since(h.started))
	if outcome == OutcomeDeadLettered {
		o.DeadLettered(h.stage, reason)
	}
	h.span.SetAttributes(attribute.String("dealflow.outcome", outcome))
	if err != nil {
		h.span.RecordError(err)
		h.span.SetStatus(codes.Error, truncate(err.Error(), 256))
	}
	h.span.End()
}

// observeMalformed reports a delivery dead-lettered before it could be
// decoded (its type is then reported as "unknown").
func (b *Bus) observeMalformed(stage string) {
	o := b.observer()
	o.EventHandled(stage, "unknown", OutcomeDeadLettered, 0)
	o.DeadLettered(stage, DeadLetterMalformed)
}

// permanentClass is the dead-letter class of a permanent handler error.
func permanentClass(err error) string {
	if errors.Is(err, events.ErrInvalid) {
		return DeadLetterSchema
	}
	return DeadLetterPermanent
}

// injectTrace writes the current span's context (the handling span) into
// every output's traceparent, so each hop is a child of the one before
// instead of the whole campaign sharing its first span. Without a span in
// ctx the outputs keep what events.Derive gave them (the parent's).
func injectTrace(ctx context.Context, outs []events.Event) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	var c traceparentCarrier
	traceContext.Inject(ctx, &c)
	tp := c.tp
	if tp == "" {
		return
	}
	for i := range outs {
		// With tracing off the span context is the input's, which Derive
		// already gave each output: setting it again would only allocate.
		if events.TraceparentOf(outs[i]) != tp {
			outs[i].SetExtension(events.TraceparentExt, tp)
		}
	}
}

// TraceparentFrom is the W3C traceparent of ctx's span context, or "" when
// ctx carries none: what an event published in ctx continues.
func TraceparentFrom(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	var c traceparentCarrier
	traceContext.Inject(ctx, &c)
	return c.tp
}

// ContextWithTraceparent is ctx carrying tp (a W3C traceparent) as its
// remote parent span context; ctx unchanged when tp is not one.
func ContextWithTraceparent(ctx context.Context, tp string) context.Context {
	if tp == "" {
		return ctx
	}
	return traceContext.Extract(ctx, &traceparentCarrier{tp: tp})
}

// Logger returns the logger the runner put in ctx for the event being
// handled (stage, event id and type, campaign id, trace_id, span_id), or
// fallback when ctx carries none (a handler called outside the runner).
// Handlers should log through it so their lines can be joined to traces.
func Logger(ctx context.Context, fallback zerolog.Logger) *zerolog.Logger {
	if l := zerolog.Ctx(ctx); l.GetLevel() != zerolog.Disabled {
		return l
	}
	return &fallback
}

// CampaignLogger is Logger for a campaign's handling: the runner's logger
// already names the campaign (with the event, trace and span ids), the
// fallback gets campaign_id added, so every line names it exactly once.
func CampaignLogger(ctx context.Context, fallback zerolog.Logger, campaignID string) zerolog.Logger {
	if l := zerolog.Ctx(ctx); l.GetLevel() != zerolog.Disabled {
		return *l
	}
	if fallback.GetLevel() == zerolog.Disabled {
		return fallback // writes nothing: no context to build
	}
	return fallback.With().Str("campaign_id", campaignID).Logger()
}

// ConsumerStats returns, per durable consumer of the event stream, the
// number of events not yet delivered (pending) and delivered but not yet
// acknowledged (ack pending): [0] pending, [1] ack pending. Metrics read it
// at scrape time.
func (b *Bus) ConsumerStats(ctx context.Context) (map[string][2]uint64, error) {
	st, err := b.JS.Stream(ctx, StreamEvents)
	if err != nil {
		return nil, err
	}
	out := map[string][2]uint64{}
	lister := st.ListConsumers(ctx)
	for info := range lister.Info() {
		// Only durables: ephemeral consumers (follow, tests) have random
		// names that would make unbounded label values.
		if info == nil || info.Config.Durable == "" || strings.TrimSpace(info.Name) == "" {
			continue
		}
		out[info.Name] = [2]uint64{info.NumPending, uint64(max(info.NumAckPending, 0))}
	}
	if err := lister.Err(); err != nil {
		return out, err
	}
	return out, nil
}

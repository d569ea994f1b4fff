package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dealflow/dealflow/pkg/events"
)

// Handler is a stage's business logic: given one event and its payload, the
// events it causes. It knows nothing about acks. The runner decodes the
// payload once, strictly, and checks it before the call: payload is a
// pointer to the kind's payload type (a *events.SellerFound for a
// SellerFound), the handler's own. Return an error wrapping
// events.ErrInvalid or made with Permanent for input that can never succeed
// (it is dead-lettered); any other error is retried with backoff. An output
// events.New or Derive refuses (a *events.SchemaError) is the handler's
// bug, not the input's: see OutputError.
type Handler func(ctx context.Context, in events.Event, payload any) ([]events.Event, error)

// Typed adapts a handler of one kind's payload type T, which the runner
// hands over as a *T. A payload of another type is an invalid input
// (dead-lettered): the stage's subjects name a kind it does not handle.
func Typed[T any](h func(ctx context.Context, in events.Event, p *T) ([]events.Event, error)) Handler {
	return func(ctx context.Context, in events.Event, payload any) ([]events.Event, error) {
		p, ok := payload.(*T)
		if !ok {
			return nil, fmt.Errorf("%w: %s: a %T handler got %T", events.ErrInvalid, in.Type(), p, payload)
		}
		return h(ctx, in, p)
	}
}

// EventOnly adapts a handler that reads the event alone: it needs no
// payload (the notifier forwards the event as it is) or decodes it itself
// with events.PayloadOf.
func EventOnly(h func(ctx context.Context, in events.Event) ([]events.Event, error)) Handler {
	return func(ctx context.Context, in events.Event, _ any) ([]events.Event, error) { return h(ctx, in) }
}

// permanentError marks an error that retrying cannot fix.
type permanentError struct{ err error }

// Error implements error.
func (p permanentError) Error() string { return p.err.Error() }

// Unwrap exposes the wrapped error to errors.Is/As.
func (p permanentError) Unwrap() error { return p.err }

// Permanent marks err as not worth retrying: the input is dead-lettered.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// againError asks for the input to be handled again later.
type againError struct {
	after  time.Duration
	reason string
}

// Error implements error.
func (a againError) Error() string {
	return fmt.Sprintf("again in %s: %s", a.after, a.reason)
}

// Again is a handler's answer for work that is not finished and must be
// looked at again later, not retried as a failure: the runner publishes
// the outputs returned with it (as on success), then redelivers the input
// after d instead of acknowledging it. The schedule lives in JetStream
// (NakWithDelay), so it survives the process. A stage that uses it sets
// MaxDeliver to -1 and bounds the work itself (the booker's line consumer
// follows an unknown booking outcome this way until it is resolved).
func Again(d time.Duration, reason string) error { return againError{after: d, reason: reason} }

// IsPermanent reports whether err was marked Permanent or is an invalid event.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p) || errors.Is(err, events.ErrInvalid)
}

// StageConfig configures one stage's durable consumer and worker pool.
type StageConfig struct {
	// Name is the durable consumer name, shared by every replica.
	Name string
	// Subjects are the consumer's filter subjects (the stage's inputs).
	Subjects []string
	// Workers is how many events one replica handles at once (default 8).
	Workers int
	// AckWait is how long the server waits for an ack before redelivering
	// (default 30s); long handlers send InProgress every AckWait/3.
	AckWait time.Duration
	// MaxDeliver caps deliveries (default 8); an event still failing then
	// is dead-lettered. -1 means no cap: for a stage whose handler bounds
	// its own work and answers Again until it is done.
	MaxDeliver int
	// MaxAckPending caps unacknowledged events across all replicas
	// (default 1000).
	MaxAckPending int
	// RetryBase and RetryMax shape the NakWithDelay backoff: base*2^(n-1),
	// capped (defaults 500ms and 30s).
	RetryBase, RetryMax time.Duration
	// HandlerTimeout bounds one handler call (default 5 min): its context
	// is cancelled then.
	HandlerTimeout time.Duration
	// HandlerGrace is how long a handler whose context was cancelled may
	// take to return (default 10s). Past HandlerTimeout + HandlerGrace, the
	// hard limit, the handling is abandoned: its worker slot is freed, its
	// keep-alive stopped, any outputs it returns later dropped, and the
	// event is retried once (a handler stuck on something passing, like a
	// call that ignores its context), then dead-lettered with the reason.
	// A stage with MaxDeliver -1 retries it with backoff instead, never
	// dead-letters it (see handleMsg).
	HandlerGrace time.Duration
	// DrainTimeout bounds how long shutdown waits for in-flight handlers
	// (default 30s).
	DrainTimeout time.Duration

	// afterPublish, when set, runs after the outputs are published and
	// before the ack; tests use it to simulate a crash in between.
	afterPublish func(in events.Event) bool
}

func (c StageConfig) withDefaults() StageConfig {
	if c.Workers <= 0 {
		c.Workers = 8
	}
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
	if c.MaxDeliver == 0 || c.MaxDeliver < -1 {
		c.MaxDeliver = 8
	}
	if c.MaxAckPending <= 0 {
		c.MaxAckPending = 1000
	}
	if c.RetryBase <= 0 {
		c.RetryBase = 500 * time.Millisecond
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 30 * time.Second
	}
	if c.HandlerTimeout <= 0 {
		c.HandlerTimeout = 5 * time.Minute
	}
	if c.HandlerGrace <= 0 {
		c.HandlerGrace = 10 * time.Second
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 30 * time.Second
	}
	return c
}

// exhausted reports whether delivery n was the last one MaxDeliver allows.
func (c StageConfig) exhausted(n uint64) bool {
	return c.MaxDeliver > 0 && int(n) >= c.MaxDeliver
}

// Backoff is the delay before redelivery number n (n = deliveries so far).
func (c StageConfig) Backoff(n uint64) time.Duration {
	d := c.RetryBase
	for i := uint64(1); i < n && d < c.RetryMax; i++ {
		d *= 2
	}
	return min(d, c.RetryMax)
}

// Consumer creates or updates the stage's durable consumer. Every replica
// calls it with the same config, so they bind the same durable.
func (b *Bus) Consumer(ctx context.Context, cfg StageConfig) (jetstream.Consumer, error) {
	cfg = cfg.withDefaults()
	cc := jetstream.ConsumerConfig{
		Durable:       cfg.Name,
		Description:   "dealflow stage " + cfg.Name,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckWait,
		MaxDeliver:    cfg.MaxDeliver,
		MaxAckPending: cfg.MaxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	if len(cfg.Subjects) == 1 {
		cc.FilterSubject = cfg.Subjects[0]
	} else {
		cc.FilterSubjects = cfg.Subjects
	}
	return b.ensureConsumer(ctx, StreamEvents, cc)
}

// ensureConsumer creates a durable consumer, or updates it only when an
// existing one differs: every replica binds the same durable at start-up,
// and an identical create is a no-op on the server.
func (b *Bus) ensureConsumer(ctx context.Context, stream string, cc jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	c, err := b.JS.CreateConsumer(ctx, stream, cc)
	if errors.Is(err, jetstream.ErrConsumerExists) {
		c, err = b.JS.UpdateConsumer(ctx, stream, cc)
	}
	if err != nil {
		return nil, fmt.Errorf("bus: consumer %s: %w", cc.Durable, err)
	}
	return c, nil
}

// Run handles the stage's events until ctx is done, then drains: it stops
// pulling, lets in-flight handlers finish (up to DrainTimeout) and returns.
// For each event: decode (an undecodable event is dead-lettered), call the
// handler, publish every output (deterministic ids, so a retry cannot
// duplicate them), and only then ack. Transient failures are retried with
// NakWithDelay; permanent ones and exhausted retries are dead-lettered.
func (b *Bus) Run(ctx context.Context, cfg StageConfig, h Handler) error {
	cfg = cfg.withDefaults()
	cons, err := b.Consumer(ctx, cfg)
	if err != nil {
		return err
	}
	log := b.Log.With().Str("stage", cfg.Name).Logger()

	// Handlers get their own context so shutdown does not abort work half
	// way; it is cancelled only when the drain times out.
	hctx, hcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer hcancel()
	sem := make(chan struct{}, cfg.Workers)
	var wg sync.WaitGroup

	cc, err := cons.Consume(func(m jetstream.Msg) {
		// Heartbeat from receipt, not from the start of handling: a message
		// buffered behind busy workers must not time out and be redelivered
		// to another replica meanwhile.
		stop := b.keepAlive(hctx, m, cfg.AckWait/3)
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			b.handleMsg(hctx, cfg, h, m, stop)
		}()
	},
		jetstream.PullMaxMessages(2*cfg.Workers),
		jetstream.PullExpiry(5*time.Second),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if !errors.Is(err, jetstream.ErrNoHeartbeat) || ctx.Err() == nil {
				log.Warn().Err(err).Msg("consume")
			}
		}))
	if err != nil {
		return fmt.Errorf("bus: consume %s: %w", cfg.Name, err)
	}
	log.Info().Int("workers", cfg.Workers).Strs("subjects", cfg.Subjects).Msg("stage running")
	<-ctx.Done()
	cc.Drain()
	select {
	case <-cc.Closed():
	case <-time.After(cfg.DrainTimeout):
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(cfg.DrainTimeout):
		log.Warn().Msg("drain timed out; cancelling in-flight handlers")
		hcancel()
		<-done
	}
	log.Info().Msg("stage stopped")
	return nil
}

func (b *Bus) handleMsg(ctx context.Context, cfg StageConfig, h Handler, m jetstream.Msg, stop func()) {
	defer stop()
	md, err := m.Metadata()
	if err != nil {
		b.Log.Error().Err(err).Str("stage", cfg.Name).Msg("message without metadata")
		_ = m.Term()
		return
	}
	// The decode rules, the same for every stage: size, CloudEvents
	// attributes, known type, campaign id in the subject equal to the
	// payload's, payload decoded strictly and valid (inbound). A handler
	// only ever sees an event that passed them, with its payload.
	in, payload, reason, rej := inbound(m.Headers(), m.Data())
	if reason != "" {
		b.Log.Warn().Str("stage", cfg.Name).Uint64("stream_seq", md.Sequence.Stream).Uint64("num_delivered", md.NumDelivered).
			Str("reason", reason).Msg("invalid event; dead-lettering")
		b.observeMalformed(cfg.Name)
		b.deadLetterWith(ctx, cfg.Name, m, md, reason, rej)
		return
	}

	// Telemetry: the stage's span (child of the event's traceparent), the
	// logger with the delivery's, the event's and the span's ids in the
	// handler's ctx, the outcome below.
	ctx, log, obs := b.beginHandling(ctx, cfg.Name, in, md)
	defer obs.end(OutcomeRetried, "", nil) // paths that neither ack nor dead-letter

	started := time.Now()
	outs, herr := b.callBounded(ctx, cfg, h, in, payload)
	var hard *HardLimitError
	if errors.As(herr, &hard) {
		// The handler is still running past its hard limit: give up on it
		// (the worker slot is freed when this returns) and decide the
		// event's fate without it.
		stop()
		switch {
		case cfg.MaxDeliver < 0:
			// A stage that bounds its own work and is never dead-lettered
			// (the booker's line consumer, which follows a booking until
			// its outcome is known): dead-lettering would drop a line
			// whose booking may have happened. Retried with backoff.
			d := cfg.Backoff(md.NumDelivered)
			obs.end(OutcomeRetried, "", herr)
			log.Error().Err(herr).Dur("retry_in", d).Msg("handler abandoned at its hard limit; will retry (this stage never dead-letters)")
			_ = m.NakWithDelay(d)
		case md.NumDelivered >= abandonedDeliveries || cfg.exhausted(md.NumDelivered):
			obs.end(OutcomeDeadLettered, DeadLetterHardLimit, herr)
			log.Error().Err(herr).Msg("handler abandoned at its hard limit again; dead-lettering")
			b.deadLetter(ctx, cfg.Name, m, md, fmt.Sprintf("%v (delivery %d)", herr, md.NumDelivered))
		default:
			d := cfg.Backoff(md.NumDelivered)
			obs.end(OutcomeRetried, "", herr)
			log.Error().Err(herr).Dur("retry_in", d).Msg("handler abandoned at its hard limit; will retry once")
			_ = m.NakWithDelay(d)
		}
		return
	}
	var again againError
	if errors.As(herr, &again) {
		// Not a failure: publish what the handler has to say so far, then
		// look at the input again later.
		injectTrace(ctx, outs)
		if perr := b.publishAll(ctx, outs); perr != nil {
			herr = perr
		} else {
			stop()
			obs.end(OutcomeAgain, "", nil)
			log.Debug().Dur("again_in", again.after).Str("reason", again.reason).Int("outputs", len(outs)).Msg("handled; again later")
			_ = m.NakWithDelay(again.after)
			return
		}
	}
	if herr == nil {
		injectTrace(ctx, outs) // each output is a child of this hop's span
		herr = b.publishAll(ctx, outs)
	}
	stop()

	var outErr *OutputError
	if se := (*events.SchemaError)(nil); herr != nil && !errors.As(herr, &outErr) && errors.As(herr, &se) {
		// The handler's input passed these checks before the call: the
		// payload events.New or Derive refused is one the handler made.
		outErr = &OutputError{Kind: se.Kind, Err: se}
		herr = outErr
	}
	switch {
	case herr == nil:
		if cfg.afterPublish != nil && !cfg.afterPublish(in) {
			return // simulated crash between publish and ack
		}
		if err := m.Ack(); err != nil {
			log.Warn().Err(err).Msg("ack failed; the event will be redelivered and its outputs de-duplicated")
			return
		}
		obs.end(OutcomeOK, "", nil)
		log.Debug().Dur("took", time.Since(started)).Int("outputs", len(outs)).Msg("handled")
	case errors.As(herr, &outErr):
		// A bug in the producing stage, not in the input: retried (the
		// bug may be fixed by a new deployment), then dead-lettered as the
		// input with the violation as the reason. Nothing invalid is ever
		// published.
		ev := log.Error().Err(herr).Str("output_kind", outErr.Kind).Str("output_id", outErr.ID).
			Str("input_event_id", in.ID()).Str("input_event_type", in.Type())
		if cfg.exhausted(md.NumDelivered) {
			ev.Msg("handler produced an invalid event; retries exhausted, dead-lettering the input")
			b.deadLetter(ctx, cfg.Name, m, md, fmt.Sprintf("%s (after %d deliveries)", outErr.Error(), md.NumDelivered))
			return
		}
		d := cfg.Backoff(md.NumDelivered)
		ev.Dur("retry_in", d).Msg("handler produced an invalid event; will retry the input")
		_ = m.NakWithDelay(d)
	case IsPermanent(herr):
		obs.end(OutcomeDeadLettered, permanentClass(herr), herr)
		log.Warn().Err(herr).Msg("permanent failure; dead-lettering")
		b.deadLetter(ctx, cfg.Name, m, md, herr.Error())
	case cfg.exhausted(md.NumDelivered):
		obs.end(OutcomeDeadLettered, DeadLetterMaxDeliveries, herr)
		log.Error().Err(herr).Msg("retries exhausted; dead-lettering")
		b.deadLetter(ctx, cfg.Name, m, md, fmt.Sprintf("max deliveries (%d) exhausted: %v", md.NumDelivered, herr))
	default:
		d := cfg.Backoff(md.NumDelivered)
		obs.end(OutcomeRetried, "", herr)
		log.Warn().Err(herr).Dur("retry_in", d).Msg("transient failure; will retry")
		_ = m.NakWithDelay(d)
	}
}

// abandonedDeliveries is the delivery from which a handling abandoned at its
// hard limit is dead-lettered: the first is retried, in case what held it
// has passed.
const abandonedDeliveries = 2

// HardLimitError is a handling abandoned at its stage's hard limit
// (HandlerTimeout + HandlerGrace): the handler neither finished nor
// returned after its context was cancelled.
type HardLimitError struct {
	Stage string
	Limit time.Duration
}

// Error names the stage and the limit.
func (e *HardLimitError) Error() string {
	return fmt.Sprintf("bus: %s handler still running at its hard limit of %s (handler timeout plus grace): abandoned", e.Stage, e.Limit)
}

// callBounded calls the handler with its context cancelled at
// HandlerTimeout, and waits for it at most HandlerGrace longer. A handler
// that ignores its context is abandoned then: *HardLimitError. Go cannot
// stop a goroutine, so an abandoned handler runs on (counted by
// AbandonedHandlings) and whatever it returns is dropped; the stage's worker
// is free.
func (b *Bus) callBounded(ctx context.Context, cfg StageConfig, h Handler, in events.Event, payload any) ([]events.Event, error) {
	callCtx, cancel := context.WithTimeout(ctx, cfg.HandlerTimeout)
	type result struct {
		outs []events.Event
		err  error
	}
	done := make(chan result, 1)
	go func() {
		outs, err := safeCall(callCtx, h, in, payload)
		done <- result{outs, err}
	}()
	// The hard limit is HandlerTimeout + HandlerGrace from now. Its timer
	// is started only once callCtx is done (at HandlerTimeout at the
	// latest), for what is left of the limit: most handlers return before,
	// and this runs for every event handled.
	hardAt := time.Now().Add(cfg.HandlerTimeout + cfg.HandlerGrace)
	select {
	case r := <-done:
		cancel()
		return r.outs, r.err
	case <-callCtx.Done():
	}
	hard := time.NewTimer(time.Until(hardAt))
	defer hard.Stop()
	select {
	case r := <-done:
		cancel()
		return r.outs, r.err
	case <-hard.C:
		cancel()
		abandoned.Add(1)
		go func() { <-done; abandoned.Add(-1) }()
		return nil, &HardLimitError{Stage: cfg.Name, Limit: cfg.HandlerTimeout + cfg.HandlerGrace}
	}
}

// abandoned counts the process's abandoned handlings still running.
var abandoned atomic.Int64

// AbandonedHandlings is how many handlings of this process abandoned at
// their hard limit are still running (their goroutines cannot be stopped;
// each ends when its handler returns).
func AbandonedHandlings() int64 { return abandoned.Load() }

// safeCall runs the handler, turning a panic into a permanent error so one
// poisonous event cannot crash a replica.
func safeCall(ctx context.Context, h Handler, in events.Event, payload any) (outs []events.Event, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = Permanent(fmt.Errorf("handler panic: %v", r))
		}
	}()
	return h(ctx, in, payload)
}

// publishAll checks every output (kind and size) before publishing any,
// so an invalid output publishes nothing and fails the handler attempt with
// an *OutputError; then publishes them and waits for every acknowledgement.
func (b *Bus) publishAll(ctx context.Context, outs []events.Event) error {
	msgs := make([]*nats.Msg, 0, len(outs))
	for _, o := range outs {
		m, err := b.checkOut(o)
		if err != nil {
			return err
		}
		msgs = append(msgs, m)
	}
	// Publish them pipelined (async) and wait once for every
	// acknowledgement before the input is acked. A failure leaves the input
	// to be redelivered; its outputs' deterministic ids (Nats-Msg-Id) make
	// the re-publication of those already stored a no-op.
	if len(msgs) == 0 {
		return nil
	}
	w := b.acks.expect(msgs) // before publishing: an ack may come at once
	for i, m := range msgs {
		if _, err := b.JS.PublishMsgAsync(m); err != nil {
			b.acks.forget(msgs)
			return fmt.Errorf("bus: publish %s: %w", outs[i].ID(), err)
		}
	}
	// An acknowledgement lost with the connection does not hold the input
	// for ever: the wait fails after publishAckWait (ackRouter.expect).
	select {
	case <-w.done:
		if w.err != nil {
			b.acks.forget(msgs)
			return w.err
		}
	case <-ctx.Done():
		b.acks.forget(msgs)
		return ctx.Err()
	}
	return nil
}

// keepAlive sends InProgress every interval until stopped, so a long handler
// (a negotiation) is not redelivered to another replica meanwhile. It is a
// timer, not a goroutine with a ticker: most handlers finish before the
// first interval, and this runs for every event handled.
func (b *Bus) keepAlive(ctx context.Context, m jetstream.Msg, every time.Duration) func() {
	if every <= 0 {
		return func() {}
	}
	k := &keeper{ctx: ctx, m: m, every: every}
	k.mu.Lock()
	k.t = time.AfterFunc(every, k.fire)
	k.mu.Unlock()
	return k.stop
}

// keeper is one handler's keep-alive timer.
type keeper struct {
	ctx     context.Context
	m       jetstream.Msg
	every   time.Duration
	mu      sync.Mutex
	t       *time.Timer
	stopped bool
}

// fire sends InProgress and sets the next one, unless stopped meanwhile.
func (k *keeper) fire() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.stopped || k.ctx.Err() != nil {
		return
	}
	_ = k.m.InProgress()
	k.t.Reset(k.every)
}

// stop ends the keep-alive; it may be called more than once.
func (k *keeper) stop() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.stopped = true
	k.t.Stop()
}

// Dead-letter headers added to the original message.
const (
	HeaderDLQReason     = "Dealflow-Dlq-Reason"
	HeaderDLQStage      = "Dealflow-Dlq-Stage"
	HeaderDLQSubject    = "Dealflow-Dlq-Subject"
	HeaderDLQStreamSeq  = "Dealflow-Dlq-Stream-Seq"
	HeaderDLQDeliveries = "Dealflow-Dlq-Deliveries"
)

// deadLetter copies the message to the stage's dead-letter subject with the
// reason, publishes what that means for its campaign (resolveDeadLetter: a
// SellerSkipped for a seller's event), then terminates it. If the copy or the
// resolution cannot be stored the message is left to redeliver: a dead
// letter is never lost, and both are de-duplicated when it comes back.
func (b *Bus) deadLetter(ctx context.Context, stage string, m jetstream.Msg, md *jetstream.MsgMetadata, reason string) {
	b.deadLetterWith(ctx, stage, m, md, reason, nil)
}

// deadLetterWith is deadLetter that also publishes rej, the rejection of a
// CampaignRequested, when not nil.
func (b *Bus) deadLetterWith(ctx context.Context, stage string, m jetstream.Msg, md *jetstream.MsgMetadata, reason string, rej *events.CampaignRejected) {
	dm := nats.NewMsg(DLQPrefix + stage)
	copyHeaders(dm.Header, m.Headers())
	dm.Header.Set(HeaderDLQReason, truncate(reason, 1024))
	dm.Header.Set(HeaderDLQStage, stage)
	dm.Header.Set(HeaderDLQSubject, m.Subject())
	dm.Header.Set(HeaderDLQStreamSeq, strconv.FormatUint(md.Sequence.Stream, 10))
	dm.Header.Set(HeaderDLQDeliveries, strconv.FormatUint(md.NumDelivered, 10))
	dm.Header.Set(nats.MsgIdHdr, fmt.Sprintf("dlq-%s-%d", stage, md.Sequence.Stream))
	dm.Data = m.Data()
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := b.JS.PublishMsg(pctx, dm); err != nil {
		b.Log.Error().Err(err).Str("stage", stage).Msg("dead letter not stored; leaving the event to redeliver")
		_ = m.NakWithDelay(5 * time.Second)
		return
	}
	if err := b.resolveDeadLetter(pctx, stage, m.Headers(), m.Data(), reason, rej); err != nil {
		b.Log.Error().Err(err).Str("stage", stage).Msg("dead letter's resolution not published; leaving the event to redeliver")
		_ = m.NakWithDelay(5 * time.Second)
		return
	}
	_ = m.TermWithReason(truncate(reason, 256))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// copyHeaders copies an event's headers onto its dead letter, minus the
// publish expectations (Nats-Expected-*) that would make the copy fail.
func copyHeaders(dst, src nats.Header) {
	for k, v := range src {
		if strings.HasPrefix(strings.ToLower(k), "nats-expected-") {
			continue
		}
		dst[k] = append([]string(nil), v...)
	}
}

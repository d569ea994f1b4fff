// Package bus is the only code that knows about JetStream: it provisions the
// stream, dead-letter and KV buckets, publishes events, and runs stages as
// durable pull consumers whose handlers are pure functions from an event to
// the events it causes.
package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"

	"github.com/dealflow/dealflow/pkg/events"
)

// Names of the streams and KV buckets the pipeline uses.
const (
	// StreamEvents holds every pipeline event (Limits retention: replay,
	// audit and late subscribers work). It refuses a publish that would
	// pass its size (DiscardNew) rather than delete an event; events every
	// durable consumer has processed age out through RunRetention.
	StreamEvents = "DEALFLOW"
	// StreamDLQ holds dead letters, one subject per stage.
	StreamDLQ = "DEALFLOW_DLQ"
	// StreamAdvisories captures MAX_DELIVERIES advisories of StreamEvents,
	// which the server only sends as fire-and-forget core messages.
	StreamAdvisories = "DEALFLOW_ADVISORIES"

	// DLQPrefix prefixes dead-letter subjects: DLQPrefix + "<stage>".
	DLQPrefix = "dlq.dealflow."

	// BucketCampaigns holds the booker's campaign projections and job state.
	BucketCampaigns = "dealflow_campaigns"
	// BucketNegotiations holds negotiation sessions, one key per package.
	BucketNegotiations = "dealflow_negotiations"
	// BucketLedger holds the booking ledger: idempotency keys and committed
	// spend, written before every seller call.
	BucketLedger = "dealflow_ledger"
	// BucketQuotes holds the best quote per campaign, seller and package, for
	// the competitive strategy.
	BucketQuotes = "dealflow_quotes"
	// BucketCampaignQuotes holds every QuoteReady of a campaign, one key per
	// package, so the campaign projection stays small however many
	// packages a campaign shops.
	BucketCampaignQuotes = "dealflow_campaign_quotes"
	// BucketWebhooks holds each campaign's webhook (URL and signing
	// secret), keyed by campaign id; only the bookings API writes it and only
	// the notifier reads it, so the secret never travels in an event.
	BucketWebhooks = "dealflow_webhooks"
	// BucketDealSeats holds each deal's buyer seat status (IAB Deals API)
	// and its activation, keyed by deal and seller; written only through
	// services/activator's transitions.
	BucketDealSeats = "dealflow_deal_seats"
	// BucketPacing holds the pacer's record of every booked line it
	// follows, keyed <campaign id>.<line key>: the line's schedule (the
	// next reading and when it is due) and its last snapshot, written
	// before the snapshot is published.
	BucketPacing = "dealflow_pacing"
	// BucketReallocations holds the reallocator's record of each campaign
	// it follows, keyed by campaign id: each line's budget and latest
	// snapshot, the deviation episodes acted on and every reallocation
	// revision with its changes; written only by services/reallocator.
	BucketReallocations = "dealflow_reallocations"
)

// Buckets lists every KV bucket Provision creates.
var Buckets = []string{BucketCampaigns, BucketNegotiations, BucketLedger, BucketQuotes, BucketCampaignQuotes, BucketWebhooks,
	BucketDealSeats, BucketPacing, BucketReallocations}

// Config sizes the streams and buckets. Zero values take the defaults.
type Config struct {
	// Replicas is 1 embedded, 3 in a cluster.
	Replicas int
	// MaxBytes caps the event stream (default 1 GiB); MaxAge is how long
	// processed events are kept (default 7 days). Neither ever removes an
	// event a durable consumer has not processed: a full stream refuses
	// publishes, and RunRetention purges only processed events.
	MaxAge   time.Duration
	MaxBytes int64
	// DLQMaxBytes caps the dead-letter stream (default MaxBytes/4; the
	// oldest dead letters make room). BucketMaxBytes caps each KV bucket
	// (default MaxBytes/4; a full bucket refuses writes).
	DLQMaxBytes    int64
	BucketMaxBytes int64
	// Duplicates is the de-duplication window for Nats-Msg-Id (default 20 min).
	Duplicates time.Duration
	// Storage is file (default) or memory.
	Memory bool
}

func (c Config) withDefaults() Config {
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.MaxAge <= 0 {
		c.MaxAge = 7 * 24 * time.Hour
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = 1 << 30
	}
	if c.Duplicates <= 0 {
		c.Duplicates = 20 * time.Minute
	}
	if c.DLQMaxBytes <= 0 {
		c.DLQMaxBytes = c.MaxBytes / 4
	}
	if c.BucketMaxBytes <= 0 {
		c.BucketMaxBytes = c.MaxBytes / 4
	}
	return c
}

// Config is the bus's configuration, defaults applied.
func (b *Bus) Config() Config { return b.cfg }

// Bus is a connection to JetStream with the pipeline's streams.
type Bus struct {
	NC  *nats.Conn
	JS  jetstream.JetStream
	Log zerolog.Logger
	// Observer, when set, is told about every event the stages handle
	// (metrics: telemetry.Metrics). Set it before Run.
	Observer Observer
	// TracerProvider makes the stages' spans; nil means the global one
	// (otel.GetTracerProvider, a no-op unless telemetry installed one).
	TracerProvider trace.TracerProvider
	cfg            Config
	acks           *ackRouter // the acknowledgements of publishAll's messages
	capacity       capacity   // Admit's reading of how full the streams are
}

// New wraps a connection. Call Provision before publishing.
func New(nc *nats.Conn, cfg Config, log zerolog.Logger) (*Bus, error) {
	acks := newAckRouter()
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(10*time.Second),
		jetstream.WithPublishAsyncAckHandler(acks.acked), jetstream.WithPublishAsyncErrHandler(acks.failed))
	if err != nil {
		return nil, fmt.Errorf("bus: jetstream: %w", err)
	}
	return &Bus{NC: nc, JS: js, Log: log, cfg: cfg.withDefaults(), acks: acks}, nil
}

// ConnectOptions are the client options every dealflow connection uses:
// reconnect forever (the default gives up after 60 tries and consumers then
// stall for good), and log connection changes.
func ConnectOptions(name string, log zerolog.Logger) []nats.Option {
	return []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn().Err(err).Msg("nats disconnected")
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info().Str("url", c.ConnectedUrl()).Msg("nats reconnected") }),
	}
}

// Provision creates or updates the streams and KV buckets. It is idempotent
// and safe to run from every process at start-up.
func (b *Bus) Provision(ctx context.Context) error {
	c := b.cfg
	storage := jetstream.FileStorage
	if c.Memory {
		storage = jetstream.MemoryStorage
	}
	streams := []jetstream.StreamConfig{
		{
			Name:        StreamEvents,
			Description: "dealflow pipeline events (CloudEvents)",
			Subjects:    []string{events.SubjectRoot + ".>"},
			Retention:   jetstream.LimitsPolicy,
			// No MaxAge: age would delete events not yet processed;
			// RunRetention ages out only processed ones.
			MaxBytes:   c.MaxBytes,
			Duplicates: c.Duplicates,
			Replicas:   c.Replicas,
			Storage:    storage,
			Discard:    jetstream.DiscardNew,
		},
		{
			Name:        StreamDLQ,
			Description: "dealflow dead letters, with the reason in headers",
			Subjects:    []string{DLQPrefix + ">"},
			Retention:   jetstream.LimitsPolicy,
			MaxAge:      30 * 24 * time.Hour,
			MaxBytes:    c.DLQMaxBytes,
			Duplicates:  c.Duplicates,
			Replicas:    c.Replicas,
			Storage:     storage,
		},
		{
			Name:        StreamAdvisories,
			Description: "MAX_DELIVERIES advisories of the event stream",
			Subjects:    []string{"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + StreamEvents + ".>"},
			Retention:   jetstream.LimitsPolicy,
			MaxAge:      7 * 24 * time.Hour,
			MaxBytes:    c.MaxBytes / 8,
			Duplicates:  2 * time.Minute,
			Replicas:    c.Replicas,
			Storage:     storage,
		},
	}
	for _, sc := range streams {
		if err := b.ensureStream(ctx, sc); err != nil {
			return err
		}
	}
	for _, name := range Buckets {
		kvc := jetstream.KeyValueConfig{Bucket: name, History: 1, Replicas: c.Replicas, Storage: storage, MaxBytes: c.BucketMaxBytes}
		if _, err := b.JS.CreateKeyValue(ctx, kvc); err != nil {
			if !errors.Is(err, jetstream.ErrBucketExists) {
				return fmt.Errorf("bus: kv %s: %w", name, err)
			}
			kv, err := b.JS.KeyValue(ctx, name)
			if err != nil {
				return fmt.Errorf("bus: kv %s: %w", name, err)
			}
			// A changed limit (--bucket-max-bytes) applies to the
			// existing bucket; an unchanged one is left alone.
			st, err := kv.Status(ctx)
			if err != nil {
				return fmt.Errorf("bus: kv %s: %w", name, err)
			}
			if ks, ok := st.(*jetstream.KeyValueBucketStatus); ok && ks.StreamInfo().Config.MaxBytes != kvc.MaxBytes {
				if _, err := b.JS.UpdateKeyValue(ctx, kvc); err != nil {
					return fmt.Errorf("bus: update kv %s: %w", name, err)
				}
			}
		}
	}
	return nil
}

// ensureStream creates the stream, or updates it only when its settings
// differ. Every process provisions at start-up; sending an identical update
// each time would needlessly reconfigure a live stream while other
// processes create consumers on it.
func (b *Bus) ensureStream(ctx context.Context, sc jetstream.StreamConfig) error {
	_, err := b.JS.CreateStream(ctx, sc)
	if err == nil {
		return nil
	}
	if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return fmt.Errorf("bus: stream %s: %w", sc.Name, err)
	}
	st, err := b.JS.Stream(ctx, sc.Name)
	if err != nil {
		return fmt.Errorf("bus: stream %s: %w", sc.Name, err)
	}
	cur := st.CachedInfo().Config
	if sameSubjects(cur.Subjects, sc.Subjects) && cur.MaxAge == sc.MaxAge && cur.MaxBytes == sc.MaxBytes &&
		cur.Duplicates == sc.Duplicates && cur.Replicas == sc.Replicas && cur.Retention == sc.Retention && cur.Discard == sc.Discard {
		return nil
	}
	if _, err := b.JS.UpdateStream(ctx, sc); err != nil {
		return fmt.Errorf("bus: update stream %s: %w", sc.Name, err)
	}
	return nil
}

func sameSubjects(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// KV returns a provisioned bucket.
func (b *Bus) KV(ctx context.Context, name string) (jetstream.KeyValue, error) {
	kv, err := b.JS.KeyValue(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("%w: bucket %s: %w", ErrStore, name, err)
	}
	return kv, nil
}

// Publish checks e's kind, campaign id and size (events.MaxEventBytes: an
// *OutputError, matching events.ErrInvalid, when it breaks one; its payload
// was checked when events.New or Derive made it, so nothing invalid is
// ever published), encodes it in binary mode and
// publishes it on its kind's subject for its campaign, waiting for the
// stream's acknowledgement. A duplicate (same id inside the window) is
// acknowledged without being stored again.
func (b *Bus) Publish(ctx context.Context, e events.Event) error {
	// Published within a span (the bookings API's request), the event
	// continues that trace.
	injectTrace(ctx, []events.Event{e})
	m, err := b.checkOut(e)
	if err != nil {
		return fmt.Errorf("bus: publish %s: %w", e.ID(), err)
	}
	pctx, cancel := opContext(ctx)
	defer cancel()
	ack, err := b.JS.PublishMsg(pctx, m)
	if err == nil {
		err = checkAck(ack)
	}
	if isStreamFull(err) {
		return fmt.Errorf("bus: publish %s %s: %w: %w", e.Type(), e.ID(), ErrFull, err)
	}
	if err != nil {
		return fmt.Errorf("bus: publish %s %s: %w", e.Type(), e.ID(), err)
	}
	return nil
}

// ErrWrongStream is a publish acknowledged by a stream other than the
// event stream.
var ErrWrongStream = errors.New("acknowledged by another stream")

// checkAck checks that the event stream stored the message. It stands in
// for a Nats-Expected-Stream header: JetStream refuses streams whose
// subjects overlap, so only a missing DEALFLOW stream lets another capture
// its subjects, and this names that; the header would be stored with, and
// parsed again from, every event delivered.
func checkAck(ack *jetstream.PubAck) error {
	if ack.Stream != StreamEvents {
		return fmt.Errorf("%w %q, not %s", ErrWrongStream, ack.Stream, StreamEvents)
	}
	return nil
}

// OpTimeout bounds one JetStream request (a publish, a KV get or write)
// even when the caller's context allows longer. A request in flight when the
// client's node dies gets no answer: without the bound it would wait out the
// caller's whole deadline (a handler's 5 minutes, its ack kept alive all
// along) instead of failing, being retried and, for a publish, de-duplicated
// by its Nats-Msg-Id.
const OpTimeout = 10 * time.Second

func opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, OpTimeout)
}

// IsNotFound reports whether err means a KV key or stream message is absent.
func IsNotFound(err error) bool {
	return errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrMsgNotFound) || errors.Is(err, jetstream.ErrKeyDeleted)
}

// toMsg converts the codec's message to a NATS message.
func toMsg(em *events.Message) *nats.Msg {
	return &nats.Msg{Subject: em.Subject, Header: nats.Header(em.Header), Data: em.Data}
}

// Ready reports whether the bus can publish: nil when the NATS connection
// is up, else an error naming its state.
func (b *Bus) Ready() error {
	if st := b.NC.Status(); st != nats.CONNECTED {
		return fmt.Errorf("bus: NATS connection is %s", st)
	}
	return nil
}

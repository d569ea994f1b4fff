// Package telemetry makes a dealflow process operable: Prometheus metrics on
// a per-process registry (Metrics), OpenTelemetry tracing configured from the
// standard OTEL_* environment variables (SetupTracing) and the process logger
// (NewLogger).
//
// Every label is low-cardinality: stage names, event types, operations,
// status codes and error classes, outcomes, strategies, deal types. Never a
// campaign id, seller URL or API key.
//
// A nil *Metrics is a valid no-op: every method may be called on it, so code
// paths work without metrics.
package telemetry

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/pkg/events"
)

// Namespace prefixes every metric name.
const Namespace = "dealflow"

// ScrapeTimeout bounds the scrape-time callbacks (campaign counts, consumer
// info).
const ScrapeTimeout = 5 * time.Second

// CampaignCounter counts campaigns by status at scrape time (the booker's
// projection), and the booked lines whose outcome is unresolved.
type CampaignCounter func(ctx context.Context) (CampaignCounts, error)

// CampaignCounts is what a CampaignCounter reports.
type CampaignCounts struct {
	ByStatus map[string]int
	// UnresolvedLines are approved lines whose booking outcome is still
	// unknown after the booking horizon (their spend stays reserved).
	UnresolvedLines int
}

// ConsumerStatser returns, per durable consumer, [pending, ack pending];
// bus.(*Bus).ConsumerStats has this signature.
type ConsumerStatser func(ctx context.Context) (map[string][2]uint64, error)

// StoreUsager reports how full each stream and KV bucket is;
// bus.(*Bus).Usage has this signature.
type StoreUsager func(ctx context.Context) ([]bus.Usage, error)

// Metrics is the process's metrics: a private registry (not the global
// default, so tests can run several) with the Go and process collectors and
// the dealflow families. It implements bus.Observer.
type Metrics struct {
	reg *prometheus.Registry

	eventsHandled  *prometheus.CounterVec
	handleSeconds  *prometheus.HistogramVec
	lagSeconds     *prometheus.HistogramVec
	deadLetters    *prometheus.CounterVec
	sellerRequests *prometheus.CounterVec
	sellerSeconds  *prometheus.HistogramVec
	negotiations   *prometheus.CounterVec
	negRounds      *prometheus.HistogramVec
	negSeconds     *prometheus.HistogramVec
	dealsBooked    *prometheus.CounterVec
	bookedSpend    prometheus.Counter
	lineOutcomes   *prometheus.CounterVec
	activations    *prometheus.CounterVec // activation.go
	dealPushes     *prometheus.CounterVec // activation.go
	reallocations  *prometheus.CounterVec // reallocation.go
	// The pacer's: delivery read from sellers and pacing against plan.
	deliveredImps  *prometheus.CounterVec
	deliveredSpend *prometheus.CounterVec
	snapshots      *prometheus.CounterVec
	pacingIndex    *prometheus.HistogramVec
	readingDelay   prometheus.Histogram
	deviations     *prometheus.CounterVec

	mu        sync.Mutex
	campaigns CampaignCounter
	consumers ConsumerStatser
	stores    StoreUsager
	pacing    PacingCounter
}

// PacingCounter counts the lines the pacer follows by status at scrape
// time (pacer.Service.Counts): their last snapshot's status, scheduled
// before the first, done once the flight ended.
type PacingCounter func() map[string]int

var _ bus.Observer = (*Metrics)(nil)

// NewMetrics builds the registry and registers every family.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{reg: reg}
	durations := []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}
	m.eventsHandled = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "events_handled_total",
		Help: "Event deliveries handled by a stage, by event type and outcome (ok, retried, dead_lettered)."},
		[]string{"stage", "type", "outcome"})
	m.handleSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "event_handle_seconds",
		Help: "Time to handle one event delivery (handler and publication of its outputs).", Buckets: durations},
		[]string{"stage"})
	m.lagSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "event_lag_seconds",
		Help: "Time from an event's creation (its CloudEvents time) to the start of its handling by a stage.", Buckets: durations},
		[]string{"stage"})
	m.deadLetters = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "dead_letters_total",
		Help: "Events dead-lettered by a stage, by reason class (malformed, schema, permanent, max_deliveries, hard_limit)."},
		[]string{"stage", "reason"})
	m.sellerRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "seller_requests_total",
		Help: "Requests to sellers and registries, by protocol (iab-seller-agent, adcp), operation and HTTP status or error class (timeout, refused, bad_response, ...; for AdCP also the seller's error code)."},
		[]string{"protocol", "operation", "code"})
	m.sellerSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "seller_request_seconds",
		Help: "Duration of one request to a seller or registry (an AdCP call: its MCP session and tool call).", Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}},
		[]string{"protocol", "operation"})
	m.negotiations = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "negotiations_total",
		Help: "Finished quote-and-negotiate runs, by strategy (none for fixed prices and failures before a strategy) and outcome."},
		[]string{"strategy", "outcome"})
	m.negRounds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "negotiation_rounds",
		Help: "Rounds of a negotiation.", Buckets: []float64{0, 1, 2, 3, 4, 5, 6, 8, 10, 15, 20}},
		[]string{"strategy"})
	m.negSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "negotiation_seconds",
		Help: "Duration of a quote and its negotiation.", Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}},
		[]string{"strategy"})
	m.dealsBooked = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "deals_booked_total",
		Help: "Deals booked with sellers, by protocol (iab-seller-agent: deals; adcp: media buys) and deal type (PG, PD, PA; media_buy for an AdCP buy of none of them)."},
		[]string{"protocol", "deal_type"})
	m.bookedSpend = prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "booked_spend_micros_total",
		Help: "Spend of the booked deals, in micros of the campaign currency."})
	m.lineOutcomes = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "booking_line_outcomes_total",
		Help: "Outcomes of approved lines as they became known: booked, failed (definite), unresolved (unknown at the booking horizon), reconciled_booked, reconciled_not_booked."},
		[]string{"outcome"})
	m.activations, m.dealPushes = activationFamilies()
	m.reallocations = reallocationFamily()
	m.deliveredImps = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "delivered_impressions_total",
		Help: "Impressions booked lines delivered, as their sellers report them to the pacer (each snapshot adds what its line delivered since the one before)."},
		[]string{"protocol"})
	m.deliveredSpend = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "delivered_spend_micros_total",
		Help: "Spend of booked lines' delivery, in micros, as the pacer reads it (each snapshot adds its line's spend since the one before)."},
		[]string{"protocol"})
	m.snapshots = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "delivery_snapshots_total",
		Help: "Delivery snapshots (DeliveryReported) the pacer published, by protocol and pacing status (not_started, early, on_track, under, over, not_reporting)."},
		[]string{"protocol", "status"})
	m.pacingIndex = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "pacing_index",
		Help:    "Pacing index of each judged snapshot (spend to date / what the plan expects by then; 1 on plan).",
		Buckets: []float64{0, .25, .5, .7, .8, .9, 1, 1.1, 1.2, 1.3, 1.5, 2, 3}},
		[]string{"protocol"})
	m.readingDelay = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: "delivery_reading_delay_seconds",
		Help:    "How long after its schedule slot fell due a line's delivery was read (the schedule's lag: a pacer or broker down shows here).",
		Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600}})
	m.deviations = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "pacing_deviations_total",
		Help: "PacingDeviation events, by direction (under, over, not_reporting)."},
		[]string{"direction"})
	reg.MustRegister(
		m.deliveredImps, m.deliveredSpend, m.snapshots, m.pacingIndex, m.readingDelay, m.deviations,
	)
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.eventsHandled, m.handleSeconds, m.lagSeconds, m.deadLetters,
		m.sellerRequests, m.sellerSeconds,
		m.negotiations, m.negRounds, m.negSeconds,
		m.dealsBooked, m.bookedSpend, m.lineOutcomes,
		m.activations, m.dealPushes, m.reallocations,
		&scrapeCollector{m: m},
	)
	return m
}

// Registry is the process's registry (to register more collectors, or to
// gather in tests).
func (m *Metrics) Registry() *prometheus.Registry {
	if m == nil {
		return prometheus.NewRegistry()
	}
	return m.reg
}

// Handler serves the registry in the Prometheus exposition format, for
// /metrics (mount it on the API mux or a --metrics-addr listener). On a nil
// Metrics it serves an empty registry.
func (m *Metrics) Handler() http.Handler {
	reg := m.Registry()
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg, Timeout: 2 * ScrapeTimeout,
		// A failing callback (the KV briefly unavailable) must not hide
		// every other metric: serve what was gathered.
		ErrorHandling: promhttp.ContinueOnError})
}

// SetCampaignCounter installs the callback behind dealflow_campaigns{status}.
func (m *Metrics) SetCampaignCounter(f CampaignCounter) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.campaigns = f
	m.mu.Unlock()
}

// SetStoreUsage installs the callback behind dealflow_store_bytes,
// dealflow_store_max_bytes, dealflow_store_messages and
// dealflow_store_fill_ratio.
func (m *Metrics) SetStoreUsage(f StoreUsager) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stores = f
}

// SetConsumerStats installs the callback behind dealflow_consumer_pending
// and dealflow_consumer_ack_pending (bus.(*Bus).ConsumerStats).
func (m *Metrics) SetConsumerStats(f ConsumerStatser) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.consumers = f
	m.mu.Unlock()
}

// InitStage exports a stage's dead-letter counters at zero for every
// reason before the first one happens, so dashboards and alerts querying
// dealflow_dead_letters_total see the series (and rate() works) on a
// healthy process.
func (m *Metrics) InitStage(stage string) {
	if m == nil {
		return
	}
	for _, reason := range []string{bus.DeadLetterMalformed, bus.DeadLetterSchema, bus.DeadLetterPermanent, bus.DeadLetterMaxDeliveries, bus.DeadLetterHardLimit} {
		m.deadLetters.WithLabelValues(stage, reason)
	}
}

// EventReceived implements bus.Observer: the lag from the event's time.
func (m *Metrics) EventReceived(stage, _ string, eventTime time.Time) {
	if m == nil || eventTime.IsZero() {
		return
	}
	m.lagSeconds.WithLabelValues(stage).Observe(max(time.Since(eventTime).Seconds(), 0))
}

// EventHandled implements bus.Observer.
func (m *Metrics) EventHandled(stage, eventType, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.eventsHandled.WithLabelValues(stage, eventType, outcome).Inc()
	if outcome != bus.OutcomeDeadLettered || d > 0 {
		m.handleSeconds.WithLabelValues(stage).Observe(d.Seconds())
	}
}

// DeadLettered implements bus.Observer.
func (m *Metrics) DeadLettered(stage, reason string) {
	if m == nil {
		return
	}
	m.deadLetters.WithLabelValues(stage, reason).Inc()
}

// ObserveSellerRequest records one HTTP request to a seller or registry:
// op is a sellerclient operation (card, packages, quote, ...), code the HTTP
// status or an error class. Its signature fits sellerclient.Config.Observe.
func (m *Metrics) ObserveSellerRequest(op, code string, d time.Duration) {
	m.observeRequest(string(events.ProtocolIAB), op, code, d)
}

// ObserveADCPRequest records one call attempt to an AdCP sales agent:
// op is the AdCP task (get_products, create_media_buy, ...), code as
// ObserveSellerRequest's or the seller's AdCP error code. Its signature
// fits adcp.Config.Observe.
func (m *Metrics) ObserveADCPRequest(op, code string, d time.Duration) {
	m.observeRequest(string(events.ProtocolADCP), op, code, d)
}

func (m *Metrics) observeRequest(protocol, op, code string, d time.Duration) {
	if m == nil {
		return
	}
	m.sellerRequests.WithLabelValues(protocol, op, code).Inc()
	m.sellerSeconds.WithLabelValues(protocol, op).Observe(d.Seconds())
}

var (
	strategies = map[string]bool{"threshold": true, "adaptive": true, "competitive": true}
	outcomes   = map[string]bool{events.OutcomeAccepted: true, events.OutcomeFixedPrice: true, events.OutcomeWalkedAway: true,
		events.OutcomeRejected: true, events.OutcomeError: true}
	dealTypes = map[string]bool{"PG": true, "PD": true, "PA": true}
)

// oneOf keeps v when it is in the known set: "none" for empty, else
// "other", so a label can never take an unbounded set of values.
func oneOf(v string, known map[string]bool) string {
	switch {
	case v == "":
		return "none"
	case known[v]:
		return v
	default:
		return "other"
	}
}

// ObserveNegotiation records one finished quote-and-negotiate run (the
// negotiator's QuoteReady): strategy is empty when none ran (fixed price,
// public tier, a failed quote).
func (m *Metrics) ObserveNegotiation(strategy, outcome string, rounds int, d time.Duration) {
	if m == nil {
		return
	}
	strategy = oneOf(strategy, strategies)
	m.negotiations.WithLabelValues(strategy, oneOf(outcome, outcomes)).Inc()
	if strategy != "none" {
		m.negRounds.WithLabelValues(strategy).Observe(float64(rounds))
	}
	m.negSeconds.WithLabelValues(strategy).Observe(d.Seconds())
}

// ObserveDealBooked records a deal booked with a seller and its spend. The
// booker calls it once per DealBooked it emits.
func (m *Metrics) ObserveDealBooked(protocol events.Protocol, dealType string, spend events.Micros) {
	if m == nil {
		return
	}
	dt := oneOf(dealType, dealTypes)
	if protocol.IsADCP() && dt != "PG" && dt != "PD" && dt != "PA" {
		dt = "media_buy"
	}
	m.dealsBooked.WithLabelValues(string(protocol.Or()), dt).Inc()
	if spend > 0 {
		m.bookedSpend.Add(float64(spend))
	}
}

// lineOutcomes are the outcome label values of ObserveLineOutcome.
var lineOutcomes = map[string]bool{"booked": true, "failed": true, "unresolved": true, "reconciled_booked": true, "reconciled_not_booked": true}

// ObserveLineOutcome counts an approved line's outcome once it is known.
func (m *Metrics) ObserveLineOutcome(outcome string) {
	if m == nil {
		return
	}
	m.lineOutcomes.WithLabelValues(oneOf(outcome, lineOutcomes)).Inc()
}

// pacingStatuses are the status label values of the pacer's metrics.
var pacingStatuses = func() map[string]bool {
	m := map[string]bool{"scheduled": true, "done": true}
	for _, s := range events.PacingStatuses {
		m[string(s)] = true
	}
	return m
}()

// ObserveDelivery records one delivery snapshot the pacer published: what
// its line delivered since the snapshot before, its pacing index (when
// judged: on_track, under, over) and how late its reading was. It
// implements pacer.Observer with ObservePacingDeviation.
func (m *Metrics) ObserveDelivery(protocol events.Protocol, status events.PacingStatus, impressions int64, spend events.Micros, pacingIndex float64, late time.Duration) {
	if m == nil {
		return
	}
	p := string(protocol.Or())
	m.snapshots.WithLabelValues(p, oneOf(string(status), pacingStatuses)).Inc()
	if impressions > 0 {
		m.deliveredImps.WithLabelValues(p).Add(float64(impressions))
	}
	if spend > 0 {
		m.deliveredSpend.WithLabelValues(p).Add(float64(spend))
	}
	switch status {
	case events.PacingOnTrack, events.PacingUnder, events.PacingOver:
		m.pacingIndex.WithLabelValues(p).Observe(pacingIndex)
	}
	m.readingDelay.Observe(late.Seconds())
}

// deviationDirections are the direction label values.
var deviationDirections = map[string]bool{string(events.DeviationUnder): true, string(events.DeviationOver): true, string(events.DeviationNotReporting): true}

// ObservePacingDeviation counts a PacingDeviation the pacer published.
func (m *Metrics) ObservePacingDeviation(direction events.Deviation) {
	if m == nil {
		return
	}
	m.deviations.WithLabelValues(oneOf(string(direction), deviationDirections)).Inc()
}

// SetPacingCounter installs the callback behind dealflow_pacing_lines.
func (m *Metrics) SetPacingCounter(f PacingCounter) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.pacing = f
	m.mu.Unlock()
}

// scrapeCollector computes the gauges read at scrape time from the app's
// callbacks.
type scrapeCollector struct{ m *Metrics }

var (
	campaignsDesc = prometheus.NewDesc(Namespace+"_campaigns", "Campaigns by status (the booker's projection, at scrape time).",
		[]string{"status"}, nil)
	pendingDesc = prometheus.NewDesc(Namespace+"_consumer_pending", "Events not yet delivered to a stage's durable consumer.",
		[]string{"consumer"}, nil)
	ackPendingDesc = prometheus.NewDesc(Namespace+"_consumer_ack_pending", "Events delivered to a stage's durable consumer and not yet acknowledged.",
		[]string{"consumer"}, nil)
	storeBytesDesc = prometheus.NewDesc(Namespace+"_store_bytes", "Bytes held by each JetStream stream and KV bucket (per replica).",
		[]string{"kind", "name"}, nil)
	storeMaxDesc = prometheus.NewDesc(Namespace+"_store_max_bytes", "Size limit of each stream and KV bucket (--stream-max-bytes, --dlq-max-bytes, --bucket-max-bytes).",
		[]string{"kind", "name"}, nil)
	storeMsgsDesc = prometheus.NewDesc(Namespace+"_store_messages", "Messages held by each stream and KV bucket (a bucket: values and delete markers).",
		[]string{"kind", "name"}, nil)
	storeFillDesc = prometheus.NewDesc(Namespace+"_store_fill_ratio", "How full each stream and KV bucket is (bytes / limit); at 0.8 of the event stream or any bucket new campaigns are refused.",
		[]string{"kind", "name"}, nil)
	pacingLinesDesc = prometheus.NewDesc(Namespace+"_pacing_lines", "Booked lines the pacer follows, by the status of their last snapshot (scheduled before the first, done once their flight ended).",
		[]string{"status"}, nil)
	unresolvedDesc = prometheus.NewDesc(Namespace+"_booking_lines_unresolved", "Approved lines whose booking outcome is still unknown after the booking horizon (spend reserved, reconciling).",
		nil, nil)
)

// Describe implements prometheus.Collector.
func (c *scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- campaignsDesc
	ch <- unresolvedDesc
	ch <- pendingDesc
	ch <- ackPendingDesc
	ch <- storeBytesDesc
	ch <- storeMaxDesc
	ch <- storeMsgsDesc
	ch <- storeFillDesc
	ch <- pacingLinesDesc
}

// Collect implements prometheus.Collector. A failing callback reports an
// invalid metric, which the handler turns into a scrape error.
func (c *scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	campaigns, consumers, stores, pacing := c.m.campaigns, c.m.consumers, c.m.stores, c.m.pacing
	c.m.mu.Unlock()
	if pacing != nil {
		byLabel := map[string]int{}
		for status, n := range pacing() {
			byLabel[oneOf(status, pacingStatuses)] += n
		}
		for status, n := range byLabel {
			ch <- prometheus.MustNewConstMetric(pacingLinesDesc, prometheus.GaugeValue, float64(n), status)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), ScrapeTimeout)
	defer cancel()
	if campaigns != nil {
		counts, err := campaigns(ctx)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(campaignsDesc, err)
		} else {
			ch <- prometheus.MustNewConstMetric(unresolvedDesc, prometheus.GaugeValue, float64(counts.UnresolvedLines))
		}
		for status, n := range counts.ByStatus {
			ch <- prometheus.MustNewConstMetric(campaignsDesc, prometheus.GaugeValue, float64(n), status)
		}
	}
	if consumers != nil {
		stats, err := consumers(ctx)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(pendingDesc, err)
		}
		for name, s := range stats {
			ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(s[0]), name)
			ch <- prometheus.MustNewConstMetric(ackPendingDesc, prometheus.GaugeValue, float64(s[1]), name)
		}
	}
	if stores != nil {
		usage, err := stores(ctx)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(storeBytesDesc, err)
		}
		for _, u := range usage {
			ch <- prometheus.MustNewConstMetric(storeBytesDesc, prometheus.GaugeValue, float64(u.Bytes), u.Kind, u.Name)
			ch <- prometheus.MustNewConstMetric(storeMaxDesc, prometheus.GaugeValue, float64(u.MaxBytes), u.Kind, u.Name)
			ch <- prometheus.MustNewConstMetric(storeMsgsDesc, prometheus.GaugeValue, float64(u.Messages), u.Kind, u.Name)
			ch <- prometheus.MustNewConstMetric(storeFillDesc, prometheus.GaugeValue, u.Fill(), u.Kind, u.Name)
		}
	}
}

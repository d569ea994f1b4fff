// Package app wires the dealflow process: the NATS connection (an embedded
// server by default), the provisioned bus, the stages this process runs, the
// metrics listener and the bookings API's server (the API itself is
// internal/api). cmd/dealflow is a thin layer over it.
package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"

	"github.com/dealflow/dealflow/internal/api"
	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/campaign"
	"github.com/dealflow/dealflow/internal/config"
	"github.com/dealflow/dealflow/internal/embednats"
	"github.com/dealflow/dealflow/internal/flight"
	"github.com/dealflow/dealflow/internal/portfolio"
	"github.com/dealflow/dealflow/internal/telemetry"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/identity"
	"github.com/dealflow/dealflow/pkg/sellerclient"
	"github.com/dealflow/dealflow/pkg/sellerclient/adcp"
	"github.com/dealflow/dealflow/services/activator"
	"github.com/dealflow/dealflow/services/booker"
	"github.com/dealflow/dealflow/services/discoverer"
	"github.com/dealflow/dealflow/services/kitfetcher"
	"github.com/dealflow/dealflow/services/negotiator"
	"github.com/dealflow/dealflow/services/notifier"
	"github.com/dealflow/dealflow/services/pacer"
	"github.com/dealflow/dealflow/services/reallocator"
)

// App is a running dealflow process.
type App struct {
	Config config.Config
	Log    zerolog.Logger
	Server *embednats.Server // nil with an external NATS
	Bus    *bus.Bus
	// Credentials are the seller API keys; tests and the demo add to them.
	Credentials *identity.Credentials
	Client      *sellerclient.Client
	// ADCP is the AdCP client shared by the stages (AdCP sellers).
	ADCP   *adcp.Client
	Booker *booker.Service
	// Pacer is the pacing stage (processes running it).
	Pacer *pacer.Service
	// Campaigns is the campaign store (booker and bookings API processes).
	Campaigns *campaign.Store
	// Webhooks is each campaign's webhook (URL and signing secret), written
	// by the bookings API and read by the notifier only.
	Webhooks *bus.Store[notifier.Webhook]
	// ledger is the booking ledger (the booker's; the API reads lines
	// from it).
	ledger *bus.Store[booker.Ledger]
	// Seats are the deals' buyer seat records (activator and bookings
	// API processes).
	Seats *activator.Seats
	// Reallocations are the reallocator's records (reallocator and
	// bookings API processes).
	Reallocations *reallocator.Records
	HTTPAddr      string
	// Metrics is the process's registry (Options.Metrics or a new one);
	// MetricsAddr is where --metrics-addr serves it, if set.
	Metrics     *telemetry.Metrics
	MetricsAddr string
	// Tracing is the OTEL_*-configured tracer provider (a no-op by default).
	Tracing *telemetry.Tracing

	cancel context.CancelFunc
	wg     sync.WaitGroup
	errMu  sync.Mutex
	err    error
	httpSv *http.Server
	metSv  *http.Server
	// metricsFallback is Options.MetricsFallback.
	metricsFallback bool
	// tracerProvider makes the API's spans (Options.TracerProvider or
	// the OTEL_*-configured one).
	tracerProvider trace.TracerProvider
	buyer          identity.BuyerIdentity
}

// Options adjust an App beyond its Config (used by the demo and tests).
type Options struct {
	// Credentials replace loading --credentials.
	Credentials *identity.Credentials
	// Known replace loading --known-sellers.
	Known []discoverer.KnownSeller
	// StageTuning adjusts every stage's consumer config (tests shorten
	// AckWait and MaxDeliver).
	StageTuning func(*bus.StageConfig)
	// Buyer replaces loading --buyer.
	Buyer *identity.BuyerIdentity
	// SweepEvery is how often the booker checks deadlines (default 1s).
	SweepEvery time.Duration
	// WrapHandler, when set, wraps every stage's handler (tests inject
	// failures with it).
	WrapHandler func(stage string, h bus.Handler) bus.Handler
	// Metrics replaces the process's new metrics registry.
	Metrics *telemetry.Metrics
	// TracerProvider, when set, makes the stages' and the seller client's
	// spans instead of the OTEL_*-configured provider (tests record spans
	// with an in-memory exporter).
	TracerProvider trace.TracerProvider
	// MetricsFallback makes a taken --metrics-addr fall back to a random
	// port on the same host instead of failing the start: for a default
	// address nobody asked for, which several processes on one host (the
	// bench's negotiator children, a stage per terminal) all default to.
	MetricsFallback bool
	// Resolve replaces the discoverer's host lookups, and SellerDial the
	// seller and AdCP clients' dialer (after the address guard's own
	// check, which it must keep: wrap sellerclient.Guard.Dialer). Tests
	// give a seller several host names without DNS with them.
	Resolve    discoverer.Resolver
	SellerDial func(ctx context.Context, network, addr string) (net.Conn, error)
	// DSP replaces the activator's --dsp; SellerTokens replace loading
	// --deal-push-tokens.
	DSP          activator.DSP
	SellerTokens *api.SellerTokens
}

// Start connects (or starts the embedded server), provisions and starts the
// configured stages. Stop ends them.
func Start(ctx context.Context, cfg config.Config, log zerolog.Logger, o Options) (*App, error) {
	if err := events.CompileSchemas(); err != nil {
		return nil, err
	}
	a := &App{Config: cfg, Log: log, Metrics: o.Metrics, metricsFallback: o.MetricsFallback}
	if a.Metrics == nil {
		a.Metrics = telemetry.NewMetrics()
	}
	tr, err := telemetry.SetupTracing(ctx, "dealflow")
	if err != nil {
		return nil, err
	}
	a.Tracing = tr
	if err := a.connect(ctx); err != nil {
		a.Stop()
		return nil, err
	}
	a.Bus.Observer = a.Metrics
	a.Bus.TracerProvider = o.TracerProvider
	a.Metrics.SetConsumerStats(a.Bus.ConsumerStats)
	a.Metrics.SetStoreUsage(a.Bus.Usage)
	creds := o.Credentials
	if creds == nil {
		var err error
		if creds, err = LoadCredentials(cfg.Credentials); err != nil {
			a.Stop()
			return nil, err
		}
	}
	a.Credentials = creds
	known := o.Known
	if known == nil {
		var err error
		if known, err = LoadKnown(cfg); err != nil {
			a.Stop()
			return nil, err
		}
	}
	tp := o.TracerProvider
	if tp == nil {
		tp = a.Tracing.Provider // a no-op when tracing is off: the client then only propagates
	}
	a.tracerProvider = tp
	var sellerHTTP *http.Client
	if o.SellerDial != nil {
		tr := cfg.Guard().Transport()
		tr.DialContext = o.SellerDial
		sellerHTTP = &http.Client{Transport: tr}
	}
	a.Client = sellerclient.New(sellerclient.Config{AllowPrivate: cfg.AllowPrivate, Allow: cfg.AllowPrefixes, Observe: a.Metrics.ObserveSellerRequest,
		TracerProvider: tp, HTTPClient: sellerHTTP})
	a.ADCP = adcp.New(adcp.Config{AllowPrivate: cfg.AllowPrivate, Allow: cfg.AllowPrefixes, HTTPClient: sellerHTTP,
		Observe: a.Metrics.ObserveADCPRequest, TracerProvider: tp})
	if o.Buyer != nil {
		a.buyer = *o.Buyer
	} else {
		b, err := LoadBuyer(cfg.Buyer)
		if err != nil {
			a.Stop()
			return nil, err
		}
		a.buyer = b
	}

	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.cancel = cancel
	if err := a.startStages(rctx, known, o); err != nil {
		a.Stop()
		return nil, err
	}
	if cfg.HTTPAddr != "" {
		if err := a.startHTTP(o); err != nil {
			a.Stop()
			return nil, err
		}
	}
	if cfg.MetricsAddr != "" {
		if err := a.startMetrics(); err != nil {
			a.Stop()
			return nil, err
		}
	}
	return a, nil
}

// Registries turns the registry settings into the discoverer's list.
func Registries(cfg config.Config) []sellerclient.Registry {
	if cfg.RegistryURL == "" {
		return nil
	}
	kind, ok := sellerclient.ParseRegistryKind(cfg.RegistryKind)
	if !ok {
		kind = sellerclient.RegistrySimple // config validation refuses it first
	}
	return []sellerclient.Registry{{URL: cfg.RegistryURL, Kind: kind, Token: cfg.RegistryTok}}
}

func (a *App) connect(ctx context.Context) error {
	cfg := a.Config
	url := cfg.NATSURL
	var opts []nats.Option
	if url == "" {
		srvLog := a.Log.Level(zerolog.WarnLevel)
		s, err := embednats.Start(embednats.Options{StoreDir: cfg.DataDir, Port: cfg.NATSPort, ConfigFile: cfg.NATSConfig,
			HTTPPort: cfg.NATSMonitor, Logger: &srvLog})
		if err != nil {
			return err
		}
		a.Server = s
		if cfg.NATSPort < 0 && cfg.NATSConfig == "" {
			opts = append(opts, nats.InProcessServer(s))
		} else {
			url = s.ClientURL()
		}
	}
	nc, err := nats.Connect(url, append(bus.ConnectOptions("dealflow", a.Log), opts...)...)
	if err != nil {
		return fmt.Errorf("connect %s: %w", url, err)
	}
	b, err := bus.New(nc, bus.Config{Replicas: cfg.Replicas, MaxBytes: cfg.StreamMaxBytes, MaxAge: cfg.StreamMaxAge,
		DLQMaxBytes: cfg.DLQMaxBytes, BucketMaxBytes: cfg.BucketMaxBytes}, a.Log)
	if err != nil {
		nc.Close()
		return err
	}
	a.Bus = b
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return b.Provision(pctx)
}

func (a *App) stage(name string, subjects []string, workers int, ackWait time.Duration, o Options) bus.StageConfig {
	sc := bus.StageConfig{Name: name, Subjects: subjects, Workers: workers, AckWait: ackWait}
	if o.StageTuning != nil {
		o.StageTuning(&sc)
	}
	return sc
}

func (a *App) startStages(ctx context.Context, known []discoverer.KnownSeller, o Options) error {
	cfg := a.Config
	run := func(sc bus.StageConfig, h bus.Handler) {
		if o.WrapHandler != nil {
			h = o.WrapHandler(sc.Name, h)
		}
		h = a.Bus.WaitForRoom(h)
		a.Metrics.InitStage(sc.Name)
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			if err := a.Bus.Run(ctx, sc, h); err != nil {
				a.fail(fmt.Errorf("stage %s: %w", sc.Name, err))
			}
		}()
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if err := a.Bus.RunJanitor(ctx); err != nil && ctx.Err() == nil {
			a.fail(err)
		}
	}()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		// Processed events age out (--stream-max-age) or make room in a
		// filling stream; unprocessed ones never do.
		_ = a.Bus.RunRetention(ctx, time.Second)
	}()
	if cfg.Has("discoverer") {
		svc := NewDiscoverer(cfg, a.Client, DiscovererInputs{Known: known, Credentials: a.Credentials, Buyer: a.buyer, ADCP: a.ADCP}, a.Log)
		svc.Resolve = o.Resolve
		run(a.stage(discoverer.Stage, discoverer.Subjects(), 8, 30*time.Second, o), bus.Typed(svc.Handle))
	}
	if cfg.Has("kitfetcher") {
		svc := &kitfetcher.Service{Client: a.Client, ADCP: a.ADCP, Credentials: a.Credentials, SellerTimeout: cfg.SellerTO,
			Log: a.Log.With().Str("stage", kitfetcher.Stage).Logger()}
		if cfg.CatalogTTL > 0 {
			svc.Catalogs = kitfetcher.NewCatalogCache(cfg.CatalogTTL, 0, nil)
		}
		run(a.stage(kitfetcher.Stage, kitfetcher.Subjects(), cfg.KitWorkers, cfg.SellerTO+15*time.Second, o), bus.Typed(svc.Handle))
	}
	if cfg.Has("negotiator") {
		sessions, err := bus.OpenStore[negotiator.Session](ctx, a.Bus, bus.BucketNegotiations)
		if err != nil {
			return err
		}
		quotes, err := bus.OpenStore[negotiator.Competing](ctx, a.Bus, bus.BucketQuotes)
		if err != nil {
			return err
		}
		svc := &negotiator.Service{Client: a.Client, ADCP: a.ADCP, Credentials: a.Credentials, Sessions: sessions, Quotes: quotes,
			Timeout: cfg.NegTO, DefaultStrategy: cfg.Strategy, Log: a.Log, Metrics: a.Metrics}
		run(a.stage(negotiator.Stage, negotiator.Subjects(), cfg.NegWorkers, 30*time.Second, o), bus.Typed(svc.Handle))
	}
	if cfg.Has("booker") || cfg.Has(reallocator.Stage) || cfg.HTTPAddr != "" {
		campaigns, err := campaign.Open(ctx, a.Bus)
		if err != nil {
			return err
		}
		campaigns.Log = func(err error) { a.Log.Warn().Err(err).Msg("campaign index: watch ended; restarting") }
		a.Campaigns = campaigns
		a.Metrics.SetCampaignCounter(campaignCounter(campaigns))
		if cfg.HTTPAddr != "" {
			// Load the listing's index now rather than on the first list.
			go func() { _, _ = campaigns.Counts(ctx) }()
		}
	}
	if cfg.Has(notifier.Stage) || cfg.HTTPAddr != "" {
		webhooks, err := bus.OpenStore[notifier.Webhook](ctx, a.Bus, bus.BucketWebhooks)
		if err != nil {
			return err
		}
		a.Webhooks = webhooks
	}
	if cfg.Has(notifier.Stage) {
		sc := notifier.StageConfig()
		if o.StageTuning != nil {
			o.StageTuning(&sc)
		}
		run(sc, bus.EventOnly(notifier.New(a.Webhooks, cfg.Guard(), a.Log).Handle))
	}
	if err := a.openSeats(ctx); err != nil {
		return err
	}
	if cfg.Has(activator.Stage) {
		svc, sc, err := a.activatorStage(o)
		if err != nil {
			return err
		}
		run(sc, svc.Handle)
	}
	if cfg.Has("booker") || cfg.HTTPAddr != "" {
		ledger, err := bus.OpenStore[booker.Ledger](ctx, a.Bus, bus.BucketLedger)
		if err != nil {
			return err
		}
		a.ledger = ledger
	}
	if cfg.Has("booker") {
		a.Booker = &booker.Service{Campaigns: a.Campaigns, Ledger: a.ledger, Weights: portfolio.DefaultWeights(), ShoppingWindow: cfg.Window, Log: a.Log, Metrics: a.Metrics,
			BookingHorizon: cfg.BookingHorizon, ReconcileEvery: cfg.ReconcileEvery,
			Booker: &booker.Booker{Client: a.Client, ADCP: a.ADCP, Credentials: a.Credentials, CallTimeout: cfg.BookCallTO,
				Delivered: pacer.SellerReader{Client: a.Client, ADCP: a.ADCP, Credentials: a.Credentials}.Spent}}
	}
	if cfg.Has(pacer.Stage) {
		if err := a.startPacer(ctx, run, o); err != nil {
			return err
		}
	}
	if cfg.Has(reallocator.Stage) || cfg.HTTPAddr != "" {
		records, err := reallocator.OpenRecords(ctx, a.Bus)
		if err != nil {
			return err
		}
		a.Reallocations = records
	}
	if cfg.Has(reallocator.Stage) {
		// Every input is a store write and the events it decides; the
		// consumer is never dead-lettered: a revision being applied must
		// see each of its changes' outcomes.
		svc := &reallocator.Service{Records: a.Reallocations, Campaigns: a.Campaigns, Metrics: a.Metrics,
			Log: a.Log.With().Str("stage", reallocator.Stage).Logger()}
		sc := reallocator.StageConfig()
		if o.StageTuning != nil {
			o.StageTuning(&sc)
		}
		run(sc, svc.Handle)
	}
	if cfg.Has("booker") {
		// Planning is store transitions and the optimiser, whose search
		// stops at its own time limit (portfolio.DefaultTimeLimit): a
		// planning that holds a worker for a minute is abandoned at the
		// hard limit (bus.StageConfig.HandlerGrace), retried once, then
		// dead-lettered, never holding the stage for good.
		plan := a.stage(booker.StagePlan, booker.PlanSubjects(), 8, 30*time.Second, o)
		if plan.HandlerTimeout == 0 {
			plan.HandlerTimeout = time.Minute
		}
		run(plan, a.Booker.HandlePlan)
		run(a.stage(booker.StageBook, booker.BookSubjects(), 4, 30*time.Second, o), bus.Typed(a.Booker.HandleBook))
		// One line per delivery, retried and reconciled through JetStream
		// (bus.Again) until it has its outcome: the handler bounds the work
		// (booking horizon, ReconcileFor), so deliveries are not capped.
		// AckWait only decides how soon a line whose booker died is taken
		// up by another (a live one sends heartbeats): two booking calls.
		line := a.stage(booker.StageLine, booker.LineSubjects(), 8, min(max(2*cfg.BookCallTO, 5*time.Second), time.Minute), o)
		line.MaxDeliver = -1
		run(line, bus.Typed(a.Booker.HandleLine))
		// Line changes (pause, resume, cancel, set_budget) applied at the
		// sellers, each once; retried with the same keys until settled or
		// past the booking horizon.
		change := a.stage(booker.StageChange, booker.ChangeSubjects(), 4, min(max(2*cfg.BookCallTO, 5*time.Second), time.Minute), o)
		change.MaxDeliver = -1
		run(change, bus.Typed(a.Booker.HandleChange))
		every := o.SweepEvery
		if every <= 0 {
			every = time.Second
		}
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			a.Booker.RunSweeper(ctx, every, a.Bus.Publish)
		}()
	}
	return nil
}

// startPacer runs the pacing stage: its consumer (booked lines, due
// readings) and its sweeper, which publishes the readings the schedule in
// the pacing bucket says are due.
func (a *App) startPacer(ctx context.Context, run func(bus.StageConfig, bus.Handler), o Options) error {
	cfg := a.Config
	lines, err := bus.OpenStore[pacer.Line](ctx, a.Bus, bus.BucketPacing)
	if err != nil {
		return err
	}
	svc := &pacer.Service{Lines: lines, Reader: pacer.SellerReader{Client: a.Client, ADCP: a.ADCP, Credentials: a.Credentials},
		Clock: flight.Clock{Day: cfg.TimeScale}, Every: cfg.PacingEvery, Tolerance: cfg.PacingTolerance, ReadTimeout: cfg.SellerTO,
		Log: a.Log.With().Str("stage", pacer.Stage).Logger(), Metrics: a.Metrics}
	a.Pacer = svc
	// A reading is bounded by the seller timeout; AckWait only decides how
	// soon a reading whose pacer died is taken up by another (a live one
	// sends heartbeats). Never dead-lettered: the handler bounds its work
	// and a failed reading is a snapshot, so what fails is the store,
	// retried until it is back.
	sc := a.stage(pacer.Stage, pacer.Subjects(), 8, min(max(cfg.SellerTO+5*time.Second, 5*time.Second), time.Minute), o)
	sc.MaxDeliver = -1
	run(sc, svc.Handle)
	a.Metrics.SetPacingCounter(svc.Counts)
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		svc.RunSweeper(ctx, a.Bus.Publish)
	}()
	return nil
}

// ledgerStore is the ledger for the API: nil (no line routes) when this
// process has none.
func (a *App) ledgerStore() api.LedgerStore {
	if a.ledger == nil {
		return nil
	}
	return a.ledger
}

func (a *App) startHTTP(o Options) error {
	tokens := o.SellerTokens
	if tokens == nil {
		var err error
		if tokens, err = api.LoadSellerTokens(a.Config.DealPushTokens); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", a.Config.HTTPAddr)
	if err != nil {
		return fmt.Errorf("bookings API: %w", err)
	}
	a.HTTPAddr = ln.Addr().String()
	// Timeouts bound what one client can hold: a header or body trickled a
	// byte at a time is cut off, idle keep-alives are closed.
	a.httpSv = &http.Server{Handler: a.withOps(api.AccessLog(api.New(a.Bus, a.Campaigns, a.Config.APIKey, a.Log,
		api.Options{Webhooks: a.Webhooks, Guard: a.Config.Guard(), TracerProvider: a.tracerProvider,
			Seats: a.Seats, Reallocations: a.Reallocations, SellerTokens: tokens, StatusTokenRequired: a.Config.DealStatusTokenRequired, DealMetrics: a.Metrics,
			Ledger: a.ledgerStore()}), a.Log)),
		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 15 * time.Second, IdleTimeout: 60 * time.Second}
	sv := a.httpSv // Stop may clear the field before this goroutine runs
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if err := sv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.fail(err)
		}
	}()
	a.Log.Info().Str("addr", a.HTTPAddr).Msg("bookings API listening")
	return nil
}

// startMetrics serves /metrics, /livez, /readyz (and /debug/pprof/* with
// --pprof) on --metrics-addr.
func (a *App) startMetrics() error {
	ln, err := net.Listen("tcp", a.Config.MetricsAddr)
	if err != nil && a.metricsFallback {
		if host, _, herr := net.SplitHostPort(a.Config.MetricsAddr); herr == nil {
			ln, err = net.Listen("tcp", net.JoinHostPort(host, "0"))
		}
	}
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	a.MetricsAddr = ln.Addr().String()
	mux := http.NewServeMux()
	a.opsRoutes(mux, true)
	a.metSv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	sv := a.metSv
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if err := sv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.fail(err)
		}
	}()
	a.Log.Info().Str("addr", a.MetricsAddr).Msg("metrics listening")
	return nil
}

func (a *App) fail(err error) {
	a.errMu.Lock()
	defer a.errMu.Unlock()
	if a.err == nil {
		a.err = err
	}
	a.Log.Error().Err(err).Msg("component failed")
}

// Err returns the first component failure, if any.
func (a *App) Err() error {
	a.errMu.Lock()
	defer a.errMu.Unlock()
	return a.err
}

// Stop drains the stages, stops the API, closes the connection and the
// embedded server. It is idempotent.
func (a *App) Stop() {
	if a.httpSv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = a.httpSv.Shutdown(sctx)
		cancel()
		a.httpSv = nil
	}
	if a.metSv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = a.metSv.Shutdown(sctx)
		cancel()
		a.metSv = nil
	}
	if a.cancel != nil {
		a.cancel()
		a.cancel = nil
	}
	a.wg.Wait()
	if a.Campaigns != nil {
		a.Campaigns.Close()
	}
	if a.Bus != nil && a.Bus.NC != nil {
		_ = a.Bus.NC.Drain()
		for i := 0; i < 100 && !a.Bus.NC.IsClosed(); i++ {
			time.Sleep(20 * time.Millisecond)
		}
		a.Bus.NC.Close()
	}
	if a.Server != nil {
		a.Server.Close()
		a.Server = nil
	}
	if a.Tracing != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := a.Tracing.Shutdown(sctx); err != nil {
			a.Log.Warn().Err(err).Msg("flushing traces")
		}
		cancel()
		a.Tracing = nil
	}
}

// StagesString is a short description for logs.
func (a *App) StagesString() string { return strings.Join(a.Config.Stages, ",") }

// NATSURL is the URL of the NATS server this process is connected to (the
// embedded one's, when it runs one), for another process to join.
func (a *App) NATSURL() string {
	if a.Bus == nil || a.Bus.NC == nil {
		return ""
	}
	return a.Bus.NC.ConnectedUrl()
}

// HTTPTimeouts reports the bookings API server's read-header, read and idle
// timeouts (zero without an API).
func (a *App) HTTPTimeouts() (readHeader, read, idle time.Duration) {
	if a.httpSv == nil {
		return 0, 0, 0
	}
	return a.httpSv.ReadHeaderTimeout, a.httpSv.ReadTimeout, a.httpSv.IdleTimeout
}

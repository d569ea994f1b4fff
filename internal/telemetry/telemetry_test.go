package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/rs/zerolog"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/checkfor"
	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/internal/sandbox"
	"github.com/dealflow/dealflow/internal/telemetry"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/sellerclient"
)

// scrape serves /metrics through the handler and parses the text format.
func scrape(t *testing.T, m *telemetry.Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return mfs
}

// value is the value of the sample of family name whose labels include
// want (counter, gauge, or a histogram's count); -1 when absent.
func value(mfs map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	mf, ok := mfs[name]
	if !ok {
		return -1
	}
	total, found := 0.0, false
	for _, m := range mf.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range want {
			if labels[k] != v {
				match = false
			}
		}
		if !match {
			continue
		}
		found = true
		switch {
		case m.Counter != nil:
			total += m.Counter.GetValue()
		case m.Gauge != nil:
			total += m.Gauge.GetValue()
		case m.Histogram != nil:
			total += float64(m.Histogram.GetSampleCount())
		}
	}
	if !found {
		return -1
	}
	return total
}

func skipped(in events.Event, stage string) ([]events.Event, error) {
	out, err := events.Derive(in, events.KindSellerSkipped, stage, "only", events.SellerSkipped{
		CampaignID: in.Subject(), SellerURL: "http://s", Stage: stage, Code: "test", Reason: "test"})
	if err != nil {
		return nil, err
	}
	return []events.Event{out}, nil
}

func runStage(t *testing.T, b *bus.Bus, cfg bus.StageConfig, h bus.Handler) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx, cfg, h) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run %s: %v", cfg.Name, err)
		}
	})
}

func stageConfig(name string, subjects ...string) bus.StageConfig {
	return bus.StageConfig{Name: name, Subjects: subjects, Workers: 2, AckWait: 2 * time.Second, MaxDeliver: 3,
		RetryBase: 50 * time.Millisecond, DrainTimeout: 5 * time.Second}
}

func TestRunnerMetrics(t *testing.T) {
	env := natstest.Start(t)
	b := env.Bus
	m := telemetry.NewMetrics()
	b.Observer = m
	m.SetConsumerStats(b.ConsumerStats)
	m.SetCampaignCounter(func(context.Context) (telemetry.CampaignCounts, error) {
		return telemetry.CampaignCounts{ByStatus: map[string]int{"shopping": 2, "completed": 1}, UnresolvedLines: 3}, nil
	})

	var retried atomic.Bool
	h := func(_ context.Context, in events.Event, _ any) ([]events.Event, error) {
		switch in.Subject() {
		case "c-bad":
			return nil, bus.Permanent(errors.New("never"))
		case "c-invalid":
			return nil, fmt.Errorf("%w: payload", events.ErrInvalid)
		case "c-retry":
			if retried.CompareAndSwap(false, true) {
				return nil, errors.New("transient")
			}
		case "c-always":
			return nil, errors.New("still failing")
		}
		return skipped(in, "metered")
	}
	const stage = "metered"
	runStage(t, b, stageConfig(stage, events.KindCampaignRequested.Filter()), h)
	for _, c := range []string{"c-ok", "c-bad", "c-invalid", "c-retry", "c-always"} {
		natstest.PublishRequest(t, b, c)
	}
	// Undecodable: no CloudEvents headers.
	if _, err := b.JS.Publish(t.Context(), events.KindCampaignRequested.SubjectFor("c-garbage"), []byte("garbage")); err != nil {
		t.Fatal(err)
	}

	typ := events.KindCampaignRequested.Type
	handled := func(mfs map[string]*dto.MetricFamily, outcome string) float64 {
		return value(mfs, "dealflow_events_handled_total", map[string]string{"stage": stage, "type": typ, "outcome": outcome})
	}
	var mfs map[string]*dto.MetricFamily
	checkfor.Until(t, 20*time.Second, "every event handled", func() bool {
		mfs = scrape(t, m)
		return handled(mfs, "ok") == 2 && handled(mfs, "dead_lettered") == 3 &&
			value(mfs, "dealflow_dead_letters_total", map[string]string{"reason": "malformed"}) == 1
	})
	// c-retry once, c-always twice before its third and last delivery.
	if got := handled(mfs, "retried"); got != 3 {
		t.Errorf("retried = %v, want 3", got)
	}
	for reason, want := range map[string]float64{"permanent": 1, "schema": 1, "max_deliveries": 1, "malformed": 1} {
		if got := value(mfs, "dealflow_dead_letters_total", map[string]string{"stage": stage, "reason": reason}); got != want {
			t.Errorf("dead letters %s = %v, want %v", reason, got, want)
		}
	}
	if got := value(mfs, "dealflow_events_handled_total", map[string]string{"stage": stage, "type": "unknown", "outcome": "dead_lettered"}); got != 1 {
		t.Errorf("malformed handled = %v, want 1", got)
	}
	if got := value(mfs, "dealflow_event_handle_seconds", map[string]string{"stage": stage}); got < 5 {
		t.Errorf("handle seconds count = %v, want >= 5", got)
	}
	if got := value(mfs, "dealflow_event_lag_seconds", map[string]string{"stage": stage}); got < 5 {
		t.Errorf("lag count = %v, want >= 5", got)
	}
	if got := value(mfs, "dealflow_booking_lines_unresolved", nil); got != 3 {
		t.Errorf("booking_lines_unresolved = %v, want 3", got)
	}
	if got := value(mfs, "dealflow_campaigns", map[string]string{"status": "shopping"}); got != 2 {
		t.Errorf("campaigns{shopping} = %v, want 2", got)
	}
	if got := value(mfs, "dealflow_consumer_pending", map[string]string{"consumer": stage}); got != 0 {
		t.Errorf("consumer_pending = %v, want 0", got)
	}
	if got := value(mfs, "dealflow_consumer_ack_pending", map[string]string{"consumer": stage}); got < 0 {
		t.Errorf("consumer_ack_pending missing")
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if _, ok := mfs[name]; !ok {
			t.Errorf("%s missing: the Go and process collectors are registered", name)
		}
	}
}

func TestRecordersAndNilMetrics(t *testing.T) {
	var nilM *telemetry.Metrics // the no-op default
	nilM.ObserveSellerRequest("quote", "200", time.Millisecond)
	nilM.ObserveNegotiation("adaptive", "accepted", 3, time.Second)
	nilM.ObserveDealBooked(events.ProtocolIAB, "PG", 5)
	nilM.ObserveADCPRequest("get_products", "200", time.Millisecond)
	nilM.EventHandled("s", "t", "ok", time.Second)

	m := telemetry.NewMetrics()
	m.ObserveNegotiation("adaptive", "accepted", 3, time.Second)
	m.ObserveNegotiation("", "fixed_price", 0, time.Second)
	m.ObserveNegotiation("made-up", "whatever", 1, time.Second)
	m.ObserveDealBooked(events.ProtocolIAB, "PG", events.MustMicros(12.5))
	m.ObserveDealBooked("", "PD", events.MustMicros(0.5))
	m.ObserveDealBooked(events.ProtocolADCP, "adcp", events.MustMicros(1))
	m.ObserveADCPRequest("create_media_buy", "200", time.Millisecond)
	mfs := scrape(t, m)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"dealflow_negotiations_total", map[string]string{"strategy": "adaptive", "outcome": "accepted"}, 1},
		{"dealflow_negotiations_total", map[string]string{"strategy": "none", "outcome": "fixed_price"}, 1},
		{"dealflow_negotiations_total", map[string]string{"strategy": "other", "outcome": "other"}, 1},
		{"dealflow_negotiation_rounds", map[string]string{"strategy": "adaptive"}, 1},
		{"dealflow_negotiation_seconds", map[string]string{"strategy": "adaptive"}, 1},
		{"dealflow_deals_booked_total", map[string]string{"protocol": "iab-seller-agent", "deal_type": "PG"}, 1},
		{"dealflow_deals_booked_total", map[string]string{"protocol": "iab-seller-agent", "deal_type": "PD"}, 1},
		{"dealflow_deals_booked_total", map[string]string{"protocol": "adcp", "deal_type": "media_buy"}, 1},
		{"dealflow_seller_requests_total", map[string]string{"protocol": "adcp", "operation": "create_media_buy", "code": "200"}, 1},
		{"dealflow_booked_spend_micros_total", nil, 14_000_000},
	} {
		if got := value(mfs, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

// TestPacingMetrics: the pacer's snapshots add what their lines delivered
// to the delivery counters and their judged index to the histogram, with
// bounded labels; the lines gauge is read from the pacer at scrape time.
func TestPacingMetrics(t *testing.T) {
	var nilM *telemetry.Metrics
	nilM.ObserveDelivery(events.ProtocolIAB, events.PacingUnder, 1, 1, 0.5, time.Second)
	nilM.ObservePacingDeviation(events.DeviationUnder)
	nilM.SetPacingCounter(nil)

	m := telemetry.NewMetrics()
	m.ObserveDelivery(events.ProtocolIAB, events.PacingOnTrack, 1000, events.MustMicros(20), 1.02, 50*time.Millisecond)
	m.ObserveDelivery(events.ProtocolIAB, events.PacingUnder, 400, events.MustMicros(8), 0.4, time.Second)
	m.ObserveDelivery(events.ProtocolADCP, events.PacingEarly, 10, events.MustMicros(0.5), 0.9, 0)
	m.ObserveDelivery("", events.PacingNotReporting, 0, 0, 0, 2*time.Second)
	m.ObserveDelivery(events.ProtocolADCP, "made-up", 0, 0, 0, 0)
	m.ObservePacingDeviation(events.DeviationUnder)
	m.ObservePacingDeviation("sideways")
	m.SetPacingCounter(func() map[string]int { return map[string]int{"on_track": 3, "under": 1, "done": 2} })
	mfs := scrape(t, m)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"dealflow_delivered_impressions_total", map[string]string{"protocol": "iab-seller-agent"}, 1400},
		{"dealflow_delivered_impressions_total", map[string]string{"protocol": "adcp"}, 10},
		{"dealflow_delivered_spend_micros_total", map[string]string{"protocol": "iab-seller-agent"}, 28_000_000},
		{"dealflow_delivery_snapshots_total", map[string]string{"protocol": "iab-seller-agent", "status": "not_reporting"}, 1},
		{"dealflow_delivery_snapshots_total", map[string]string{"protocol": "adcp", "status": "other"}, 1},
		{"dealflow_pacing_index", map[string]string{"protocol": "iab-seller-agent"}, 2},
		{"dealflow_pacing_index", map[string]string{"protocol": "adcp"}, -1}, // early: not judged
		{"dealflow_delivery_reading_delay_seconds", nil, 5},
		{"dealflow_pacing_deviations_total", map[string]string{"direction": "under"}, 1},
		{"dealflow_pacing_deviations_total", map[string]string{"direction": "other"}, 1},
		{"dealflow_pacing_lines", map[string]string{"status": "on_track"}, 3},
		{"dealflow_pacing_lines", map[string]string{"status": "done"}, 2},
	} {
		if got := value(mfs, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

func TestSellerClientObserve(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/quotes":
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"detail":"busy"}`))
		case "/products":
			_, _ = w.Write([]byte(`not json`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	m := telemetry.NewMetrics()
	c := sellerclient.New(sellerclient.Config{AllowPrivate: true, MaxAttempts: 2, RetryBase: time.Millisecond, Observe: m.ObserveSellerRequest})
	ctx := t.Context()
	_, err := c.CreateQuote(ctx, srv.URL, sellerclient.Auth{APIKey: "k"}, sellerclient.QuoteRequest{IdempotencyKey: "i", ProductID: "p", DealType: "PD"})
	if err == nil {
		t.Fatal("quote against a 503 succeeded")
	}
	if _, err := c.ListProducts(ctx, srv.URL); err == nil {
		t.Fatal("garbage products parsed")
	}
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	if _, err := c.AgentCard(ctx, closedURL); err == nil {
		t.Fatal("card from a closed server")
	}
	mfs := scrape(t, m)
	for _, c := range []struct {
		op, code string
		want     float64
	}{
		{"quote", "503", 2}, // retried once
		{"products", "bad_response", 1},
		{"card", "refused", 1},
	} {
		if got := value(mfs, "dealflow_seller_requests_total", map[string]string{"operation": c.op, "code": c.code}); got != c.want {
			t.Errorf("seller_requests{%s,%s} = %v, want %v", c.op, c.code, got, c.want)
		}
	}
	if got := value(mfs, "dealflow_seller_request_seconds", map[string]string{"operation": "quote"}); got != 2 {
		t.Errorf("seller_request_seconds{quote} count = %v, want 2", got)
	}
}

func TestTracesAcrossHops(t *testing.T) {
	env := natstest.Start(t)
	b := env.Bus
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	b.TracerProvider = tp
	var logs natstest.LogBuffer
	b.Log = zerolog.New(&logs)

	// A sandbox seller: it records every request with its headers.
	market, err := sandbox.Start(t.Context(), sandbox.GenerateMarket(1, 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = market.Close() })
	seller := market.Sellers[0]
	client := sellerclient.New(sellerclient.Config{AllowPrivate: true, TracerProvider: tp})

	runStage(t, b, stageConfig("hop1", events.KindCampaignRequested.Filter()), func(_ context.Context, in events.Event, _ any) ([]events.Event, error) {
		return skipped(in, "hop1")
	})
	done := make(chan struct{}, 1)
	runStage(t, b, stageConfig("hop2", events.KindSellerSkipped.Filter()), func(ctx context.Context, in events.Event, _ any) ([]events.Event, error) {
		bus.Logger(ctx, zerolog.Nop()).Info().Msg("hop2 handling")
		if _, err := client.ListProducts(ctx, seller.URL); err != nil {
			return nil, err
		}
		done <- struct{}{}
		return nil, nil
	})

	const campaign = "c-traced"
	in := natstest.PublishRequest(t, b, campaign)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("hop2 never ran")
	}
	var hop1, hop2, client1 tracetest.SpanStub
	checkfor.Until(t, 20*time.Second, "spans of both hops", func() bool {
		for _, s := range exp.GetSpans() {
			switch s.Name {
			case "hop1 CampaignRequested":
				hop1 = s
			case "hop2 SellerSkipped":
				hop2 = s
			case "GET products":
				client1 = s
			}
		}
		return hop1.Name != "" && hop2.Name != "" && client1.Name != ""
	})

	wantTrace := strings.Split(in.Extensions()[events.TraceparentExt].(string), "-")[1]
	if got := hop1.SpanContext.TraceID().String(); got != wantTrace {
		t.Errorf("hop1 trace %s, want the CampaignRequested's %s", got, wantTrace)
	}
	if hop1.SpanKind != trace.SpanKindConsumer {
		t.Errorf("hop1 kind %v", hop1.SpanKind)
	}
	if hop2.Parent.SpanID() != hop1.SpanContext.SpanID() || hop2.SpanContext.TraceID() != hop1.SpanContext.TraceID() {
		t.Errorf("hop2 parent %s/%s, want hop1 %s/%s", hop2.Parent.TraceID(), hop2.Parent.SpanID(), hop1.SpanContext.TraceID(), hop1.SpanContext.SpanID())
	}
	if client1.Parent.SpanID() != hop2.SpanContext.SpanID() || client1.SpanKind != trace.SpanKindClient {
		t.Errorf("client span parent %s kind %v, want child of hop2 %s", client1.Parent.SpanID(), client1.SpanKind, hop2.SpanContext.SpanID())
	}

	// The stored SellerSkipped carries hop1's own span, not the origin's.
	msg, err := getLast(t, b, events.KindSellerSkipped.SubjectFor(campaign))
	if err != nil {
		t.Fatal(err)
	}
	tp1 := msg.Extensions()[events.TraceparentExt].(string)
	if want := fmt.Sprintf("00-%s-%s-01", hop1.SpanContext.TraceID(), hop1.SpanContext.SpanID()); tp1 != want {
		t.Errorf("output traceparent %s, want %s", tp1, want)
	}

	// The sandbox seller saw the client span's context.
	wantHeader := fmt.Sprintf("00-%s-%s-01", client1.SpanContext.TraceID(), client1.SpanContext.SpanID())
	var got []string
	for _, r := range seller.Requests() {
		if r.Path == "/products" {
			got = append(got, r.Header.Get("traceparent"))
		}
	}
	if len(got) != 1 || got[0] != wantHeader {
		t.Errorf("seller saw traceparent %q, want [%s]", got, wantHeader)
	}

	// The handler's log line carries the hop's trace and span ids.
	var line map[string]any
	for l := range strings.SplitSeq(logs.String(), "\n") {
		if strings.Contains(l, "hop2 handling") {
			if err := json.Unmarshal([]byte(l), &line); err != nil {
				t.Fatal(err)
			}
		}
	}
	if line["trace_id"] != hop2.SpanContext.TraceID().String() || line["span_id"] != hop2.SpanContext.SpanID().String() || line["stage"] != "hop2" {
		t.Errorf("handler log line %v lacks hop2's trace_id/span_id", line)
	}
}

func getLast(t *testing.T, b *bus.Bus, subject string) (events.Event, error) {
	t.Helper()
	st, err := b.JS.Stream(t.Context(), bus.StreamEvents)
	if err != nil {
		return events.Event{}, err
	}
	raw, err := st.GetLastMsgForSubject(t.Context(), subject)
	if err != nil {
		return events.Event{}, err
	}
	return events.Decode(events.Header(raw.Header), raw.Data)
}

func TestNoTracingByDefault(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "")
	tr, err := telemetry.SetupTracing(t.Context(), "dealflow-test")
	if err != nil {
		t.Fatal(err)
	}
	if tr.Enabled {
		t.Error("tracing enabled without OTEL_TRACES_EXPORTER")
	}
	if err := tr.Shutdown(t.Context()); err != nil {
		t.Error(err)
	}
	t.Setenv("OTEL_TRACES_EXPORTER", "bogus")
	if _, err := telemetry.SetupTracing(t.Context(), "dealflow-test"); err == nil {
		t.Error("an unknown exporter was accepted")
	}
}

func TestNewLogger(t *testing.T) {
	if _, err := telemetry.NewLogger("loud", false, &bytes.Buffer{}); err == nil {
		t.Fatal("unknown level accepted")
	}
	var buf bytes.Buffer
	log, err := telemetry.NewLogger("error", false, &buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Info().Msg("quiet")
	log.Error().Str("k", "v").Msg("loud")
	out := buf.String()
	if strings.Contains(out, "quiet") || !strings.Contains(out, "loud") {
		t.Errorf("level error: %q", out)
	}
	if strings.Contains(out, "\x1b[") {
		t.Errorf("ANSI colour written to a non-terminal: %q", out)
	}
	if !regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d{3} `).MatchString(out) {
		t.Errorf("console timestamp not to the millisecond: %q", out)
	}

	buf.Reset()
	jlog, err := telemetry.NewLogger("INFO", true, &buf)
	if err != nil {
		t.Fatal(err)
	}
	jlog.Info().Msg("hello")
	var obj map[string]any
	if err := json.Unmarshal(buf.Bytes(), &obj); err != nil {
		t.Fatalf("json log %q: %v", buf.String(), err)
	}
	ts, _ := obj["time"].(string)
	if _, err := time.Parse(telemetry.TimeLayout, ts); err != nil || !regexp.MustCompile(`\.\d{3}Z$`).MatchString(ts) {
		t.Errorf("json time %q not RFC 3339 to the millisecond", ts)
	}
	if _, err := telemetry.NewLogger("", false, &buf); err != nil {
		t.Errorf("empty level: %v", err)
	}
}

// TestTraceExporters: each exporter OTEL_TRACES_EXPORTER and the OTLP
// protocol can name is built in; another protocol is refused by name.
func TestTraceExporters(t *testing.T) {
	for _, c := range []struct {
		exporter, protocol string
		ok                 bool
	}{{"console", "", true}, {"otlp", "", true}, {"otlp", "http/protobuf", true}, {"otlp", "grpc", true}, {"otlp", "carrier-pigeon", false}} {
		t.Setenv("OTEL_TRACES_EXPORTER", c.exporter)
		t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", c.protocol)
		t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1") // never reached: nothing is exported
		tr, err := telemetry.SetupTracing(t.Context(), "dealflow-test")
		if (err == nil) != c.ok || (err == nil && !tr.Enabled) {
			t.Errorf("%s %q: enabled %v, err %v", c.exporter, c.protocol, err == nil && tr.Enabled, err)
		}
		if err == nil {
			ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
			_ = tr.Shutdown(ctx)
			cancel()
		}
	}
}

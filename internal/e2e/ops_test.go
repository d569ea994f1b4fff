package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/dealflow/dealflow/internal/api"
	"github.com/dealflow/dealflow/internal/app"
	"github.com/dealflow/dealflow/internal/checkfor"
	"github.com/dealflow/dealflow/internal/config"
	"github.com/dealflow/dealflow/internal/demo"
	"github.com/dealflow/dealflow/internal/sandbox"
	"github.com/dealflow/dealflow/internal/telemetry"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/services/booker"
	"github.com/dealflow/dealflow/services/discoverer"
	"github.com/dealflow/dealflow/services/kitfetcher"
	"github.com/dealflow/dealflow/services/negotiator"
)

// lockedBuffer is the app's log sink, written by every stage's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for line := range strings.SplitSeq(l.b.String(), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// raw is every log line as written.
func (l *lockedBuffer) raw() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for line := range strings.SplitSeq(l.b.String(), "\n") {
		if strings.TrimSpace(line) != "" {
			out = append(out, line)
		}
	}
	return out
}

// opsCampaign is one campaign's events as the pipeline published them.
type opsCampaign struct {
	res       demo.Result
	booked    []events.DealBooked
	failed    int
	completed events.CampaignCompleted
	requested events.Event // the CampaignRequested (its traceparent roots the trace)
}

func followAll(t *testing.T, a *app.App, id string) opsCampaign {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	oc := opsCampaign{res: demo.Result{CampaignID: id}}
	err := a.Bus.Follow(ctx, id, func(e events.Event) bool {
		switch e.Type() {
		case events.KindCampaignRequested.Type:
			oc.requested = e
		case events.KindDealBooked.Type:
			d, err := events.PayloadOf[events.DealBooked](e, events.KindDealBooked)
			if err != nil {
				t.Errorf("DealBooked: %v", err)
			}
			oc.booked = append(oc.booked, d)
		case events.KindBookingFailed.Type:
			oc.failed++
		case events.KindCampaignCompleted.Type:
			c, err := events.PayloadOf[events.CampaignCompleted](e, events.KindCampaignCompleted)
			if err != nil {
				t.Errorf("CampaignCompleted: %v", err)
			}
			oc.completed = c
		}
		return demo.Observe(e, &oc.res, nil, io.Discard)
	})
	if err != nil && oc.res.Status == "" {
		t.Fatalf("campaign %s did not finish: %v", id, err)
	}
	return oc
}

// sample returns the value of family name's samples whose labels include
// want (summed; a histogram's count), and whether any matched.
func sample(mfs map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	mf, ok := mfs[name]
	if !ok {
		return 0, false
	}
	total, found := 0.0, false
	for _, m := range mf.GetMetric() {
		match := true
		for k, v := range want {
			got := ""
			for _, l := range m.GetLabel() {
				if l.GetName() == k {
					got = l.GetValue()
				}
			}
			match = match && got == v
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
	return total, found
}

// TestCampaignIsObservable runs two campaigns through one process — one
// through POST /bookings, one published directly as an event — and checks
// what an operator sees of them: the /metrics scrape (served on the bookings
// API address), one trace per campaign whose hops nest, and the lifecycle
// log lines at info level.
func TestCampaignIsObservable(t *testing.T) {
	if testing.Short() {
		t.Skip("two full campaigns against the sandbox")
	}
	ctx := context.Background()
	m, err := sandbox.Start(ctx, sandbox.DefaultMarket())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	var logs lockedBuffer
	log, err := telemetry.NewLogger("info", true, &logs)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Defaults()
	cfg.DataDir, cfg.RegistryURL, cfg.AllowPrivate, cfg.Window, cfg.HTTPAddr = t.TempDir(), m.RegistryURL, true, 45*time.Second, "127.0.0.1:0"
	a, err := app.Start(ctx, cfg, log, app.Options{Credentials: m.Credentials(), SweepEvery: 200 * time.Millisecond, TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	base := "http://" + a.HTTPAddr

	// Campaign A through the API, competitive; campaign B as an event.
	sampleA := demo.SampleCampaign("x", "competitive")
	body := map[string]any{"brief": api.BriefInputOf(sampleA.Brief), "auto_approve": true, "buyer": sampleA.Buyer,
		"negotiation": map[string]any{"strategy": "competitive"}}
	code, out := httpJSON(t, "POST", base+"/bookings", body, nil)
	if code != 200 {
		t.Fatalf("POST /bookings: %d %v", code, out)
	}
	idA := out["job_id"].(string)
	reqB := demo.SampleCampaign("ops-event", "adaptive")
	for _, sel := range m.Sellers {
		if !sel.InRegistry {
			reqB.Sellers = append(reqB.Sellers, sel.URL)
		}
	}
	eB, err := events.New(events.KindCampaignRequested, events.NewID(), "test", reqB.CampaignID, reqB)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Bus.Publish(ctx, eB); err != nil {
		t.Fatal(err)
	}
	camps := map[string]opsCampaign{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, id := range []string{idA, reqB.CampaignID} {
		wg.Go(func() {
			oc := followAll(t, a, id)
			mu.Lock()
			camps[id] = oc
			mu.Unlock()
		})
	}
	wg.Wait()
	strategies := map[string]string{idA: "competitive", reqB.CampaignID: "adaptive"}
	var deals int
	var spend events.Micros
	for id, oc := range camps {
		if oc.completed.Status != events.StatusCompleted && oc.completed.Status != events.StatusPartial {
			t.Fatalf("campaign %s ended %q", id, oc.completed.Status)
		}
		if len(oc.booked) == 0 {
			t.Fatalf("campaign %s booked nothing", id)
		}
		deals += len(oc.booked)
		spend += oc.completed.TotalSpendMicros
	}

	t.Run("metrics", func(t *testing.T) {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /metrics: %d", resp.StatusCode)
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		mfs, err := parser.TextToMetricFamilies(resp.Body)
		if err != nil {
			t.Fatalf("parse /metrics: %v", err)
		}
		for _, stage := range []string{discoverer.Stage, kitfetcher.Stage, negotiator.Stage, booker.StagePlan, booker.StageBook} {
			if v, ok := sample(mfs, "dealflow_events_handled_total", map[string]string{"stage": stage, "outcome": "ok"}); !ok || v < 1 {
				t.Errorf("events_handled_total{stage=%q,outcome=ok} = %v (present %v)", stage, v, ok)
			}
			for _, f := range []string{"dealflow_event_handle_seconds", "dealflow_event_lag_seconds"} {
				if _, ok := sample(mfs, f, map[string]string{"stage": stage}); !ok {
					t.Errorf("%s{stage=%q} missing", f, stage)
				}
			}
			if _, ok := sample(mfs, "dealflow_consumer_pending", map[string]string{"consumer": stage}); !ok {
				t.Errorf("dealflow_consumer_pending{consumer=%q} missing", stage)
			}
			if _, ok := sample(mfs, "dealflow_consumer_ack_pending", map[string]string{"consumer": stage}); !ok {
				t.Errorf("dealflow_consumer_ack_pending{consumer=%q} missing", stage)
			}
		}
		if v, _ := sample(mfs, "dealflow_deals_booked_total", nil); v != float64(deals) {
			t.Errorf("deals_booked_total = %v, want %d DealBooked events", v, deals)
		}
		if v, _ := sample(mfs, "dealflow_booked_spend_micros_total", nil); v != float64(spend) {
			t.Errorf("booked_spend_micros_total = %v, want the campaigns' total_spend_micros %d", v, spend)
		}
		for _, op := range []string{"quote", "deal"} {
			ok2xx := 0.0
			for _, code := range []string{"200", "201"} {
				v, _ := sample(mfs, "dealflow_seller_requests_total", map[string]string{"protocol": "iab-seller-agent", "operation": op, "code": code})
				ok2xx += v
			}
			if ok2xx < 1 {
				t.Errorf("seller_requests_total{operation=%q,code=200|201} = 0", op)
			}
		}
		// AdCP calls are counted like IAB ones, under their own protocol,
		// and their buys are not deals of type "other".
		if v, _ := sample(mfs, "dealflow_seller_requests_total", map[string]string{"protocol": "adcp", "operation": "get_products", "code": "200"}); v < 1 {
			t.Errorf("seller_requests_total{protocol=adcp,operation=get_products,code=200} = %v", v)
		}
		if v, _ := sample(mfs, "dealflow_deals_booked_total", map[string]string{"deal_type": "other"}); v != 0 {
			t.Errorf("deals_booked_total{deal_type=other} = %v", v)
		}
		for _, s := range strategies {
			if v, _ := sample(mfs, "dealflow_negotiations_total", map[string]string{"strategy": s}); v < 1 {
				t.Errorf("negotiations_total{strategy=%q} = %v", s, v)
			}
			if _, ok := sample(mfs, "dealflow_negotiation_rounds", map[string]string{"strategy": s}); !ok {
				t.Errorf("negotiation_rounds{strategy=%q} missing", s)
			}
		}
		if v, _ := sample(mfs, "dealflow_campaigns", map[string]string{"status": "completed"}); v < 1 {
			t.Errorf("campaigns{status=completed} = %v, want >= 1", v)
		}
	})

	t.Run("traces", func(t *testing.T) {
		oc := camps[reqB.CampaignID]
		root := trace.SpanContextFromContext(traceContextOf(t, oc.requested))
		if !root.IsValid() {
			t.Fatal("the CampaignRequested carries no traceparent")
		}
		var spans []tracetest.SpanStub
		checkfor.Until(t, 90*time.Second, "the campaign's booker-book span", func() bool {
			spans = nil
			done := false
			for _, s := range exp.GetSpans() {
				if s.SpanContext.TraceID() == root.TraceID() {
					spans = append(spans, s)
					done = done || s.Name == booker.StageBook+" PortfolioApproved"
				}
			}
			return done
		})
		byID := map[trace.SpanID]tracetest.SpanStub{}
		names := map[string]int{}
		for _, s := range spans {
			byID[s.SpanContext.SpanID()] = s
			names[s.Name]++
		}
		// Every stage's span, and whose span its parent must be: the hop
		// that produced its input (the CampaignRequested's own context for
		// the first hops).
		parents := map[string][]string{
			discoverer.Stage + " CampaignRequested":  {"(root)"},
			booker.StagePlan + " CampaignRequested":  {"(root)"},
			kitfetcher.Stage + " SellerFound":        {discoverer.Stage + " CampaignRequested"},
			booker.StagePlan + " DiscoveryCompleted": {discoverer.Stage + " CampaignRequested"},
			negotiator.Stage + " PackageFound":       {kitfetcher.Stage + " SellerFound"},
			booker.StagePlan + " QuoteReady":         {negotiator.Stage + " PackageFound"},
			booker.StagePlan + " SellerSkipped":      {discoverer.Stage + " CampaignRequested", kitfetcher.Stage + " SellerFound"},
			booker.StageBook + " PortfolioApproved":  {booker.StagePlan + " QuoteReady", booker.StagePlan + " SellerSkipped", booker.StagePlan + " DiscoveryCompleted"},
		}
		t.Logf("trace %s: %d spans %v", root.TraceID(), len(spans), names)
		for name := range parents {
			if names[name] == 0 && !strings.HasSuffix(name, "SellerSkipped") {
				t.Errorf("no span %q in the campaign's trace (spans: %v)", name, names)
			}
		}
		for _, s := range spans {
			want, ok := parents[s.Name]
			if !ok {
				continue
			}
			if s.SpanKind != trace.SpanKindConsumer {
				t.Errorf("%s: kind %v, want consumer", s.Name, s.SpanKind)
			}
			got := "(root)"
			if s.Parent.SpanID() != root.SpanID() {
				p, ok := byID[s.Parent.SpanID()]
				if !ok {
					t.Errorf("%s: parent %s is not a span of the trace", s.Name, s.Parent.SpanID())
					continue
				}
				got = p.Name
			}
			found := false
			for _, w := range want {
				found = found || got == w
			}
			if !found {
				t.Errorf("%s: parent %q, want one of %v", s.Name, got, want)
			}
		}
		// Seller calls are client spans under the stage that made them, and
		// the seller received their context.
		clientOps := map[string]bool{}
		clientIDs := map[string]bool{}
		for _, s := range spans {
			if s.SpanKind != trace.SpanKindClient {
				continue
			}
			clientOps[s.Name] = true
			clientIDs[fmt.Sprintf("00-%s-%s-01", s.SpanContext.TraceID(), s.SpanContext.SpanID())] = true
			p, ok := byID[s.Parent.SpanID()]
			if !ok || p.SpanKind != trace.SpanKindConsumer {
				t.Errorf("client span %s: parent %q is not a stage span", s.Name, p.Name)
			}
		}
		for _, want := range []string{"GET packages", "POST quote", "POST deal"} {
			if !clientOps[want] {
				t.Errorf("no client span %q (have %v)", want, clientOps)
			}
		}
		seen := 0
		for _, sel := range m.Sellers {
			for _, r := range sel.Requests() {
				tp := r.Header.Get("traceparent")
				if strings.Contains(tp, root.TraceID().String()) {
					seen++
					if !clientIDs[tp] {
						t.Errorf("seller %s saw traceparent %s, not one of the client spans", sel.Name, tp)
					}
				}
			}
		}
		t.Logf("%d seller requests carried the trace", seen)
		if seen == 0 {
			t.Error("no seller received a traceparent of the campaign's trace")
		}
	})

	t.Run("logs", func(t *testing.T) {
		lines := logs.lines(t)
		for id, oc := range camps {
			t.Logf("campaign %s: %d deals, %d failed, %d skipped, %d log lines in all", id, len(oc.booked), oc.failed, len(oc.res.SkippedSellers), len(lines))
		}
		find := func(id, msg string) []map[string]any {
			var out []map[string]any
			for _, l := range lines {
				if l["campaign_id"] == id && l["message"] == msg {
					out = append(out, l)
				}
			}
			return out
		}
		for id, oc := range camps {
			for _, msg := range []string{"campaign accepted", "discovery done", "portfolio proposed", "portfolio approved", "campaign finished"} {
				if len(find(id, msg)) == 0 {
					t.Errorf("campaign %s: no %q line", id, msg)
				}
			}
			if l := find(id, "portfolio approved"); len(l) > 0 && l[0]["by"] != "auto" {
				t.Errorf("campaign %s: approved by %v, want auto", id, l[0]["by"])
			}
			if l := find(id, "campaign accepted"); len(l) != 1 {
				t.Errorf("campaign %s: %d campaign accepted lines, want 1", id, len(l))
			}
			skipped := find(id, "seller skipped")
			if len(skipped) != len(oc.res.SkippedSellers) {
				t.Errorf("campaign %s: %d seller skipped lines, %d SellerSkipped events", id, len(skipped), len(oc.res.SkippedSellers))
			}
			for _, l := range skipped {
				if l["level"] != "warn" || l["code"] == "" || l["code"] == nil || l["seller"] == nil {
					t.Errorf("campaign %s: skip line %v lacks level warn, code or seller", id, l)
				}
			}
			if n := len(find(id, "deal booked")); n != len(oc.booked) {
				t.Errorf("campaign %s: %d deal booked lines, %d DealBooked events", id, n, len(oc.booked))
			}
			if n := len(find(id, "booking failed")); n != oc.failed {
				t.Errorf("campaign %s: %d booking failed lines, %d BookingFailed events", id, n, oc.failed)
			}
			if f := find(id, "campaign finished"); len(f) > 0 {
				l := f[0]
				if l["status"] != string(oc.completed.Status) || l["spend"] != oc.completed.TotalSpendMicros.String() ||
					l["budget"] != oc.completed.BudgetMicros.String() || l["duration_seconds"] == nil {
					t.Errorf("campaign %s: finished line %v, want status %s spend %s budget %s and a duration", id, l,
						oc.completed.Status, oc.completed.TotalSpendMicros, oc.completed.BudgetMicros)
				}
			}
		}
		if l := find(reqB.CampaignID, "campaign accepted"); len(l) == 1 && l[0]["via"] != "event" {
			t.Errorf("event-submitted campaign accepted line %v lacks via=event", l[0])
		}
		for _, l := range lines {
			if l["level"] == "debug" || l["level"] == "trace" {
				t.Fatalf("a %v line at level info: %v", l["level"], l)
			}
			// Every line written for a campaign joins its trace, the API's
			// and the stages' alike (the discoverer's and kitfetcher's
			// too), and names the campaign once.
			if _, ok := camps[fmt.Sprint(l["campaign_id"])]; ok && (l["trace_id"] == nil || l["span_id"] == nil) {
				t.Errorf("a campaign's log line without trace_id and span_id: %v", l)
			}
		}
		for _, raw := range logs.raw() {
			if strings.Count(raw, `"campaign_id"`) > 1 {
				t.Errorf("a log line names the campaign twice: %s", raw)
			}
		}
	})
}

func traceContextOf(t *testing.T, e events.Event) context.Context {
	t.Helper()
	tp, _ := e.Extensions()[events.TraceparentExt].(string)
	parts := strings.Split(tp, "-")
	if len(parts) != 4 {
		t.Fatalf("traceparent %q", tp)
	}
	tid, err := trace.TraceIDFromHex(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	sid, err := trace.SpanIDFromHex(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	return trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, Remote: true}))
}

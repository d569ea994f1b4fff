// Package e2e runs the whole pipeline against the sandbox market: real
// in-process JetStream (random port, temp store), real HTTP sellers on
// 127.0.0.1.
package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/dealflow/dealflow/internal/api"
	"github.com/dealflow/dealflow/internal/api/apitest"
	"github.com/dealflow/dealflow/internal/app"
	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/checkfor"
	"github.com/dealflow/dealflow/internal/config"
	"github.com/dealflow/dealflow/internal/demo"
	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/internal/sandbox"
	sandboxadcp "github.com/dealflow/dealflow/internal/sandbox/adcp"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/sellerclient"
	"github.com/dealflow/dealflow/pkg/sellerclient/adcp"
)

type stack struct {
	market *sandbox.Market
	app    *app.App
}

// startStack runs the default sandbox market and one process with every
// stage against it (embedded NATS on a temporary store), mutate adjusting
// the configuration.
func startStack(t *testing.T, mutate func(*config.Config)) *stack {
	t.Helper()
	return startStackWith(t, mutate, nil)
}

// startStackWith is startStack with the process options adjusted too (stage
// tuning, wrapped handlers, a resolver), given the configuration in force.
func startStackWith(t *testing.T, mutate func(*config.Config), tune func(config.Config, *app.Options)) *stack {
	t.Helper()
	ctx := context.Background()
	m, err := sandbox.Start(ctx, sandbox.DefaultMarket())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	cfg := config.Defaults()
	cfg.DataDir, cfg.NATSPort, cfg.RegistryURL, cfg.AllowPrivate, cfg.Window = t.TempDir(), 0, m.RegistryURL, true, 45*time.Second
	if mutate != nil {
		mutate(&cfg)
	}
	opts := app.Options{Credentials: m.Credentials(), SweepEvery: 200 * time.Millisecond}
	if tune != nil {
		tune(cfg, &opts)
	}
	a, err := app.Start(ctx, cfg, natstest.Logger(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	return &stack{market: m, app: a}
}

func (s *stack) submit(t *testing.T, req events.CampaignRequested) {
	t.Helper()
	e, err := events.New(events.KindCampaignRequested, events.NewID(), "test", req.CampaignID, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.app.Bus.Publish(context.Background(), e); err != nil {
		t.Fatal(err)
	}
}

func (s *stack) follow(t *testing.T, id string) demo.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	res := demo.Result{CampaignID: id}
	if err := s.app.Bus.Follow(ctx, id, func(e events.Event) bool { return demo.Observe(e, &res, nil, io.Discard) }); err != nil && res.Status == "" {
		t.Fatalf("campaign %s did not finish: %v", id, err)
	}
	return res
}

// sellerDeals counts the bookings the sellers hold: IAB deals by deal id,
// and AdCP media buys by seller and media_buy_id (a media buy id is unique
// per seller only; each confirmed buy counts once, and a second buy of one
// line would show as another id).
func sellerDeals(m *sandbox.Market) map[string]int {
	out := map[string]int{}
	for _, s := range m.Sellers {
		for _, d := range s.Deals() {
			out[d.DealID]++
		}
	}
	for _, s := range m.ADCPSellers {
		seller, err := sellerclient.CanonicalURL(s.URL)
		if err != nil {
			seller = s.URL
		}
		for _, c := range s.Agent.(*sandboxadcp.Agent).Calls() {
			var r struct {
				MediaBuyID string `json:"media_buy_id"`
				Replayed   bool   `json:"replayed"`
				Result     struct {
					MediaBuyID string `json:"media_buy_id"`
				} `json:"result"`
			}
			if c.IsError || json.Unmarshal(c.Result, &r) != nil {
				continue
			}
			switch {
			case c.Tool == "create_media_buy" && r.MediaBuyID != "" && !r.Replayed:
				out[seller+"|"+r.MediaBuyID]++
			case c.Tool == "get_task_status" && r.Result.MediaBuyID != "":
				out[seller+"|"+r.Result.MediaBuyID] = 1 // polled as often as it took
			}
		}
	}
	return out
}

func TestDemoCampaignBooksWithinBudget(t *testing.T) {
	s := startStack(t, nil)
	req := demo.SampleCampaign("e2e-demo", "adaptive")
	for _, sel := range s.market.Sellers {
		if !sel.InRegistry {
			req.Sellers = append(req.Sellers, sel.URL)
		}
	}
	s.submit(t, req)
	res := s.follow(t, req.CampaignID)
	if res.Status != "completed" {
		t.Fatalf("status %q, failed %v", res.Status, res.Failed)
	}
	if len(res.Deals) < 2 {
		t.Fatalf("deals = %d, want a portfolio of several", len(res.Deals))
	}
	budget := req.Brief.BudgetMicros
	if res.TotalSpendMicros > budget || res.TotalSpendMicros < budget/10*9 || res.BudgetMicros != budget {
		t.Fatalf("total spend %s, budget %s: must not exceed it and should use most of it", res.TotalSpendMicros, budget)
	}
	perSeller := map[string]events.Micros{}
	var sum events.Micros
	booked := sellerDeals(s.market)
	protocols := map[string]int{}
	for _, d := range res.Deals {
		protocols[d.Protocol]++
		id := bookingID(d)
		if booked[id] != 1 {
			t.Fatalf("deal %s booked %d times at the seller", id, booked[id])
		}
		got := events.CostMicros(d.Impressions, d.CPMMicros)
		if d.Protocol == "adcp" {
			// An AdCP buy's budget is the cost rounded down to the cent
			// (adcp.MinorUnitFloor), the amount sent and booked.
			got = adcp.MinorUnitFloor(got, "USD")
		}
		if d.SpendMicros != got || d.Spend != got.Dollars() {
			t.Fatalf("deal %s spend %d micros != impressions x CPM / 1000 = %d", d.DealID, d.SpendMicros, got)
		}
		perSeller[d.SellerURL] += d.SpendMicros
		sum += d.SpendMicros
	}
	if len(booked) != len(res.Deals) {
		t.Fatalf("sellers hold %d deals, campaign reports %d", len(booked), len(res.Deals))
	}
	if protocols["adcp"] == 0 || protocols["iab-seller-agent"] == 0 {
		t.Fatalf("deals by protocol %v: want both families in one portfolio", protocols)
	}
	if sum != res.TotalSpendMicros {
		t.Fatalf("total spend %d micros != sum of deals %d", res.TotalSpendMicros, sum)
	}
	for u, v := range perSeller {
		if v > req.Brief.PerSellerCapMicros {
			t.Fatalf("seller %s got %s over the cap %s", u, v, req.Brief.PerSellerCapMicros)
		}
	}
	codes := map[string]bool{}
	for _, sk := range res.SkippedSellers {
		codes[strings.SplitN(sk.Reason, ":", 2)[0]] = true
	}
	for _, want := range []string{"blocked", "untrusted", "unreachable"} {
		if !codes[want] {
			t.Fatalf("skips %v lack %q", res.SkippedSellers, want)
		}
	}
	blocked := s.market.Seller("Shady Reseller")
	if n := len(blocked.Requests()); n != 0 {
		t.Fatalf("blocked seller received %d requests", n)
	}
	if len(res.Negotiations) == 0 {
		t.Fatal("no negotiations reported")
	}
}

// httpJSON calls the bookings API and checks the answer against its OpenAPI
// document (apitest), so the document cannot drift from the code.
func httpJSON(t *testing.T, method, url string, body any, headers map[string]string) (int, map[string]any) {
	t.Helper()
	return apitest.JSON(t, method, url, body, headers)
}

func waitStatus(t *testing.T, base, id string, key map[string]string, want ...string) map[string]any {
	t.Helper()
	var last map[string]any
	checkfor.Check(t, 90*time.Second, 100*time.Millisecond, func() error {
		_, last = httpJSON(t, "GET", base+"/bookings/"+id, nil, key)
		if slices.Contains(want, fmt.Sprint(last["status"])) {
			return nil
		}
		return fmt.Errorf("job %s never reached %v: %v", id, want, last["status"])
	})
	return last
}

func TestBookingsAPIApprovalFlow(t *testing.T) {
	s := startStack(t, func(c *config.Config) { c.HTTPAddr, c.APIKey = "127.0.0.1:0", "buyer-secret" })
	base := "http://" + s.app.HTTPAddr
	key := map[string]string{"X-API-Key": "buyer-secret"}
	sample := demo.SampleCampaign("x", "competitive")
	body := map[string]any{"brief": api.BriefInputOf(sample.Brief), "auto_approve": false, "buyer": sample.Buyer, "negotiation": map[string]any{"strategy": "competitive"}}

	if code, out := httpJSON(t, "GET", base+"/readyz", nil, nil); code != 200 || out["status"] != "ready" {
		t.Fatalf("readyz: %d %v", code, out)
	}
	if code, out := httpJSON(t, "POST", base+"/bookings", body, nil); code != 401 || out["error"] != "unauthorized" {
		t.Fatalf("no key: %d %v", code, out)
	}
	bad := map[string]any{"brief": map[string]any{"name": "x", "budget": 1000, "start_date": "2028-07-01", "end_date": "2028-06-01"}}
	if code, out := httpJSON(t, "POST", base+"/bookings", bad, key); code != 422 || out["field"] != "brief.end_date" {
		t.Fatalf("bad dates: %d %v", code, out)
	}
	if code, out := httpJSON(t, "POST", base+"/bookings", map[string]any{"brief": map[string]any{"name": "x", "budget": "lots"}}, key); code != 422 || out["field"] != "brief.budget" {
		t.Fatalf("bad budget type: %d %v", code, out)
	}
	// Dollars convert once at the edge; an amount with no micros value, or
	// one that rounds to nothing, is a 422 naming the request's dollar field.
	for _, c := range []struct {
		brief map[string]any
		field string
	}{
		{map[string]any{"name": "x", "budget": 1e300, "start_date": "2028-06-01", "end_date": "2028-06-02"}, "brief.budget"},
		{map[string]any{"name": "x", "budget": 0.0000004, "start_date": "2028-06-01", "end_date": "2028-06-02"}, "brief.budget"},
		{map[string]any{"name": "x", "budget": 10, "start_date": "2028-06-01", "end_date": "2028-06-02", "kpis": map[string]any{"target_cpm": 20, "max_cpm": 10}}, "brief.kpis.target_cpm"},
		{map[string]any{"name": "x", "budget": 10, "start_date": "2028-06-01", "end_date": "2028-06-02", "per_seller_cap": -1}, "brief.per_seller_cap"},
	} {
		if code, out := httpJSON(t, "POST", base+"/bookings", map[string]any{"brief": c.brief}, key); code != 422 || out["field"] != c.field {
			t.Fatalf("%v: %d %v, want 422 on %s", c.brief, code, out, c.field)
		}
	}
	if code, _ := httpJSON(t, "GET", base+"/bookings/nope", nil, key); code != 404 {
		t.Fatalf("unknown job: %d", code)
	}
	req, err := http.NewRequest("POST", base+"/bookings", strings.NewReader(`{"brief":`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-API-Key", "buyer-secret")
	req.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 400 {
		t.Fatalf("truncated JSON: %v %v", resp, err)
	}
	fixed := map[string]any{"campaign_id": "fixed-id", "brief": api.BriefInputOf(sample.Brief), "auto_approve": false, "buyer": sample.Buyer}
	if code, _ := httpJSON(t, "POST", base+"/bookings", fixed, key); code != 200 {
		t.Fatalf("create with id: %d", code)
	}
	if code, out := httpJSON(t, "POST", base+"/bookings", fixed, key); code != 409 || out["field"] != "campaign_id" {
		t.Fatalf("duplicate campaign_id: %d %v", code, out)
	}
	code, out := httpJSON(t, "POST", base+"/bookings", body, key)
	if code != 200 || out["status"] != "requested" {
		t.Fatalf("create: %d %v", code, out)
	}
	id := out["job_id"].(string)
	if code, out := httpJSON(t, "POST", base+"/bookings/"+id+"/approve-all", nil, key); code != 409 && out["status"] != "awaiting_approval" {
		t.Fatalf("early approve: %d %v", code, out)
	}
	job := waitStatus(t, base, id, key, "awaiting_approval")
	if n := len(sellerDeals(s.market)); n != 0 {
		t.Fatalf("%d deals booked before approval", n)
	}
	recs := job["recommendations"].([]any)
	if len(recs) < 2 {
		t.Fatalf("recommendations = %d", len(recs))
	}
	first := recs[0].(map[string]any)
	if job["budget"] != sample.Brief.BudgetMicros.Dollars() || job["budget_micros"] != float64(sample.Brief.BudgetMicros) {
		t.Fatalf("job budget %v / %v micros, want %s", job["budget"], job["budget_micros"], sample.Brief.BudgetMicros)
	}
	var proposed float64
	for _, r := range recs {
		proposed += r.(map[string]any)["spend_micros"].(float64)
	}
	if job["proposed_spend_micros"] != proposed || job["proposed_spend"] != events.Micros(proposed).Dollars() {
		t.Fatalf("proposed spend %v / %v micros, lines sum to %v", job["proposed_spend"], job["proposed_spend_micros"], proposed)
	}
	if code, out := httpJSON(t, "POST", base+"/bookings/"+id+"/approve", map[string]any{"approved_quote_ids": []string{"qt-nope"}}, key); code != 422 || out["error"] != "invalid_products" {
		t.Fatalf("unknown line: %d %v", code, out)
	}
	code, out = httpJSON(t, "POST", base+"/bookings/"+id+"/approve", map[string]any{"approved_quote_ids": []string{first["quote_id"].(string)}}, key)
	if code != 200 || out["approved_count"] != float64(1) || out["total_cost_micros"] != first["spend_micros"] ||
		out["total_cost"] != events.Micros(first["spend_micros"].(float64)).Dollars() {
		t.Fatalf("approve: %d %v (line %v)", code, out, first)
	}
	if code, _ := httpJSON(t, "POST", base+"/bookings/"+id+"/approve-all", nil, key); code != 409 {
		t.Fatalf("second approval: %d, want 409", code)
	}
	job = waitStatus(t, base, id, key, "completed", "failed")
	lines := job["booked_lines"].([]any)
	if job["status"] != "completed" || len(lines) != 1 || len(sellerDeals(s.market)) != 1 {
		t.Fatalf("status %v, booked %d, at sellers %d", job["status"], len(lines), len(sellerDeals(s.market)))
	}
	bl := lines[0].(map[string]any)
	if got := bl["package_id"]; got != first["package_id"] {
		t.Fatalf("booked %v, approved %v", got, first["package_id"])
	}
	// The reference's booked_lines dollars (cpm, cost) derive from the micros,
	// and the job's total is the booked amount.
	if bl["cost"] != events.Micros(bl["spend_micros"].(float64)).Dollars() || bl["cpm"] != events.Micros(bl["cpm_micros"].(float64)).Dollars() ||
		job["total_spend_micros"] != bl["spend_micros"] || job["total_spend"] != bl["cost"] {
		t.Fatalf("booked line %v, job total %v / %v micros", bl, job["total_spend"], job["total_spend_micros"])
	}
	_, list := httpJSON(t, "GET", base+"/bookings?status=completed", nil, key)
	if list["total"] != float64(1) || list["jobs"].([]any)[0].(map[string]any)["job_id"] != id {
		t.Fatalf("list: %v", list)
	}
	if code, _ := httpJSON(t, "GET", base+"/bookings?limit=0", nil, key); code != 422 {
		t.Fatalf("limit 0: %d", code)
	}
}

// TestJobsSurviveRestart stops the whole process and starts a new one on the
// same store: the job is still there.
func TestJobsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	s := startStack(t, func(c *config.Config) { c.HTTPAddr, c.DataDir = "127.0.0.1:0", dir })
	base := "http://" + s.app.HTTPAddr
	sample := demo.SampleCampaign("x", "adaptive")
	_, out := httpJSON(t, "POST", base+"/bookings", map[string]any{"brief": api.BriefInputOf(sample.Brief), "auto_approve": true, "buyer": sample.Buyer}, nil)
	id := out["job_id"].(string)
	waitStatus(t, base, id, nil, "completed")
	s.app.Stop()
	cfg := config.Defaults()
	cfg.DataDir, cfg.NATSPort, cfg.HTTPAddr, cfg.Stages = dir, 0, "127.0.0.1:0", nil
	a, err := app.Start(context.Background(), cfg, natstest.Logger(), app.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	code, job := httpJSON(t, "GET", "http://"+a.HTTPAddr+"/bookings/"+id, nil, nil)
	if code != 200 || job["status"] != "completed" || len(job["booked_lines"].([]any)) == 0 {
		t.Fatalf("after restart: %d %v", code, job["status"])
	}
}

// TestStructuredModeCampaign publishes a CampaignRequested the way the stock
// nats CLI does (plain publish, structured-mode CloudEvent in the body) and
// follows it to completion.
func TestStructuredModeCampaign(t *testing.T) {
	s := startStack(t, nil)
	body := `{"specversion":"1.0","id":"cli-1","source":"/nats-cli","type":"com.dealflow.campaign.requested.v1",
	  "subject":"cli-1","datacontenttype":"application/json",
	  "data":{"campaign_id":"cli-1","auto_approve":true,"requested_at":"2028-06-01T00:00:00Z",
	          "buyer":{"seat_id":"ttd-seat-123","agency_id":"agency-456","advertiser_id":"adv-789"},
	          "brief":{"name":"Q1 CTV","budget_micros":40000000000,"start_date":"2028-06-04","end_date":"2028-07-28",
	                   "channels":["ctv","video"],"kpis":{"target_cpm_micros":18000000,"max_cpm_micros":30000000}}}}`
	msg := nats.NewMsg("dealflow.campaign.requested.cli-1")
	msg.Header.Set("Content-Type", "application/cloudevents+json")
	msg.Data = []byte(body)
	if err := s.app.Bus.NC.PublishMsg(msg); err != nil {
		t.Fatal(err)
	}
	res := s.follow(t, "cli-1")
	if res.Status != "completed" || len(res.Deals) == 0 || res.TotalSpendMicros > 40_000_000_000 {
		t.Fatalf("status %q deals %d spend %.2f", res.Status, len(res.Deals), res.TotalSpend)
	}
}

// TestCampaignWithNoSellersCompletes: nothing matches the brief, yet the
// campaign ends with a CampaignCompleted (empty) instead of hanging.
func TestCampaignWithNoSellersCompletes(t *testing.T) {
	s := startStack(t, nil)
	req := demo.SampleCampaign("e2e-empty", "adaptive")
	req.Brief.Channels = []string{"audio"}
	s.submit(t, req)
	res := s.follow(t, req.CampaignID)
	if res.Status != "empty" || len(res.Deals) != 0 || res.TotalSpend != 0 {
		t.Fatalf("status %q deals %d", res.Status, len(res.Deals))
	}
}

// TestShoppingDeadline: one seller answers after the shopping window, so
// the booker optimises with the quotes it has, books them, and records the
// late quotes instead of losing them.
func TestShoppingDeadline(t *testing.T) {
	if testing.Short() {
		t.Skip("long end-to-end test; run without -short")
	}
	ctx := context.Background()
	mcfg := sandbox.DefaultMarket()
	mcfg.Sellers[1].Faults.Latency = 2500 * time.Millisecond // Northwind Video: slower than the window, not down
	m, err := sandbox.Start(ctx, mcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	cfg := config.Defaults()
	cfg.DataDir, cfg.NATSPort, cfg.RegistryURL, cfg.AllowPrivate, cfg.Window, cfg.HTTPAddr = t.TempDir(), 0, m.RegistryURL, true, 2*time.Second, "127.0.0.1:0"
	a, err := app.Start(ctx, cfg, natstest.Logger(), app.Options{Credentials: m.Credentials(), SweepEvery: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	s := &stack{market: m, app: a}
	req := demo.SampleCampaign("e2e-deadline", "threshold")
	s.submit(t, req)
	var notes []string
	res := demo.Result{CampaignID: req.CampaignID}
	fctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	_ = a.Bus.Follow(fctx, req.CampaignID, func(e events.Event) bool {
		if p, err := events.PayloadOf[events.PortfolioProposed](e, events.KindPortfolioProposed); err == nil {
			notes = append(notes, p.Notes...)
			for _, l := range p.Lines {
				if strings.Contains(l.SellerURL, m.Sellers[1].URL) {
					t.Errorf("the slow seller's quote made it into the deadline plan")
				}
			}
		}
		return demo.Observe(e, &res, nil, io.Discard)
	})
	if res.Status != "completed" || len(res.Deals) == 0 {
		t.Fatalf("status %q deals %d", res.Status, len(res.Deals))
	}
	if !strings.Contains(strings.Join(notes, " "), "shopping deadline passed") {
		t.Fatalf("plan notes %v do not say it was planned at the deadline", notes)
	}
	job := waitLate(t, "http://"+a.HTTPAddr, req.CampaignID)
	if len(job["late_quotes"].([]any)) == 0 {
		t.Fatal("late quotes lost")
	}
}

func waitLate(t *testing.T, base, id string) map[string]any {
	t.Helper()
	var job map[string]any
	checkfor.Check(t, 90*time.Second, 100*time.Millisecond, func() error {
		_, job = httpJSON(t, "GET", base+"/bookings/"+id, nil, nil)
		if lq, ok := job["late_quotes"].([]any); ok && len(lq) > 0 {
			return nil
		}
		return errors.New("no late quote recorded")
	})
	return job
}

// TestScaledOutStages runs the deployment shape of docker-compose.yml in one
// test: an external JetStream server, one process with discoverer,
// kitfetcher and booker, and three negotiator-only processes sharing the
// durable consumer.
func TestScaledOutStages(t *testing.T) {
	env := natstest.Start(t)
	m, err := sandbox.Start(context.Background(), sandbox.DefaultMarket())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	start := func(stages ...string) *app.App {
		cfg := config.Defaults()
		cfg.NATSURL, cfg.RegistryURL, cfg.AllowPrivate, cfg.Stages = env.URL, m.RegistryURL, true, stages
		a, err := app.Start(context.Background(), cfg, natstest.Logger(), app.Options{Credentials: m.Credentials(), SweepEvery: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(a.Stop)
		if a.Server != nil {
			t.Fatal("an external NATS URL must not start an embedded server")
		}
		return a
	}
	main := start("discoverer", "kitfetcher", "booker")
	for i := 0; i < 3; i++ {
		start("negotiator")
	}
	s := &stack{market: m, app: main}
	req := demo.SampleCampaign("scaled", "adaptive")
	s.submit(t, req)
	res := s.follow(t, req.CampaignID)
	if res.Status != "completed" || len(res.Deals) == 0 || len(res.Negotiations) < 4 {
		t.Fatalf("status %q deals %d negotiations %d", res.Status, len(res.Deals), len(res.Negotiations))
	}
	st, err := env.Bus.JS.Stream(t.Context(), bus.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	names := st.ConsumerNames(t.Context())
	count := 0
	for n := range names.Name() {
		if n == "negotiator" {
			count++
		}
	}
	if count != 1 {
		t.Fatalf("negotiator durables = %d, want one shared by the three replicas", count)
	}
}

func TestBookingsAPIReject(t *testing.T) {
	s := startStack(t, func(c *config.Config) { c.HTTPAddr = "127.0.0.1:0" })
	base := "http://" + s.app.HTTPAddr
	sample := demo.SampleCampaign("x", "adaptive")
	_, out := httpJSON(t, "POST", base+"/bookings", map[string]any{"brief": api.BriefInputOf(sample.Brief), "auto_approve": false, "buyer": sample.Buyer}, nil)
	id := out["job_id"].(string)
	waitStatus(t, base, id, nil, "awaiting_approval")
	if code, out := httpJSON(t, "POST", base+"/bookings/"+id+"/reject", map[string]any{"reason": "too much CTV"}, nil); code != 200 || out["status"] != "rejected" {
		t.Fatalf("reject: %d %v", code, out)
	}
	if code, _ := httpJSON(t, "POST", base+"/bookings/"+id+"/approve-all", nil, nil); code != 409 {
		t.Fatalf("approve after reject: %d, want 409", code)
	}
	if code, _ := httpJSON(t, "POST", base+"/bookings/"+id+"/reject", nil, nil); code != 409 {
		t.Fatalf("second reject: %d, want 409", code)
	}
	res := s.follow(t, id)
	if res.Status != "rejected" || len(sellerDeals(s.market)) != 0 {
		t.Fatalf("status %q, %d deals at sellers", res.Status, len(sellerDeals(s.market)))
	}
	_, job := httpJSON(t, "GET", base+"/bookings/"+id, nil, nil)
	if job["status"] != "rejected" || !strings.Contains(fmt.Sprint(job["errors"]), "too much CTV") {
		t.Fatalf("job %v %v", job["status"], job["errors"])
	}
}

// bookingID is how a deal is known at its seller: the deal id for an IAB
// deal, the media buy id for an AdCP buy.
func bookingID(d demo.Deal) string {
	if d.Protocol == "adcp" {
		return d.SellerURL + "|" + d.MediaBuyID
	}
	return d.DealID
}

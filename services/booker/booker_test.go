package booker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/internal/portfolio"
	"github.com/dealflow/dealflow/internal/sandbox"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/identity"
	"github.com/dealflow/dealflow/pkg/sellerclient"
)

func TestFitBudget(t *testing.T) {
	cases := []struct {
		name   string
		lines  []events.PlanLine
		budget events.Micros
		want   []int64
	}{
		{"fits", []events.PlanLine{{Impressions: 1000, CPMMicros: 10_000_000}, {Impressions: 500, CPMMicros: 20_000_000}}, 20_000_000, []int64{1000, 500}},
		{"micro rounding over", []events.PlanLine{{Impressions: 1388888, CPMMicros: 12_000_000}, {Impressions: 1000, CPMMicros: 350_000}}, 16_666_650_000, []int64{1388887}},
		{"trim last", []events.PlanLine{{Impressions: 1000, CPMMicros: 10_000_000}, {Impressions: 1000, CPMMicros: 10_000_000}}, 15_000_000, []int64{1000, 500}},
		{"drop empty", []events.PlanLine{{Impressions: 1000, CPMMicros: 10_000_000}, {Impressions: 10, CPMMicros: 10_000_000}}, 10_000_000, []int64{1000}},
		{"ceil per line", []events.PlanLine{{Impressions: 3, CPMMicros: 333}, {Impressions: 3, CPMMicros: 333}}, 1, []int64{3}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := &events.PortfolioProposed{Lines: append([]events.PlanLine(nil), c.lines...)}
			FitBudget(p, c.budget)
			var got []int64
			var cost events.Micros
			for _, l := range p.Lines {
				got = append(got, l.Impressions)
				if l.SpendMicros != events.CostMicros(l.Impressions, l.CPMMicros) {
					t.Fatalf("line spend %d, booked amount %d", l.SpendMicros, events.CostMicros(l.Impressions, l.CPMMicros))
				}
				cost += l.SpendMicros
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) || cost > c.budget || cost != p.TotalSpendMicros {
				t.Fatalf("impressions %v (cost %d micros, total %d), want %v within %d", got, cost, p.TotalSpendMicros, c.want, c.budget)
			}
		})
	}
}

func TestProjectionReadiness(t *testing.T) {
	c := &Campaign{}
	now := time.Unix(100, 0)
	ev := func(k events.Kind, id string, data any) events.Event {
		e, err := events.New(k, id, "test", "c1", data)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	req := events.CampaignRequested{CampaignID: "c1", Brief: events.Brief{Name: "n", BudgetMicros: events.MustMicros(100), StartDate: "2027-01-01", EndDate: "2027-01-02"}}
	q := func(seller, pkg string) events.QuoteReady {
		return events.QuoteReady{CampaignID: "c1", Seller: events.Seller{URL: seller, Trust: identity.TrustVerified, Source: "x"}, Package: events.Package{ID: pkg},
			PackagesTotal: 2, Tier: identity.TierAgency, Outcome: events.OutcomeAccepted}
	}
	steps := []struct {
		e     events.Event
		ready bool
		done  int
	}{
		{ev(events.KindCampaignRequested, "1", req), false, 0},
		{ev(events.KindDiscoveryCompleted, "2", events.DiscoveryCompleted{CampaignID: "c1", Sellers: []string{"a", "b"}}), false, 0},
		{ev(events.KindQuoteReady, "3", q("a", "p1")), false, 0},
		{ev(events.KindQuoteReady, "3", q("a", "p1")), false, 0}, // redelivered: no change
		{ev(events.KindQuoteReady, "4", q("a", "p2")), false, 1},
		{ev(events.KindSellerSkipped, "5", events.SellerSkipped{CampaignID: "c1", SellerURL: "b", Stage: "kitfetcher", Code: "timeout", Reason: "slow"}), true, 2},
	}
	for i, s := range steps {
		if _, err := c.apply(s.e, now, time.Minute); err != nil {
			t.Fatal(err)
		}
		done, _ := c.Resolved()
		if c.Ready() != s.ready || done != s.done {
			t.Fatalf("step %d: ready %v done %d, want %v %d", i, c.Ready(), done, s.ready, s.done)
		}
	}
	if len(c.QuoteKeys) != 2 || c.QuoteCount["a"] != 2 || c.Status != StatusRunning || c.Deadline != now.Add(time.Minute) || c.Progress < 0.79 {
		t.Fatalf("projection %+v", c)
	}
}

func TestLedgerNeverExceedsBudget(t *testing.T) {
	env := natstest.Start(t)
	kv, err := env.Bus.KV(t.Context(), bus.BucketLedger)
	if err != nil {
		t.Fatal(err)
	}
	var ok, refused atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 25; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := events.PlanLine{SellerURL: "http://s", PackageID: fmt.Sprint("p", i), QuoteID: fmt.Sprint("q", i), Impressions: 1000, CPMMicros: 10_000_000}
			_, err := reserve(t.Context(), kv, "budget", 100_000_000, l)
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, errBudget):
				refused.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	var led Ledger
	if _, _, err := bus.GetJSON(t.Context(), kv, "budget", &led); err != nil {
		t.Fatal(err)
	}
	if ok.Load() != 10 || refused.Load() != 15 || led.Committed() != 100_000_000 {
		t.Fatalf("reserved %d refused %d committed %d micros; want 10, 15, exactly the budget", ok.Load(), refused.Load(), led.Committed())
	}
}

// crashTransport simulates the booker dying around the seller's booking
// call: "before" fails the first deal POST without sending it (crash
// after the ledger write), "after" sends it and then loses the answer
// (crash after the seller booked, before anything was recorded or acked).
type crashTransport struct {
	mode  string
	fired atomic.Bool
}

func (c *crashTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if c.mode == "after" && c.fired.Load() {
		return nil, errors.New("simulated crash: the process is gone")
	}
	isDeal := r.Method == "POST" && strings.HasSuffix(r.URL.Path, "/api/v1/deals")
	if isDeal && c.mode == "before" && c.fired.CompareAndSwap(false, true) {
		return nil, errors.New("simulated crash before the seller call")
	}
	resp, err := http.DefaultTransport.RoundTrip(r)
	if isDeal && c.mode == "after" && err == nil && c.fired.CompareAndSwap(false, true) {
		resp.Body.Close()
		return nil, errors.New("simulated crash after the seller call")
	}
	return resp, err
}

func TestBookingExactlyOnceAcrossCrashes(t *testing.T) {
	for _, mode := range []string{"before", "after"} {
		t.Run(mode, func(t *testing.T) {
			env := natstest.Start(t)
			m, err := sandbox.Start(context.Background(), sandbox.MarketConfig{Sellers: []sandbox.SellerConfig{sandbox.DefaultMarket().Sellers[1]}})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			seller := m.Sellers[0]
			creds := m.Credentials()
			campaigns := must(env.Bus.KV(t.Context(), bus.BucketCampaigns))
			ledger := must(env.Bus.KV(t.Context(), bus.BucketLedger))
			cquotes := must(env.Bus.KV(t.Context(), bus.BucketCampaignQuotes))
			good := sellerclient.New(sellerclient.Config{AllowPrivate: true, RetryBase: time.Millisecond})
			// Two real agency quotes: one booked as quoted, one re-quoted
			// for a smaller planned volume.
			c := &Campaign{ID: "crash-" + mode, Status: StatusBooking, Quotes: map[string]events.QuoteReady{},
				Request: &events.CampaignRequested{CampaignID: "crash-" + mode, AutoApprove: true,
					Brief: events.Brief{Name: "n", BudgetMicros: events.MustMicros(10000), StartDate: "2027-01-01", EndDate: "2027-01-31"}}}
			var lines []events.PlanLine
			for i, pkg := range []struct{ id, product string }{{"pkg-a0e00001", sandbox.ProductPreRollVideo}, {"pkg-a0e00002", sandbox.ProductPremiumDisplay}} {
				key, _ := creds.Key(seller.URL, identity.TierAgency)
				imps := int64(200000)
				qt, err := good.CreateQuote(t.Context(), seller.URL, sellerclient.Auth{APIKey: key}, sellerclient.QuoteRequest{IdempotencyKey: fmt.Sprint("q", i, mode),
					ProductID: pkg.product, DealType: sellerclient.DealPD, Impressions: &imps})
				if err != nil {
					t.Fatal(err)
				}
				cpm := qt.Pricing.FinalCPM.Micros()
				url, _ := sellerclient.CanonicalURL(seller.URL)
				q := events.QuoteReady{CampaignID: c.ID, Seller: events.Seller{URL: url, Trust: identity.TrustVerified, Source: "registry"},
					Package: events.Package{ID: pkg.id, ProductID: pkg.product}, PackagesTotal: 2, Tier: identity.TierAgency, Outcome: events.OutcomeFixedPrice,
					QuoteID: qt.QuoteID, DealType: "PD", Impressions: imps, FinalCPMMicros: cpm, ListCPMMicros: cpm}
				c.Quotes[QuoteKey(url, pkg.id)] = q
				storeQuote(t, cquotes, c, q)
				planned := imps
				if i == 1 {
					planned = 150000
				}
				lines = append(lines, events.PlanLine{QuoteID: qt.QuoteID, SellerURL: url, PackageID: pkg.id, ProductID: pkg.product, DealType: "PD",
					Tier: identity.TierAgency, CPMMicros: cpm, Impressions: planned, SpendMicros: events.CostMicros(planned, cpm)})
			}
			c.Plan = &events.PortfolioProposed{CampaignID: c.ID, BudgetMicros: events.MustMicros(10000), Lines: lines, Revision: 1, AutoApprove: true}
			if _, err := bus.Update(t.Context(), campaigns, c.ID, func(v *Campaign, _ bool) (bool, error) { *v = *c; return true, nil }); err != nil {
				t.Fatal(err)
			}
			appr := must(events.New(events.KindPortfolioApproved, "appr-"+mode, "test", c.ID, events.PortfolioApproved{CampaignID: c.ID, ApprovedBy: "auto", Revision: 1, Lines: lines}))

			crashing := &Service{Campaigns: campaigns, Quotes: cquotes, Ledger: ledger, Weights: portfolio.DefaultWeights(), Log: natstest.Logger(),
				Booker: &Booker{Client: sellerclient.New(sellerclient.Config{AllowPrivate: true, MaxAttempts: 1, HTTPClient: &http.Client{Transport: &crashTransport{mode: mode}}}), Credentials: creds}}
			if _, err := crashing.HandleBook(t.Context(), appr); err == nil {
				t.Fatal("the crashed attempt reported success")
			}
			// The redelivered approval reaches a healthy replica.
			healthy := &Service{Campaigns: campaigns, Quotes: cquotes, Ledger: ledger, Weights: portfolio.DefaultWeights(), Log: natstest.Logger(),
				Booker: &Booker{Client: good, Credentials: creds}}
			out1, err := healthy.HandleBook(t.Context(), appr)
			if err != nil {
				t.Fatal(err)
			}
			out2, err := healthy.HandleBook(t.Context(), appr) // and once more, as if the ack was lost
			if err != nil {
				t.Fatal(err)
			}
			if len(out1) != len(out2) {
				t.Fatalf("replay emitted %d events, first run %d", len(out2), len(out1))
			}
			for i := range out1 {
				if out1[i].ID() != out2[i].ID() {
					t.Fatalf("replay changed event %d id", i)
				}
			}
			deals := seller.Deals()
			if len(deals) != 2 {
				t.Fatalf("seller holds %d deals, want exactly one per approved line (2)", len(deals))
			}
			var booked []events.DealBooked
			for _, e := range out1 {
				if e.Type() == events.KindDealBooked.Type {
					d, _ := events.PayloadOf[events.DealBooked](e, events.KindDealBooked)
					booked = append(booked, d)
				}
			}
			if len(booked) != 2 {
				t.Fatalf("DealBooked events = %d", len(booked))
			}
			for _, d := range booked {
				if d.CPMMismatch || d.DealID == "" || d.SpendMicros != events.CostMicros(d.Impressions, d.CPMMicros) {
					t.Fatalf("deal %+v", d)
				}
				if d.PackageID == "pkg-a0e00002" && (d.Impressions != 150000 || d.QuoteID == lines[1].QuoteID) {
					t.Fatalf("re-quoted line booked %d impressions on quote %s", d.Impressions, d.QuoteID)
				}
			}
			var final Campaign
			_, _, _ = bus.GetJSON(t.Context(), campaigns, c.ID, &final)
			if final.Status != StatusCompleted || len(final.Deals) != 2 {
				t.Fatalf("campaign %s with %d deals", final.Status, len(final.Deals))
			}
		})
	}
}

func TestCheckApproval(t *testing.T) {
	plan := &events.PortfolioProposed{Revision: 1, Lines: []events.PlanLine{{QuoteID: "q1", SellerURL: "s", PackageID: "p", CPMMicros: 10_000_000, Impressions: 100, SpendMicros: 1_000_000}}}
	cases := []struct {
		name string
		l    events.PlanLine
		ok   bool
	}{
		{"same", plan.Lines[0], true},
		{"more impressions", events.PlanLine{QuoteID: "q1", SellerURL: "s", PackageID: "p", CPMMicros: 10_000_000, Impressions: 1000, SpendMicros: 10_000_000}, false},
		{"other price", events.PlanLine{QuoteID: "q1", SellerURL: "s", PackageID: "p", CPMMicros: 10_000_001, Impressions: 100, SpendMicros: 1_000_001}, false},
		{"not planned", events.PlanLine{QuoteID: "q2", SellerURL: "s", PackageID: "p2", CPMMicros: 10_000_000, Impressions: 100, SpendMicros: 1_000_000}, false},
	}
	for _, c := range cases {
		err := checkApproval(plan, events.PortfolioApproved{Revision: 1, Lines: []events.PlanLine{c.l}})
		if (err == nil) != c.ok {
			t.Errorf("%s: err %v", c.name, err)
		}
	}
}

// storeQuote records a quote as HandlePlan would: in the campaign-quotes
// bucket, counted by the projection.
func storeQuote(t *testing.T, kv jetstream.KeyValue, c *Campaign, q events.QuoteReady) {
	t.Helper()
	if err := SaveQuote(t.Context(), kv, q); err != nil {
		t.Fatal(err)
	}
	if c.QuoteKeys == nil {
		c.QuoteKeys, c.QuoteCount, c.PackagesTotal = map[string]bool{}, map[string]int{}, map[string]int{}
	}
	c.QuoteKeys[QuoteKey(q.Seller.URL, q.Package.ID)] = true
	c.QuoteCount[q.Seller.URL]++
	c.PackagesTotal[q.Seller.URL] = q.PackagesTotal
}

func TestSweepStatePending(t *testing.T) {
	d := time.Unix(100, 0)
	req := json.RawMessage(`{"campaign_id":"c"}`)
	plan := json.RawMessage(`{"revision":1}`)
	cases := []struct {
		name string
		st   sweepState
		want bool
	}{
		{"shopping", sweepState{Status: StatusRunning, Deadline: d, Request: req}, true},
		{"no deadline yet", sweepState{Status: StatusPending, Request: req}, false},
		{"planned by an event", sweepState{Status: StatusAwaitingApproval, Deadline: d, Request: req, Plan: plan, PlannedBy: "evt"}, false},
		{"deadline plan unpublished", sweepState{Status: StatusBooking, Deadline: d, Request: req, Plan: plan, PlannedBy: "deadline"}, true},
		{"deadline plan published", sweepState{Status: StatusBooking, Deadline: d, Request: req, Plan: plan, PlannedBy: "deadline", PlanPublished: true}, false},
		{"completed", sweepState{Status: StatusCompleted, Deadline: d, Request: req}, false},
		{"null plan", sweepState{Status: StatusRunning, Deadline: d, Request: req, Plan: json.RawMessage("null")}, true},
	}
	for _, c := range cases {
		if got := c.st.pending(); got != c.want {
			t.Errorf("%s: pending %v, want %v", c.name, got, c.want)
		}
	}
}

func TestBuildPlanUsesBriefWeights(t *testing.T) {
	mk := func(pkg, format string, cpm events.Micros) events.QuoteReady {
		return events.QuoteReady{CampaignID: "w", Seller: events.Seller{URL: "http://s-" + pkg, Trust: identity.TrustVerified, Source: "x"},
			Package: events.Package{ID: pkg, AdFormats: []string{format}}, PackagesTotal: 1, Tier: identity.TierAgency,
			Outcome: events.OutcomeFixedPrice, QuoteID: "qt-" + pkg, Impressions: 1_000_000, FinalCPMMicros: cpm}
	}
	quotes := []events.QuoteReady{mk("video", "video", 20_000_000), mk("display", "display", 10_000_000)}
	cases := []struct {
		name    string
		weights *events.ValueWeights
		want    string
	}{
		{"guide's score favours cheap display", nil, "display"},
		{"video-heavy weights", &events.ValueWeights{Price: 1, Video: 30, Display: 0, PriceCeilingMicros: 50_000_000}, "video"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			camp := &Campaign{ID: "w", Quotes: map[string]events.QuoteReady{}, Request: &events.CampaignRequested{CampaignID: "w",
				Brief: events.Brief{Name: "w", BudgetMicros: events.MustMicros(1000), StartDate: "2027-01-01", EndDate: "2027-01-02", Weights: c.weights}}}
			for _, q := range quotes {
				camp.Quotes[QuoteKey(q.Seller.URL, q.Package.ID)] = q
			}
			p, err := BuildPlan(camp, portfolio.DefaultWeights(), events.MustMicros(1000), 1, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Lines) != 1 || p.Lines[0].PackageID != c.want || p.TotalSpendMicros > events.MustMicros(1000) || p.Lines[0].SpendMicros != events.CostMicros(p.Lines[0].Impressions, p.Lines[0].CPMMicros) {
				t.Fatalf("lines %+v", p.Lines)
			}
			if len(p.Excluded) != 1 || p.Excluded[0].Reason == "" {
				t.Fatalf("exclusions %+v", p.Excluded)
			}
		})
	}
}

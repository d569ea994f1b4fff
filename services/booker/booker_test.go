package booker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/campaign"
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

func TestLedgerNeverExceedsBudget(t *testing.T) {
	env := natstest.Start(t)
	led := must(bus.OpenStore[Ledger](t.Context(), env.Bus, bus.BucketLedger))
	var ok, refused atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 25; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := events.PlanLine{SellerURL: "http://s", PackageID: fmt.Sprint("p", i), QuoteID: fmt.Sprint("q", i), Impressions: 1000, CPMMicros: 10_000_000}
			_, err := reserve(t.Context(), led, "budget", 100_000_000, l, time.Now())
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
	ledger, found, err := led.Get(t.Context(), "budget")
	if err != nil || !found {
		t.Fatal(found, err)
	}
	if ok.Load() != 10 || refused.Load() != 15 || ledger.Committed() != 100_000_000 {
		t.Fatalf("reserved %d refused %d committed %d micros; want 10, 15, exactly the budget", ok.Load(), refused.Load(), ledger.Committed())
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
			campaigns, ledger := stores(t, env)
			good := sellerclient.New(sellerclient.Config{AllowPrivate: true, RetryBase: time.Millisecond})
			// Two real agency quotes: one booked as quoted, one re-quoted
			// for a smaller planned volume.
			c := &campaign.Campaign{ID: "crash-" + mode, Status: events.StatusProposed, Quotes: map[string]events.QuoteReady{},
				Request: &events.CampaignRequested{CampaignID: "crash-" + mode, AutoApprove: true,
					Brief: events.Brief{Name: "n", BudgetMicros: events.MustMicros(10000), StartDate: "2028-06-01", EndDate: "2028-06-30"}}}
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
				c.Quotes[campaign.QuoteKey(url, pkg.id)] = q
				storeQuote(t, campaigns, c, q)
				planned := imps
				if i == 1 {
					planned = 150000
				}
				lines = append(lines, events.PlanLine{QuoteID: qt.QuoteID, SellerURL: url, PackageID: pkg.id, ProductID: pkg.product, DealType: "PD",
					Tier: identity.TierAgency, CPMMicros: cpm, Impressions: planned, SpendMicros: events.CostMicros(planned, cpm)})
			}
			c.Plan = &events.PortfolioProposed{CampaignID: c.ID, BudgetMicros: events.MustMicros(10000), Lines: lines, Revision: 1, AutoApprove: true}
			seed(t, campaigns, c)
			appr := must(events.New(events.KindPortfolioApproved, "appr-"+mode, "test", c.ID, events.PortfolioApproved{CampaignID: c.ID, ApprovedBy: "auto", Revision: 1, Lines: lines}))

			crashing := &Service{Campaigns: campaigns, Ledger: ledger, Weights: portfolio.DefaultWeights(), Log: natstest.Logger(),
				Booker: &Booker{Client: sellerclient.New(sellerclient.Config{AllowPrivate: true, MaxAttempts: 1, HTTPClient: &http.Client{Transport: &crashTransport{mode: mode}}}), Credentials: creds}}
			if _, err := crashing.bookAll(t.Context(), appr); err == nil {
				t.Fatal("the crashed attempt reported success")
			}
			// The redelivered approval reaches a healthy replica.
			healthy := &Service{Campaigns: campaigns, Ledger: ledger, Weights: portfolio.DefaultWeights(), Log: natstest.Logger(),
				Booker: &Booker{Client: good, Credentials: creds}}
			out1 := bookTwice(t, healthy, appr)
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
			final := must(campaigns.Get(t.Context(), c.ID))
			if final.Status != events.StatusCompleted || len(final.Deals) != 2 {
				t.Fatalf("campaign %s with %d deals", final.Status, len(final.Deals))
			}
		})
	}
}

// stores opens the booker's campaign store and ledger on a test server.
func stores(t *testing.T, env *natstest.Env) (*campaign.Store, *bus.Store[Ledger]) {
	t.Helper()
	return must(campaign.Open(t.Context(), env.Bus)), must(bus.OpenStore[Ledger](t.Context(), env.Bus, bus.BucketLedger))
}

// seed writes a fixture campaign record through the store.
func seed(t *testing.T, s *campaign.Store, c *campaign.Campaign) {
	t.Helper()
	if _, _, err := s.Transition(t.Context(), c.ID, func(v *campaign.Campaign, _ bool) ([]events.Event, error) { *v = *c; return nil, nil }); err != nil {
		t.Fatal(err)
	}
}

// storeQuote records a quote as HandlePlan would: in the campaign-quotes
// bucket, counted by the record.
func storeQuote(t *testing.T, s *campaign.Store, c *campaign.Campaign, q events.QuoteReady) {
	t.Helper()
	if err := s.SaveQuote(t.Context(), q); err != nil {
		t.Fatal(err)
	}
	if c.QuoteKeys == nil {
		c.QuoteKeys, c.QuoteCount, c.PackagesTotal = map[string]bool{}, map[string]int{}, map[string]int{}
	}
	c.QuoteKeys[campaign.QuoteKey(q.Seller.URL, q.Package.ID)] = true
	c.QuoteCount[q.Seller.URL]++
	c.PackagesTotal[q.Seller.URL] = q.PackagesTotal
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
			camp := &campaign.Campaign{ID: "w", Quotes: map[string]events.QuoteReady{}, Request: &events.CampaignRequested{CampaignID: "w",
				Brief: events.Brief{Name: "w", BudgetMicros: events.MustMicros(1000), StartDate: "2028-06-01", EndDate: "2028-06-02", Weights: c.weights}}}
			for _, q := range quotes {
				camp.Quotes[campaign.QuoteKey(q.Seller.URL, q.Package.ID)] = q
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

// bookTwice hands the approval to svc twice, as a redelivery after a lost
// ack would, and checks the second run emits exactly the first run's
// events (same ids, so JetStream drops the copies). It returns them.
func bookTwice(t *testing.T, svc *Service, appr events.Event) []events.Event {
	t.Helper()
	out1, err := svc.bookAll(t.Context(), appr)
	if err != nil {
		t.Fatal(err)
	}
	out2, err := svc.bookAll(t.Context(), appr) // and once more, as if the ack was lost
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
	return out1
}

// TestPlanHoldsQuotesToWhatTheSellerStated: a public-tier quote outside
// its package's stated public range is not planned; two packages on one
// product with a stated availability are planned once (the cheaper); an
// authenticated quote below the public range (its tier discount) is.
func TestPlanHoldsQuotesToWhatTheSellerStated(t *testing.T) {
	mk := func(seller, pkg, product string, tier events.Tier, cpm, lo, hi events.Micros, avail int64) events.QuoteReady {
		return events.QuoteReady{CampaignID: "r", Seller: events.Seller{URL: seller, Trust: identity.TrustVerified, Source: "x"},
			Package:       events.Package{ID: pkg, ProductID: product, AdFormats: []string{"video"}, PriceLowMicros: lo, PriceHighMicros: hi},
			PackagesTotal: 2, Tier: tier, Outcome: events.OutcomeFixedPrice, QuoteID: "qt-" + pkg, Impressions: 100_000,
			AvailableImpressions: avail, FinalCPMMicros: cpm}
	}
	quotes := []events.QuoteReady{
		mk("http://a", "below-range", "p-ctv", identity.TierPublic, events.MustMicros(25), events.MustMicros(28), events.MustMicros(42), 0),
		mk("http://b", "in-range", "p-b", identity.TierPublic, events.MustMicros(30), events.MustMicros(28), events.MustMicros(42), 0),
		mk("http://c", "agency-discount", "p-c", identity.TierAgency, events.MustMicros(20), events.MustMicros(28), events.MustMicros(42), 0),
		mk("http://d", "shared-1", "p-d", identity.TierAgency, events.MustMicros(21), 0, 0, 50_000),
		mk("http://d", "shared-2", "p-d", identity.TierAgency, events.MustMicros(22), 0, 0, 50_000),
	}
	camp := &campaign.Campaign{ID: "r", Quotes: map[string]events.QuoteReady{}, Request: &events.CampaignRequested{CampaignID: "r",
		Brief: events.Brief{Name: "r", BudgetMicros: events.MustMicros(100000), PerSellerCapMicros: events.MustMicros(1000), StartDate: "2028-06-01", EndDate: "2028-06-02"}}}
	for _, q := range quotes {
		camp.Quotes[campaign.QuoteKey(q.Seller.URL, q.Package.ID)] = q
	}
	p, err := BuildPlan(camp, portfolio.DefaultWeights(), events.MustMicros(100000), 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	planned := map[string]bool{}
	for _, l := range p.Lines {
		planned[l.PackageID] = true
	}
	why := map[string]string{}
	for _, x := range p.Excluded {
		why[x.PackageID] = x.Reason
	}
	if planned["below-range"] || !strings.Contains(why["below-range"], "outside the package's stated public range $28.00–$42.00") {
		t.Errorf("below-range: planned %v, %q", planned["below-range"], why["below-range"])
	}
	if !planned["in-range"] || !planned["agency-discount"] || !planned["shared-1"] {
		t.Errorf("planned %v", planned)
	}
	if planned["shared-2"] || !strings.Contains(why["shared-2"], "same product p-d as package shared-1") {
		t.Errorf("shared-2: planned %v, %q", planned["shared-2"], why["shared-2"])
	}
}

// TestPlanSaysWhatEachChannelGot: a campaign for CTV and video whose CTV
// quote is above the max CPM plans only video, and the plan says so per
// channel, with the reason.
func TestPlanSaysWhatEachChannelGot(t *testing.T) {
	mk := func(pkg, format string, cpm events.Micros) events.QuoteReady {
		return events.QuoteReady{CampaignID: "ch", Seller: events.Seller{URL: "http://s-" + pkg, Trust: identity.TrustVerified, Source: "x"},
			Package: events.Package{ID: pkg, AdFormats: []string{format}}, PackagesTotal: 1, Tier: identity.TierAgency,
			Outcome: events.OutcomeFixedPrice, QuoteID: "qt-" + pkg, Impressions: 100_000, FinalCPMMicros: cpm}
	}
	camp := &campaign.Campaign{ID: "ch", Quotes: map[string]events.QuoteReady{}, Request: &events.CampaignRequested{CampaignID: "ch",
		Brief: events.Brief{Name: "ch", BudgetMicros: events.MustMicros(1000), StartDate: "2028-06-01", EndDate: "2028-06-02",
			Channels: []string{"CTV", "video", "audio"}, KPIs: events.KPIs{MaxCPMMicros: events.MustMicros(30)}}}}
	for _, q := range []events.QuoteReady{mk("ctv-1", "ctv", events.MustMicros(38)), mk("vid-1", "video", events.MustMicros(20))} {
		camp.Quotes[campaign.QuoteKey(q.Seller.URL, q.Package.ID)] = q
	}
	p, err := BuildPlan(camp, portfolio.DefaultWeights(), events.MustMicros(1000), 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	notes := strings.Join(p.Notes, "\n")
	for _, want := range []string{"ctv: nothing planned: 1 bookable quotes, none chosen (CPM 38.00 above max CPM 30.00)", "video: 1 lines, $1000.00 planned",
		"audio: nothing planned: no seller's package for it was quoted"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
}

// TestPerSellerCapCountsTheSeller: quotes of one seller reached under
// several spellings of its address (or one registry agent id under two
// URLs) share its per-seller cap.
func TestPerSellerCapCountsTheSeller(t *testing.T) {
	mk := func(seller, agent, pkg string) events.QuoteReady {
		return events.QuoteReady{CampaignID: "cap", Seller: events.Seller{URL: seller, AgentID: agent, Trust: identity.TrustUnknown, Source: "campaign"},
			Package: events.Package{ID: pkg, AdFormats: []string{"video"}}, PackagesTotal: 1, Tier: identity.TierPublic,
			Outcome: events.OutcomeFixedPrice, QuoteID: "qt-" + pkg, Impressions: 10_000_000, FinalCPMMicros: events.MustMicros(10)}
	}
	for name, quotes := range map[string][]events.QuoteReady{
		"address spellings": {mk("http://127.0.0.1:9001", "", "p"), mk("http://[::1]:9001", "", "p"), mk("http://0.0.0.0:9001/", "", "p"),
			mk("http://LOCALHOST:9001", "", "q")},
		"one agent id": {mk("https://a.example", "ag-1", "p"), mk("https://b.example", "ag-1", "p")},
	} {
		t.Run(name, func(t *testing.T) {
			cap := events.MustMicros(5000)
			camp := &campaign.Campaign{ID: "cap", Quotes: map[string]events.QuoteReady{}, Request: &events.CampaignRequested{CampaignID: "cap",
				Brief: events.Brief{Name: "cap", BudgetMicros: events.MustMicros(20000), PerSellerCapMicros: cap, StartDate: "2028-06-01", EndDate: "2028-06-02"}}}
			for _, q := range quotes {
				camp.Quotes[campaign.QuoteKey(q.Seller.URL, q.Package.ID)] = q
			}
			p, err := BuildPlan(camp, portfolio.DefaultWeights(), events.MustMicros(20000), 1, nil)
			if err != nil {
				t.Fatal(err)
			}
			FitBudget(p, events.MustMicros(20000))
			var spend events.Micros
			for _, l := range p.Lines {
				spend += l.SpendMicros
			}
			if len(p.Lines) == 0 || spend > cap {
				t.Fatalf("one seller planned %s over %d lines, cap %s: %+v", spend, len(p.Lines), cap, p.Lines)
			}
		})
	}
}

package booker

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/campaign"
	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/internal/portfolio"
	"github.com/dealflow/dealflow/internal/sandbox"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/identity"
	"github.com/dealflow/dealflow/pkg/sellerclient"
)

type fixture struct {
	svc    *Service
	seller *sandbox.Seller
	client *sellerclient.Client
	creds  *identity.Credentials
	c      *campaign.Campaign
	quotes []events.QuoteReady
	reads  silentReads // the booker's seller reads, when withClock made its client
}

// newFixture quotes three Northwind packages at agency tier (200k
// impressions each) and stores an auto-approved campaign holding them.
func newFixture(t *testing.T, transport http.RoundTripper, opts ...sandbox.Option) *fixture {
	t.Helper()
	env := natstest.Start(t)
	m, err := sandbox.Start(context.Background(), sandbox.MarketConfig{Sellers: []sandbox.SellerConfig{sandbox.DefaultMarket().Sellers[1]}}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	f := &fixture{seller: m.Sellers[0], creds: m.Credentials(), client: sellerclient.New(sellerclient.Config{AllowPrivate: true, RetryBase: time.Millisecond})}
	campaigns, ledger := stores(t, env)
	bookClient := f.client
	if transport != nil {
		bookClient = sellerclient.New(sellerclient.Config{AllowPrivate: true, MaxAttempts: 1, HTTPClient: &http.Client{Transport: transport}})
	}
	f.svc = &Service{Campaigns: campaigns, Ledger: ledger, Weights: portfolio.DefaultWeights(), Log: natstest.Logger(),
		Booker: &Booker{Client: bookClient, Credentials: f.creds}}
	c := &campaign.Campaign{ID: "fx", Status: events.StatusProposed, Quotes: map[string]events.QuoteReady{}, DiscoveryDone: true,
		Request: &events.CampaignRequested{CampaignID: "fx", AutoApprove: true,
			Brief: events.Brief{Name: "n", BudgetMicros: events.MustMicros(10000), StartDate: "2028-06-01", EndDate: "2028-06-30"}}}
	key, _ := f.creds.Key(f.seller.URL, identity.TierAgency)
	url, _ := sellerclient.CanonicalURL(f.seller.URL)
	for i, pkg := range []struct{ id, product, format string }{
		{"pkg-a0e00001", sandbox.ProductPreRollVideo, "video"},
		{"pkg-a0e00002", sandbox.ProductPremiumDisplay, "display"},
		{"pkg-a0e00003", sandbox.ProductStandardDisplay, "display"},
	} {
		imps := int64(200000)
		qt, err := f.client.CreateQuote(t.Context(), f.seller.URL, sellerclient.Auth{APIKey: key}, sellerclient.QuoteRequest{
			IdempotencyKey: fmt.Sprint("fx-q", i), ProductID: pkg.product, DealType: sellerclient.DealPD, Impressions: &imps})
		if err != nil {
			t.Fatal(err)
		}
		cpm := qt.Pricing.FinalCPM.Micros()
		q := events.QuoteReady{CampaignID: c.ID, Seller: events.Seller{URL: url, Trust: identity.TrustVerified, Source: "registry"},
			Package: events.Package{ID: pkg.id, ProductID: pkg.product, AdFormats: []string{pkg.format}}, PackagesTotal: 3, Tier: identity.TierAgency,
			Outcome: events.OutcomeFixedPrice, QuoteID: qt.QuoteID, DealType: "PD", Impressions: imps, AvailableImpressions: imps, FinalCPMMicros: cpm, ListCPMMicros: cpm}
		c.Quotes[campaign.QuoteKey(url, pkg.id)] = q
		storeQuote(t, campaigns, c, q)
		f.quotes = append(f.quotes, q)
	}
	c.Expected = []string{url}
	f.c = c
	return f
}

func (f *fixture) line(q events.QuoteReady, imps int64) events.PlanLine {
	return events.PlanLine{QuoteID: q.QuoteID, SellerURL: q.Seller.URL, PackageID: q.Package.ID, ProductID: q.Package.ProductID, DealType: "PD",
		Tier: q.Tier, CPMMicros: q.FinalCPMMicros, Impressions: imps, SpendMicros: events.CostMicros(imps, q.FinalCPMMicros)}
}

func (f *fixture) store(t *testing.T, lines []events.PlanLine) events.Event {
	t.Helper()
	f.c.Plan = &events.PortfolioProposed{CampaignID: f.c.ID, BudgetMicros: events.MustMicros(10000), Lines: lines, Revision: 1, AutoApprove: true}
	seed(t, f.svc.Campaigns, f.c)
	e := must(events.New(events.KindPortfolioApproved, "fx-appr-1", "test", f.c.ID, events.PortfolioApproved{CampaignID: f.c.ID, ApprovedBy: "auto", Revision: 1, Lines: lines}))
	return e
}

func kinds(out []events.Event) map[string][]events.Event {
	m := map[string][]events.Event{}
	for _, e := range out {
		m[e.Type()] = append(m[e.Type()], e)
	}
	return m
}

// refuseDeals answers 422 to the booking of one quote: the seller refuses
// it (a definite failure), the other bookings pass.
type refuseDeals struct{ quoteID string }

func (r refuseDeals) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == "POST" && strings.HasSuffix(req.URL.Path, "/api/v1/deals") && req.Body != nil {
		b, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(b))
		if strings.Contains(string(b), r.quoteID) {
			body := `{"detail":{"error":"validation","message":"deal refused (test)"}}`
			return &http.Response{StatusCode: http.StatusUnprocessableEntity, Header: http.Header{"Content-Type": {"application/json"}},
				Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), Request: req}, nil
		}
	}
	return http.DefaultTransport.RoundTrip(req)
}

// TestFailedBookingReplans: the seller refuses one approved line, so its
// booking fails definitely; the freed budget goes to the next best quote
// in a second, auto-approved revision, which is then booked.
func TestFailedBookingReplans(t *testing.T) {
	f := newFixture(t, nil)
	refused := f.quotes[1]
	f.svc.Booker.Client = sellerclient.New(sellerclient.Config{AllowPrivate: true, MaxAttempts: 1, HTTPClient: &http.Client{Transport: refuseDeals{refused.QuoteID}}})
	appr := f.store(t, []events.PlanLine{f.line(f.quotes[0], 200000), f.line(refused, 200000)})
	out, err := f.svc.bookAll(t.Context(), appr)
	if err != nil {
		t.Fatal(err)
	}
	k := kinds(out)
	if len(k[events.KindDealBooked.Type]) != 1 || len(k[events.KindBookingFailed.Type]) != 1 || len(k[events.KindCampaignCompleted.Type]) != 0 {
		t.Fatalf("revision 1 outputs: %v", keysOf(k))
	}
	bf, _ := events.PayloadOf[events.BookingFailed](k[events.KindBookingFailed.Type][0], events.KindBookingFailed)
	if bf.Code != "rejected" || bf.PackageID != refused.Package.ID {
		t.Fatalf("failure %+v", bf)
	}
	if len(k[events.KindPortfolioProposed.Type]) != 1 || len(k[events.KindPortfolioApproved.Type]) != 1 {
		t.Fatalf("no re-plan: %v", keysOf(k))
	}
	rev2, _ := events.PayloadOf[events.PortfolioApproved](k[events.KindPortfolioApproved.Type][0], events.KindPortfolioApproved)
	if rev2.Revision != 2 || len(rev2.Lines) != 1 || rev2.Lines[0].PackageID != f.quotes[2].Package.ID {
		t.Fatalf("re-plan %+v", rev2)
	}
	out2, err := f.svc.bookAll(t.Context(), k[events.KindPortfolioApproved.Type][0])
	if err != nil {
		t.Fatal(err)
	}
	k2 := kinds(out2)
	if len(k2[events.KindDealBooked.Type]) != 1 || len(k2[events.KindCampaignCompleted.Type]) != 1 {
		t.Fatalf("revision 2 outputs: %v", keysOf(k2))
	}
	done, _ := events.PayloadOf[events.CampaignCompleted](k2[events.KindCampaignCompleted.Type][0], events.KindCampaignCompleted)
	if done.Status != "partial" || len(done.Deals) != 2 || len(done.Failed) != 1 || done.TotalSpendMicros > events.MustMicros(10000) {
		t.Fatalf("summary %+v", done)
	}
	if got := len(f.seller.Deals()); got != 2 {
		t.Fatalf("seller holds %d deals", got)
	}
}

// TestQuoteBookedBySomeoneElseIsRequoted: an approved quote was booked by
// someone else (409 quote_already_booked); the agreement still holds, so
// the line is re-quoted at the agreed CPM and booked on the new quote in
// the same approval, and the campaign completes.
func TestQuoteBookedBySomeoneElseIsRequoted(t *testing.T) {
	f := newFixture(t, nil)
	taken := f.quotes[1]
	key, _ := f.creds.Key(f.seller.URL, identity.TierAgency)
	if _, err := f.client.BookDeal(t.Context(), f.seller.URL, sellerclient.Auth{APIKey: key}, sellerclient.DealBookingRequest{IdempotencyKey: "someone-else", QuoteID: taken.QuoteID}); err != nil {
		t.Fatal(err)
	}
	appr := f.store(t, []events.PlanLine{f.line(f.quotes[0], 200000), f.line(taken, 200000)})
	out, err := f.svc.bookAll(t.Context(), appr)
	if err != nil {
		t.Fatal(err)
	}
	k := kinds(out)
	if len(k[events.KindDealBooked.Type]) != 2 || len(k[events.KindBookingFailed.Type]) != 0 || len(k[events.KindCampaignCompleted.Type]) != 1 {
		t.Fatalf("outputs: %v", keysOf(k))
	}
	for _, e := range k[events.KindDealBooked.Type] {
		d := must(events.PayloadOf[events.DealBooked](e, events.KindDealBooked))
		if d.PackageID == taken.Package.ID && (d.QuoteID == taken.QuoteID || d.CPMMicros != taken.FinalCPMMicros || d.CPMMismatch) {
			t.Fatalf("the taken line booked %+v: want a new quote at the agreed CPM", d)
		}
	}
	done := must(events.PayloadOf[events.CampaignCompleted](k[events.KindCampaignCompleted.Type][0], events.KindCampaignCompleted))
	if done.Status != events.StatusCompleted {
		t.Fatalf("campaign %s", done.Status)
	}
	if got := len(f.seller.Deals()); got != 3 { // two ours, one "someone else"
		t.Fatalf("seller holds %d deals", got)
	}
}

// garbleDeals lets deal bookings reach the seller but garbles the answer.
type garbleDeals struct{}

func (garbleDeals) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil && r.Method == "POST" && strings.HasSuffix(r.URL.Path, "/api/v1/deals") {
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader([]byte(`{"deal": {"deal_id": `)))
		resp.ContentLength = -1
	}
	return resp, err
}

// TestGarbledBookingAnswerIsReconciled: the seller booked but its answer
// was unreadable; the booker finds the deal on the quote instead of
// failing (or booking again).
func TestGarbledBookingAnswerIsReconciled(t *testing.T) {
	f := newFixture(t, garbleDeals{})
	appr := f.store(t, []events.PlanLine{f.line(f.quotes[0], 200000)})
	out, err := f.svc.bookAll(t.Context(), appr)
	if err != nil {
		t.Fatal(err)
	}
	k := kinds(out)
	if len(k[events.KindDealBooked.Type]) != 1 || len(k[events.KindCampaignCompleted.Type]) != 1 {
		t.Fatalf("outputs %v", keysOf(k))
	}
	d, _ := events.PayloadOf[events.DealBooked](k[events.KindDealBooked.Type][0], events.KindDealBooked)
	deals := f.seller.Deals()
	if len(deals) != 1 || deals[0].DealID != d.DealID {
		t.Fatalf("seller deals %+v, event deal %s", deals, d.DealID)
	}
}

func keysOf(m map[string][]events.Event) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		out[strings.TrimPrefix(k, events.TypePrefix)] = len(v)
	}
	return out
}

// TestPlanFillsTheBudgetShareByRequoting: the negotiated quote's volume
// (sized by the buyer before negotiating) is below what the budget buys
// and the seller stated no availability, so the plan sizes the line to
// the budget, says the budget bound it, and booking re-quotes the planned
// volume at the agreed CPM: the deal spends at least 99% of the budget.
func TestPlanFillsTheBudgetShareByRequoting(t *testing.T) {
	f := newFixture(t, nil)
	q := f.quotes[2] // 200k impressions
	q.AvailableImpressions = 0
	budget := events.CostMicros(q.Impressions, q.FinalCPMMicros) * 3 // three times the quote's volume
	f.c.Request.Brief.BudgetMicros = budget
	f.c.Quotes = map[string]events.QuoteReady{campaign.QuoteKey(q.Seller.URL, q.Package.ID): q}
	p, err := f.svc.planner()(f.c, budget, 1, nil)
	if err != nil || len(p.Lines) != 1 {
		t.Fatalf("plan %+v %v", p, err)
	}
	l := p.Lines[0]
	if l.Impressions <= q.Impressions || !strings.Contains(l.Reason, "limited by the budget") || strings.Contains(l.Reason, "available impressions") {
		t.Fatalf("line of %d impressions (quote %d): %q", l.Impressions, q.Impressions, l.Reason)
	}
	f.c.Plan = nil
	appr := f.store(t, []events.PlanLine{l})
	out, err := f.svc.bookAll(t.Context(), appr)
	if err != nil {
		t.Fatal(err)
	}
	ds := kinds(out)[events.KindDealBooked.Type]
	if len(ds) != 1 {
		t.Fatalf("outputs %v", keysOf(kinds(out)))
	}
	d := must(events.PayloadOf[events.DealBooked](ds[0], events.KindDealBooked))
	if d.QuoteID == q.QuoteID || d.CPMMismatch || d.Impressions != l.Impressions || d.SpendMicros*100 < budget*99 || d.SpendMicros > budget {
		t.Fatalf("deal %+v: want a re-quote at the agreed CPM spending >= 99%% of %s", d, budget)
	}
}

package booker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/adcpauth"
	"github.com/dealflow/dealflow/internal/adcpschema"
	"github.com/dealflow/dealflow/internal/campaign"
	"github.com/dealflow/dealflow/internal/checkfor"
	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/internal/portfolio"
	sandboxadcp "github.com/dealflow/dealflow/internal/sandbox/adcp"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/identity"
	"github.com/dealflow/dealflow/pkg/sellerclient"
	"github.com/dealflow/dealflow/pkg/sellerclient/adcp"
)

const adcpToken = "adcp-test-token-0123456789"

type adcpFixture struct {
	svc    *Service
	agent  *sandboxadcp.Agent
	url    string
	creds  *identity.Credentials
	c      *campaign.Campaign
	quotes map[string]events.QuoteReady // by product id
}

// newADCPFixture serves one sandbox AdCP agent (products in manual need
// human approval, decided after 100ms, rejected with reject) and stores an
// auto-approved campaign holding three auction quotes of it. Every call the
// booker makes is validated against the AdCP 3.1 schemas at the end.
func newADCPFixture(t *testing.T, manual map[string]bool, reject bool, bookClient *adcp.Client) *adcpFixture {
	t.Helper()
	return newADCPFixtureWith(t, manual, reject, bookClient, nil)
}

// newADCPFixtureWith is newADCPFixture with the agent's configuration
// adjusted by tune (proposals, a clock).
func newADCPFixtureWith(t *testing.T, manual map[string]bool, reject bool, bookClient *adcp.Client, tune func(*sandboxadcp.Config)) *adcpFixture {
	t.Helper()
	v, err := adcpschema.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	products := sandboxadcp.DefaultCatalog()
	for i := range products {
		products[i].ManualApproval = manual[products[i].ID]
	}
	cfg := sandboxadcp.Config{Products: products, ApprovalDelay: 100 * time.Millisecond, RejectSubmitted: reject,
		Tokens: map[string]sandboxadcp.Principal{adcpToken: {AccountID: "acct-1", BrandDomain: "acme.example"}}}
	if tune != nil {
		tune(&cfg)
	}
	agent := sandboxadcp.New(cfg)
	srv := httptest.NewServer(agent.Handler())
	t.Cleanup(func() {
		srv.Close()
		agent.Close()
		for i, c := range agent.Calls() {
			if err := v.CheckCall(c.Tool, c.Arguments, c.Result, c.IsError); err != nil {
				t.Errorf("call %d %s: %v\nargs %s\nresult %s", i, c.Tool, err, c.Arguments, c.Result)
			}
		}
	})
	env := natstest.Start(t)
	campaigns, ledger := stores(t, env)
	f := &adcpFixture{agent: agent, creds: must(identity.ParseCredentials([]byte(`{}`))), quotes: map[string]events.QuoteReady{}}
	f.url, _ = sellerclient.CanonicalURL(srv.URL)
	f.creds.SetADCP(f.url, adcpToken, "acct-1", "acme.example")
	if bookClient == nil {
		bookClient = adcp.New(adcp.Config{AllowPrivate: true, RetryBase: time.Millisecond})
	}
	f.svc = &Service{Campaigns: campaigns, Ledger: ledger, Weights: portfolio.DefaultWeights(), Log: natstest.Logger(),
		Booker: &Booker{ADCP: bookClient, Credentials: f.creds, PollWait: 5 * time.Second}}
	c := &campaign.Campaign{ID: "adcp-fx", Status: events.StatusProposed, Quotes: map[string]events.QuoteReady{}, DiscoveryDone: true,
		Request: &events.CampaignRequested{CampaignID: "adcp-fx", AutoApprove: true,
			Brief: events.Brief{Name: "n", BudgetMicros: events.MustMicros(10000), StartDate: "2028-06-01", EndDate: "2028-06-30"}}}
	seller := events.Seller{URL: f.url, Trust: identity.TrustVerified, Source: "registry", Protocol: events.ProtocolADCP}
	for _, p := range []struct {
		product, option, format string
		floor, bid              events.Micros
		minSpend                events.Micros
	}{
		{"olv_sports_preroll", "olv_sports_auction_usd", "video", events.MustMicros(12), events.MustMicros(15), events.MustMicros(500)},
		{"display_news_300x250", "display_news_auction_usd", "display", events.MustMicros(2.5), events.MustMicros(3.75), events.MustMicros(250)},
		{"ctv_run_of_network", "ctv_ron_auction_usd", "ctv", events.MustMicros(18), events.MustMicros(24), events.MustMicros(1000)},
	} {
		pkg := events.Package{ID: p.product + "/" + p.option, ProductID: p.product, PricingOptionID: p.option, PricingModel: events.PricingAuction,
			AdFormats: []string{p.format}, FloorPriceMicros: p.floor, MinSpendMicros: p.minSpend, Negotiable: true, Currency: "USD"}
		imps := int64(200000)
		q := events.QuoteReady{CampaignID: c.ID, Seller: seller, Package: pkg, PackagesTotal: 3, Tier: identity.TierAgency, Outcome: events.OutcomeAccepted,
			QuoteID: "adcp:" + pkg.ID, DealType: "adcp", Impressions: imps, AvailableImpressions: imps, FinalCPMMicros: p.bid, ListCPMMicros: p.bid,
			MinImpressions: 1000}
		c.Quotes[campaign.QuoteKey(f.url, pkg.ID)] = q
		storeQuote(t, campaigns, c, q)
		f.quotes[p.product] = q
	}
	c.Expected = []string{f.url}
	f.c = c
	return f
}

func (f *adcpFixture) line(product string, imps int64) events.PlanLine {
	q := f.quotes[product]
	return events.PlanLine{QuoteID: q.QuoteID, SellerURL: q.Seller.URL, Protocol: events.ProtocolADCP, PackageID: q.Package.ID, ProductID: q.Package.ProductID,
		DealType: q.DealType, Tier: q.Tier, CPMMicros: q.FinalCPMMicros, Impressions: imps, SpendMicros: events.CostMicros(imps, q.FinalCPMMicros)}
}

func (f *adcpFixture) approve(t *testing.T, lines ...events.PlanLine) events.Event {
	t.Helper()
	f.c.Plan = &events.PortfolioProposed{CampaignID: f.c.ID, BudgetMicros: events.MustMicros(10000), Lines: lines, Revision: 1, AutoApprove: true}
	seed(t, f.svc.Campaigns, f.c)
	return must(events.New(events.KindPortfolioApproved, "adcp-appr-1", "test", f.c.ID, events.PortfolioApproved{CampaignID: f.c.ID, ApprovedBy: "auto", Revision: 1, Lines: lines}))
}

// buys counts the media buys the agent created (not replays) per
// idempotency key, from its recorded calls.
func (f *adcpFixture) buys(t *testing.T) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, c := range f.agent.Calls() {
		if c.Tool != "create_media_buy" || c.IsError {
			continue
		}
		var args struct {
			Key string `json:"idempotency_key"`
		}
		var res struct {
			Replayed bool `json:"replayed"`
		}
		_ = json.Unmarshal(c.Arguments, &args)
		_ = json.Unmarshal(c.Result, &res)
		if !res.Replayed {
			out[args.Key]++
		}
	}
	return out
}

func ledgerOf(t *testing.T, f *adcpFixture) Ledger {
	t.Helper()
	led, ok, err := f.svc.Ledger.Get(t.Context(), f.c.ID)
	if err != nil || !ok {
		t.Fatalf("ledger: %v %v", ok, err)
	}
	return led
}

func dealsOf(t *testing.T, out []events.Event) []events.DealBooked {
	var ds []events.DealBooked
	for _, e := range kinds(out)[events.KindDealBooked.Type] {
		ds = append(ds, must(events.PayloadOf[events.DealBooked](e, events.KindDealBooked)))
	}
	return ds
}

// TestADCPSubmittedBuyIsBookedAfterApproval: the seller answers submitted;
// the line stays reserved (ledger state submitted, with the task id) and
// is booked once the seller approves it, with the media buy's ids.
func TestADCPSubmittedBuyIsBookedAfterApproval(t *testing.T) {
	f := newADCPFixture(t, map[string]bool{"olv_sports_preroll": true}, false, nil)
	f.svc.Booker.PollWait = time.Millisecond // the first attempt gives up at once: the redelivery finds the approval
	l := f.line("olv_sports_preroll", 200000)
	appr := f.approve(t, l)
	if _, err := f.svc.bookAll(t.Context(), appr); !errors.Is(err, ErrBuyPending) {
		t.Fatalf("first attempt: %v, want the buy pending", err)
	}
	led := ledgerOf(t, f)
	ll := led.Lines[campaign.LineKey(l)]
	if ll == nil || ll.State != LineSubmitted || ll.TaskID == "" || led.Committed() != l.SpendMicros {
		t.Fatalf("ledger after submitted: %+v (committed %d)", ll, led.Committed())
	}
	// Redelivered until the seller decides (100 ms): each attempt polls the
	// task, none creates the buy again.
	var out []events.Event
	checkfor.Check(t, 10*time.Second, 20*time.Millisecond, func() (err error) {
		out, err = f.svc.bookAll(t.Context(), appr)
		if err != nil && !errors.Is(err, ErrBuyPending) {
			t.Fatal(err)
		}
		return err
	})
	ds := dealsOf(t, out)
	if len(ds) != 1 {
		t.Fatalf("outputs %v", keysOf(kinds(out)))
	}
	d := ds[0]
	if d.Protocol != events.ProtocolADCP || d.MediaBuyID == "" || d.SellerPackageID == "" || d.Revision != 1 || d.DealID != "" ||
		d.SpendMicros != l.SpendMicros || d.CPMMicros != l.CPMMicros || d.CPMMismatch || d.PricingOptionID != "olv_sports_auction_usd" {
		t.Fatalf("deal %+v", d)
	}
	if len(kinds(out)[events.KindCampaignCompleted.Type]) != 1 {
		t.Fatalf("campaign not completed: %v", keysOf(kinds(out)))
	}
	if b := f.buys(t); len(b) != 1 || b[ADCPIdempotencyKey(f.c.ID, ll)] != 1 {
		t.Fatalf("media buys by key %v", b)
	}
}

// TestADCPRejectedBuyFreesBudgetForReplan: the seller rejects a submitted
// buy; the line fails (code rejected, with the task), its spend is freed
// and the auto-approved campaign re-plans it onto the next best quote.
func TestADCPRejectedBuyFreesBudgetForReplan(t *testing.T) {
	f := newADCPFixture(t, map[string]bool{"olv_sports_preroll": true}, true, nil)
	appr := f.approve(t, f.line("olv_sports_preroll", 200000), f.line("display_news_300x250", 200000))
	out, err := f.svc.bookAll(t.Context(), appr)
	if err != nil {
		t.Fatal(err)
	}
	k := kinds(out)
	if len(k[events.KindDealBooked.Type]) != 1 || len(k[events.KindBookingFailed.Type]) != 1 {
		t.Fatalf("revision 1 outputs: %v", keysOf(k))
	}
	bf := must(events.PayloadOf[events.BookingFailed](k[events.KindBookingFailed.Type][0], events.KindBookingFailed))
	if bf.Code != "rejected" || bf.TaskID == "" || bf.Protocol != events.ProtocolADCP || bf.PackageID != "olv_sports_preroll/olv_sports_auction_usd" {
		t.Fatalf("failure %+v", bf)
	}
	led := ledgerOf(t, f)
	if want := f.line("display_news_300x250", 200000).SpendMicros; led.Committed() != want {
		t.Fatalf("committed %d after the rejection, want only the booked line's %d", led.Committed(), want)
	}
	if len(k[events.KindPortfolioApproved.Type]) != 1 {
		t.Fatalf("no re-plan: %v", keysOf(k))
	}
	rev2 := must(events.PayloadOf[events.PortfolioApproved](k[events.KindPortfolioApproved.Type][0], events.KindPortfolioApproved))
	if rev2.Revision != 2 || len(rev2.Lines) != 1 || rev2.Lines[0].ProductID != "ctv_run_of_network" || rev2.Lines[0].Protocol != events.ProtocolADCP {
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
	done := must(events.PayloadOf[events.CampaignCompleted](k2[events.KindCampaignCompleted.Type][0], events.KindCampaignCompleted))
	if done.Status != "partial" || len(done.Deals) != 2 || len(done.Failed) != 1 || done.TotalSpendMicros > events.MustMicros(10000) {
		t.Fatalf("summary %+v", done)
	}
	// One create_media_buy per line: the rejected submission, the display
	// buy and the re-planned CTV buy, none sent twice.
	if b := f.buys(t); len(b) != 3 {
		t.Fatalf("media buys by key %v", b)
	}
}

// adcpCrash simulates the booker dying around create_media_buy: "before"
// fails the first create_media_buy without sending it; "after" sends it and
// loses the answer, and every later request fails (the process is gone).
type adcpCrash struct {
	mode  string
	fired atomic.Bool
	// die ends the crashed booker's handling: a dead process makes no
	// further call and decides nothing.
	die context.CancelFunc
}

func (c *adcpCrash) RoundTrip(r *http.Request) (*http.Response, error) {
	if c.mode == "after" && c.fired.Load() {
		return nil, context.Canceled
	}
	isBuy := false
	if r.Body != nil && r.Method == http.MethodPost {
		b, _ := io.ReadAll(r.Body)
		_ = r.Body.Close()
		isBuy = strings.Contains(string(b), `"create_media_buy"`)
		r.Body = io.NopCloser(bytes.NewReader(b))
	}
	if isBuy && c.mode == "before" && c.fired.CompareAndSwap(false, true) {
		return nil, errors.New("simulated crash before the seller call")
	}
	resp, err := http.DefaultTransport.RoundTrip(r)
	if isBuy && c.mode == "after" && err == nil && c.fired.CompareAndSwap(false, true) {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		c.die()
		return nil, errors.New("simulated crash after the seller call")
	}
	return resp, err
}

// TestADCPBookingExactlyOnceAcrossCrashes mirrors
// TestBookingExactlyOnceAcrossCrashes for AdCP: whatever the crash, the
// redelivered approval sends the same idempotency key, the seller replays,
// and every line is one media buy.
func TestADCPBookingExactlyOnceAcrossCrashes(t *testing.T) {
	for _, mode := range []string{"before", "after"} {
		t.Run(mode, func(t *testing.T) {
			ctx, die := context.WithCancel(t.Context())
			defer die()
			crashing := adcp.New(adcp.Config{AllowPrivate: true, MaxAttempts: 1, HTTPClient: &http.Client{Transport: &adcpCrash{mode: mode, die: die}}})
			f := newADCPFixture(t, nil, false, crashing)
			lines := []events.PlanLine{f.line("olv_sports_preroll", 200000), f.line("display_news_300x250", 150000)}
			appr := f.approve(t, lines...)
			if _, err := f.svc.bookAll(ctx, appr); err == nil {
				t.Fatal("the crashed attempt reported success")
			}
			healthy := &Service{Campaigns: f.svc.Campaigns, Ledger: f.svc.Ledger, Weights: portfolio.DefaultWeights(), Log: natstest.Logger(),
				Booker: &Booker{ADCP: adcp.New(adcp.Config{AllowPrivate: true, RetryBase: time.Millisecond}), Credentials: f.creds}}
			out1 := bookTwice(t, healthy, appr)
			ds := dealsOf(t, out1)
			if len(ds) != 2 {
				t.Fatalf("DealBooked events = %d", len(ds))
			}
			ids := map[string]bool{}
			for _, d := range ds {
				if d.MediaBuyID == "" || d.Protocol != events.ProtocolADCP || d.CPMMismatch {
					t.Fatalf("deal %+v", d)
				}
				ids[d.MediaBuyID] = true
			}
			if len(ids) != 2 {
				t.Fatalf("media buys %v", ids)
			}
			b := f.buys(t)
			if len(b) != 2 {
				t.Fatalf("media buys by key %v, want one per approved line", b)
			}
			for k, n := range b {
				if n != 1 {
					t.Fatalf("key %s bought %d times", k, n)
				}
			}
			final := must(f.svc.Campaigns.Get(t.Context(), f.c.ID))
			if final.Status != events.StatusCompleted || len(final.Deals) != 2 {
				t.Fatalf("campaign %s with %d deals", final.Status, len(final.Deals))
			}
		})
	}
}

// TestADCPMissingCredentialsNamed: a line whose seller's credentials lack
// what create_media_buy needs fails at once (nothing is sent), and the
// reason names exactly what is missing.
func TestADCPMissingCredentialsNamed(t *testing.T) {
	f := newADCPFixture(t, nil, false, nil)
	noBrand := must(identity.ParseCredentials([]byte(`{}`)))
	noBrand.SetADCP(f.url, adcpToken, "acct-1", "")
	f.svc.Booker.Credentials = noBrand
	out, err := f.svc.bookAll(t.Context(), f.approve(t, f.line("olv_sports_preroll", 200000)))
	if err != nil {
		t.Fatal(err)
	}
	fails := kinds(out)[events.KindBookingFailed.Type]
	if len(fails) != 1 {
		t.Fatalf("outputs %v", keysOf(kinds(out)))
	}
	bf := must(events.PayloadOf[events.BookingFailed](fails[0], events.KindBookingFailed))
	if bf.Code != "credentials" || !strings.HasSuffix(bf.Reason, "have no brand") {
		t.Fatalf("failure %+v: want the missing brand named", bf)
	}
	for _, c := range f.agent.Calls() {
		if c.Tool == "create_media_buy" {
			t.Fatal("create_media_buy was sent without a brand")
		}
	}
}

// dropBuyAnswer lets create_media_buy reach the seller and loses its
// answer, once; every other request passes.
type dropBuyAnswer struct{ dropped atomic.Bool }

func (d *dropBuyAnswer) RoundTrip(r *http.Request) (*http.Response, error) {
	isBuy := false
	if r.Body != nil && r.Method == http.MethodPost {
		b, _ := io.ReadAll(r.Body)
		_ = r.Body.Close()
		isBuy = strings.Contains(string(b), `"create_media_buy"`)
		r.Body = io.NopCloser(bytes.NewReader(b))
	}
	resp, err := http.DefaultTransport.RoundTrip(r)
	if isBuy && err == nil && d.dropped.CompareAndSwap(false, true) {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return nil, errors.New("the answer was lost (test)")
	}
	return resp, err
}

// TestADCPReconcileWithoutContextEcho: a seller that does not echo a
// buy's context on get_media_buys (AdCP 3.0, the SDK's sellers) lost the
// answer to a buy it made. At the horizon the reconciler cannot find the
// buy by its context, so it replays the line's own create_media_buy (same
// key and body): the seller answers the buy it made, which is published
// once; the seller still holds one buy.
func TestADCPReconcileWithoutContextEcho(t *testing.T) {
	client := adcp.New(adcp.Config{AllowPrivate: true, MaxAttempts: 1, HTTPClient: &http.Client{Transport: &dropBuyAnswer{}}})
	f := newADCPFixtureWith(t, nil, false, client, func(c *sandboxadcp.Config) { c.NoContextEcho = true })
	clk := &clock{t: time.Now().UTC()}
	f.svc.Now, f.svc.Booker.Now, f.svc.BookingHorizon = clk.now, clk.now, time.Minute
	lines, err := f.svc.book(t.Context(), f.approve(t, f.line("display_news_300x250", 200000)))
	if err != nil || len(lines) != 1 {
		t.Fatal(err)
	}
	if _, err := f.svc.line(t.Context(), lines[0]); !errors.Is(err, errOutcomeUnknown) {
		t.Fatalf("lost answer: %v, want an unknown outcome", err)
	}
	// A buy of another campaign without context, so the listing is not
	// empty and says nothing about this line.
	other := adcp.New(adcp.Config{AllowPrivate: true})
	seller, _ := adcpauth.Seller(f.creds, events.Seller{URL: f.url, Protocol: events.ProtocolADCP}, identity.TierAgency)
	if _, err := other.CreateMediaBuy(t.Context(), seller, adcp.MediaBuyRequest{IdempotencyKey: adcp.NewIdempotencyKey(), Account: *seller.Account,
		Brand: *seller.Brand, End: time.Now().Add(30 * 24 * time.Hour), Packages: []adcp.PackageRequest{{ProductID: "display_news_300x250",
			PricingOptionID: "display_news_auction_usd", BudgetMicros: events.MustMicros(500), BidPriceMicros: events.MustMicros(3.75)}}}); err != nil {
		t.Fatal(err)
	}
	clk.add(2 * time.Minute)
	out, err := f.svc.line(t.Context(), lines[0])
	if err != nil {
		t.Fatal(err)
	}
	ds := dealsOf(t, out)
	if len(ds) != 1 || !ds[0].Reconciled || ds[0].MediaBuyID == "" {
		t.Fatalf("reconciled deals %+v", ds)
	}
	if b := f.buys(t); len(b) != 2 { // ours (once) and the other campaign's
		t.Fatalf("buys by key %v", b)
	}
	for k, n := range f.buys(t) {
		if n != 1 {
			t.Fatalf("key %s bought %d times", k, n)
		}
	}
}

// refuseAfterDrop loses create_media_buy's first answer (the seller made
// the buy) and then, while refuse is set, refuses every connection.
type refuseAfterDrop struct {
	dropBuyAnswer
	refuse atomic.Bool
}

func (d *refuseAfterDrop) RoundTrip(r *http.Request) (*http.Response, error) {
	if d.refuse.Load() {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	}
	return d.dropBuyAnswer.RoundTrip(r)
}

// TestADCPRefusedRetryAfterLostAnswer: the answer to a buy the seller made
// is lost, and the retry finds the seller refusing connections: that retry
// never left, which says nothing about the first call, so the line stays
// unknown with its spend reserved; once the seller answers, the replay
// with the same key publishes the one buy it made.
func TestADCPRefusedRetryAfterLostAnswer(t *testing.T) {
	tr := &refuseAfterDrop{}
	client := adcp.New(adcp.Config{AllowPrivate: true, MaxAttempts: 1, HTTPClient: &http.Client{Transport: tr}})
	f := newADCPFixtureWith(t, nil, false, client, nil)
	l := f.line("display_news_300x250", 200000)
	lines, err := f.svc.book(t.Context(), f.approve(t, l))
	if err != nil || len(lines) != 1 {
		t.Fatal(err)
	}
	if _, err := f.svc.line(t.Context(), lines[0]); !errors.Is(err, errOutcomeUnknown) {
		t.Fatalf("lost answer: %v, want an unknown outcome", err)
	}
	tr.refuse.Store(true)
	out, err := f.svc.line(t.Context(), lines[0])
	if !errors.Is(err, errOutcomeUnknown) || len(out) != 0 {
		t.Fatalf("refused retry: %d events, %v; want an unknown outcome and nothing published", len(out), err)
	}
	led, _, err := f.svc.Ledger.Get(t.Context(), f.c.ID)
	if err != nil || led.Committed() != l.SpendMicros {
		t.Fatalf("committed %s after the refused retry, want %s reserved: %v", led.Committed(), l.SpendMicros, err)
	}
	tr.refuse.Store(false)
	out, err = f.svc.line(t.Context(), lines[0])
	if err != nil {
		t.Fatal(err)
	}
	if ds := dealsOf(t, out); len(ds) != 1 || ds[0].MediaBuyID == "" {
		t.Fatalf("deals %+v", ds)
	}
	for k, n := range f.buys(t) {
		if n != 1 {
			t.Fatalf("key %s bought %d times", k, n)
		}
	}
}

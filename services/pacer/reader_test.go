package pacer

import (
	"errors"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/sandbox"
	sbx "github.com/dealflow/dealflow/internal/sandbox/adcp"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/identity"
	"github.com/dealflow/dealflow/pkg/sellerclient"
	"github.com/dealflow/dealflow/pkg/sellerclient/adcp"
)

type sandboxClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *sandboxClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *sandboxClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestSellerReaderIAB reads a deal booked at a sandbox IAB seller on an
// accelerated flight: what the seller says it served, at its average CPM,
// as of its flight clock; an unknown deal and a seller that stopped
// reporting are errors (the pacer's not_reporting).
func TestSellerReaderIAB(t *testing.T) {
	clk := &sandboxClock{t: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}
	cfg := sandbox.MarketConfig{Sellers: []sandbox.SellerConfig{{Name: "Reader Seller", Trust: "approved", Capabilities: []string{"video"}, InRegistry: true,
		Delivery: sandbox.DeliveryConfig{Delivery: sandbox.Delivery{Pace: 0.5, StopsReportingAt: 0.6}}}}}
	m, err := sandbox.Start(t.Context(), cfg, sandbox.WithClock(clk.now), sandbox.WithTimeScale(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	s := m.Sellers[0]
	c := sellerclient.New(sellerclient.Config{AllowPrivate: true, RetryBase: time.Millisecond})
	auth := sellerclient.Auth{APIKey: s.Keys["agency"]}
	imps := int64(1_000_000)
	q, err := c.CreateQuote(t.Context(), s.URL, auth, sellerclient.QuoteRequest{IdempotencyKey: "q-reader-1", ProductID: sandbox.ProductPreRollVideo,
		DealType: sellerclient.DealPD, Impressions: &imps, FlightStart: "2028-06-01", FlightEnd: "2028-06-10"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.BookDeal(t.Context(), s.URL, auth, sellerclient.DealBookingRequest{IdempotencyKey: "b-reader-1", QuoteID: q.QuoteID})
	if err != nil {
		t.Fatal(err)
	}
	cpm := sellerclient.MicrosOf(b.Deal.Pricing.FinalCPM)
	d := events.DealBooked{CampaignID: "c-1", SellerURL: s.URL, Protocol: events.ProtocolIAB, DealID: b.Deal.DealID, CPMMicros: cpm, Impressions: imps,
		SpendMicros: events.CostMicros(imps, cpm), FlightStart: "2028-06-01", FlightEnd: "2028-06-10"}
	r := SellerReader{Client: c}

	clk.advance(5 * time.Second) // a quarter of the flight
	got, err := r.Read(t.Context(), d)
	if err != nil {
		t.Fatal(err)
	}
	held, _ := s.Delivered(d.DealID, clk.now())
	if got.Impressions != held.Impressions || got.Impressions == 0 || got.SpendMicros != events.CostMicros(held.Impressions, cpm) ||
		!got.AsOf.Equal(time.Date(2028, 6, 3, 12, 0, 0, 0, time.UTC)) || got.SellerStatus != "behind" {
		t.Fatalf("read %+v; the seller holds %+v", got, held)
	}
	clk.advance(2 * time.Second) // 35%: still reporting
	if _, err := r.Read(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	clk.advance(6 * time.Second) // 65%: stopped reporting
	if _, err := r.Read(t.Context(), d); err == nil {
		t.Fatal("a seller that stopped reporting was read")
	}
	d.DealID = "DEMO-NOPE"
	if _, err := r.Read(t.Context(), d); !errors.Is(err, sellerclient.ErrNotFound) {
		t.Fatalf("unknown deal: %v", err)
	}
}

// TestSellerReaderADCP reads a media buy's package at a sandbox AdCP agent,
// at the MCP endpoint and with the credentials the line was bought with.
func TestSellerReaderADCP(t *testing.T) {
	clk := &sandboxClock{t: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}
	const token = "tok-reader-test-0123456789"
	agent := sbx.New(sbx.Config{Now: clk.now, TimeScale: 2 * time.Second,
		Tokens: map[string]sbx.Principal{token: {AccountID: "acc_r", BrandDomain: "acme.example"}}})
	srv := httptest.NewServer(agent.Handler())
	t.Cleanup(func() { srv.Close(); agent.Close() })
	creds, _ := identity.ParseCredentials([]byte(`{}`))
	creds.SetADCP(srv.URL, token, "acc_r", "acme.example")
	ac := adcp.New(adcp.Config{AllowPrivate: true, RetryBase: time.Millisecond})
	seller := adcp.Seller{URL: srv.URL + "/mcp", Token: token, Account: &adcp.AccountRef{AccountID: "acc_r"}, Brand: &adcp.BrandRef{Domain: "acme.example"}}
	mb, err := ac.CreateMediaBuy(t.Context(), seller, adcp.MediaBuyRequest{IdempotencyKey: adcp.NewIdempotencyKey(), Account: *seller.Account, Brand: *seller.Brand,
		Start: time.Date(2028, 6, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2028, 6, 10, 23, 59, 59, 0, time.UTC),
		Packages: []adcp.PackageRequest{{ProductID: "olv_sports_preroll", PricingOptionID: "olv_sports_fixed_usd", BudgetMicros: 10_000_000_000}}})
	if err != nil {
		t.Fatal(err)
	}
	d := events.DealBooked{CampaignID: "c-1", SellerURL: srv.URL, Protocol: events.ProtocolADCP, MCPEndpoint: srv.URL + "/mcp", MediaBuyID: mb.MediaBuyID,
		SellerPackageID: mb.Packages[0].PackageID, CPMMicros: 22_000_000, SpendMicros: 10_000_000_000, FlightStart: "2028-06-01", FlightEnd: "2028-06-10",
		Tier: events.TierAgency}
	r := SellerReader{ADCP: ac, Credentials: creds}
	clk.advance(5 * time.Second)
	got, err := r.Read(t.Context(), d)
	if err != nil {
		t.Fatal(err)
	}
	dl, err := ac.GetMediaBuyDelivery(t.Context(), seller, mb.MediaBuyID)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := dl.MediaBuys[0].Package(d.SellerPackageID)
	if got.SpendMicros != p.SpendMicros || got.Impressions != p.Impressions || got.SpendMicros == 0 || got.SellerStatus != "active" ||
		!got.AsOf.Equal(time.Date(2028, 6, 3, 12, 0, 0, 0, time.UTC)) {
		t.Fatalf("read %+v; the seller says %+v", got, p)
	}
	// Bought at the public tier: no credentials to read it with.
	d.Tier = events.TierPublic
	if _, err := r.Read(t.Context(), d); err == nil {
		t.Fatal("read without credentials")
	}
	d.Tier, d.MediaBuyID = events.TierAgency, "mb_nope"
	if _, err := r.Read(t.Context(), d); !errors.Is(err, sellerclient.ErrNotFound) {
		t.Fatalf("unknown buy: %v", err)
	}
}

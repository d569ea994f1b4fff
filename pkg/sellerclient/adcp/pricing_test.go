package adcp

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/sellerclient"
)

func TestMinorUnitFloor(t *testing.T) {
	for _, c := range []struct {
		m    events.Micros
		cur  string
		want events.Micros
	}{
		{59_999_996_000, "USD", 59_999_990_000}, // 59999.996 -> 59999.99
		{12_345_678, "", 12_340_000},
		{12_345_678, "JPY", 12_000_000},
		{12_345_678, "KWD", 12_345_000},
		{10_000, "USD", 10_000},
		{9_999, "USD", 0},
	} {
		if got := MinorUnitFloor(c.m, c.cur); got != c.want {
			t.Errorf("MinorUnitFloor(%d, %q) = %d, want %d", c.m, c.cur, got, c.want)
		}
	}
	r := MediaBuyRequest{IdempotencyKey: "k_0123456789abcdef", Account: AccountRef{AccountID: "a"}, Brand: BrandRef{Domain: "b.example"},
		End: parseTime("2030-01-02T00:00:00Z"), Packages: []PackageRequest{{ProductID: "p", PricingOptionID: "o", BudgetMicros: 59_999_996_000, BidPriceMicros: 1_875_500}}}
	raw, err := r.encode()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"budget":59999.99,`) || !strings.Contains(string(raw), `"bid_price":1.87`) {
		t.Fatalf("amounts not rounded down to cents: %s", raw)
	}
}

func TestForecastAvailabilityAndSpendCurve(t *testing.T) {
	f := &Forecast{Unit: "spend", Points: []ForecastPoint{
		{Label: "available inventory", Impressions: ForecastRange{Low: 8, Mid: 10_000_000, High: 11}},
		{BudgetMicros: events.MustMicros(1000), Impressions: ForecastRange{Mid: 100_000}},
		{BudgetMicros: events.MustMicros(3000), Impressions: ForecastRange{Mid: 200_000}},
	}}
	if got := f.Available(); got != 10_000_000 {
		t.Fatalf("available %d", got)
	}
	for budget, want := range map[float64]int64{1000: 100_000, 2000: 150_000, 500: 50_000, 6000: 400_000} {
		if got := f.ImpressionsFor(events.MustMicros(budget)); got != want {
			t.Errorf("ImpressionsFor(%v) = %d, want %d", budget, got, want)
		}
	}
	curve := &Forecast{Unit: "spend", Points: []ForecastPoint{{BudgetMicros: events.MustMicros(1000), Impressions: ForecastRange{Mid: 5}}}}
	if curve.Available() != 0 || (*Forecast)(nil).Available() != 0 {
		t.Fatal("a spend curve is not availability")
	}
}

func TestProposalPrice(t *testing.T) {
	fixed := func(id string, cpm, min float64, avail int64) Product {
		p := Product{ProductID: id, Channels: []string{"olv"}, PricingOptions: []PricingOption{{PricingOptionID: "fx", PricingModel: "cpm", Currency: "USD",
			Fixed: true, Priced: true, FixedPriceMicros: events.MustMicros(cpm), MinSpendMicros: events.MustMicros(min)}}}
		if avail > 0 {
			p.Forecast = &Forecast{Unit: "availability", Points: []ForecastPoint{{Impressions: ForecastRange{Mid: avail}}}}
		}
		return p
	}
	products := []Product{fixed("a", 35, 25_000, 30_000_000), fixed("b", 60, 50_000, 10_000_000)}
	pr := Proposal{ProposalID: "p1", Name: "balanced", Allocations: []Allocation{{ProductID: "a", Percentage: 50, PricingOptionID: "fx"}, {ProductID: "b", Percentage: 50}}}
	q, err := pr.Price(products)
	if err != nil {
		t.Fatal(err)
	}
	// 100 / (50/35 + 50/60) = 44.2105...: half the budget at 35, half at 60.
	if q.CPMMicros != 44_210_527 {
		t.Fatalf("blended CPM %d", q.CPMMicros)
	}
	if q.MinSpendMicros != events.MustMicros(100_000) { // b needs 50,000 at 50%
		t.Fatalf("min spend %s", q.MinSpendMicros)
	}
	// b's 10M impressions at 60 CPM cap the budget at 1,200,000, which buys
	// 1.2M x 1000 / 44.21 = 27.14M impressions in all.
	if q.Available < 27_140_000 || q.Available > 27_150_000 {
		t.Fatalf("available %d", q.Available)
	}
	for _, bad := range []Proposal{
		{ProposalID: "x", Allocations: []Allocation{{ProductID: "a", Percentage: 60}}},
		{ProposalID: "y", Allocations: []Allocation{{ProductID: "zzz", Percentage: 100}}},
		{ProposalID: "z", Allocations: []Allocation{{ProductID: "a", Percentage: 100, PricingOptionID: "auction"}}},
	} {
		if _, err := bad.Price(products); err == nil {
			t.Errorf("%s priced", bad.ProposalID)
		}
	}
}

// A seller that refuses the credential at the HTTP layer (as the AdCP SDK's
// serve() does, before MCP) is unauthorized, names the MCP request it
// refused, and is not retried.
func TestHTTP401NamesTheRequestAndIsNotRetried(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The MCP SDK's handshake tries server/discover, then initialize.
		if b, _ := io.ReadAll(r.Body); strings.Contains(string(b), `"initialize"`) {
			n.Add(1)
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="mcp"`)
		http.Error(w, `{"error":"invalid_token"}`, http.StatusUnauthorized)
	}))
	t.Cleanup(srv.Close)
	c := New(Config{AllowPrivate: true})
	_, err := c.GetCapabilities(ctx(t), Seller{URL: srv.URL + "/mcp", Token: "wrong-token-0123456789"})
	var ae *Error
	if !errors.Is(err, sellerclient.ErrUnauthorized) || !errors.As(err, &ae) || ae.Op != "get_adcp_capabilities" ||
		!strings.Contains(ae.Message, "on MCP initialize") {
		t.Fatalf("want unauthorized naming initialize: %v", err)
	}
	if got := n.Load(); got != 1 {
		t.Fatalf("%d initialize requests: a 401 must not be retried", got)
	}
	if strings.Contains(err.Error(), "wrong-token") {
		t.Fatal("token in the error")
	}
}

package adcp

import (
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/sandbox"
	sbx "github.com/dealflow/dealflow/internal/sandbox/adcp"
	"github.com/dealflow/dealflow/pkg/sellerclient"
)

// TestGetMediaBuyDelivery reads a booked buy's delivery from the sandbox
// agent on an accelerated clock: amounts in micros, impressions counted,
// the seller's as-of time; a seller that stopped reporting is a transient
// failure, another account's buy is not found. Every request and answer is
// checked against the AdCP schemas (newEnv).
func TestGetMediaBuyDelivery(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	var ops []string
	e := newEnv(t, func(c *sbx.Config) {
		c.Now, c.TimeScale = clock, 2*time.Second
		c.Delivery = sandbox.DeliveryConfig{Products: map[string]sandbox.Delivery{"ctv_run_of_network": {StopsReportingAt: 0.5}}}
	})
	e.client = New(Config{AllowPrivate: true, RetryBase: time.Millisecond, Observe: func(op, code string, _ time.Duration) {
		mu.Lock()
		ops = append(ops, op+" "+code)
		mu.Unlock()
	}})
	book := func(p PackageRequest) *MediaBuy {
		t.Helper()
		r := buyReq(NewIdempotencyKey(), p)
		r.Start, r.End = time.Date(2028, 6, 1, 0, 0, 0, 0, time.UTC), time.Date(2028, 6, 10, 23, 59, 59, 0, time.UTC)
		mb, err := e.client.CreateMediaBuy(ctx(t), e.seller, r)
		if err != nil {
			t.Fatal(err)
		}
		return mb
	}
	display := book(displayPkg)
	ctv := book(PackageRequest{ProductID: "ctv_run_of_network", PricingOptionID: "ctv_ron_auction_usd", BudgetMicros: 5_000_000_000, BidPriceMicros: 20_000_000})

	advance(5 * time.Second) // two and a half days of ten
	d, err := e.client.GetMediaBuyDelivery(ctx(t), e.seller, display.MediaBuyID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Currency != "USD" || !d.ReportingEnd.Equal(time.Date(2028, 6, 3, 12, 0, 0, 0, time.UTC)) || len(d.MediaBuys) != 1 {
		t.Fatalf("delivery: %+v", d)
	}
	m, ok := d.MediaBuy(display.MediaBuyID)
	if !ok || m.Status != "active" {
		t.Fatalf("buy: %+v", m)
	}
	p, ok := m.Package(display.Packages[0].PackageID)
	if !ok || math.Abs(float64(p.SpendMicros)/250_000_000-1) > 0.09 || p.RateMicros != 3_500_000 || p.PacingIndex == nil || p.DeliveryStatus != "delivering" {
		t.Fatalf("a quarter into the flight the $1,000 package: %+v", p)
	}
	if want := int64(math.Floor(float64(p.SpendMicros) / 3_500_000 * 1000)); p.Impressions < want-1 || p.Impressions > want+1 {
		t.Fatalf("impressions %d, want about %d (spend at the bid)", p.Impressions, want)
	}
	if m.SpendMicros != p.SpendMicros || m.Impressions != p.Impressions {
		t.Fatalf("totals %d/%d differ from the one package's %d/%d", m.SpendMicros, m.Impressions, p.SpendMicros, p.Impressions)
	}
	// Both buys at once, the account's every buy.
	all, err := e.client.GetMediaBuyDelivery(ctx(t), e.seller)
	if err != nil || len(all.MediaBuys) != 2 {
		t.Fatalf("every buy: %+v %v", all, err)
	}
	advance(6 * time.Second) // past the CTV buy's reporting
	_, err = e.client.GetMediaBuyDelivery(ctx(t), e.seller, ctv.MediaBuyID)
	var ae *Error
	if !errors.As(err, &ae) || ae.Code != "SERVICE_UNAVAILABLE" || !IsTransient(err) {
		t.Fatalf("a seller that stopped reporting: %v", err)
	}
	if _, err := e.client.GetMediaBuyDelivery(ctx(t), e.seller, "mb_nope"); !errors.Is(err, sellerclient.ErrNotFound) {
		t.Fatalf("unknown buy: %v", err)
	}
	if _, err := e.client.GetMediaBuyDelivery(ctx(t), e.public, display.MediaBuyID); !errors.Is(err, sellerclient.ErrUnauthorized) {
		t.Fatalf("without a token: %v", err)
	}
	mu.Lock()
	got := strings.Join(ops, ",")
	mu.Unlock()
	for _, want := range []string{"get_media_buy_delivery 200", "get_media_buy_delivery SERVICE_UNAVAILABLE"} {
		if !strings.Contains(got, want) {
			t.Errorf("observer never saw %q: %s", want, got)
		}
	}
}

// TestDeliveryDecodedStrictly: an answer with a member twice, a negative
// amount or without its required members is a bad response.
func TestDeliveryDecodedStrictly(t *testing.T) {
	t.Parallel()
	for name, body := range map[string]string{
		"twice":    `{"reporting_period":{"start":"2028-06-01T00:00:00Z","end":"2028-06-02T00:00:00Z"},"currency":"USD","currency":"EUR","media_buy_deliveries":[]}`,
		"negative": `{"reporting_period":{"start":"2028-06-01T00:00:00Z","end":"2028-06-02T00:00:00Z"},"currency":"USD","media_buy_deliveries":[{"media_buy_id":"m","status":"active","totals":{"spend":-1},"by_package":[]}]}`,
		"no end":   `{"reporting_period":{"start":"2028-06-01T00:00:00Z","end":"soon"},"currency":"USD","media_buy_deliveries":[]}`,
		"no spend": `{"reporting_period":{"start":"2028-06-01T00:00:00Z","end":"2028-06-02T00:00:00Z"},"currency":"USD","media_buy_deliveries":[{"media_buy_id":"m","status":"active","totals":{},"by_package":[]}]}`,
		"no list":  `{"reporting_period":{"start":"2028-06-01T00:00:00Z","end":"2028-06-02T00:00:00Z"},"currency":"USD"}`,
	} {
		if _, err := decodeDelivery([]byte(body)); !errors.Is(err, sellerclient.ErrBadResponse) {
			t.Errorf("%s: %v, want a bad response", name, err)
		}
	}
	ok := `{"reporting_period":{"start":"2028-06-01T00:00:00Z","end":"2028-06-02T00:00:00Z"},"currency":"USD","media_buy_deliveries":[` +
		`{"media_buy_id":"m","status":"active","totals":{"impressions":1500.0,"spend":30.5},"by_package":[{"package_id":"p","impressions":1500,"spend":30.5,"pricing_model":"cpm","rate":20.333333,"currency":"USD"}]}]}`
	d, err := decodeDelivery([]byte(ok))
	if err != nil || d.MediaBuys[0].SpendMicros != 30_500_000 || d.MediaBuys[0].Packages[0].RateMicros != 20_333_333 || d.MediaBuys[0].Impressions != 1500 {
		t.Fatalf("%+v %v", d, err)
	}
}

// TestDeliveryRetriedOnA503: a 503 from the agent's HTTP front is retried.
func TestDeliveryRetriedOnA503(t *testing.T) {
	e := newEnv(t, nil)
	var mu sync.Mutex
	n := 0
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		first := n == 1
		mu.Unlock()
		if first {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		e.agent.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(flaky.Close)
	s := e.seller
	s.URL = flaky.URL + "/mcp"
	if _, err := e.client.GetMediaBuyDelivery(ctx(t), s); err != nil {
		t.Fatalf("after a 503: %v", err)
	}
}

// FuzzDecodeDelivery: any get_media_buy_delivery answer either decodes into
// non-negative micros and counts with an as-of time, or is a bad response.
func FuzzDecodeDelivery(f *testing.F) {
	for _, s := range []string{
		`{"reporting_period":{"start":"2028-06-01T00:00:00Z","end":"2028-06-02T00:00:00Z"},"currency":"USD","media_buy_deliveries":[{"media_buy_id":"m","status":"active","totals":{"impressions":1500.0,"spend":30.5},"by_package":[{"package_id":"p","impressions":1500,"spend":30.5,"pricing_model":"cpm","rate":20.333333,"currency":"USD","pacing_index":0.9}]}]}`,
		`{"reporting_period":{"start":"x","end":"2028-06-02T00:00:00Z"},"currency":"USD","media_buy_deliveries":[]}`,
		`{"reporting_period":{"end":"2028-06-02T00:00:00Z"},"currency":"USD","media_buy_deliveries":[{"media_buy_id":"m","status":"active","totals":{"spend":1e300}}]}`,
		`{}`, `[]`, `null`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := decodeDelivery(data)
		if (d == nil) == (err == nil) {
			t.Fatalf("delivery %v err %v", d, err)
		}
		if err != nil {
			if !errors.Is(err, sellerclient.ErrBadResponse) {
				t.Fatalf("not a bad response: %v", err)
			}
			return
		}
		if d.ReportingEnd.IsZero() || d.Currency == "" {
			t.Fatalf("accepted %+v", d)
		}
		for _, m := range d.MediaBuys {
			if m.MediaBuyID == "" || m.SpendMicros < 0 || m.Impressions < 0 {
				t.Fatalf("accepted %+v", m)
			}
			for _, p := range m.Packages {
				if p.PackageID == "" || p.SpendMicros < 0 || p.Impressions < 0 || p.RateMicros < 0 {
					t.Fatalf("accepted %+v", p)
				}
			}
		}
	})
}

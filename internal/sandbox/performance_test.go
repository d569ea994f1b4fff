package sandbox

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"testing"
	"time"
)

func TestDeliveryShareCurve(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name       string
		d          Delivery
		end, early float64 // share delivered at the end; at 5% of the flight, relative to pace x 5%
	}{
		{"on plan", Delivery{}, 1, 1},
		{"under", Delivery{Pace: 0.5}, 0.5, 1},
		{"over, capped at its pace", Delivery{Pace: 1.5}, 1.5, 1},
		{"over, capped below", Delivery{Pace: 1.5, Cap: 1.2}, 1.2, 1},
		{"never starts", Delivery{NeverStarts: true}, 0, 0},
	} {
		for seed := range 200 {
			id := fmt.Sprintf("DEMO-%04d", seed)
			prev := 0.0
			for i := 0; i <= 1000; i++ {
				s := float64(i) / 1000
				v := c.d.Share(s, id)
				if v < prev {
					t.Fatalf("%s %s: delivery went down at %v: %v < %v", c.name, id, s, v, prev)
				}
				prev = v
			}
			if got := c.d.Share(1, id); math.Abs(got-c.end) > 1e-9 {
				t.Fatalf("%s %s: %v delivered at the end, want %v", c.name, id, got, c.end)
			}
			if c.d.Share(0, id) != 0 {
				t.Fatalf("%s %s: delivered before the flight", c.name, id)
			}
			pace := max(c.d.Pace, 1)
			if c.d.Pace != 0 {
				pace = c.d.Pace
			}
			for _, s := range []float64{0.05, 0.2, 0.5, 0.9} {
				want := pace * s * c.early
				if got := c.d.Share(s, id); want > 0 && math.Abs(got/want-1) > wiggle+0.005 && got < c.end {
					t.Fatalf("%s %s: at %v of the flight %v, want %v within %v", c.name, id, s, got, want, wiggle)
				}
			}
		}
	}
	if (Delivery{StopsReportingAt: 0.5}).Reporting(0.5) || !(Delivery{StopsReportingAt: 0.5}).Reporting(0.49) || !(Delivery{}).Reporting(1) {
		t.Fatal("Reporting")
	}
}

// performanceMarket has one seller whose products deliver differently.
func performanceMarket() MarketConfig {
	cfg := fixtureConfig()
	cfg.Sellers[0].Delivery = DeliveryConfig{Products: map[string]Delivery{
		videoProduct:          {Pace: 0.5},
		ctvProduct:            {StopsReportingAt: 0.5},
		ProductPremiumDisplay: {NeverStarts: true},
	}}
	return cfg
}

func bookFor(t *testing.T, s *Seller, product string, imps int64) string {
	t.Helper()
	qid := quoteFor(t, s, key(s, "agency"), map[string]any{"product_id": product, "deal_type": "PD", "impressions": imps,
		"flight_start": "2028-06-01", "flight_end": "2028-06-10"})
	r := call(t, "POST", s.URL+"/api/v1/deals", map[string]any{"idempotency_key": newKey(), "quote_id": qid}, key(s, "agency")...)
	wantStatus(t, r, 200)
	return get(t, r.body, "deal", "deal_id").(string)
}

func TestDealPerformanceOnAnAcceleratedFlight(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}
	m, err := Start(t.Context(), performanceMarket(), WithClock(clk.now), WithTimeScale(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	s := m.Seller(fixtureSeller)
	const goal = 1_000_000
	onPlan := bookFor(t, s, ProductStandardDisplay, goal)
	under := bookFor(t, s, videoProduct, goal)
	stops := bookFor(t, s, ctvProduct, goal)
	never := bookFor(t, s, ProductPremiumDisplay, goal)
	perf := func(id string) resp {
		t.Helper()
		return call(t, "GET", s.URL+"/api/v1/deals/"+id+"/performance", nil)
	}
	// The real seller's DealPerformanceResponse, member for member.
	r := perf(onPlan)
	wantStatus(t, r, 200)
	var keys []string
	for k := range r.body.(map[string]any) {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if fmt.Sprint(keys) != "[avg_cpm_actual deal_id delivery_pacing fill_rate impressions_available impressions_served last_updated win_rate]" {
		t.Fatalf("performance members %v", keys)
	}
	wantEq(t, "at booking", get(t, r.body, "impressions_served"), 0)
	wantEq(t, "pacing", get(t, r.body, "delivery_pacing"), "not_started")
	wantEq(t, "available", get(t, r.body, "impressions_available"), goal)

	// 5s on a 2s day: two and a half days of ten.
	clk.advance(5 * time.Second)
	r = perf(onPlan)
	served := integer(t, get(t, r.body, "impressions_served"))
	if math.Abs(float64(served)/(goal*0.25)-1) > wiggle {
		t.Fatalf("a quarter into the flight, %d served of %d", served, goal)
	}
	wantEq(t, "last_updated", get(t, r.body, "last_updated"), "2028-06-03T12:00:00Z")
	wantEq(t, "on track", get(t, r.body, "delivery_pacing"), "on_track")
	if cpm, _ := get(t, r.body, "avg_cpm_actual").(json.Number).Float64(); cpm <= 0 {
		t.Fatalf("avg_cpm_actual %v once delivering", cpm)
	}
	if u := integer(t, get(t, perf(under).body, "impressions_served")); math.Abs(float64(u)/(goal*0.125)-1) > wiggle {
		t.Fatalf("the half-pace line served %d a quarter in", u)
	}
	wantEq(t, "behind", get(t, perf(under).body, "delivery_pacing"), "behind")
	wantEq(t, "never", get(t, perf(never).body, "impressions_served"), 0)
	wantEq(t, "never pacing", get(t, perf(never).body, "delivery_pacing"), "not_started")
	wantStatus(t, perf(stops), 200)

	// Past half the flight the CTV line's seller stops reporting.
	clk.advance(6 * time.Second)
	wantStatus(t, perf(stops), 503)
	wantStatus(t, perf(onPlan), 200)

	// After the flight: exactly the goal, the under-delivering line half.
	clk.advance(time.Minute)
	wantEq(t, "end", integer(t, get(t, perf(onPlan).body, "impressions_served")), goal)
	wantEq(t, "fill", get(t, perf(onPlan).body, "fill_rate"), json.Number("100.0"))
	wantEq(t, "end under", integer(t, get(t, perf(under).body, "impressions_served")), goal/2)
	if at, err := time.Parse(time.RFC3339Nano, get(t, perf(onPlan).body, "last_updated").(string)); err != nil || at.Before(time.Date(2028, 6, 11, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("after the flight the seller's clock reads %v (%v)", at, err)
	}
	if d, ok := s.Delivered(under, clk.now()); !ok || d.Impressions != goal/2 || d.Share != 1 {
		t.Fatalf("Delivered: %+v %v", d, ok)
	}

	// A line can be faulted at run time.
	if !s.SetDelivery(onPlan, Delivery{NeverStarts: true}) || s.SetDelivery("DEMO-NOPE", Delivery{}) {
		t.Fatal("SetDelivery")
	}
	wantEq(t, "set", get(t, perf(onPlan).body, "impressions_served"), 0)

	r = perf("DEMO-NOPE")
	wantStatus(t, r, 404)
	wantEq(t, "unknown", get(t, r.body, "detail", "error"), "deal_not_found")
}

func TestDealPerformanceInRealTime(t *testing.T) {
	m := startFixture(t)
	s := m.Seller(fixtureSeller)
	id := bookFor(t, s, videoProduct, 500_000)
	r := call(t, "GET", s.URL+"/api/v1/deals/"+id+"/performance", nil)
	wantStatus(t, r, 200)
	wantEq(t, "served", get(t, r.body, "impressions_served"), 0)
	at, err := time.Parse(time.RFC3339Nano, get(t, r.body, "last_updated").(string))
	if err != nil || time.Since(at).Abs() > time.Minute {
		t.Fatalf("in real time last_updated is now: %v %v", at, err)
	}
}

func TestDeliveryConfigValidated(t *testing.T) {
	t.Parallel()
	for _, d := range []Delivery{{Pace: -1}, {StopsReportingAt: 1.5}, {Cap: math.NaN()}} {
		cfg := fixtureConfig()
		cfg.Sellers[0].Delivery = DeliveryConfig{Products: map[string]Delivery{"x": d}}
		if err := cfg.Validate(); err == nil {
			t.Errorf("%+v accepted", d)
		}
	}
	var c DeliveryConfig
	if err := json.Unmarshal([]byte(`{"pace":0.5,"products":{"p":{"never_starts":true}}}`), &c); err != nil || c.Pace != 0.5 || !c.For("p").NeverStarts || c.For("q").Pace != 0.5 {
		t.Fatalf("delivery JSON: %+v %v", c, err)
	}
}

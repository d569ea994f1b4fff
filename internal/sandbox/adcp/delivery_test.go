package adcp

import (
	"math"
	"sync"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/sandbox"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// deliveryOf is one buy's row of a get_media_buy_delivery answer.
func deliveryOf(t *testing.T, res map[string]any, id string) map[string]any {
	t.Helper()
	for _, d := range res["media_buy_deliveries"].([]any) {
		if m := d.(map[string]any); m["media_buy_id"] == id {
			return m
		}
	}
	t.Fatalf("no delivery of %s in %v", id, res)
	return nil
}

func firstPackage(m map[string]any) map[string]any {
	return m["by_package"].([]any)[0].(map[string]any)
}

// TestMediaBuyDelivery: booked buys deliver their budget over their flight
// on the accelerated clock, per product's delivery; every answer (checked
// against the AdCP schemas by the harness) has the shape
// get_media_buy_delivery's response schema gives it.
func TestMediaBuyDelivery(t *testing.T) {
	clk := &clock{t: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}
	cfg := testConfig()
	cfg.Now, cfg.TimeScale = clk.now, 2*time.Second
	cfg.Delivery = sandbox.DeliveryConfig{Products: map[string]sandbox.Delivery{
		"display_news_300x250": {Pace: 0.5},
		"ctv_run_of_network":   {StopsReportingAt: 0.5},
	}}
	h := newHarness(t, cfg)
	buy := func(key string, pkg map[string]any) string {
		t.Helper()
		args := buyArgsFor(key, pkg)
		args["start_time"], args["end_time"] = "2028-06-01T00:00:00Z", "2028-06-10T23:59:59Z"
		res, isErr := h.call(tokenA, "create_media_buy", args)
		if isErr {
			t.Fatalf("create_media_buy: %v", res)
		}
		return res["media_buy_id"].(string)
	}
	onPlan := buy("delivery-on-plan-000001", map[string]any{"product_id": "olv_sports_preroll", "pricing_option_id": "olv_sports_fixed_usd", "budget": 10000})
	under := buy("delivery-under-000000001", map[string]any{"product_id": "display_news_300x250", "pricing_option_id": "display_news_auction_usd", "budget": 1000, "bid_price": 4})
	stops := buy("delivery-stops-000000001", map[string]any{"product_id": "ctv_run_of_network", "pricing_option_id": "ctv_ron_auction_usd", "budget": 5000, "bid_price": 20})

	ask := func(ids ...string) (map[string]any, bool) {
		return h.call(tokenA, "get_media_buy_delivery", map[string]any{"account": account(), "media_buy_ids": ids})
	}
	res, isErr := ask(onPlan, under)
	if isErr {
		t.Fatalf("delivery: %v", res)
	}
	if got := deliveryOf(t, res, onPlan)["status"]; got != "active" {
		t.Fatalf("at booking the accelerated flight has begun: status %v", got)
	}
	// 5s on a 2s day: two and a half days of ten.
	clk.advance(5 * time.Second)
	res, _ = ask(onPlan, under)
	if end, _ := time.Parse(time.RFC3339Nano, res["reporting_period"].(map[string]any)["end"].(string)); !end.Equal(time.Date(2028, 6, 3, 12, 0, 0, 0, time.UTC)) {
		t.Fatalf("reporting period ends %v, want the flight clock's now", res["reporting_period"])
	}
	p := firstPackage(deliveryOf(t, res, onPlan))
	spend := p["spend"].(float64)
	if math.Abs(spend/2500-1) > 0.09 || p["rate"] != 22.0 || p["delivery_status"] != "delivering" {
		t.Fatalf("a quarter into the flight the 10000 budget spent %v: %v", spend, p)
	}
	if imps := p["impressions"].(float64); imps != math.Floor(spend/22*1000) {
		t.Fatalf("impressions %v are not the spend %v at the rate 22", imps, spend)
	}
	if pi := p["pacing_index"].(float64); math.Abs(pi-1) > 0.09 {
		t.Fatalf("pacing index %v on plan", pi)
	}
	pu := firstPackage(deliveryOf(t, res, under))
	if pi := pu["pacing_index"].(float64); math.Abs(pi-0.5) > 0.05 {
		t.Fatalf("the half-pace buy's pacing index %v", pi)
	}
	agg := res["aggregated_totals"].(map[string]any)
	if agg["media_buy_count"] != 2.0 || math.Abs(agg["spend"].(float64)-spend-pu["spend"].(float64)) > 0.011 {
		t.Fatalf("aggregated totals %v", agg)
	}
	if _, isErr := ask(stops); isErr {
		t.Fatal("the CTV buy stopped reporting before half its flight")
	}
	// A date range: what the first two days delivered.
	rng, _ := h.call(tokenA, "get_media_buy_delivery", map[string]any{"media_buy_ids": []string{onPlan}, "start_date": "2028-06-02", "end_date": "2028-06-02"})
	if s := firstPackage(deliveryOf(t, rng, onPlan))["spend"].(float64); math.Abs(s/1000-1) > 0.1 {
		t.Fatalf("the flight's second day spent %v of 10000 over ten days", s)
	}

	clk.advance(6 * time.Second)
	if res, isErr := ask(stops); !isErr || errCode(res) != "SERVICE_UNAVAILABLE" {
		t.Fatalf("past half its flight the CTV buy's delivery should be unavailable: %v", res)
	}
	clk.advance(time.Minute)
	res, _ = ask(onPlan, under)
	d := deliveryOf(t, res, onPlan)
	if d["status"] != "completed" || firstPackage(d)["spend"] != 10000.0 || firstPackage(d)["delivery_status"] != "flight_ended" {
		t.Fatalf("after the flight: %v", d)
	}
	if s := firstPackage(deliveryOf(t, res, under))["spend"]; s != 500.0 {
		t.Fatalf("the half-pace buy spent %v of 1000", s)
	}

	// Runtime faults, other accounts, unknown buys.
	if !h.agent.SetDelivery(onPlan, firstPackage(d)["package_id"].(string), sandbox.Delivery{NeverStarts: true}) || h.agent.SetDelivery("mb_nope", "pkg", sandbox.Delivery{}) {
		t.Fatal("SetDelivery")
	}
	res, _ = ask(onPlan)
	if s := firstPackage(deliveryOf(t, res, onPlan))["spend"]; s != 0.0 {
		t.Fatalf("a package set never to start spent %v", s)
	}
	if res, isErr := h.call(tokenB, "get_media_buy_delivery", map[string]any{"media_buy_ids": []string{onPlan}}); !isErr || errCode(res) != "MEDIA_BUY_NOT_FOUND" {
		t.Fatalf("another account read the buy: %v", res)
	}
	if res, isErr := h.call(tokenB, "get_media_buy_delivery", map[string]any{}); isErr || len(res["media_buy_deliveries"].([]any)) != 0 {
		t.Fatalf("another account's delivery: %v", res)
	}
	if res, isErr := h.call("", "get_media_buy_delivery", map[string]any{}); !isErr || errCode(res) != "AUTH_MISSING" {
		t.Fatalf("delivery without a token: %v", res)
	}
}

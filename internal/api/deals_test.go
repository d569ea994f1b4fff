package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/api"
	"github.com/dealflow/dealflow/internal/api/apitest"
	"github.com/dealflow/dealflow/internal/app"
	"github.com/dealflow/dealflow/internal/checkfor"
	"github.com/dealflow/dealflow/internal/config"
	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/internal/sandbox"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/services/activator"
)

const (
	sellerA   = "http://127.0.0.1:9101"
	sellerB   = "http://127.0.0.1:9102"
	tokenA    = "seller-a-push-token-0001"
	tokenB    = "seller-b-push-token-0002"
	dspSecret = "dsp-secret-for-tests-0001"
)

// dealsApp is a process with the bookings API (sellers A and B may push
// deals) and the activator against a sandbox DSP, and nothing else.
func dealsApp(t *testing.T, statusTokenRequired bool) (*app.App, *sandbox.DSP, string) {
	t.Helper()
	dsp, err := sandbox.StartDSP(dspSecret)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dsp.Close() })
	tokens, err := api.ParseSellerTokens([]byte(fmt.Sprintf(`{"sellers":{%q:%q,%q:%q}}`, sellerA, tokenA, sellerB, tokenB)))
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Defaults()
	cfg.DataDir, cfg.Stages, cfg.HTTPAddr, cfg.APIKey, cfg.AllowPrivate = t.TempDir(), []string{"activator"}, "127.0.0.1:0", apiKey, true
	cfg.DSP, cfg.DSPSecret, cfg.DealStatusTokenRequired = dsp.URL, dspSecret, statusTokenRequired
	a, err := app.Start(context.Background(), cfg, natstest.Logger(), app.Options{SellerTokens: tokens})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	return a, dsp, "http://" + a.HTTPAddr
}

// pushed is a deal object exactly as the seller-agent v2.4.2 pushes it
// (DealsAPIService.build_deal_object, dumped without null members).
func pushed(dealID string, price float64) map[string]any {
	return map[string]any{
		"deal_id": dealID, "name": "Deal " + dealID, "deal_type": "programmaticguaranteed", "status": "pending",
		"fixed_price_cpm": price, "currency": "USD", "impressions": 500000, "flight_start": "2028-06-04", "flight_end": "2028-06-30",
		"buyer_seat_ids": []string{"ttd-seat-123"},
		"openrtb_params": map[string]any{"id": dealID, "bidfloor": price, "bidfloorcur": "USD", "at": 3, "wseat": []string{"ttd-seat-123"}},
		"seller_id":      "default", "seller_domain": "publisher.example",
		"created_at": "2028-06-01T10:00:00.000000+00:00", "updated_at": "2028-06-01T10:00:00.000000+00:00",
	}
}

func bearerOf(tok string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + tok}
}

// TestPushedDealThroughItsLifecycle: a seller's push is recorded pending and
// published (DealReceived), listed for approval, answered to the seller's
// status query; the buyer's approval (DealApproved) has the activator set
// it up in the DSP once (DealActivated, ready_to_serve); a re-push of the
// same terms changes nothing, other terms are refused.
func TestPushedDealThroughItsLifecycle(t *testing.T) {
	a, dsp, base := dealsApp(t, false)
	code, out := apitest.JSON(t, "POST", base+"/deals", pushed("DEMO-PUSH1", 25.5), bearerOf(tokenA))
	if code != 200 || out["status"] != "pending" || out["deal_id"] != "DEMO-PUSH1" {
		t.Fatalf("push: %d %v", code, out)
	}
	// The seller asks, as the seller-agent does: no key.
	if code, out := apitest.JSON(t, "GET", base+"/deals/DEMO-PUSH1/status", nil, nil); code != 200 || out["status"] != "pending" {
		t.Fatalf("status: %d %v", code, out)
	}
	code, out = apitest.JSON(t, "GET", base+"/deals?status=pending", nil, auth)
	if code != 200 || out["total"] != float64(1) {
		t.Fatalf("pending list: %d %v", code, out)
	}
	d := out["deals"].([]any)[0].(map[string]any)
	terms := d["terms"].(map[string]any)
	if d["seller_url"] != sellerA || d["origin"] != "pushed" || terms["fixed_cpm_micros"] != float64(25_500_000) || terms["deal_type"] != "PG" ||
		terms["openrtb_params"].(map[string]any)["bidfloor_micros"] != float64(25_500_000) {
		t.Fatalf("listed deal %v", d)
	}
	campaignID := d["campaign_id"].(string)
	// Nothing is activated before the approval.
	if n := len(dsp.Activations()); n != 0 {
		t.Fatalf("%d activations before approval", n)
	}
	if code, out := apitest.JSON(t, "POST", base+"/deals/DEMO-PUSH1/approve", nil, auth); code != 200 || out["status"] != "approved" {
		t.Fatalf("approve: %d %v", code, out)
	}
	checkfor.Check(t, 20*time.Second, 20*time.Millisecond, func() error {
		_, out := apitest.JSON(t, "GET", base+"/deals/DEMO-PUSH1/status", nil, nil)
		if out["status"] != "ready_to_serve" {
			return fmt.Errorf("status %v", out["status"])
		}
		return nil
	})
	acts := dsp.Activations()
	if len(acts) != 1 || acts[0].DealID != "DEMO-PUSH1" || acts[0].Origin != "pushed" || acts[0].CampaignID != campaignID {
		t.Fatalf("DSP activations %+v", acts)
	}
	var body activator.Activation
	if err := json.Unmarshal(acts[0].Body, &body); err != nil || body.Deal.OpenRTB == nil || body.Deal.OpenRTB.AuctionType != 3 ||
		body.Deal.BuyerSeatIDs[0] != "ttd-seat-123" || body.Deal.FixedCPMMicros != 25_500_000 {
		t.Fatalf("activation body %s: %v", acts[0].Body, err)
	}
	// Approving again: 409, nothing sent.
	if code, out := apitest.JSON(t, "POST", base+"/deals/DEMO-PUSH1/approve", nil, auth); code != 409 || out["error"] != "invalid_state" {
		t.Fatalf("second approve: %d %v", code, out)
	}
	// The seller re-pushes the same terms: answered with the status.
	if code, out := apitest.JSON(t, "POST", base+"/deals", pushed("DEMO-PUSH1", 25.5), bearerOf(tokenA)); code != 200 || out["status"] != "ready_to_serve" {
		t.Fatalf("re-push: %d %v", code, out)
	}
	// Another price for the approved deal: refused.
	if code, out := apitest.JSON(t, "POST", base+"/deals", pushed("DEMO-PUSH1", 19), bearerOf(tokenA)); code != 409 || out["error"] != "conflict" {
		t.Fatalf("new price: %d %v", code, out)
	}
	// The events: received, approved, activated, under the deal's own id.
	kinds := map[string]int{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = a.Bus.Follow(ctx, campaignID, func(e events.Event) bool {
		k, _ := events.KindOf(e.Type())
		kinds[k.Name]++
		return kinds["DealActivated"] == 0
	})
	if kinds["DealReceived"] != 1 || kinds["DealApproved"] != 1 || kinds["DealActivated"] != 1 {
		t.Fatalf("events %v", kinds)
	}
	if len(dsp.Activations()) != 1 {
		t.Fatal("activated twice")
	}
}

// TestPushedDealRejected: a rejection's reason reaches the seller that
// asks with its token (not an anonymous caller); a rejected deal cannot be
// approved; new terms are a new proposal, pending again.
func TestPushedDealRejected(t *testing.T) {
	_, dsp, base := dealsApp(t, false)
	if code, _ := apitest.JSON(t, "POST", base+"/deals", pushed("DEMO-REJ", 40), bearerOf(tokenB)); code != 200 {
		t.Fatal(code)
	}
	code, out := apitest.JSON(t, "POST", base+"/deals/DEMO-REJ/reject", map[string]any{"reason": "above our max CPM"}, auth)
	if code != 200 || out["status"] != "rejected" || !strings.Contains(out["message"].(string), "above our max CPM") {
		t.Fatalf("reject: %d %v", code, out)
	}
	if _, out := apitest.JSON(t, "GET", base+"/deals/DEMO-REJ/status", nil, bearerOf(tokenB)); out["status"] != "rejected" || !strings.Contains(fmt.Sprint(out["reason"]), "above our max CPM") {
		t.Fatalf("seller's status %v", out)
	}
	if _, out := apitest.JSON(t, "GET", base+"/deals/DEMO-REJ/status", nil, nil); out["status"] != "rejected" || out["reason"] != nil {
		t.Fatalf("anonymous status %v", out)
	}
	if code, _ := apitest.JSON(t, "POST", base+"/deals/DEMO-REJ/approve", nil, auth); code != 409 {
		t.Fatalf("approve a rejected deal: %d", code)
	}
	if code, _ := apitest.JSON(t, "POST", base+"/deals/DEMO-REJ/reject", nil, auth); code != 200 {
		t.Fatalf("reject again: %d", code)
	}
	if code, out := apitest.JSON(t, "POST", base+"/deals", pushed("DEMO-REJ", 30), bearerOf(tokenB)); code != 200 || out["status"] != "pending" {
		t.Fatalf("new terms after a rejection: %d %v", code, out)
	}
	if n := len(dsp.Activations()); n != 0 {
		t.Fatalf("%d activations", n)
	}
}

// TestDealEndpointAuth: pushes need a seller's token; a status query with
// a wrong token is refused, and without one only when the buyer requires
// it; the buyer's routes need the X-API-Key, the seller's do not; two
// sellers' deals of one id are told apart by the token.
func TestDealEndpointAuth(t *testing.T) {
	_, _, base := dealsApp(t, true)
	for _, h := range []map[string]string{nil, bearerOf("wrong-token-wrong-token"), {"Authorization": "Basic " + tokenA}, {"X-API-Key": apiKey}} {
		if code, out := apitest.JSON(t, "POST", base+"/deals", pushed("DEMO-AUTH", 20), h); code != 401 || out["error"] != "unauthorized" {
			t.Fatalf("push with %v: %d %v", h, code, out)
		}
	}
	for _, tok := range []string{tokenA, tokenB} {
		if code, _ := apitest.JSON(t, "POST", base+"/deals", pushed("DEMO-SAME", 20), bearerOf(tok)); code != 200 {
			t.Fatalf("push: %d", code)
		}
	}
	if code, _ := apitest.JSON(t, "GET", base+"/deals/DEMO-SAME/status", nil, nil); code != 401 {
		t.Fatalf("status without a token when required: %d", code)
	}
	if code, _ := apitest.JSON(t, "GET", base+"/deals/DEMO-SAME/status", nil, bearerOf("wrong-token-wrong-token")); code != 401 {
		t.Fatalf("status with a wrong token: %d", code)
	}
	if code, out := apitest.JSON(t, "GET", base+"/deals/DEMO-SAME/status", nil, bearerOf(tokenA)); code != 200 || out["status"] != "pending" {
		t.Fatalf("seller A's status: %d %v", code, out)
	}
	if code, _ := apitest.JSON(t, "GET", base+"/deals/DEMO-NONE/status", nil, bearerOf(tokenA)); code != 404 {
		t.Fatalf("unknown deal: %d", code)
	}
	// Buyer routes: the API key.
	if code, _ := apitest.JSON(t, "GET", base+"/deals", nil, bearerOf(tokenA)); code != 401 {
		t.Fatalf("list with a seller token: %d", code)
	}
	if code, out := apitest.JSON(t, "POST", base+"/deals/DEMO-SAME/approve", nil, auth); code != 409 || out["error"] != "ambiguous" {
		t.Fatalf("approve an id two sellers use: %d %v", code, out)
	}
	if code, out := apitest.JSON(t, "GET", base+"/deals/DEMO-SAME?seller_url="+sellerB, nil, auth); code != 200 || out["seller_url"] != sellerB {
		t.Fatalf("get B's: %d %v", code, out)
	}
	if code, out := apitest.JSON(t, "POST", base+"/deals/DEMO-SAME/approve", map[string]any{"seller_url": sellerB}, auth); code != 200 || out["seller_url"] != sellerB {
		t.Fatalf("approve B's: %d %v", code, out)
	}
	if _, out := apitest.JSON(t, "GET", base+"/deals/DEMO-SAME/status", nil, bearerOf(tokenA)); out["status"] != "pending" {
		t.Fatalf("A's deal moved with B's: %v", out)
	}
}

// TestPushedDealValidation: each malformed member is a 422 naming it; a
// member the buyer does not know is ignored.
func TestPushedDealValidation(t *testing.T) {
	_, _, base := dealsApp(t, false)
	cases := []struct {
		name  string
		edit  func(b map[string]any)
		field string
	}{
		{"deal id with a slash", func(b map[string]any) { b["deal_id"], b["openrtb_params"] = "a/b", nil }, "deal_id"},
		{"no deal id", func(b map[string]any) { delete(b, "deal_id") }, "deal_id"},
		{"unknown deal type", func(b map[string]any) { b["deal_type"] = "barter" }, "deal_type"},
		{"no price", func(b map[string]any) { delete(b, "fixed_price_cpm"); delete(b, "openrtb_params") }, "fixed_price_cpm"},
		{"negative price", func(b map[string]any) { b["fixed_price_cpm"] = -1 }, "fixed_price_cpm"},
		{"huge price", func(b map[string]any) { b["fixed_price_cpm"] = 1e300 }, "fixed_price_cpm"},
		{"euros", func(b map[string]any) { b["currency"] = "EUR" }, "currency"},
		{"negative impressions", func(b map[string]any) { b["impressions"] = -5 }, "impressions"},
		{"impressions as text", func(b map[string]any) { b["impressions"] = "many" }, "impressions"},
		{"bad date", func(b map[string]any) { b["flight_start"] = "June" }, "flight_start"},
		{"end before start", func(b map[string]any) { b["flight_end"] = "2028-06-01" }, "flight_end"},
		{"openrtb id of another deal", func(b map[string]any) { b["openrtb_params"].(map[string]any)["id"] = "OTHER" }, "openrtb_params.id"},
		{"auction type 7", func(b map[string]any) { b["openrtb_params"].(map[string]any)["at"] = 7 }, "openrtb_params.at"},
		{"PA without a floor", func(b map[string]any) {
			b["deal_type"] = "privateauction"
			delete(b, "openrtb_params")
		}, "floor_price_cpm"},
		{"huge inventory", func(b map[string]any) { b["inventory"] = map[string]any{"x": strings.Repeat("y", 70_000)} }, "inventory"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := pushed("DEMO-V", 20)
			c.edit(b)
			code, out := apitest.JSON(t, "POST", base+"/deals", b, bearerOf(tokenA))
			if code != 422 || out["field"] != c.field {
				t.Fatalf("%d %v, want 422 naming %s", code, out, c.field)
			}
		})
	}
	b := pushed("DEMO-V2", 20)
	b["future_member"] = map[string]any{"x": 1}
	b["deal_type"] = "PD"
	b["flight_start"], b["flight_end"] = "2028-06-04T00:00:00Z", "2028-06-30T23:59:59+00:00"
	if code, out := apitest.JSON(t, "POST", base+"/deals", b, bearerOf(tokenA)); code != 200 {
		t.Fatalf("unknown member, RFC 3339 dates: %d %v", code, out)
	}
	_, out := apitest.JSON(t, "GET", base+"/deals/DEMO-V2", nil, auth)
	terms := out["terms"].(map[string]any)
	if terms["flight_start"] != "2028-06-04" || terms["flight_end"] != "2028-06-30" || terms["deal_type"] != "PD" {
		t.Fatalf("terms %v", terms)
	}
	if code, out := apitest.JSON(t, "GET", base+"/deals?status=nonsense", nil, auth); code != 422 || out["field"] != "status" {
		t.Fatalf("bad status filter: %d %v", code, out)
	}
}

// TestSellerTokensFile: URLs are canonicalised, tokens are long enough and
// each seller's own; errors never show a token.
func TestSellerTokensFile(t *testing.T) {
	tok, err := api.ParseSellerTokens([]byte(`{"sellers":{"HTTP://Seller.Example:80/":"0123456789abcdef"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := tok.Seller("0123456789abcdef"); !ok || s != "http://seller.example" {
		t.Fatalf("seller %q %v", s, ok)
	}
	if _, ok := tok.Seller("0123456789abcdeF"); ok {
		t.Fatal("a near token accepted")
	}
	for _, doc := range []string{`{"sellers":{"http://a.example":"short"}}`, `{"sellers":{"http://a.example":"0123456789abcdef","http://b.example":"0123456789abcdef"}}`,
		`{"sellers":{"ftp://a":"0123456789abcdef"}}`, `{"seller":{}}`} {
		_, err := api.ParseSellerTokens([]byte(doc))
		if err == nil || strings.Contains(err.Error(), "0123456789abcdef") || strings.Contains(err.Error(), "short\"") {
			t.Fatalf("%s: %v", doc, err)
		}
	}
}

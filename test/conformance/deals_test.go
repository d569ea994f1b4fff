package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/api"
	"github.com/dealflow/dealflow/internal/app"
	"github.com/dealflow/dealflow/internal/checkfor"
	"github.com/dealflow/dealflow/internal/config"
	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/internal/sandbox"
	"github.com/dealflow/dealflow/services/activator"
)

// Against a real seller, the seller must reach the buyer this case starts:
// BUYER_LISTEN is the address it listens on (default 127.0.0.1:0) and
// BUYER_URL the deal endpoint's URL as the seller reaches it (default
// http://<the listening address>/deals).
const (
	envBuyerListen = "BUYER_LISTEN"
	envBuyerURL    = "BUYER_URL"
)

// case45DealsAPIBuyerSide: the seller pushes deals to dealflow's buyer deal
// endpoint (its POST /api/v1/deals/push, with the token the buyer issued
// it) and asks their buyer status (its GET /api/v1/deals/{id}/buyer-status):
// each push is accepted pending; the status follows the buyer's decisions
// through the lifecycle: approved and set up in the DSP (active, the flight
// having started), or rejected.
func case45DealsAPIBuyerSide(t *testing.T) {
	const token = "conformance-push-token-0001"
	dsp, err := sandbox.StartDSP("conformance-dsp-secret-01")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dsp.Close() })
	tokens, err := api.ParseSellerTokens([]byte(fmt.Sprintf(`{"sellers":{%q:%q}}`, suite.url, token)))
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Defaults()
	cfg.DataDir, cfg.NATSPort, cfg.Stages, cfg.AllowPrivate = t.TempDir(), -1, []string{activator.Stage}, true
	cfg.HTTPAddr, cfg.APIKey = "127.0.0.1:0", "conformance-buyer-key"
	if l := os.Getenv(envBuyerListen); l != "" {
		cfg.HTTPAddr = l
	}
	cfg.DSP, cfg.DSPSecret = dsp.URL, "conformance-dsp-secret-01"
	buyer, err := app.Start(context.Background(), cfg, natstest.Logger(), app.Options{SellerTokens: tokens})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(buyer.Stop)
	buyerURL := "http://" + buyer.HTTPAddr + "/deals"
	if u := os.Getenv(envBuyerURL); u != "" {
		buyerURL = u
	}
	ctx := caseCtx(t)
	day := func(d int) string { return time.Now().UTC().AddDate(0, 0, d).Format(time.DateOnly) }
	hc := &http.Client{Transport: suite.transport(), Timeout: caseTimeout}

	push := func(dealID string) {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"deal_id": dealID, "buyer_urls": []string{buyerURL}, "buyer_api_keys": []string{token},
			"deal_type": "PG", "price": 30.0, "name": "Conformance " + dealID, "impressions": 100000,
			"flight_start": day(-1), "flight_end": day(30), "buyer_seat_ids": []string{"seat-1"}})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, suite.url+"/api/v1/deals/push", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", suiteUA)
		code, out := doJSON(t, hc, req)
		res, _ := out["results"].([]any)
		if code != 200 || out["pushed_to"] != float64(1) || out["succeeded"] != float64(1) || len(res) != 1 {
			t.Fatalf("push %s: %d %v", dealID, code, out)
		}
		r := res[0].(map[string]any)
		eq(t, "results[0].buyer_status", r["buyer_status"], any("pending"))
		eq(t, "results[0].response_code", r["response_code"], any(float64(200)))
	}
	status := func(dealID string) any {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet,
			suite.url+"/api/v1/deals/"+dealID+"/buyer-status?buyer_url="+url.QueryEscape(buyerURL), nil)
		req.Header.Set("User-Agent", suiteUA)
		code, out := doJSON(t, hc, req)
		if code != 200 || out["error"] != nil {
			t.Fatalf("buyer-status %s: %d %v", dealID, code, out)
		}
		return out["buyer_status"]
	}
	decide := func(dealID, verb string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+buyer.HTTPAddr+"/deals/"+dealID+"/"+verb, nil)
		req.Header.Set("X-API-Key", cfg.APIKey)
		if code, out := doJSON(t, http.DefaultClient, req); code != 200 {
			t.Fatalf("%s %s: %d %v", verb, dealID, code, out)
		}
	}

	yes, no := "CONF-"+runID+"-A", "CONF-"+runID+"-R"
	push(yes)
	push(no)
	eq(t, "status before approval", status(yes), any("pending"))
	decide(yes, "approve")
	checkfor.Check(t, caseTimeout, 50*time.Millisecond, func() error {
		if s := status(yes); s != "active" {
			return fmt.Errorf("status %v, want active (approved, set up in the DSP, inside its flight)", s)
		}
		return nil
	})
	decide(no, "reject")
	eq(t, "status after rejection", status(no), any("rejected"))
	if acts := dsp.Activations(); len(acts) != 1 || acts[0].DealID != yes {
		t.Errorf("DSP activations %+v, want %s once", acts, yes)
	}
}

func doJSON(t *testing.T, hc *http.Client, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s %s: %d %s", req.Method, req.URL, resp.StatusCode, b)
	}
	return resp.StatusCode, out
}

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/api"
	"github.com/dealflow/dealflow/internal/api/apitest"
	"github.com/dealflow/dealflow/internal/app"
	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/checkfor"
	"github.com/dealflow/dealflow/internal/config"
	"github.com/dealflow/dealflow/internal/demo"
	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/internal/sandbox"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/services/activator"
)

const dspSecret = "e2e-dsp-secret-0123456789"

func startDSP(t *testing.T) *sandbox.DSP {
	t.Helper()
	dsp, err := sandbox.StartDSP(dspSecret)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dsp.Close() })
	return dsp
}

// TestCampaignDealsActivateThroughSandboxDSP: a campaign books against the
// sandbox market with the activator running against the sandbox DSP; the
// DSP's first answer is a 503. Every IAB deal ends DealActivated, set up
// once in the DSP with the seller's activation instructions and OpenRTB
// deal; the 503 is a retryable DealActivationFailed with its reason, and
// its retry succeeds; AdCP media buys are not sent to the DSP.
func TestCampaignDealsActivateThroughSandboxDSP(t *testing.T) {
	if testing.Short() {
		t.Skip("a whole campaign and its activations")
	}
	dsp := startDSP(t)
	dsp.SetFaults(sandbox.DSPFaults{FailNext: 1})
	s := startStack(t, func(c *config.Config) {
		c.Stages = append(c.Stages, activator.Stage)
		c.DSP, c.DSPSecret = dsp.URL, dspSecret
	})
	req := demo.SampleCampaign("e2e-activate", "adaptive")
	for _, sel := range s.market.Sellers {
		if !sel.InRegistry {
			req.Sellers = append(req.Sellers, sel.URL)
		}
	}
	s.submit(t, req)

	var (
		booked    = map[string]events.DealBooked{} // IAB deals by deal id
		adcp      int
		activated = map[string]events.DealActivated{}
		failed    []events.DealActivationFailed
		completed bool
	)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	err := s.app.Bus.Follow(ctx, req.CampaignID, func(e events.Event) bool {
		switch e.Type() {
		case events.KindDealBooked.Type:
			d, err := events.PayloadOf[events.DealBooked](e, events.KindDealBooked)
			if err != nil {
				t.Error(err)
				return false
			}
			if d.Protocol.IsADCP() {
				adcp++
			} else {
				booked[d.DealID] = d
			}
		case events.KindDealActivated.Type:
			a, _ := events.PayloadOf[events.DealActivated](e, events.KindDealActivated)
			if _, dup := activated[a.DealID]; dup {
				t.Errorf("deal %s activated twice", a.DealID)
			}
			activated[a.DealID] = a
		case events.KindDealActivationFailed.Type:
			f, _ := events.PayloadOf[events.DealActivationFailed](e, events.KindDealActivationFailed)
			failed = append(failed, f)
		case events.KindCampaignCompleted.Type:
			completed = true
		}
		return !completed || len(activated) < len(booked)
	})
	if err != nil {
		t.Fatalf("campaign %s: completed %v, %d IAB deals, %d activated: %v", req.CampaignID, completed, len(booked), len(activated), err)
	}
	if len(booked) == 0 || adcp == 0 {
		t.Fatalf("%d IAB deals and %d AdCP buys: want both families", len(booked), adcp)
	}
	acts := map[string]sandbox.DSPActivation{}
	for _, a := range dsp.Activations() {
		acts[a.DealID] = a
	}
	if len(acts) != len(booked) {
		t.Fatalf("the DSP holds %d activations for %d IAB deals (AdCP buys are never sent)", len(acts), len(booked))
	}
	for id, d := range booked {
		a, ok := activated[id]
		if !ok || a.Origin != events.OriginBooked || a.SeatStatus != events.SeatReadyToServe || a.LineKey != d.LineKey || a.DSP != "webhook" {
			t.Fatalf("deal %s: activated %+v", id, a)
		}
		act := acts[id]
		if act.IdempotencyKey != a.IdempotencyKey || a.DSPRef != act.ID {
			t.Fatalf("deal %s: DSP %+v, event %+v", id, act, a)
		}
		var body activator.Activation
		if err := json.Unmarshal(act.Body, &body); err != nil {
			t.Fatal(err)
		}
		if body.Deal.ActivationInstructions["ttd"] == "" || body.Deal.OpenRTB == nil || body.Deal.OpenRTB.ID != id ||
			body.Deal.OpenRTB.BidFloorMicros != d.BidFloorMicros || body.CampaignID != req.CampaignID {
			t.Fatalf("deal %s activated without the seller's terms: %s", id, act.Body)
		}
		seat, found, err := s.app.Seats.Get(ctx, activator.SeatKey(d.SellerURL, id))
		if err != nil || !found || seat.Status != events.SeatReadyToServe || seat.Activation.IdempotencyKey != a.IdempotencyKey {
			t.Fatalf("deal %s: seat %+v %v %v", id, seat, found, err)
		}
	}
	if len(failed) != 1 || !failed[0].Retryable || failed[0].Code != activator.CodeHTTPError || !strings.Contains(failed[0].Reason, "503") ||
		failed[0].Attempt != 1 || activated[failed[0].DealID].Attempts != 2 {
		t.Fatalf("failures %+v: want one retryable 503 whose deal activated on its second attempt", failed)
	}
}

// TestPushedDealFromSandboxSeller: a sandbox seller pushes deals exactly as
// the seller-agent does (its POST /api/v1/deals/push, to this buyer's
// /deals with the token the buyer issued it); each becomes a DealReceived
// and a deal to approve; the seller's GET /api/v1/deals/{id}/buyer-status
// follows each through the lifecycle: pending, approved (DSP down),
// ready_to_serve, active and complete (by the flight), rejected.
func TestPushedDealFromSandboxSeller(t *testing.T) {
	if testing.Short() {
		t.Skip("the seller's push and status against a running buyer")
	}
	m, err := sandbox.Start(context.Background(), sandbox.DefaultMarket())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	seller := m.Sellers[0]
	const token = "e2e-seller-push-token-01"
	tokens, err := api.ParseSellerTokens([]byte(fmt.Sprintf(`{"sellers":{%q:%q}}`, seller.URL, token)))
	if err != nil {
		t.Fatal(err)
	}
	dsp := startDSP(t)
	cfg := config.Defaults()
	cfg.DataDir, cfg.NATSPort, cfg.Stages, cfg.HTTPAddr, cfg.APIKey, cfg.AllowPrivate = t.TempDir(), 0, []string{activator.Stage}, "127.0.0.1:0", "buyer-key", true
	cfg.DSP, cfg.DSPSecret = dsp.URL, dspSecret
	a, err := app.Start(context.Background(), cfg, natstest.Logger(), app.Options{SellerTokens: tokens})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	buyerURL := "http://" + a.HTTPAddr + "/deals"
	key := map[string]string{"X-API-Key": "buyer-key"}
	today := time.Now().UTC()
	day := func(d int) string { return today.AddDate(0, 0, d).Format(time.DateOnly) }

	push := func(dealID, start, end string) {
		t.Helper()
		code, out := sellerJSON(t, "POST", seller.URL+"/api/v1/deals/push", map[string]any{"deal_id": dealID, "buyer_urls": []string{buyerURL},
			"buyer_api_keys": []string{token}, "deal_type": "PG", "price": 31.25, "impressions": 250000, "flight_start": start, "flight_end": end,
			"buyer_seat_ids": []string{"ttd-seat-123"}, "name": "Upfront " + dealID})
		res, _ := out["results"].([]any)
		if code != 200 || out["succeeded"] != float64(1) || len(res) != 1 || res[0].(map[string]any)["buyer_status"] != "pending" {
			t.Fatalf("push %s: %d %v", dealID, code, out)
		}
	}
	status := func(dealID string) string {
		t.Helper()
		code, out := sellerJSON(t, "GET", seller.URL+"/api/v1/deals/"+dealID+"/buyer-status?buyer_url="+buyerURL, nil)
		if code != 200 || out["error"] != nil {
			t.Fatalf("buyer-status %s: %d %v", dealID, code, out)
		}
		return out["buyer_status"].(string)
	}
	waitStatus := func(dealID, want string) {
		t.Helper()
		checkfor.Check(t, 30*time.Second, 50*time.Millisecond, func() error {
			if got := status(dealID); got != want {
				return fmt.Errorf("deal %s is %s, want %s", dealID, got, want)
			}
			return nil
		})
	}
	approve := func(dealID string) {
		t.Helper()
		if code, out := apitest.JSON(t, "POST", "http://"+a.HTTPAddr+"/deals/"+dealID+"/approve", nil, key); code != 200 {
			t.Fatalf("approve %s: %d %v", dealID, code, out)
		}
	}

	push("PUSH-FUTURE", day(10), day(40))
	push("PUSH-NOW", day(-1), day(20))
	push("PUSH-DONE", day(-30), day(-1))
	push("PUSH-NO", day(5), day(35))
	for _, id := range []string{"PUSH-FUTURE", "PUSH-NOW", "PUSH-DONE", "PUSH-NO"} {
		if got := status(id); got != "pending" {
			t.Fatalf("%s: %s before approval", id, got)
		}
	}
	// A deal to approve, like any line: listed pending, with the terms.
	code, out := apitest.JSON(t, "GET", "http://"+a.HTTPAddr+"/deals?status=pending", nil, key)
	if code != 200 || out["total"] != float64(4) {
		t.Fatalf("pending: %d %v", code, out)
	}
	for _, d := range out["deals"].([]any) {
		v := d.(map[string]any)
		terms := v["terms"].(map[string]any)
		if v["seller_url"] != seller.URL || terms["fixed_cpm_micros"] != float64(31_250_000) || terms["seller_id"] == "" ||
			terms["openrtb_params"].(map[string]any)["at"] != float64(3) {
			t.Fatalf("pushed deal %v", v)
		}
		// ... and an event.
		received := false
		fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = a.Bus.Follow(fctx, v["campaign_id"].(string), func(e events.Event) bool {
			received = e.Type() == events.KindDealReceived.Type
			return !received
		})
		cancel()
		if !received {
			t.Fatalf("no DealReceived for %v", v["deal_id"])
		}
	}

	// Approved while the DSP refuses connections: approved, not ready.
	_ = dsp.Close()
	approve("PUSH-FUTURE")
	waitStatus("PUSH-FUTURE", "approved")
	dsp2, err := sandbox.StartDSP(dspSecret)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dsp2.Close() })
	// The activator keeps the URL it started with; a restart on the new
	// one takes the deal up where it is (approved, attempts made).
	a.Stop()
	cfg.DSP = dsp2.URL
	a, err = app.Start(context.Background(), cfg, natstest.Logger(), app.Options{SellerTokens: tokens})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	buyerURL = "http://" + a.HTTPAddr + "/deals"
	waitStatus("PUSH-FUTURE", "ready_to_serve")
	approve("PUSH-NOW")
	waitStatus("PUSH-NOW", "active")
	approve("PUSH-DONE")
	waitStatus("PUSH-DONE", "complete")
	if code, _ := apitest.JSON(t, "POST", "http://"+a.HTTPAddr+"/deals/PUSH-NO/reject", map[string]any{"reason": "not this quarter"}, key); code != 200 {
		t.Fatal(code)
	}
	if got := status("PUSH-NO"); got != "rejected" {
		t.Fatalf("PUSH-NO: %s", got)
	}
	if n := len(dsp2.Activations()); n != 3 {
		t.Fatalf("%d activations, want the 3 approved deals", n)
	}
}

// sellerJSON calls a sandbox seller (no OpenAPI check: it is not this
// API).
func sellerJSON(t *testing.T, method, url string, body any) (int, map[string]any) {
	t.Helper()
	code, b, _ := httpDo(t, method, url, "", body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s %s: %d %s: %v", method, url, code, b, err)
	}
	return code, out
}

// TestActivationKilledMidCallIsNotSentTwice: the activator is stopped
// while the DSP holds the activations it was sent (the DSP answers slowly,
// the process is shut without waiting for its handlers), then a new
// process takes the deals up from the redelivered DealBooked: each deal is
// set up once in the DSP, every request for it carried its one key, and
// DealActivated is published once per deal.
func TestActivationKilledMidCallIsNotSentTwice(t *testing.T) {
	if testing.Short() {
		t.Skip("two processes on one store")
	}
	dsp := startDSP(t)
	dsp.SetFaults(sandbox.DSPFaults{Slow: time.Minute})
	dir := t.TempDir()
	cfg := config.Defaults()
	cfg.DataDir, cfg.NATSPort, cfg.Stages, cfg.AllowPrivate = dir, 0, []string{activator.Stage}, true
	cfg.DSP, cfg.DSPSecret, cfg.DSPTimeout = dsp.URL, dspSecret, 90*time.Second
	tune := func(sc *bus.StageConfig) { sc.AckWait, sc.DrainTimeout = 2*time.Second, 200*time.Millisecond }
	a, err := app.Start(context.Background(), cfg, natstest.Logger(), app.Options{StageTuning: tune})
	if err != nil {
		t.Fatal(err)
	}
	const campaign, deals = "e2e-kill-activate", 3
	for i := range deals {
		id := fmt.Sprintf("DEMO-KILL%d", i)
		d := events.DealBooked{CampaignID: campaign, LineKey: "line-" + id, SellerURL: "http://127.0.0.1:9001", Protocol: events.ProtocolIAB,
			PackageID: "pkg-1", QuoteID: "qt-" + id, DealID: id, DealType: "PD", CPMMicros: 20_000_000, AgreedCPMMicros: 20_000_000, Impressions: 1000,
			SpendMicros: 20_000_000, Currency: "USD", Tier: events.TierAgency, ActivationInstructions: map[string]string{"ttd": "deal " + id},
			OpenRTB: &events.OpenRTBDeal{ID: id, BidFloorMicros: 20_000_000, Currency: "USD", AuctionType: 1}, BookedAt: time.Now().UTC()}
		e, err := events.New(events.KindDealBooked, events.NewID(), "booker", campaign, d)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Bus.Publish(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	checkfor.Until(t, 20*time.Second, "the DSP to hold every activation", func() bool { return len(dsp.Activations()) == deals })
	// Killed mid-call: the handlers are abandoned after 200ms.
	a.Stop()
	dsp.SetFaults(sandbox.DSPFaults{})
	a, err = app.Start(context.Background(), cfg, natstest.Logger(), app.Options{StageTuning: tune})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	var mu sync.Mutex
	activated := map[string]int{}
	ids := map[string]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_ = a.Bus.Follow(ctx, campaign, func(e events.Event) bool {
		if e.Type() == events.KindDealActivated.Type {
			p, _ := events.PayloadOf[events.DealActivated](e, events.KindDealActivated)
			mu.Lock()
			defer mu.Unlock()
			activated[p.DealID]++
			ids[e.ID()] = true
			if p.Attempts < 2 {
				t.Errorf("deal %s activated on attempt %d: the first was cut off", p.DealID, p.Attempts)
			}
		}
		return len(activated) < deals
	})
	if len(activated) != deals {
		t.Fatalf("activated %v", activated)
	}
	for _, act := range dsp.Activations() {
		if act.Requests < 2 {
			t.Fatalf("activation %+v: want the cut-off request and its replay", act)
		}
	}
	if len(dsp.Activations()) != deals {
		t.Fatalf("%d activations for %d deals", len(dsp.Activations()), deals)
	}
	keys := map[string]map[string]bool{}
	for _, r := range dsp.Requests() {
		if keys[r.DealID] == nil {
			keys[r.DealID] = map[string]bool{}
		}
		keys[r.DealID][r.IdempotencyKey] = true
	}
	for id, k := range keys {
		if len(k) != 1 {
			t.Fatalf("deal %s sent under %d keys", id, len(k))
		}
	}
	// Published once each: a further redelivery would re-publish under
	// the same id, which the stream drops.
	env := &natstest.Env{Bus: a.Bus}
	if n := env.SubjectCount(t, events.KindDealActivated.SubjectFor(campaign)); n != deals {
		t.Fatalf("DealActivated stored %d times for %d deals", n, deals)
	}
}

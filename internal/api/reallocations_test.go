package api_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/api/apitest"
	"github.com/dealflow/dealflow/internal/app"
	"github.com/dealflow/dealflow/internal/checkfor"
	"github.com/dealflow/dealflow/internal/config"
	"github.com/dealflow/dealflow/internal/demo"
	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/pkg/events"
)

// reallocApp is a process with the bookings API and the reallocator, and
// nothing else: the test publishes the booked lines and their pacing.
func reallocApp(t *testing.T) (*app.App, string) {
	t.Helper()
	cfg := config.Defaults()
	cfg.DataDir, cfg.Stages, cfg.HTTPAddr, cfg.APIKey = t.TempDir(), []string{"reallocator"}, "127.0.0.1:0", apiKey
	a, err := app.Start(context.Background(), cfg, natstest.Logger(), app.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	return a, "http://" + a.HTTPAddr
}

// underDelivering submits a campaign (not auto-approved, never shopped:
// no booker runs) and publishes two booked lines, the second on plan and
// the first under-delivering.
func underDelivering(t *testing.T, a *app.App, id string) {
	t.Helper()
	req := demo.SampleCampaign(id, "adaptive")
	req.AutoApprove = false
	if _, err := a.Campaigns.Submit(t.Context(), a.Bus, req, time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	pub := func(k events.Kind, stage string, p any) {
		e, err := events.New(k, events.NewID(), stage, id, p)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Bus.Publish(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	for _, key := range []string{"a", "b"} {
		pub(events.KindDealBooked, events.StageBooker, events.DealBooked{CampaignID: id, LineKey: key, SellerURL: "http://127.0.0.1:9", PackageID: "p" + key,
			DealID: "D" + key, SpendMicros: 10_000_000_000, Tier: events.TierAgency})
	}
	pub(events.KindDeliveryReported, "pacer", events.DeliveryReported{CampaignID: id, LineKey: "b", Seq: 1, SellerURL: "http://127.0.0.1:9", PackageID: "pb",
		PlannedSpendMicros: 10_000_000_000, SpendMicros: 2_000_000_000, FlightElapsed: 0.2, Status: events.PacingOnTrack, PacingIndex: 1})
	// The deviation after the snapshot: the reallocator's consumer takes
	// them in order.
	time.Sleep(200 * time.Millisecond)
	pub(events.KindPacingDeviation, "pacer", events.PacingDeviation{CampaignID: id, LineKey: "a", Seq: 1, SinceSeq: 1, Direction: events.DeviationUnder,
		SellerURL: "http://127.0.0.1:9", PackageID: "pa", FlightElapsed: 0.2, SpendMicros: 1_000_000_000, PlannedSpendMicros: 10_000_000_000, Tolerance: 0.2})
}

func revisions(t *testing.T, base, id string) []any {
	t.Helper()
	code, out := apitest.JSON(t, "GET", base+"/bookings/"+id+"/reallocations", nil, auth)
	if code != 200 {
		t.Fatalf("list: %d %v", code, out)
	}
	return out["reallocations"].([]any)
}

func statusOf(t *testing.T, base, id string, n int) (string, map[string]any) {
	t.Helper()
	rs := revisions(t, base, id)
	if len(rs) < n {
		return "", nil
	}
	r := rs[n-1].(map[string]any)
	return r["status"].(string), r
}

// TestReallocationApprovalThroughTheAPI: a campaign that is not
// auto-approved waits for the buyer: its proposal is listed, approving it
// has the reallocator apply it (its decrease requested: applying), a second
// decision is a 409; a rejected proposal is never applied.
func TestReallocationApprovalThroughTheAPI(t *testing.T) {
	a, base := reallocApp(t)
	if code, out := apitest.JSON(t, "GET", base+"/bookings/none/reallocations", nil, auth); code != 404 {
		t.Fatalf("unknown campaign: %d %v", code, out)
	}
	for _, id := range []string{"realloc-ok", "realloc-no"} {
		underDelivering(t, a, id)
		if rs := revisions(t, base, id); len(rs) > 1 {
			t.Fatalf("%s: %v", id, rs)
		}
	}
	for _, id := range []string{"realloc-ok", "realloc-no"} {
		checkfor.Check(t, 20*time.Second, 50*time.Millisecond, func() error {
			if st, _ := statusOf(t, base, id, 1); st != "proposed" {
				return fmt.Errorf("%s: revision 1 is %q, want proposed", id, st)
			}
			return nil
		})
	}
	_, r := statusOf(t, base, "realloc-ok", 1)
	p := r["proposal"].(map[string]any)
	moves := p["moves"].([]any)
	if len(moves) != 1 || moves[0].(map[string]any)["to_line_key"] != "b" || p["line_key"] != "a" || p["committed_after_micros"].(float64) > p["budget_micros"].(float64) {
		t.Fatalf("proposal %v", p)
	}

	if code, out := apitest.JSON(t, "POST", base+"/bookings/realloc-ok/reallocations/1/approve", nil, auth); code != 202 || out["status"] != "approved" {
		t.Fatalf("approve: %d %v", code, out)
	}
	checkfor.Check(t, 20*time.Second, 50*time.Millisecond, func() error {
		st, r := statusOf(t, base, "realloc-ok", 1)
		if st != "applying" || r["decided_by"] != "api" || len(r["changes"].([]any)) != 1 {
			return fmt.Errorf("revision 1 is %q: %v", st, r)
		}
		return nil
	})
	for _, verb := range []string{"approve", "reject"} {
		if code, out := apitest.JSON(t, "POST", base+"/bookings/realloc-ok/reallocations/1/"+verb, nil, auth); code != 409 {
			t.Fatalf("%s again: %d %v", verb, code, out)
		}
	}
	if code, out := apitest.JSON(t, "POST", base+"/bookings/realloc-ok/reallocations/7/approve", nil, auth); code != 404 {
		t.Fatalf("unknown revision: %d %v", code, out)
	}
	if code, out := apitest.JSON(t, "POST", base+"/bookings/realloc-ok/reallocations/x/approve", nil, auth); code != 400 {
		t.Fatalf("bad revision: %d %v", code, out)
	}

	if code, out := apitest.JSON(t, "POST", base+"/bookings/realloc-no/reallocations/1/reject", map[string]any{"reason": "not now"}, auth); code != 202 || out["status"] != "rejected" {
		t.Fatalf("reject: %d %v", code, out)
	}
	checkfor.Check(t, 20*time.Second, 50*time.Millisecond, func() error {
		if st, r := statusOf(t, base, "realloc-no", 1); st != "rejected" || r["reason"] != "not now" || len(r["changes"].([]any)) != 0 {
			return fmt.Errorf("revision 1 is %q: %v", st, r)
		}
		return nil
	})
	if code, out := apitest.JSON(t, "POST", base+"/bookings/realloc-no/reallocations/1/approve", nil, auth); code != 409 {
		t.Fatalf("approve a rejected revision: %d %v", code, out)
	}
}

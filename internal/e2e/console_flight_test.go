package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/dealflow/dealflow/internal/api"
	"github.com/dealflow/dealflow/internal/app"
	"github.com/dealflow/dealflow/internal/config"
	"github.com/dealflow/dealflow/internal/demo"
	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/internal/sandbox"
	"github.com/dealflow/dealflow/services/activator"
)

// flightConsoleStack is the console's stack with booked lines delivering on
// an accelerated clock (one flight day in day), the activator against the
// sandbox DSP (whose first answer fails), and a seller allowed to push
// deals to the buyer with token.
func flightConsoleStack(t *testing.T, day time.Duration, token string) (*stack, string, *sandbox.Market) {
	t.Helper()
	ctx := context.Background()
	m, err := sandbox.Start(ctx, sandbox.DefaultMarket(), sandbox.WithTimeScale(day))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	dsp := startDSP(t)
	dsp.SetFaults(sandbox.DSPFaults{FailNext: 1})
	tokens, err := api.ParseSellerTokens(fmt.Appendf(nil, `{"sellers":{%q:%q}}`, m.Sellers[0].URL, token))
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Defaults()
	cfg.DataDir, cfg.NATSPort, cfg.RegistryURL, cfg.AllowPrivate, cfg.Window = t.TempDir(), 0, m.RegistryURL, true, 45*time.Second
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.TimeScale, cfg.PacingEvery = day, 24*time.Hour
	cfg.Stages = append(cfg.Stages, activator.Stage)
	cfg.DSP, cfg.DSPSecret = dsp.URL, dspSecret
	buyer := demo.SampleCampaign("x", "adaptive").Buyer
	a, err := app.Start(ctx, cfg, natstest.Logger(), app.Options{Credentials: m.Credentials(), Buyer: &buyer, SweepEvery: 200 * time.Millisecond, SellerTokens: tokens})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	return &stack{market: m, app: a}, "http://" + a.HTTPAddr, m
}

// TestConsoleFollowsTheFlight opens a campaign whose flight plays in a few
// seconds: the page follows it live after CampaignCompleted (the stream
// with follow=flight), draws each booked line's spend and impressions
// against its plan, shows the under-delivering line's deviation with its
// reason and the deals' activations (a retried one included), totals what
// GET /delivery says, and says "finished" once every line had its final
// snapshot, when no line offers a change any more. Then the pushed deals page: a deal a seller pushed is approved,
// another rejected, from the page.
func TestConsoleFollowsTheFlight(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: skipped with -short")
	}
	const token = "console-seller-push-token"
	b := newBrowser(t)
	s, base, m := flightConsoleStack(t, 150*time.Millisecond, token)

	req := demo.SampleCampaign("console-flight", "adaptive")
	s.submit(t, req)
	b.do("open the campaign", chromedp.Navigate(base+"/#/c/"+req.CampaignID), chromedp.WaitVisible(chromedp.ID("campaign-view")))
	b.wait("the campaign booked, its flight followed", `document.querySelector('#c-live').textContent === '● live — following the flight'`+
		` && document.querySelectorAll('#flight-lines .line-card').length >= 3`, 90*time.Second)
	b.wait("charts with delivery drawn", `[...document.querySelectorAll('#flight-lines .line-card')].some(c => !!c.querySelector('.flight-spend svg polyline.delivered') && !!c.querySelector('.flight-imps svg polyline.delivered') && !!c.querySelector('.flight-spend svg line.plan'))`, 60*time.Second)
	b.shot("flight-live")
	b.wait("the flight over", `document.querySelector('#c-live').textContent === 'finished' && document.querySelector('#flight-summary').textContent.includes('flight over')`, 120*time.Second)
	b.shot("flight-over")

	// The page against the API's own account of the flight.
	code, body, _ := httpDo(t, "GET", base+"/bookings/"+req.CampaignID+"/delivery", "", nil)
	var d api.Delivery
	if code != 200 || json.Unmarshal(body, &d) != nil || !d.Done {
		t.Fatalf("GET delivery: %d %.300s", code, body)
	}
	type card struct {
		Key, Status, Final string
		Points, Devs       int
		Reasons            []string
	}
	cards := mustEval[[]card](b, `[...document.querySelectorAll('#flight-lines .line-card')].map(c => ({Key: c.dataset.lineKey, Status: c.dataset.status, Final: c.dataset.final,
		Points: c.querySelectorAll('.flight-spend svg circle').length,
		Devs: [...c.querySelectorAll('.deviations li')].reduce((n, li) => n + Number(li.dataset.count), 0),
		Reasons: [...c.querySelectorAll('.deviations li')].map(li => li.textContent)}))`)
	if len(cards) != len(d.Lines) {
		t.Fatalf("the page shows %d lines, the API %d", len(cards), len(d.Lines))
	}
	byKey := map[string]api.DeliveryLine{}
	for _, l := range d.Lines {
		byKey[l.LineKey] = l
	}
	under := false
	for _, c := range cards {
		l, ok := byKey[c.Key]
		if !ok || c.Status != l.Status || c.Final != "1" || c.Points != len(l.Snapshots) || c.Devs != len(l.Deviations) {
			t.Fatalf("line %s on the page %+v, in the API: status %s, %d snapshots, %d deviations", c.Key, c, l.Status, len(l.Snapshots), len(l.Deviations))
		}
		// One item per episode, with the reason of its latest deviation.
		var latest []string
		for i, dv := range l.Deviations {
			if i+1 == len(l.Deviations) || l.Deviations[i+1].SinceSeq != dv.SinceSeq || l.Deviations[i+1].Direction != dv.Direction {
				latest = append(latest, dv.Reason)
			}
		}
		if len(c.Reasons) != len(latest) {
			t.Fatalf("line %s: %d deviation episodes shown, %d in the API", c.Key, len(c.Reasons), len(latest))
		}
		for i, r := range c.Reasons {
			if !strings.Contains(r, latest[i]) {
				t.Fatalf("episode %d of %s reads %q, its latest reason is %q", i, c.Key, r, latest[i])
			}
			under = under || strings.HasPrefix(r, "under")
		}
	}
	if !under {
		t.Fatal("no under-delivery shown (the default market's Metro Mobile under-delivers)")
	}
	shown := mustEval[string](b, `document.querySelector('#flight-summary').textContent`)
	var dollars float64
	if _, err := fmt.Sscanf(strings.ReplaceAll(strings.TrimPrefix(shown, "delivered $"), ",", ""), "%f", &dollars); err != nil ||
		math.Abs(dollars*1e6-float64(d.DeliveredSpendMicros)) > float64(len(d.Lines))*10000 {
		t.Fatalf("the page says %q, the API delivered %d micros", shown, d.DeliveredSpendMicros)
	}
	// Activations: each IAB deal activated, the first after a retry.
	acts := mustEval[[]string](b, `[...document.querySelectorAll('#flight-lines .activations li')].map(li => li.dataset.activation + ' ' + li.textContent)`)
	var activated, retried int
	for _, a := range acts {
		if strings.HasPrefix(a, "activated") {
			activated++
			if strings.Contains(a, "after 2 attempts") {
				retried++
			}
		}
	}
	if activated == 0 || activated != len(d.Activations) || retried != 1 {
		t.Fatalf("activations on the page %q; the API has %d", acts, len(d.Activations))
	}
	// The flight is over: no line offers a change any more.
	if n := mustEval[int](b, `document.querySelectorAll('.line-card .ops button').length + (document.getElementById('cancel-campaign').hidden ? 0 : 1)`); n != 0 {
		t.Fatalf("%d line or campaign controls shown after the flight", n)
	}

	// Pushed deals: one approved, one rejected, from the page.
	seller := m.Sellers[0]
	push := func(id string) {
		t.Helper()
		day := func(n int) string { return time.Now().UTC().AddDate(0, 0, n).Format(time.DateOnly) }
		code, out := sellerJSON(t, "POST", seller.URL+"/api/v1/deals/push", map[string]any{"deal_id": id, "buyer_urls": []string{base + "/deals"},
			"buyer_api_keys": []string{token}, "deal_type": "PG", "price": 31.25, "impressions": 250000, "flight_start": day(10), "flight_end": day(40),
			"name": "Upfront " + id})
		if code != 200 || out["succeeded"] != float64(1) {
			t.Fatalf("push %s: %d %v", id, code, out)
		}
	}
	push("CONSOLE-YES")
	push("CONSOLE-NO")
	b.do("open the pushed deals", chromedp.Navigate(base+"/#/deals"), chromedp.WaitVisible(chromedp.ID("deals-view")))
	b.wait("both pending", `['CONSOLE-YES','CONSOLE-NO'].every(id => !!document.querySelector('#pushed tbody tr[data-deal="'+id+'"][data-status="pending"] .deal-approve'))`, 20*time.Second)
	b.shot("pushed-deals")
	b.click("approve one", `#pushed tbody tr[data-deal="CONSOLE-YES"] .deal-approve`)
	b.wait("approved", `document.querySelector('#deals-msg').textContent.startsWith('CONSOLE-YES: approved') && !document.querySelector('#pushed tbody tr[data-deal="CONSOLE-YES"]')`, 20*time.Second)
	b.do("give a reason", chromedp.SetValue(chromedp.ID("deal-reason"), "not this quarter"))
	b.click("reject the other", `#pushed tbody tr[data-deal="CONSOLE-NO"] .deal-reject`)
	b.wait("rejected", `document.querySelector('#deals-msg').textContent.startsWith('CONSOLE-NO: rejected') && !document.querySelector('#pushed tbody tr[data-deal="CONSOLE-NO"]')`, 20*time.Second)
	for id, want := range map[string]string{"CONSOLE-YES": "", "CONSOLE-NO": "rejected"} {
		code, body, _ := httpDo(t, "GET", base+"/deals/"+id, "", nil)
		var v api.DealView
		if code != 200 || json.Unmarshal(body, &v) != nil || (want != "" && string(v.Status) != want) || (want == "" && (v.Status == "pending" || v.Status == "rejected")) {
			t.Fatalf("%s after the page's decision: %d %.300s", id, code, body)
		}
		if want == "rejected" && !strings.Contains(v.Reason, "not this quarter") {
			t.Fatalf("%s rejected with reason %q", id, v.Reason)
		}
	}
	b.do("all deals", chromedp.SetValue(chromedp.ID("deal-filter"), ""), chromedp.Evaluate[chromedp.Void](`document.getElementById('deal-filter').dispatchEvent(new Event('change'))`))
	b.wait("both listed with their status", `!!document.querySelector('#pushed tbody tr[data-deal="CONSOLE-NO"][data-status="rejected"]') && !!document.querySelector('#pushed tbody tr[data-deal="CONSOLE-YES"]:not([data-status="pending"])')`, 20*time.Second)
	b.shot("pushed-deals-decided")
}

// TestConsolePausesAndReallocates follows a campaign approved by hand
// (so its reallocations wait for the buyer too) over a slower flight: from
// the page an AdCP line is paused, then resumed, each applied at the seller
// (the ledger says so too); the reallocation proposed for the
// under-delivering line is approved with its button and applied; an IAB
// line offers no pause (its seller cannot pause a deal); a page whose server
// lists none of those routes in its document shows none of the controls;
// the page says "finished" at the end.
func TestConsolePausesAndReallocates(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: skipped with -short")
	}
	b := newBrowser(t)
	s, base, _ := flightConsoleStack(t, 700*time.Millisecond, "console-seller-push-token")
	req := demo.SampleCampaign("console-ops", "adaptive")
	req.AutoApprove = false
	s.submit(t, req)
	waitJob(t, base, req.CampaignID, "awaiting_approval")
	if code, body, _ := httpDo(t, "POST", base+"/bookings/"+req.CampaignID+"/approve-all", "", nil); code != 200 {
		t.Fatalf("approve: %d %s", code, body)
	}
	b.do("open the campaign", chromedp.Navigate(base+"/#/c/"+req.CampaignID), chromedp.WaitVisible(chromedp.ID("campaign-view")))
	adcp := `document.querySelector('#flight-lines .line-card[data-protocol="adcp"][data-state="%s"]')`
	b.wait("an AdCP line with its pause button", fmt.Sprintf(adcp, "live")+`?.querySelector('.op-pause') && !document.getElementById('cancel-campaign').hidden`, 60*time.Second)
	if n := mustEval[int](b, `document.querySelectorAll('#flight-lines .line-card[data-protocol="iab-seller-agent"] .op-pause').length`); n != 0 {
		t.Fatalf("%d IAB lines offer a pause", n)
	}
	key := mustEval[string](b, fmt.Sprintf(adcp, "live")+`.dataset.lineKey`)
	card := fmt.Sprintf(`document.querySelector('#flight-lines .line-card[data-line-key=%q]')`, key)
	b.click("pause it", fmt.Sprintf(`#flight-lines .line-card[data-line-key=%q] .op-pause`, key))
	b.wait("paused at the seller", card+`.dataset.state === 'paused' && `+card+`.querySelector('.line-msg').textContent.startsWith('pause applied') && !!`+card+`.querySelector('.op-resume')`, 30*time.Second)
	b.shot("line-paused")
	lineState := func() string {
		t.Helper()
		j := waitJob(t, base, req.CampaignID, "completed")
		for _, l := range j.Lines {
			if l.LineKey == key {
				return string(l.State)
			}
		}
		t.Fatalf("line %s not in the job's lines", key)
		return ""
	}
	if st := lineState(); st != "paused" {
		t.Fatalf("the ledger says the paused line is %s", st)
	}
	b.click("resume it", fmt.Sprintf(`#flight-lines .line-card[data-line-key=%q] .op-resume`, key))
	b.wait("live again", card+`.dataset.state === 'live' && `+card+`.querySelector('.line-msg').textContent.startsWith('resume applied')`, 30*time.Second)
	if st := lineState(); st != "live" {
		t.Fatalf("the ledger says the resumed line is %s", st)
	}

	// A server without the line-change and reallocation routes (its
	// document lists none): the page offers none of those controls.
	old := b.newTab()
	if _, err := chromedp.Call(old.ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `(() => {
		const f = window.fetch;
		window.fetch = async (u, init) => {
			const r = await f(u, init);
			if (String(u) !== '/openapi.json') return r;
			const d = await r.json();
			for (const p of Object.keys(d.paths)) if (p.includes('/lines/') || p.endsWith('/cancel') || p.includes('/reallocations')) delete d.paths[p];
			return new Response(JSON.stringify(d), { headers: { 'Content-Type': 'application/json' } });
		};
	})();`}); err != nil {
		t.Fatal(err)
	}
	old.do("open the campaign without the routes", chromedp.Navigate(base+"/#/c/"+req.CampaignID))
	old.wait("its lines", `document.querySelectorAll('#flight-lines .line-card').length >= 3 && document.querySelector('#c-live').textContent.includes('following the flight')`, 30*time.Second)
	if n := mustEval[int](old, `document.querySelectorAll('.line-card .ops button, .realloc button').length + (document.getElementById('cancel-campaign').hidden ? 0 : 1)`); n != 0 {
		t.Fatalf("%d controls shown without their routes", n)
	}
	if n := mustEval[int](b, `document.querySelectorAll('.line-card .ops button').length`); n == 0 {
		t.Fatal("the first tab lost its controls")
	}

	b.wait("a reallocation to approve", `!!document.querySelector('#reallocations .realloc[data-status="proposed"] .realloc-approve')`, 90*time.Second)
	rev := mustEval[string](b, `document.querySelector('#reallocations .realloc[data-status="proposed"]').dataset.revision`)
	b.shot("reallocation-proposed")
	// Left undecided to the flight's end: the stream closes (nothing more
	// is to come), and the decision opens it again for its outcome.
	b.wait("the flight over, the proposal undecided", `document.querySelector('#c-live').textContent === 'finished'`, 120*time.Second)
	b.click("approve it", fmt.Sprintf(`#reallocations .realloc[data-revision=%q] .realloc-approve`, rev))
	b.wait("applied", fmt.Sprintf(`['applied','failed'].includes(document.querySelector('#reallocations .realloc[data-revision=%q]').dataset.status)`, rev), 60*time.Second)
	code, body, _ := httpDo(t, "GET", base+"/bookings/"+req.CampaignID+"/reallocations", "", nil)
	var rs struct {
		Reallocations []struct {
			Revision  int    `json:"revision"`
			Status    string `json:"status"`
			DecidedBy string `json:"decided_by"`
		} `json:"reallocations"`
	}
	if code != 200 || json.Unmarshal(body, &rs) != nil {
		t.Fatalf("GET reallocations: %d %.300s", code, body)
	}
	found := false
	for _, r := range rs.Reallocations {
		if fmt.Sprint(r.Revision) == rev {
			found = true
			shown := mustEval[string](b, fmt.Sprintf(`document.querySelector('#reallocations .realloc[data-revision=%q]').dataset.status`, rev))
			if r.DecidedBy != "api" || r.Status != shown {
				t.Fatalf("revision %s: decided by %q, status %s; the page shows %s", rev, r.DecidedBy, r.Status, shown)
			}
		}
	}
	if !found {
		t.Fatalf("revision %s not in %s", rev, body)
	}
	b.shot("reallocation-decided")
	b.wait("the flight over", `document.querySelector('#c-live').textContent === 'finished'`, 120*time.Second)
	b.shot("ops-flight-over")
}

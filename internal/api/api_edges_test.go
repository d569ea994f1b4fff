package api_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/api"
	"github.com/dealflow/dealflow/internal/api/apitest"
	"github.com/dealflow/dealflow/internal/app"
	"github.com/dealflow/dealflow/internal/campaign"
	"github.com/dealflow/dealflow/internal/checkfor"
	"github.com/dealflow/dealflow/internal/config"
	"github.com/dealflow/dealflow/internal/demo"
	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/pkg/events"
)

// rawPost sends body as is with the given content type and the API key.
func rawPost(t *testing.T, url, contentType string, body io.Reader) (int, string) {
	t.Helper()
	req, err := http.NewRequest("POST", url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-API-Key", apiKey)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	code, _, b := apitest.Do(t, req)
	return code, string(b)
}

// TestBookingsAPIRefusesBadRequests: every malformed request gets its own
// status and a JSON body naming the problem; none creates a campaign.
func TestBookingsAPIRefusesBadRequests(t *testing.T) {
	m := startMarket(t)
	a := startApp(t, m, t.TempDir(), nil)
	base := "http://" + a.HTTPAddr
	good := mustJSON(manual("edge-good"))
	huge := manual("edge-huge")
	hb := huge["brief"].(api.BriefInput)
	hb.Budget = 9.3e12
	huge["brief"] = hb
	cases := []struct {
		name, ctype, body string
		code              int
		contains          string
	}{
		{"form post (cross-site)", "application/x-www-form-urlencoded", "brief=x", 415, `"unsupported_media_type"`},
		{"no content type", "", good, 415, `"field":"Content-Type"`},
		{"trailing data", "application/json", good + `{"more":1}`, 400, "trailing data"},
		{"truncated", "application/json", `{"brief":`, 400, `"bad_request"`},
		{"type error", "application/json", `{"brief":{"name":"n","budget":"lots"}}`, 422, `"must be a number"`},
		{"type error in a list", "application/json", `{"brief":{"name":"n","channels":"ctv"}}`, 422, `"must be an array"`},
		{"unknown field", "application/json", `{"brief":{"name":"n"},"budget_usd":1}`, 422, `"field":"budget_usd"`},
		{"over 1 MiB", "application/json", `{"brief":{"name":"` + strings.Repeat("x", api.MaxBodyBytes) + `"}}`, 413, `"too_large"`},
		{"budget beyond the limit", "application/json", mustJSON(huge), 422, `"field":"brief.budget"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := rawPost(t, base+"/bookings", c.ctype, strings.NewReader(c.body))
			if code != c.code || !strings.Contains(body, c.contains) {
				t.Fatalf("%d %s, want %d containing %s", code, body, c.code, c.contains)
			}
			for _, leak := range []string{"float64", "[]string", "app.", "events.", "int64"} {
				if strings.Contains(body, leak) {
					t.Fatalf("error leaks a Go type name %q: %s", leak, body)
				}
			}
		})
	}
	code, out := apitest.JSON(t, "GET", base+"/bookings", nil, map[string]string{"X-API-Key": apiKey})
	if code != 200 || out["total"] != float64(0) {
		t.Fatalf("refused requests created campaigns: %d %v", code, out)
	}
	// A wrong method is a JSON 405 naming the allowed ones.
	req, _ := http.NewRequest("DELETE", base+"/bookings", nil)
	req.Header.Set("X-API-Key", apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Content-Type") != "application/json" || !strings.Contains(string(b), `"method_not_allowed"`) {
		t.Fatalf("DELETE /bookings: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
}

// TestServerTimeoutsAreSet: a header or body trickled a byte at a time, or
// an idle keep-alive, cannot hold a connection for long.
func TestServerTimeoutsAreSet(t *testing.T) {
	m := startMarket(t)
	a := startApp(t, m, t.TempDir(), nil)
	rh, rd, idle := a.HTTPTimeouts()
	if rh <= 0 || rh > 10*time.Second || rd <= 0 || rd > 30*time.Second || idle <= 0 || idle > 2*time.Minute {
		t.Fatalf("read-header %v, read %v, idle %v", rh, rd, idle)
	}
}

// TestExactlyOneApprovalWins: 20 concurrent approvals of one campaign,
// spread over two API processes sharing the broker, give exactly one 200;
// the others get 409, and the lines booked are the lines stored as approved.
func TestExactlyOneApprovalWins(t *testing.T) {
	m := startMarket(t)
	a1 := startApp(t, m, t.TempDir(), nil)
	cfg := config.Defaults()
	cfg.NATSURL, cfg.Stages, cfg.HTTPAddr, cfg.APIKey, cfg.AllowPrivate = a1.NATSURL(), nil, "127.0.0.1:0", apiKey, true
	a2, err := app.Start(context.Background(), cfg, natstest.Logger(), app.Options{Credentials: m.Credentials()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a2.Stop)
	key := map[string]string{"X-API-Key": apiKey}
	id := "one-winner"
	if code, out := apitest.JSON(t, "POST", "http://"+a1.HTTPAddr+"/bookings", manual(id), key); code != 200 {
		t.Fatalf("create: %d %v", code, out)
	}
	job := waitJob(t, "http://"+a2.HTTPAddr, id, "awaiting_approval")
	recs := job["recommendations"].([]any)
	if len(recs) < 2 {
		t.Fatalf("want a portfolio of at least 2 lines, got %d", len(recs))
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		codes = map[int]int{}
		won   []string
	)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			base := "http://" + a1.HTTPAddr
			if i%2 == 1 {
				base = "http://" + a2.HTTPAddr
			}
			// Half approve everything, half one line each.
			var body io.Reader
			path := "/approve-all"
			if i%4 < 2 {
				q := recs[i%len(recs)].(map[string]any)["quote_id"].(string)
				body, path = bytes.NewReader([]byte(fmt.Sprintf(`{"approved_quote_ids":[%q]}`, q))), "/approve"
			}
			req, _ := http.NewRequest("POST", base+"/bookings/"+id+path, body)
			req.Header.Set("X-API-Key", apiKey)
			if body != nil {
				req.Header.Set("Content-Type", "application/json")
			}
			code, _, b := apitest.Do(t, req)
			mu.Lock()
			defer mu.Unlock()
			codes[code]++
			if code == 200 {
				won = append(won, string(b))
			}
		}()
	}
	wg.Wait()
	if codes[200] != 1 || codes[409] != 19 {
		t.Fatalf("status codes %v, want one 200 and nineteen 409", codes)
	}
	final := waitJob(t, "http://"+a1.HTTPAddr, id, "completed", "partial", "failed")
	c, err := a1.Campaigns.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	approved := map[string]bool{}
	for _, l := range c.Approved.Lines {
		approved[l.SellerURL+"|"+l.PackageID] = true
	}
	booked := final["booked_lines"].([]any)
	fails := final["failed"].([]any)
	if len(booked)+len(fails) != len(approved) || !strings.Contains(won[0], fmt.Sprintf(`"approved_count":%d`, len(approved))) {
		t.Fatalf("approved %d lines (winner said %s); booked %d, failed %d", len(approved), won[0], len(booked), len(fails))
	}
	for _, b := range booked {
		d := b.(map[string]any)
		if !approved[d["seller_url"].(string)+"|"+d["package_id"].(string)] {
			t.Fatalf("booked %v, which was not approved", d)
		}
	}
}

// TestAmbiguousProductIDsApproveNothing: a product id that names lines at
// several sellers is refused with 422 naming it, and nothing is approved.
func TestAmbiguousProductIDsApproveNothing(t *testing.T) {
	m := startMarket(t)
	a := startApp(t, m, t.TempDir(), nil)
	base, key, id := "http://"+a.HTTPAddr, map[string]string{"X-API-Key": apiKey}, "ambiguous"
	line := func(seller, pkg string) events.PlanLine {
		return events.PlanLine{QuoteID: "q-" + pkg, SellerURL: seller, PackageID: pkg, ProductID: "prod-shared", CPMMicros: 10_000_000,
			Impressions: 1000, SpendMicros: 10_000_000, Tier: events.TierAgency, Reason: "best"}
	}
	// A campaign awaiting approval whose plan has one product id at two
	// sellers, written through the state machine's transitions.
	req := demo.SampleCampaign(id, "adaptive")
	now := time.Now().UTC()
	if _, _, err := a.Campaigns.Transition(context.Background(), id, func(c *campaign.Campaign, _ bool) ([]events.Event, error) {
		*c = *campaign.New(req, now)
		if err := c.Start("t", req, now, time.Hour); err != nil {
			return nil, err
		}
		c.RecordDiscovery(events.DiscoveryCompleted{CampaignID: id}, now)
		return c.Propose("t", func(*campaign.Campaign, events.Micros, int, map[string]string) (*events.PortfolioProposed, error) {
			return &events.PortfolioProposed{CampaignID: id, BudgetMicros: req.Brief.BudgetMicros, Revision: 1,
				Lines: []events.PlanLine{line("http://a.example", "p1"), line("http://b.example", "p2")}}, nil
		}, now)
	}); err != nil {
		t.Fatal(err)
	}
	code, out := apitest.JSON(t, "POST", base+"/bookings/"+id+"/approve", map[string]any{"approved_product_ids": []string{"prod-shared"}}, key)
	if code != 422 || out["field"] != "approved_product_ids" || !strings.Contains(fmt.Sprint(out["detail"]), "prod-shared") {
		t.Fatalf("ambiguous product id: %d %v", code, out)
	}
	c, err := a.Campaigns.Get(context.Background(), id)
	if err != nil || c.Status != events.StatusAwaitingApproval || c.Approved != nil {
		t.Fatalf("after a refused approval: %v %v %v", c.Status, c.Approved, err)
	}
	// Named by quote id, the same line is approved.
	if code, out := apitest.JSON(t, "POST", base+"/bookings/"+id+"/approve", map[string]any{"approved_quote_ids": []string{"q-p1"}}, key); code != 200 || out["approved_count"] != float64(1) {
		t.Fatalf("approve by quote id: %d %v", code, out)
	}
}

// manual is a booking request that waits for approval.
func manual(id string) map[string]any {
	b := booking(id, nil)
	b["auto_approve"] = false
	return b
}

func waitJob(t *testing.T, base, id string, want ...string) map[string]any {
	t.Helper()
	var last map[string]any
	checkfor.Check(t, 60*time.Second, 100*time.Millisecond, func() error {
		_, last = apitest.JSON(t, "GET", base+"/bookings/"+id, nil, map[string]string{"X-API-Key": apiKey})
		if slices.Contains(want, fmt.Sprint(last["status"])) {
			return nil
		}
		return fmt.Errorf("job %s never reached %v: %v", id, want, last["status"])
	})
	return last
}

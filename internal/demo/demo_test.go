package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/adcpschema"
	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/internal/sandbox"
	sandboxadcp "github.com/dealflow/dealflow/internal/sandbox/adcp"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/sellerclient"
	"github.com/dealflow/dealflow/pkg/sellerclient/adcp"
)

// TestDemoMoneyAgreesToTheMicro runs the demo and checks that every amount
// shown agrees: each deal's plan line spend equals the booked deal's spend
// (to the micro, hence to the cent), which equals the seller's booked amount
// (CostMicros of the seller's impressions and final CPM), and the total is
// the exact sum of the deals.
func TestDemoMoneyAgreesToTheMicro(t *testing.T) {
	seller := map[string]events.Micros{} // deal id (IAB) or media buy id (AdCP) -> the seller's booked amount
	v, err := adcpschema.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	var adcpCalls, finalized int
	inspect := func(_ context.Context, m *sandbox.Market, _ Result) error {
		for _, s := range m.Sellers {
			for _, d := range s.Deals() {
				seller[d.DealID] = events.CostMicros(d.Impressions, events.Micros(d.FinalMicros))
			}
		}
		// Every AdCP request the pipeline sent and every answer it read
		// validates against the AdCP 3.1 schemas; the confirmed buys'
		// package budgets are the sellers' booked amounts.
		for _, s := range m.ADCPSellers {
			for i, c := range s.Agent.(*sandboxadcp.Agent).Calls() {
				adcpCalls++
				if err := v.CheckCall(c.Tool, c.Arguments, c.Result, c.IsError); err != nil {
					t.Errorf("%s call %d %s: %v\nargs %s\nresult %s", s.Name, i, c.Tool, err, c.Arguments, c.Result)
				}
				for id, amount := range mediaBuys(c.Result) {
					seller[id] = amount
				}
				if c.Tool == "get_products" && !c.IsError && strings.Contains(string(c.Arguments), `"action":"finalize"`) {
					finalized++
				}
			}
		}
		return nil
	}
	var out bytes.Buffer
	res, err := Run(context.Background(), Options{DataDir: t.TempDir(), Timeout: 2 * time.Minute, Log: natstest.Logger(), Inspect: inspect}, &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != "completed" || len(res.Deals) < 2 || len(res.Plan) == 0 {
		t.Fatalf("status %q, %d deals, %d plan lines", res.Status, len(res.Deals), len(res.Plan))
	}
	if adcpCalls == 0 {
		t.Fatal("the pipeline never called an AdCP seller")
	}
	if finalized == 0 {
		t.Fatal("the negotiator never finalized a proposal (Brightline AdCP offers proposals)")
	}
	var iab, adcpDeals int
	for _, d := range res.Deals {
		if d.Protocol == "adcp" {
			adcpDeals++
			if d.MediaBuyID == "" || d.SellerPackageID == "" || d.DealID != "" || d.Revision < 1 {
				t.Errorf("AdCP deal %+v: want media_buy_id, seller_package_id, revision and no deal_id", d)
			}
		} else if d.Protocol == "iab-seller-agent" && d.DealID != "" {
			iab++
		} else {
			t.Errorf("deal %+v: protocol %q", d, d.Protocol)
		}
	}
	if adcpDeals == 0 || iab == 0 {
		t.Fatalf("want deals of both protocol families in one portfolio: %d IAB, %d AdCP", iab, adcpDeals)
	}
	if len(seller) != len(res.Deals) {
		t.Fatalf("sellers hold %d deals, the demo reports %d", len(seller), len(res.Deals))
	}
	plan := map[string]events.PlanLine{}
	for _, l := range res.Plan {
		plan[canon(l.SellerURL)+"|"+l.PackageID] = l
	}
	report := out.String()
	var sum events.Micros
	for _, d := range res.Deals {
		l, ok := plan[canon(d.SellerURL)+"|"+d.PackageID]
		if !ok {
			t.Fatalf("deal %s (%s %s) has no plan line", d.DealID, d.SellerURL, d.PackageID)
		}
		want := l.SpendMicros
		if d.Protocol == "adcp" {
			// An AdCP buy carries the line's spend rounded down to the cent.
			want = adcp.MinorUnitFloor(want, "USD")
		}
		if want != d.SpendMicros || l.CPMMicros != d.CPMMicros || l.Impressions != d.Impressions {
			t.Errorf("deal %s: plan %d imps at %d = %s, booked %d imps at %d = %s", d.DealID, l.Impressions, l.CPMMicros, l.SpendMicros,
				d.Impressions, d.CPMMicros, d.SpendMicros)
		}
		id := d.DealID
		if d.Protocol == "adcp" {
			id = d.MediaBuyID
		}
		if got, ok := seller[id]; !ok || got != d.SpendMicros {
			t.Errorf("deal %s: spend %d micros, the seller's booked amount %d", id, d.SpendMicros, got)
		}
		if d.Spend != d.SpendMicros.Dollars() || d.CPM != d.CPMMicros.Dollars() {
			t.Errorf("deal %s: dollar fields %v/%v not derived from micros %d/%d", d.DealID, d.Spend, d.CPM, d.SpendMicros, d.CPMMicros)
		}
		// The booked table prints the same cents as the plan line.
		if d.Protocol == "adcp" {
			id += "/" + d.SellerPackageID
		}
		row := fmt.Sprintf("%s  %d  %s  %s", d.CPMMicros.Cents(), d.Impressions, d.SpendMicros.Cents(), id)
		if !strings.Contains(strings.Join(strings.Fields(report), "  "), row) {
			t.Errorf("booked table lacks %q:\n%s", row, report)
		}
		sum += d.SpendMicros
	}
	if sum != res.TotalSpendMicros || res.TotalSpend != res.TotalSpendMicros.Dollars() || res.TotalSpendMicros > res.BudgetMicros {
		t.Fatalf("total spend %d micros (%v), sum of deals %d, budget %d", res.TotalSpendMicros, res.TotalSpend, sum, res.BudgetMicros)
	}
	if !strings.Contains(report, "Total spend: "+res.TotalSpendMicros.String()) || !strings.Contains(report, "Budget: $50,000.00") {
		t.Fatalf("report totals:\n%s", report)
	}
}

// mediaBuys finds the confirmed media buys in an AdCP result (a completed
// create_media_buy, a task's result, get_media_buys) with the sum of their
// package budgets in micros.
func mediaBuys(raw json.RawMessage) map[string]events.Micros {
	out := map[string]events.Micros{}
	var walk func(any)
	walk = func(n any) {
		switch v := n.(type) {
		case map[string]any:
			if id, ok := v["media_buy_id"].(string); ok && id != "" {
				if pkgs, ok := v["packages"].([]any); ok {
					var sum events.Micros
					for _, p := range pkgs {
						if b, ok := p.(map[string]any)["budget"].(float64); ok {
							m, _ := events.MicrosFromDollars(b)
							sum += m
						}
					}
					out[id] = sum
				}
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	var doc any
	if json.Unmarshal(raw, &doc) == nil {
		walk(doc)
	}
	return out
}

func canon(u string) string {
	c, err := sellerclient.CanonicalURL(u)
	if err != nil {
		return u
	}
	return c
}

// TestDemoFlight runs demo --flight: the campaign books, its IAB deals are
// activated in the sandbox DSP, every line delivers over its accelerated
// flight until its final snapshot; Metro Mobile's under-delivering line
// (the default market's) is caught as a PacingDeviation and its budget is
// reallocated, auto-approved, to lines on plan, applied at the sellers; the
// lines on plan that received nothing never deviate; each deal's delivery in
// the JSON is what its seller says it delivered; the committed spend never
// rose above the budget and the delivered spend is within it.
func TestDemoFlight(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo and a whole accelerated flight: skipped under -short")
	}
	held := map[string]int64{} // IAB deal id -> impressions its seller delivered
	inspect := func(_ context.Context, m *sandbox.Market, r Result) error {
		for _, s := range m.Sellers {
			for _, d := range s.Deals() {
				if dd, ok := s.Delivered(d.DealID, time.Now()); ok {
					held[d.DealID] = dd.Impressions
				}
			}
		}
		return nil
	}
	var out bytes.Buffer
	res, err := Run(context.Background(), Options{DataDir: t.TempDir(), Timeout: 3 * time.Minute, Log: natstest.Logger(), Inspect: inspect, JSON: true,
		Flight: true, TimeScale: 100 * time.Millisecond, PacingEvery: 24 * time.Hour}, &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != "completed" || res.Flight == nil || len(res.Deals) < 2 {
		t.Fatalf("status %q, flight %+v, %d deals", res.Status, res.Flight, len(res.Deals))
	}
	type delivery struct {
		Impressions  int64            `json:"impressions"`
		SpendMicros  events.Micros    `json:"spend_micros"`
		PacingIndex  float64          `json:"pacing_index"`
		Status       string           `json:"status"`
		Final        bool             `json:"final"`
		Snapshots    int              `json:"snapshots"`
		Deviations   []Deviation      `json:"deviations"`
		BudgetMicros events.Micros    `json:"budget_micros"`
		State        events.LineState `json:"state"`
	}
	var doc struct {
		Flight FlightInfo `json:"flight"`
		Deals  []struct {
			Protocol    string        `json:"protocol"`
			DealID      string        `json:"deal_id"`
			Seller      string        `json:"seller_name"`
			LineKey     string        `json:"line_key"`
			SpendMicros events.Micros `json:"spend_micros"`
			NewLine     bool          `json:"new_line"`
			Delivery    *delivery     `json:"delivery"`
		} `json:"deals"`
		Activations   []Activation   `json:"activations"`
		Reallocations []Reallocation `json:"reallocations"`
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("--json: %v\n%s", err, out.String())
	}

	// Activations: every IAB deal set up in the DSP.
	activated := map[string]bool{}
	for _, a := range doc.Activations {
		activated[a.DealID] = a.Status == "activated"
	}
	var metro string // Metro Mobile's line
	for _, d := range doc.Deals {
		if d.Protocol == "iab-seller-agent" && !activated[d.DealID] {
			t.Errorf("IAB deal %s of %s not activated: %+v", d.DealID, d.Seller, doc.Activations)
		}
		if d.Seller == "Metro Mobile" && !d.NewLine {
			metro = d.LineKey
		}
	}
	if len(doc.Activations) == 0 || metro == "" {
		t.Fatalf("activations %+v; Metro Mobile's line %q", doc.Activations, metro)
	}
	// An IAB line's deals: the booked one and any a budget change added
	// (each activated); its seller delivered their sum.
	lineDeals := map[string]map[string]bool{}
	for _, a := range doc.Activations {
		if lineDeals[a.LineKey] == nil {
			lineDeals[a.LineKey] = map[string]bool{}
		}
		lineDeals[a.LineKey][a.DealID] = true
	}
	lineHeld := func(key string) int64 {
		var n int64
		for id := range lineDeals[key] {
			n += held[id]
		}
		return n
	}

	// The reallocation: Metro Mobile's budget, auto-approved, applied.
	if len(doc.Reallocations) == 0 {
		t.Fatalf("no reallocation; flight %+v", doc.Flight)
	}
	r := doc.Reallocations[0]
	received := map[string]events.Micros{}
	var moved events.Micros
	for _, m := range r.Moves {
		if m.FromLineKey != metro || m.AmountMicros <= 0 || m.Outcome != "applied" || m.Reason == "" || m.ToLineKey == "" {
			t.Errorf("move %+v", m)
		}
		received[m.ToLineKey] += m.AmountMicros
		moved += m.AmountMicros
	}
	if r.Revision != 1 || r.LineKey != metro || r.Direction != events.DeviationUnder || r.Status != "applied" || r.ApprovedBy != "auto" ||
		len(r.Moves) == 0 || r.CommittedAfterMicros > r.CommittedBeforeMicros || r.CommittedMicros > res.BudgetMicros {
		t.Fatalf("reallocation %+v", r)
	}
	for _, x := range doc.Reallocations {
		if x.Status != "applied" && x.Status != "failed" {
			t.Errorf("reallocation %d still %s at the flight's end", x.Revision, x.Status)
		}
	}

	for _, d := range doc.Deals {
		l := d.Delivery
		if l == nil || !l.Final || l.Snapshots < 2 {
			t.Fatalf("deal %s %s: delivery %+v", d.Seller, d.DealID, l)
		}
		switch {
		case d.Protocol != "iab-seller-agent":
		case len(lineDeals[d.LineKey]) <= 1 && l.Impressions != held[d.DealID]:
			t.Errorf("deal %s: %d impressions reported, the seller delivered %d", d.DealID, l.Impressions, held[d.DealID])
		case len(lineDeals[d.LineKey]) > 1 && (l.Impressions < held[d.DealID] || l.Impressions > lineHeld(d.LineKey)):
			// A deal added mid-flight plays its own accelerated flight from
			// its booking at the sandbox seller, so it still delivers after
			// the line's final reading: the line reported at least its
			// first (cancelled, stopped) deal and at most all its deals now.
			t.Errorf("deal %s: %d impressions reported, the seller delivered %d on it and %d over deals %v", d.DealID, l.Impressions,
				held[d.DealID], lineHeld(d.LineKey), lineDeals[d.LineKey])
		}
		switch {
		case d.LineKey == metro:
			// Its budget lowered: an IAB decrease cancels the booked deal
			// and books the remainder as a second deal, so the line stays
			// live and delivers beyond what the cancelled deal had.
			if len(l.Deviations) == 0 || l.Deviations[0].Direction != events.DeviationUnder || l.PacingIndex > 0.6 ||
				l.BudgetMicros > d.SpendMicros-moved || l.State != events.LineStateLive || len(lineDeals[metro]) != 2 ||
				l.Impressions <= held[d.DealID] {
				t.Errorf("Metro Mobile's line: %+v (booked %s, moved %s; deals %v, the first delivered %d)", l, d.SpendMicros, moved,
					lineDeals[metro], held[d.DealID])
			}
		case d.NewLine:
			// A remaining quote booked as a new line for what the lines on
			// plan could not take: at most what moved to it, followed to
			// its final snapshot like any line.
			if received[d.LineKey] <= 0 || d.SpendMicros > received[d.LineKey] || l.BudgetMicros != d.SpendMicros || l.State == events.LineStateCancelled {
				t.Errorf("new line %s of %s (received %s): %+v", d.DealID, d.Seller, received[d.LineKey], l)
			}
		case received[d.LineKey] > 0:
			if l.BudgetMicros != d.SpendMicros+received[d.LineKey] || l.Status != "on_track" {
				t.Errorf("deal %s of %s received %s: delivery %+v", d.DealID, d.Seller, received[d.LineKey], l)
			}
		case len(l.Deviations) != 0 || l.Status != "on_track" || l.BudgetMicros != d.SpendMicros:
			t.Errorf("deal %s of %s deviated or changed: %+v", d.DealID, d.Seller, l)
		}
	}
	if !doc.Flight.WithinBudget || doc.Flight.DeliveredSpendMicros <= 0 || doc.Flight.DeliveredSpendMicros > res.BudgetMicros ||
		doc.Flight.Deviations < 1 || doc.Flight.Reallocations < 1 || doc.Flight.MaxCommittedMicros <= 0 || doc.Flight.MaxCommittedMicros > res.BudgetMicros {
		t.Fatalf("flight %+v, budget %s", doc.Flight, res.BudgetMicros)
	}
}

package demo

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/internal/sandbox"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/sellerclient"
)

// TestDemoMoneyAgreesToTheMicro runs the demo and checks that every amount
// shown agrees: each deal's plan line spend equals the booked deal's spend
// (to the micro, hence to the cent), which equals the seller's booked amount
// (CostMicros of the seller's impressions and final CPM), and the total is
// the exact sum of the deals.
func TestDemoMoneyAgreesToTheMicro(t *testing.T) {
	seller := map[string]events.Micros{} // deal id -> the seller's booked amount
	inspect := func(_ context.Context, m *sandbox.Market, _ Result) error {
		for _, s := range m.Sellers {
			for _, d := range s.Deals() {
				seller[d.DealID] = events.CostMicros(d.Impressions, events.Micros(d.FinalMicros))
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
		if l.SpendMicros != d.SpendMicros || l.SpendMicros.Cents() != d.SpendMicros.Cents() || l.CPMMicros != d.CPMMicros || l.Impressions != d.Impressions {
			t.Errorf("deal %s: plan %d imps at %d = %s, booked %d imps at %d = %s", d.DealID, l.Impressions, l.CPMMicros, l.SpendMicros,
				d.Impressions, d.CPMMicros, d.SpendMicros)
		}
		if got, ok := seller[d.DealID]; !ok || got != d.SpendMicros {
			t.Errorf("deal %s: spend %d micros, the seller's booked amount %d", d.DealID, d.SpendMicros, got)
		}
		if d.Spend != d.SpendMicros.Dollars() || d.CPM != d.CPMMicros.Dollars() {
			t.Errorf("deal %s: dollar fields %v/%v not derived from micros %d/%d", d.DealID, d.Spend, d.CPM, d.SpendMicros, d.CPMMicros)
		}
		// The booked table prints the same cents as the plan line.
		row := fmt.Sprintf("%s  %d  %s  %s", d.CPMMicros.Cents(), d.Impressions, d.SpendMicros.Cents(), d.DealID)
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

func canon(u string) string {
	c, err := sellerclient.CanonicalURL(u)
	if err != nil {
		return u
	}
	return c
}

package booker

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/dealflow/dealflow/internal/campaign"
	"github.com/dealflow/dealflow/internal/portfolio"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/identity"
)

// bigPlan is a proposal with lines plan lines and the given exclusions:
// per quote, a reason as long as the optimiser's.
func bigPlan(lines int, exclusions map[string]int) *events.PortfolioProposed {
	p := &events.PortfolioProposed{CampaignID: "cmp-1", BudgetMicros: 100_000_000_000, Revision: 1, Lines: []events.PlanLine{}}
	for i := range lines {
		p.Lines = append(p.Lines, events.PlanLine{QuoteID: fmt.Sprintf("q-%d", i), SellerURL: fmt.Sprintf("http://seller-%04d.example", i), PackageID: "pkg-1",
			CPMMicros: 20_000_000, Impressions: 1000, SpendMicros: 20_000_000, Reason: strings.Repeat("chosen for value per dollar ", 4)})
	}
	n := 0
	for _, kind := range []string{"seller cap reached", "no bookable price", "seller skipped (timeout)"} {
		for range exclusions[kind] {
			p.Excluded = append(p.Excluded, events.PlanExclusion{QuoteID: fmt.Sprintf("x-%d", n), SellerURL: fmt.Sprintf("http://seller-%04d.example", n),
				PackageID: "pkg-" + fmt.Sprint(n), Reason: kind + ": the per-seller amount $15,000.00 for Sandbox Seller is used by higher-score quotes"})
			n++
		}
	}
	return p
}

func TestFitEventSize(t *testing.T) {
	t.Parallel()
	const limit = events.MaxEventBytes - 16<<10
	t.Run("small plan unchanged", func(t *testing.T) {
		t.Parallel()
		p := bigPlan(5, map[string]int{"seller cap reached": 10})
		if err := FitEventSize(p, limit); err != nil || len(p.Excluded) != 10 || p.ExcludedTotal != 0 || len(p.Notes) != 0 {
			t.Fatalf("err %v, %d excluded, total %d, notes %q", err, len(p.Excluded), p.ExcludedTotal, p.Notes)
		}
	})
	t.Run("thousands of exclusions are cut to fit, head kept, rest counted", func(t *testing.T) {
		t.Parallel()
		p := bigPlan(60, map[string]int{"seller cap reached": 1200, "no bookable price": 700, "seller skipped (timeout)": 100})
		orig := append([]events.PlanExclusion(nil), p.Excluded...)
		if b, _ := json.Marshal(p); len(b) <= limit {
			t.Fatalf("test plan is only %d bytes: not above the limit", len(b))
		}
		if err := FitEventSize(p, limit); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(p)
		if len(b) > limit {
			t.Fatalf("plan is %d bytes after fitting, limit %d", len(b), limit)
		}
		if err := events.ValidateData(events.KindPortfolioProposed, b); err != nil {
			t.Fatalf("fitted plan violates the schema: %v", err)
		}
		kept := len(p.Excluded)
		if p.ExcludedTotal != 2000 || kept == 0 || kept >= 2000 || len(p.Lines) != 60 {
			t.Fatalf("kept %d of total %d, %d lines", kept, p.ExcludedTotal, len(p.Lines))
		}
		for i := range p.Excluded {
			if p.Excluded[i] != orig[i] {
				t.Fatalf("exclusion %d changed: not the head of the list", i)
			}
		}
		// The rest, counted by kind: the cut falls in the first kind (1,200
		// cap exclusions do not fit), so the note counts the others of it
		// and all of the other two.
		note := p.Notes[len(p.Notes)-1]
		want := []string{fmt.Sprintf("%d of 2000 exclusions listed", kept), "no bookable price 700", fmt.Sprintf("seller cap reached %d", 1200-kept), "seller skipped 100"}
		for _, w := range want {
			if !strings.Contains(note, w) {
				t.Errorf("note %q lacks %q", note, w)
			}
		}
	})
	t.Run("too many lines is an error, not a cut plan", func(t *testing.T) {
		t.Parallel()
		p := bigPlan(2000, nil)
		err := FitEventSize(p, limit)
		if err == nil || !strings.Contains(err.Error(), "2000 lines") || len(p.Lines) != 2000 {
			t.Fatalf("err %v, %d lines", err, len(p.Lines))
		}
	})
}

// TestPlannerProposalFitsOneEvent: planning a campaign that shopped 1,000
// sellers (2,000 bookable quotes, a budget for a few of them) gives a
// proposal that encodes as one valid event under the size limit. Before,
// its 1,900-odd exclusions made it 312 KB: the bus refused to publish it and
// the campaign never got a plan.
func TestPlannerProposalFitsOneEvent(t *testing.T) {
	t.Parallel()
	camp := &campaign.Campaign{ID: "cmp-big", Quotes: map[string]events.QuoteReady{}, Request: &events.CampaignRequested{CampaignID: "cmp-big",
		Brief: events.Brief{Name: "big", BudgetMicros: events.MustMicros(50_000), StartDate: "2028-06-01", EndDate: "2028-06-30",
			PerSellerCapMicros: events.MustMicros(1_000)}}}
	for i := range 1000 {
		for j, format := range []string{"video", "display"} {
			q := events.QuoteReady{CampaignID: "cmp-big", Seller: events.Seller{URL: fmt.Sprintf("http://seller-%04d.example", i), Name: fmt.Sprintf("Sandbox Seller %04d", i),
				Trust: identity.TrustVerified, Source: "registry"},
				Package: events.Package{ID: fmt.Sprintf("pkg-%04d-%d", i, j), AdFormats: []string{format}}, PackagesTotal: 2, Tier: identity.TierAgency,
				Outcome: events.OutcomeAccepted, QuoteID: fmt.Sprintf("qt-%04d-%d", i, j), Impressions: 1_000_000,
				FinalCPMMicros: events.Micros(10_000_000 + int64((i*37+j*11)%2000)*10_000)}
			camp.Quotes[campaign.QuoteKey(q.Seller.URL, q.Package.ID)] = q
		}
	}
	svc := &Service{Weights: portfolio.DefaultWeights()}
	p, err := svc.planner()(camp, events.MustMicros(50_000), 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Lines) == 0 || p.ExcludedTotal != 2000-len(p.Lines) || len(p.Excluded) >= p.ExcludedTotal {
		t.Fatalf("%d lines, %d of %d exclusions listed", len(p.Lines), len(p.Excluded), p.ExcludedTotal)
	}
	e, err := events.New(events.KindPortfolioProposed, events.NewID(), events.StageBooker, camp.ID, *p)
	if err != nil {
		t.Fatal(err)
	}
	m, err := events.Encode(e, events.KindPortfolioProposed.SubjectFor(camp.ID))
	if err != nil {
		t.Fatal(err)
	}
	size := len(m.Data)
	for k, vs := range m.Header {
		for _, v := range vs {
			size += len(k) + len(v) + 4
		}
	}
	if size > events.MaxEventBytes {
		t.Fatalf("proposal event is %d bytes, above the %d-byte limit", size, events.MaxEventBytes)
	}
	if err := events.ValidateData(events.KindPortfolioProposed, m.Data); err != nil {
		t.Fatal(err)
	}
}

package booker

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/campaign"
	sandboxadcp "github.com/dealflow/dealflow/internal/sandbox/adcp"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/sellerclient/adcp"
)

// testClock is a settable clock shared by the agent and the booker.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestADCPProposalBuys: lines whose quotes carry a committed proposal are
// bought with create_media_buy {proposal_id, total_budget} and the ledger's
// idempotency key. A proposal the seller reports PROPOSAL_EXPIRED is
// re-finalized at the agreed price and the new one bought (a fresh key,
// in the ledger); a proposal already expired at booking time whose price
// no longer stands at the agreed CPM fails quote_expired, its budget freed.
// Every call is validated against the AdCP schemas (the fixture).
func TestADCPProposalBuys(t *testing.T) {
	clock := &testClock{t: time.Now().UTC()}
	f := newADCPFixtureWith(t, nil, false, nil, func(c *sandboxadcp.Config) {
		c.Proposals, c.ProposalHold, c.Now = true, time.Hour, clock.Now
	})
	f.svc.Booker.Now = clock.Now
	client := adcp.New(adcp.Config{AllowPrivate: true, RetryBase: time.Millisecond})
	seller := adcp.Seller{URL: f.url, Token: adcpToken, Account: &adcp.AccountRef{AccountID: "acct-1"}, Brand: &adcp.BrandRef{Domain: "acme.example"}}
	commit := func(product string, cpm events.Micros, expiresAt *time.Time) {
		t.Helper()
		q := f.quotes[product]
		pr, _, err := client.CommitProduct(t.Context(), seller, q.Package.ProductID, q.Package.PricingOptionID,
			adcp.ProposalAsk(q.Package.ProductID, q.Package.PricingOptionID, cpm, events.CostMicros(q.Impressions, cpm), q.Impressions), clock.Now())
		if err != nil {
			t.Fatalf("commit %s: %v", product, err)
		}
		q.Package.ProposalID, q.FinalCPMMicros = pr.ProposalID, cpm
		exp := pr.ExpiresAt
		if expiresAt != nil {
			exp = *expiresAt
		}
		q.QuoteExpiresAt = &exp
		f.c.Quotes[campaign.QuoteKey(f.url, q.Package.ID)] = q
		storeQuote(t, f.svc.Campaigns, f.c, q)
		f.quotes[product] = q
	}
	// display: the seller's hold lapses although the quote says otherwise
	// (PROPOSAL_EXPIRED at create_media_buy); ctv: expired at booking time,
	// and the agreed 17.00 is now below the seller's 18.00 floor.
	far := clock.Now().Add(48 * time.Hour)
	commit("display_news_300x250", events.MustMicros(3.75), &far)
	commit("ctv_run_of_network", events.MustMicros(17), nil)
	clock.add(2 * time.Hour)
	commit("olv_sports_preroll", events.MustMicros(15), nil) // held
	olv, display, ctv := f.line("olv_sports_preroll", 200000), f.line("display_news_300x250", 200000), f.line("ctv_run_of_network", 100000)
	appr := f.approve(t, olv, display, ctv)
	out, err := f.svc.bookAll(t.Context(), appr)
	if err != nil {
		t.Fatal(err)
	}
	ds := dealsOf(t, out)
	if len(ds) != 2 {
		t.Fatalf("deals %+v, outputs %v", ds, keysOf(kinds(out)))
	}
	for _, d := range ds {
		if d.MediaBuyID == "" || d.SellerPackageID == "" || d.CPMMismatch || d.DealID != "" {
			t.Fatalf("deal %+v", d)
		}
	}
	fails := kinds(out)[events.KindBookingFailed.Type]
	if len(fails) != 1 {
		t.Fatalf("failures %v", keysOf(kinds(out)))
	}
	bf := must(events.PayloadOf[events.BookingFailed](fails[0], events.KindBookingFailed))
	if bf.Code != "quote_expired" || bf.PackageID != ctv.PackageID || !strings.Contains(bf.Reason, "no longer stands") {
		t.Fatalf("ctv failure %+v", bf)
	}
	led := ledgerOf(t, f)
	lo, ld, lc := led.Lines[campaign.LineKey(olv)], led.Lines[campaign.LineKey(display)], led.Lines[campaign.LineKey(ctv)]
	if lo.ProposalID != "" || ld.ProposalID == "" || ld.ProposalID == f.quotes["display_news_300x250"].Package.ProposalID || lc.State != LineFailed || lc.SpendMicros != 0 {
		t.Fatalf("ledger lines olv %+v display %+v ctv %+v", lo, ld, lc)
	}
	if led.Committed() != olv.SpendMicros+display.SpendMicros {
		t.Fatalf("committed %s", led.Committed())
	}
	// The buys: by proposal, total_budget = the line's spend, no packages.
	byProposal := map[string]string{} // proposal id -> idempotency key
	for _, c := range f.agent.Calls() {
		if c.Tool != "create_media_buy" || c.IsError {
			continue
		}
		var a struct {
			Key         string          `json:"idempotency_key"`
			ProposalID  string          `json:"proposal_id"`
			Packages    json.RawMessage `json:"packages"`
			TotalBudget struct {
				Amount   float64 `json:"amount"`
				Currency string  `json:"currency"`
			} `json:"total_budget"`
		}
		if err := json.Unmarshal(c.Arguments, &a); err != nil {
			t.Fatal(err)
		}
		if a.ProposalID == "" || a.Packages != nil || a.TotalBudget.Currency != "USD" || a.TotalBudget.Amount <= 0 {
			t.Fatalf("create_media_buy %s", c.Arguments)
		}
		byProposal[a.ProposalID] = a.Key
	}
	if byProposal[f.quotes["olv_sports_preroll"].Package.ProposalID] != ADCPIdempotencyKey(f.c.ID, lo) ||
		byProposal[ld.ProposalID] != ADCPIdempotencyKey(f.c.ID, ld) || len(byProposal) != 2 {
		t.Fatalf("buys by proposal %v", byProposal)
	}
	// Delivered again: nothing is bought twice.
	if _, err := f.svc.bookAll(t.Context(), appr); err != nil {
		t.Fatal(err)
	}
	if b := f.buys(t); len(b) != 2 {
		t.Fatalf("media buys by key after redelivery %v", b)
	}
}

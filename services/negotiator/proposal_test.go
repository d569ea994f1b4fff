package negotiator_test

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/adcpschema"
	"github.com/dealflow/dealflow/internal/natstest"
	sandboxadcp "github.com/dealflow/dealflow/internal/sandbox/adcp"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/identity"
	"github.com/dealflow/dealflow/pkg/sellerclient"
	"github.com/dealflow/dealflow/pkg/sellerclient/adcp"
)

const proposalToken = "adcp-proposal-token-0123456789"

// serveADCP serves a sandbox AdCP agent and validates every call it
// answered against the AdCP 3.1 schemas when the test ends.
func serveADCP(t *testing.T, cfg sandboxadcp.Config) (*sandboxadcp.Agent, string) {
	t.Helper()
	v, err := adcpschema.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Tokens = map[string]sandboxadcp.Principal{proposalToken: {AccountID: "acct-1", BrandDomain: "acme.example"}}
	a := sandboxadcp.New(cfg)
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(func() {
		srv.Close()
		a.Close()
		for i, c := range a.Calls() {
			if err := v.CheckCall(c.Tool, c.Arguments, c.Result, c.IsError); err != nil {
				t.Errorf("call %d %s: %v\nargs %s\nresult %s", i, c.Tool, err, c.Arguments, c.Result)
			}
		}
	})
	u, _ := sellerclient.CanonicalURL(srv.URL)
	return a, u
}

func toolCalls(a *sandboxadcp.Agent, tool string) (n int) {
	for _, c := range a.Calls() {
		if c.Tool == tool {
			n++
		}
	}
	return n
}

// TestADCPProposals: where the seller offers proposals, the priced AdCP
// package is refined into a proposal for the volume the per-seller spend
// buys at the price (the fixed price, or the strategy's bid) and finalized:
// QuoteReady carries the committed price, the proposal id and
// quote_expires_at = the proposal's expires_at. A seller without proposals
// keeps the package path (no refine); a refine that fails falls back to it
// with the reason noted; the seller's refusal is a rejected outcome.
func TestADCPProposals(t *testing.T) {
	env := natstest.Start(t)
	now := time.Now().UTC()
	props, propURL := serveADCP(t, sandboxadcp.Config{Proposals: true, ProposalHold: 90 * time.Minute, RefuseProposals: []string{"display_news_300x250"}})
	plain, plainURL := serveADCP(t, sandboxadcp.Config{})
	creds := must(identity.ParseCredentials([]byte(`{}`)))
	creds.SetADCP(propURL, proposalToken, "acct-1", "acme.example")
	creds.SetADCP(plainURL, proposalToken, "acct-1", "acme.example")
	svc := service(t, env, nil, startMarket(t, 0))
	svc.Client, svc.Credentials = nil, creds
	svc.ADCP = adcp.New(adcp.Config{AllowPrivate: true, RetryBase: time.Millisecond})

	fixed := events.Package{ID: "olv_sports_preroll/olv_sports_fixed_usd", ProductID: "olv_sports_preroll", PricingOptionID: "olv_sports_fixed_usd",
		PricingModel: events.PricingFixed, AdFormats: []string{"video"}, ExactPriceMicros: events.MustMicros(22), MinSpendMicros: events.MustMicros(2000)}
	auction := events.Package{ID: "ctv_run_of_network/ctv_ron_auction_usd", ProductID: "ctv_run_of_network", PricingOptionID: "ctv_ron_auction_usd",
		PricingModel: events.PricingAuction, AdFormats: []string{"ctv"}, FloorPriceMicros: events.MustMicros(18), MinSpendMicros: events.MustMicros(1000), Negotiable: true,
		PriceGuidanceMicros: &events.PriceGuidance{P25: events.MustMicros(20), P50: events.MustMicros(24), P75: events.MustMicros(28), P90: events.MustMicros(33)}}

	// Fixed price, committed in a proposal.
	q := quoteReady(t, mustHandle(t, svc, adcpPackageFound(t, "p-fixed", propURL, fixed, "")))
	if q.Outcome != events.OutcomeFixedPrice || q.FinalCPMMicros != events.MustMicros(22) || q.Package.ProposalID == "" || q.QuoteExpiresAt == nil ||
		q.QuoteExpiresAt.Before(now.Add(89*time.Minute)) || q.QuoteExpiresAt.After(time.Now().Add(91*time.Minute)) || q.Impressions != 454545 ||
		!strings.Contains(q.Reason, "committed in proposal "+q.Package.ProposalID) {
		t.Fatalf("fixed with proposals: %+v", q)
	}
	// Auction: the adaptive bid (p50) is the committed price; the ask names
	// the option, the bid and the budget.
	q = quoteReady(t, mustHandle(t, svc, adcpPackageFound(t, "p-auction", propURL, auction, "adaptive")))
	if q.Outcome != events.OutcomeAccepted || q.FinalCPMMicros != events.MustMicros(24) || q.Package.ProposalID == "" || q.QuoteExpiresAt == nil {
		t.Fatalf("auction with proposals: %+v", q)
	}
	var ask string
	for _, c := range props.Calls() {
		var a struct {
			Mode   string `json:"buying_mode"`
			Refine []struct {
				Scope, ProductID, Ask string
			} `json:"refine"`
		}
		_ = json.Unmarshal(c.Arguments, &a)
		if c.Tool == "get_products" && a.Mode == "refine" && len(a.Refine) == 1 && a.Refine[0].Scope == "product" {
			ask = a.Refine[0].Ask
		}
	}
	if !strings.Contains(ask, "ctv_ron_auction_usd") || !strings.Contains(ask, "CPM 24.00 USD") || !strings.Contains(ask, "total budget 9999.98 USD (416666 impressions)") {
		t.Fatalf("refine ask %q", ask)
	}
	// A seller without proposals: today's path, no refine.
	q = quoteReady(t, mustHandle(t, svc, adcpPackageFound(t, "p-plain", plainURL, fixed, "")))
	if q.Outcome != events.OutcomeFixedPrice || q.Package.ProposalID != "" || q.QuoteExpiresAt != nil || toolCalls(plain, "get_products") != 0 {
		t.Fatalf("seller without proposals: %+v", q)
	}
	// A refine that fails (a product the seller does not know): fallback, noted.
	unknown := fixed
	unknown.ID, unknown.ProductID = "gone/olv_sports_fixed_usd", "gone"
	q = quoteReady(t, mustHandle(t, svc, adcpPackageFound(t, "p-gone", propURL, unknown, "")))
	if q.Outcome != events.OutcomeFixedPrice || q.Package.ProposalID != "" || q.QuoteID == "" || !strings.Contains(q.Reason, "proposal not committed") ||
		!strings.Contains(q.Reason, "PRODUCT_NOT_FOUND") {
		t.Fatalf("failed refine: %+v", q)
	}
	// The seller's refusal: rejected.
	display := events.Package{ID: "display_news_300x250/display_news_auction_usd", ProductID: "display_news_300x250", PricingOptionID: "display_news_auction_usd",
		PricingModel: events.PricingAuction, AdFormats: []string{"display"}, FloorPriceMicros: events.MustMicros(2.5), Negotiable: true,
		PriceGuidanceMicros: &events.PriceGuidance{P50: events.MustMicros(3.75)}}
	q = quoteReady(t, mustHandle(t, svc, adcpPackageFound(t, "p-refused", propURL, display, "adaptive")))
	if q.Outcome != events.OutcomeRejected || q.QuoteID != "" || q.FinalCPMMicros != 0 || !strings.Contains(q.Reason, "POLICY_VIOLATION") {
		t.Fatalf("refused: %+v", q)
	}
	// Every refine that made a proposal was followed by its finalize.
	if n := toolCalls(props, "get_products"); n != 6 {
		t.Fatalf("get_products calls at the proposal seller: %d, want 6 (refine + finalize twice, a failed and a refused refine)", n)
	}
}

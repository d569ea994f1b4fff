package e2e

// Whole campaigns against AdCP sales agents built on the AdCP TypeScript SDK
// (test/adcp-sdk-seller), alone and mixed with the sandbox market's IAB
// sellers: dealflow must buy from the sellers that exist, not only from its
// own reading of the spec. Needs node and `npm ci` in test/adcp-sdk-seller
// (.ci/run does both); without them these tests fail, they never skip.

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/app"
	"github.com/dealflow/dealflow/internal/campaign"
	"github.com/dealflow/dealflow/internal/checkfor"
	"github.com/dealflow/dealflow/internal/config"
	"github.com/dealflow/dealflow/internal/demo"
	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/internal/sandbox"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/identity"
	"github.com/dealflow/dealflow/pkg/sellerclient"
	"github.com/dealflow/dealflow/pkg/sellerclient/adcp"
	"github.com/dealflow/dealflow/services/booker"
	"github.com/dealflow/dealflow/services/discoverer"
	sdkseller "github.com/dealflow/dealflow/test/adcp-sdk-seller"
)

const (
	sdkToken    = "sdk-e2e-token-0123456789abcdef"
	sdkBrand    = "acme-soda.example"
	sdkOperator = "dealflow-buyer.example"
)

// sdkStack is dealflow run against the SDK sellers (and, when withMarket,
// the sandbox market's sellers too).
type sdkStack struct {
	*stack
	sdk   *sdkseller.Sellers
	known map[string]string // agent name -> seller URL (the identity dealflow keeps)
}

// sdkCredential is how each SDK seller's credentials entry is written.
type sdkCredential struct{ token, operator string }

// startSDKStack starts the SDK sellers and dealflow with them as known
// sellers (protocol adcp, verified): only the named agents, each with its
// credentials entry (default: the right token, brand + operator). With
// withMarket the sandbox market's registry and sellers are there too;
// without it there is no registry and only the SDK sellers are shopped.
func startSDKStack(t *testing.T, withMarket bool, agents map[string]sdkCredential, mutate ...func(*config.Config)) *sdkStack {
	t.Helper()
	sdk := sdkseller.Start(t, sdkseller.Config{Token: sdkToken, Accounts: []sdkseller.Account{{Brand: sdkBrand, Operator: sdkOperator}}})
	var m *sandbox.Market
	creds := must(identity.ParseCredentials([]byte(`{}`)))
	if withMarket {
		var err error
		if m, err = sandbox.Start(context.Background(), sandbox.DefaultMarket()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = m.Close() })
		creds = m.Credentials()
	}
	st := &sdkStack{sdk: sdk, known: map[string]string{}}
	var known []discoverer.KnownSeller
	for name, c := range agents {
		endpoint := map[string]string{"guaranteed": sdk.Guaranteed, "auction": sdk.Auction, "proposal": sdk.Proposal}[name]
		if endpoint == "" {
			t.Fatalf("no SDK agent %q", name)
		}
		base := strings.TrimSuffix(endpoint, "/mcp")
		url, err := sellerclient.CanonicalURL(base)
		if err != nil {
			t.Fatal(err)
		}
		st.known[name] = url
		known = append(known, discoverer.KnownSeller{URL: url, Name: "SDK " + name, Trust: identity.TrustVerified,
			Capabilities: []string{"ctv", "video", "display"}, Protocol: events.ProtocolADCP, MCPEndpoint: endpoint})
		if c.token == "" {
			c.token = sdkToken
		}
		if c.operator == "" {
			c.operator = sdkOperator
		}
		creds.SetADCPIdentity(url, identity.ADCPIdentity{Token: c.token, Brand: sdkBrand, Operator: c.operator})
	}
	cfg := config.Defaults()
	cfg.DataDir, cfg.NATSPort, cfg.AllowPrivate, cfg.Window = t.TempDir(), 0, true, 45*time.Second
	if m != nil {
		cfg.RegistryURL = m.RegistryURL
	} else {
		cfg.RegistryURL = ""
	}
	for _, f := range mutate {
		f(&cfg)
	}
	a, err := app.Start(context.Background(), cfg, natstest.Logger(), app.Options{Credentials: creds, Known: known, SweepEvery: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	st.stack = &stack{market: m, app: a}
	return st
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// sdkCampaign is a campaign sized for the SDK sellers' mock inventory
// (guaranteed CPMs of 35-60 with minimum spends of 25,000-50,000 USD;
// remnant floors of 1-15).
func sdkCampaign(id string, budget, perSeller float64, channels ...string) events.CampaignRequested {
	req := demo.SampleCampaign(id, "adaptive")
	req.Brief.BudgetMicros = events.MustMicros(budget)
	req.Brief.PerSellerCapMicros = events.MustMicros(perSeller)
	req.Brief.KPIs = events.KPIs{TargetCPMMicros: events.MustMicros(20), MaxCPMMicros: events.MustMicros(70)}
	req.Brief.Channels = channels
	return req
}

// checkSDKDeals: every SDK deal reads back at the seller exactly as
// booked (get_media_buys: the buy, its packages, their budgets summing to
// the deal's spend, the bid for an auction), and returns them by agent.
func (st *sdkStack) checkSDKDeals(t *testing.T, res demo.Result) map[string][]demo.Deal {
	t.Helper()
	byName := map[string]string{}
	for name, u := range st.known {
		byName[u] = name
	}
	c := adcp.New(adcp.Config{AllowPrivate: true, HTTPClient: &http.Client{Transport: sellerclient.NewGuardedTransport(true)}})
	out := map[string][]demo.Deal{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, d := range res.Deals {
		u, _ := sellerclient.CanonicalURL(d.SellerURL)
		name := byName[u]
		if name == "" {
			continue
		}
		out[name] = append(out[name], d)
		t.Logf("SDK %s: %s at CPM %s for %d impressions = %s (media buy %s, packages %s)", name, d.PackageID,
			d.CPMMicros.Cents(), d.Impressions, d.SpendMicros.Cents(), d.MediaBuyID, d.SellerPackageID)
		if d.Protocol != "adcp" || d.MediaBuyID == "" || d.DealID != "" || d.Revision < 1 {
			t.Fatalf("SDK deal %+v: want an AdCP media buy", d)
		}
		s := adcp.Seller{URL: st.sdk.Direct[name], Token: sdkToken,
			Account: &adcp.AccountRef{Brand: &adcp.BrandRef{Domain: sdkBrand}, Operator: sdkOperator}}
		buys, err := c.GetMediaBuys(ctx, s, d.MediaBuyID)
		if err != nil || len(buys) != 1 {
			t.Fatalf("get_media_buys %s at %s: %v %+v", d.MediaBuyID, name, err, buys)
		}
		b := buys[0]
		var sum events.Micros
		ids := map[string]bool{}
		for _, p := range b.Packages {
			sum += p.BudgetMicros
			ids[p.PackageID] = true
			if name == "auction" && strings.HasSuffix(d.PackageID, "/cpm_auction") && p.BidPriceMicros != d.CPMMicros {
				t.Fatalf("deal %s: the seller holds bid %s, the deal CPM %s", d.MediaBuyID, p.BidPriceMicros, d.CPMMicros)
			}
		}
		for id := range strings.SplitSeq(d.SellerPackageID, ",") {
			if !ids[id] {
				t.Fatalf("deal %s: package %q is not in the seller's buy %+v", d.MediaBuyID, id, b.Packages)
			}
		}
		if b.MediaBuyID != d.MediaBuyID || sum != d.SpendMicros || b.TotalBudgetMicros != d.SpendMicros || b.Revision != d.Revision {
			t.Fatalf("deal %+v: the seller reads back %+v (packages sum %s)", d, b, sum)
		}
	}
	return out
}

func checkWithin(t *testing.T, req events.CampaignRequested, res demo.Result) {
	t.Helper()
	per := map[string]events.Micros{}
	var sum events.Micros
	for _, d := range res.Deals {
		per[d.SellerURL] += d.SpendMicros
		sum += d.SpendMicros
	}
	if sum != res.TotalSpendMicros || sum > req.Brief.BudgetMicros {
		t.Fatalf("spend %s (deals %s) over the budget %s", res.TotalSpendMicros, sum, req.Brief.BudgetMicros)
	}
	for u, v := range per {
		if v > req.Brief.PerSellerCapMicros {
			t.Fatalf("seller %s got %s, over the cap %s", u, v, req.Brief.PerSellerCapMicros)
		}
	}
}

// TestSDKCampaignGuaranteedSeller: a campaign against the SDK's guaranteed
// seller alone books media buys (through IO review: submitted, polled) that
// the seller reads back identically, and the pacer reads their delivery
// (get_media_buy_delivery, on an accelerated flight clock), every request
// carrying the token and the brand + operator account, and valid against
// the 3.1.19 schemas.
func TestSDKCampaignGuaranteedSeller(t *testing.T) {
	st := startSDKStack(t, false, map[string]sdkCredential{"guaranteed": {}}, func(c *config.Config) {
		c.TimeScale, c.PacingEvery = 300*time.Millisecond, 6*time.Hour
	})
	req := sdkCampaign("sdk-guaranteed", 120_000, 120_000, "ctv", "video")
	st.submit(t, req)
	res := st.follow(t, req.CampaignID)
	if res.Status != "completed" {
		t.Fatalf("status %q, skipped %+v, failed %+v", res.Status, res.SkippedSellers, res.Failed)
	}
	if got := st.checkSDKDeals(t, res)["guaranteed"]; len(got) == 0 {
		t.Fatalf("no deal with the guaranteed seller: %+v", res.Deals)
	}
	checkWithin(t, req, res)
	// The mock ad server reports a delivering order at 40% of its budget.
	checkfor.Check(t, time.Minute, 100*time.Millisecond, func() error {
		for _, e := range storedEvents(t, st.app.Bus, events.KindDeliveryReported.SubjectFor(req.CampaignID)) {
			if s, err := events.PayloadOf[events.DeliveryReported](e, events.KindDeliveryReported); err == nil &&
				s.Protocol == events.ProtocolADCP && s.Status != events.PacingNotReporting && s.SpendMicros > 0 && s.Impressions > 0 {
				return nil
			}
		}
		return errors.New("no delivery read from the SDK seller yet")
	})
	if n := st.sdk.CheckRequests(t, sdkBrand, sdkOperator); n == 0 {
		t.Fatal("no tools/call recorded")
	}
	st.sdk.CheckResponses(t)
	sawSubmitted := false
	for _, r := range st.sdk.Requests() {
		sawSubmitted = sawSubmitted || r.Tool == "tasks_get" || r.Tool == "get_task_status"
	}
	if !sawSubmitted {
		t.Fatal("the guaranteed seller's buys go to IO review: the booker should have polled the task")
	}
}

// TestSDKCampaignAuctionSeller: a campaign against the SDK's non-guaranteed
// seller alone asks for auction pricing, bids in whole cents and books
// buys the seller reads back identically.
func TestSDKCampaignAuctionSeller(t *testing.T) {
	st := startSDKStack(t, false, map[string]sdkCredential{"auction": {}})
	req := sdkCampaign("sdk-auction", 20_000, 20_000, "video", "ctv", "display")
	st.submit(t, req)
	res := st.follow(t, req.CampaignID)
	if res.Status != "completed" {
		t.Fatalf("status %q, skipped %+v, failed %+v", res.Status, res.SkippedSellers, res.Failed)
	}
	deals := st.checkSDKDeals(t, res)["auction"]
	if len(deals) == 0 {
		t.Fatalf("no deal with the auction seller: %+v", res.Deals)
	}
	auctions := 0
	for _, d := range deals {
		if strings.HasSuffix(d.PackageID, "/cpm_auction") {
			auctions++
		}
	}
	if auctions == 0 {
		t.Fatalf("no auction line bought: %+v", deals)
	}
	asked := false
	for _, r := range st.sdk.Requests() {
		asked = asked || (r.Tool == "get_products" && strings.Contains(string(r.Args), `"is_fixed_price":false`))
	}
	if !asked {
		t.Fatal("auction pricing was never asked for (is_fixed_price false)")
	}
	checkWithin(t, req, res)
	st.sdk.CheckRequests(t, sdkBrand, sdkOperator)
}

// TestSDKCampaignProposalSeller: a campaign against the SDK's proposal-mode
// seller alone is bought through a finalized proposal (create_media_buy
// with proposal_id and total_budget, never packages).
func TestSDKCampaignProposalSeller(t *testing.T) {
	st := startSDKStack(t, false, map[string]sdkCredential{"proposal": {}})
	req := sdkCampaign("sdk-proposal", 150_000, 150_000, "ctv", "video")
	st.submit(t, req)
	res := st.follow(t, req.CampaignID)
	if res.Status != "completed" {
		t.Fatalf("status %q, skipped %+v, failed %+v", res.Status, res.SkippedSellers, res.Failed)
	}
	deals := st.checkSDKDeals(t, res)["proposal"]
	if len(deals) == 0 {
		t.Fatalf("no deal with the proposal seller: %+v", res.Deals)
	}
	finalized, byProposal := map[string]bool{}, 0
	for _, r := range st.sdk.Requests() {
		a := string(r.Args)
		if r.Tool == "get_products" && strings.Contains(a, `"action":"finalize"`) {
			finalized[a] = true
		}
		if r.Tool == "create_media_buy" {
			if strings.Contains(a, `"packages"`) || !strings.Contains(a, `"proposal_id"`) || !strings.Contains(a, `"total_budget"`) {
				t.Fatalf("create_media_buy at the proposal seller: %s", a)
			}
			byProposal++
		}
	}
	if len(finalized) == 0 || byProposal == 0 {
		t.Fatalf("%d finalize calls, %d proposal buys", len(finalized), byProposal)
	}
	for _, d := range deals {
		if !strings.HasPrefix(d.PackageID, "proposal:") {
			t.Fatalf("deal %+v is not a proposal line", d)
		}
	}
	checkWithin(t, req, res)
	st.sdk.CheckRequests(t, sdkBrand, sdkOperator)
}

// TestSDKCampaignMixedWithSandboxMarket: one campaign over the sandbox
// market's IAB sellers (and its sandbox AdCP agents) and the three SDK
// sellers completes within the budget and every per-seller cap, with deals
// of both protocol families and SDK deals that read back identically.
func TestSDKCampaignMixedWithSandboxMarket(t *testing.T) {
	st := startSDKStack(t, true, map[string]sdkCredential{"guaranteed": {}, "auction": {}, "proposal": {}})
	req := sdkCampaign("sdk-mixed", 200_000, 60_000, "ctv", "video")
	st.submit(t, req)
	res := st.follow(t, req.CampaignID)
	if res.Status != "completed" {
		t.Fatalf("status %q, skipped %+v, failed %+v", res.Status, res.SkippedSellers, res.Failed)
	}
	sdkDeals := st.checkSDKDeals(t, res)
	protocols := map[string]int{}
	for _, d := range res.Deals {
		protocols[d.Protocol]++
	}
	if protocols["iab-seller-agent"] == 0 || len(sdkDeals) == 0 {
		t.Fatalf("deals by protocol %v, SDK deals %v: want IAB sellers and SDK sellers in one portfolio", protocols, sdkDeals)
	}
	checkWithin(t, req, res)
	st.sdk.CheckRequests(t, sdkBrand, sdkOperator)
}

// TestSDKCampaignSkipsRefusedCredentials: at discovery a wrong token is
// unauthorized naming the operation (get_adcp_capabilities, refused on MCP
// initialize), and an operator the seller has no account for is an account
// skip naming the credentials fields; neither is retried or waited for,
// and the campaign books with the seller whose credentials are right.
func TestSDKCampaignSkipsRefusedCredentials(t *testing.T) {
	st := startSDKStack(t, false, map[string]sdkCredential{
		"guaranteed": {token: "wrong-token-0123456789abcdef"},
		"auction":    {operator: "unknown-operator.example"},
		"proposal":   {},
	})
	req := sdkCampaign("sdk-refused", 150_000, 150_000, "ctv", "video")
	st.submit(t, req)
	res := st.follow(t, req.CampaignID)
	skip := map[string]string{}
	for _, s := range res.SkippedSellers {
		u, _ := sellerclient.CanonicalURL(s.SellerURL)
		skip[u] = s.Reason
	}
	g := skip[st.known["guaranteed"]]
	if !strings.HasPrefix(g, "unauthorized") || !strings.Contains(g, "get_adcp_capabilities") || !strings.Contains(g, "initialize") || strings.Contains(g, "wrong-token") {
		t.Fatalf("wrong token: skip %q", g)
	}
	a := skip[st.known["auction"]]
	if !strings.HasPrefix(a, "account") || !strings.Contains(a, `"operator"`) || !strings.Contains(a, "unknown-operator.example") {
		t.Fatalf("unknown account: skip %q", a)
	}
	if res.Status != "completed" || len(st.checkSDKDeals(t, res)["proposal"]) == 0 {
		t.Fatalf("status %q, deals %+v: the proposal seller should still be bought", res.Status, res.Deals)
	}
	inits, unknownCalls := 0, 0
	for _, r := range st.sdk.Requests() {
		if r.Seller == "guaranteed" && r.Method == "initialize" {
			inits++
		}
		if r.Seller == "auction" && (r.Tool == "get_products" || r.Tool == "create_media_buy") {
			unknownCalls++
		}
	}
	if inits != 1 {
		t.Fatalf("%d initialize requests with the wrong token: a 401 is neither retried nor waited for", inits)
	}
	if unknownCalls != 0 {
		t.Fatalf("%d shopping calls to the seller without an account", unknownCalls)
	}
	st.sdk.Forget(func(r sdkseller.Request) bool { return r.Seller == "guaranteed" })
	// The auction seller saw only the account check (list_accounts,
	// sync_accounts), with the right token; the proposal seller everything.
	st.sdk.CheckRequests(t, sdkBrand, sdkOperator)
}

// TestSDKBudgetChangeWithUpdateMediaBuy: a line booked with the SDK's
// auction seller gets a new budget through dealflow's path (a
// LineChangeRequested applied by the booker with update_media_buy): the
// seller reads back the package's new budget and revision, the change
// published again under another event id is not applied twice, the ledger
// keeps committed spend within the budget, and a pause, which the seller's
// ad server cannot do, fails with the seller's refusal. Then an add (a
// reallocation's move to a remaining quote) books what a decrease freed as
// a new media buy with create_media_buy: one buy, though the request is
// published twice.
func TestSDKBudgetChangeWithUpdateMediaBuy(t *testing.T) {
	st := startSDKStack(t, false, map[string]sdkCredential{"auction": {}})
	req := sdkCampaign("sdk-change", 20_000, 20_000, "video", "ctv", "display")
	st.submit(t, req)
	res := st.follow(t, req.CampaignID)
	deals := st.checkSDKDeals(t, res)["auction"]
	if res.Status != "completed" || len(deals) == 0 {
		t.Fatalf("status %q, deals %+v", res.Status, res.Deals)
	}
	d := deals[0]
	if strings.Contains(d.SellerPackageID, ",") || d.LineKey == "" {
		t.Fatalf("deal %+v: want one package and a line key", d)
	}
	publish := func(eventID, changeID string, a events.LineAction, budget events.Micros) {
		t.Helper()
		r := events.LineChangeRequested{CampaignID: req.CampaignID, ChangeID: changeID, LineKey: d.LineKey, Action: a, BudgetMicros: budget,
			Reason: "test", RequestedBy: events.RequestedByReallocation, ReallocationRevision: 1, RequestedAt: time.Now().UTC()}
		if err := st.app.Bus.Publish(t.Context(), must(events.New(events.KindLineChangeRequested, eventID, "test", req.CampaignID, r))); err != nil {
			t.Fatal(err)
		}
	}
	outcome := func(changeID string) (*events.LineChanged, *events.LineChangeFailed) {
		t.Helper()
		var ch *events.LineChanged
		var f *events.LineChangeFailed
		checkfor.Until(t, time.Minute, "the outcome of change "+changeID, func() bool {
			for _, e := range storedEvents(t, st.app.Bus, events.KindLineChanged.SubjectFor(req.CampaignID)) {
				if c, err := events.PayloadOf[events.LineChanged](e, events.KindLineChanged); err == nil && c.ChangeID == changeID {
					ch = &c
				}
			}
			for _, e := range storedEvents(t, st.app.Bus, events.KindLineChangeFailed.SubjectFor(req.CampaignID)) {
				if c, err := events.PayloadOf[events.LineChangeFailed](e, events.KindLineChangeFailed); err == nil && c.ChangeID == changeID {
					f = &c
				}
			}
			return ch != nil || f != nil
		})
		return ch, f
	}
	seller := adcp.Seller{URL: st.sdk.Direct["auction"], Token: sdkToken, Account: &adcp.AccountRef{Brand: &adcp.BrandRef{Domain: sdkBrand}, Operator: sdkOperator}}
	client := adcp.New(adcp.Config{AllowPrivate: true, HTTPClient: &http.Client{Transport: sellerclient.NewGuardedTransport(true)}})
	readBack := func() adcp.MediaBuy {
		t.Helper()
		buys, err := client.GetMediaBuys(t.Context(), seller, d.MediaBuyID)
		if err != nil || len(buys) != 1 {
			t.Fatalf("get_media_buys: %v %+v", err, buys)
		}
		return buys[0]
	}

	// Down by a tenth, to the cent.
	less := d.SpendMicros - d.SpendMicros/10/10_000*10_000
	publish("ev-less", "chg-less", events.LineSetBudget, less)
	ch, f := outcome("chg-less")
	if f != nil || ch.BudgetAfterMicros != less || ch.BudgetBeforeMicros != d.SpendMicros || ch.Protocol != events.ProtocolADCP ||
		ch.Revision != d.Revision+1 || ch.CommittedMicros > req.Brief.BudgetMicros {
		t.Fatalf("decrease: %+v %+v", ch, f)
	}
	b := readBack()
	if b.TotalBudgetMicros != less || b.Revision != d.Revision+1 || len(b.Packages) != 1 || b.Packages[0].BudgetMicros != less {
		t.Fatalf("the seller reads back %+v after the decrease to %s", b, less)
	}
	// The same change again, under another event id: applied once.
	publish("ev-less-again", "chg-less", events.LineSetBudget, less)
	// And back up to the booked budget, which the decrease freed.
	publish("ev-more", "chg-more", events.LineSetBudget, d.SpendMicros)
	if ch, f := outcome("chg-more"); f != nil || ch.BudgetAfterMicros != d.SpendMicros || ch.Revision != d.Revision+2 {
		t.Fatalf("increase: %+v %+v", ch, f)
	}
	if b := readBack(); b.TotalBudgetMicros != d.SpendMicros || b.Revision != d.Revision+2 {
		t.Fatalf("the seller reads back %+v after the increase", b)
	}
	updates := 0
	for _, r := range st.sdk.Requests() {
		if r.Tool == "update_media_buy" && !r.IsError {
			updates++
			if !strings.Contains(string(r.Args), `"idempotency_key":"dealflow.chg.`) {
				t.Fatalf("update without dealflow's key: %s", r.Args)
			}
		}
	}
	if updates != 2 {
		t.Fatalf("%d update_media_buy calls, want 2 (the repeated change applied once)", updates)
	}
	publish("ev-pause", "chg-pause", events.LinePause, 0)
	if ch, f := outcome("chg-pause"); ch != nil || f.Code != events.ChangeUnsupported || !strings.Contains(f.Reason, "UNSUPPORTED_FEATURE") {
		t.Fatalf("pause at a seller that cannot: %+v %+v", ch, f)
	}

	// An add (a reallocation's move to a remaining quote): what a decrease
	// frees books a quote of the seller's as a new media buy —
	// create_media_buy under a key derived from the change_id — once,
	// though the request is published twice.
	freed := d.SpendMicros / 10 / 10_000 * 10_000
	publish("ev-less2", "chg-less2", events.LineSetBudget, d.SpendMicros-freed)
	if ch, f := outcome("chg-less2"); f != nil || ch.BudgetAfterMicros != d.SpendMicros-freed {
		t.Fatalf("decrease before the add: %+v %+v", ch, f)
	}
	cmp, err := st.app.Campaigns.Get(t.Context(), req.CampaignID)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.app.Campaigns.LoadQuotes(t.Context(), cmp); err != nil {
		t.Fatal(err)
	}
	booked := map[string]bool{}
	for _, x := range res.Deals {
		booked[campaign.QuoteKey(x.SellerURL, x.PackageID)] = true
	}
	// A quote of the seller's that the freed budget can buy (its minimum
	// order), one not booked as a line first.
	var q *events.QuoteReady
	for _, k := range slices.Sorted(maps.Keys(cmp.Quotes)) {
		x := cmp.Quotes[k]
		if x.Seller.URL != d.SellerURL || x.FinalCPMMicros <= 0 || int64(freed)*1000/int64(x.FinalCPMMicros) < max(x.MinImpressions, 1) {
			continue
		}
		if q == nil || (!booked[k] && booked[campaign.QuoteKey(q.Seller.URL, q.Package.ID)]) {
			q = &x
		}
	}
	if q == nil {
		t.Fatalf("no quote of %s among %d that %s can buy", d.SellerURL, len(cmp.Quotes), freed)
	}
	buys := func() int {
		t.Helper()
		all, err := client.ListMediaBuys(t.Context(), seller)
		if err != nil {
			t.Fatal(err)
		}
		return len(all)
	}
	t.Logf("add of %s (booked as a line already: %v) for %s", q.Package.ID, booked[campaign.QuoteKey(q.Seller.URL, q.Package.ID)], freed)
	before := buys()
	add := events.LineChangeRequested{CampaignID: req.CampaignID, ChangeID: "chg-add", LineKey: events.AddedLineKey("chg-add"), Action: events.LineAdd,
		BudgetMicros: freed, Quote: &events.QuoteRef{SellerURL: q.Seller.URL, PackageID: q.Package.ID, QuoteID: q.QuoteID, CPMMicros: q.FinalCPMMicros},
		Reason: "test add", RequestedBy: events.RequestedByReallocation, ReallocationRevision: 2, RequestedAt: time.Now().UTC()}
	for _, id := range []string{"ev-add", "ev-add-again"} {
		if err := st.app.Bus.Publish(t.Context(), must(events.New(events.KindLineChangeRequested, id, "test", req.CampaignID, add))); err != nil {
			t.Fatal(err)
		}
	}
	ch, f = outcome("chg-add")
	if f != nil || ch.Action != events.LineAdd || ch.MediaBuyID == "" || ch.MediaBuyID == d.MediaBuyID || ch.BudgetAfterMicros <= 0 ||
		ch.BudgetAfterMicros > freed || ch.CommittedMicros > req.Brief.BudgetMicros {
		t.Fatalf("add of %s: %+v %+v", q.Package.ID, ch, f)
	}
	nb, err := client.GetMediaBuys(t.Context(), seller, ch.MediaBuyID)
	if err != nil || len(nb) != 1 || nb[0].TotalBudgetMicros != ch.BudgetAfterMicros {
		t.Fatalf("the seller reads back %+v for the added buy (%v)", nb, err)
	}
	// The second copy is applied once: handled after the first, the
	// ledger answers it; handled beside it, it sends the same key, which
	// the seller replays. Either way the seller holds one buy more.
	checkfor.Until(t, 30*time.Second, "the add's second copy handled", func() bool {
		stats, err := st.app.Bus.ConsumerStats(t.Context())
		c, ok := stats[booker.StageChange]
		return err == nil && ok && c == [2]uint64{}
	})
	if n := buys() - before; n != 1 {
		t.Fatalf("the seller holds %d buys more after the add, want 1", n)
	}
	st.sdk.CheckRequests(t, sdkBrand, sdkOperator)
	st.sdk.CheckResponses(t)
}

package conformance

// The buyer's AdCP cases against sales agents built on the AdCP TypeScript
// SDK (test/adcp-sdk-seller: @adcp/sdk's createAdcpServer, decisioning
// platform and mock ad servers), the judge of how dealflow speaks AdCP. The
// SDK speaks AdCP 3.0 (its schemas are 3.0.x); every request dealflow sends
// must still validate against the 3.1.19 schemas. Needs node and `npm ci`
// in test/adcp-sdk-seller (.ci/run does both); without them the tests fail,
// they never skip.

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/sellerclient"
	"github.com/dealflow/dealflow/pkg/sellerclient/adcp"
	sdkseller "github.com/dealflow/dealflow/test/adcp-sdk-seller"
)

const (
	sdkToken    = "sdk-conformance-token-0123456789"
	sdkBrand    = "acme-soda.example"
	sdkOperator = "dealflow-buyer.example"
)

// sdkTarget is the SDK sellers and a client whose every call goes through
// their recording proxies.
type sdkTarget struct {
	sellers *sdkseller.Sellers
	client  *adcp.Client
}

func newSDKTarget(t *testing.T) *sdkTarget {
	t.Helper()
	s := sdkseller.Start(t, sdkseller.Config{Token: sdkToken, Accounts: []sdkseller.Account{{Brand: sdkBrand, Operator: sdkOperator}}})
	t.Logf("sellers: %s", s)
	tg := &sdkTarget{sellers: s, client: adcp.New(adcp.Config{AllowPrivate: true, RetryBase: 10 * time.Millisecond,
		HTTPClient: &http.Client{Transport: sellerclient.NewGuardedTransport(true)}})}
	t.Cleanup(func() { checkSDKRequests(t, s) })
	return tg
}

func (tg *sdkTarget) seller(url string) adcp.Seller {
	return adcp.Seller{URL: url, Token: sdkToken, Brand: &adcp.BrandRef{Domain: sdkBrand},
		Account: &adcp.AccountRef{Brand: &adcp.BrandRef{Domain: sdkBrand}, Operator: sdkOperator}}
}

// checkSDKRequests: every request dealflow sent carried the Bearer token,
// every tools/call validates against the AdCP 3.1.19 request schema, and
// every account-scoped task named the account.
func checkSDKRequests(t *testing.T, s *sdkseller.Sellers) {
	t.Helper()
	if s.CheckRequests(t, sdkBrand, sdkOperator) == 0 {
		t.Error("no tools/call was recorded")
	}
	t.Logf("AdCP 3.0 (SDK) answers differ from 3.1.19 only as known: %v", s.CheckResponses(t))
}

func sdkCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// await polls a task until it is final.
func (tg *sdkTarget) await(t *testing.T, ctx context.Context, s adcp.Seller, taskID string) *adcp.TaskStatus {
	t.Helper()
	for {
		st, err := tg.client.GetTaskStatus(ctx, s, taskID)
		if err != nil {
			t.Fatalf("task status %s: %v", taskID, err)
		}
		if st.Final() {
			return st
		}
		select {
		case <-ctx.Done():
			t.Fatalf("task %s still %s", taskID, st.Status)
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// readBack checks that get_media_buys returns the buy exactly as booked:
// id, packages (ids, products, pricing options, budgets) and total.
func (tg *sdkTarget) readBack(t *testing.T, ctx context.Context, s adcp.Seller, booked *adcp.MediaBuy, total events.Micros) {
	t.Helper()
	buys, err := tg.client.GetMediaBuys(ctx, s, booked.MediaBuyID)
	if err != nil {
		t.Fatalf("get_media_buys: %v", err)
	}
	if len(buys) != 1 {
		t.Fatalf("get_media_buys %s: %d buys", booked.MediaBuyID, len(buys))
	}
	got := buys[0]
	if got.MediaBuyID != booked.MediaBuyID || got.TotalBudgetMicros != total || got.Revision != booked.Revision || len(got.Packages) != len(booked.Packages) ||
		got.MediaBuyStatus == "" {
		t.Fatalf("read back %+v, booked %+v (total %s)", got, booked, total)
	}
	for i, p := range booked.Packages {
		g := got.Packages[i]
		if g.PackageID != p.PackageID || g.ProductID != p.ProductID || g.PricingOptionID != p.PricingOptionID || g.BudgetMicros != p.BudgetMicros ||
			g.BidPriceMicros != p.BidPriceMicros {
			t.Fatalf("package %d read back %+v, booked %+v", i, g, p)
		}
	}
}

func buyWindow() (time.Time, time.Time) {
	start := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Hour)
	return start, start.Add(30 * 24 * time.Hour)
}

// TestSDKGuaranteedSeller: a guaranteed seller built on the SDK, in front of
// its sales-guaranteed mock ad server. The account (brand + operator) is
// found with list_accounts; products carry fixed CPMs and an availability
// forecast; a buy goes to IO review (submitted), is polled to completion,
// replays under its key, conflicts under its key with another body, and
// reads back identically with get_media_buys.
func TestSDKGuaranteedSeller(t *testing.T) {
	tg := newSDKTarget(t)
	ctx := sdkCtx(t)
	s := tg.seller(tg.sellers.Guaranteed)

	caps, err := tg.client.GetCapabilities(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if r := adcp.SkipReason(caps); r != "" || caps.Account == nil || caps.Account.RequireOperatorAuth {
		t.Fatalf("capabilities: skip %q, account %+v", r, caps.Account)
	}
	check, err := tg.client.ResolveAccount(ctx, s, caps)
	if err != nil || check.How != adcp.OpListAccounts || check.Account.Status != "active" {
		t.Fatalf("account: %v %v", check, err)
	}

	start, end := buyWindow()
	q := adcp.ProductsQuery{Brief: "premium sports video", Channels: []string{"olv", "ctv"}, BudgetMaxMicros: events.MustMicros(60_000),
		StartDate: start.Format(events.DateLayout), EndDate: end.Format(events.DateLayout)}
	res, err := tg.client.GetProductsAnyPricing(ctx, s, q)
	if err != nil {
		t.Fatal(err)
	}
	var pick *adcp.Product
	for i := range res.Products {
		p := &res.Products[i]
		if p.DeliveryType != "guaranteed" || len(p.PricingOptions) != 1 || !p.PricingOptions[0].Fixed || p.PricingOptions[0].FixedPriceMicros <= 0 {
			t.Fatalf("product %+v: want guaranteed with one fixed CPM", p)
		}
		if p.Forecast.Available() <= 0 {
			t.Errorf("product %s: no availability forecast (%+v)", p.ProductID, p.Forecast)
		}
		if pick == nil || p.PricingOptions[0].MinSpendMicros < pick.PricingOptions[0].MinSpendMicros {
			pick = p
		}
	}
	if pick == nil {
		t.Fatal("no products")
	}
	opt := pick.PricingOptions[0]
	budget := opt.MinSpendMicros + events.MustMicros(1234.567891) // rounded down to 1234.56 on the wire
	req := adcp.MediaBuyRequest{IdempotencyKey: adcp.NewIdempotencyKey(), Account: *s.Account, Brand: *s.Brand, Start: start, End: end,
		Packages: []adcp.PackageRequest{{ProductID: pick.ProductID, PricingOptionID: opt.PricingOptionID, BudgetMicros: budget}}}
	mb, err := tg.client.CreateMediaBuy(ctx, s, req)
	if err != nil {
		t.Fatal(err)
	}
	if mb.Status != "submitted" || mb.TaskID == "" || mb.Booked() {
		t.Fatalf("want submitted (IO review): %+v", mb)
	}
	st := tg.await(t, ctx, s, mb.TaskID)
	if st.Status != "completed" || !st.MediaBuy.Booked() || len(st.MediaBuy.Packages) != 1 {
		t.Fatalf("task ended %+v", st)
	}
	booked := st.MediaBuy
	if want := adcp.MinorUnitFloor(budget, "USD"); booked.Packages[0].BudgetMicros != want {
		t.Fatalf("booked budget %s, want %s (the budget in whole cents)", booked.Packages[0].BudgetMicros, want)
	}
	again, err := tg.client.CreateMediaBuy(ctx, s, req)
	if err != nil || !again.Replayed || again.TaskID != mb.TaskID {
		t.Fatalf("replay: %+v %v", again, err)
	}
	other := req
	other.Packages = []adcp.PackageRequest{{ProductID: pick.ProductID, PricingOptionID: opt.PricingOptionID, BudgetMicros: budget + events.MustMicros(1)}}
	if _, err := tg.client.CreateMediaBuy(ctx, s, other); !errors.Is(err, sellerclient.ErrIdempotencyConflict) {
		t.Fatalf("same key, other body: %v", err)
	}
	tg.readBack(t, ctx, s, booked, booked.Packages[0].BudgetMicros)

	// Its delivery, as the pacer reads it: the mock ad server reports a
	// delivering order at 40% of its budget at a $35 CPM.
	d, err := tg.client.GetMediaBuyDelivery(ctx, s, booked.MediaBuyID)
	if err != nil {
		t.Fatalf("get_media_buy_delivery: %v", err)
	}
	m, ok := d.MediaBuy(booked.MediaBuyID)
	if !ok || d.Currency != "USD" || d.ReportingEnd.IsZero() || len(d.MediaBuys) != 1 {
		t.Fatalf("delivery %+v", d)
	}
	p, ok := m.Package(booked.Packages[0].PackageID)
	spent := adcp.MinorUnitFloor(booked.Packages[0].BudgetMicros*2/5, "USD")
	if !ok || m.Status != "active" || p.SpendMicros < spent-10_000 || p.SpendMicros > spent+10_000 || p.Impressions <= 0 ||
		p.RateMicros != opt.FixedPriceMicros || m.SpendMicros != p.SpendMicros {
		t.Fatalf("delivery of %s: %+v, package %+v (want about %s spent)", booked.MediaBuyID, m, p, spent)
	}
}

// TestSDKAuctionSeller: a non-guaranteed seller built on the SDK answers a
// plain brief with fixed prices only; dealflow asks again for auction
// pricing (is_fixed_price false) and gets floors and price guidance. A bid
// in whole cents above the floor books at once, and reads back identically.
func TestSDKAuctionSeller(t *testing.T) {
	tg := newSDKTarget(t)
	ctx := sdkCtx(t)
	s := tg.seller(tg.sellers.Auction)
	caps, err := tg.client.GetCapabilities(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tg.client.ResolveAccount(ctx, s, caps); err != nil {
		t.Fatal(err)
	}
	start, end := buyWindow()
	res, err := tg.client.GetProductsAnyPricing(ctx, s, adcp.ProductsQuery{Brief: "display and video remnant", Channels: []string{"display", "olv"},
		BudgetMaxMicros: events.MustMicros(20_000), StartDate: start.Format(events.DateLayout), EndDate: end.Format(events.DateLayout)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Notes) == 0 || !strings.Contains(res.Notes[0], "is_fixed_price false") {
		t.Fatalf("notes %v: the auction options should have been asked for", res.Notes)
	}
	var prod *adcp.Product
	var auction *adcp.PricingOption
	for i := range res.Products {
		p := &res.Products[i]
		fixed, auc := 0, 0
		for j := range p.PricingOptions {
			o := &p.PricingOptions[j]
			if o.Fixed {
				fixed++
			} else if o.Priced && o.FloorPriceMicros > 0 && o.Guidance != nil && o.Guidance.P50 > 0 {
				auc++
				if o.MinSpendMicros == 0 && prod == nil {
					prod, auction = p, o
				}
			}
		}
		if fixed != 1 || auc != 1 {
			t.Fatalf("product %s: %d fixed and %d auction options, want one of each: %+v", p.ProductID, fixed, auc, p.PricingOptions)
		}
		if p.Forecast == nil || p.Forecast.ImpressionsFor(events.MustMicros(20_000)) <= 0 {
			t.Errorf("product %s: no spend-curve forecast for the budget: %+v", p.ProductID, p.Forecast)
		}
	}
	if prod == nil {
		t.Fatal("no auction option without a minimum spend")
	}
	bid := adcp.MinorUnitFloor(auction.Guidance.P50, "USD")
	budget := events.MustMicros(5_000)
	req := adcp.MediaBuyRequest{IdempotencyKey: adcp.NewIdempotencyKey(), Account: *s.Account, Brand: *s.Brand, Start: start, End: end,
		Packages: []adcp.PackageRequest{{ProductID: prod.ProductID, PricingOptionID: auction.PricingOptionID, BudgetMicros: budget, BidPriceMicros: bid}}}
	mb, err := tg.client.CreateMediaBuy(ctx, s, req)
	if err != nil {
		t.Fatal(err)
	}
	if !mb.Booked() || len(mb.Packages) != 1 || mb.Packages[0].BidPriceMicros != bid || mb.Packages[0].BudgetMicros != budget {
		t.Fatalf("auction buy: %+v", mb)
	}
	tg.readBack(t, ctx, s, mb, budget)
	low := req
	low.IdempotencyKey = adcp.NewIdempotencyKey()
	low.Packages = []adcp.PackageRequest{{ProductID: prod.ProductID, PricingOptionID: auction.PricingOptionID, BudgetMicros: budget, BidPriceMicros: auction.FloorPriceMicros - 10_000}}
	if _, err := tg.client.CreateMediaBuy(ctx, s, low); !errors.Is(err, sellerclient.ErrValidation) {
		t.Fatalf("a bid below the floor: %v", err)
	}
}

// TestSDKProposalSeller: a proposal-mode seller built on the SDK answers a
// brief with products and draft proposals, refuses package buys, and sells
// a proposal once finalized (committed, held) with create_media_buy
// {proposal_id, total_budget}: the packages follow the allocations and read
// back identically.
func TestSDKProposalSeller(t *testing.T) {
	tg := newSDKTarget(t)
	ctx := sdkCtx(t)
	s := tg.seller(tg.sellers.Proposal)
	start, end := buyWindow()
	res, err := tg.client.GetProductsAnyPricing(ctx, s, adcp.ProductsQuery{Brief: "premium sports video and CTV", BudgetMaxMicros: events.MustMicros(150_000),
		StartDate: start.Format(events.DateLayout), EndDate: end.Format(events.DateLayout)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Proposals) < 2 {
		t.Fatalf("want proposals with the brief answer: %+v", res.Proposals)
	}
	var balanced *adcp.Proposal
	var quote adcp.ProposalQuote
	for i := range res.Proposals {
		pr := &res.Proposals[i]
		q, err := pr.Price(res.Products)
		if err != nil {
			t.Fatalf("proposal %s does not price: %v", pr.ProposalID, err)
		}
		if pr.Status != "draft" || q.CPMMicros <= 0 || q.MinSpendMicros <= 0 {
			t.Fatalf("proposal %+v priced %+v", pr, q)
		}
		if len(pr.Allocations) > 1 {
			balanced, quote = pr, q
		}
	}
	if balanced == nil {
		t.Fatal("no multi-product proposal")
	}
	// A package buy is refused: this seller sells proposals only.
	p0 := res.Products[0]
	_, err = tg.client.CreateMediaBuy(ctx, s, adcp.MediaBuyRequest{IdempotencyKey: adcp.NewIdempotencyKey(), Account: *s.Account, Brand: *s.Brand, Start: start, End: end,
		Packages: []adcp.PackageRequest{{ProductID: p0.ProductID, PricingOptionID: p0.PricingOptions[0].PricingOptionID, BudgetMicros: events.MustMicros(60_000)}}})
	if !errors.Is(err, sellerclient.ErrUnsupported) {
		t.Fatalf("package buy at a proposal-only seller: %v", err)
	}
	// A draft is not bought.
	total := quote.MinSpendMicros + events.MustMicros(0.004) // sub-cent: rounded down on the wire
	buy := adcp.MediaBuyRequest{IdempotencyKey: adcp.NewIdempotencyKey(), Account: *s.Account, Brand: *s.Brand, Start: start, End: end,
		ProposalID: balanced.ProposalID, TotalBudgetMicros: total, Currency: "USD"}
	if _, err := tg.client.CreateMediaBuy(ctx, s, buy); !errors.Is(err, sellerclient.ErrValidation) || !strings.Contains(err.Error(), "PROPOSAL_NOT_COMMITTED") {
		t.Fatalf("buying a draft: %v", err)
	}
	pr, prods, err := tg.client.FinalizeProposalWithProducts(ctx, s, balanced.ProposalID)
	if err != nil {
		t.Fatal(err)
	}
	if pr.Status != "committed" || !pr.ExpiresAt.After(time.Now()) {
		t.Fatalf("finalized: %+v", pr)
	}
	if q, err := pr.Price(prods); err != nil || q.CPMMicros != quote.CPMMicros {
		t.Fatalf("the committed proposal prices %+v (%v), the draft %+v", q, err, quote)
	}
	buy.IdempotencyKey = adcp.NewIdempotencyKey()
	mb, err := tg.client.CreateMediaBuy(ctx, s, buy)
	if err != nil {
		t.Fatal(err)
	}
	if !mb.Booked() || len(mb.Packages) != len(balanced.Allocations) {
		t.Fatalf("proposal buy: %+v", mb)
	}
	var sum events.Micros
	for i, p := range mb.Packages {
		if p.ProductID != balanced.Allocations[i].ProductID {
			t.Fatalf("package %d is %s, allocation %s", i, p.ProductID, balanced.Allocations[i].ProductID)
		}
		sum += p.BudgetMicros
	}
	if want := adcp.MinorUnitFloor(total, "USD"); sum != want {
		t.Fatalf("packages sum to %s, total_budget sent %s", sum, want)
	}
	tg.readBack(t, ctx, s, mb, sum)
}

// TestSDKCredentialRefused: a wrong token is refused at the HTTP layer on
// the MCP handshake: unauthorized, naming initialize, at once (no retry);
// an unknown operator has no account: list_accounts does not show it and
// sync_accounts refuses to provision it, an error naming the field.
func TestSDKCredentialRefused(t *testing.T) {
	tg := newSDKTarget(t)
	ctx := sdkCtx(t)
	wrong := tg.seller(tg.sellers.Guaranteed)
	wrong.Token = "not-the-token-0123456789"
	c := adcp.New(adcp.Config{AllowPrivate: true})
	_, err := c.GetCapabilities(ctx, wrong)
	var ae *adcp.Error
	if !errors.Is(err, sellerclient.ErrUnauthorized) || !errors.As(err, &ae) || ae.HTTPStatus != http.StatusUnauthorized || !strings.Contains(err.Error(), "initialize") {
		t.Fatalf("wrong token: %v", err)
	}
	n := 0
	for _, r := range tg.sellers.Requests() {
		if r.Method == "initialize" && r.Authorization != "Bearer "+sdkToken {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d initialize requests with the wrong token: a 401 is not retried", n)
	}
	// Drop the wrong-token request from the recording: the cleanup checks
	// that every request dealflow sends with its credentials carries them.
	unknown := tg.seller(tg.sellers.Auction)
	unknown.Account = &adcp.AccountRef{Brand: &adcp.BrandRef{Domain: sdkBrand}, Operator: "unknown-operator.example"}
	caps, err := tg.client.GetCapabilities(ctx, unknown)
	if err != nil {
		t.Fatal(err)
	}
	_, err = tg.client.ResolveAccount(ctx, unknown, caps)
	if !errors.Is(err, adcp.ErrAccount) || !errors.As(err, &ae) || ae.Field != "account.operator" || !strings.Contains(ae.Message, "unknown-operator.example") ||
		!strings.Contains(ae.Message, "sync_accounts") {
		t.Fatalf("unknown operator: %v", err)
	}
	tg.sellers.Forget(func(r sdkseller.Request) bool { return r.Authorization != "Bearer "+sdkToken })
}

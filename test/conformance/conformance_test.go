package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/sandbox"
	"github.com/dealflow/dealflow/pkg/identity"
	"github.com/dealflow/dealflow/pkg/sellerclient"
)

// Products of the default catalog (§1.7) used by the cases.
const (
	videoProduct   = "prod-15ba2543" // Pre-Roll Video: base 25, floor 18
	ctvProduct     = "prod-53e78a97" // CTV Premium Streaming: base 35, floor 28, max 20M
	displayProduct = "prod-91ddc363" // Premium Display - Homepage: base 15 (first in catalog)
	doohProduct    = "prod-f114d7a7" // unpriced
)

var (
	quoteIDRE = regexp.MustCompile(`^qt-[0-9a-f]{12}$`)
	dealIDRE  = regexp.MustCompile(`^DEMO-[0-9A-F]{12}$`)
	negIDRE   = regexp.MustCompile(`^neg-[0-9a-f]{8}$`)
	revokedRE = regexp.MustCompile(`^API key key-[0-9a-f]{8} has been revoked$`)
)

// conformanceCases are the §8 cases a buyer client exercises, in §8 order.
// Cases 3, 14, 19, 26 and 41-43 need requests the buyer client never makes
// (limit=0, operator routes, linear TV, registry administration,
// from-template deals, orders, /pricing) and are not here.
var conformanceCases = []struct {
	name string
	run  func(*testing.T)
}{
	{"Case01_AgentCard", case01AgentCard},
	{"Case02_ProductCatalog", case02ProductCatalog},
	{"Case04_UnknownIDsNotFound", case04UnknownIDsNotFound},
	{"Case05_MediaKit", case05MediaKit},
	{"Case06_PublicPackageView", case06PublicPackageView},
	{"Case07_SeatPackageView", case07SeatPackageView},
	{"Case08_AgencyAdvertiserPackageViews", case08AgencyAdvertiserPackageViews},
	{"Case09_UnverifiedAgencyClaim", case09UnverifiedAgencyClaim},
	{"Case10_AdvertiserClaimWithoutIDs", case10AdvertiserClaimWithoutIDs},
	{"Case11_AnonymousSearch", case11AnonymousSearch},
	{"Case12_PackageListFilters", case12PackageListFilters},
	{"Case13_BadKeys", case13BadKeys},
	{"Case15_AnonymousQuote", case15AnonymousQuote},
	{"Case16_QuoteIdempotency", case16QuoteIdempotency},
	{"Case17_QuoteRequestRefusedByClient", case17QuoteRequestRefusedByClient},
	{"Case18_QuoteBusinessErrors", case18QuoteBusinessErrors},
	{"Case20_UnpricedProduct", case20UnpricedProduct},
	{"Case21_MoneyIsIntegerMicros", case21MoneyIsIntegerMicros},
	{"Case22_TieredQuotes", case22TieredQuotes},
	{"Case23_AnonymousIdentityClaimFloored", case23AnonymousIdentityClaimFloored},
	{"Case24_VolumeDiscountAndAvailability", case24VolumeDiscountAndAvailability},
	{"Case25_TargetCPM", case25TargetCPM},
	{"Case27_QuoteNotFoundAndExpired", case27QuoteNotFoundAndExpired},
	{"Case28_BookDeal", case28BookDeal},
	{"Case29_BookingIdempotency", case29BookingIdempotency},
	{"Case30_ReadBackQuoteAndDeal", case30ReadBackQuoteAndDeal},
	{"Case31_PublicVideoNegotiationTrace", case31PublicVideoNegotiationTrace},
	{"Case32_NegotiationReplay", case32NegotiationReplay},
	{"Case33_CounterAfterAccepted", case33CounterAfterAccepted},
	{"Case34_NegotiationMessageRefusedByClient", case34NegotiationMessageRefusedByClient},
	{"Case35_ContinuationKeys", case35ContinuationKeys},
	{"Case36_AgencyBelowFloor", case36AgencyBelowFloor},
	{"Case37_BuyerAccept", case37BuyerAccept},
	{"Case38_AcceptWithoutNegotiationAndZeroOffer", case38AcceptWithoutNegotiationAndZeroOffer},
	{"Case39_OfferAtOrAboveBase", case39OfferAtOrAboveBase},
	{"Case40_SeatCTVTrace", case40SeatCTVTrace},
	{"Case44_ContentTypes", case44ContentTypes},
	{"Case45_DealsAPIBuyerSide", case45DealsAPIBuyerSide},
}

// TestSellerConformance runs the cases in order, then validates every request
// body the client sent against the OpenAPI request schemas.
func TestSellerConformance(t *testing.T) {
	ran := 0 // cases actually run (t.Run also returns true for filtered-out ones)
	for _, c := range conformanceCases {
		t.Run(c.name, func(t *testing.T) {
			ran++
			c.run(t)
		})
	}
	t.Run("RequestBodiesMatchOpenAPI", func(t *testing.T) {
		checkRequestBodies(t, ran == len(conformanceCases))
	})
}

// checkRequestBodies validates every POST the suite sent. When every case
// ran, each of the body kinds (validatedPaths) must have been validated at least once.
func checkRequestBodies(t *testing.T, all bool) {
	v := openAPIValidator(t)
	counts := map[string]int{}
	standard := 0 // POSTs of the suite's standard client (case 44 rewrites others)
	for _, r := range suite.sent() {
		if r.Method != http.MethodPost {
			continue
		}
		if r.UserAgent == suiteUA {
			standard++
			if r.ContentType != "application/json" {
				t.Errorf("POST %s sent with Content-Type %q, want application/json", r.Path, r.ContentType)
			}
		}
		if err := v.validate(r.Path, r.Body); err != nil {
			t.Errorf("POST %s body %s:\n%v", r.Path, bodySnippet(r.Body), err)
			continue
		}
		counts[r.Path]++
	}
	t.Logf("validated request bodies: %v (%d from the standard client)", counts, standard)
	if !all {
		return
	}
	if standard == 0 {
		t.Error("no POST from the standard client was recorded")
	}
	for _, p := range validatedPaths {
		if counts[p] == 0 {
			t.Errorf("no valid POST %s body was validated", p)
		}
	}
}

// ---- helpers ----

// caseCtx bounds one case.
func caseCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), caseTimeout)
	t.Cleanup(cancel)
	return ctx
}

// ikSeq makes every ik call unique, also across -count repetitions in one
// process (same sandbox, same runID).
var ikSeq atomic.Int64

// ik is a fresh idempotency key: unique per run (a real seller keeps keys
// for 24 h) and per call; the case name and label make seller logs readable.
// A case that replays a request reuses the request value, not ik.
func ik(t *testing.T, label string) string {
	return fmt.Sprintf("%s.%d.%s.%s", runID, ikSeq.Add(1), strings.ReplaceAll(t.Name(), "/", "."), label)
}

// auth is the fixture key for a tier.
func auth(tier identity.Tier) sellerclient.Auth {
	return sellerclient.Auth{APIKey: suite.keys[tier]}
}

var anon = sellerclient.Auth{}

func usd(micros int64) *sellerclient.Money {
	return &sellerclient.Money{AmountMicros: micros, Currency: "USD"}
}

func ptr[T any](v T) *T { return &v }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

func eq[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func eqSlice[T comparable](t *testing.T, what string, got, want []T) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// micros reads a Money amount; nil fails the test.
func micros(t *testing.T, what string, m *sellerclient.Money) int64 {
	t.Helper()
	if m == nil {
		t.Fatalf("%s is null", what)
	}
	if m.Currency != "USD" {
		t.Errorf("%s currency = %q, want USD", what, m.Currency)
	}
	return m.AmountMicros
}

// wantErr asserts err is a *sellerclient.Error of class with the given HTTP
// status (0: refused by the client before sending), machine code (when not
// empty) and message fragment (when not empty).
func wantErr(t *testing.T, err error, class error, status int, code, msg string) *sellerclient.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("call succeeded, want %v (status %d)", class, status)
	}
	if !errors.Is(err, class) {
		t.Errorf("error %v: errors.Is(err, %v) = false", err, class)
	}
	var e *sellerclient.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %T (%v) is not a *sellerclient.Error", err, err)
	}
	if e.Status != status {
		t.Errorf("status = %d, want %d (%v)", e.Status, status, err)
	}
	if code != "" && e.Code != code {
		t.Errorf("code = %q, want %q (%v)", e.Code, code, err)
	}
	if msg != "" && !strings.Contains(e.Message, msg) {
		t.Errorf("message = %q, want it to contain %q", e.Message, msg)
	}
	return e
}

// refused asserts the client refused a request before sending it.
func refused(t *testing.T, err error, msg string) {
	t.Helper()
	wantErr(t, err, sellerclient.ErrValidation, 0, "client_validation", msg)
}

// newQuote quotes and asserts the quote id format.
func newQuote(t *testing.T, ctx context.Context, a sellerclient.Auth, req sellerclient.QuoteRequest) *sellerclient.Quote {
	t.Helper()
	return newQuoteAt(t, ctx, suite.url, a, req)
}

func newQuoteAt(t *testing.T, ctx context.Context, url string, a sellerclient.Auth, req sellerclient.QuoteRequest) *sellerclient.Quote {
	t.Helper()
	q, err := client.CreateQuote(ctx, url, a, req)
	if err != nil {
		t.Fatalf("CreateQuote(%s %s): %v", req.ProductID, req.DealType, err)
	}
	if !quoteIDRE.MatchString(q.QuoteID) {
		t.Errorf("quote_id %q does not match %s", q.QuoteID, quoteIDRE)
	}
	return q
}

// videoQuote is an anonymous PD quote on pre-roll video (public, 25.00).
func videoQuote(t *testing.T, ctx context.Context, a sellerclient.Auth) *sellerclient.Quote {
	t.Helper()
	return newQuote(t, ctx, a, sellerclient.QuoteRequest{IdempotencyKey: ik(t, "quote"), ProductID: videoProduct, DealType: sellerclient.DealPD})
}

// priceWant is an expected quote price.
type priceWant struct {
	tier            identity.Tier
	final           int64
	tierPct, volPct float64
}

func checkPrice(t *testing.T, q *sellerclient.Quote, w priceWant) {
	t.Helper()
	eq(t, "buyer_tier", q.BuyerTier, w.tier)
	eq(t, "pricing.final_cpm", micros(t, "final_cpm", q.Pricing.FinalCPM), w.final)
	eq(t, "pricing.tier_discount_pct", q.Pricing.TierDiscountPct, w.tierPct)
	eq(t, "pricing.volume_discount_pct", q.Pricing.VolumeDiscountPct, w.volPct)
}

// step is one buyer message and the seller's expected answer.
type step struct {
	action     sellerclient.NegotiationAction // buyer move
	price      int64                          // buyer price micros; <0 sends none
	wantAction sellerclient.NegotiationAction // seller move (round.action)
	wantSeller int64
	wantStatus string
	wantRound  int
	wantLeft   int // rounds_remaining
	rationale  string
}

// negotiate plays steps on a quote-led negotiation and returns the
// negotiation id (the same on every answer).
func negotiate(t *testing.T, ctx context.Context, a sellerclient.Auth, quoteID string, steps []step) string {
	t.Helper()
	negID := ""
	for i, s := range steps {
		msg := sellerclient.NegotiationMessage{IdempotencyKey: ik(t, fmt.Sprintf("msg%d", i)), Action: s.action, QuoteID: quoteID}
		if s.price >= 0 {
			msg.BuyerPrice = usd(s.price)
		}
		r, err := client.Negotiate(ctx, suite.url, a, msg)
		if err != nil {
			t.Fatalf("step %d (%s %d): %v", i+1, s.action, s.price, err)
		}
		checkRound(t, fmt.Sprintf("step %d", i+1), r, s)
		if negID == "" {
			negID = r.NegotiationID
		} else if r.NegotiationID != negID {
			t.Errorf("step %d: negotiation_id %q, want %q", i+1, r.NegotiationID, negID)
		}
	}
	if !negIDRE.MatchString(negID) {
		t.Errorf("negotiation_id %q does not match %s", negID, negIDRE)
	}
	return negID
}

func checkRound(t *testing.T, label string, r *sellerclient.NegotiationRound, s step) {
	t.Helper()
	eq(t, label+" round.action", r.Round.Action, s.wantAction)
	eq(t, label+" round.seller_price", r.Round.SellerPrice.AmountMicros, s.wantSeller)
	eq(t, label+" status", r.Status, s.wantStatus)
	eq(t, label+" round.round_number", r.Round.RoundNumber, s.wantRound)
	if r.RoundsRemaining == nil {
		t.Errorf("%s rounds_remaining missing", label)
	} else {
		eq(t, label+" rounds_remaining", *r.RoundsRemaining, s.wantLeft)
	}
	if s.price >= 0 {
		eq(t, label+" round.buyer_price", r.Round.BuyerPrice.AmountMicros, s.price)
	}
	if s.rationale != "" && !strings.Contains(r.Round.Rationale, s.rationale) {
		t.Errorf("%s rationale = %q, want it to contain %q", label, r.Round.Rationale, s.rationale)
	}
}

// book books a quote and returns the deal.
func book(t *testing.T, ctx context.Context, a sellerclient.Auth, quoteID, label string) *sellerclient.DealBooking {
	t.Helper()
	d, err := client.BookDeal(ctx, suite.url, a, sellerclient.DealBookingRequest{IdempotencyKey: ik(t, label), QuoteID: quoteID})
	if err != nil {
		t.Fatalf("BookDeal(%s): %v", quoteID, err)
	}
	if !dealIDRE.MatchString(d.Deal.DealID) {
		t.Errorf("deal_id %q does not match %s", d.Deal.DealID, dealIDRE)
	}
	return d
}

// rawObject decodes a raw JSON object (package audience capabilities, error
// details, card extensions).
func rawObject(t *testing.T, what string, raw json.RawMessage) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		t.Fatalf("%s is not a JSON object: %s", what, raw)
	}
	return m
}

// ---- 1-2: discovery and catalog ----

// case01AgentCard: GET /.well-known/agent.json → protocols, auth schemes,
// legacy deal-type names, audience schema version.
func case01AgentCard(t *testing.T) {
	card, err := client.AgentCard(caseCtx(t), suite.url)
	must(t, err)
	eqSlice(t, "capabilities.protocols", card.Capabilities.Protocols, []string{"opendirect21"})
	if card.Authentication == nil {
		t.Fatal("card has no authentication block")
	}
	eqSlice(t, "authentication.schemes", card.Authentication.Schemes, []string{"api_key", "bearer"})
	eqSlice(t, "supported_deal_types", card.SupportedDealTypes, []string{"pg", "pmp", "preferred_deal", "private_auction"})
	eq(t, "audience_capabilities.schema_version", rawObject(t, "audience_capabilities", card.AudienceCapabilities)["schema_version"], any("1"))
	if card.Name == "" {
		t.Error("card name is empty")
	}
}

// case02ProductCatalog: the 13-product default catalog, display first at 15.00.
func case02ProductCatalog(t *testing.T) {
	products, err := client.ListProducts(caseCtx(t), suite.url)
	must(t, err)
	if len(products) != 13 {
		t.Fatalf("catalog has %d products, want 13", len(products))
	}
	eq(t, "products[0].product_id", products[0].ProductID, displayProduct)
	eq(t, "products[0].base_price", micros(t, "products[0].base_price", products[0].BasePrice), int64(15_000_000))
	byID := map[string]sellerclient.Product{}
	for _, p := range products {
		byID[p.ProductID] = p
	}
	eq(t, "CTV base_price", micros(t, "CTV base_price", byID[ctvProduct].BasePrice), int64(35_000_000))
	if f := byID[ctvProduct].Ext.FloorCPM; f == nil || *f != 28 {
		t.Errorf("CTV ext.floor_cpm = %v, want 28", f)
	}
	if byID[doohProduct].BasePrice != nil {
		t.Errorf("DOOH base_price = %v, want null (unpriced)", byID[doohProduct].BasePrice)
	}
}

// case04UnknownIDsNotFound: the client has no single-product read, so the
// string-detail 404 of case 4 ({"detail":"Product not found"}) is checked on
// the package reads it does have, and prod-nope is absent from the catalog.
func case04UnknownIDsNotFound(t *testing.T) {
	ctx := caseCtx(t)
	_, err := client.PublicPackage(ctx, suite.url, "pkg-nope0000")
	wantErr(t, err, sellerclient.ErrNotFound, 404, "", "Package not found")
	_, err = client.Package(ctx, suite.url, "pkg-nope0000", auth(identity.TierSeat), sellerclient.TierClaim{})
	wantErr(t, err, sellerclient.ErrNotFound, 404, "", "Package not found")
}

// ---- 5-12: media kit and packages ----

// case05MediaKit: an empty seller's media kit is all zeros and empty lists;
// the fixture seller's holds P1 only, featured, in public view.
func case05MediaKit(t *testing.T) {
	t.Run("EmptySeller", func(t *testing.T) {
		if notApplicable(t, suite.emptyURL != "", "a second seller with no packages") {
			return
		}
		mk, err := client.MediaKit(caseCtx(t), suite.emptyURL)
		must(t, err)
		eq(t, "total_packages", mk.TotalPackages, 0)
		eq(t, "featured_count", mk.FeaturedCount, 0)
		if mk.Featured == nil || len(mk.Featured) != 0 || mk.AllPackages == nil || len(mk.AllPackages) != 0 {
			t.Errorf("featured = %v, all_packages = %v, want [] and []", mk.Featured, mk.AllPackages)
		}
	})
	t.Run("FixtureSeller", func(t *testing.T) {
		mk, err := client.MediaKit(caseCtx(t), suite.url)
		must(t, err)
		eq(t, "total_packages", mk.TotalPackages, 1)
		eq(t, "featured_count", mk.FeaturedCount, 1)
		if len(mk.AllPackages) != 1 || len(mk.Featured) != 1 {
			t.Fatalf("all_packages %d, featured %d, want 1 and 1", len(mk.AllPackages), len(mk.Featured))
		}
		eq(t, "featured[0].package_id", mk.Featured[0].PackageID, suite.p1)
		eq(t, "all_packages[0].authenticated", mk.AllPackages[0].Authenticated, false)
		eq(t, "all_packages[0].price_range", mk.AllPackages[0].PriceRange, "$28-$42 CPM")
	})
}

// case06PublicPackageView: GET /media-kit/packages/{P1} is the public view.
func case06PublicPackageView(t *testing.T) {
	p, err := client.PublicPackage(caseCtx(t), suite.url, suite.p1)
	must(t, err)
	eq(t, "package_id", p.PackageID, suite.p1)
	eq(t, "price_range", p.PriceRange, "$28-$42 CPM")
	eq(t, "authenticated view", p.Authenticated, false)
	if p.ExactPrice != nil || p.FloorPrice != nil || p.Placements != nil {
		t.Errorf("public view leaks exact_price %v, floor_price %v, placements %v", p.ExactPrice, p.FloorPrice, p.Placements)
	}
	eq(t, "is_featured", p.IsFeatured, true)
	eqSlice(t, "tags", p.Tags, []string{"premium", "sports"})
	eqSlice(t, "ad_formats", p.AdFormats, []string{"video"})
	aud := rawObject(t, "audience_capabilities", p.AudienceCapabilities)
	eq(t, "audience_capabilities.supports_standard", aud["supports_standard"], any(true))
	eq(t, "audience_capabilities.supports_contextual", aud["supports_contextual"], any(true))
	if _, ok := aud["standard_segment_ids"]; ok {
		t.Error("public audience summary carries standard_segment_ids")
	}
}

// viewWant is an expected authenticated package view.
type viewWant struct {
	exact        float64
	priceRange   string
	negotiation  bool
	volumeOffers bool
}

func checkAuthView(t *testing.T, p *sellerclient.Package, w viewWant) {
	t.Helper()
	eq(t, "package_id", p.PackageID, suite.p1)
	eq(t, "authenticated view", p.Authenticated, true)
	if p.ExactPrice == nil {
		t.Fatal("exact_price missing")
	}
	eq(t, "exact_price", *p.ExactPrice, w.exact)
	eq(t, "price_range", p.PriceRange, w.priceRange)
	if p.FloorPrice == nil {
		t.Fatal("floor_price missing")
	}
	eq(t, "floor_price", *p.FloorPrice, 28.0)
	eq(t, "negotiation_enabled", p.NegotiationEnabled, w.negotiation)
	eq(t, "volume_discounts_available", p.VolumeDiscountsAvailable, w.volumeOffers)
	if len(p.Placements) == 0 {
		t.Fatal("placements missing")
	}
	eq(t, "placements[0].product_id", p.Placements[0].ProductID, p1Product)
	eq(t, "placements[0].weight", p.Placements[0].Weight, 1.0)
	aud := rawObject(t, "audience_capabilities", p.AudienceCapabilities)
	eq(t, "audience_capabilities.standard_segment_ids", fmt.Sprint(aud["standard_segment_ids"]), "[3 4]")
	eq(t, "audience_capabilities.contextual_segment_ids", fmt.Sprint(aud["contextual_segment_ids"]), "[IAB17-1]")
}

// case07SeatPackageView: GET /packages/{P1} with the seat key → 5% off, exact.
func case07SeatPackageView(t *testing.T) {
	p, err := client.Package(caseCtx(t), suite.url, suite.p1, auth(identity.TierSeat), sellerclient.TierClaim{})
	must(t, err)
	checkAuthView(t, p, viewWant{33.25, "$33 CPM", false, false})
}

// case08AgencyAdvertiserPackageViews: agency 31.5 "$32 CPM"; advertiser 29.75 "$30 CPM".
func case08AgencyAdvertiserPackageViews(t *testing.T) {
	for _, c := range []struct {
		tier identity.Tier
		want viewWant
	}{
		{identity.TierAgency, viewWant{31.5, "$32 CPM", true, true}},
		{identity.TierAdvertiser, viewWant{29.75, "$30 CPM", true, true}},
	} {
		t.Run(string(c.tier), func(t *testing.T) {
			p, err := client.Package(caseCtx(t), suite.url, suite.p1, auth(c.tier), sellerclient.TierClaim{})
			must(t, err)
			checkAuthView(t, p, c.want)
		})
	}
}

// case09UnverifiedAgencyClaim: no key, ?buyer_tier=agency&agency_id=a → the
// claim is honoured on this read-only surface.
func case09UnverifiedAgencyClaim(t *testing.T) {
	p, err := client.Package(caseCtx(t), suite.url, suite.p1, anon,
		sellerclient.TierClaim{Tier: identity.TierAgency, AgencyID: "a"})
	must(t, err)
	checkAuthView(t, p, viewWant{31.5, "$32 CPM", true, true})
}

// case10AdvertiserClaimWithoutIDs: ?buyer_tier=advertiser with no ids →
// authenticated shape at the undiscounted base and the public range.
func case10AdvertiserClaimWithoutIDs(t *testing.T) {
	p, err := client.Package(caseCtx(t), suite.url, suite.p1, anon, sellerclient.TierClaim{Tier: identity.TierAdvertiser})
	must(t, err)
	checkAuthView(t, p, viewWant{35.0, "$28-$42 CPM", false, false})
}

// case11AnonymousSearch: "sports video" finds P1 first, public view only.
func case11AnonymousSearch(t *testing.T) {
	res, err := client.SearchPackages(caseCtx(t), suite.url, anon, sellerclient.SearchRequest{Query: "sports video"})
	must(t, err)
	if len(res) == 0 {
		t.Fatal("search returned no results")
	}
	eq(t, "results[0].package_id", res[0].PackageID, suite.p1)
	for i, p := range res {
		if p.Authenticated || p.ExactPrice != nil {
			t.Errorf("results[%d] is an authenticated view for an anonymous search", i)
		}
	}
	eq(t, "results[0].price_range", res[0].PriceRange, "$28-$42 CPM")
}

// case12PackageListFilters: bad layer → 400; audience_id without type →
// refused (the client refuses it before sending, with the seller's reason);
// standard segment 3 → [P1].
func case12PackageListFilters(t *testing.T) {
	ctx := caseCtx(t)
	_, err := client.ListPackages(ctx, suite.url, sellerclient.ListOptions{Layer: "bogus"})
	wantErr(t, err, sellerclient.ErrValidation, 400, "", "Invalid layer: bogus")

	_, err = client.ListPackages(ctx, suite.url, sellerclient.ListOptions{AudienceID: "3"})
	refused(t, err, "audience_id requires audience_type")

	pkgs, err := client.ListPackages(ctx, suite.url, sellerclient.ListOptions{AudienceType: "standard", AudienceID: "3"})
	must(t, err)
	if len(pkgs) != 1 {
		t.Fatalf("standard/3 matched %d packages, want [P1]", len(pkgs))
	}
	eq(t, "packages[0].package_id", pkgs[0].PackageID, suite.p1)

	none, err := client.ListPackages(ctx, suite.url, sellerclient.ListOptions{AudienceType: "standard", AudienceID: "999"})
	must(t, err)
	if none == nil || len(none) != 0 {
		t.Errorf("standard/999 = %v, want [] (never 404)", none)
	}
}

// ---- 13: keys ----

// case13BadKeys: an unknown key is a 401 with WWW-Authenticate: Bearer on
// every key-reading endpoint (worse than no key); a revoked key is a 401
// naming the key id.
func case13BadKeys(t *testing.T) {
	ctx := caseCtx(t)
	capture := &responseCapture{base: suite.transport()}
	c := clientWith(suiteUA, capture)
	bogus := sellerclient.Auth{APIKey: "ask_live_bogus"}
	calls := map[string]func(sellerclient.Auth) error{
		"GET /packages": func(a sellerclient.Auth) error {
			_, err := c.Packages(ctx, suite.url, a, sellerclient.TierClaim{})
			return err
		},
		"POST /api/v1/quotes": func(a sellerclient.Auth) error {
			_, err := c.CreateQuote(ctx, suite.url, a, sellerclient.QuoteRequest{IdempotencyKey: ik(t, "bogus"), ProductID: videoProduct, DealType: sellerclient.DealPD})
			return err
		},
	}
	for name, call := range calls {
		for _, bearer := range []bool{false, true} {
			a := bogus
			a.Bearer = bearer
			err := call(a)
			wantErr(t, err, sellerclient.ErrUnauthorized, 401, "", "Invalid API key")
			if _, h := capture.last(); h.Get("WWW-Authenticate") != "Bearer" {
				t.Errorf("%s (bearer %v): WWW-Authenticate = %q, want Bearer", name, bearer, h.Get("WWW-Authenticate"))
			}
		}
	}
	t.Run("Revoked", func(t *testing.T) {
		if notApplicable(t, suite.revokedKey != "", "a revoked key ("+envRevokedKey+")") {
			return
		}
		_, err := c.Packages(ctx, suite.url, sellerclient.Auth{APIKey: suite.revokedKey}, sellerclient.TierClaim{})
		e := wantErr(t, err, sellerclient.ErrUnauthorized, 401, "", "")
		if !revokedRE.MatchString(e.Message) {
			t.Errorf("message = %q, want %s", e.Message, revokedRE)
		}
	})
}

// ---- 15-25: quotes ----

// case15AnonymousQuote: the anonymous PD video quote at list price.
func case15AnonymousQuote(t *testing.T) {
	q := videoQuote(t, caseCtx(t), anon)
	eq(t, "status", q.Status, sellerclient.QuoteAvailable)
	eq(t, "buyer_tier", q.BuyerTier, identity.TierPublic)
	eq(t, "pricing.base_cpm", micros(t, "base_cpm", q.Pricing.BaseCPM), int64(25_000_000))
	eq(t, "pricing.final_cpm", micros(t, "final_cpm", q.Pricing.FinalCPM), int64(25_000_000))
	eq(t, "pricing.tier_discount_pct", q.Pricing.TierDiscountPct, 0.0)
	eq(t, "terms.guaranteed", q.Terms.Guaranteed, false)
	eq(t, "deal_type", q.DealType, sellerclient.DealPD)
	eq(t, "product.product_id", q.Product.ProductID, videoProduct)
	eq(t, "expires_at - created_at", q.ExpiresAt.Sub(q.CreatedAt), 24*time.Hour)
}

// case16QuoteIdempotency: same key and body → same quote; same key, other
// body → idempotency_conflict with an empty unsupported list.
func case16QuoteIdempotency(t *testing.T) {
	ctx := caseCtx(t)
	req := sellerclient.QuoteRequest{IdempotencyKey: ik(t, "k1"), ProductID: videoProduct, DealType: sellerclient.DealPD}
	first := newQuote(t, ctx, anon, req)
	again := newQuote(t, ctx, anon, req)
	eq(t, "replayed quote_id", again.QuoteID, first.QuoteID)
	eq(t, "replayed final_cpm", micros(t, "final_cpm", again.Pricing.FinalCPM), micros(t, "final_cpm", first.Pricing.FinalCPM))

	other := req
	other.DealType = sellerclient.DealPA
	_, err := client.CreateQuote(ctx, suite.url, anon, other)
	e := wantErr(t, err, sellerclient.ErrIdempotencyConflict, 409, "idempotency_conflict", "")
	unsupported, ok := rawObject(t, "detail", e.Detail)["unsupported"].([]any)
	if !ok || len(unsupported) != 0 {
		t.Errorf("detail.unsupported = %v, want []", rawObject(t, "detail", e.Detail)["unsupported"])
	}
}

// case17QuoteRequestRefusedByClient: what the seller 422s (no
// idempotency_key, legacy deal type) the client refuses before sending.
func case17QuoteRequestRefusedByClient(t *testing.T) {
	ctx := caseCtx(t)
	_, err := client.CreateQuote(ctx, suite.url, anon, sellerclient.QuoteRequest{ProductID: videoProduct, DealType: sellerclient.DealPD})
	refused(t, err, "idempotency_key")
	_, err = client.CreateQuote(ctx, suite.url, anon, sellerclient.QuoteRequest{IdempotencyKey: ik(t, "legacy"), ProductID: videoProduct, DealType: "preferred_deal"})
	refused(t, err, "deal_type")
}

// case18QuoteBusinessErrors: PG without impressions, below the minimum, an
// unknown product.
func case18QuoteBusinessErrors(t *testing.T) {
	ctx := caseCtx(t)
	for _, c := range []struct {
		name   string
		req    sellerclient.QuoteRequest
		class  error
		status int
		code   string
	}{
		{"PGWithoutImpressions", sellerclient.QuoteRequest{ProductID: videoProduct, DealType: sellerclient.DealPG}, sellerclient.ErrValidation, 400, "pg_requires_impressions"},
		{"BelowMinimumImpressions", sellerclient.QuoteRequest{ProductID: videoProduct, DealType: sellerclient.DealPD, Impressions: ptr(int64(500))}, sellerclient.ErrValidation, 400, "below_minimum_impressions"},
		{"UnknownProduct", sellerclient.QuoteRequest{ProductID: "prod-nope", DealType: sellerclient.DealPD}, sellerclient.ErrNotFound, 404, "product_not_found"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.req.IdempotencyKey = ik(t, "q")
			_, err := client.CreateQuote(ctx, suite.url, anon, c.req)
			wantErr(t, err, c.class, c.status, c.code, "")
		})
	}
}

// case20UnpricedProduct: DOOH has no base or floor → 422 string detail.
func case20UnpricedProduct(t *testing.T) {
	_, err := client.CreateQuote(caseCtx(t), suite.url, anon, sellerclient.QuoteRequest{IdempotencyKey: ik(t, "q"), ProductID: doohProduct, DealType: sellerclient.DealPD})
	wantErr(t, err, sellerclient.ErrValidation, 422, "", "has no base_cpm or floor_cpm")
}

// case21MoneyIsIntegerMicros: the seller 422s float money; the client can
// only send integer micros (the body check after the suite asserts the
// literal), so a 20.00 target is accepted and honoured, and a lowercase
// currency is refused before sending.
func case21MoneyIsIntegerMicros(t *testing.T) {
	ctx := caseCtx(t)
	q := newQuote(t, ctx, anon, sellerclient.QuoteRequest{IdempotencyKey: ik(t, "usd20"), ProductID: videoProduct,
		DealType: sellerclient.DealPD, TargetCPM: ptr(sellerclient.USD(20.0))})
	eq(t, "final_cpm for target 20.00", micros(t, "final_cpm", q.Pricing.FinalCPM), int64(20_000_000))
	_, err := client.CreateQuote(ctx, suite.url, anon, sellerclient.QuoteRequest{IdempotencyKey: ik(t, "eur"), ProductID: videoProduct,
		DealType: sellerclient.DealPD, TargetCPM: &sellerclient.Money{AmountMicros: 20_000_000, Currency: "eur"}})
	refused(t, err, "currency")
}

// case22TieredQuotes: PG 6M video by key: seat 5%, agency 10%+5% vol,
// advertiser 15%+5% vol; a key with advertiser_id only is public.
func case22TieredQuotes(t *testing.T) {
	ctx := caseCtx(t)
	pg6M := func(t *testing.T) sellerclient.QuoteRequest {
		return sellerclient.QuoteRequest{IdempotencyKey: ik(t, "pg6m"), ProductID: videoProduct, DealType: sellerclient.DealPG, Impressions: ptr(int64(6_000_000))}
	}
	for _, c := range []priceWant{
		{identity.TierSeat, 23_750_000, 5.0, 0.0},
		{identity.TierAgency, 21_380_000, 10.0, 5.0},
		{identity.TierAdvertiser, 20_190_000, 15.0, 5.0},
	} {
		t.Run(string(c.tier), func(t *testing.T) {
			q := newQuote(t, ctx, auth(c.tier), pg6M(t))
			checkPrice(t, q, c)
			eq(t, "terms.guaranteed", q.Terms.Guaranteed, true)
			if q.Terms.Impressions == nil || *q.Terms.Impressions != 6_000_000 {
				t.Errorf("terms.impressions = %v, want 6000000", q.Terms.Impressions)
			}
		})
	}
	t.Run("AdvertiserIDOnlyKey", func(t *testing.T) {
		if notApplicable(t, suite.advertiserOnly.key != "", "a key with advertiser_id only ("+envAdvertiserOnly+")") {
			return
		}
		q := newQuoteAt(t, ctx, suite.advertiserOnly.url, sellerclient.Auth{APIKey: suite.advertiserOnly.key}, pg6M(t))
		checkPrice(t, q, priceWant{identity.TierPublic, 25_000_000, 0.0, 0.0})
	})
}

// case23AnonymousIdentityClaimFloored: body identity without a key prices as public.
func case23AnonymousIdentityClaimFloored(t *testing.T) {
	q := newQuote(t, caseCtx(t), anon, sellerclient.QuoteRequest{IdempotencyKey: ik(t, "q"), ProductID: videoProduct, DealType: sellerclient.DealPD,
		BuyerIdentity: &identity.BuyerIdentity{AgencyID: "agency-1", AdvertiserID: "adv-1"}})
	checkPrice(t, q, priceWant{identity.TierPublic, 25_000_000, 0.0, 0.0})
}

// case24VolumeDiscountAndAvailability: advertiser CTV PG 60M → 20% volume
// discount, more than the 20M available.
func case24VolumeDiscountAndAvailability(t *testing.T) {
	q := newQuote(t, caseCtx(t), auth(identity.TierAdvertiser), sellerclient.QuoteRequest{IdempotencyKey: ik(t, "q"), ProductID: ctvProduct,
		DealType: sellerclient.DealPG, Impressions: ptr(int64(60_000_000))})
	checkPrice(t, q, priceWant{identity.TierAdvertiser, 23_800_000, 15.0, 20.0})
	if q.Availability == nil {
		t.Fatal("availability missing")
	}
	eq(t, "availability.inventory_available", q.Availability.InventoryAvailable, false)
}

// case25TargetCPM: an acceptable target (≥ floor) replaces the price, even
// above it; one below the floor is ignored.
func case25TargetCPM(t *testing.T) {
	ctx := caseCtx(t)
	for _, c := range []struct {
		name   string
		a      identity.Tier
		target int64
		want   int64
	}{
		{"AnonAboveFloor", identity.TierPublic, 19_000_000, 19_000_000},
		{"AnonBelowFloor", identity.TierPublic, 17_000_000, 25_000_000},
		{"AdvertiserAbovePrice", identity.TierAdvertiser, 30_000_000, 30_000_000},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := anon
			if c.a != identity.TierPublic {
				a = auth(c.a)
			}
			q := newQuote(t, ctx, a, sellerclient.QuoteRequest{IdempotencyKey: ik(t, "q"), ProductID: videoProduct, DealType: sellerclient.DealPD, TargetCPM: usd(c.target)})
			eq(t, "buyer_tier", q.BuyerTier, c.a)
			eq(t, "final_cpm", micros(t, "final_cpm", q.Pricing.FinalCPM), c.want)
		})
	}
}

// ---- 27-30: reading quotes, booking ----

// case27QuoteNotFoundAndExpired: unknown quote → 404 quote_not_found; a quote
// past its 24 h TTL → 410 quote_expired on read and on booking.
func case27QuoteNotFoundAndExpired(t *testing.T) {
	_, err := client.GetQuote(caseCtx(t), suite.url, "qt-nope")
	wantErr(t, err, sellerclient.ErrNotFound, 404, "quote_not_found", "")

	t.Run("Expired", func(t *testing.T) {
		if notApplicable(t, !suite.real, "a seller clock moved past the quote TTL") {
			return
		}
		ctx := caseCtx(t)
		clock := &fakeClock{t: time.Now()}
		m, err := sandbox.Start(t.Context(), sandbox.MarketConfig{Sellers: []sandbox.SellerConfig{fixtureSellerConfig(clockedSellerName)}},
			sandbox.WithClock(clock.now))
		must(t, err)
		t.Cleanup(func() { _ = m.Close() })
		s := m.Sellers[0]
		suite.track(s)
		q := newQuoteAt(t, ctx, s.URL, anon, sellerclient.QuoteRequest{IdempotencyKey: ik(t, "q"), ProductID: videoProduct, DealType: sellerclient.DealPD})
		got, err := client.GetQuote(ctx, s.URL, q.QuoteID)
		must(t, err)
		eq(t, "status before expiry", got.Status, sellerclient.QuoteAvailable)

		clock.advance(24*time.Hour + time.Second)
		_, err = client.GetQuote(ctx, s.URL, q.QuoteID)
		wantErr(t, err, sellerclient.ErrQuoteExpired, 410, "quote_expired", "")
		_, err = client.BookDeal(ctx, s.URL, anon, sellerclient.DealBookingRequest{IdempotencyKey: ik(t, "book"), QuoteID: q.QuoteID})
		wantErr(t, err, sellerclient.ErrQuoteExpired, 410, "quote_expired", "")
	})
}

// case28BookDeal: booking an agency quote mints a proposed DEMO- deal whose
// OpenRTB floor is the quote's final CPM (at=1 for PD, 3 for PA).
func case28BookDeal(t *testing.T) {
	ctx := caseCtx(t)
	for _, c := range []struct {
		dealType sellerclient.DealType
		at       int
	}{{sellerclient.DealPD, 1}, {sellerclient.DealPA, 3}} {
		t.Run(string(c.dealType), func(t *testing.T) {
			q := newQuote(t, ctx, auth(identity.TierAgency), sellerclient.QuoteRequest{IdempotencyKey: ik(t, "q"), ProductID: videoProduct, DealType: c.dealType})
			eq(t, "quote final_cpm", micros(t, "final_cpm", q.Pricing.FinalCPM), int64(22_500_000))
			b := book(t, ctx, auth(identity.TierAgency), q.QuoteID, "book")
			d := b.Deal
			eq(t, "deal.status", d.Status, sellerclient.DealProposed)
			eq(t, "deal.quote_id", d.QuoteID, q.QuoteID)
			eq(t, "deal.deal_type", d.DealType, c.dealType)
			eq(t, "deal.buyer_tier", d.BuyerTier, identity.TierAgency)
			eq(t, "deal.pricing.final_cpm", micros(t, "deal final_cpm", d.Pricing.FinalCPM), int64(22_500_000))
			if d.OpenRTBParams == nil {
				t.Fatal("openrtb_params missing")
			}
			eq(t, "openrtb_params.at", d.OpenRTBParams.At, c.at)
			eq(t, "openrtb_params.id", d.OpenRTBParams.ID, d.DealID)
			eq(t, "openrtb_params.bidfloor", d.OpenRTBParams.BidFloor, *d.Pricing.FinalCPM)
			keys := make([]string, 0, len(d.ActivationInstructions))
			for k, v := range d.ActivationInstructions {
				keys = append(keys, k)
				if !strings.Contains(v, d.DealID) {
					t.Errorf("activation_instructions[%s] = %q does not name the deal", k, v)
				}
			}
			slices.Sort(keys)
			eqSlice(t, "activation_instructions keys", keys, []string{"dv360", "ttd", "xandr"})
			if d.ExpiresAt == nil {
				t.Fatal("deal expires_at missing")
			}
			if skew := d.ExpiresAt.Sub(d.CreatedAt.Add(30 * 24 * time.Hour)); skew < -time.Minute || skew > time.Minute {
				t.Errorf("expires_at %v is not created_at %v + 30d", d.ExpiresAt, d.CreatedAt)
			}
			if age := time.Since(d.CreatedAt); age < -time.Hour || age > time.Hour {
				t.Errorf("created_at %v is not about now", d.CreatedAt)
			}
			if b.AudiencePlanSnapshot != nil || b.AudienceMatchSummary != nil {
				t.Errorf("audience_plan_snapshot %s / audience_match_summary %s, want null", b.AudiencePlanSnapshot, b.AudienceMatchSummary)
			}
		})
	}
}

// case29BookingIdempotency: replay → same deal; same key, other notes →
// idempotency_conflict; new key on the booked quote → quote_already_booked.
func case29BookingIdempotency(t *testing.T) {
	ctx := caseCtx(t)
	a := auth(identity.TierAgency)
	q := newQuote(t, ctx, a, sellerclient.QuoteRequest{IdempotencyKey: ik(t, "q"), ProductID: videoProduct, DealType: sellerclient.DealPD})
	req := sellerclient.DealBookingRequest{IdempotencyKey: ik(t, "book"), QuoteID: q.QuoteID}
	first, err := client.BookDeal(ctx, suite.url, a, req)
	must(t, err)
	again, err := client.BookDeal(ctx, suite.url, a, req)
	must(t, err)
	eq(t, "replayed deal_id", again.Deal.DealID, first.Deal.DealID)

	changed := req
	changed.Notes = "changed my mind"
	_, err = client.BookDeal(ctx, suite.url, a, changed)
	wantErr(t, err, sellerclient.ErrIdempotencyConflict, 409, "idempotency_conflict", "")

	_, err = client.BookDeal(ctx, suite.url, a, sellerclient.DealBookingRequest{IdempotencyKey: ik(t, "rebook"), QuoteID: q.QuoteID})
	e := wantErr(t, err, sellerclient.ErrAlreadyBooked, 409, "quote_already_booked", "")
	if errors.Is(e, sellerclient.ErrIdempotencyConflict) {
		t.Error("quote_already_booked also matches ErrIdempotencyConflict")
	}
}

// case30ReadBackQuoteAndDeal: a booked quote reads back booked with its deal
// id; the deal reads back the same; an unknown deal is deal_not_found.
func case30ReadBackQuoteAndDeal(t *testing.T) {
	ctx := caseCtx(t)
	q := videoQuote(t, ctx, auth(identity.TierAgency))
	b := book(t, ctx, auth(identity.TierAgency), q.QuoteID, "book")

	got, err := client.GetQuote(ctx, suite.url, q.QuoteID)
	must(t, err)
	eq(t, "quote status", got.Status, sellerclient.QuoteBooked)
	eq(t, "quote deal_id", got.DealID, b.Deal.DealID)

	d, err := client.GetDeal(ctx, suite.url, b.Deal.DealID)
	must(t, err)
	eq(t, "deal_id", d.Deal.DealID, b.Deal.DealID)
	eq(t, "quote_id", d.Deal.QuoteID, q.QuoteID)
	eq(t, "status", d.Deal.Status, b.Deal.Status)
	eq(t, "buyer_tier", d.Deal.BuyerTier, b.Deal.BuyerTier)
	eq(t, "final_cpm", micros(t, "final_cpm", d.Deal.Pricing.FinalCPM), micros(t, "final_cpm", b.Deal.Pricing.FinalCPM))
	if d.Deal.OpenRTBParams == nil || b.Deal.OpenRTBParams == nil || d.Deal.OpenRTBParams.BidFloor != b.Deal.OpenRTBParams.BidFloor {
		t.Errorf("openrtb_params differ: %+v vs %+v", d.Deal.OpenRTBParams, b.Deal.OpenRTBParams)
	}

	_, err = client.GetDeal(ctx, suite.url, "DEMO-NOPE")
	wantErr(t, err, sellerclient.ErrNotFound, 404, "deal_not_found", "")
}

// ---- 31-40: negotiation ----

// negotiatedRE is the rationale suffix of a booking at an agreed price.
var negotiatedRE = regexp.MustCompile(`Negotiated to \$23\.00 CPM \(neg-[0-9a-f]{8}\)$`)

// case31PublicVideoNegotiationTrace: the §4 public video trace, then the
// booking at the agreed 23.00.
func case31PublicVideoNegotiationTrace(t *testing.T) {
	ctx := caseCtx(t)
	q := videoQuote(t, ctx, anon)
	c := sellerclient.ActionCounter
	negID := negotiate(t, ctx, anon, q.QuoteID, []step{
		{c, 20_000_000, sellerclient.ActionCounter, 24_250_000, "active", 1, 2, ""},
		{c, 21_000_000, sellerclient.ActionCounter, 23_500_000, "active", 2, 1, ""},
		{c, 22_000_000, sellerclient.ActionFinalOffer, 23_000_000, "active", 3, 0, ""},
		{c, 23_000_000, sellerclient.ActionAccept, 23_000_000, "accepted", 4, 0, ""},
	})
	b := book(t, ctx, anon, q.QuoteID, "book")
	eq(t, "booked final_cpm", micros(t, "final_cpm", b.Deal.Pricing.FinalCPM), int64(23_000_000))
	if b.Deal.OpenRTBParams == nil {
		t.Fatal("openrtb_params missing")
	}
	eq(t, "booked bidfloor", b.Deal.OpenRTBParams.BidFloor.AmountMicros, int64(23_000_000))
	if !negotiatedRE.MatchString(b.Deal.Pricing.Rationale) {
		t.Errorf("rationale = %q, want it to end %s", b.Deal.Pricing.Rationale, negotiatedRE)
	}
	if !strings.Contains(b.Deal.Pricing.Rationale, "("+negID+")") {
		t.Errorf("rationale = %q does not name %s", b.Deal.Pricing.Rationale, negID)
	}
}

// case32NegotiationReplay: a replayed counter returns the identical round and
// records nothing (the next counter is round 2); the same key with another
// price is an idempotency conflict.
func case32NegotiationReplay(t *testing.T) {
	ctx := caseCtx(t)
	q := videoQuote(t, ctx, anon)
	msg := sellerclient.NegotiationMessage{IdempotencyKey: ik(t, "counter"), Action: sellerclient.ActionCounter, QuoteID: q.QuoteID, BuyerPrice: usd(20_000_000)}
	first, err := client.Negotiate(ctx, suite.url, anon, msg)
	must(t, err)
	again, err := client.Negotiate(ctx, suite.url, anon, msg)
	must(t, err)
	if first.NegotiationID != again.NegotiationID || first.Status != again.Status || first.Round.RoundNumber != again.Round.RoundNumber ||
		first.Round.SellerPrice != again.Round.SellerPrice || !first.Round.Timestamp.Equal(again.Round.Timestamp) {
		t.Errorf("replay differs:\nfirst %+v\nagain %+v", first, again)
	}
	eq(t, "replayed round_number", again.Round.RoundNumber, 1)

	other := msg
	other.BuyerPrice = usd(21_000_000)
	_, err = client.Negotiate(ctx, suite.url, anon, other)
	wantErr(t, err, sellerclient.ErrIdempotencyConflict, 409, "idempotency_conflict", "")

	next := other
	next.IdempotencyKey = ik(t, "counter2")
	r, err := client.Negotiate(ctx, suite.url, anon, next)
	must(t, err)
	checkRound(t, "next counter", r, step{sellerclient.ActionCounter, 21_000_000, sellerclient.ActionCounter, 23_500_000, "active", 2, 1, ""})
}

// case33CounterAfterAccepted: countering an accepted negotiation → 400.
func case33CounterAfterAccepted(t *testing.T) {
	ctx := caseCtx(t)
	q := videoQuote(t, ctx, anon)
	negotiate(t, ctx, anon, q.QuoteID, []step{
		{sellerclient.ActionCounter, 26_000_000, sellerclient.ActionAccept, 26_000_000, "accepted", 1, 2, ""},
	})
	_, err := client.Negotiate(ctx, suite.url, anon, sellerclient.NegotiationMessage{IdempotencyKey: ik(t, "late"),
		Action: sellerclient.ActionCounter, QuoteID: q.QuoteID, BuyerPrice: usd(20_000_000)})
	wantErr(t, err, sellerclient.ErrNegotiationClosed, 400, "", "Negotiation is accepted, cannot counter")
}

// case34NegotiationMessageRefusedByClient: the model-validator 422s (counter
// without price, reject with price, no subject id, legacy action-less body)
// are refused by the client before sending.
func case34NegotiationMessageRefusedByClient(t *testing.T) {
	ctx := caseCtx(t)
	q := "qt-000000000000"
	for _, c := range []struct {
		name string
		msg  sellerclient.NegotiationMessage
		want string
	}{
		{"CounterWithoutPrice", sellerclient.NegotiationMessage{Action: sellerclient.ActionCounter, QuoteID: q}, "requires buyer_price"},
		{"RejectWithPrice", sellerclient.NegotiationMessage{Action: sellerclient.ActionReject, QuoteID: q, BuyerPrice: usd(20_000_000)}, "reject must not carry buyer_price"},
		{"NoSubjectID", sellerclient.NegotiationMessage{Action: sellerclient.ActionCounter, BuyerPrice: usd(20_000_000)}, "quote_id"},
		{"LegacyPriceOnly", sellerclient.NegotiationMessage{QuoteID: q, BuyerPrice: usd(20_000_000)}, "action"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.msg.IdempotencyKey = ik(t, "m")
			_, err := client.Negotiate(ctx, suite.url, anon, c.msg)
			refused(t, err, c.want)
		})
	}
}

// case35ContinuationKeys: negotiation_id alone (or with quote_id) would be a
// 404 "Proposal not found", so the client refuses it; proposal_id=<quote id>
// plus negotiation_id continues at round 2.
func case35ContinuationKeys(t *testing.T) {
	ctx := caseCtx(t)
	q := videoQuote(t, ctx, anon)
	negID := negotiate(t, ctx, anon, q.QuoteID, []step{
		{sellerclient.ActionCounter, 20_000_000, sellerclient.ActionCounter, 24_250_000, "active", 1, 2, ""},
	})
	for name, msg := range map[string]sellerclient.NegotiationMessage{
		"NegotiationIDOnly":       {NegotiationID: negID},
		"NegotiationIDAndQuoteID": {NegotiationID: negID, QuoteID: q.QuoteID},
	} {
		msg.IdempotencyKey, msg.Action, msg.BuyerPrice = ik(t, name), sellerclient.ActionCounter, usd(21_000_000)
		_, err := client.Negotiate(ctx, suite.url, anon, msg)
		refused(t, err, "Proposal not found")
	}
	r, err := client.Negotiate(ctx, suite.url, anon, sellerclient.NegotiationMessage{IdempotencyKey: ik(t, "proposal"),
		Action: sellerclient.ActionCounter, ProposalID: q.QuoteID, NegotiationID: negID, BuyerPrice: usd(21_000_000)})
	must(t, err)
	eq(t, "negotiation_id", r.NegotiationID, negID)
	checkRound(t, "continuation", r, step{sellerclient.ActionCounter, 21_000_000, sellerclient.ActionCounter, 23_500_000, "active", 2, 1, ""})
}

// case36AgencyBelowFloor: agency video (B 22.50, F 18): 15 → counter at the
// floor; 19 → accept at 19.
func case36AgencyBelowFloor(t *testing.T) {
	ctx := caseCtx(t)
	a := auth(identity.TierAgency)
	q := videoQuote(t, ctx, a)
	negotiate(t, ctx, a, q.QuoteID, []step{
		{sellerclient.ActionCounter, 15_000_000, sellerclient.ActionCounter, 18_000_000, "active", 1, 4, "below our floor"},
		{sellerclient.ActionCounter, 19_000_000, sellerclient.ActionAccept, 19_000_000, "accepted", 2, 3, ""},
	})
}

// case37BuyerAccept: counter 20, then the buyer accepts the seller's 24.25
// (echoing its own 20) → round 2 accept, accepted; booking at 24.25.
func case37BuyerAccept(t *testing.T) {
	ctx := caseCtx(t)
	q := videoQuote(t, ctx, anon)
	negotiate(t, ctx, anon, q.QuoteID, []step{
		{sellerclient.ActionCounter, 20_000_000, sellerclient.ActionCounter, 24_250_000, "active", 1, 2, ""},
		{sellerclient.ActionAccept, 20_000_000, sellerclient.ActionAccept, 24_250_000, "accepted", 2, 0, ""},
	})
	b := book(t, ctx, anon, q.QuoteID, "book")
	eq(t, "booked final_cpm", micros(t, "final_cpm", b.Deal.Pricing.FinalCPM), int64(24_250_000))
}

// case38AcceptWithoutNegotiationAndZeroOffer: accept before any round → 404;
// an offer of 0 → the seller rejects (walk-away) at its base.
func case38AcceptWithoutNegotiationAndZeroOffer(t *testing.T) {
	ctx := caseCtx(t)
	q := videoQuote(t, ctx, anon)
	_, err := client.Negotiate(ctx, suite.url, anon, sellerclient.NegotiationMessage{IdempotencyKey: ik(t, "accept"), Action: sellerclient.ActionAccept, QuoteID: q.QuoteID})
	wantErr(t, err, sellerclient.ErrNotFound, 404, "", "No negotiation found for this proposal")

	negotiate(t, ctx, anon, q.QuoteID, []step{
		{sellerclient.ActionCounter, 0, sellerclient.ActionReject, 25_000_000, "rejected", 1, 2, "not a valid offer"},
	})
}

// case39OfferAtOrAboveBase: a first offer of 26 on video (base 25) is
// accepted at once at the buyer's price.
func case39OfferAtOrAboveBase(t *testing.T) {
	ctx := caseCtx(t)
	q := videoQuote(t, ctx, anon)
	negotiate(t, ctx, anon, q.QuoteID, []step{
		{sellerclient.ActionCounter, 26_000_000, sellerclient.ActionAccept, 26_000_000, "accepted", 1, 2, "meets or exceeds"},
	})
}

// case40SeatCTVTrace: seat CTV (B 33.25, standard strategy, 4 rounds):
// 29, 29, 29.5, 29.5 → 31.92, 30.75, 30.25, accept 29.5 in the last round.
func case40SeatCTVTrace(t *testing.T) {
	ctx := caseCtx(t)
	a := auth(identity.TierSeat)
	q := newQuote(t, ctx, a, sellerclient.QuoteRequest{IdempotencyKey: ik(t, "q"), ProductID: ctvProduct, DealType: sellerclient.DealPG, Impressions: ptr(int64(1_000_000))})
	checkPrice(t, q, priceWant{identity.TierSeat, 33_250_000, 5.0, 0.0})
	c := sellerclient.ActionCounter
	negotiate(t, ctx, a, q.QuoteID, []step{
		{c, 29_000_000, sellerclient.ActionCounter, 31_920_000, "active", 1, 3, "standard strategy"},
		{c, 29_000_000, sellerclient.ActionCounter, 30_750_000, "active", 2, 2, ""},
		{c, 29_500_000, sellerclient.ActionCounter, 30_250_000, "active", 3, 1, ""},
		{c, 29_500_000, sellerclient.ActionAccept, 29_500_000, "accepted", 4, 0, "Buyer price is acceptable within concession limits."},
	})
}

// ---- 44: content types ----

// case44ContentTypes: the client always sends application/json (checked on
// every POST after the suite); a body sent as text/plain or form-encoded is a
// 422, and an application/*+json type with parameters is accepted.
func case44ContentTypes(t *testing.T) {
	ctx := caseCtx(t)
	for _, c := range []struct {
		contentType string
		ok          bool
	}{
		{"text/plain", false},
		{"application/x-www-form-urlencoded", false},
		{"application/vnd.iab.agentic-audiences+json; v=1", true},
	} {
		t.Run(strings.NewReplacer("/", "_", " ", "", ";", "").Replace(c.contentType), func(t *testing.T) {
			cl := clientWith(rewriteUA, contentTypeRewriter{contentType: c.contentType, base: suite.transport()})
			q, err := cl.CreateQuote(ctx, suite.url, anon, sellerclient.QuoteRequest{IdempotencyKey: ik(t, "q"), ProductID: videoProduct, DealType: sellerclient.DealPD})
			if !c.ok {
				wantErr(t, err, sellerclient.ErrValidation, 422, "validation", "")
				return
			}
			must(t, err)
			checkPrice(t, q, priceWant{identity.TierPublic, 25_000_000, 0.0, 0.0})
		})
	}
}

// Package kitfetcher is the second stage: for each SellerFound it fetches the
// seller's packages with exactly the identity decided for that seller (an API
// key of that tier, or nothing for public), keeps the packages that fit the
// brief, and emits one PackageFound per fitting package, or SellerSkipped with
// the reason when the seller fails or nothing fits. Sellers are fetched
// concurrently by the stage's worker pool; each has its own deadline.
package kitfetcher

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/identity"
	"github.com/dealflow/dealflow/pkg/sellerclient"
	"github.com/dealflow/dealflow/pkg/sellerclient/adcp"
)

// Stage is the stage and durable consumer name.
const Stage = events.StageKitfetcher

// Subjects are the stage's inputs.
func Subjects() []string { return []string{events.KindSellerFound.Filter()} }

// Service holds the kitfetcher's dependencies.
type Service struct {
	Client      *sellerclient.Client
	Credentials *identity.Credentials
	// ADCP fetches the products of AdCP sellers (Seller.Protocol adcp).
	ADCP *adcp.Client
	// Catalogs, when set, shares sellers' product catalogs between
	// campaigns (nil: every campaign reads each seller's catalog).
	Catalogs *CatalogCache
	// SellerTimeout bounds all calls to one seller (default 15s).
	SellerTimeout time.Duration
	// Log receives a warning per skipped seller and an info line per seller
	// fetched, each with campaign_id and seller (the zero logger discards
	// them).
	Log zerolog.Logger
}

// Handle turns a SellerFound into PackageFound events or a SellerSkipped.
func (s *Service) Handle(ctx context.Context, in events.Event, sf *events.SellerFound) ([]events.Event, error) {
	log := bus.CampaignLogger(ctx, s.Log, sf.CampaignID)
	skip := func(code, reason string) ([]events.Event, error) {
		log.Warn().Str("seller", sf.Seller.URL).Str("seller_name", sf.Seller.Name).
			Str("code", code).Str("reason", reason).Msg("seller skipped")
		e, err := events.Derive(in, events.KindSellerSkipped, Stage, "skip", events.SellerSkipped{
			CampaignID: sf.CampaignID, SellerURL: sf.Seller.URL, SellerName: sf.Seller.Name, Protocol: sf.Seller.Protocol, Trust: sf.Seller.Trust,
			Stage: Stage, Code: code, Reason: events.ShortReason(reason)})
		if err != nil {
			return nil, err
		}
		return []events.Event{e}, nil
	}
	fit, err := s.Fetch(ctx, *sf) // a ctx error (shutting down) is returned as is: retried, not a skip
	if err != nil {
		var se *SkipError
		if errors.As(err, &se) {
			return skip(se.Code, se.Reason)
		}
		return nil, err
	}
	log.Info().Str("seller", sf.Seller.URL).Str("seller_name", sf.Seller.Name).
		Str("tier", string(sf.Disclosure.Tier)).Int("packages", len(fit)).Msg("media kit fetched")
	out := make([]events.Event, 0, len(fit))
	// One payload value, refilled per package: Derive encodes it before
	// the next, and a PackageFound is large (seller, disclosure, package,
	// brief, buyer: about 1 KB).
	pf := &events.PackageFound{CampaignID: sf.CampaignID, Seller: sf.Seller, Disclosure: sf.Disclosure,
		PackagesTotal: len(fit), Brief: sf.Brief.ForNegotiation(), Negotiation: sf.Negotiation, Buyer: sf.Buyer}
	for i, p := range fit {
		if ProductUnknown(*sf, p) {
			// Skipped on its own: it still counts toward the seller's
			// packages_total, so the booker need not wait for a quote.
			reason := "the seller states no product for package " + p.ID + "; it is not quoted on a guessed product"
			log.Warn().Str("seller", sf.Seller.URL).Str("package_id", p.ID).Str("code", "product_unknown").Msg("package skipped")
			e, err := events.Derive(in, events.KindSellerSkipped, Stage, "pkg-skip:"+p.ID, events.SellerSkipped{
				CampaignID: sf.CampaignID, SellerURL: sf.Seller.URL, SellerName: sf.Seller.Name, Protocol: sf.Seller.Protocol, Trust: sf.Seller.Trust,
				Stage: Stage, Code: "product_unknown", Reason: reason, PackageID: p.ID, PackagesTotal: len(fit)})
			if err != nil {
				return nil, err
			}
			out = append(out, e)
			continue
		}
		pf.Package, pf.PackageIndex = p, i
		e, err := events.Derive(in, events.KindPackageFound, Stage, "pkg:"+p.ID, pf)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// SkipError is a seller failure that skips the seller for the campaign.
type SkipError struct {
	Code, Reason string
}

// Error renders "code: reason".
func (e *SkipError) Error() string { return e.Code + ": " + e.Reason }

// Fetch returns the seller's packages that fit the brief, fetched with the
// disclosed identity within the seller deadline. Seller failures and "no
// package fits" come back as a *SkipError.
func (s *Service) Fetch(ctx context.Context, sf events.SellerFound) ([]events.Package, error) {
	timeout := s.SellerTimeout
	if timeout <= 0 {
		timeout = 15 * time.Second
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if sf.Seller.Protocol.IsADCP() {
		fit, err := s.fetchADCP(cctx, sf)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if se, ok := err.(*SkipError); ok && se.Code == "timeout" {
			se.Reason = fmt.Sprintf("no answer within the %s seller deadline", timeout)
		}
		return fit, err
	}
	// The catalog resolves the fitting packages' products (floors, deal
	// types) and is needed for almost every seller with a fitting package:
	// fetch it alongside the packages, not one more round trip after them.
	catalog := s.prefetchCatalog(cctx, sf.Seller.URL)
	pkgs, err := s.fetch(cctx, sf)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		code := SkipCode(err)
		if code == "timeout" {
			return nil, &SkipError{code, fmt.Sprintf("no answer within the %s seller deadline", timeout)}
		}
		return nil, &SkipError{code, err.Error()}
	}
	fit := Fit(pkgs, sf.Brief)
	if len(fit) == 0 {
		// Counts, not the brief's lists: this reason is in every such
		// seller's event and in the campaign record (a 45 KB geo list
		// copied into each pushed the record past its 1 MiB).
		return nil, &SkipError{"no_fitting_packages", fmt.Sprintf("none of the seller's %d packages fit the brief's %d formats, %d device types, %d geo targets and %d tags",
			len(pkgs), len(wantedFormats(sf.Brief)), len(sf.Brief.DeviceTypes), len(sf.Brief.Geo), len(sf.Brief.Tags))}
	}
	unknown, err := s.resolveProducts(cctx, sf, fit, catalog)
	if err != nil && ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if len(unknown) == len(fit) {
		return nil, &SkipError{"product_unknown", fmt.Sprintf("the seller states no product for any of its %d fitting packages (%s); a package is never quoted on a guessed product",
			len(fit), packageIDs(unknown))}
	}
	return fit, nil
}

// ProductUnknown reports a fitting IAB package whose seller states no
// product for it: it is skipped (code product_unknown), never quoted.
func ProductUnknown(sf events.SellerFound, p events.Package) bool {
	return p.ProductID == "" && !sf.Seller.Protocol.IsADCP()
}

func packageIDs(pkgs []events.Package) string {
	ids := make([]string, len(pkgs))
	for i, p := range pkgs {
		ids[i] = p.ID
	}
	return strings.Join(ids, ", ")
}

// resolveProducts fills in each package's product, and that product's
// floor, deal types and stated availability, within the seller deadline.
// The product is only ever what the seller states for that package: its
// placements in the package view, or, for a package seen only in the
// public view (which has no placements), in the package detail GET
// /packages/{id} with a bare tier claim (buyer_tier=seat, no ids and no
// key: the seller still prices it at public, §2.3) — only for a seller whose
// trust cap allows seat or above, so an unknown seller never sees a claim
// above public. A product is never guessed (from a format, say): a guess
// quotes and books other inventory than the package's, and below its
// range. It returns the packages whose product stays unknown; the caller
// skips them with code product_unknown.
func (s *Service) resolveProducts(ctx context.Context, sf events.SellerFound, fit []events.Package, products func() (Catalog, error)) (unknown []events.Package, err error) {
	for i := range fit {
		p := &fit[i]
		if p.ProductID == "" && sf.Disclosure.Tier == identity.TierPublic && sf.Disclosure.Cap.Rank() >= identity.TierSeat.Rank() {
			d, err := s.Client.Package(ctx, sf.Seller.URL, p.ID, sellerclient.Auth{}, sellerclient.TierClaim{Tier: identity.TierSeat})
			if err != nil && ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if err == nil && len(d.Placements) > 0 {
				p.ProductID = d.Placements[0].ProductID
			}
		}
		if p.ProductID == "" {
			unknown = append(unknown, *p)
			continue
		}
		cat, err := products()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			continue
		}
		if prod, ok := cat[p.ProductID]; ok {
			p.ProductFloorCPMMicros = prod.FloorMicros
			p.ProductDealTypes = prod.DealTypes
			if p.AvailableImpressions == 0 {
				p.AvailableImpressions = prod.AvailableImpressions
			}
		}
	}
	return unknown, nil
}

// prefetchCatalog starts fetching the seller's catalog (GET /products, or
// the shared cache) and returns the function that waits for it. A catalog
// the cache holds fresh is returned as it is, with nothing started.
func (s *Service) prefetchCatalog(ctx context.Context, sellerURL string) func() (Catalog, error) {
	if s.Catalogs != nil {
		if cat, ok := s.Catalogs.Fresh(sellerURL); ok {
			return func() (Catalog, error) { return cat, nil }
		}
	}
	type result struct {
		catalog Catalog
		err     error
	}
	fetch := func(ctx context.Context) (Catalog, error) {
		list, err := s.Client.ListProducts(ctx, sellerURL)
		if err != nil {
			return nil, err
		}
		return catalogOf(list), nil
	}
	ch := make(chan result, 1)
	go func() {
		var r result
		if s.Catalogs != nil {
			r.catalog, r.err = s.Catalogs.Get(ctx, sellerURL, fetch)
		} else {
			r.catalog, r.err = fetch(ctx)
		}
		ch <- r
	}()
	var (
		once sync.Once
		res  result
	)
	return func() (Catalog, error) {
		once.Do(func() { res = <-ch })
		return res.catalog, res.err
	}
}

// fetch gets the seller's packages in one round trip: keyword search when
// the brief has keywords, otherwise the authenticated list for a revealed
// tier (exact prices, floors, flags) or the public list.
func (s *Service) fetch(ctx context.Context, sf events.SellerFound) ([]sellerclient.Package, error) {
	tier := sf.Disclosure.Tier
	auth, err := sellerclient.AuthFor(s.Credentials, sf.Seller.URL, tier)
	if err != nil {
		return nil, err
	}
	if kw := strings.TrimSpace(strings.Join(sf.Brief.Keywords, " ")); kw != "" {
		req := sellerclient.SearchRequest{Query: kw}
		if tier != identity.TierPublic {
			req.BuyerTier = tier
		}
		return s.Client.SearchPackages(ctx, sf.Seller.URL, auth, req)
	}
	if tier == identity.TierPublic {
		return s.Client.ListPackages(ctx, sf.Seller.URL, sellerclient.ListOptions{})
	}
	return s.Client.Packages(ctx, sf.Seller.URL, auth, sellerclient.TierClaim{})
}

// SkipCode classifies a seller failure for SellerSkipped.
func SkipCode(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, sellerclient.ErrBodyTooLarge):
		return "oversized_response"
	case errors.Is(err, sellerclient.ErrBadResponse):
		return "bad_response"
	case errors.Is(err, sellerclient.ErrUnavailable):
		return "unreachable"
	case errors.Is(err, sellerclient.ErrUnauthorized), errors.Is(err, sellerclient.ErrForbidden):
		return "unauthorized"
	case errors.Is(err, sellerclient.ErrInvalidURL), errors.Is(err, sellerclient.ErrRedirectRefused):
		return "invalid_url"
	default:
		return "http_error"
	}
}

// Fit keeps the packages that fit the brief, as events.Package, sorted by
// price (exact, else the range's low end) then id.
func Fit(pkgs []sellerclient.Package, b events.ShoppingBrief) []events.Package {
	formats := wantedFormats(b)
	out := make([]events.Package, 0, len(pkgs))
	seen := map[string]bool{}
	for _, p := range pkgs {
		if p.PackageID == "" || seen[p.PackageID] {
			continue
		}
		seen[p.PackageID] = true
		if !anyEqualFold(p.AdFormats, formats) || !devicesFit(p.DeviceTypes, b.DeviceTypes) || !geoFits(p.GeoTargets, b.Geo) ||
			(len(b.Tags) > 0 && !anyEqualFold(p.Tags, b.Tags)) {
			continue
		}
		out = append(out, toEvent(p))
	}
	sortByPrice(out)
	return out
}

func toEvent(p sellerclient.Package) events.Package {
	e := events.Package{ID: p.PackageID, Name: p.Name, AdFormats: p.AdFormats, DeviceTypes: p.DeviceTypes, GeoTargets: p.GeoTargets,
		Tags: p.Tags, PriceRange: p.PriceRange, Currency: p.Currency, Negotiable: p.NegotiationEnabled, VolumeDiscounts: p.VolumeDiscountsAvailable}
	if lo, hi, ok := sellerclient.ParsePriceRange(p.PriceRange); ok {
		e.PriceLowMicros, e.PriceHighMicros = sellerclient.PriceMicros(lo), sellerclient.PriceMicros(hi)
	}
	if p.ExactPrice != nil {
		e.ExactPriceMicros = sellerclient.PriceMicros(*p.ExactPrice)
	}
	if p.FloorPrice != nil {
		e.FloorPriceMicros = sellerclient.PriceMicros(*p.FloorPrice)
	}
	if len(p.Placements) > 0 {
		e.ProductID = p.Placements[0].ProductID
	}
	if e.Currency == "" {
		e.Currency = "USD"
	}
	return e
}

// wantedFormats are the brief's ad formats, else its channels.
func wantedFormats(b events.ShoppingBrief) []string {
	if len(b.AdFormats) > 0 {
		return b.AdFormats
	}
	return b.Channels
}

// anyEqualFold is true when want is empty or the lists share a value.
func anyEqualFold(have, want []string) bool {
	if len(want) == 0 {
		return true
	}
	for _, w := range want {
		for _, h := range have {
			if strings.EqualFold(strings.TrimSpace(h), strings.TrimSpace(w)) {
				return true
			}
		}
	}
	return false
}

func devicesFit(have, want []int) bool {
	if len(want) == 0 || len(have) == 0 {
		return true
	}
	for _, w := range want {
		for _, h := range have {
			if h == w {
				return true
			}
		}
	}
	return false
}

// geoFits matches geo targets by prefix either way: a US brief fits a US-NY
// package and a US-NY brief fits a national US package.
func geoFits(have, want []string) bool {
	if len(want) == 0 || len(have) == 0 {
		return true
	}
	for _, w := range want {
		w = strings.ToUpper(strings.TrimSpace(w))
		for _, h := range have {
			h = strings.ToUpper(strings.TrimSpace(h))
			if strings.HasPrefix(h, w) || strings.HasPrefix(w, h) {
				return true
			}
		}
	}
	return false
}

// sortByPrice orders fitting packages cheapest first (exact price, else the
// low end of the range), then by id, so the fan-out is deterministic.
func sortByPrice(out []events.Package) {
	price := func(p *events.Package) events.Micros {
		if p.ExactPriceMicros != 0 {
			return p.ExactPriceMicros
		}
		return p.PriceLowMicros
	}
	// slices, not sort.SliceStable: the latter's swapper allocates a
	// Package (about 400 B) for every seller fetched.
	slices.SortStableFunc(out, func(a, b events.Package) int {
		return cmp.Or(cmp.Compare(price(&a), price(&b)), strings.Compare(a.ID, b.ID))
	})
}

package sellerclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/url"
	"strconv"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/dealflow/dealflow/pkg/market"
)

// Package is one media-kit package in either of the seller's views. The
// public view (GET /media-kit/...) has only a price_range string; the
// authenticated view (GET /packages/..., or search with a non-public tier)
// adds exact_price, floor_price, placements and the negotiation flags. Money
// here is float dollars: these are legacy surfaces.
type Package struct {
	PackageID   string   `json:"package_id"`
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	AdFormats   []string `json:"ad_formats"`
	DeviceTypes []int    `json:"device_types"`
	Cat         []string `json:"cat"`
	Cattax      int      `json:"cattax"`
	GeoTargets  []string `json:"geo_targets"`
	Tags        []string `json:"tags"`
	PriceRange  string   `json:"price_range"`
	RateType    string   `json:"rate_type"`
	IsFeatured  bool     `json:"is_featured"`
	// AudienceCapabilities is kept raw: the public view carries a summary, the
	// authenticated view the full segment lists.
	AudienceCapabilities json.RawMessage `json:"audience_capabilities,omitempty"`

	// Authenticated view only.
	ExactPrice               *float64    `json:"exact_price,omitempty"`
	FloorPrice               *float64    `json:"floor_price,omitempty"`
	Currency                 string      `json:"currency,omitempty"`
	Placements               []Placement `json:"placements,omitempty"`
	NegotiationEnabled       bool        `json:"negotiation_enabled,omitempty"`
	VolumeDiscountsAvailable bool        `json:"volume_discounts_available,omitempty"`

	// Authenticated reports that the seller answered with the authenticated
	// view (the exact_price key was present, even if null). A seller that
	// downgrades the claimed tier still answers "authenticated" with the public
	// range and base price (§2.3), so check PriceRange/ExactPrice, not only this.
	Authenticated bool `json:"-"`
}

// Placement is one product inside an authenticated package view.
type Placement struct {
	ProductID   string   `json:"product_id"`
	ProductName string   `json:"product_name"`
	AdFormats   []string `json:"ad_formats"`
	DeviceTypes []int    `json:"device_types"`
	// Weight is the placement's share, 1.0 when the seller omits it.
	Weight float64 `json:"weight"`
}

// UnmarshalJSON applies the seller's defaults (weight 1.0). It is
// UnmarshalJSONFrom for encoding/json callers.
func (p *Placement) UnmarshalJSON(b []byte) error { return jsonv2.Unmarshal(b, p) }

// UnmarshalJSONFrom decodes one placement from dec, with the seller's
// default weight of 1.0 when the weight is absent or null.
func (p *Placement) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	type wire Placement // the fields without the methods
	w := struct {
		*wire
		Weight *float64 `json:"weight"`
	}{wire: (*wire)(p)}
	if err := jsonv2.UnmarshalDecode(dec, &w); err != nil {
		return err
	}
	p.Weight = 1.0
	if w.Weight != nil {
		p.Weight = *w.Weight
	}
	return nil
}

// UnmarshalJSON decodes either view (see UnmarshalJSONFrom) for
// encoding/json callers.
func (p *Package) UnmarshalJSON(b []byte) error { return jsonv2.Unmarshal(b, p) }

// UnmarshalJSONFrom decodes either view from dec, tolerating a string
// cattax and nulls, applying the seller's defaults, and recording whether
// the exact_price key was sent (even as null): that is the authenticated
// view. null leaves p as it is.
func (p *Package) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	if dec.PeekKind() == 'n' {
		_, err := dec.ReadToken()
		return err
	}
	type wire Package // the fields without the methods
	w := struct {
		*wire
		Cattax     *flexInt    `json:"cattax"`
		ExactPrice sentPrice   `json:"exact_price"`
		Placements []Placement `json:"placements"`
	}{wire: (*wire)(p)}
	if err := jsonv2.UnmarshalDecode(dec, &w); err != nil {
		return fmt.Errorf("package: %w", err)
	}
	p.ExactPrice, p.Authenticated = w.ExactPrice.price, w.ExactPrice.sent
	p.Placements = w.Placements
	p.Cattax = 2 // AdCOM default taxonomy (IAB Content Category 2.x)
	if w.Cattax != nil {
		p.Cattax = int(*w.Cattax)
	}
	if p.RateType == "" {
		p.RateType = "cpm"
	}
	if p.Authenticated && p.Currency == "" {
		p.Currency = "USD"
	}
	if isNull(p.AudienceCapabilities) {
		p.AudienceCapabilities = nil
	}
	return nil
}

// sentPrice is an optional price that remembers whether its key was there.
type sentPrice struct {
	price *float64
	sent  bool
}

// UnmarshalJSONFrom is called for the key's value, null included.
func (s *sentPrice) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	s.sent = true
	return jsonv2.UnmarshalDecode(dec, &s.price)
}

// MediaKit is GET /media-kit. The real seller has no seller_name (the
// reference buyer's field is always empty); SellerName is filled only if a
// seller sends it.
type MediaKit struct {
	SellerName    string    `json:"seller_name,omitempty"`
	TotalPackages int       `json:"total_packages"`
	FeaturedCount int       `json:"featured_count"`
	Featured      []Package `json:"featured"`
	AllPackages   []Package `json:"all_packages"`
}

// ListOptions filters GET /media-kit/packages. Only the fields that are set are
// sent.
type ListOptions struct {
	Layer                   string // synced | curated | dynamic
	FeaturedOnly            bool
	AudienceType            string // standard | contextual | agentic
	AudienceID              string // requires AudienceType
	AudienceTaxonomyVersion string
}

// SearchRequest is the body of POST /media-kit/search (MediaKitSearchRequest).
// The seller trusts the claimed tier and ids on this read-only surface, so the
// caller must already have capped them by the seller's trust.
type SearchRequest struct {
	Query          string          `json:"query"`
	BuyerTier      market.Tier     `json:"buyer_tier,omitempty"`
	AgencyID       string          `json:"agency_id,omitempty"`
	AdvertiserID   string          `json:"advertiser_id,omitempty"`
	AudienceFilter *AudienceFilter `json:"audience_filter,omitempty"`
}

// AudienceFilter narrows a search to packages that declare an audience
// segment (AudienceFilterModel).
type AudienceFilter struct {
	AudienceType    string `json:"audience_type,omitempty"`
	AudienceID      string `json:"audience_id,omitempty"`
	TaxonomyVersion string `json:"taxonomy_version,omitempty"`
}

// TierClaim is the unverified identity sent as query parameters to the
// authenticated package views when no API key conveys it. Empty fields are not
// sent.
type TierClaim struct {
	Tier         market.Tier
	AgencyID     string
	AdvertiserID string
}

// MediaKit fetches GET {seller}/media-kit (no auth; always public views).
func (c *Client) MediaKit(ctx context.Context, sellerURL string) (*MediaKit, error) {
	const op = "MediaKit"
	base, err := c.sellerURL(op, sellerURL)
	if err != nil {
		return nil, err
	}
	var out *MediaKit
	err = c.getStream(ctx, op, joinURL(base, "/media-kit", nil), Auth{}, func(r io.Reader) (err error) {
		out, err = parseMediaKit(r)
		return err
	})
	return out, err
}

// ListPackages fetches GET {seller}/media-kit/packages (public views).
func (c *Client) ListPackages(ctx context.Context, sellerURL string, opts ListOptions) ([]Package, error) {
	const op = "ListPackages"
	base, err := c.sellerURL(op, sellerURL)
	if err != nil {
		return nil, err
	}
	if opts.AudienceID != "" && opts.AudienceType == "" {
		return nil, validationError(op, base, "audience_id requires audience_type")
	}
	q := queryOf("layer", opts.Layer, "audience_type", opts.AudienceType, "audience_id", opts.AudienceID,
		"audience_taxonomy_version", opts.AudienceTaxonomyVersion)
	if opts.FeaturedOnly {
		q.Set("featured_only", "true")
	}
	var out []Package
	err = c.getStream(ctx, op, joinURL(base, "/media-kit/packages", q), Auth{}, func(r io.Reader) (err error) {
		out, err = parsePackageList(r, "packages")
		return err
	})
	return out, err
}

// PublicPackage fetches GET {seller}/media-kit/packages/{id}: always the
// public view, whatever the caller's tier.
func (c *Client) PublicPackage(ctx context.Context, sellerURL, id string) (*Package, error) {
	const op = "PublicPackage"
	base, err := c.sellerURL(op, sellerURL)
	if err != nil {
		return nil, err
	}
	seg, err := escapeID(op, id)
	if err != nil {
		return nil, err
	}
	return c.getPackage(ctx, op, joinURL(base, "/media-kit/packages/"+seg, nil), Auth{})
}

// SearchPackages posts POST {seller}/media-kit/search. Results are
// authenticated views only when the effective tier is above public.
func (c *Client) SearchPackages(ctx context.Context, sellerURL string, auth Auth, req SearchRequest) ([]Package, error) {
	const op = "SearchPackages"
	base, err := c.sellerURL(op, sellerURL)
	if err != nil {
		return nil, err
	}
	if req.BuyerTier != "" && !req.BuyerTier.Valid() {
		return nil, validationError(op, base, fmt.Sprintf("unknown buyer_tier %q", req.BuyerTier))
	}
	if f := req.AudienceFilter; f != nil {
		if f.AudienceID != "" && f.AudienceType == "" {
			return nil, validationError(op, base, "audience_filter.audience_id requires audience_type")
		}
		if *f == (AudienceFilter{}) {
			req.AudienceFilter = nil
		}
	}
	var out []Package
	err = c.postStream(ctx, op, joinURL(base, "/media-kit/search", nil), auth, req, func(r io.Reader) (err error) {
		out, err = parsePackageList(r, "results")
		return err
	})
	return out, err
}

// Packages fetches GET {seller}/packages with the tier-gated view: the API
// key's identity decides the view when a key is sent; otherwise the claim.
func (c *Client) Packages(ctx context.Context, sellerURL string, auth Auth, claim TierClaim) ([]Package, error) {
	const op = "Packages"
	base, err := c.sellerURL(op, sellerURL)
	if err != nil {
		return nil, err
	}
	q, err := claim.query(op, base)
	if err != nil {
		return nil, err
	}
	var out []Package
	err = c.getStream(ctx, op, joinURL(base, "/packages", q), auth, func(r io.Reader) (err error) {
		out, err = parsePackageList(r, "packages")
		return err
	})
	return out, err
}

// Package fetches GET {seller}/packages/{id}: the view that carries exact
// prices for seat tier and above.
func (c *Client) Package(ctx context.Context, sellerURL, id string, auth Auth, claim TierClaim) (*Package, error) {
	const op = "Package"
	base, err := c.sellerURL(op, sellerURL)
	if err != nil {
		return nil, err
	}
	seg, err := escapeID(op, id)
	if err != nil {
		return nil, err
	}
	q, err := claim.query(op, base)
	if err != nil {
		return nil, err
	}
	return c.getPackage(ctx, op, joinURL(base, "/packages/"+seg, q), auth)
}

// getPackage GETs and decodes one package.
func (c *Client) getPackage(ctx context.Context, op, u string, auth Auth) (*Package, error) {
	var out *Package
	err := c.getStream(ctx, op, u, auth, func(r io.Reader) (err error) {
		out, err = parsePackage(r)
		return err
	})
	return out, err
}

// query renders the claim as query parameters.
func (t TierClaim) query(op, base string) (url.Values, error) {
	if t.Tier != "" && !t.Tier.Valid() {
		return nil, validationError(op, base, fmt.Sprintf("unknown buyer_tier %q", t.Tier))
	}
	return queryOf("buyer_tier", string(t.Tier), "agency_id", t.AgencyID, "advertiser_id", t.AdvertiserID), nil
}

// parseMediaKit decodes GET /media-kit. total_packages falls back to
// len(all_packages) and featured_count to len(featured) when absent; a body
// in the IAB MediaKit primitive shape (packages[]) is accepted too.
func parseMediaKit(r io.Reader) (*MediaKit, error) {
	var w struct {
		SellerName    string    `json:"seller_name"`
		Name          string    `json:"name"`
		TotalPackages *flexInt  `json:"total_packages"`
		FeaturedCount *flexInt  `json:"featured_count"`
		Featured      []Package `json:"featured"`
		AllPackages   []Package `json:"all_packages"`
		Packages      []Package `json:"packages"`
	}
	if err := readObject(r, &w); err != nil {
		return nil, fmt.Errorf("media kit: %w", err)
	}
	mk := &MediaKit{SellerName: w.SellerName, Featured: w.Featured, AllPackages: w.AllPackages}
	if mk.SellerName == "" {
		mk.SellerName = w.Name
	}
	if mk.AllPackages == nil && w.Packages != nil {
		mk.AllPackages = w.Packages
		for _, p := range w.Packages {
			if p.IsFeatured && w.Featured == nil {
				mk.Featured = append(mk.Featured, p)
			}
		}
	}
	if mk.Featured == nil {
		mk.Featured = []Package{}
	}
	if mk.AllPackages == nil {
		mk.AllPackages = []Package{}
	}
	mk.TotalPackages = len(mk.AllPackages)
	if w.TotalPackages != nil {
		mk.TotalPackages = int(*w.TotalPackages)
	}
	mk.FeaturedCount = len(mk.Featured)
	if w.FeaturedCount != nil {
		mk.FeaturedCount = int(*w.FeaturedCount)
	}
	return mk, nil
}

// parsePackage decodes one package object.
func parsePackage(r io.Reader) (*Package, error) {
	var p Package
	if err := readObject(r, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// parsePackageList decodes {"<key>":[Package...]} (or a bare array), key
// being "packages" or, for a search, "results". A missing or null list is
// an empty one; the seller answers [] rather than 404 for no matches.
func parsePackageList(r io.Reader, key string) ([]Package, error) {
	var out []Package
	err := readTop(r, &topLevel{kinds: "[{", want: "a JSON object", decode: func(dec *jsontext.Decoder, k jsontext.Kind) error {
		switch {
		case k == '[':
			return jsonv2.UnmarshalDecode(dec, &out)
		case key == "results":
			var env struct {
				List []Package `json:"results"`
			}
			err := jsonv2.UnmarshalDecode(dec, &env)
			out = env.List
			return err
		default:
			var env struct {
				List []Package `json:"packages"`
			}
			err := jsonv2.UnmarshalDecode(dec, &env)
			out = env.List
			return err
		}
	}})
	if err != nil {
		return nil, fmt.Errorf("package list: %w", err)
	}
	if out == nil {
		out = []Package{}
	}
	return out, nil
}

// ParsePriceRange parses the seller's display strings: "$28-$42 CPM" gives
// (28, 42, true) and "$33 CPM" gives (33, 33, true). Spaces around the dash,
// decimals, thousands separators and a missing "$" or unit are tolerated;
// anything else (negative, reversed, non-finite) is not ok.
func ParsePriceRange(s string) (low, high float64, ok bool) {
	t := strings.TrimSpace(s)
	if i := strings.LastIndexByte(t, ' '); i > 0 {
		unit := strings.TrimSpace(t[i+1:])
		if unit != "" && isAlpha(unit) {
			t = strings.TrimSpace(t[:i])
		}
	}
	if t == "" {
		return 0, 0, false
	}
	parts := strings.Split(t, "-")
	if len(parts) > 2 {
		return 0, 0, false
	}
	vals := make([]float64, 0, 2)
	for _, p := range parts {
		p = strings.TrimSpace(p)
		p = strings.TrimPrefix(p, "$")
		p = strings.ReplaceAll(strings.TrimSpace(p), ",", "")
		if p == "" || strings.ContainsAny(p, "+eEnNxX_ ") {
			return 0, 0, false
		}
		v, err := strconv.ParseFloat(p, 64)
		if err != nil || math.IsInf(v, 0) || math.IsNaN(v) || v < 0 {
			return 0, 0, false
		}
		vals = append(vals, v)
	}
	low, high = vals[0], vals[len(vals)-1]
	if low > high {
		return 0, 0, false
	}
	return low, high, true
}

// isAlpha reports whether s is ASCII letters only.
func isAlpha(s string) bool {
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') {
			return false
		}
	}
	return true
}

package sandbox

import (
	"fmt"
	"time"
)

// product is a seller's catalog product (the seller's ProductDefinition).
type product struct {
	ID                 string
	Name               string
	Description        string
	InventoryType      string
	BaseCPM            *float64 // nil: no base rate
	FloorCPM           *float64 // nil: no floor
	DealTypes          []string // PG|PD|PA
	MinimumImpressions int64
	MaxImpressions     *int64
	AudienceTargeting  map[string]any
	ContentTargeting   map[string]any
}

// priced reports whether quotes can price the product (base or floor set).
func (p *product) priced() bool { return p.BaseCPM != nil || p.FloorCPM != nil }

// base is quote pricing's base: base_cpm, else floor_cpm.
func (p *product) base() float64 {
	if p.BaseCPM != nil {
		return *p.BaseCPM
	}
	if p.FloorCPM != nil {
		return *p.FloorCPM
	}
	return 0
}

// floor is the product floor (0 when unset).
func (p *product) floor() float64 {
	if p.FloorCPM != nil {
		return *p.FloorCPM
	}
	return 0
}

func fp(v float64) *float64 { return &v }
func ip(v int64) *int64     { return &v }

// Default catalog product ids (§1.7), stable like the real seller's uuid5 ids.
const (
	ProductPremiumDisplay     = "prod-91ddc363"
	ProductStandardDisplay    = "prod-c642fc9b"
	ProductPreRollVideo       = "prod-15ba2543"
	ProductCTVPremium         = "prod-53e78a97"
	ProductMobileRewarded     = "prod-5c55dc4e"
	ProductNativeInFeed       = "prod-12b49f7d"
	ProductNBCPrimetime       = "prod-889e2b7d"
	ProductNBCUCable          = "prod-e28c7f13"
	ProductTelemundo          = "prod-6576b09a"
	ProductComcastLocal       = "prod-3b381ddc"
	ProductComcastAddress     = "prod-6c6b953d"
	ProductProgrammaticLin    = "prod-c6383323"
	ProductDOOHTimesSquare    = "prod-f114d7a7"
	defaultOrganizationID     = "seller-premium-pub-001"
	defaultMinimumImpressions = 10_000
)

// defaultCatalog returns a fresh copy of the real seller's 13-product default
// catalog (§1.7) in its order.
func defaultCatalog() []*product {
	return []*product{
		{ID: ProductPremiumDisplay, Name: "Premium Display - Homepage", Description: "High-impact display on homepage",
			InventoryType: "display", BaseCPM: fp(15), FloorCPM: fp(10), DealTypes: []string{"PG", "PD"},
			MaxImpressions: ip(5_000_000), ContentTargeting: map[string]any{"section": []any{"homepage"}}},
		{ID: ProductStandardDisplay, Name: "Standard Display - ROS", Description: "Run of site display inventory",
			InventoryType: "display", BaseCPM: fp(8), FloorCPM: fp(5), DealTypes: []string{"PD", "PA"}},
		{ID: ProductPreRollVideo, Name: "Pre-Roll Video", Description: "In-stream pre-roll video ads",
			InventoryType: "video", BaseCPM: fp(25), FloorCPM: fp(18), DealTypes: []string{"PG", "PD"}},
		{ID: ProductCTVPremium, Name: "CTV Premium Streaming", Description: "Connected TV inventory on premium streaming apps",
			InventoryType: "ctv", BaseCPM: fp(35), FloorCPM: fp(28), DealTypes: []string{"PG"}, MaxImpressions: ip(20_000_000),
			AudienceTargeting: map[string]any{"demo": []any{"A18-49", "A25-54"}, "geo": []any{"US"}},
			ContentTargeting:  map[string]any{"genre": []any{"drama", "comedy", "sports", "news"}, "content_rating": []any{"TV-PG", "TV-14"}}},
		{ID: ProductMobileRewarded, Name: "Mobile App Rewarded Video", Description: "User-initiated rewarded video in mobile apps",
			InventoryType: "mobile_app", BaseCPM: fp(20), FloorCPM: fp(15), DealTypes: []string{"PD", "PA"}},
		{ID: ProductNativeInFeed, Name: "Native In-Feed", Description: "Native ads in content feeds",
			InventoryType: "native", BaseCPM: fp(12), FloorCPM: fp(8), DealTypes: []string{"PD"}},
		{ID: ProductNBCPrimetime, Name: "NBC Primetime :30", Description: "NBC broadcast primetime 30-second national spot",
			InventoryType: "linear_tv", BaseCPM: fp(55), FloorCPM: fp(40), DealTypes: []string{"PG"}, MaxImpressions: ip(12_000_000)},
		{ID: ProductNBCUCable, Name: "NBCU Cable Network :30 (Bravo/USA)", Description: "NBCU cable network 30-second spot across Bravo, USA, CNBC",
			InventoryType: "linear_tv", BaseCPM: fp(22), FloorCPM: fp(15), DealTypes: []string{"PG", "PD"}},
		{ID: ProductTelemundo, Name: "Telemundo Primetime :30", Description: "Telemundo Spanish-language primetime 30-second spot",
			InventoryType: "linear_tv", BaseCPM: fp(18), FloorCPM: fp(12), DealTypes: []string{"PG", "PD", "PA"}},
		{ID: ProductComcastLocal, Name: "Comcast Local Avails — Top 10 DMAs", Description: "Comcast Xfinity local cable insertion avails in top 10 markets",
			InventoryType: "linear_tv", BaseCPM: fp(15), FloorCPM: fp(8), DealTypes: []string{"PD", "PA"}},
		{ID: ProductComcastAddress, Name: "Comcast Addressable Linear — National", Description: "Comcast addressable linear TV with household-level targeting",
			InventoryType: "linear_tv", BaseCPM: fp(55), FloorCPM: fp(40), DealTypes: []string{"PG", "PA"},
			AudienceTargeting: map[string]any{"geo": []any{"US"}, "household_income": []any{"75k-100k", "100k+"}, "presence_of_children": []any{"true", "false"}}},
		{ID: ProductProgrammaticLin, Name: "Programmatic Linear Reach — A25-54 Primetime", Description: "Aggregated primetime linear reach across multiple networks via SSP",
			InventoryType: "linear_tv", BaseCPM: fp(30), FloorCPM: fp(20), DealTypes: []string{"PG", "PA"},
			AudienceTargeting: map[string]any{"demo": []any{"A25-54"}, "daypart": []any{"primetime"}}},
		{ID: ProductDOOHTimesSquare, Name: "Digital Out-of-Home — Times Square Spectacular", Description: "Iconic Times Square digital billboard takeover; pricing on request only",
			InventoryType: "dooh", DealTypes: []string{"PD"},
			ContentTargeting: map[string]any{"venue": []any{"times_square"}, "format": []any{"billboard"}}},
	}
}

// buildCatalog applies a seller's product overrides/additions to the default catalog.
func buildCatalog(overrides []ProductConfig) []*product {
	cat := defaultCatalog()
	byID := map[string]*product{}
	for _, p := range cat {
		byID[p.ID] = p
	}
	for _, o := range overrides {
		p, ok := byID[o.ID]
		if !ok {
			p = &product{ID: o.ID}
			if p.ID == "" {
				p.ID = "prod-" + shortHash(o.Name, 8)
			}
			cat = append(cat, p)
			byID[p.ID] = p
		}
		if o.Name != "" {
			p.Name = o.Name
		}
		if o.Description != "" {
			p.Description = o.Description
		}
		if o.InventoryType != "" {
			p.InventoryType = o.InventoryType
		}
		if o.BaseCPM != 0 {
			p.BaseCPM = fp(o.BaseCPM)
		}
		if o.FloorCPM != 0 {
			p.FloorCPM = fp(o.FloorCPM)
		}
		if o.MaxImpressions != 0 {
			p.MaxImpressions = ip(o.MaxImpressions)
		}
		if o.MinimumImpressions != 0 {
			p.MinimumImpressions = o.MinimumImpressions
		}
		if len(o.DealTypes) > 0 {
			p.DealTypes = append([]string(nil), o.DealTypes...)
		}
		if p.Name == "" {
			p.Name = p.ID
		}
		if p.InventoryType == "" {
			p.InventoryType = "display"
		}
	}
	for _, p := range cat {
		if p.MinimumImpressions == 0 {
			p.MinimumImpressions = defaultMinimumImpressions
		}
	}
	return cat
}

// DefaultMarket is a varied demo market across CTV, video, display and mobile:
// four healthy listed sellers at different price levels, a blocked reseller,
// an unlisted seller and one that is down. Package prices equal their main
// product's per-seller base/floor. Booked lines deliver on plan but for
// Metro Mobile's rewarded video, which under-delivers.
func DefaultMarket() MarketConfig {
	return MarketConfig{Sellers: []SellerConfig{
		{
			Name: "StreamMax CTV", Trust: "preferred", Capabilities: []string{"ctv", "video"}, InRegistry: true,
			OrganizationID: "seller-streammax-ctv",
			Products: []ProductConfig{
				{ID: ProductCTVPremium, BaseCPM: 38, FloorCPM: 30, MaxImpressions: 40_000_000},
				{ID: ProductPreRollVideo, BaseCPM: 27, FloorCPM: 20},
			},
			Packages: []PackageConfig{
				{ID: "pkg-51a00001", Name: "StreamMax Live Sports CTV", Description: "Live sports on premium streaming apps, big-screen only",
					ProductIDs: []string{ProductCTVPremium}, AdFormats: []string{"ctv", "video"}, DeviceTypes: []int{3},
					Cat: []string{"IAB17"}, GeoTargets: []string{"US"}, Tags: []string{"premium", "sports", "live"}, Featured: true,
					AvailableImpressions: 40_000_000, StandardSegments: []string{"3", "4"}, ContextualSegments: []string{"IAB17-1"}},
				{ID: "pkg-51a00002", Name: "StreamMax Entertainment CTV", Description: "Drama and comedy series on streaming apps",
					ProductIDs: []string{ProductCTVPremium}, AdFormats: []string{"ctv", "video"}, DeviceTypes: []int{3},
					Cat: []string{"IAB1"}, GeoTargets: []string{"US", "US-NY", "US-CA"}, Tags: []string{"entertainment", "drama", "comedy"},
					AvailableImpressions: 25_000_000, StandardSegments: []string{"5"}},
				{ID: "pkg-51a00003", Name: "StreamMax Pre-Roll Video", Description: "Pre-roll on StreamMax web and mobile players",
					ProductIDs: []string{ProductPreRollVideo}, AdFormats: []string{"video"}, DeviceTypes: []int{1, 2},
					Cat: []string{"IAB1"}, GeoTargets: []string{"US"}, Tags: []string{"video", "pre-roll"}, AvailableImpressions: 15_000_000},
			},
		},
		{
			Name: "Northwind Video", Trust: "approved", Capabilities: []string{"video", "display"}, InRegistry: true,
			OrganizationID: "seller-northwind-video",
			Products: []ProductConfig{
				{ID: ProductPreRollVideo, BaseCPM: 22, FloorCPM: 16},
				{ID: ProductPremiumDisplay, BaseCPM: 14, FloorCPM: 9},
				{ID: ProductStandardDisplay, BaseCPM: 7, FloorCPM: 4.5},
			},
			Packages: []PackageConfig{
				{ID: "pkg-a0e00001", Name: "Northwind News Pre-Roll", Description: "Pre-roll video across news and sports clips",
					ProductIDs: []string{ProductPreRollVideo}, AdFormats: []string{"video"}, DeviceTypes: []int{1, 2},
					Cat: []string{"IAB12", "IAB17"}, GeoTargets: []string{"US", "US-NY"}, Tags: []string{"news", "sports", "video"}, Featured: true,
					AvailableImpressions: 30_000_000, StandardSegments: []string{"3"}},
				{ID: "pkg-a0e00002", Name: "Northwind Homepage Takeover", Description: "Homepage display takeover",
					ProductIDs: []string{ProductPremiumDisplay}, AdFormats: []string{"display"}, DeviceTypes: []int{2},
					Cat: []string{"IAB12"}, GeoTargets: []string{"US"}, Tags: []string{"premium", "homepage", "display"}, AvailableImpressions: 5_000_000},
				{ID: "pkg-a0e00003", Name: "Northwind Run of Site Display", Description: "Run-of-site display across Northwind properties",
					ProductIDs: []string{ProductStandardDisplay}, AdFormats: []string{"display"}, DeviceTypes: []int{1, 2},
					GeoTargets: []string{"US"}, Tags: []string{"display", "reach"}, AvailableImpressions: 80_000_000},
			},
		},
		{
			Name: "Pixel Display Co", Trust: "registered", Capabilities: []string{"display", "mobile"}, InRegistry: true,
			OrganizationID: "seller-pixel-display",
			Products: []ProductConfig{
				{ID: ProductPremiumDisplay, BaseCPM: 12, FloorCPM: 8},
				{ID: ProductStandardDisplay, BaseCPM: 6, FloorCPM: 4},
				{ID: ProductMobileRewarded, BaseCPM: 18, FloorCPM: 13},
			},
			Packages: []PackageConfig{
				{ID: "pkg-b1c00001", Name: "Pixel Premium Display", Description: "Above-the-fold display on lifestyle sites",
					ProductIDs: []string{ProductPremiumDisplay}, AdFormats: []string{"display"}, DeviceTypes: []int{2},
					Cat: []string{"IAB9"}, GeoTargets: []string{"US", "US-CA"}, Tags: []string{"premium", "lifestyle", "display"}, Featured: true,
					AvailableImpressions: 5_000_000},
				{ID: "pkg-b1c00002", Name: "Pixel Mobile Display Reach", Description: "Run-of-network mobile web display",
					ProductIDs: []string{ProductStandardDisplay}, AdFormats: []string{"display", "mobile"}, DeviceTypes: []int{1},
					GeoTargets: []string{"US"}, Tags: []string{"mobile", "display", "reach"}, AvailableImpressions: 60_000_000},
				{ID: "pkg-b1c00003", Name: "Pixel Rewarded Mobile Video", Description: "Rewarded video in casual games",
					ProductIDs: []string{ProductMobileRewarded}, AdFormats: []string{"mobile", "video"}, DeviceTypes: []int{1},
					GeoTargets: []string{"US"}, Tags: []string{"mobile", "gaming", "rewarded"}, AvailableImpressions: 20_000_000},
			},
		},
		{
			Name: "Metro Mobile", Trust: "approved", Capabilities: []string{"mobile", "display", "video"}, InRegistry: true,
			OrganizationID: "seller-metro-mobile",
			Products: []ProductConfig{
				{ID: ProductMobileRewarded, BaseCPM: 16, FloorCPM: 12},
				{ID: ProductPreRollVideo, BaseCPM: 21, FloorCPM: 15},
				{ID: ProductStandardDisplay, BaseCPM: 7.5, FloorCPM: 5},
			},
			Packages: []PackageConfig{
				{ID: "pkg-3e700001", Name: "Metro Commuter Mobile Video", Description: "Rewarded and in-app video for urban commuters",
					ProductIDs: []string{ProductMobileRewarded}, AdFormats: []string{"mobile", "video"}, DeviceTypes: []int{1},
					GeoTargets: []string{"US-NY", "US-CA", "US-IL"}, Tags: []string{"mobile", "commuters", "urban"}, Featured: true,
					AvailableImpressions: 25_000_000, StandardSegments: []string{"4"}},
				{ID: "pkg-3e700002", Name: "Metro Local Pre-Roll", Description: "Pre-roll on local news apps",
					ProductIDs: []string{ProductPreRollVideo}, AdFormats: []string{"video", "mobile"}, DeviceTypes: []int{1, 2},
					Cat: []string{"IAB12"}, GeoTargets: []string{"US-NY", "US-CA"}, Tags: []string{"local", "news", "video"}, AvailableImpressions: 12_000_000},
				{ID: "pkg-3e700003", Name: "Metro In-App Display", Description: "Banner display inside transit and weather apps",
					ProductIDs: []string{ProductStandardDisplay}, AdFormats: []string{"display", "mobile"}, DeviceTypes: []int{1},
					GeoTargets: []string{"US"}, Tags: []string{"mobile", "display", "apps"}, AvailableImpressions: 90_000_000},
			},
			// Its rewarded commuter video under-delivers: booked lines of
			// it deliver at 55% of plan (what demo --flight shows pacing
			// catch).
			Delivery: DeliveryConfig{Products: map[string]Delivery{ProductMobileRewarded: {Pace: 0.55}}},
		},
		{
			Name: "Shady Reseller", Trust: "blocked", Capabilities: []string{"ctv", "video"}, InRegistry: true,
			OrganizationID: "seller-shady-reseller",
			Products: []ProductConfig{
				{ID: ProductCTVPremium, BaseCPM: 20, FloorCPM: 12},
				{ID: ProductPreRollVideo, BaseCPM: 12, FloorCPM: 8},
			},
			Packages: []PackageConfig{
				{ID: "pkg-dead0001", Name: "Too-Good CTV Sports", Description: "Premium live sports CTV at remnant prices",
					ProductIDs: []string{ProductCTVPremium}, AdFormats: []string{"ctv", "video"}, DeviceTypes: []int{3},
					Cat: []string{"IAB17"}, GeoTargets: []string{"US"}, Tags: []string{"premium", "sports", "ctv"}, Featured: true,
					AvailableImpressions: 100_000_000},
				{ID: "pkg-dead0002", Name: "Bargain Pre-Roll", Description: "Pre-roll video, any site",
					ProductIDs: []string{ProductPreRollVideo}, AdFormats: []string{"video"}, DeviceTypes: []int{1, 2, 3},
					GeoTargets: []string{"US"}, Tags: []string{"video", "cheap"}, AvailableImpressions: 100_000_000},
			},
		},
		{
			Name: "Unlisted Media", Trust: "unknown", Capabilities: []string{"video"}, InRegistry: false,
			OrganizationID: "seller-unlisted-media",
			Products: []ProductConfig{
				{ID: ProductPreRollVideo, BaseCPM: 19, FloorCPM: 14},
			},
			Packages: []PackageConfig{
				{ID: "pkg-0dd00001", Name: "Unlisted Video Network", Description: "Pre-roll across an unlisted video network",
					ProductIDs: []string{ProductPreRollVideo}, AdFormats: []string{"video"}, DeviceTypes: []int{1, 2},
					GeoTargets: []string{"US"}, Tags: []string{"video", "network"}, Featured: true, AvailableImpressions: 20_000_000},
			},
		},
		{
			Name: "Offline Networks", Trust: "approved", Capabilities: []string{"ctv"}, InRegistry: true,
			OrganizationID: "seller-offline-networks",
			Products: []ProductConfig{
				{ID: ProductCTVPremium, BaseCPM: 33, FloorCPM: 26},
			},
			Packages: []PackageConfig{
				{ID: "pkg-0ff00001", Name: "Offline Networks CTV", Description: "CTV across FAST channels",
					ProductIDs: []string{ProductCTVPremium}, AdFormats: []string{"ctv", "video"}, DeviceTypes: []int{3},
					GeoTargets: []string{"US"}, Tags: []string{"ctv", "fast"}, Featured: true, AvailableImpressions: 30_000_000},
			},
			Faults: Faults{Down: true},
		},
	}, ADCPSellers: DefaultADCPSellers()}
}

// GenerateMarket produces n similar, healthy, listed sellers for load tests:
// trust cycles preferred/approved/registered, capabilities cycle across
// ctv/video/display/mobile, prices vary deterministically from 0.70× to 1.30×
// the default catalog, and every seller answers after latency.
func GenerateMarket(n int, latency time.Duration) MarketConfig {
	trusts := []string{"preferred", "approved", "registered"}
	capSets := [][]string{{"ctv", "video"}, {"video", "display"}, {"display", "mobile"}, {"mobile", "video"}}
	type lane struct {
		productID string
		base      float64
		floor     float64
		formats   []string
		devices   []int
		tags      []string
	}
	lanes := map[string]lane{
		"ctv":     {ProductCTVPremium, 35, 28, []string{"ctv", "video"}, []int{3}, []string{"ctv", "premium"}},
		"video":   {ProductPreRollVideo, 25, 18, []string{"video"}, []int{1, 2}, []string{"video", "pre-roll"}},
		"display": {ProductPremiumDisplay, 15, 10, []string{"display"}, []int{2}, []string{"display", "homepage"}},
		"mobile":  {ProductMobileRewarded, 20, 15, []string{"mobile", "video"}, []int{1}, []string{"mobile", "rewarded"}},
	}
	cfg := MarketConfig{}
	for i := range n {
		factor := 0.70 + float64((i*37)%61)/100 // 0.70 .. 1.30
		caps := capSets[i%len(capSets)]
		name := fmt.Sprintf("Sandbox Seller %04d", i+1)
		s := SellerConfig{
			Name: name, Trust: trusts[i%len(trusts)], Capabilities: append([]string(nil), caps...), InRegistry: true,
			OrganizationID: fmt.Sprintf("seller-sandbox-%04d", i+1),
			Faults:         Faults{Latency: latency},
		}
		for j, c := range caps {
			l := lanes[c]
			base := roundCents(l.base * factor)
			floor := roundCents(l.floor * factor)
			s.Products = append(s.Products, ProductConfig{ID: l.productID, BaseCPM: base, FloorCPM: floor})
			s.Packages = append(s.Packages, PackageConfig{
				ID:   "pkg-" + shortHash(fmt.Sprintf("%s/%d", name, j), 8),
				Name: fmt.Sprintf("%s %s package", name, c), Description: fmt.Sprintf("Generated %s inventory", c),
				ProductIDs: []string{l.productID}, AdFormats: l.formats, DeviceTypes: l.devices,
				GeoTargets: []string{"US"}, Tags: l.tags, Featured: j == 0, AvailableImpressions: 10_000_000,
			})
		}
		cfg.Sellers = append(cfg.Sellers, s)
	}
	return cfg
}

// roundCents keeps generated prices to whole cents.
func roundCents(v float64) float64 {
	return float64(int64(v*100+0.5)) / 100
}

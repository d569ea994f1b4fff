package adcp

import (
	"math"
	"time"

	"github.com/dealflow/dealflow/internal/sandbox"
)

// Importing this package gives sandbox markets their AdCP sellers
// (sandbox.MarketConfig.ADCPSellers).
func init() {
	sandbox.RegisterADCP(func(c sandbox.ADCPSellerConfig) sandbox.ADCPAgent { return New(FromMarket(c)) })
}

// FromMarket is the agent configuration of a market's AdCP seller: the
// default catalog (every product needing approval with ManualApproval), the
// seller's token for its account and brand, its approval delay, rejection,
// signing and fault knobs.
func FromMarket(c sandbox.ADCPSellerConfig) Config {
	products := DefaultCatalog()
	f := c.PriceFactor
	if f <= 0 {
		f = 1
	}
	scale := func(v float64) float64 { return math.Round(v*f*100) / 100 }
	for i := range products {
		products[i].ManualApproval = c.ManualApproval
		for j := range products[i].Pricing {
			o := &products[i].Pricing[j]
			o.FixedPrice, o.FloorPrice, o.MinSpend = scale(o.FixedPrice), scale(o.FloorPrice), scale(o.MinSpend)
			if g := o.Guidance; g != nil {
				o.Guidance = &PriceGuidance{P25: scale(g.P25), P50: scale(g.P50), P75: scale(g.P75), P90: scale(g.P90)}
			}
		}
	}
	delay := c.ApprovalDelay
	if delay <= 0 {
		delay = 300 * time.Millisecond
	}
	return Config{Name: c.Name, Products: products, ApprovalDelay: delay, RejectSubmitted: c.RejectSubmitted,
		RequireSigningFor: c.RequireSigningFor, Faults: c.Faults, Proposals: c.Proposals, Delivery: c.Delivery, TimeScale: c.TimeScale,
		Tokens: map[string]Principal{c.Token: {AccountID: c.AccountID, BrandDomain: c.BrandDomain}}}
}

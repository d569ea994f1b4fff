package sellerclient

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dealflow/dealflow/pkg/market"
)

// DealPerformance is the seller's delivery stats of a booked deal
// (GET /api/v1/deals/{id}/performance, DealPerformanceResponse): what the
// deal has served so far against what it has available. The reference
// seller answers placeholders (0 served, "not_started") until its ad server
// is connected; rates are floats as the seller sends them.
type DealPerformance struct {
	DealID string `json:"deal_id"`
	// ImpressionsAvailable is the deal's goal (the ad server's line
	// goals); ImpressionsServed what it delivered so far.
	ImpressionsAvailable int64 `json:"impressions_available"`
	ImpressionsServed    int64 `json:"impressions_served"`
	// FillRate is served / available in percent (one decimal); WinRate
	// the seller's win rate, a share.
	FillRate float64 `json:"fill_rate"`
	WinRate  float64 `json:"win_rate"`
	// AvgCPMActual is the average CPM paid so far, in dollars (0 while
	// nothing served).
	AvgCPMActual float64 `json:"avg_cpm_actual"`
	// DeliveryPacing is the seller's word: not_started, on_track, behind.
	DeliveryPacing string `json:"delivery_pacing"`
	// LastUpdated is when the stats are as of (zero when the seller says
	// nothing).
	LastUpdated time.Time `json:"last_updated"`
}

// AvgCPMMicros is the average CPM paid so far, in micros (0 when unknown).
func (p *DealPerformance) AvgCPMMicros() market.Micros { return PriceMicros(p.AvgCPMActual) }

// GetDealPerformance fetches GET {seller}/api/v1/deals/{id}/performance (no
// auth, like GetDeal): the deal's delivery so far. A deal the seller does
// not know is ErrNotFound.
func (c *Client) GetDealPerformance(ctx context.Context, sellerURL, dealID string) (*DealPerformance, error) {
	base, err := c.sellerURL("GetDealPerformance", sellerURL)
	if err != nil {
		return nil, err
	}
	seg, err := escapeID("GetDealPerformance", dealID)
	if err != nil {
		return nil, err
	}
	var out *DealPerformance
	err = c.getJSON(ctx, "GetDealPerformance", joinURL(base, "/api/v1/deals/"+seg+"/performance", nil), Auth{}, func(b []byte) (err error) {
		out, err = parsePerformance(b)
		return err
	})
	return out, err
}

// parsePerformance decodes a DealPerformanceResponse strictly (the seller
// contract's rules, jsonutil.go) and checks what a reading needs.
func parsePerformance(b []byte) (*DealPerformance, error) {
	var w struct {
		DealPerformance
		LastUpdated flexTime `json:"last_updated"`
	}
	if err := decodeObject(b, &w); err != nil {
		return nil, fmt.Errorf("performance: %w", err)
	}
	p := w.DealPerformance
	p.LastUpdated = time.Time(w.LastUpdated)
	switch {
	case p.DealID == "":
		return nil, errors.New("performance: missing deal_id")
	case p.ImpressionsServed < 0 || p.ImpressionsAvailable < 0:
		return nil, errors.New("performance: negative impressions")
	case p.AvgCPMActual < 0:
		return nil, errors.New("performance: negative avg_cpm_actual")
	}
	return &p, nil
}

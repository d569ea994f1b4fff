package pacer

import (
	"context"
	"errors"
	"fmt"

	"github.com/dealflow/dealflow/internal/adcpauth"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/identity"
	"github.com/dealflow/dealflow/pkg/sellerclient"
	"github.com/dealflow/dealflow/pkg/sellerclient/adcp"
)

// SellerReader reads delivery from the sellers themselves: an IAB deal's
// performance (GET /api/v1/deals/{id}/performance, no credentials), an
// AdCP buy's get_media_buy_delivery at the MCP endpoint it was bought at,
// with the credentials of the tier it was bought at.
type SellerReader struct {
	Client      *sellerclient.Client
	ADCP        *adcp.Client
	Credentials *identity.Credentials
}

// Spent is the line's delivered spend to date (the booker's reading when
// it cancels a line).
func (r SellerReader) Spent(ctx context.Context, d events.DealBooked) (events.Micros, error) {
	rd, err := r.Read(ctx, d)
	return rd.SpendMicros, err
}

// errNotReported is a delivery answer that says nothing of the line.
var errNotReported = errors.New("the seller's delivery report does not include the line")

// Read reads the line's delivery to date.
func (r SellerReader) Read(ctx context.Context, d events.DealBooked) (Reading, error) {
	if d.Protocol.IsADCP() {
		return r.readADCP(ctx, d)
	}
	if r.Client == nil {
		return Reading{}, errors.New("this pacer has no seller client")
	}
	p, err := r.Client.GetDealPerformance(ctx, d.SellerURL, d.DealID)
	if err != nil {
		return Reading{}, err
	}
	if p.DealID != d.DealID {
		return Reading{}, fmt.Errorf("%w: asked for deal %s, the seller answered for %s", errNotReported, d.DealID, p.DealID)
	}
	// The seller states no spend: its average CPM times what it served
	// (the booked CPM while it reports none), with the contract's one
	// cost rule.
	cpm := p.AvgCPMMicros()
	if cpm <= 0 {
		cpm = d.CPMMicros
	}
	return Reading{Impressions: p.ImpressionsServed, SpendMicros: events.CostMicros(p.ImpressionsServed, cpm), AsOf: p.LastUpdated.UTC(),
		SellerStatus: p.DeliveryPacing}, nil
}

func (r SellerReader) readADCP(ctx context.Context, d events.DealBooked) (Reading, error) {
	if r.ADCP == nil {
		return Reading{}, errors.New("this pacer has no AdCP client")
	}
	seller, err := adcpauth.Seller(r.Credentials, events.Seller{URL: d.SellerURL, Protocol: events.ProtocolADCP, MCPEndpoint: d.MCPEndpoint}, d.Tier)
	if err != nil {
		return Reading{}, err
	}
	dl, err := r.ADCP.GetMediaBuyDelivery(ctx, seller, d.MediaBuyID)
	if err != nil {
		return Reading{}, err
	}
	m, ok := dl.MediaBuy(d.MediaBuyID)
	if !ok {
		return Reading{}, fmt.Errorf("%w: no media buy %s", errNotReported, d.MediaBuyID)
	}
	if dl.Currency != "" && dl.Currency != "USD" {
		return Reading{}, fmt.Errorf("the seller reports delivery in %s; dealflow books and paces USD", dl.Currency)
	}
	rd := Reading{AsOf: dl.ReportingEnd.UTC(), SellerStatus: m.Status}
	if p, ok := m.Package(d.SellerPackageID); ok {
		rd.Impressions, rd.SpendMicros = p.Impressions, p.SpendMicros
		return rd, nil
	}
	if len(m.Packages) <= 1 {
		// One line per buy: the buy's totals are the line's.
		rd.Impressions, rd.SpendMicros = m.Impressions, m.SpendMicros
		return rd, nil
	}
	return Reading{}, fmt.Errorf("%w: no package %s in media buy %s", errNotReported, d.SellerPackageID, d.MediaBuyID)
}

package adcp

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/dealflow/dealflow/pkg/events"
)

// Delivery is a get_media_buy_delivery answer: what the seller's booked
// media buys have delivered over the reporting period (for a call without
// dates, the buy's lifetime up to ReportingEnd). Money is micros of
// Currency.
type Delivery struct {
	// ReportingStart and ReportingEnd bound the report; ReportingEnd is
	// when the numbers are as of.
	ReportingStart, ReportingEnd time.Time
	Currency                     string
	MediaBuys                    []MediaBuyDelivery
}

// MediaBuyDelivery is one buy's delivery.
type MediaBuyDelivery struct {
	MediaBuyID string
	// Status is the buy's status (pending_start, active, completed,
	// paused, ...; reporting_delayed when its data is late).
	Status      string
	Impressions int64
	SpendMicros events.Micros
	Packages    []PackageDelivery
}

// PackageDelivery is one package's delivery within a buy.
type PackageDelivery struct {
	PackageID   string
	Impressions int64
	SpendMicros events.Micros
	// RateMicros is the package's rate per thousand (the agreed CPM, or
	// the effective one of an auction), in micros of Currency.
	RateMicros events.Micros
	Currency   string
	// PacingIndex is the seller's own pace (1 on track), when it says.
	PacingIndex *float64
	// DeliveryStatus is delivering, completed, budget_exhausted,
	// flight_ended or goal_met, when the seller says.
	DeliveryStatus string
	Paused         bool
}

// Package is the delivery of the buy's package id, if the seller reported
// it.
func (m MediaBuyDelivery) Package(id string) (PackageDelivery, bool) {
	for _, p := range m.Packages {
		if p.PackageID == id {
			return p, true
		}
	}
	return PackageDelivery{}, false
}

// MediaBuy is the delivery of the buy id, if the seller reported it.
func (d *Delivery) MediaBuy(id string) (MediaBuyDelivery, bool) {
	for _, m := range d.MediaBuys {
		if m.MediaBuyID == id {
			return m, true
		}
	}
	return MediaBuyDelivery{}, false
}

// GetMediaBuyDelivery calls get_media_buy_delivery for the buys ids (the
// account's every buy when none), lifetime to date: read-only, retried on
// transient failures like every read. The answer is decoded strictly
// (github.com/go-json-experiment/json: exact member names, none twice) and
// its amounts converted to micros once.
func (c *Client) GetMediaBuyDelivery(ctx context.Context, s Seller, ids ...string) (*Delivery, error) {
	req := map[string]any{}
	if len(ids) > 0 {
		req["media_buy_ids"] = ids
	}
	if s.Account != nil {
		req["account"] = s.Account
	}
	args, _ := json.Marshal(req)
	var out *Delivery
	err := c.run(ctx, OpGetMediaBuyDelivery, s, func(ctx context.Context, sess *mcp.ClientSession, tr *tracker) error {
		raw, err := callTool(ctx, sess, tr, OpGetMediaBuyDelivery, args)
		if err != nil {
			return err
		}
		out, err = decodeDelivery(raw)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// wireDelivery is the part of get-media-buy-delivery-response.json this
// client reads.
type wireDelivery struct {
	ReportingPeriod *struct {
		Start string `json:"start"`
		End   string `json:"end"`
	} `json:"reporting_period"`
	Currency   string `json:"currency"`
	Deliveries []struct {
		MediaBuyID string `json:"media_buy_id"`
		Status     string `json:"status"`
		Totals     *struct {
			Impressions *float64 `json:"impressions"`
			Spend       *float64 `json:"spend"`
		} `json:"totals"`
		ByPackage []struct {
			PackageID      string   `json:"package_id"`
			Impressions    *float64 `json:"impressions"`
			Spend          *float64 `json:"spend"`
			Rate           *float64 `json:"rate"`
			Currency       string   `json:"currency"`
			PacingIndex    *float64 `json:"pacing_index"`
			DeliveryStatus string   `json:"delivery_status"`
			Paused         bool     `json:"paused"`
		} `json:"by_package"`
	} `json:"media_buy_deliveries"`
}

func decodeDelivery(raw json.RawMessage) (*Delivery, error) {
	var w wireDelivery
	if err := jsonv2.Unmarshal(raw, &w); err != nil {
		return nil, badResponse("get_media_buy_delivery: "+err.Error(), err)
	}
	if w.ReportingPeriod == nil || w.Currency == "" || w.Deliveries == nil {
		return nil, badResponse("get_media_buy_delivery: reporting_period, currency and media_buy_deliveries are required", nil)
	}
	d := &Delivery{ReportingStart: parseTime(w.ReportingPeriod.Start), ReportingEnd: parseTime(w.ReportingPeriod.End), Currency: w.Currency}
	if d.ReportingEnd.IsZero() {
		return nil, badResponse("get_media_buy_delivery: reporting_period.end is not a date-time", nil)
	}
	for i, b := range w.Deliveries {
		field := fmt.Sprintf("media_buy_deliveries[%d]", i)
		if b.MediaBuyID == "" || b.Status == "" || b.Totals == nil || b.Totals.Spend == nil {
			return nil, badResponse(field+": media_buy_id, status and totals.spend are required", nil)
		}
		m := MediaBuyDelivery{MediaBuyID: b.MediaBuyID, Status: b.Status}
		var err error
		if m.Impressions, err = count(b.Totals.Impressions, field+".totals.impressions"); err != nil {
			return nil, err
		}
		if m.SpendMicros, err = micros(b.Totals.Spend, field+".totals.spend"); err != nil {
			return nil, err
		}
		for j, p := range b.ByPackage {
			pf := fmt.Sprintf("%s.by_package[%d]", field, j)
			if p.PackageID == "" || p.Spend == nil {
				return nil, badResponse(pf+": package_id and spend are required", nil)
			}
			pd := PackageDelivery{PackageID: p.PackageID, Currency: p.Currency, PacingIndex: p.PacingIndex, DeliveryStatus: p.DeliveryStatus, Paused: p.Paused}
			if pd.Currency == "" {
				pd.Currency = d.Currency
			}
			if pd.Impressions, err = count(p.Impressions, pf+".impressions"); err != nil {
				return nil, err
			}
			if pd.SpendMicros, err = micros(p.Spend, pf+".spend"); err != nil {
				return nil, err
			}
			if pd.RateMicros, err = micros(p.Rate, pf+".rate"); err != nil {
				return nil, err
			}
			m.Packages = append(m.Packages, pd)
		}
		d.MediaBuys = append(d.MediaBuys, m)
	}
	return d, nil
}

// count reads a count the schema types as a number (impressions); a
// fraction is rounded down, a missing count is 0.
func count(f *float64, field string) (int64, error) {
	if f == nil {
		return 0, nil
	}
	if *f < 0 || math.IsNaN(*f) || *f > math.MaxInt64/2 {
		return 0, badResponse(field+": not a count", nil)
	}
	return int64(math.Floor(*f)), nil
}

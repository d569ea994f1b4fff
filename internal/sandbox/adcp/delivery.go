package adcp

import (
	"context"
	"encoding/json"
	"math"
	"slices"
	"time"

	"github.com/dealflow/dealflow/internal/flight"
	"github.com/dealflow/dealflow/internal/sandbox"
)

// A confirmed buy delivers each package's budget over the buy's flight
// (start_time to end_time), on the agent's flight clock: real time, or,
// with TimeScale, one flight day per TimeScale from the buy's confirmation.
// Each package follows its product's sandbox.Delivery (pace, cap, never
// starts, stops reporting). A package spends its budget; its impressions
// are that spend at its rate (the fixed price, or the bid an auction
// clears at).

// buyFlight is a buy's flight window and the wall time its clock starts.
func (a *Agent) buyFlight(b *mediaBuy) (sandbox.FlightWindow, bool) {
	st, err1 := time.Parse(time.RFC3339Nano, b.start)
	et, err2 := time.Parse(time.RFC3339Nano, b.end)
	if err1 != nil || err2 != nil || !et.After(st) {
		return sandbox.FlightWindow{}, false
	}
	return sandbox.FlightWindow{Window: flight.Window{Start: st, End: et}, Booked: b.confirmed}, true
}

// packageRate is what a package pays per thousand impressions: the fixed
// price, or what an auction clears at, the bid (the guidance's median for
// a package bought without one, through a proposal, else the floor).
func (a *Agent) packageRate(p pkg) float64 {
	if p.BidPrice != nil && *p.BidPrice > 0 {
		return *p.BidPrice
	}
	for _, o := range a.catalog[p.ProductID].Pricing {
		if o.ID == p.PricingOptionID {
			switch {
			case o.FixedPrice > 0:
				return o.FixedPrice
			case o.Guidance != nil && o.Guidance.P50 > 0:
				return o.Guidance.P50
			}
			return o.FloorPrice
		}
	}
	return 0
}

// packageDelivery is one package's delivery at a share of its flight.
type packageDelivery struct {
	spend, rate float64
	impressions int64
	reporting   bool
}

func (a *Agent) deliver(b *mediaBuy, p pkg, share float64) packageDelivery {
	d := a.packageDeliveryOf(b, p)
	spend := math.Floor(p.course.Delivered(d, p.Budget, share, b.id+"/"+p.ID)*100) / 100
	rate := a.packageRate(p)
	var imps int64
	if rate > 0 {
		imps = int64(math.Floor(spend / rate * 1000))
	}
	return packageDelivery{spend: spend, rate: rate, impressions: imps, reporting: d.Reporting(share)}
}

// SetDelivery changes how one package of a buy delivers from now on (the
// same curve, another pace or fault), for tests that fault a single line.
// It reports whether the agent holds that package.
func (a *Agent) SetDelivery(mediaBuyID, packageID string, d sandbox.Delivery) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	b := a.buys[mediaBuyID]
	if b == nil || !slices.ContainsFunc(b.packages, func(p pkg) bool { return p.ID == packageID }) {
		return false
	}
	if a.delivery == nil {
		a.delivery = map[string]sandbox.Delivery{}
	}
	a.delivery[mediaBuyID+"/"+packageID] = d
	return true
}

// deliveryArgs is the part of get_media_buy_delivery the sandbox reads.
type deliveryArgs struct {
	MediaBuyIDs  []string        `json:"media_buy_ids"`
	StatusFilter json.RawMessage `json:"status_filter"`
	StartDate    string          `json:"start_date"`
	EndDate      string          `json:"end_date"`
}

// getMediaBuyDelivery answers get_media_buy_delivery: per buy of the
// caller's account (those named, else every one), its status on its flight
// clock and, per package, the impressions and spend delivered so far (or
// within start_date..end_date), the rate, a pacing index against even
// delivery of the budget and the delivery status. A buy whose delivery
// stopped reporting fails the call with SERVICE_UNAVAILABLE (transient).
func (a *Agent) getMediaBuyDelivery(_ context.Context, p *principalCtx, raw json.RawMessage) result {
	var in deliveryArgs
	if err := json.Unmarshal(raw, &in); err != nil {
		return adcpErr("INVALID_REQUEST", "cannot read arguments: "+err.Error(), "")
	}
	var statuses []string
	if len(in.StatusFilter) > 0 {
		var one string
		if json.Unmarshal(in.StatusFilter, &one) == nil {
			statuses = []string{one}
		} else if json.Unmarshal(in.StatusFilter, &statuses) != nil {
			return adcpErr("INVALID_REQUEST", "status_filter must be a status or a list of statuses", "status_filter")
		}
	}
	var from, to *time.Time
	for _, d := range []struct {
		s   string
		dst **time.Time
		add int
	}{{in.StartDate, &from, 0}, {in.EndDate, &to, 1}} {
		if d.s == "" {
			continue
		}
		t, err := time.Parse(flight.DateLayout, d.s)
		if err != nil {
			return adcpErr("INVALID_REQUEST", "dates are YYYY-MM-DD", "start_date")
		}
		t = t.AddDate(0, 0, d.add)
		*d.dst = &t
	}
	now := a.cfg.Now()
	clock := flight.Clock{Day: a.cfg.TimeScale}
	a.mu.Lock()
	defer a.mu.Unlock()
	var (
		deliveries         []any
		periodStart, asOf  time.Time
		totalImps          int64
		totalSpend         float64
		found, notReported int
	)
	for _, id := range a.buyOrder {
		b := a.buys[id]
		if b.account != p.principal.AccountID || (len(in.MediaBuyIDs) > 0 && !slices.Contains(in.MediaBuyIDs, id)) {
			continue
		}
		fw, ok := a.buyFlight(b)
		if !ok {
			continue
		}
		at := fw.Now(clock, now)
		status := b.status
		if status == "pending_start" || status == "active" || status == "completed" {
			switch {
			case at.Before(fw.Window.Start):
				status = "pending_start"
			case at.Before(fw.Window.End):
				status = "active"
			default:
				status = "completed"
			}
		}
		if statuses != nil && !slices.Contains(statuses, status) {
			continue
		}
		found++
		share := fw.Window.Elapsed(at)
		// Within a date range: what was delivered between its ends (on
		// the buy's flight clock, capped at now).
		startShare := 0.0
		if from != nil {
			startShare = fw.Window.Elapsed(*from)
		}
		if to != nil {
			share = min(share, fw.Window.Elapsed(*to))
		}
		var pkgs []any
		var imps int64
		var spend float64
		for _, pk := range b.packages {
			d := a.deliver(b, pk, share)
			if !d.reporting {
				notReported++
			}
			if startShare > 0 {
				before := a.deliver(b, pk, min(startShare, share))
				d.spend, d.impressions = math.Round((d.spend-before.spend)*100)/100, d.impressions-before.impressions
			}
			row := map[string]any{"package_id": pk.ID, "impressions": d.impressions, "spend": d.spend, "pricing_model": "cpm",
				"rate": d.rate, "currency": b.currency, "paused": pk.course.Paused, "delivery_status": deliveryStatus(status, d.spend, pk.Budget)}
			if expected := pk.Budget * share; expected > 0 && startShare == 0 {
				row["pacing_index"] = math.Round(d.spend/expected*10000) / 10000
			}
			pkgs = append(pkgs, row)
			imps += d.impressions
			spend += d.spend
		}
		spend = math.Round(spend*100) / 100
		totals := map[string]any{"impressions": imps, "spend": spend}
		if imps > 0 {
			totals["effective_rate"] = math.Round(spend/float64(imps)*1000*100) / 100
		}
		deliveries = append(deliveries, map[string]any{"media_buy_id": b.id, "status": status, "pricing_model": "cpm", "totals": totals, "by_package": nonNil(pkgs)})
		totalImps += imps
		totalSpend += spend
		if periodStart.IsZero() || fw.Window.Start.Before(periodStart) {
			periodStart = fw.Window.Start
		}
		if at.After(asOf) {
			asOf = at
		}
	}
	if len(in.MediaBuyIDs) > 0 && found == 0 && statuses == nil {
		return adcpErr("MEDIA_BUY_NOT_FOUND", "no media buy of this account has the ids asked for", "media_buy_ids")
	}
	if notReported > 0 {
		e := adcpErr("SERVICE_UNAVAILABLE", "delivery reporting is unavailable", "")
		e.body["adcp_error"].(map[string]any)["retry_after"] = 1
		return e
	}
	if periodStart.IsZero() {
		periodStart, asOf = now, now
	}
	if from != nil {
		periodStart = *from
	}
	return result{body: map[string]any{
		"reporting_period":     map[string]any{"start": ts(periodStart), "end": ts(asOf)},
		"currency":             "USD",
		"aggregated_totals":    map[string]any{"impressions": totalImps, "spend": math.Round(totalSpend*100) / 100, "media_buy_count": len(deliveries)},
		"media_buy_deliveries": nonNil(deliveries),
		"sandbox":              true,
	}}
}

// deliveryStatus is a package's delivery_status for its buy's status.
func deliveryStatus(buyStatus string, spend, budget float64) string {
	switch {
	case buyStatus == "completed":
		return "flight_ended"
	case spend >= budget:
		return "goal_met"
	}
	return "delivering"
}

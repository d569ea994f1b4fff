package api

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/identity"
	"github.com/dealflow/dealflow/pkg/sellerclient"
	"github.com/dealflow/dealflow/services/notifier"
)

// BookingRequest is the body of POST /bookings: the reference buyer's shape
// ({"brief":{...},"auto_approve":false}) extended with the pipeline's options.
// Its amounts are dollars, as the reference's users send them; they are
// converted to the contract's micros once, here at the edge (ToCampaign).
type BookingRequest struct {
	CampaignID          string                 `json:"campaign_id,omitempty"`
	Brief               BriefInput             `json:"brief"`
	AutoApprove         bool                   `json:"auto_approve"`
	Buyer               identity.BuyerIdentity `json:"buyer"`
	Negotiation         NegotiationInput       `json:"negotiation"`
	AllowUnknownSellers bool                   `json:"allow_unknown_sellers"`
	Sellers             []string               `json:"sellers"`
	ShoppingWindowSec   int                    `json:"shopping_window_seconds"`
	Notify              *NotifyInput           `json:"notify,omitempty"`
}

// NotifyInput is the campaign's webhook: dealflow POSTs each status change
// and booked deal to URL, signed with Secret. The secret is stored in the
// dealflow_webhooks bucket only, never in an event.
type NotifyInput struct {
	URL    string `json:"url"`
	Secret string `json:"secret"`
}

// Webhook validates the input: the URL by the seller URL rules
// (sellerclient.Guard.CheckURL: http or https, canonicalised, no address the
// guard refuses) and a secret of 16 to 256 characters.
func (n NotifyInput) Webhook(guard sellerclient.Guard, now time.Time) (notifier.Webhook, error) {
	u, err := guard.CheckURL(n.URL)
	if err != nil {
		return notifier.Webhook{}, &events.FieldError{Field: "notify.url", Reason: "must be a public http(s) URL: " + err.Error()}
	}
	if len(n.Secret) < 16 || len(n.Secret) > 256 {
		return notifier.Webhook{}, &events.FieldError{Field: "notify.secret", Reason: "must be 16 to 256 characters"}
	}
	return notifier.Webhook{URL: u, Secret: n.Secret, CreatedAt: now}, nil
}

// BriefInput mirrors events.Brief with the reference's dollar fields:
// budget, per_seller_cap, kpis.target_cpm, kpis.max_cpm and
// weights.price_ceiling are USD (CPMs per thousand impressions).
type BriefInput struct {
	Name           string             `json:"name"`
	Objectives     []string           `json:"objectives,omitempty"`
	Budget         float64            `json:"budget"`
	Currency       string             `json:"currency,omitempty"`
	StartDate      string             `json:"start_date"`
	EndDate        string             `json:"end_date"`
	TargetAudience map[string]any     `json:"target_audience,omitempty"`
	KPIs           KPIsInput          `json:"kpis,omitempty"`
	Channels       []string           `json:"channels,omitempty"`
	AdFormats      []string           `json:"ad_formats,omitempty"`
	DeviceTypes    []int              `json:"device_types,omitempty"`
	Geo            []string           `json:"geo,omitempty"`
	Keywords       []string           `json:"keywords,omitempty"`
	Tags           []string           `json:"tags,omitempty"`
	Impressions    int64              `json:"impressions,omitempty"`
	DealType       string             `json:"deal_type,omitempty"`
	PerSellerCap   float64            `json:"per_seller_cap,omitempty"`
	FormatMix      map[string]float64 `json:"format_mix,omitempty"`
	MinSellers     int                `json:"min_sellers,omitempty"`
	Weights        *WeightsInput      `json:"weights,omitempty"`
}

// KPIsInput is the brief's CPM targets in dollars.
type KPIsInput struct {
	TargetCPM float64 `json:"target_cpm,omitempty"`
	MaxCPM    float64 `json:"max_cpm,omitempty"`
}

// WeightsInput is events.ValueWeights with the price ceiling in dollars.
type WeightsInput struct {
	Price        float64 `json:"price"`
	Video        float64 `json:"video"`
	Display      float64 `json:"display"`
	Negotiable   float64 `json:"negotiable"`
	Volume       float64 `json:"volume"`
	PriceCeiling float64 `json:"price_ceiling"`
}

// NegotiationInput is events.NegotiationPolicy with the step in dollars.
type NegotiationInput struct {
	Strategy  string  `json:"strategy,omitempty"`
	Step      float64 `json:"step,omitempty"`
	MaxRounds int     `json:"max_rounds,omitempty"`
}

// BriefInputOf renders a contract brief in the API's dollar shape (for
// clients and tests that hold an events.Brief).
func BriefInputOf(b events.Brief) BriefInput {
	in := BriefInput{Name: b.Name, Objectives: b.Objectives, Budget: b.BudgetMicros.Dollars(), Currency: b.Currency, StartDate: b.StartDate,
		EndDate: b.EndDate, TargetAudience: b.TargetAudience, KPIs: KPIsInput{TargetCPM: b.KPIs.TargetCPMMicros.Dollars(), MaxCPM: b.KPIs.MaxCPMMicros.Dollars()},
		Channels: b.Channels, AdFormats: b.AdFormats, DeviceTypes: b.DeviceTypes, Geo: b.Geo, Keywords: b.Keywords, Tags: b.Tags,
		Impressions: b.Impressions, DealType: b.DealType, PerSellerCap: b.PerSellerCapMicros.Dollars(), FormatMix: b.FormatMix, MinSellers: b.MinSellers}
	if w := b.Weights; w != nil {
		in.Weights = &WeightsInput{Price: w.Price, Video: w.Video, Display: w.Display, Negotiable: w.Negotiable, Volume: w.Volume,
			PriceCeiling: w.PriceCeilingMicros.Dollars()}
	}
	return in
}

// apiFields maps the contract's micros field names back to the request's
// dollar names, so a 422 names the field the client sent.
var apiFields = map[string]string{
	"brief.budget_micros":                "brief.budget",
	"brief.per_seller_cap_micros":        "brief.per_seller_cap",
	"brief.kpis.target_cpm_micros":       "brief.kpis.target_cpm",
	"brief.kpis.max_cpm_micros":          "brief.kpis.max_cpm",
	"brief.weights.price_ceiling_micros": "brief.weights.price_ceiling",
	"negotiation.step_micros":            "negotiation.step",
}

// ToCampaign converts the request to the contract, each dollar amount once
// with events.MicrosFromDollars (round half to even to the micro). An amount
// that has no micros value is a *events.FieldError naming the request field.
func (req BookingRequest) ToCampaign(now time.Time) (events.CampaignRequested, error) {
	var err error
	conv := func(field string, d float64) events.Micros {
		m, e := events.MicrosFromDollars(d)
		if e != nil && err == nil {
			err = &events.FieldError{Field: field, Reason: "must be a finite amount of dollars within range"}
		}
		return m
	}
	b := req.Brief
	brief := events.Brief{Name: b.Name, Objectives: b.Objectives, BudgetMicros: conv("brief.budget", b.Budget), Currency: b.Currency,
		StartDate: b.StartDate, EndDate: b.EndDate, TargetAudience: b.TargetAudience,
		KPIs:     events.KPIs{TargetCPMMicros: conv("brief.kpis.target_cpm", b.KPIs.TargetCPM), MaxCPMMicros: conv("brief.kpis.max_cpm", b.KPIs.MaxCPM)},
		Channels: b.Channels, AdFormats: b.AdFormats, DeviceTypes: b.DeviceTypes, Geo: b.Geo, Keywords: b.Keywords, Tags: b.Tags,
		Impressions: b.Impressions, DealType: b.DealType, PerSellerCapMicros: conv("brief.per_seller_cap", b.PerSellerCap),
		FormatMix: b.FormatMix, MinSellers: b.MinSellers}
	if w := b.Weights; w != nil {
		brief.Weights = &events.ValueWeights{Price: w.Price, Video: w.Video, Display: w.Display, Negotiable: w.Negotiable, Volume: w.Volume,
			PriceCeilingMicros: conv("brief.weights.price_ceiling", w.PriceCeiling)}
	}
	cr := events.CampaignRequested{CampaignID: req.CampaignID, Brief: brief, Buyer: req.Buyer, AutoApprove: req.AutoApprove,
		AllowUnknownSellers: req.AllowUnknownSellers, Sellers: req.Sellers, ShoppingWindowSec: req.ShoppingWindowSec, RequestedAt: now,
		Negotiation: events.NegotiationPolicy{Strategy: req.Negotiation.Strategy, StepMicros: conv("negotiation.step", req.Negotiation.Step),
			MaxRounds: req.Negotiation.MaxRounds}}
	if err != nil {
		return cr, err
	}
	if err := cr.ValidateAt(time.Now()); err != nil {
		if fe, ok := events.AsFieldError(err); ok {
			if f, ok := apiFields[fe.Field]; ok {
				return cr, &events.FieldError{Field: f, Reason: strings.ReplaceAll(fe.Reason, "_micros", "")}
			}
			return cr, &events.FieldError{Field: fe.Field, Reason: strings.ReplaceAll(fe.Reason, "_micros", "")}
		}
		return cr, err
	}
	// The seller client's full URL rules (CanonicalURL), at the edge: a URL
	// discovery could only skip is refused here, naming it.
	for i, u := range cr.Sellers {
		if _, err := sellerclient.CanonicalURL(u); err != nil {
			reason := err.Error()
			var se *sellerclient.Error
			if errors.As(err, &se) {
				reason = se.Message
			}
			return cr, &events.FieldError{Field: fmt.Sprintf("sellers[%d]", i), Reason: "must be an http or https seller URL: " + reason}
		}
	}
	return cr, nil
}

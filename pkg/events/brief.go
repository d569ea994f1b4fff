package events

import (
	"errors"

	"math"
	"strings"
	"time"
)

// FieldError names the request field that is wrong and why.
type FieldError struct {
	Field  string
	Reason string
}

// Error renders "field: reason".
func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Is lets errors.Is(err, ErrInvalid) match a FieldError.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// DateLayout is the brief's date format.
const DateLayout = "2006-01-02"

// DealTypes are the deal types a brief may ask for.
var DealTypes = []string{"PG", "PD", "PA"}

// Validate checks the brief the way the bookings API and the discoverer
// must agree on; the error is a *FieldError naming the field (prefixed
// "brief.").
func (b Brief) Validate() error {
	bad := func(field, reason string) error { return &FieldError{Field: "brief." + field, Reason: reason} }
	name := strings.TrimSpace(b.Name)
	switch {
	case name == "":
		return bad("name", "is required")
	case len(b.Name) > 100:
		return bad("name", "must be at most 100 characters")
	case b.BudgetMicros <= 0:
		return bad("budget_micros", "must be a positive amount")
	case b.Currency != "" && b.Currency != "USD":
		return bad("currency", "only USD is supported")
	}
	start, err := time.Parse(DateLayout, b.StartDate)
	if err != nil {
		return bad("start_date", "must be a date YYYY-MM-DD")
	}
	end, err := time.Parse(DateLayout, b.EndDate)
	if err != nil {
		return bad("end_date", "must be a date YYYY-MM-DD")
	}
	if end.Before(start) {
		return bad("end_date", "must not be before start_date")
	}
	if b.KPIs.TargetCPMMicros < 0 {
		return bad("kpis.target_cpm_micros", "must not be negative")
	}
	if b.KPIs.MaxCPMMicros < 0 {
		return bad("kpis.max_cpm_micros", "must not be negative")
	}
	if b.KPIs.MaxCPMMicros > 0 && b.KPIs.TargetCPMMicros > b.KPIs.MaxCPMMicros {
		return bad("kpis.target_cpm_micros", "must not exceed kpis.max_cpm_micros")
	}
	if b.DealType != "" && !contains(DealTypes, b.DealType) {
		return bad("deal_type", "must be PG, PD or PA")
	}
	if b.Impressions < 0 {
		return bad("impressions", "must not be negative")
	}
	if b.PerSellerCapMicros < 0 {
		return bad("per_seller_cap_micros", "must not be negative")
	}
	if b.MinSellers < 0 {
		return bad("min_sellers", "must not be negative")
	}
	if w := b.Weights; w != nil {
		for name, v := range map[string]float64{"price": w.Price, "video": w.Video, "display": w.Display, "negotiable": w.Negotiable, "volume": w.Volume} {
			if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
				return bad("weights."+name, "must be a finite number >= 0")
			}
		}
		if w.PriceCeilingMicros < 0 {
			return bad("weights.price_ceiling_micros", "must not be negative")
		}
	}
	sum := 0.0
	for f, s := range b.FormatMix {
		if s < 0 || s > 1 || math.IsNaN(s) {
			return bad("format_mix."+f, "must be a share between 0 and 1")
		}
		sum += s
	}
	if sum > 1+1e-9 {
		return bad("format_mix", "shares must add up to at most 1")
	}
	return nil
}

// EffectiveDealType is the brief's deal type, PD by default.
func (b Brief) EffectiveDealType() string {
	if b.DealType == "" {
		return "PD"
	}
	return b.DealType
}

// Validate checks a campaign request: its id and its brief.
func (c CampaignRequested) Validate() error {
	if err := ValidateCampaignID(c.CampaignID); err != nil {
		return &FieldError{Field: "campaign_id", Reason: "must be 1-64 characters of [A-Za-z0-9_-]"}
	}
	if err := c.Brief.Validate(); err != nil {
		return err
	}
	switch c.Negotiation.Strategy {
	case "", "threshold", "adaptive", "competitive":
	default:
		return &FieldError{Field: "negotiation.strategy", Reason: "must be threshold, adaptive or competitive"}
	}
	if c.Negotiation.MaxRounds < 0 || c.Negotiation.StepMicros < 0 {
		return &FieldError{Field: "negotiation", Reason: "step and max_rounds must not be negative"}
	}
	if c.ShoppingWindowSec < 0 {
		return &FieldError{Field: "shopping_window_seconds", Reason: "must not be negative"}
	}
	return nil
}

// AsFieldError extracts the field error, if err carries one.
func AsFieldError(err error) (*FieldError, bool) {
	var fe *FieldError
	if errors.As(err, &fe) {
		return fe, true
	}
	return nil, false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

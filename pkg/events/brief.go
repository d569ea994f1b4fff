package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
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

// Validate checks the brief against the limits (limits.go) relative to the
// current time; see ValidateAt.
func (b Brief) Validate() error { return b.ValidateAt(time.Now()) }

// ValidateAt checks the brief the way the bookings API and the discoverer
// must agree on, with the flight dates judged against now; the error is a
// *FieldError naming the field (prefixed "brief.", list items by index:
// "brief.channels[3]").
func (b Brief) ValidateAt(now time.Time) error {
	bad := func(field, reason string) error { return &FieldError{Field: "brief." + field, Reason: reason} }
	if strings.TrimSpace(b.Name) == "" {
		return bad("name", "is required")
	}
	if err := checkLen("brief.name", b.Name, MaxNameLen); err != nil {
		return err
	}
	switch {
	case b.BudgetMicros <= 0:
		return bad("budget_micros", "must be a positive amount")
	case b.BudgetMicros > MaxBudgetMicros:
		return bad("budget_micros", "must be at most "+MaxBudgetMicros.String()+" ("+strconv.FormatInt(int64(MaxBudgetMicros), 10)+" micros)")
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
	today := now.UTC().Truncate(24 * time.Hour)
	if start.Before(today.Add(-MaxStartInPast)) {
		return bad("start_date", "must not be more than 1 day in the past")
	}
	if end.Before(start) {
		return bad("end_date", "must not be before start_date")
	}
	if end.After(today.Add(MaxFlightAhead)) {
		return bad("end_date", "must be at most 730 days (2 years) ahead")
	}
	if err := checkList("brief.objectives", b.Objectives, MaxObjectives, MaxTokenLen); err != nil {
		return err
	}
	if err := checkCPM("brief.kpis.target_cpm_micros", b.KPIs.TargetCPMMicros); err != nil {
		return err
	}
	if err := checkCPM("brief.kpis.max_cpm_micros", b.KPIs.MaxCPMMicros); err != nil {
		return err
	}
	if b.KPIs.MaxCPMMicros > 0 && b.KPIs.TargetCPMMicros > b.KPIs.MaxCPMMicros {
		return bad("kpis.target_cpm_micros", "must not exceed kpis.max_cpm_micros")
	}
	for _, l := range []struct {
		field     string
		items     []string
		max, size int
	}{
		{"brief.channels", b.Channels, MaxChannels, MaxTokenLen},
		{"brief.ad_formats", b.AdFormats, MaxAdFormats, MaxTokenLen},
		{"brief.geo", b.Geo, MaxGeo, MaxTokenLen},
		{"brief.keywords", b.Keywords, MaxKeywords, MaxKeywordLen},
		{"brief.tags", b.Tags, MaxTags, MaxTokenLen},
	} {
		if err := checkList(l.field, l.items, l.max, l.size); err != nil {
			return err
		}
	}
	if len(b.DeviceTypes) > MaxDeviceTypes {
		return bad("device_types", fmt.Sprintf("must list at most %d device types", MaxDeviceTypes))
	}
	for i, d := range b.DeviceTypes {
		if d < 1 || d > MaxDeviceType {
			return bad(fmt.Sprintf("device_types[%d]", i), fmt.Sprintf("must be an OpenRTB device type 1-%d", MaxDeviceType))
		}
	}
	if b.DealType != "" && !contains(DealTypes, b.DealType) {
		return bad("deal_type", "must be PG, PD or PA")
	}
	if b.Impressions < 0 || b.Impressions > MaxImpressions {
		return bad("impressions", fmt.Sprintf("must be between 0 and %d", MaxImpressions))
	}
	if b.PerSellerCapMicros < 0 {
		return bad("per_seller_cap_micros", "must not be negative")
	}
	if b.PerSellerCapMicros > b.BudgetMicros {
		return bad("per_seller_cap_micros", "must not exceed budget_micros")
	}
	if b.MinSellers < 0 || b.MinSellers > MaxMinSellers {
		return bad("min_sellers", fmt.Sprintf("must be between 0 and %d", MaxMinSellers))
	}
	if w := b.Weights; w != nil {
		for _, f := range []struct {
			name string
			v    float64
		}{{"price", w.Price}, {"video", w.Video}, {"display", w.Display}, {"negotiable", w.Negotiable}, {"volume", w.Volume}} {
			if f.v < 0 || f.v > MaxWeight || math.IsNaN(f.v) {
				return bad("weights."+f.name, fmt.Sprintf("must be a number between 0 and %g", MaxWeight))
			}
		}
		if err := checkCPM("brief.weights.price_ceiling_micros", w.PriceCeilingMicros); err != nil {
			return err
		}
	}
	if len(b.FormatMix) > MaxFormatMix {
		return bad("format_mix", fmt.Sprintf("must have at most %d formats", MaxFormatMix))
	}
	formats := make([]string, 0, len(b.FormatMix))
	for f := range b.FormatMix {
		formats = append(formats, f)
	}
	sort.Strings(formats) // the first bad format is reported, deterministically
	sum := 0.0
	for _, f := range formats {
		s := b.FormatMix[f]
		if strings.TrimSpace(f) == "" || utf8.RuneCountInString(f) > MaxTokenLen {
			return bad("format_mix", fmt.Sprintf("format names must be 1-%d characters", MaxTokenLen))
		}
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

// checkLen refuses a string longer than max characters.
func checkLen(field, s string, max int) error {
	if utf8.RuneCountInString(s) > max {
		return &FieldError{Field: field, Reason: fmt.Sprintf("must be at most %d characters", max)}
	}
	return nil
}

// checkList refuses a list longer than max or an item that is empty or
// longer than size characters; an item is named by index (field[i]).
func checkList(field string, items []string, max, size int) error {
	if len(items) > max {
		return &FieldError{Field: field, Reason: fmt.Sprintf("must have at most %d items", max)}
	}
	for i, it := range items {
		if strings.TrimSpace(it) == "" || utf8.RuneCountInString(it) > size {
			return &FieldError{Field: fmt.Sprintf("%s[%d]", field, i), Reason: fmt.Sprintf("must be 1-%d characters", size)}
		}
	}
	return nil
}

// checkCPM refuses a negative CPM or one above MaxCPMMicros.
func checkCPM(field string, m Micros) error {
	if m < 0 || m > MaxCPMMicros {
		return &FieldError{Field: field, Reason: "must be between 0 and " + MaxCPMMicros.String() + " (" + strconv.FormatInt(int64(MaxCPMMicros), 10) + " micros)"}
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

// ValidateAt checks a campaign request beyond the contract (Validate): its
// id, its brief's limits (flight dates judged against now), its buyer,
// sellers, negotiation policy and shopping window. The bookings API, the
// CLI and the discoverer ask it whether to take a request on; the error is
// a *FieldError naming the field exactly.
func (c CampaignRequested) ValidateAt(now time.Time) error {
	if err := ValidateCampaignID(c.CampaignID); err != nil {
		return &FieldError{Field: "campaign_id", Reason: campaignIDReason}
	}
	if err := c.Brief.ValidateAt(now); err != nil {
		return err
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{
		{"seat_id", c.Buyer.SeatID, MaxIDLen}, {"agency_id", c.Buyer.AgencyID, MaxIDLen}, {"advertiser_id", c.Buyer.AdvertiserID, MaxIDLen},
		{"seat_name", c.Buyer.SeatName, MaxNameLen}, {"dsp_platform", c.Buyer.DSPPlatform, MaxNameLen},
		{"agency_name", c.Buyer.AgencyName, MaxNameLen}, {"agency_holding_company", c.Buyer.AgencyHoldingCompany, MaxNameLen},
		{"advertiser_name", c.Buyer.AdvertiserName, MaxNameLen}, {"advertiser_industry", c.Buyer.AdvertiserIndustry, MaxNameLen},
	} {
		if err := checkLen("buyer."+f.name, f.v, f.max); err != nil {
			return err
		}
	}
	if len(c.Sellers) > MaxCampaignSellers {
		return &FieldError{Field: "sellers", Reason: fmt.Sprintf("must have at most %d seller URLs", MaxCampaignSellers)}
	}
	for i, u := range c.Sellers {
		if strings.TrimSpace(u) == "" || len(u) > MaxURLLen {
			return &FieldError{Field: fmt.Sprintf("sellers[%d]", i), Reason: fmt.Sprintf("must be a URL of 1-%d bytes", MaxURLLen)}
		}
	}
	switch c.Negotiation.Strategy {
	case "", "threshold", "adaptive", "competitive":
	default:
		return &FieldError{Field: "negotiation.strategy", Reason: "must be threshold, adaptive or competitive"}
	}
	if c.Negotiation.MaxRounds < 0 || c.Negotiation.MaxRounds > MaxNegotiationRounds {
		return &FieldError{Field: "negotiation.max_rounds", Reason: fmt.Sprintf("must be between 0 and %d", MaxNegotiationRounds)}
	}
	if err := checkCPM("negotiation.step_micros", c.Negotiation.StepMicros); err != nil {
		return err
	}
	if c.ShoppingWindowSec < 0 || c.ShoppingWindowSec > int(MaxShoppingWindow/time.Second) {
		return &FieldError{Field: "shopping_window_seconds", Reason: fmt.Sprintf("must be between 0 and %d (24 hours)", int(MaxShoppingWindow/time.Second))}
	}
	return c.checkSize()
}

// checkSize refuses a request whose encoded payload is above
// MaxRequestBytes, naming the field that takes the most of it: the one to
// shorten.
func (c CampaignRequested) checkSize() error {
	b, err := json.Marshal(c)
	if err != nil {
		return &FieldError{Field: "brief", Reason: "cannot be encoded: " + err.Error()}
	}
	if len(b) <= MaxRequestBytes {
		return nil
	}
	size := func(v any) int {
		e, _ := json.Marshal(v)
		return len(e)
	}
	br := c.Brief
	parts := []struct {
		field string
		n     int
	}{
		{"brief.target_audience", size(br.TargetAudience)}, {"brief.geo", size(br.Geo)}, {"brief.keywords", size(br.Keywords)},
		{"brief.tags", size(br.Tags)}, {"brief.objectives", size(br.Objectives)}, {"brief.channels", size(br.Channels)},
		{"brief.ad_formats", size(br.AdFormats)}, {"brief.format_mix", size(br.FormatMix)}, {"brief.name", size(br.Name)},
		{"sellers", size(c.Sellers)}, {"buyer", size(c.Buyer)}, {"notify", size(c.Notify)},
	}
	big := parts[0]
	for _, p := range parts[1:] {
		if p.n > big.n {
			big = p
		}
	}
	return &FieldError{Field: big.field, Reason: fmt.Sprintf("the request takes %d bytes encoded, more than the %d one campaign can carry through its events and record; this field takes %d of them",
		len(b), MaxRequestBytes, big.n)}
}

// ShortReason is reason cut to MaxReasonLen bytes (at a character
// boundary, ending in "…"): what a SellerSkipped, a QuoteReady and a
// campaign's summary carry, so no reason can copy a brief or a seller's
// answer into every seller's event and the campaign record.
func ShortReason(reason string) string {
	if len(reason) <= MaxReasonLen {
		return reason
	}
	cut := MaxReasonLen - len("…")
	for cut > 0 && !utf8.RuneStart(reason[cut]) {
		cut--
	}
	return reason[:cut] + "…"
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

// ShoppingBrief is the part of a brief the fan-out events (SellerFound,
// PackageFound) carry: what the kitfetcher needs to fit packages and the
// negotiator to quote them. The whole brief (audience, objectives, value
// weights, format mix, ...) stays in CampaignRequested, read by the
// discoverer and the booker, so a large brief is not copied into every
// seller's and package's event.
type ShoppingBrief struct {
	BudgetMicros       Micros   `json:"budget_micros" desc:"The campaign's budget (the quoted volume defaults to what it buys)."`
	Currency           string   `json:"currency,omitempty"`
	StartDate          string   `json:"start_date"`
	EndDate            string   `json:"end_date"`
	KPIs               KPIs     `json:"kpis,omitempty"`
	Channels           []string `json:"channels,omitempty"`
	AdFormats          []string `json:"ad_formats,omitempty"`
	DeviceTypes        []int    `json:"device_types,omitempty"`
	Geo                []string `json:"geo,omitempty"`
	Keywords           []string `json:"keywords,omitempty"`
	Tags               []string `json:"tags,omitempty"`
	Impressions        int64    `json:"impressions,omitempty"`
	DealType           string   `json:"deal_type,omitempty"`
	PerSellerCapMicros Micros   `json:"per_seller_cap_micros,omitempty"`
}

// ForShopping is the brief as the fan-out events carry it.
func (b Brief) ForShopping() ShoppingBrief {
	return ShoppingBrief{BudgetMicros: b.BudgetMicros, Currency: b.Currency, StartDate: b.StartDate, EndDate: b.EndDate, KPIs: b.KPIs,
		Channels: b.Channels, AdFormats: b.AdFormats, DeviceTypes: b.DeviceTypes, Geo: b.Geo, Keywords: b.Keywords, Tags: b.Tags,
		Impressions: b.Impressions, DealType: b.DealType, PerSellerCapMicros: b.PerSellerCapMicros}
}

// ForNegotiation is the shopping brief as PackageFound carries it: without
// the lists that fit packages (channels, formats, device types, geo,
// keywords, tags), which the kitfetcher has used by then and the negotiator
// never reads. Copied into every package, a 34 KB geo list added 2.2 MB to
// the stream for one campaign.
func (b ShoppingBrief) ForNegotiation() ShoppingBrief {
	b.Channels, b.AdFormats, b.DeviceTypes, b.Geo, b.Keywords, b.Tags = nil, nil, nil, nil, nil, nil
	return b
}

// EffectiveDealType is the brief's deal type, PD by default.
func (b ShoppingBrief) EffectiveDealType() string {
	return Brief{DealType: b.DealType}.EffectiveDealType()
}

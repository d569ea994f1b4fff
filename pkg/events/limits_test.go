package events

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

// TestCampaignLimits checks every bound of a campaign request at the bound
// (accepted) and just past it (refused, naming the field).
func TestCampaignLimits(t *testing.T) {
	t.Parallel()
	now := time.Date(2027, 3, 10, 15, 4, 5, 0, time.UTC)
	base := func() CampaignRequested {
		return CampaignRequested{
			CampaignID: "cmp-1",
			Brief: Brief{Name: "Q1 CTV", BudgetMicros: 50_000_000_000, StartDate: "2027-03-10", EndDate: "2027-03-31",
				KPIs: KPIs{TargetCPMMicros: 20_000_000, MaxCPMMicros: 30_000_000}},
			Buyer: BuyerIdentity{SeatID: "seat"},
		}
	}
	n := func(k int, s string) []string { // k copies of s
		out := make([]string, k)
		for i := range out {
			out[i] = s
		}
		return out
	}
	long := func(k int) string { return strings.Repeat("é", k) } // characters, not bytes
	cases := []struct {
		name  string
		edit  func(c *CampaignRequested)
		field string
	}{
		{"valid", func(c *CampaignRequested) {}, ""},
		{"budget at max", func(c *CampaignRequested) { c.Brief.BudgetMicros = MaxBudgetMicros }, ""},
		{"budget past max", func(c *CampaignRequested) { c.Brief.BudgetMicros = MaxBudgetMicros + 1 }, "brief.budget_micros"},
		{"budget max int64 micros", func(c *CampaignRequested) { c.Brief.BudgetMicros = 9_223_372_036_854_775_807 }, "brief.budget_micros"},
		{"budget zero", func(c *CampaignRequested) { c.Brief.BudgetMicros = 0 }, "brief.budget_micros"},
		{"budget one micro", func(c *CampaignRequested) { c.Brief.BudgetMicros = 1; c.Brief.KPIs = KPIs{} }, ""},
		{"name at max", func(c *CampaignRequested) { c.Brief.Name = long(MaxNameLen) }, ""},
		{"name past max", func(c *CampaignRequested) { c.Brief.Name = long(MaxNameLen + 1) }, "brief.name"},
		{"name blank", func(c *CampaignRequested) { c.Brief.Name = "  " }, "brief.name"},
		{"start yesterday", func(c *CampaignRequested) { c.Brief.StartDate = "2027-03-09" }, ""},
		{"start two days ago", func(c *CampaignRequested) { c.Brief.StartDate = "2027-03-08" }, "brief.start_date"},
		{"end at horizon", func(c *CampaignRequested) {
			c.Brief.EndDate = now.Truncate(24 * time.Hour).Add(MaxFlightAhead).Format(DateLayout)
		}, ""},
		{"end past horizon", func(c *CampaignRequested) {
			c.Brief.EndDate = now.Truncate(24 * time.Hour).Add(MaxFlightAhead + 24*time.Hour).Format(DateLayout)
		}, "brief.end_date"},
		{"end before start", func(c *CampaignRequested) { c.Brief.EndDate = "2027-03-09" }, "brief.end_date"},
		{"end same day", func(c *CampaignRequested) { c.Brief.EndDate = c.Brief.StartDate }, ""},
		{"target cpm at max", func(c *CampaignRequested) { c.Brief.KPIs = KPIs{TargetCPMMicros: MaxCPMMicros} }, ""},
		{"target cpm past max", func(c *CampaignRequested) { c.Brief.KPIs = KPIs{TargetCPMMicros: MaxCPMMicros + 1} }, "brief.kpis.target_cpm_micros"},
		{"max cpm at max", func(c *CampaignRequested) { c.Brief.KPIs.MaxCPMMicros = MaxCPMMicros }, ""},
		{"max cpm past max", func(c *CampaignRequested) { c.Brief.KPIs.MaxCPMMicros = MaxCPMMicros + 1 }, "brief.kpis.max_cpm_micros"},
		{"max cpm negative", func(c *CampaignRequested) { c.Brief.KPIs.MaxCPMMicros = -1 }, "brief.kpis.max_cpm_micros"},
		{"target equals max", func(c *CampaignRequested) { c.Brief.KPIs.TargetCPMMicros = c.Brief.KPIs.MaxCPMMicros }, ""},
		{"target above max", func(c *CampaignRequested) { c.Brief.KPIs.TargetCPMMicros = c.Brief.KPIs.MaxCPMMicros + 1 }, "brief.kpis.target_cpm_micros"},
		{"channels at max", func(c *CampaignRequested) { c.Brief.Channels = n(MaxChannels, long(MaxTokenLen)) }, ""},
		{"channels past max", func(c *CampaignRequested) { c.Brief.Channels = n(MaxChannels+1, "video") }, "brief.channels"},
		{"channel too long", func(c *CampaignRequested) { c.Brief.Channels = []string{"a", "b", "c", long(MaxTokenLen + 1)} }, "brief.channels[3]"},
		{"channel empty", func(c *CampaignRequested) { c.Brief.Channels = []string{"video", ""} }, "brief.channels[1]"},
		{"ad formats at max", func(c *CampaignRequested) { c.Brief.AdFormats = n(MaxAdFormats, "video") }, ""},
		{"ad formats past max", func(c *CampaignRequested) { c.Brief.AdFormats = n(MaxAdFormats+1, "video") }, "brief.ad_formats"},
		{"ad format too long", func(c *CampaignRequested) { c.Brief.AdFormats = []string{long(MaxTokenLen + 1)} }, "brief.ad_formats[0]"},
		{"objectives at max", func(c *CampaignRequested) { c.Brief.Objectives = n(MaxObjectives, long(MaxTokenLen)) }, ""},
		{"objectives past max", func(c *CampaignRequested) { c.Brief.Objectives = n(MaxObjectives+1, "reach") }, "brief.objectives"},
		{"objective too long", func(c *CampaignRequested) { c.Brief.Objectives = []string{"reach", long(MaxTokenLen + 1)} }, "brief.objectives[1]"},
		{"geo at max", func(c *CampaignRequested) { c.Brief.Geo = n(MaxGeo, "US") }, ""},
		{"geo past max", func(c *CampaignRequested) { c.Brief.Geo = n(MaxGeo+1, "US") }, "brief.geo"},
		{"geo too long", func(c *CampaignRequested) { c.Brief.Geo = []string{long(MaxTokenLen + 1)} }, "brief.geo[0]"},
		{"keywords at max", func(c *CampaignRequested) { c.Brief.Keywords = n(MaxKeywords, long(MaxKeywordLen)) }, ""},
		{"keywords past max", func(c *CampaignRequested) { c.Brief.Keywords = n(MaxKeywords+1, "k") }, "brief.keywords"},
		{"keyword too long", func(c *CampaignRequested) { c.Brief.Keywords = []string{long(MaxKeywordLen + 1)} }, "brief.keywords[0]"},
		{"tags at max", func(c *CampaignRequested) { c.Brief.Tags = n(MaxTags, long(MaxTokenLen)) }, ""},
		{"tags past max", func(c *CampaignRequested) { c.Brief.Tags = n(MaxTags+1, "t") }, "brief.tags"},
		{"tag too long", func(c *CampaignRequested) { c.Brief.Tags = []string{"ok", long(MaxTokenLen + 1)} }, "brief.tags[1]"},
		{"device types at max", func(c *CampaignRequested) { c.Brief.DeviceTypes = []int{1, 2, 3, 4, 5, 6, 7, MaxDeviceType} }, ""},
		{"device types past max", func(c *CampaignRequested) { c.Brief.DeviceTypes = make([]int, MaxDeviceTypes+1) }, "brief.device_types"},
		{"device type past max", func(c *CampaignRequested) { c.Brief.DeviceTypes = []int{3, MaxDeviceType + 1} }, "brief.device_types[1]"},
		{"device type zero", func(c *CampaignRequested) { c.Brief.DeviceTypes = []int{0} }, "brief.device_types[0]"},
		{"deal type", func(c *CampaignRequested) { c.Brief.DealType = "PGX" }, "brief.deal_type"},
		{"impressions at max", func(c *CampaignRequested) { c.Brief.Impressions = MaxImpressions }, ""},
		{"impressions past max", func(c *CampaignRequested) { c.Brief.Impressions = MaxImpressions + 1 }, "brief.impressions"},
		{"cap at budget", func(c *CampaignRequested) { c.Brief.PerSellerCapMicros = c.Brief.BudgetMicros }, ""},
		{"cap past budget", func(c *CampaignRequested) { c.Brief.PerSellerCapMicros = c.Brief.BudgetMicros + 1 }, "brief.per_seller_cap_micros"},
		{"cap negative", func(c *CampaignRequested) { c.Brief.PerSellerCapMicros = -1 }, "brief.per_seller_cap_micros"},
		{"min sellers at max", func(c *CampaignRequested) { c.Brief.MinSellers = MaxMinSellers }, ""},
		{"min sellers past max", func(c *CampaignRequested) { c.Brief.MinSellers = MaxMinSellers + 1 }, "brief.min_sellers"},
		{"min sellers negative", func(c *CampaignRequested) { c.Brief.MinSellers = -1 }, "brief.min_sellers"},
		{"mix at 1", func(c *CampaignRequested) { c.Brief.FormatMix = map[string]float64{"video": 0.5, "display": 0.5} }, ""},
		{"mix past 1", func(c *CampaignRequested) { c.Brief.FormatMix = map[string]float64{"video": 0.5, "display": 0.500001} }, "brief.format_mix"},
		{"share past 1", func(c *CampaignRequested) { c.Brief.FormatMix = map[string]float64{"video": 1.000001} }, "brief.format_mix.video"},
		{"share negative", func(c *CampaignRequested) { c.Brief.FormatMix = map[string]float64{"video": -0.1} }, "brief.format_mix.video"},
		{"mix entries past max", func(c *CampaignRequested) {
			c.Brief.FormatMix = map[string]float64{}
			for i := 0; i <= MaxFormatMix; i++ {
				c.Brief.FormatMix[strings.Repeat("f", i+1)] = 0
			}
		}, "brief.format_mix"},
		{"price ceiling past max", func(c *CampaignRequested) { c.Brief.Weights = &ValueWeights{PriceCeilingMicros: MaxCPMMicros + 1} }, "brief.weights.price_ceiling_micros"},
		{"price ceiling at max", func(c *CampaignRequested) { c.Brief.Weights = &ValueWeights{PriceCeilingMicros: MaxCPMMicros} }, ""},
		{"weights at max", func(c *CampaignRequested) {
			c.Brief.Weights = &ValueWeights{Price: MaxWeight, Video: MaxWeight, Display: MaxWeight, Negotiable: MaxWeight, Volume: MaxWeight}
		}, ""},
		{"price weight 1e308", func(c *CampaignRequested) { c.Brief.Weights = &ValueWeights{Price: 1e308} }, "brief.weights.price"},
		{"price weight past max", func(c *CampaignRequested) { c.Brief.Weights = &ValueWeights{Price: MaxWeight * 1.000001} }, "brief.weights.price"},
		{"video weight past max", func(c *CampaignRequested) { c.Brief.Weights = &ValueWeights{Video: MaxWeight + 1} }, "brief.weights.video"},
		{"volume weight infinite", func(c *CampaignRequested) { c.Brief.Weights = &ValueWeights{Volume: math.Inf(1)} }, "brief.weights.volume"},
		{"negotiable weight NaN", func(c *CampaignRequested) { c.Brief.Weights = &ValueWeights{Negotiable: math.NaN()} }, "brief.weights.negotiable"},
		{"display weight negative", func(c *CampaignRequested) { c.Brief.Weights = &ValueWeights{Display: -1} }, "brief.weights.display"},
		{"seat id at max", func(c *CampaignRequested) { c.Buyer.SeatID = long(MaxIDLen) }, ""},
		{"seat id past max", func(c *CampaignRequested) { c.Buyer.SeatID = long(MaxIDLen + 1) }, "buyer.seat_id"},
		{"advertiser name past max", func(c *CampaignRequested) { c.Buyer.AdvertiserName = long(MaxNameLen + 1) }, "buyer.advertiser_name"},
		{"sellers at max", func(c *CampaignRequested) { c.Sellers = n(MaxCampaignSellers, "https://s.example") }, ""},
		{"sellers past max", func(c *CampaignRequested) { c.Sellers = n(MaxCampaignSellers+1, "https://s.example") }, "sellers"},
		{"seller url too long", func(c *CampaignRequested) {
			c.Sellers = []string{"https://a", "https://" + strings.Repeat("x", MaxURLLen)}
		}, "sellers[1]"},
		{"rounds at max", func(c *CampaignRequested) { c.Negotiation.MaxRounds = MaxNegotiationRounds }, ""},
		{"rounds past max", func(c *CampaignRequested) { c.Negotiation.MaxRounds = MaxNegotiationRounds + 1 }, "negotiation.max_rounds"},
		{"rounds negative", func(c *CampaignRequested) { c.Negotiation.MaxRounds = -1 }, "negotiation.max_rounds"},
		{"step at max", func(c *CampaignRequested) { c.Negotiation.StepMicros = MaxCPMMicros }, ""},
		{"step past max", func(c *CampaignRequested) { c.Negotiation.StepMicros = MaxCPMMicros + 1 }, "negotiation.step_micros"},
		{"step negative", func(c *CampaignRequested) { c.Negotiation.StepMicros = -1 }, "negotiation.step_micros"},
		{"strategy", func(c *CampaignRequested) { c.Negotiation.Strategy = "greedy" }, "negotiation.strategy"},
		{"window at max", func(c *CampaignRequested) { c.ShoppingWindowSec = int(MaxShoppingWindow / time.Second) }, ""},
		{"window past max", func(c *CampaignRequested) { c.ShoppingWindowSec = int(MaxShoppingWindow/time.Second) + 1 }, "shopping_window_seconds"},
		{"window negative", func(c *CampaignRequested) { c.ShoppingWindowSec = -1 }, "shopping_window_seconds"},
		{"campaign id", func(c *CampaignRequested) { c.CampaignID = "a.b" }, "campaign_id"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := base()
			c.edit(&req)
			err := req.ValidateAt(now)
			if c.field == "" {
				if err != nil {
					t.Fatalf("unexpected %v", err)
				}
				return
			}
			fe, ok := AsFieldError(err)
			if !ok || fe.Field != c.field || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want field %s", err, c.field)
			}
		})
	}
}

// TestValidateUsesNow: Validate is ValidateAt(time.Now()).
func TestValidateUsesNow(t *testing.T) {
	t.Parallel()
	today := time.Now().UTC()
	b := Brief{Name: "n", BudgetMicros: 1, StartDate: today.Format(DateLayout), EndDate: today.Format(DateLayout)}
	if err := b.Validate(); err != nil {
		t.Fatal(err)
	}
	b.StartDate = today.AddDate(0, 0, -3).Format(DateLayout)
	if fe, ok := AsFieldError(b.Validate()); !ok || fe.Field != "brief.start_date" {
		t.Fatalf("a start three days ago: %v", b.Validate())
	}
}

// TestSchemaErrorNamesField: a schema violation names the offending field
// the way FieldError does.
func TestSchemaErrorNamesField(t *testing.T) {
	t.Parallel()
	cases := []struct{ data, field string }{
		{`{"campaign_id":"c","brief":{"name":"n","budget_micros":1.5,"start_date":"a","end_date":"b"},"buyer":{},"auto_approve":false,"requested_at":"2027-01-01T00:00:00Z"}`, "brief.budget_micros"},
		{`{"campaign_id":"c","brief":{"name":"n","budget_micros":1,"start_date":"a","end_date":"b","channels":["a","b","c",4]},"buyer":{},"auto_approve":false,"requested_at":"2027-01-01T00:00:00Z"}`, "brief.channels[3]"},
		{`{"campaign_id":"c","buyer":{},"auto_approve":false,"requested_at":"2027-01-01T00:00:00Z"}`, "brief"},
	}
	for _, c := range cases {
		err := ValidateData(KindCampaignRequested, []byte(c.data))
		se, ok := AsSchemaError(err)
		if !ok || se.Field != c.field || !errors.Is(err, ErrInvalid) || !strings.HasPrefix(err.Error(), "CampaignRequested violates its schema: ") {
			t.Fatalf("%s: err %v (field %q), want field %s", c.data, err, fieldOf(se), c.field)
		}
	}
}

func fieldOf(se *SchemaError) string {
	if se == nil {
		return ""
	}
	return se.Field
}

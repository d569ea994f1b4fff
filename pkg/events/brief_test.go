package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestBriefValidate(t *testing.T) {
	t.Parallel()
	ok := Brief{Name: "Q1 CTV", BudgetMicros: 50_000_000_000, StartDate: "2028-06-01", EndDate: "2028-06-30", KPIs: KPIs{TargetCPMMicros: 20_000_000, MaxCPMMicros: 30_000_000}}
	cases := []struct {
		name  string
		edit  func(b *Brief)
		field string
	}{
		{"valid", func(b *Brief) {}, ""},
		{"same day", func(b *Brief) { b.EndDate = b.StartDate }, ""},
		{"no name", func(b *Brief) { b.Name = " " }, "brief.name"},
		{"zero budget", func(b *Brief) { b.BudgetMicros = 0 }, "brief.budget_micros"},
		{"negative budget", func(b *Brief) { b.BudgetMicros = -1 }, "brief.budget_micros"},
		{"bad start", func(b *Brief) { b.StartDate = "01/01/2027" }, "brief.start_date"},
		{"end before start", func(b *Brief) { b.EndDate = "2026-12-31" }, "brief.end_date"},
		{"target above max", func(b *Brief) { b.KPIs.TargetCPMMicros = 30_000_001 }, "brief.kpis.target_cpm_micros"},
		{"bad deal type", func(b *Brief) { b.DealType = "preferred_deal" }, "brief.deal_type"},
		{"mix over 1", func(b *Brief) { b.FormatMix = map[string]float64{"video": 0.7, "display": 0.5} }, "brief.format_mix"},
		{"euro", func(b *Brief) { b.Currency = "EUR" }, "brief.currency"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := ok
			c.edit(&b)
			err := b.Validate()
			if c.field == "" {
				if err != nil {
					t.Fatalf("unexpected %v", err)
				}
				return
			}
			fe, isField := AsFieldError(err)
			if !isField || fe.Field != c.field || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want field %s", err, c.field)
			}
		})
	}
}

// TestForShoppingLeavesTheBulkBehind: the fan-out events carry a
// ShoppingBrief, so a brief's free-form audience, objectives and weights are
// not copied into every seller's and package's event.
func TestForShoppingLeavesTheBulkBehind(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 200_000)
	b := Brief{Name: "n", BudgetMicros: 5_000_000, StartDate: "2028-06-01", EndDate: "2028-06-02", TargetAudience: map[string]any{"segments": big},
		Objectives: []string{"awareness"}, Channels: []string{"ctv"}, KPIs: KPIs{MaxCPMMicros: 30_000_000}, DealType: "PG", Weights: &ValueWeights{Price: 1}}
	sb := b.ForShopping()
	data, err := json.Marshal(SellerFound{CampaignID: "c", Seller: Seller{URL: "https://s", Trust: TrustVerified, Source: "registry"}, Brief: sb})
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > 2000 || strings.Contains(string(data), "segments") || strings.Contains(string(data), "awareness") {
		t.Fatalf("SellerFound is %d bytes: %s", len(data), data[:min(len(data), 300)])
	}
	if sb.BudgetMicros != b.BudgetMicros || sb.KPIs != b.KPIs || sb.Channels[0] != "ctv" || sb.EffectiveDealType() != "PG" {
		t.Fatalf("shopping brief lost what the stages need: %+v", sb)
	}
}

func TestShortReason(t *testing.T) {
	if ShortReason("short") != "short" {
		t.Fatal("a short reason changed")
	}
	long := strings.Repeat("é", MaxReasonLen) // 2 bytes each
	got := ShortReason(long)
	if len(got) > MaxReasonLen || !utf8.ValidString(got) || !strings.HasSuffix(got, "…") {
		t.Fatalf("%d bytes, valid %v: %q", len(got), utf8.ValidString(got), got[len(got)-10:])
	}
}

// TestRequestSizeNamesItsLargestField: a request over MaxRequestBytes is
// refused naming the field that takes most of it.
func TestRequestSizeNamesItsLargestField(t *testing.T) {
	now := time.Date(2028, 5, 1, 0, 0, 0, 0, time.UTC)
	req := CampaignRequested{CampaignID: "c-1", Brief: Brief{Name: "n", BudgetMicros: MustMicros(1000), StartDate: "2028-06-01", EndDate: "2028-06-02"}}
	if err := req.ValidateAt(now); err != nil {
		t.Fatal(err)
	}
	req.Brief.TargetAudience = map[string]any{"x": strings.Repeat("a", MaxRequestBytes)}
	fe, ok := AsFieldError(req.ValidateAt(now))
	if !ok || fe.Field != "brief.target_audience" || !strings.Contains(fe.Reason, "bytes encoded") {
		t.Fatalf("%+v", fe)
	}
	req.Brief.TargetAudience = nil
	for i := range MaxCampaignSellers {
		req.Sellers = append(req.Sellers, fmt.Sprintf("https://s%d.example/%s", i, strings.Repeat("p", 100)))
	}
	if fe, ok := AsFieldError(req.ValidateAt(now)); !ok || fe.Field != "sellers" {
		t.Fatalf("%+v", fe)
	}
}

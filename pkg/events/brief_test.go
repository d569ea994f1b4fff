package events

import (
	"errors"
	"testing"
)

func TestBriefValidate(t *testing.T) {
	t.Parallel()
	ok := Brief{Name: "Q1 CTV", BudgetMicros: 50_000_000_000, StartDate: "2027-01-01", EndDate: "2027-01-31", KPIs: KPIs{TargetCPMMicros: 20_000_000, MaxCPMMicros: 30_000_000}}
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

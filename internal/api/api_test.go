package api

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/dealflow/dealflow/pkg/events"
)

// TestBookingRequestToCampaign: the API's dollar fields are converted once,
// half to even to the micro, and a bad amount is a field error naming the
// request's dollar field.
func TestBookingRequestToCampaign(t *testing.T) {
	var req BookingRequest
	body := `{"campaign_id":"c-1","brief":{"name":"x","budget":16666.665,"start_date":"2028-06-01","end_date":"2028-06-30",
		"kpis":{"target_cpm":16,"max_cpm":28.0000005},"per_seller_cap":8000,"weights":{"price":1,"video":10,"price_ceiling":50}},
		"negotiation":{"strategy":"threshold","step":0.25,"max_rounds":4}}`
	if err := json.Unmarshal([]byte(body), &req); err != nil {
		t.Fatal(err)
	}
	cr, err := req.ToCampaign(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b := cr.Brief
	if b.BudgetMicros != 16_666_665_000 || b.KPIs.TargetCPMMicros != 16_000_000 || b.KPIs.MaxCPMMicros != 28_000_000 ||
		b.PerSellerCapMicros != 8_000_000_000 || b.Weights.PriceCeilingMicros != 50_000_000 || b.Weights.Video != 10 ||
		cr.Negotiation.StepMicros != 250_000 || cr.Negotiation.MaxRounds != 4 {
		t.Fatalf("converted %+v %+v %+v", b, b.Weights, cr.Negotiation)
	}
	if back := BriefInputOf(b); back.Budget != 16666.665 || back.KPIs.MaxCPM != 28 || back.PerSellerCap != 8000 || back.Weights.PriceCeiling != 50 {
		t.Fatalf("BriefInputOf %+v", back)
	}

	cases := []struct {
		name  string
		edit  func(r *BookingRequest)
		field string
	}{
		{"huge budget", func(r *BookingRequest) { r.Brief.Budget = 1e300 }, "brief.budget"},
		{"NaN cap", func(r *BookingRequest) { r.Brief.PerSellerCap = math.NaN() }, "brief.per_seller_cap"},
		{"budget rounds to nothing", func(r *BookingRequest) { r.Brief.Budget = 0.0000004 }, "brief.budget"},
		{"negative cap", func(r *BookingRequest) { r.Brief.PerSellerCap = -1 }, "brief.per_seller_cap"},
		{"target above max", func(r *BookingRequest) { r.Brief.KPIs.TargetCPM = 29 }, "brief.kpis.target_cpm"},
		{"negative ceiling", func(r *BookingRequest) { r.Brief.Weights = &WeightsInput{PriceCeiling: -1} }, "brief.weights.price_ceiling"},
		{"infinite step", func(r *BookingRequest) { r.Negotiation.Step = math.Inf(1) }, "negotiation.step"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := req
			r.Brief.Weights = &WeightsInput{Price: 1, PriceCeiling: 50}
			c.edit(&r)
			_, err := r.ToCampaign(time.Now())
			fe, ok := events.AsFieldError(err)
			if !ok || fe.Field != c.field {
				t.Fatalf("err %v, want a field error on %s", err, c.field)
			}
		})
	}
}

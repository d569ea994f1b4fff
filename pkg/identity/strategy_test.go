package identity

import (
	"errors"
	"math"
	"reflect"
	"testing"
)

func TestRecommendTierReferenceCases(t *testing.T) {
	t.Parallel()
	def := DefaultStrategy()
	cases := []struct {
		id   string
		s    Strategy
		ctx  DealContext
		want Tier
	}{
		{"I-1", def, DealContext{150000, "PG", RelationshipTrusted, GoalPerformance}, TierAdvertiser},
		{"I-2", def, DealContext{0, "PG", RelationshipUnknown, GoalAwareness}, TierAdvertiser},
		{"I-2 lowercase pg", def, DealContext{0, "pg", RelationshipUnknown, GoalAwareness}, TierAdvertiser},
		{"I-3", def, DealContext{150000, "PD", RelationshipUnknown, GoalAwareness}, TierAdvertiser},
		{"I-4 inclusive high", def, DealContext{100000, "PD", RelationshipUnknown, GoalAwareness}, TierAdvertiser},
		{"I-5", def, DealContext{99999.99, "PD", RelationshipUnknown, GoalAwareness}, TierAgency},
		{"I-6 inclusive mid", def, DealContext{25000, "PD", RelationshipUnknown, GoalAwareness}, TierAgency},
		{"I-7", def, DealContext{24999, "PD", RelationshipUnknown, GoalAwareness}, TierSeat},
		{"I-8", def, DealContext{5000, "PD", RelationshipUnknown, GoalAwareness}, TierSeat},
		{"I-9 never public", def, DealContext{0, "PD", RelationshipUnknown, GoalAwareness}, TierSeat},
		{"I-10", def, DealContext{10000, "PA", RelationshipUnknown, GoalAwareness}, TierSeat},
		{"I-11 trusted", def, DealContext{10000, "PA", RelationshipTrusted, GoalAwareness}, TierAgency},
		{"I-11 established", def, DealContext{10000, "PA", RelationshipEstablished, GoalAwareness}, TierAgency},
		{"I-11 new", def, DealContext{10000, "PA", RelationshipNew, GoalAwareness}, TierSeat},
		{"I-12", def, DealContext{10000, "PD", RelationshipUnknown, GoalPerformance}, TierAgency},
		{"I-13", def, DealContext{10000, "PD", RelationshipTrusted, GoalPerformance}, TierAdvertiser},
		{"I-14 trusted", def, DealContext{30000, "PD", RelationshipTrusted, GoalAwareness}, TierAdvertiser},
		{"I-14 performance", def, DealContext{30000, "PD", RelationshipUnknown, GoalPerformance}, TierAdvertiser},
		{"I-15 awareness", def, DealContext{20000, "PD", RelationshipUnknown, GoalAwareness}, TierSeat},
		{"I-15 performance", def, DealContext{20000, "PD", RelationshipUnknown, GoalPerformance}, TierAgency},
		{"I-16 zero value full disclosure", def, DealContext{0, "PD", RelationshipTrusted, GoalPerformance}, TierAdvertiser},
		{"I-17 custom high", Strategy{HighValueUSD: 1_000_000}, DealContext{500000, "PD", RelationshipUnknown, GoalAwareness}, TierAgency},
		{"I-17 mid stays default", Strategy{HighValueUSD: 1_000_000}, DealContext{10000, "PD", RelationshipUnknown, GoalAwareness}, TierSeat},
		{"zero strategy is default", Strategy{}, DealContext{100000, "PD", "", ""}, TierAdvertiser},
		{"empty context is small PD", def, DealContext{}, TierSeat},
		{"capped at advertiser", def, DealContext{200000, "PD", RelationshipTrusted, GoalPerformance}, TierAdvertiser},
	}
	for _, c := range cases {
		t.Run(c.id, func(t *testing.T) {
			t.Parallel()
			if got := c.s.RecommendTier(c.ctx); got != c.want {
				t.Fatalf("RecommendTier(%+v) = %s, want %s", c.ctx, got, c.want)
			}
		})
	}
}

func TestDealContextValidate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		ctx  DealContext
		ok   bool
	}{
		{"I-18 negative value", DealContext{DealValueUSD: -100}, false},
		{"NaN value", DealContext{DealValueUSD: math.NaN()}, false},
		{"infinite value", DealContext{DealValueUSD: math.Inf(1)}, false},
		{"bad deal type", DealContext{DealType: "XX"}, false},
		{"bad relationship", DealContext{Relationship: "friend"}, false},
		{"bad goal", DealContext{Goal: "fame"}, false},
		{"zero", DealContext{}, true},
		{"full", DealContext{1, "pa", RelationshipNew, GoalPerformance}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			err := c.ctx.Validate()
			if c.ok != (err == nil) {
				t.Fatalf("Validate() = %v, want ok=%v", err, c.ok)
			}
			if !c.ok && !errors.Is(err, ErrInvalidContext) {
				t.Fatalf("error %v does not wrap ErrInvalidContext", err)
			}
		})
	}
	if err := (Strategy{HighValueUSD: -1}).Validate(); !errors.Is(err, ErrInvalidContext) {
		t.Fatalf("negative threshold: %v", err)
	}
}

func TestEstimateSavings(t *testing.T) {
	t.Parallel()
	cases := []struct {
		base     float64
		cur, tgt Tier
		want     float64
	}{
		{20, TierPublic, TierAdvertiser, 3.0},
		{20, TierSeat, TierAgency, 1.0},
		{35, TierSeat, TierAgency, 1.75},
		{100, TierPublic, TierSeat, 5.0},
		{20, TierAdvertiser, TierPublic, 0},
		{20, TierAgency, TierAgency, 0},
		{0, TierPublic, TierAdvertiser, 0},
		{-10, TierPublic, TierAdvertiser, 0},
	}
	for _, c := range cases {
		if got := EstimateSavings(c.base, c.cur, c.tgt); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("EstimateSavings(%v, %s, %s) = %v, want %v", c.base, c.cur, c.tgt, got, c.want)
		}
	}
}

func fullIdentity() BuyerIdentity {
	return BuyerIdentity{
		SeatID: "ttd-seat-123", SeatName: "TTD Seat", DSPPlatform: "ttd",
		AgencyID: "omnicom-456", AgencyName: "Omnicom", AgencyHoldingCompany: "Omnicom Group",
		AdvertiserID: "coca-cola-789", AdvertiserName: "Coca-Cola", AdvertiserIndustry: "CPG",
	}
}

func TestBuildIdentity(t *testing.T) {
	t.Parallel()
	full := fullIdentity()
	orig := full
	seat := BuyerIdentity{SeatID: "ttd-seat-123", SeatName: "TTD Seat", DSPPlatform: "ttd"}
	agency := BuyerIdentity{SeatID: "ttd-seat-123", SeatName: "TTD Seat", DSPPlatform: "ttd",
		AgencyID: "omnicom-456", AgencyName: "Omnicom", AgencyHoldingCompany: "Omnicom Group"}
	cases := []struct {
		id       string
		in       BuyerIdentity
		tier     Tier
		want     BuyerIdentity
		wantTier Tier
	}{
		{"I-20 agency", full, TierAgency, agency, TierAgency},
		{"I-21 seat", full, TierSeat, seat, TierSeat},
		{"I-21 public", full, TierPublic, BuyerIdentity{}, TierPublic},
		{"I-21 advertiser", full, TierAdvertiser, full, TierAdvertiser},
		{"invalid tier masks to public", full, Tier("admin"), BuyerIdentity{}, TierPublic},
		{"I-22 seat-only to advertiser", BuyerIdentity{SeatID: "s", SeatName: "n"}, TierAdvertiser, BuyerIdentity{SeatID: "s", SeatName: "n"}, TierSeat},
		{"I-22 agency-only to seat", BuyerIdentity{AgencyID: "a"}, TierSeat, BuyerIdentity{}, TierPublic},
		{"I-22 advertiser-only to agency", BuyerIdentity{AdvertiserID: "x"}, TierAgency, BuyerIdentity{}, TierPublic},
	}
	for _, c := range cases {
		t.Run(c.id, func(t *testing.T) {
			t.Parallel()
			got := BuildIdentity(c.in, c.tier)
			if got != c.want {
				t.Fatalf("BuildIdentity = %+v, want %+v", got, c.want)
			}
			if got.AccessTier() != c.wantTier {
				t.Fatalf("tier %s, want %s", got.AccessTier(), c.wantTier)
			}
		})
	}
	if full != orig {
		t.Fatalf("BuildIdentity mutated its input: %+v", full)
	}
}

func TestAccessTierAndNegotiation(t *testing.T) {
	t.Parallel()
	// I-23
	adv := BuyerIdentity{AdvertiserID: "x"}
	if adv.AccessTier() != TierAdvertiser || adv.AccessTier().DiscountPct() != 15 {
		t.Fatalf("advertiser-only: %s %v", adv.AccessTier(), adv.AccessTier().DiscountPct())
	}
	if adv.SellerTier() != TierPublic {
		t.Fatalf("seller tier of advertiser-only = %s, want public", adv.SellerTier())
	}
	if (BuyerIdentity{SeatID: ""}).AccessTier() != TierPublic || (BuyerIdentity{AgencyID: "a"}).AccessTier() != TierAgency {
		t.Fatal("I-23 tiers")
	}
	// I-25
	for _, c := range []struct {
		id   BuyerIdentity
		want bool
	}{
		{BuyerIdentity{SeatID: "s"}, false},
		{BuyerIdentity{AgencyID: "a"}, true},
		{BuyerIdentity{AgencyID: "a", AdvertiserID: "x"}, true},
		{BuyerIdentity{}, false},
	} {
		if got := c.id.AccessTier().CanNegotiate(); got != c.want {
			t.Errorf("CanNegotiate(%+v) = %v, want %v", c.id, got, c.want)
		}
	}
}

func TestHeaderMap(t *testing.T) {
	t.Parallel()
	// I-24
	got := HeaderMap(BuyerIdentity{SeatID: "ttd-seat-123", AgencyID: "omnicom-456", AdvertiserID: "coca-cola-789"})
	want := map[string]string{"X-DSP-Seat-ID": "ttd-seat-123", "X-Agency-ID": "omnicom-456", "X-Advertiser-ID": "coca-cola-789"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("HeaderMap = %v, want %v", got, want)
	}
	all := HeaderMap(fullIdentity())
	if len(all) != 9 || all["X-Agency-Holding-Company"] != "Omnicom Group" || all["X-Advertiser-Industry"] != "CPG" || all["X-DSP-Platform"] != "ttd" {
		t.Fatalf("full header map = %v", all)
	}
	if m := HeaderMap(BuyerIdentity{}); len(m) != 0 {
		t.Fatalf("empty identity gives headers %v", m)
	}
}

// TestRecommendReason pins the wording of the recommendation's reason,
// which every SellerFound carries (disclosure.reason).
func TestRecommendReason(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		s    Strategy
		ctx  DealContext
		want string
	}{
		{Strategy{}, DealContext{150000, "PD", RelationshipUnknown, GoalAwareness}, "deal value $150000 >= high threshold $100000"},
		{Strategy{}, DealContext{25000.5, "PD", RelationshipTrusted, GoalAwareness}, "deal value $25000.5 >= mid threshold $25000, +1 for trusted relationship"},
		{Strategy{MidValueUSD: 0.25}, DealContext{0.1, "PA", RelationshipEstablished, GoalPerformance}, "deal value $0.1 below mid threshold $0.25, +1 for established relationship, +1 for performance goal"},
		{Strategy{}, DealContext{0, "PG", RelationshipUnknown, GoalAwareness}, "PG deal"},
	} {
		if _, why := c.s.recommend(c.ctx); why != c.want {
			t.Errorf("%+v: reason %q, want %q", c.ctx, why, c.want)
		}
	}
}

package identity

import (
	"errors"
	"strings"
	"testing"
)

// tiersAbove lists the identity fields that belong strictly above tier t.
func fieldsAbove(b BuyerIdentity, t Tier) []string {
	var out []string
	if t.Rank() < TierSeat.Rank() && (b.SeatID != "" || b.SeatName != "" || b.DSPPlatform != "") {
		out = append(out, "seat")
	}
	if t.Rank() < TierAgency.Rank() && (b.AgencyID != "" || b.AgencyName != "" || b.AgencyHoldingCompany != "") {
		out = append(out, "agency")
	}
	if t.Rank() < TierAdvertiser.Rank() && (b.AdvertiserID != "" || b.AdvertiserName != "" || b.AdvertiserIndustry != "") {
		out = append(out, "advertiser")
	}
	return out
}

func only(ts ...Tier) func(Tier) bool {
	return func(t Tier) bool {
		for _, x := range ts {
			if x == t {
				return true
			}
		}
		return false
	}
}

func TestDecide(t *testing.T) {
	t.Parallel()
	full := fullIdentity()
	big := DealContext{DealValueUSD: 150000, DealType: "PD"}
	pg := DealContext{DealType: "PG"}
	small := DealContext{DealValueUSD: 1000, DealType: "PD"}
	cases := []struct {
		name       string
		caps       CapTable
		id         BuyerIdentity
		trust      Trust
		ctx        DealContext
		avail      func(Tier) bool
		wantTier   Tier
		wantRec    Tier
		wantCap    Tier
		wantReason []string
		wantErr    error
	}{
		{name: "preferred PG gets advertiser", trust: TrustPreferred, ctx: pg, wantTier: TierAdvertiser, wantRec: TierAdvertiser, wantCap: TierAdvertiser,
			wantReason: []string{"recommended advertiser (PG deal)", "within the advertiser cap for preferred trust"}},
		{name: "verified PG capped to agency", trust: TrustVerified, ctx: pg, wantTier: TierAgency, wantRec: TierAdvertiser, wantCap: TierAgency,
			wantReason: []string{"recommended advertiser (PG deal); capped to agency by verified trust"}},
		{name: "registered never above seat", trust: TrustRegistered, ctx: DealContext{DealValueUSD: 1e9, DealType: "PG", Relationship: RelationshipTrusted, Goal: GoalPerformance},
			wantTier: TierSeat, wantRec: TierAdvertiser, wantCap: TierSeat, wantReason: []string{"capped to seat by registered trust"}},
		{name: "unknown never above public (defect 2: $150k PD)", trust: TrustUnknown, ctx: big, wantTier: TierPublic, wantRec: TierAdvertiser, wantCap: TierPublic,
			wantReason: []string{"capped to public by unknown trust"}},
		{name: "unrecognised trust treated as unknown", trust: Trust("weird"), ctx: pg, wantTier: TierPublic, wantRec: TierAdvertiser, wantCap: TierPublic},
		{name: "blocked is an error", trust: TrustBlocked, ctx: small, wantErr: ErrBlocked},
		{name: "blocked even if the table maps it", caps: CapTable{TrustBlocked: TierAdvertiser}, trust: TrustBlocked, ctx: small, wantErr: ErrBlocked},
		{name: "bad context", trust: TrustPreferred, ctx: DealContext{DealValueUSD: -1}, wantErr: ErrInvalidContext},
		{name: "relationship derived from trust", trust: TrustVerified, ctx: small, wantTier: TierAgency, wantRec: TierAgency, wantCap: TierAgency,
			wantReason: []string{"+1 for established relationship"}},
		{name: "explicit relationship kept", trust: TrustVerified, ctx: DealContext{DealValueUSD: 1000, Relationship: RelationshipNew}, wantTier: TierSeat, wantRec: TierSeat, wantCap: TierAgency},
		{name: "small deal to preferred seller", trust: TrustPreferred, ctx: small, wantTier: TierAgency, wantRec: TierAgency, wantCap: TierAdvertiser},
		{name: "no advertiser key lowers to agency", trust: TrustPreferred, ctx: pg, avail: only(TierSeat, TierAgency), wantTier: TierAgency, wantRec: TierAdvertiser, wantCap: TierAdvertiser,
			wantReason: []string{"lowered to agency: no advertiser credential for this seller"}},
		{name: "only seat key", trust: TrustPreferred, ctx: pg, avail: only(TierSeat), wantTier: TierSeat, wantRec: TierAdvertiser, wantCap: TierAdvertiser},
		{name: "no key at all gives public", trust: TrustPreferred, ctx: pg, avail: only(), wantTier: TierPublic, wantRec: TierAdvertiser, wantCap: TierAdvertiser},
		{name: "key above cap is not used", trust: TrustRegistered, ctx: pg, avail: only(TierAdvertiser), wantTier: TierPublic, wantRec: TierAdvertiser, wantCap: TierSeat},
		{name: "advertiser without agency id: seller would see seat", trust: TrustPreferred, ctx: pg,
			id: BuyerIdentity{SeatID: "s", AdvertiserID: "x"}, wantTier: TierSeat, wantRec: TierAdvertiser, wantCap: TierAdvertiser,
			wantReason: []string{"lowered to agency: the buyer identity does not support advertiser", "lowered to seat"}},
		{name: "agency-only identity (no seat)", trust: TrustPreferred, ctx: pg, id: BuyerIdentity{AgencyID: "a"}, wantTier: TierAgency, wantRec: TierAdvertiser, wantCap: TierAdvertiser},
		{name: "agency-only identity capped to seat gives public", trust: TrustRegistered, ctx: pg, id: BuyerIdentity{AgencyID: "a"}, wantTier: TierPublic, wantRec: TierAdvertiser, wantCap: TierSeat},
		{name: "empty identity", trust: TrustPreferred, ctx: pg, id: BuyerIdentity{}, wantTier: TierPublic, wantRec: TierAdvertiser, wantCap: TierAdvertiser},
		{name: "custom table", caps: CapTable{TrustVerified: TierAdvertiser, TrustUnknown: TierSeat}, trust: TrustRegistered, ctx: pg, wantTier: TierSeat, wantRec: TierAdvertiser, wantCap: TierSeat},
		{name: "typo in table narrows", caps: CapTable{TrustPreferred: Tier("advertizer")}, trust: TrustPreferred, ctx: pg, wantTier: TierPublic, wantRec: TierAdvertiser, wantCap: TierPublic},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			caps := c.caps
			if caps == nil {
				caps = DefaultCaps()
			}
			id := c.id
			if id.IsZero() && !strings.Contains(c.name, "empty identity") {
				id = full
			}
			before := id
			d, err := Decide(DefaultStrategy(), caps, id, c.trust, c.ctx, c.avail)
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("err = %v, want %v", err, c.wantErr)
				}
				if d.Tier != "" || !d.Identity.IsZero() {
					t.Fatalf("an error decision carries %+v", d)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Tier != c.wantTier || d.Recommended != c.wantRec || d.Cap != c.wantCap {
				t.Fatalf("decision tier=%s rec=%s cap=%s, want %s/%s/%s (%s)", d.Tier, d.Recommended, d.Cap, c.wantTier, c.wantRec, c.wantCap, d.Reason)
			}
			if d.Identity.SellerTier() != d.Tier {
				t.Fatalf("masked identity is seen as %s, decided %s", d.Identity.SellerTier(), d.Tier)
			}
			if above := fieldsAbove(d.Identity, d.Tier); len(above) > 0 {
				t.Fatalf("masked identity %+v has %v fields above %s", d.Identity, above, d.Tier)
			}
			if d.Identity != BuildIdentity(id, d.Tier) {
				t.Fatalf("identity %+v is not the mask of the full identity", d.Identity)
			}
			if d.Tier.Rank() > d.Cap.Rank() {
				t.Fatalf("tier %s above cap %s", d.Tier, d.Cap)
			}
			for _, w := range c.wantReason {
				if !strings.Contains(d.Reason, w) {
					t.Errorf("reason %q lacks %q", d.Reason, w)
				}
			}
			if id != before {
				t.Fatal("Decide mutated the full identity")
			}
		})
	}
}

func TestRelationshipFor(t *testing.T) {
	t.Parallel()
	want := map[Trust]Relationship{
		TrustPreferred: RelationshipTrusted, TrustVerified: RelationshipEstablished,
		TrustRegistered: RelationshipNew, TrustUnknown: RelationshipUnknown, TrustBlocked: RelationshipUnknown,
		ParseTrust("approved"): RelationshipEstablished,
	}
	for tr, r := range want {
		if got := RelationshipFor(tr); got != r {
			t.Errorf("RelationshipFor(%s) = %s, want %s", tr, got, r)
		}
	}
	caps := DefaultCaps()
	for tr, tier := range map[Trust]Tier{TrustPreferred: TierAdvertiser, TrustVerified: TierAgency, TrustRegistered: TierSeat, TrustUnknown: TierPublic} {
		if got, err := caps.Cap(tr); err != nil || got != tier {
			t.Errorf("Cap(%s) = %s, %v; want %s", tr, got, err, tier)
		}
	}
}

// FuzzDecide checks the disclosure invariants on arbitrary inputs: never above
// the cap, never a field above the tier, and the seller sees exactly the tier.
func FuzzDecide(f *testing.F) {
	f.Add(150000.0, "PD", "preferred", "trusted", "performance", "s", "a", "x", uint8(15))
	f.Add(0.0, "PG", "registered", "", "", "", "a", "x", uint8(7))
	f.Add(30000.0, "PA", "unknown", "new", "awareness", "s", "", "x", uint8(1))
	f.Add(-1.0, "XX", "blocked", "odd", "odd", "", "", "", uint8(0))
	f.Fuzz(func(t *testing.T, v float64, dt, trust, rel, goal, seat, agency, adv string, keys uint8) {
		full := BuyerIdentity{SeatID: seat, AgencyID: agency, AgencyName: agency, AdvertiserID: adv, AdvertiserName: adv}
		avail := func(t Tier) bool { return keys&(1<<t.Rank()) != 0 }
		tr := ParseTrust(trust)
		d, err := Decide(DefaultStrategy(), DefaultCaps(), full, tr, DealContext{v, dt, Relationship(rel), Goal(goal)}, avail)
		if err != nil {
			if tr != TrustBlocked && !errors.Is(err, ErrInvalidContext) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		capTier, _ := DefaultCaps().Cap(tr)
		if d.Tier.Rank() > capTier.Rank() {
			t.Fatalf("tier %s above cap %s", d.Tier, capTier)
		}
		if d.Identity.SellerTier() != d.Tier || len(fieldsAbove(d.Identity, d.Tier)) > 0 {
			t.Fatalf("identity %+v does not match tier %s", d.Identity, d.Tier)
		}
		if d.Tier != TierPublic && !avail(d.Tier) {
			t.Fatalf("tier %s chosen without a credential", d.Tier)
		}
	})
}

package negotiator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/dealflow/dealflow/internal/adcpauth"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/sellerclient/adcp"
)

// ADCPQuoteID is the quote id of an AdCP package: AdCP 3.1 has no quote,
// the price is the pricing option's (fixed) or the buyer's bid (auction).
// Two sellers may offer the same product and option ids, so the id names
// the seller too (a short hash of its URL): a buyer approving by quote id
// names exactly one line.
func ADCPQuoteID(sellerURL string, p events.Package) string {
	h := sha256.Sum256([]byte(sellerURL))
	return "adcp:" + hex.EncodeToString(h[:4]) + ":" + p.ID
}

// negotiateADCP prices an AdCP package without calling the seller. A fixed
// price is taken as it is (fixed_price). For an auction option the strategy
// chooses the bid between the seller's floor and the buyer's max CPM:
//
//   - threshold bids the brief's target CPM;
//   - adaptive bids the seller's median clearing price (price guidance p50),
//     else the target;
//   - competitive bids p75 (to win more often), but never more than the
//     cheapest bookable price of another seller for the same format in the
//     campaign.
//
// Every bid is clamped to [floor, max]; a floor above the max walks away.
// AdCP 3.1 has no numeric counter-offer, so there are no rounds. The volume
// is what the spend one seller may get buys at the price, and the minimum
// order is min_spend_per_package at that price.
func (s *Service) negotiateADCP(ctx context.Context, pf events.PackageFound) events.QuoteReady {
	p := pf.Package
	res := events.QuoteReady{CampaignID: pf.CampaignID, Seller: pf.Seller, Package: p, PackagesTotal: pf.PackagesTotal, Tier: pf.Disclosure.Tier,
		DealType: "adcp", QuoteID: ADCPQuoteID(pf.Seller.URL, p)}
	if p.ProposalID != "" && p.ProductID == "" {
		return s.negotiateProposal(ctx, res, pf)
	}
	if p.ProductID == "" || p.PricingOptionID == "" {
		res.QuoteID, res.Outcome, res.Reason = "", events.OutcomeError, "AdCP package without product or pricing option"
		return res
	}
	if p.PricingModel == events.PricingFixed {
		res.ListCPMMicros, res.FinalCPMMicros, res.Outcome = p.ExactPriceMicros, p.ExactPriceMicros, events.OutcomeFixedPrice
		res.Reason = "fixed price: the AdCP pricing option's fixed_price"
		if p.ExactPriceMicros <= 0 {
			res.QuoteID, res.Outcome, res.Reason = "", events.OutcomeError, "fixed option without a price"
			return res
		}
		s.volume(&res, pf)
		s.propose(ctx, &res, pf)
		return res
	}
	name := pf.Negotiation.Strategy
	if name == "" {
		name = s.DefaultStrategy
	}
	if name == "" {
		name = DefaultStrategy
	}
	res.Strategy = name
	floor := p.FloorPriceMicros
	var g events.PriceGuidance
	if p.PriceGuidanceMicros != nil {
		g = *p.PriceGuidanceMicros
	}
	maxCPM := pf.Brief.KPIs.MaxCPMMicros
	if maxCPM <= 0 {
		maxCPM = max(g.P90, g.P75, g.P50, floor)
	}
	target := pf.Brief.KPIs.TargetCPMMicros
	if target <= 0 || target > maxCPM {
		target = maxCPM * 8 / 10
	}
	res.ListCPMMicros = max(g.P50, floor)
	if floor > maxCPM {
		res.QuoteID, res.Outcome = "", events.OutcomeWalkedAway
		res.Reason = fmt.Sprintf("auction floor %s is above the buyer's max CPM %s", floor.Cents(), maxCPM.Cents())
		return res
	}
	var bid events.Micros
	var why string
	switch name {
	case "threshold":
		bid, why = target, "bid the target CPM"
	case "competitive":
		bid, why = g.P75, "bid the p75 clearing price"
		if bid == 0 {
			bid, why = target, "bid the target CPM (no price guidance)"
		}
		if c := s.bestCompeting(ctx, pf); c != nil {
			if cm := priceMicros(*c); cm > 0 && cm < bid {
				bid, why = cm, fmt.Sprintf("bid the best competing price %s", cm.Cents())
			}
		}
	default:
		bid, why = g.P50, "bid the median clearing price (p50)"
		if bid == 0 {
			bid, why = target, "bid the target CPM (no price guidance)"
		}
	}
	switch {
	case bid < floor:
		bid, why = floor, why+", raised to the floor"
	case bid > maxCPM:
		bid, why = maxCPM, why+", capped at the max CPM"
	}
	// A bid is sent as a price in the currency's minor unit: rounded down
	// (never above what the strategy chose), but not below the floor.
	if r := adcp.MinorUnitFloor(bid, p.Currency); r != bid {
		bid = r
		if bid < floor {
			bid = adcp.MinorUnitFloor(floor+9_999, p.Currency) // the floor, rounded up to the cent
		}
		if bid > maxCPM {
			res.QuoteID, res.Outcome = "", events.OutcomeWalkedAway
			res.Reason = fmt.Sprintf("no whole-cent bid between the auction floor %s and the buyer's max CPM %s", floor.Cents(), maxCPM.Cents())
			return res
		}
	}
	if bid <= 0 {
		res.QuoteID, res.Outcome, res.Reason = "", events.OutcomeError, "auction option without a floor, guidance or buyer target to bid from"
		return res
	}
	res.Outcome, res.FinalCPMMicros = events.OutcomeAccepted, bid
	res.Reason = fmt.Sprintf("AdCP auction (no numeric counter-offer in 3.1): %s, %s (floor %s, max %s)", name, why, floor.Cents(), maxCPM.Cents())
	s.volume(&res, pf)
	s.propose(ctx, &res, pf)
	return res
}

// volume sets the impressions the spend one seller may get buys at the
// final CPM, and the minimum order (min_spend_per_package) in impressions.
func (s *Service) volume(res *events.QuoteReady, pf events.PackageFound) {
	cpm := res.FinalCPMMicros
	imps := pf.Brief.Impressions
	if imps <= 0 {
		spend := pf.Brief.BudgetMicros
		if c := pf.Brief.PerSellerCapMicros; c > 0 && c < spend {
			spend = c
		}
		imps = new(big.Int).Quo(new(big.Int).Mul(big.NewInt(int64(spend)), big.NewInt(1000)), big.NewInt(int64(cpm))).Int64()
	}
	// Availability is only the seller's forecast (0: none stated), never
	// the volume the spend buys.
	res.Impressions, res.AvailableImpressions = imps, pf.Package.AvailableImpressions
	if a := pf.Package.AvailableImpressions; a > 0 && a < imps {
		// The seller's availability forecast caps the volume.
		res.Impressions = a
		res.Reason += fmt.Sprintf("; volume capped by the seller's availability forecast (%d impressions)", a)
	} else if a > 0 {
		res.Reason += fmt.Sprintf("; the seller forecasts %d impressions available", a)
	}
	imps = res.Impressions
	if m := pf.Package.MinSpendMicros; m > 0 {
		// ceil(min spend x 1000 / cpm): the fewest impressions whose cost
		// reaches the seller's minimum budget.
		n := new(big.Int).Mul(big.NewInt(int64(m)), big.NewInt(1000))
		n.Add(n, big.NewInt(int64(cpm)-1))
		res.MinImpressions = n.Quo(n, big.NewInt(int64(cpm))).Int64()
	}
	if res.MinImpressions > imps {
		res.QuoteID, res.Outcome, res.FinalCPMMicros = "", events.OutcomeError, 0
		res.Reason = fmt.Sprintf("the seller's minimum spend %s exceeds what this campaign may spend with it", pf.Package.MinSpendMicros.Cents())
	}
}

// propose commits a priced AdCP package in a proposal where the seller
// offers proposals (capabilities: supports_proposals or the refine buying
// mode): get_products refine includes the product with an ask naming the
// pricing option, the CPM (the fixed price or the strategy's bid) and the
// budget the per-seller spend buys, then finalize. The QuoteReady then
// carries the proposal id (Package.ProposalID) and quote_expires_at = the
// proposal's expires_at: a committed price held until then, bought with
// create_media_buy {proposal_id, total_budget}. A seller without proposals,
// a public tier (no account) or no AdCP client keeps the package path; a
// refine or finalize failure falls back to it with the reason noted, except
// the seller's refusal (TERMS_REJECTED, POLICY_VIOLATION), which is a
// rejected outcome.
func (s *Service) propose(ctx context.Context, res *events.QuoteReady, pf events.PackageFound) {
	if s.ADCP == nil || res.QuoteID == "" || (res.Outcome != events.OutcomeAccepted && res.Outcome != events.OutcomeFixedPrice) {
		return
	}
	seller, err := adcpauth.Seller(s.Credentials, pf.Seller, pf.Disclosure.Tier)
	if err != nil || seller.Token == "" || seller.Account == nil {
		return
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	caps, err := s.ADCP.GetCapabilities(cctx, seller)
	if err != nil {
		res.Reason += "; proposals not tried (capabilities: " + err.Error() + ")"
		return
	}
	if !caps.SupportsProposals() {
		return
	}
	p := pf.Package
	spend := events.Micros(new(big.Int).Quo(new(big.Int).Mul(big.NewInt(res.Impressions), big.NewInt(int64(res.FinalCPMMicros))), big.NewInt(1000)).Int64())
	pr, prod, err := s.ADCP.CommitProduct(cctx, seller, p.ProductID, p.PricingOptionID, adcp.ProposalAsk(p.ProductID, p.PricingOptionID, res.FinalCPMMicros, spend, res.Impressions), time.Now())
	if err != nil {
		if ProposalRefused(err) {
			res.QuoteID, res.Outcome, res.FinalCPMMicros = "", events.OutcomeRejected, 0
			res.Reason = "the seller refused the proposal: " + err.Error()
			return
		}
		res.Reason += "; proposal not committed, buying the package as priced (" + err.Error() + ")"
		return
	}
	if !prod.Option(p.PricingOptionID).PriceHolds(res.FinalCPMMicros) {
		res.Reason += fmt.Sprintf("; proposal %s not used: the refined price no longer stands at %s, buying the package as priced", pr.ProposalID, res.FinalCPMMicros.Cents())
		return
	}
	exp := pr.ExpiresAt.UTC()
	res.Package.ProposalID, res.QuoteExpiresAt = pr.ProposalID, &exp
	res.Reason += fmt.Sprintf("; committed in proposal %s at %s, held until %s", pr.ProposalID, res.FinalCPMMicros.Cents(), exp.Format(time.RFC3339))
}

// negotiateProposal prices a proposal a seller answered the brief with
// (kitfetcher.ProposalPackages: a fixed price, the blended CPM of its
// allocations) and commits it: get_products refine {scope proposal,
// action finalize}. The finalized proposal must be committed (or carry no
// status: ready to buy) with an expires_at in the future when it carries
// one, and, where the answer carries the products again, still price at or
// below the quoted CPM. The QuoteReady then carries the proposal, held until
// quote_expires_at, for the booker's create_media_buy {proposal_id,
// total_budget}; the volume is what the spend one seller may get buys at
// the blended CPM, within the proposal's minimum budget and availability.
// A proposal cannot be bought otherwise: a failed finalize is an error
// outcome, the seller's refusal a rejected one.
func (s *Service) negotiateProposal(ctx context.Context, res events.QuoteReady, pf events.PackageFound) events.QuoteReady {
	p := pf.Package
	res.Outcome, res.ListCPMMicros, res.FinalCPMMicros = events.OutcomeFixedPrice, p.ExactPriceMicros, p.ExactPriceMicros
	res.Reason = "fixed price: the proposal's blended CPM (" + p.Name + ")"
	if p.ExactPriceMicros <= 0 {
		res.QuoteID, res.Outcome, res.Reason = "", events.OutcomeError, "proposal without a price"
		return res
	}
	s.volume(&res, pf)
	if res.QuoteID == "" {
		return res
	}
	fail := func(outcome, why string) events.QuoteReady {
		res.QuoteID, res.Outcome, res.FinalCPMMicros = "", outcome, 0
		res.Reason = why
		return res
	}
	if s.ADCP == nil {
		return fail(events.OutcomeError, "proposal "+p.ProposalID+" not finalized: this negotiator has no AdCP client")
	}
	seller, err := adcpauth.Seller(s.Credentials, pf.Seller, pf.Disclosure.Tier)
	if err != nil || seller.Token == "" || seller.Account == nil {
		return fail(events.OutcomeError, fmt.Sprintf("proposal %s not finalized: proposals are account-specific and tier %s has no token and account (%v)", p.ProposalID, pf.Disclosure.Tier, err))
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	pr, prods, err := s.ADCP.FinalizeProposalWithProducts(cctx, seller, p.ProposalID)
	switch {
	case err != nil && ProposalRefused(err):
		return fail(events.OutcomeRejected, "the seller refused to finalize proposal "+p.ProposalID+": "+err.Error())
	case err != nil:
		return fail(events.OutcomeError, "finalizing proposal "+p.ProposalID+": "+err.Error())
	case pr.Status != "" && pr.Status != "committed":
		return fail(events.OutcomeError, fmt.Sprintf("proposal %s is %s after finalize, not committed", p.ProposalID, pr.Status))
	case !pr.ExpiresAt.IsZero() && !pr.ExpiresAt.After(time.Now()):
		return fail(events.OutcomeError, fmt.Sprintf("finalized proposal %s expired at %s", p.ProposalID, pr.ExpiresAt.UTC().Format(time.RFC3339)))
	}
	if len(prods) > 0 {
		q, err := pr.Price(prods)
		switch {
		case err != nil:
			return fail(events.OutcomeError, "finalized proposal "+p.ProposalID+" no longer prices: "+err.Error())
		case q.CPMMicros > p.ExactPriceMicros:
			return fail(events.OutcomeRejected, fmt.Sprintf("finalized proposal %s costs %s CPM, above the %s quoted", p.ProposalID, q.CPMMicros.Cents(), p.ExactPriceMicros.Cents()))
		}
	}
	if !pr.ExpiresAt.IsZero() {
		exp := pr.ExpiresAt.UTC()
		res.QuoteExpiresAt = &exp
		res.Reason += fmt.Sprintf("; finalized: committed until %s", exp.Format(time.RFC3339))
	} else {
		res.Reason += "; finalized (no hold expiry given)"
	}
	return res
}

// ProposalRefused reports the seller's refusal of a proposal (as opposed
// to a failure to make one): TERMS_REJECTED or POLICY_VIOLATION.
func ProposalRefused(err error) bool {
	var e *adcp.Error
	return errors.As(err, &e) && (e.Code == "TERMS_REJECTED" || e.Code == "POLICY_VIOLATION")
}

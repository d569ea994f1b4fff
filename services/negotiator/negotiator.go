// Package negotiator is the third stage: for each PackageFound it asks the
// seller for a quote with exactly the identity decided for that seller, then,
// where the seller allows it (agency tier and up, negotiable package),
// negotiates the CPM with the campaign's strategy, and emits QuoteReady with
// the outcome, the rounds and the quote to book. Negotiations of a campaign
// run concurrently (the stage's worker pool, across replicas); every round
// is journaled in KV so a replica can die mid-negotiation without a round
// being lost or sent twice.
package negotiator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/negotiation"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/identity"
	"github.com/dealflow/dealflow/pkg/sellerclient"
	"github.com/dealflow/dealflow/pkg/sellerclient/adcp"
)

// Stage is the stage and durable consumer name.
const Stage = events.StageNegotiator

// Subjects are the stage's inputs.
func Subjects() []string { return []string{events.KindPackageFound.Filter()} }

// MinImpressions is the seller-agent's minimum order per quote.
const MinImpressions = 10000

// DefaultStrategy is used when the campaign names none.
const DefaultStrategy = "adaptive"

// Service holds the negotiator's dependencies.
type Service struct {
	Client *sellerclient.Client
	// ADCP, when set, commits AdCP prices in proposals where the seller
	// offers them (refine, finalize); nil keeps to pricing without a call.
	ADCP        *adcp.Client
	Credentials *identity.Credentials
	// Sessions is the negotiation journal (bus.BucketNegotiations).
	Sessions *bus.Store[Session]
	// Quotes holds each campaign's bookable prices for the competitive
	// strategy (bus.BucketQuotes); nil disables it.
	Quotes *bus.Store[Competing]
	// Timeout bounds one package's quote and negotiation (default 60s).
	Timeout time.Duration
	// DefaultStrategy overrides DefaultStrategy for campaigns that name none.
	DefaultStrategy string
	Log             zerolog.Logger
	// Metrics, when set, is told about every negotiation this replica
	// finishes (telemetry.Metrics implements it).
	Metrics Observer
}

// Observer records finished negotiations: the strategy ("" when none ran:
// fixed price, public tier, a failed quote), the QuoteReady outcome, the
// rounds and the time this replica spent on it.
type Observer interface {
	ObserveNegotiation(strategy, outcome string, rounds int, d time.Duration)
}

// Handle turns a PackageFound into a QuoteReady.
func (s *Service) Handle(ctx context.Context, in events.Event, p *events.PackageFound) ([]events.Event, error) {
	pf := *p
	j := journal{store: s.Sessions, key: SessionKey(pf.CampaignID, pf.Seller.URL, pf.Package.ID)}
	sess, err := j.load(ctx)
	if err != nil {
		return nil, err
	}
	if sess.Result == nil {
		started := time.Now()
		var res events.QuoteReady
		if pf.Seller.Protocol.IsADCP() {
			res = s.negotiateADCP(ctx, pf)
		} else {
			res, err = s.negotiate(ctx, j, pf)
		}
		if err != nil {
			return nil, err // transient: the journal lets the retry resume
		}
		if sess, err = j.update(ctx, func(s *Session) error {
			if s.Result == nil {
				s.Result = &res
			}
			return nil
		}); err != nil {
			return nil, err
		}
		if s.Metrics != nil {
			r := sess.Result
			s.Metrics.ObserveNegotiation(r.Strategy, r.Outcome, len(r.Rounds), time.Since(started))
		}
		s.recordCompeting(ctx, pf, *sess.Result)
	}
	q := *sess.Result
	q.Reason = events.ShortReason(q.Reason) // a seller's answer is never copied whole into the campaign
	e, err := events.Derive(in, events.KindQuoteReady, Stage, "quote", q)
	if err != nil {
		return nil, err
	}
	return []events.Event{e}, nil
}

// negotiate runs the quote and negotiation. An error return means "retry
// later" (shutdown, the KV unavailable); seller failures end as an error
// outcome in the result instead, so the campaign goes on.
func (s *Service) negotiate(ctx context.Context, j journal, pf events.PackageFound) (events.QuoteReady, error) {
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	tier := pf.Disclosure.Tier
	res := events.QuoteReady{CampaignID: pf.CampaignID, Seller: pf.Seller, Package: pf.Package, PackagesTotal: pf.PackagesTotal, Tier: tier,
		DealType: pf.Brief.EffectiveDealType(), MinImpressions: MinImpressions}
	fail := func(reason string) (events.QuoteReady, error) {
		res.Outcome, res.Reason, res.FinalCPMMicros = events.OutcomeError, reason, 0
		return res, nil
	}
	retryable := func(err error) bool { return retryable(ctx, err) }

	// Quote only the package's own product, with a deal type it allows.
	if pf.Package.ProductID == "" {
		return fail("no_product: the seller's package view names no product and it could not be resolved (package detail, catalog); not quoting a guessed product")
	}
	dt, ok := ChooseDealType(pf.Brief.EffectiveDealType(), pf.Package.ProductDealTypes)
	if !ok {
		return fail(fmt.Sprintf("deal_type_not_allowed: product %s allows deal types %v, none of which the buyer can quote (PG, PD, PA)",
			pf.Package.ProductID, pf.Package.ProductDealTypes))
	}
	res.DealType = dt

	auth, err := sellerclient.AuthFor(s.Credentials, pf.Seller.URL, tier)
	if err != nil {
		return fail(err.Error())
	}
	q, err := s.quote(cctx, j, pf, auth, dt)
	if err != nil {
		if retryable(err) {
			return res, err
		}
		return fail("quote failed: " + err.Error())
	}
	res.QuoteID, res.QuoteExpiresAt, res.Impressions, res.ListCPMMicros = q.ID, q.ExpiresAt, q.Impressions, q.micros()
	// Availability is what the seller states (the product's
	// available_impressions), never the volume the buyer asked the quote
	// for; a seller that says the quoted volume is not fully available
	// bounds it at that volume.
	res.AvailableImpressions = pf.Package.AvailableImpressions
	if !q.Available {
		res.Reason = "seller reports the quoted volume is not fully available"
		if res.AvailableImpressions == 0 || res.AvailableImpressions > q.Impressions {
			res.AvailableImpressions = q.Impressions
		}
	}
	if dt != pf.Brief.EffectiveDealType() {
		res.Reason = strings.TrimSpace(res.Reason + fmt.Sprintf(" quoted as %s: product %s allows only %v (brief prefers %s)",
			dt, pf.Package.ProductID, pf.Package.ProductDealTypes, pf.Brief.EffectiveDealType()))
	}
	if q.micros() <= 0 {
		return fail("quote has no price")
	}
	if identity.Tier(q.Tier) != tier && q.Tier != "" {
		res.Reason = strings.TrimSpace(res.Reason + fmt.Sprintf(" seller priced the quote at tier %s, not %s", q.Tier, tier))
	}

	strat, st, reason := s.plan(pf, q)
	if strat == nil {
		res.Outcome, res.FinalCPMMicros = events.OutcomeFixedPrice, q.micros()
		res.Reason = strings.TrimSpace(reason + " " + res.Reason)
		return res, nil
	}
	res.Strategy = strat.Name()
	if strat.Name() == "competitive" {
		st.BestCompeting = s.bestCompeting(cctx, pf)
	}
	cp := &counterparty{j: j, client: s.Client, url: pf.Seller.URL, auth: auth, quoteID: q.ID}
	out, rerr := negotiation.Run(cctx, strat, st, cp)
	for _, r := range out.Rounds {
		res.Rounds = append(res.Rounds, events.Round{N: r.N, BuyerPriceMicros: priceMicros(r.BuyerPrice), SellerPriceMicros: priceMicros(r.SellerPrice), SellerAction: r.SellerAction})
	}
	if rerr != nil && retryable(rerr) {
		return res, rerr
	}
	res.Reason = out.Reason
	switch out.Outcome {
	case negotiation.OutcomeAccepted:
		res.Outcome, res.FinalCPMMicros = events.OutcomeAccepted, priceMicros(out.FinalPrice)
	case negotiation.OutcomeWalkedAway:
		res.Outcome = events.OutcomeWalkedAway
	case negotiation.OutcomeRejected:
		res.Outcome = events.OutcomeRejected
	default:
		res.Outcome = events.OutcomeError
	}
	return res, nil
}

// priceMicros converts a strategy's float dollar price to the contract's
// micros. Seller prices came from micros and convert back exactly; the
// buyer's offers are whole cents.
func priceMicros(d float64) events.Micros { return sellerclient.PriceMicros(d) }

// micros is the quoted CPM in micros (snapshots journaled before the field
// existed fall back to the dollars).
func (q *QuoteSnapshot) micros() events.Micros {
	if q.FinalCPMMicros != 0 {
		return q.FinalCPMMicros
	}
	return priceMicros(q.FinalCPM)
}

// plan decides whether to negotiate and with what. A nil strategy means
// take the quoted price as it is, for the returned reason.
func (s *Service) plan(pf events.PackageFound, q *QuoteSnapshot) (negotiation.Strategy, negotiation.State, string) {
	tier := pf.Disclosure.Tier
	switch {
	case !tier.CanNegotiate():
		return nil, negotiation.State{}, fmt.Sprintf("fixed price: tier %s may not negotiate (agency and up only)", tier)
	case !pf.Package.Negotiable:
		return nil, negotiation.State{}, "fixed price: the package is not negotiable"
	}
	// The strategies compute in float dollars; every price they see comes
	// from micros, so it converts back exactly (priceMicros).
	maxCPM := pf.Brief.KPIs.MaxCPMMicros.Dollars()
	if maxCPM <= 0 || maxCPM > q.FinalCPM {
		maxCPM = q.FinalCPM // never pay more than the quote
	}
	target := pf.Brief.KPIs.TargetCPMMicros.Dollars()
	if target <= 0 || target > maxCPM {
		target = math.Floor(maxCPM*80) / 100
	}
	if q.FinalCPM <= target {
		return nil, negotiation.State{}, fmt.Sprintf("quoted %.2f is at or below the target %.2f: no need to negotiate", q.FinalCPM, target)
	}
	name := pf.Negotiation.Strategy
	if name == "" {
		name = s.DefaultStrategy
	}
	if name == "" {
		name = DefaultStrategy
	}
	rounds := pf.Negotiation.MaxRounds
	if rounds <= 0 {
		rounds = 6
	}
	step := pf.Negotiation.StepMicros.Dollars()
	if step <= 0 {
		step = math.Max(0.25, math.Round((maxCPM-target)/float64(rounds)*100)/100)
	}
	strat, err := negotiation.New(name, negotiation.Params{Target: target, Max: maxCPM, Step: step, MaxRounds: rounds})
	if err != nil {
		return nil, negotiation.State{}, "fixed price: " + err.Error()
	}
	st := negotiation.State{ListPrice: q.FinalCPM, Target: target, Max: maxCPM}
	st.Floor, st.FloorSource = sellerFloor(pf.Package)
	return strat, st, ""
}

// sellerFloor is the floor the seller negotiates against: the product's
// floor_cpm (spec §4: F = product floor_cpm). Only when the product's floor
// is unknown does the package's floor_price stand in, and the source says so.
func sellerFloor(p events.Package) (*float64, string) {
	switch {
	case p.ProductFloorCPMMicros > 0:
		f := p.ProductFloorCPMMicros.Dollars()
		return &f, "product " + p.ProductID + " floor_cpm"
	case p.FloorPriceMicros > 0:
		f := p.FloorPriceMicros.Dollars()
		return &f, "package floor_price (product floor unknown)"
	}
	return nil, ""
}

// DealTypeFallback is the order in which deal types are tried after the
// brief's preference when the product does not allow it: PD (fixed price,
// not guaranteed), then PG (the same fixed price, guaranteed volume), then
// PA (an auction, where the price is only a floor).
var DealTypeFallback = []string{"PD", "PG", "PA"}

// ChooseDealType picks the deal type to quote: the brief's preference if the
// product allows it (or its allowed types are unknown), else the first of
// DealTypeFallback the product allows. ok is false when the product allows
// none of PG, PD, PA.
func ChooseDealType(preferred string, allowed []string) (string, bool) {
	preferred = strings.ToUpper(strings.TrimSpace(preferred))
	if preferred == "" {
		preferred = "PD"
	}
	if len(allowed) == 0 {
		return preferred, true
	}
	for _, dt := range append([]string{preferred}, DealTypeFallback...) {
		for _, a := range allowed {
			if strings.EqualFold(strings.TrimSpace(a), dt) {
				return dt, true
			}
		}
	}
	return "", false
}

// retryable reports whether err means "retry later" rather than a seller
// failure: shutdown, or the state store unavailable or in conflict. A
// deadline that is not the store's (the package's own timeout) is not.
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil || errors.Is(err, bus.ErrStore) {
		return true
	}
	return bus.IsTransient(err) && !errors.Is(err, context.DeadlineExceeded)
}

// quote gets (or, after a crash, re-gets with the same idempotency key) the
// seller's quote for the package.
func (s *Service) quote(ctx context.Context, j journal, pf events.PackageFound, auth sellerclient.Auth, dealType string) (*QuoteSnapshot, error) {
	sess, err := j.load(ctx)
	if err != nil {
		return nil, err
	}
	if sess.Quote != nil {
		return sess.Quote, nil
	}
	if sess.QuoteReq == nil {
		req := quoteRequest(pf, dealType)
		req.IdempotencyKey = events.NewID()
		if sess, err = j.update(ctx, func(s *Session) error {
			if s.QuoteReq == nil {
				s.QuoteKey, s.QuoteReq = req.IdempotencyKey, &req
			}
			return nil
		}); err != nil {
			return nil, err
		}
	}
	q, err := s.Client.CreateQuote(ctx, pf.Seller.URL, auth, *sess.QuoteReq)
	if err != nil {
		return nil, err
	}
	snap := &QuoteSnapshot{ID: q.QuoteID, Tier: string(q.BuyerTier), Available: q.Availability == nil || q.Availability.InventoryAvailable}
	if q.Pricing.FinalCPM != nil {
		snap.FinalCPM = q.Pricing.FinalCPM.Dollars()
		snap.FinalCPMMicros = q.Pricing.FinalCPM.Micros()
	}
	if q.Terms.Impressions != nil {
		snap.Impressions = *q.Terms.Impressions
	}
	if !q.ExpiresAt.IsZero() {
		t := q.ExpiresAt
		snap.ExpiresAt = &t
	}
	if _, err := j.update(ctx, func(s *Session) error { s.Quote = snap; return nil }); err != nil {
		return nil, err
	}
	return snap, nil
}

// quoteRequest asks for the package's product, in the chosen deal type,
// for the volume the budget can buy at the package's price (or the brief's
// impressions), never below the seller's minimum.
func quoteRequest(pf events.PackageFound, dealType string) sellerclient.QuoteRequest {
	imps := pf.Brief.Impressions
	if imps <= 0 {
		price := pf.Package.ExactPriceMicros
		if price <= 0 {
			price = pf.Package.PriceHighMicros
		}
		spend := pf.Brief.BudgetMicros
		if c := pf.Brief.PerSellerCapMicros; c > 0 && c < spend {
			spend = c
		}
		if price > 0 {
			// floor(spend x 1000 / price): the volume the spend buys.
			imps = new(big.Int).Quo(new(big.Int).Mul(big.NewInt(int64(spend)), big.NewInt(1000)), big.NewInt(int64(price))).Int64()
		}
	}
	imps = max(imps, MinImpressions)
	if pf.Package.AvailableImpressions > 0 {
		imps = min(imps, pf.Package.AvailableImpressions)
	}
	return sellerclient.QuoteRequest{ProductID: pf.Package.ProductID, DealType: sellerclient.DealType(dealType), Impressions: &imps,
		FlightStart: pf.Brief.StartDate, FlightEnd: pf.Brief.EndDate, MediaType: mediaType(pf.Package.AdFormats)}
}

func mediaType(formats []string) sellerclient.MediaType {
	if containsFold(formats, "ctv") {
		return sellerclient.MediaCTV
	}
	return sellerclient.MediaDigital
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// Competing is a campaign's known price for one package, for the
// competitive strategy (the values of the quotes Store).
type Competing struct {
	Seller  string   `json:"seller"`
	Package string   `json:"package"`
	Formats []string `json:"formats"`
	CPM     float64  `json:"cpm"`
}

func competingKey(campaignID, sellerURL, packageID string) string {
	h := sha256.Sum256([]byte(sellerURL + "|" + packageID))
	return campaignID + "." + hex.EncodeToString(h[:12])
}

// recordCompeting publishes this package's bookable price to the campaign's
// shared state, where other sellers' competitive negotiations read it.
func (s *Service) recordCompeting(ctx context.Context, pf events.PackageFound, r events.QuoteReady) {
	if s.Quotes == nil || r.FinalCPMMicros <= 0 {
		return
	}
	key := competingKey(pf.CampaignID, pf.Seller.URL, pf.Package.ID)
	if _, err := s.Quotes.Update(ctx, key, func(c *Competing, exists bool) (bool, error) {
		if exists && c.CPM <= r.FinalCPMMicros.Dollars() {
			return false, nil
		}
		*c = Competing{Seller: pf.Seller.URL, Package: pf.Package.ID, Formats: pf.Package.AdFormats, CPM: r.FinalCPMMicros.Dollars()}
		return true, nil
	}); err != nil {
		log := bus.CampaignLogger(ctx, s.Log, pf.CampaignID)
		log.Warn().Err(err).Msg("recording competing quote failed")
	}
}

// bestCompeting is the lowest bookable CPM another seller offers in this
// campaign for inventory sharing a format with this package.
func (s *Service) bestCompeting(ctx context.Context, pf events.PackageFound) *float64 {
	if s.Quotes == nil {
		return nil
	}
	quotes, err := s.Quotes.Values(ctx, pf.CampaignID+".*")
	if err != nil {
		return nil
	}
	var best *float64
	for _, c := range quotes {
		if c.Seller == pf.Seller.URL || !sharesFormat(c.Formats, pf.Package.AdFormats) {
			continue
		}
		if best == nil || c.CPM < *best {
			v := c.CPM
			best = &v
		}
	}
	return best
}

func sharesFormat(a, b []string) bool {
	for _, x := range a {
		if containsFold(b, x) {
			return true
		}
	}
	return false
}

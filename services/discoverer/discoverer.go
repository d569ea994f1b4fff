// Package discoverer is the first stage: for each CampaignRequested it finds
// seller agents in the registries (and the configured known sellers) with
// the campaign's capabilities, checks each seller's trust, decides how much
// buyer identity the seller may see, and emits SellerFound for each usable
// seller, SellerSkipped (with the reason) for the others, and
// DiscoveryCompleted.
package discoverer

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/identity"
	"github.com/dealflow/dealflow/pkg/sellerclient"
)

// Stage is the stage and durable consumer name.
const Stage = events.StageDiscoverer

// Service holds the discoverer's dependencies.
type Service struct {
	Finder      *Finder
	Strategy    identity.Strategy
	Caps        identity.CapTable
	Credentials *identity.Credentials
	// DefaultBuyer is the operator's identity, used for campaigns that
	// carry none.
	DefaultBuyer identity.BuyerIdentity
}

// Subjects are the stage's inputs.
func Subjects() []string { return []string{events.KindCampaignRequested.Filter()} }

// Handle turns a CampaignRequested into the discovery events.
func (s *Service) Handle(ctx context.Context, in events.Event) ([]events.Event, error) {
	req, err := events.PayloadOf[events.CampaignRequested](in, events.KindCampaignRequested)
	if err != nil {
		return nil, err
	}
	if err := req.Validate(); err != nil {
		rej := events.CampaignRejected{CampaignID: in.Subject(), Reason: err.Error()}
		if fe, ok := events.AsFieldError(err); ok {
			rej.Field, rej.Reason = fe.Field, fe.Reason
		}
		out, derr := events.Derive(in, events.KindCampaignRejected, Stage, "rejected", rej)
		if derr != nil {
			return nil, derr
		}
		return []events.Event{out}, nil
	}
	if req.CampaignID != in.Subject() {
		return nil, fmt.Errorf("%w: payload campaign_id %q differs from subject %q", events.ErrInvalid, req.CampaignID, in.Subject())
	}

	res, err := s.Discover(ctx, req)
	if err != nil {
		return nil, err
	}
	var out []events.Event
	emit := func(k events.Kind, key string, data any) error {
		e, err := events.Derive(in, k, Stage, key, data)
		if err != nil {
			return err
		}
		out = append(out, e)
		return nil
	}
	for _, f := range res.Found {
		if err := emit(events.KindSellerFound, "found:"+f.Seller.URL, f); err != nil {
			return nil, err
		}
	}
	for _, sk := range res.Skipped {
		if err := emit(events.KindSellerSkipped, "skip:"+sk.SellerURL, sk); err != nil {
			return nil, err
		}
	}
	if err := emit(events.KindDiscoveryCompleted, "completed", res.Completed); err != nil {
		return nil, err
	}
	return out, nil
}

// Result is one campaign's discovery: the usable sellers with their
// disclosure, the skipped ones with reasons, and the summary.
type Result struct {
	Found     []events.SellerFound
	Skipped   []events.SellerSkipped
	Completed events.DiscoveryCompleted
}

// Discover finds and vets the campaign's sellers. It fails only on a bug
// (an invalid identity context); every seller and registry problem becomes a
// skip or a source status.
func (s *Service) Discover(ctx context.Context, req events.CampaignRequested) (Result, error) {
	if req.Buyer.IsZero() {
		req.Buyer = s.DefaultBuyer
	}
	found := s.Finder.Find(ctx, req.Brief.Channels)
	for _, u := range req.Sellers {
		found.Sellers = append(found.Sellers, events.Seller{URL: u, Trust: s.Finder.verify(ctx, u), Source: "campaign"})
	}
	var res Result
	done := events.DiscoveryCompleted{CampaignID: req.CampaignID, Sellers: []string{}, Sources: found.Sources}
	seen := map[string]bool{}
	for _, sel := range found.Sellers {
		url, err := sellerclient.NormalizeURL(sel.URL)
		if err != nil {
			done.Skipped++
			res.Skipped = append(res.Skipped, events.SellerSkipped{CampaignID: req.CampaignID, SellerURL: sel.URL, SellerName: sel.Name, Trust: sel.Trust,
				Stage: Stage, Code: "invalid_url", Reason: err.Error()})
			continue
		}
		if seen[url] {
			continue // duplicates after normalisation are contacted once
		}
		seen[url] = true
		sel.URL = url
		if sel.Trust == "" {
			sel.Trust = identity.TrustUnknown
		}
		code, reason := s.skipReason(sel, req)
		if code == "" {
			d, derr := identity.Decide(s.Strategy, s.Caps, req.Buyer, sel.Trust, dealContext(req), s.Credentials.Available(url))
			switch {
			case errors.Is(derr, identity.ErrBlocked):
				code, reason = "blocked", "seller is blocked"
			case derr != nil:
				return res, fmt.Errorf("discoverer: identity decision for %s: %w", url, derr)
			default:
				done.Sellers = append(done.Sellers, url)
				res.Found = append(res.Found, events.SellerFound{CampaignID: req.CampaignID, Seller: sel,
					Disclosure: events.Disclosure{Tier: d.Tier, Recommended: d.Recommended, Cap: d.Cap, Reason: d.Reason},
					Brief:      req.Brief, Negotiation: req.Negotiation, Buyer: d.Identity})
				continue
			}
		}
		done.Skipped++
		res.Skipped = append(res.Skipped, events.SellerSkipped{CampaignID: req.CampaignID, SellerURL: url, SellerName: sel.Name, Trust: sel.Trust,
			Stage: Stage, Code: code, Reason: reason})
	}
	res.Completed = done
	return res, nil
}

// skipReason applies decision 2: blocked sellers are never contacted, and
// unknown ones only when the campaign opts in.
func (s *Service) skipReason(sel events.Seller, req events.CampaignRequested) (code, reason string) {
	switch sel.Trust {
	case identity.TrustBlocked:
		return "blocked", "seller is blocked in the registry; it is never contacted"
	case identity.TrustUnknown:
		if !req.AllowUnknownSellers {
			return "untrusted", "seller's trust is unknown (not in any registry); set allow_unknown_sellers to shop it at public prices"
		}
	}
	return "", ""
}

// dealContext describes the campaign to the identity strategy: the deal
// value one seller could get (the budget, or the per-seller cap), the deal
// type and the goal.
func dealContext(req events.CampaignRequested) identity.DealContext {
	v := req.Brief.BudgetMicros.Dollars() // thresholds are float dollars
	if c := req.Brief.PerSellerCapMicros.Dollars(); c > 0 && c < v {
		v = c
	}
	goal := identity.GoalAwareness
	for _, o := range req.Brief.Objectives {
		o = strings.ToLower(o)
		if strings.Contains(o, "performance") || strings.Contains(o, "conversion") || strings.Contains(o, "acquisition") {
			goal = identity.GoalPerformance
		}
	}
	return identity.DealContext{DealValueUSD: v, DealType: req.Brief.EffectiveDealType(), Goal: goal}
}

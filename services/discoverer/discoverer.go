// Package discoverer is the first stage: for each CampaignRequested it finds
// seller agents in the registries (and the configured known sellers) with
// the campaign's capabilities, checks each seller's trust, decides how much
// buyer identity the seller may see, and emits SellerFound for each usable
// seller, SellerSkipped (with the reason) for the others, and
// DiscoveryCompleted.
package discoverer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/dealflow/dealflow/internal/adcpauth"
	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/identity"
	"github.com/dealflow/dealflow/pkg/sellerclient"
	"github.com/dealflow/dealflow/pkg/sellerclient/adcp"
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
	// ADCP asks AdCP sellers for their capabilities (request signing);
	// nil skips the check.
	ADCP *adcp.Client
	// Log receives one info line per discovery and a warning per skipped
	// seller, each with campaign_id (the zero logger discards them).
	Log zerolog.Logger
	// Resolve looks up seller host names when deciding on unknown sellers
	// (nil: DefaultResolver, the system's).
	Resolve Resolver
}

// Subjects are the stage's inputs.
func Subjects() []string { return []string{events.KindCampaignRequested.Filter()} }

// Handle turns a CampaignRequested into the discovery events.
func (s *Service) Handle(ctx context.Context, in events.Event, p *events.CampaignRequested) ([]events.Event, error) {
	req := *p
	// Judged at the request's time, so a redelivered or replayed request
	// gets the same answer as the first delivery.
	at := req.RequestedAt
	if at.IsZero() || at.After(time.Now()) {
		at = time.Now()
	}
	if err := req.ValidateAt(at); err != nil {
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

	// Each found seller's event is made as the seller is decided, from one
	// SellerFound refilled each time (Derive encodes it at once): a
	// campaign's SellerFounds are never all held at once (a large value
	// each: seller, disclosure, brief, buyer).
	var (
		out []events.Event
		sf  events.SellerFound
	)
	emit := func(k events.Kind, key string, data any) error {
		e, err := events.Derive(in, k, Stage, key, data)
		if err != nil {
			return err
		}
		out = append(out, e)
		return nil
	}
	res, err := s.discover(ctx, req, func(f events.SellerFound) error {
		sf = f
		return emit(events.KindSellerFound, "found:"+sf.Seller.URL, &sf)
	})
	if err != nil {
		return nil, err
	}
	if rej, ok := tooManySellers(res.Completed); ok {
		log := bus.CampaignLogger(ctx, s.Log, req.CampaignID)
		log.Warn().Int("sellers", len(res.Completed.Sellers)).Str("reason", rej.Reason).Msg("campaign rejected")
		out, err := events.Derive(in, events.KindCampaignRejected, Stage, "rejected", rej)
		if err != nil {
			return nil, err
		}
		return []events.Event{out}, nil
	}
	s.logResult(ctx, res)
	for i := range res.Skipped {
		if err := emit(events.KindSellerSkipped, "skip:"+res.Skipped[i].SellerURL, &res.Skipped[i]); err != nil {
			return nil, err
		}
	}
	if err := emit(events.KindDiscoveryCompleted, "completed", res.Completed); err != nil {
		return nil, err
	}
	return out, nil
}

// discoveryDataLimit is the most a DiscoveryCompleted's data may take: the
// event size limit less room for the CloudEvent headers.
const discoveryDataLimit = events.MaxEventBytes - 16<<10

// tooManySellers rejects a campaign whose found sellers cannot be listed in
// one DiscoveryCompleted (every URL: ≈ 4,000 typical ones fit), naming the
// count and what to do. Without it the discovery's outputs failed the size
// check on every retry, nothing was published, and the campaign waited for
// its shopping deadline to end empty.
func tooManySellers(done events.DiscoveryCompleted) (events.CampaignRejected, bool) {
	b, err := json.Marshal(done)
	if err == nil && len(b) <= discoveryDataLimit {
		return events.CampaignRejected{}, false
	}
	return events.CampaignRejected{CampaignID: done.CampaignID, Field: "brief.channels",
		Reason: fmt.Sprintf("%d sellers match the brief, more than one campaign can shop (their list must fit one %d-byte event): narrow the channels or name the sellers",
			len(done.Sellers), events.MaxEventBytes)}, true
}

// logResult tells the discovery's story: each skipped seller at WARN with
// its code, then one info line with the sellers to shop and the skips by
// reason.
func (s *Service) logResult(ctx context.Context, res Result) {
	log := bus.CampaignLogger(ctx, s.Log, res.Completed.CampaignID)
	byCode := zerolog.Dict()
	counts := map[string]int{}
	var codes []string
	for _, sk := range res.Skipped {
		log.Warn().Str("seller", sk.SellerURL).Str("seller_name", sk.SellerName).
			Str("trust", string(sk.Trust)).Str("code", sk.Code).Str("reason", sk.Reason).Msg("seller skipped")
		if counts[sk.Code] == 0 {
			codes = append(codes, sk.Code)
		}
		counts[sk.Code]++
	}
	for _, c := range codes {
		byCode.Int(c, counts[c])
	}
	var sources []string
	for _, src := range res.Completed.Sources {
		st := src.Source + ":ok"
		if !src.OK {
			st = src.Source + ":failed"
		}
		sources = append(sources, st)
	}
	log.Info().Int("sellers", len(res.Completed.Sellers)).
		Strs("to_shop", res.Completed.Sellers).Int("skipped", res.Completed.Skipped).Dict("skipped_by_code", byCode).
		Strs("sources", sources).Msg("discovery done")
}

// Result is one campaign's discovery: the usable sellers with their
// disclosure, the skipped ones with reasons, and the summary.
type Result struct {
	Found     []events.SellerFound
	Skipped   []events.SellerSkipped
	Completed events.DiscoveryCompleted
}

// Discover finds and vets the campaign's sellers. It fails only on a bug
// (an invalid identity context) or when ctx ends (shutdown); every seller
// and registry problem becomes a skip or a source status.
func (s *Service) Discover(ctx context.Context, req events.CampaignRequested) (Result, error) {
	var found []events.SellerFound
	res, err := s.discover(ctx, req, func(f events.SellerFound) error {
		found = append(found, f)
		return nil
	})
	res.Found = found
	return res, err
}

// discover is Discover handing each found seller to onFound as it is
// decided, in order, instead of listing them in the Result; an error from
// onFound ends the discovery with it.
func (s *Service) discover(ctx context.Context, req events.CampaignRequested, onFound func(events.SellerFound) error) (Result, error) {
	if req.Buyer.IsZero() {
		req.Buyer = s.DefaultBuyer
	}
	found := s.Finder.Find(ctx, req.Brief.Channels)
	for _, u := range req.Sellers {
		// verify canonicalises; a URL without a canonical form is unknown
		// here and skipped as invalid_url below.
		found.Sellers = append(found.Sellers, events.Seller{URL: u, Trust: s.Finder.verify(ctx, u), Source: "campaign"})
	}
	var res Result
	done := events.DiscoveryCompleted{CampaignID: req.CampaignID, Sellers: []string{}, Sources: found.Sources}
	// The candidates are found.Sellers filtered and canonicalised in
	// place: Find made that list for this call (a copy of the registries'
	// answers), and nothing reads it after this loop.
	cands := found.Sellers[:0]
	for _, sel := range found.Sellers {
		url, err := sellerclient.CanonicalURL(sel.URL)
		if err != nil {
			done.Skipped++
			res.Skipped = append(res.Skipped, events.SellerSkipped{CampaignID: req.CampaignID, SellerURL: sel.URL, SellerName: sel.Name, Trust: sel.Trust,
				Stage: Stage, Code: "invalid_url", Reason: events.ShortReason(err.Error())})
			continue
		}
		sel.URL = url
		sel.Protocol = sel.Protocol.Or()
		if !sel.Protocol.IsADCP() {
			sel.MCPEndpoint = ""
		}
		if sel.Trust == "" {
			sel.Trust = identity.TrustUnknown
		}
		cands = append(cands, sel)
	}
	// Every candidate is judged against every blocked seller the
	// registries and the operator know, not only those listed for this
	// campaign's channels: an unknown one by where it points, a registered
	// one by its agent id and declared name.
	all := append(cands[:len(cands):len(cands)], s.Finder.blocked(ctx, found)...)
	ids := s.identify(ctx, all, s.Finder.timeout())
	blocked := newBlockList(all, ids)
	seen := make(map[string]bool, len(cands))
	// considered are the sellers decided on so far (found or skipped for
	// another reason than a block): a later name of one of them is a
	// duplicate, never contacted again.
	var considered []int
	shopping := req.Brief.ForShopping() // shared by every SellerFound: encoded, never changed
	for i, sel := range cands {
		url := sel.URL
		if seen[url] {
			continue // duplicates after canonicalisation are contacted once
		}
		seen[url] = true
		code, reason := s.skipReason(ctx, sel, ids[i], req, blocked)
		if code == "blocked" {
			sel.Trust = identity.TrustBlocked
		}
		if code == "" {
			for _, j := range considered {
				if same, how := sameSeller(ids[j], ids[i]); same {
					code, reason = "duplicate", "the seller "+describe(cands[j])+" under another name ("+how+"); it is contacted once, under that name"
					break
				}
			}
		}
		if code != "blocked" && code != "duplicate" {
			considered = append(considered, i)
		}
		if code == "" && sel.Compliance == "failing" {
			code, reason = "non_compliant", "the registry reports the agent's compliance as failing; it is not shopped"
		}
		if code == "" {
			d, derr := identity.Decide(s.Strategy, s.Caps, req.Buyer, sel.Trust, dealContext(req), s.Credentials.Available(url))
			if derr == nil && sel.Protocol.IsADCP() {
				// After the decision: every call to the seller carries
				// the credential of the tier it will be shopped at.
				code, reason = s.adcpSkip(ctx, sel, d.Tier)
				if err := ctx.Err(); err != nil {
					return res, err // shutting down: retried, not a skip
				}
			}
			switch {
			case code != "":
			case errors.Is(derr, identity.ErrBlocked):
				code, reason = "blocked", "seller is blocked"
			case derr != nil:
				return res, fmt.Errorf("discoverer: identity decision for %s: %w", url, derr)
			default:
				done.Sellers = append(done.Sellers, url)
				if err := onFound(events.SellerFound{CampaignID: req.CampaignID, Seller: sel,
					Disclosure: events.Disclosure{Tier: d.Tier, Recommended: d.Recommended, Cap: d.Cap, Reason: d.Reason},
					Brief:      shopping, Negotiation: req.Negotiation, Buyer: d.Identity}); err != nil {
					return res, err
				}
				continue
			}
		}
		done.Skipped++
		res.Skipped = append(res.Skipped, events.SellerSkipped{CampaignID: req.CampaignID, SellerURL: url, SellerName: sel.Name, Protocol: sel.Protocol, Trust: sel.Trust,
			Stage: Stage, Code: code, Reason: events.ShortReason(reason)})
	}
	res.Completed = done
	return res, nil
}

// adcpSkip checks an AdCP seller before it is shopped, with the credential
// of the tier decided for it (none at public): get_adcp_capabilities
// (cached by the client), request signing, and, above public, the account
// the credentials name (list_accounts / sync_accounts, adcp.ResolveAccount)
// and the brand every buy needs. A refused credential is unauthorized,
// naming the MCP request refused, never unreachable; none of these checks
// is retried or waited for.
func (s *Service) adcpSkip(ctx context.Context, sel events.Seller, tier identity.Tier) (code, reason string) {
	if s.ADCP == nil {
		return "", ""
	}
	seller, err := adcpauth.Seller(s.Credentials, sel, tier)
	if err != nil {
		return "credentials", err.Error()
	}
	timeout := s.Finder.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	caps, err := s.ADCP.GetCapabilities(cctx, seller)
	if err != nil {
		return adcpCallSkip(err, "get_adcp_capabilities", tier, timeout)
	}
	if r := adcp.SkipReason(caps, adcp.OpGetProducts, adcp.OpCreateMediaBuy); r != "" {
		return "signing_required", r
	}
	if seller.Token == "" {
		return "", ""
	}
	if seller.Account == nil {
		return "account", fmt.Sprintf("the credentials for AdCP seller %s name no account: set %s in its entry (every AdCP buy names the account)",
			sel.URL, adcpauth.CredentialsField(""))
	}
	if seller.Brand == nil {
		return "account", fmt.Sprintf(`the credentials for AdCP seller %s name no brand: set "%s" (the advertiser's brand domain, sent as brand on every buy)`,
			sel.URL, identity.FieldBrand)
	}
	_, err = s.ADCP.ResolveAccount(cctx, seller, caps)
	var ae *adcp.Error
	switch {
	case errors.Is(err, adcp.ErrAccount) && errors.As(err, &ae):
		return "account", fmt.Sprintf("AdCP seller %s has no usable account for the credentials' %s: %s",
			sel.URL, adcpauth.CredentialsField(ae.Field), ae.Message)
	case err != nil:
		return adcpCallSkip(err, "the account check", tier, timeout)
	}
	return "", ""
}

// adcpCallSkip is the skip of a seller whose check call failed: a refused
// credential (401/403 or an AdCP auth error) is unauthorized, a deadline
// is timeout, anything else unreachable; the reason names the call.
func adcpCallSkip(err error, what string, tier identity.Tier, timeout time.Duration) (code, reason string) {
	switch {
	case errors.Is(err, sellerclient.ErrUnauthorized), errors.Is(err, sellerclient.ErrForbidden):
		cred := "the " + string(tier) + " bearer token"
		if tier == identity.TierPublic || tier == "" {
			cred = "no credential (public tier)"
		}
		return "unauthorized", what + ": the seller refused " + cred + ": " + err.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout", what + ": no answer within " + timeout.String()
	case errors.Is(err, sellerclient.ErrNotFound):
		return "unreachable", what + ": no MCP endpoint answered (dealflow speaks AdCP over MCP only, not A2A): " + err.Error()
	}
	return "unreachable", what + " failed: " + err.Error()
}

// describe names a blocked seller in a skip reason.
func describe(s events.Seller) string {
	if s.Name != "" {
		return fmt.Sprintf("%q (%s)", s.Name, s.URL)
	}
	return s.URL
}

// skipReason applies decision 2: blocked sellers are never contacted, and
// unknown ones only when the campaign opts in. A seller is blocked when its
// own trust says so, when another entry of this discovery with the same
// canonical URL, registry agent id or declared name is blocked, or, for a
// seller of unknown trust (not in the registry), when its origin (scheme,
// host and port; loopback and unspecified spellings as 127.0.0.1) is a
// blocked seller's origin, either one of this discovery or the registry's
// record for the origin itself, or when its host resolves, now, to the
// address and port of a blocked seller of this discovery. An unknown
// seller whose host does not resolve cannot be told apart from a blocked
// one and is not contacted.
func (s *Service) skipReason(ctx context.Context, sel events.Seller, id sellerID, req events.CampaignRequested, bl blockList) (code, reason string) {
	if sel.Trust == identity.TrustBlocked {
		return "blocked", "seller is blocked in the registry; it is never contacted"
	}
	if b, ok := bl.byURL[sel.URL]; ok {
		return "blocked", "seller is the blocked seller " + describe(b) + " under another spelling of its URL; it is never contacted"
	}
	if b, ok := bl.byAgent[sel.AgentID]; ok && sel.AgentID != "" {
		return "blocked", fmt.Sprintf("seller has the registry agent id %q of the blocked seller %s; it is never contacted", sel.AgentID, describe(b))
	}
	if b, ok := bl.byName[id.name]; ok && id.name != "" {
		return "blocked", fmt.Sprintf("seller declares the name %q of the blocked seller %s; it is never contacted", sel.Name, describe(b))
	}
	if sel.Trust == identity.TrustUnknown {
		if b, ok := bl.byOrigin[id.origin]; ok && id.origin != "" {
			return "blocked", "unknown seller at the origin " + id.origin + " of the blocked seller " + describe(b) + "; it is never contacted"
		}
		if o, err := sellerclient.Origin(sel.URL); err == nil && o != sel.URL && s.Finder.verify(ctx, o) == identity.TrustBlocked {
			return "blocked", "unknown seller at the origin " + o + ", which the registry blocks; it is never contacted"
		}
		for _, a := range id.addrs {
			if b, ok := bl.byAddr[a]; ok {
				return "blocked", "unknown seller whose host resolves to " + strings.Replace(a, "|", " port ", 1) + ", the address of the blocked seller " +
					describe(b) + "; it is never contacted"
			}
		}
		if !req.AllowUnknownSellers {
			return "untrusted", "seller's trust is unknown (not in any registry); set allow_unknown_sellers to shop it at public prices"
		}
		if !id.resolved {
			return "unreachable", "unknown seller whose host does not resolve: it cannot be told apart from a blocked seller, so it is not contacted"
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

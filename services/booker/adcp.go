package booker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dealflow/dealflow/internal/adcpauth"
	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/campaign"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/identity"
	"github.com/dealflow/dealflow/pkg/sellerclient"
	"github.com/dealflow/dealflow/pkg/sellerclient/adcp"
)

// ErrBuyPending means an AdCP buy is still awaiting the seller's approval
// (task submitted or working): the spend stays reserved and the line is
// polled again on the next attempt.
var ErrBuyPending = errors.New("booker: AdCP media buy awaits the seller's approval")

type finishFunc func(*events.DealBooked, *events.BookingFailed) (*events.DealBooked, *events.BookingFailed, error)

// bookADCP books one AdCP line exactly once: create_media_buy with one
// package (the product, the pricing option, the line's spend as budget, the
// bid for an auction) and the idempotency key derived from the ledger's
// book key, written before the call. A submitted answer keeps the spend
// reserved (ledger state submitted, with the task id) and is followed with
// the task-status tool until it completes (DealBooked) or is rejected
// (BookingFailed, the spend freed for the re-plan). An ambiguous outcome is
// retried later with the same key, which the seller replays, so the line
// is never bought twice.
func (b *Booker) bookADCP(ctx context.Context, led *bus.Store[Ledger], c *campaign.Campaign, q events.QuoteReady, l events.PlanLine,
	line *LedgerLine, finish finishFunc) (*events.DealBooked, *events.BookingFailed, error) {
	fail := func(code, reason, task string) *events.BookingFailed {
		return &events.BookingFailed{CampaignID: c.ID, SellerURL: l.SellerURL, Protocol: events.ProtocolADCP, PackageID: l.PackageID, QuoteID: l.QuoteID,
			Code: code, Reason: events.ShortReason(reason), SpendMicros: l.SpendMicros, TaskID: task}
	}
	if b.ADCP == nil {
		return finish(nil, fail("unsupported_protocol", "this booker has no AdCP client", ""))
	}
	seller, err := adcpauth.Seller(b.Credentials, q.Seller, q.Tier)
	if err != nil {
		return finish(nil, fail("credentials", err.Error(), ""))
	}
	if missing := missingForBuy(seller); len(missing) > 0 {
		return finish(nil, fail("credentials", "create_media_buy needs a bearer token, an account and a brand; the credentials for "+l.SellerURL+
			" at tier "+string(q.Tier)+" have no "+strings.Join(missing, ", no "), ""))
	}
	timeout := b.CallTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	if line.State == LineSubmitted && line.TaskID != "" {
		return b.followTask(ctx, led, c, q, l, line, seller, timeout, finish, fail)
	}
	if q.Package.ProposalID != "" && line.ProposalID == "" && q.QuoteExpiresAt != nil && !q.QuoteExpiresAt.After(b.clock()) {
		// The proposal's hold lapsed before booking: re-finalize at the
		// agreed price.
		if f, err := b.refinalize(ctx, led, c, q, l, line, seller, timeout); f != "" || err != nil {
			if err != nil {
				return nil, nil, err
			}
			return finish(nil, fail("quote_expired", f, ""))
		}
	}
	var res *adcp.MediaBuy
	for attempt := 0; ; attempt++ {
		req, err := mediaBuyRequest(c, q, l, line)
		if err != nil {
			return finish(nil, fail("rejected", err.Error(), ""))
		}
		req.Account, req.Brand = *seller.Account, *seller.Brand
		sentBefore, err := markSent(ctx, led, c.ID, line)
		if err != nil {
			return nil, nil, err
		}
		cctx, cancel := context.WithTimeout(ctx, timeout)
		res, err = b.ADCP.CreateMediaBuy(cctx, seller, req)
		cancel()
		if err == nil {
			break
		}
		if req.ProposalID != "" && errors.Is(err, sellerclient.ErrQuoteExpired) {
			if attempt > 0 || line.ProposalID != "" {
				return finish(nil, fail("quote_expired", "the proposal expired and the re-finalized one expired too: "+err.Error(), ""))
			}
			// PROPOSAL_EXPIRED: the agreement still holds, re-finalize at
			// the agreed price and buy the new proposal.
			f, rerr := b.refinalize(ctx, led, c, q, l, line, seller, timeout)
			if rerr != nil {
				return nil, nil, rerr
			}
			if f != "" {
				return finish(nil, fail("quote_expired", f, ""))
			}
			continue
		}
		if !definite(err, sentBefore) {
			// The request (or an earlier one) may have reached the seller:
			// the next attempt sends the same key and the seller replays
			// its answer.
			return nil, nil, unknown(err)
		}
		return finish(nil, fail(adcpFailCode(err), err.Error(), ""))
	}
	if res.Booked() {
		if res.Replayed {
			b.confirmBuy(ctx, seller, res, timeout)
		}
		return finish(adcpDealBooked(c, q, l, res), nil)
	}
	// submitted (or working): keep the spend reserved and follow the task.
	line.State, line.TaskID = LineSubmitted, res.TaskID
	if err := saveLine(ctx, led, c.ID, line); err != nil {
		return nil, nil, err
	}
	return b.followTask(ctx, led, c, q, l, line, seller, timeout, finish, fail)
}

// followTask polls a submitted buy's task with backoff for up to PollWait,
// then leaves it pending (ErrBuyPending: the runner redelivers with its own
// backoff and the next attempt polls again).
func (b *Booker) followTask(ctx context.Context, _ *bus.Store[Ledger], c *campaign.Campaign, q events.QuoteReady, l events.PlanLine, line *LedgerLine,
	seller adcp.Seller, timeout time.Duration, finish finishFunc, fail func(code, reason, task string) *events.BookingFailed) (*events.DealBooked, *events.BookingFailed, error) {
	wait := b.PollWait
	if wait <= 0 {
		wait = 10 * time.Second
	}
	deadline := time.Now().Add(wait)
	delay := 50 * time.Millisecond
	for {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		ts, err := b.ADCP.GetTaskStatus(cctx, seller, line.TaskID)
		cancel()
		switch {
		case err != nil && !unknownOutcome(err):
			return finish(nil, fail(adcpFailCode(err), "following task "+line.TaskID+": "+err.Error(), line.TaskID))
		case err != nil:
			// try again below
		case ts.Status == "completed" && ts.MediaBuy.Booked():
			return finish(adcpDealBooked(c, q, l, ts.MediaBuy), nil)
		case ts.Status == "completed":
			return nil, nil, unknown(fmt.Errorf("booker: task %s completed without the media buy; retrying", line.TaskID))
		case ts.Final():
			reason := "the seller " + ts.Status + " the submitted media buy (task " + line.TaskID + ")"
			if ts.Error != nil {
				reason += ": " + ts.Error.Error()
			}
			return finish(nil, fail("rejected", reason, line.TaskID))
		}
		if time.Now().Add(delay).After(deadline) {
			return nil, nil, fmt.Errorf("%w (task %s)", ErrBuyPending, line.TaskID)
		}
		select {
		case <-ctx.Done():
			return nil, nil, unknown(ctx.Err())
		case <-time.After(delay):
		}
		delay = min(delay*2, time.Second)
	}
}

// confirmBuy reads a replayed buy back with get_media_buys (reconciliation
// after an ambiguous outcome) and takes the seller's current revision and
// status; a failure keeps the replayed answer.
func (b *Booker) confirmBuy(ctx context.Context, seller adcp.Seller, res *adcp.MediaBuy, timeout time.Duration) {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	buys, err := b.ADCP.GetMediaBuys(cctx, seller, res.MediaBuyID)
	if err != nil {
		return
	}
	for _, m := range buys {
		if m.MediaBuyID == res.MediaBuyID {
			if m.Revision > 0 {
				res.Revision = m.Revision
			}
			if m.MediaBuyStatus != "" {
				res.MediaBuyStatus = m.MediaBuyStatus
			}
			if len(res.Packages) == 0 {
				res.Packages = m.Packages
			}
		}
	}
}

// missingForBuy names what the seller's credentials lack for
// create_media_buy, as the credentials file spells it.
func missingForBuy(s adcp.Seller) []string {
	var out []string
	if s.Token == "" {
		out = append(out, identity.FieldBearerToken)
	}
	if s.Account == nil {
		out = append(out, identity.FieldAccount)
	}
	if s.Brand == nil {
		out = append(out, identity.FieldBrand)
	}
	return out
}

// ADCPIdempotencyKey is the create_media_buy key of a ledger line: derived
// from the campaign, the line and the book key the ledger wrote before the
// first call, so every retry and restart sends the same key.
func ADCPIdempotencyKey(campaignID string, line *LedgerLine) string {
	return adcp.IdempotencyKey(campaignID, line.Key, line.BookKey)
}

// mediaBuyRequest is the line's create_media_buy: one package, budget = the
// line's spend, the bid for an auction option, the brief's flight; or, for
// a quote committed in a proposal, proposal_id + total_budget.
func mediaBuyRequest(c *campaign.Campaign, q events.QuoteReady, l events.PlanLine, line *LedgerLine) (adcp.MediaBuyRequest, error) {
	b := c.Request.Brief
	start, err := time.Parse(events.DateLayout, b.StartDate)
	if err != nil {
		return adcp.MediaBuyRequest{}, fmt.Errorf("flight start %q: %w", b.StartDate, err)
	}
	end, err := time.Parse(events.DateLayout, b.EndDate)
	if err != nil {
		return adcp.MediaBuyRequest{}, fmt.Errorf("flight end %q: %w", b.EndDate, err)
	}
	end = end.Add(24*time.Hour - time.Second) // the end date is included
	if id := proposalOf(q, line); id != "" {
		// A committed proposal (100% to the product at the pricing
		// option, the price held until expires_at): bought whole with
		// the line's spend as total_budget.
		return adcp.MediaBuyRequest{IdempotencyKey: ADCPIdempotencyKey(c.ID, line), Start: start, End: end,
			ProposalID: id, TotalBudgetMicros: l.SpendMicros, Currency: "USD", PONumber: c.ID, Context: buyContext(c, line)}, nil
	}
	pkg := adcp.PackageRequest{ProductID: q.Package.ProductID, PricingOptionID: q.Package.PricingOptionID, BudgetMicros: l.SpendMicros}
	if q.Package.PricingModel == events.PricingAuction {
		pkg.BidPriceMicros = l.CPMMicros
	}
	return adcp.MediaBuyRequest{IdempotencyKey: ADCPIdempotencyKey(c.ID, line), Start: start, End: end,
		Packages: []adcp.PackageRequest{pkg}, PONumber: c.ID, Context: buyContext(c, line)}, nil
}

// contextLine is the key of the buyer's reference in a media buy's context.
const contextLine = "dealflow_line"

// buyContext is the context sent with a line's create_media_buy: sellers
// echo it on get_media_buys, where the reconciler finds the buy when the
// answer to the create was lost.
func buyContext(c *campaign.Campaign, line *LedgerLine) map[string]string {
	return map[string]string{contextLine: c.ID + "/" + line.Key}
}

// adcpDealBooked is the DealBooked of an AdCP line: protocol adcp, the
// media_buy_id, the seller's package_id and the buy's revision, no deal id.
// The spend is the package budget the seller booked.
func adcpDealBooked(c *campaign.Campaign, q events.QuoteReady, l events.PlanLine, m *adcp.MediaBuy) *events.DealBooked {
	d := &events.DealBooked{CampaignID: c.ID, SellerURL: l.SellerURL, SellerName: l.SellerName, Protocol: events.ProtocolADCP,
		PackageID: l.PackageID, ProductID: q.Package.ProductID, QuoteID: l.QuoteID, DealType: l.DealType,
		MediaBuyID: m.MediaBuyID, MCPEndpoint: q.Seller.MCPEndpoint, Revision: m.Revision, MediaBuyStatus: m.MediaBuyStatus, PricingOptionID: q.Package.PricingOptionID,
		CPMMicros: l.CPMMicros, AgreedCPMMicros: l.CPMMicros, Impressions: l.Impressions, SpendMicros: l.SpendMicros,
		Currency: "USD", FlightStart: c.Request.Brief.StartDate, FlightEnd: c.Request.Brief.EndDate, Tier: q.Tier, BookedAt: time.Now().UTC()}
	if d.DealType == "" {
		d.DealType = "adcp"
	}
	sent := adcpSentSpend(l)
	d.SpendMicros = sent
	for _, p := range m.Packages {
		if p.ProductID == q.Package.ProductID || len(m.Packages) == 1 {
			d.SellerPackageID = p.PackageID
			if p.BudgetMicros > 0 {
				d.SpendMicros = p.BudgetMicros
			}
			if p.BidPriceMicros > 0 {
				d.CPMMicros = p.BidPriceMicros
			}
			break
		}
	}
	if booked, ids := proposalBooked(q, m); booked > 0 {
		d.SpendMicros, d.SellerPackageID = booked, ids
	}
	d.CPMMismatch = d.CPMMicros != l.CPMMicros || d.SpendMicros != sent
	return d
}

// adcpSentSpend is the budget create_media_buy sent for a line: its spend
// rounded down to the currency's minor unit (adcp.MinorUnitFloor, as the
// client encodes it), never above the agreed spend.
func adcpSentSpend(l events.PlanLine) events.Micros {
	return adcp.MinorUnitFloor(l.SpendMicros, "USD")
}

// proposalBooked is what the seller booked for a proposal bought whole
// (several packages, one per allocation): the sum of their budgets, and
// their package ids joined with commas (the line is all of them); 0 when
// the line is not a proposal of several packages.
func proposalBooked(q events.QuoteReady, m *adcp.MediaBuy) (events.Micros, string) {
	if q.Package.ProposalID == "" || q.Package.ProductID != "" || len(m.Packages) < 2 {
		return 0, ""
	}
	var sum events.Micros
	ids := make([]string, 0, len(m.Packages))
	for _, p := range m.Packages {
		sum += p.BudgetMicros
		ids = append(ids, p.PackageID)
	}
	return sum, strings.Join(ids, ",")
}

func adcpFailCode(err error) string {
	var e *adcp.Error
	if errors.As(err, &e) {
		switch e.Code {
		case "BUDGET_TOO_LOW":
			return "budget_too_low"
		case "TERMS_REJECTED", "POLICY_VIOLATION":
			return "rejected"
		case "PRODUCT_NOT_FOUND":
			return "not_found"
		}
	}
	if errors.Is(err, sellerclient.ErrUnsupported) {
		return "unsupported"
	}
	return failCode(err)
}

// proposalOf is the proposal a line buys: the one re-finalized after the
// quote's expired, else the quote's ("" = buy the package).
func proposalOf(q events.QuoteReady, line *LedgerLine) string {
	if line.ProposalID != "" {
		return line.ProposalID
	}
	return q.Package.ProposalID
}

// refinalize commits the line's product again (refine + finalize) at the
// agreed CPM after its proposal expired, like an expired IAB quote is
// re-quoted at the agreed CPM. The new proposal and a fresh book key are
// written to the ledger before the buy. A non-empty reason means it could
// not (the line fails quote_expired and its budget goes to the re-plan);
// an error means the outcome is unknown (retry later).
func (b *Booker) refinalize(ctx context.Context, led *bus.Store[Ledger], c *campaign.Campaign, q events.QuoteReady, l events.PlanLine,
	line *LedgerLine, seller adcp.Seller, timeout time.Duration) (string, error) {
	p := q.Package
	if p.ProductID == "" {
		return b.refinalizeProposal(ctx, led, c, q, l, line, seller, timeout)
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	pr, prod, err := b.ADCP.CommitProduct(cctx, seller, p.ProductID, p.PricingOptionID, adcp.ProposalAsk(p.ProductID, p.PricingOptionID, l.CPMMicros, l.SpendMicros, l.Impressions), b.clock())
	cancel()
	switch {
	case err != nil && unknownOutcome(err):
		return "", unknown(fmt.Errorf("booker: re-finalizing proposal %s: %w", p.ProposalID, err))
	case err != nil:
		return "proposal " + p.ProposalID + " expired and re-finalizing it failed: " + err.Error(), nil
	case !prod.Option(p.PricingOptionID).PriceHolds(l.CPMMicros):
		return fmt.Sprintf("proposal %s expired and the seller's price no longer stands at the agreed %s", p.ProposalID, l.CPMMicros.Cents()), nil
	}
	line.ProposalID, line.BookKey = pr.ProposalID, events.NewID()
	if err := saveLine(ctx, led, c.ID, line); err != nil {
		return "", err
	}
	return "", nil
}

// refinalizeProposal commits again a proposal the seller answered the brief
// with (no product of its own) after its hold lapsed: refine finalize of the
// same proposal, which must come back committed, held in the future and not
// dearer than the agreed CPM. Results as refinalize.
func (b *Booker) refinalizeProposal(ctx context.Context, led *bus.Store[Ledger], c *campaign.Campaign, q events.QuoteReady, l events.PlanLine,
	line *LedgerLine, seller adcp.Seller, timeout time.Duration) (string, error) {
	id := q.Package.ProposalID
	cctx, cancel := context.WithTimeout(ctx, timeout)
	pr, prods, err := b.ADCP.FinalizeProposalWithProducts(cctx, seller, id)
	cancel()
	switch {
	case err != nil && unknownOutcome(err):
		return "", unknown(fmt.Errorf("booker: re-finalizing proposal %s: %w", id, err))
	case err != nil:
		return "proposal " + id + " expired and re-finalizing it failed: " + err.Error(), nil
	case pr.Status != "" && pr.Status != "committed":
		return fmt.Sprintf("proposal %s expired and is %s after finalize", id, pr.Status), nil
	case !pr.ExpiresAt.IsZero() && !pr.ExpiresAt.After(b.clock()):
		return fmt.Sprintf("proposal %s expired and its new hold ends in the past (%s)", id, pr.ExpiresAt.UTC().Format(time.RFC3339)), nil
	}
	if len(prods) > 0 {
		if pq, err := pr.Price(prods); err != nil || pq.CPMMicros > l.CPMMicros {
			return fmt.Sprintf("proposal %s expired and no longer prices at the agreed %s (%v)", id, l.CPMMicros.Cents(), err), nil
		}
	}
	line.ProposalID, line.BookKey = pr.ProposalID, events.NewID()
	if err := saveLine(ctx, led, c.ID, line); err != nil {
		return "", err
	}
	return "", nil
}

func (b *Booker) clock() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}

package booker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dealflow/dealflow/internal/adcpauth"
	"github.com/dealflow/dealflow/internal/campaign"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/sellerclient"
	"github.com/dealflow/dealflow/pkg/sellerclient/adcp"
)

// apply makes a begun change at the line's seller. It returns the change
// applied (with its result) or failed (the seller refused it, definitely),
// or an error while the outcome is unknown (the caller retries with the
// same keys).
func (s *Service) apply(ctx context.Context, r events.LineChangeRequested, line *LedgerLine, ch *LineChange) (*LineChange, error) {
	c := *ch
	fail := c.fail
	b := s.Booker
	if b == nil {
		return fail(events.ChangeUnsupported, "this booker has no seller clients")
	}
	d := *line.Deal
	if err := s.markChangeSent(ctx, d.CampaignID, line.Key, &c); err != nil {
		return nil, err
	}
	if d.Protocol.IsADCP() {
		return s.applyADCP(ctx, line, &c, fail)
	}
	auth, err := sellerclient.AuthFor(b.Credentials, d.SellerURL, d.Tier)
	if err != nil {
		return fail("credentials", err.Error())
	}
	switch {
	case c.Action == events.LineCancel:
		if err := s.cancelIAB(ctx, line, &c, auth); err != nil {
			return s.sellerFailure(&c, err, fail)
		}
		s.cancelled(ctx, line, &c)
		return &c, nil
	case c.Action == events.LineSetBudget && c.Budget < c.BudgetBefore:
		return s.decreaseIAB(ctx, r, line, &c, auth, fail)
	case c.Action == events.LineSetBudget:
		return s.increaseIAB(ctx, r, line, &c, auth, fail)
	}
	return fail(events.ChangeUnsupported, "the IAB Deals API has no "+string(c.Action))
}

// cancelIAB cancels every deal of an IAB line with one bulk request (safe
// to repeat: cancelling a cancelled deal succeeds).
func (s *Service) cancelIAB(ctx context.Context, line *LedgerLine, c *LineChange, auth sellerclient.Auth) error {
	b := s.Booker
	var ops []sellerclient.BulkDealOperation
	for _, x := range line.Deals() {
		ops = append(ops, sellerclient.BulkDealOperation{Action: sellerclient.BulkCancel, DealID: x.DealID, Notes: events.ShortReason("dealflow: " + c.Reason)})
	}
	cctx, cancel := context.WithTimeout(ctx, b.callTimeout())
	defer cancel()
	_, err := b.Client.BulkDeals(cctx, line.Deal.SellerURL, auth, sellerclient.BulkDealRequest{Operations: ops})
	return err
}

// decreaseIAB lowers an IAB line's budget to c.Budget. The Deals API
// cannot lower a deal, so the line's deals are cancelled (bulk cancel),
// the spend they delivered is read as for a cancel, and the remainder
// (c.Budget less that spend) is booked as an additional deal on the same
// package, the way an increase books one (increaseIAB's quote and booking,
// keys derived from the change's). The line stays live on that deal; its
// budget becomes its delivered spend plus what the deal booked, never
// above c.Budget. The ledger keeps the line's old budget committed until
// finish, so committed spend only falls. What the cancel found is stored
// with the change before the remainder is quoted: a retry (a redelivery, a
// booker killed mid-way) cancels again harmlessly and asks the seller for
// the same quote and booking under the same keys, which it replays.
//
// The line stays cancelled, its budget its delivered spend (the reason in
// LineChanged), when the delivered spend cannot be read, when the
// remainder buys less than the seller's minimum order, or when the seller
// definitely refuses the remainder's quote or booking.
func (s *Service) decreaseIAB(ctx context.Context, r events.LineChangeRequested, line *LedgerLine, c *LineChange, auth sellerclient.Auth,
	fail func(code, reason string) (*LineChange, error)) (*LineChange, error) {
	if !c.DealsCancelled {
		if err := s.cancelIAB(ctx, line, c, auth); err != nil {
			return s.sellerFailure(c, err, fail)
		}
		if !s.cancelled(ctx, line, c) {
			// The delivered spend is unknown: nothing to book the
			// remainder against. Cancelled, as a cancel would be.
			c.Outcome = "the line's deals were cancelled to lower its budget, but their delivered spend could not be read: the line stays cancelled and its booked budget stays committed"
			return c, nil
		}
		c.DealsCancelled, c.Delivered = true, c.result.delivered
		if err := s.saveChange(ctx, line, c); err != nil {
			return nil, err
		}
	}
	c.State = ChangeApplied
	stay := func(why string) (*LineChange, error) {
		c.result = changeResult{state: events.LineStateCancelled, budget: min(c.Delivered, c.BudgetBefore), delivered: c.Delivered}
		c.Outcome = events.ShortReason("the line's deals were cancelled to lower its budget to " + c.Budget.String() + " and " + why + ": the line stays cancelled at its delivered spend")
		return c, nil
	}
	if c.Delivered >= c.Budget {
		return stay(fmt.Sprintf("it has already delivered %s", c.Delivered))
	}
	added, code, why, err := s.bookMoreIAB(ctx, r, line.Key, *line.Deal, c, auth, c.Budget-c.Delivered, "budget decrease (remainder after cancelling)", "")
	switch {
	case err != nil:
		return nil, err
	case code != "":
		return stay(why)
	}
	c.Added = added
	c.result = changeResult{state: events.LineStateLive, budget: c.Delivered + added.SpendMicros, delivered: c.Delivered}
	return c, nil
}

// sellerFailure is a failed seller call: an error to retry while its
// outcome is unknown, else the change failed with the seller's words.
func (s *Service) sellerFailure(c *LineChange, err error, fail func(code, reason string) (*LineChange, error)) (*LineChange, error) {
	if !definite(err, c.sentBefore) && !errors.Is(err, sellerclient.ErrOperationFailed) {
		return nil, unknown(err)
	}
	code := events.ChangeSellerRefused
	switch {
	case sellerclient.IsNotSent(err) && !errors.Is(err, sellerclient.ErrValidation):
		code = events.ChangeSellerUnreachable
	case errors.Is(err, sellerclient.ErrUnsupported):
		// The seller offers no such change (AdCP UNSUPPORTED_FEATURE).
		code = events.ChangeUnsupported
	}
	return fail(code, err.Error())
}

// cancelled sets the result of a line cancelled at its seller: its
// committed spend drops to the spend it delivered (read now that delivery
// has stopped, at most its budget), or stays its booked spend when that
// cannot be read. It reports whether it was read.
func (s *Service) cancelled(ctx context.Context, line *LedgerLine, c *LineChange) bool {
	c.State = ChangeApplied
	c.result = changeResult{state: events.LineStateCancelled, budget: c.BudgetBefore}
	read := s.Booker.Delivered
	if read == nil {
		return false
	}
	var sum events.Micros
	for _, d := range line.Deals() {
		cctx, cancel := context.WithTimeout(ctx, s.Booker.callTimeout())
		spent, err := read(cctx, d)
		cancel()
		if err != nil {
			s.Log.Warn().Err(err).Str("line_key", line.Key).Msg("cancelled line's delivery unreadable: its booked spend stays committed")
			return false
		}
		sum += spent
	}
	c.result.delivered = sum
	c.result.budget = min(sum, c.BudgetBefore)
	return true
}

// applyADCP makes the change with update_media_buy on the line's package,
// following a submitted update's task like a submitted buy.
func (s *Service) applyADCP(ctx context.Context, line *LedgerLine, c *LineChange, fail func(code, reason string) (*LineChange, error)) (*LineChange, error) {
	b, d := s.Booker, *line.Deal
	if b.ADCP == nil {
		return fail(events.ChangeUnsupported, "this booker has no AdCP client")
	}
	seller, err := adcpauth.Seller(b.Credentials, events.Seller{URL: d.SellerURL, Protocol: events.ProtocolADCP, MCPEndpoint: d.MCPEndpoint}, d.Tier)
	if err != nil {
		return fail("credentials", err.Error())
	}
	if seller.Token == "" || seller.Account == nil {
		return fail("credentials", "update_media_buy needs a bearer token and an account; the credentials for "+d.SellerURL+" have none")
	}
	var res *adcp.MediaBuy
	if c.TaskID != "" {
		res, err = s.followUpdate(ctx, seller, line, c)
	} else {
		pu := adcp.PackageUpdate{PackageID: d.SellerPackageID}
		switch c.Action {
		case events.LinePause, events.LineResume:
			paused := c.Action == events.LinePause
			pu.Paused = &paused
		case events.LineCancel:
			pu.Canceled, pu.CancellationReason = true, events.ShortReason(c.Reason)
		case events.LineSetBudget:
			budget := c.Budget
			pu.BudgetMicros = &budget
		}
		u := adcp.MediaBuyUpdate{IdempotencyKey: c.Key, Account: *seller.Account, MediaBuyID: d.MediaBuyID, Packages: []adcp.PackageUpdate{pu}, Currency: d.Currency}
		cctx, cancel := context.WithTimeout(ctx, b.callTimeout())
		res, err = b.ADCP.UpdateMediaBuy(cctx, seller, u)
		cancel()
		if err == nil && !res.Booked() {
			// submitted: keep the task, then follow it.
			c.TaskID = res.TaskID
			if err := s.saveChange(ctx, line, c); err != nil {
				return nil, err
			}
			res, err = s.followUpdate(ctx, seller, line, c)
		}
	}
	if err != nil {
		var ae *adcp.Error
		if errors.As(err, &ae) && ae.Code == "TASK_FAILED" {
			return fail(events.ChangeSellerRefused, err.Error())
		}
		return s.sellerFailure(c, err, fail)
	}
	c.State = ChangeApplied
	c.result = changeResult{budget: c.BudgetBefore, revision: res.Revision}
	switch c.Action {
	case events.LinePause:
		c.result.state = events.LineStatePaused
	case events.LineResume:
		c.result.state = events.LineStateLive
	case events.LineSetBudget:
		c.result.budget = c.Budget
		for _, p := range res.Packages {
			// The seller's own figure, never above what was reserved.
			if p.PackageID == d.SellerPackageID && p.BudgetMicros > 0 && p.BudgetMicros <= c.Budget {
				c.result.budget = p.BudgetMicros
			}
		}
	case events.LineCancel:
		s.cancelled(ctx, line, c)
		c.result.revision = res.Revision
	}
	return c, nil
}

// followUpdate polls a submitted update's task for up to PollWait; still
// pending, it is an error the redelivery retries (polling again).
func (s *Service) followUpdate(ctx context.Context, seller adcp.Seller, line *LedgerLine, c *LineChange) (*adcp.MediaBuy, error) {
	b := s.Booker
	wait := b.PollWait
	if wait <= 0 {
		wait = 10 * time.Second
	}
	deadline := time.Now().Add(wait)
	delay := 50 * time.Millisecond
	for {
		cctx, cancel := context.WithTimeout(ctx, b.callTimeout())
		ts, err := b.ADCP.GetTaskStatus(cctx, seller, c.TaskID)
		cancel()
		switch {
		case err != nil && !unknownOutcome(err):
			return nil, err
		case err != nil:
		case ts.Status == "completed" && ts.MediaBuy.Booked():
			return ts.MediaBuy, nil
		case ts.Final() && ts.Status != "completed":
			reason := "the seller " + ts.Status + " the submitted update (task " + c.TaskID + ")"
			if ts.Error != nil {
				reason += ": " + ts.Error.Error()
			}
			return nil, &adcp.Error{Code: "TASK_FAILED", Message: reason}
		}
		if time.Now().Add(delay).After(deadline) {
			return nil, unknown(fmt.Errorf("%w (update task %s of line %s)", ErrBuyPending, c.TaskID, line.Key))
		}
		select {
		case <-ctx.Done():
			return nil, unknown(ctx.Err())
		case <-time.After(delay):
		}
		delay = min(delay*2, time.Second)
	}
}

// markChangeSent writes c.Sent before the change's first seller call, and
// keeps in c whether an earlier delivery's calls may already have reached
// the seller: from then on a call that provably never left does not prove
// the change was not made (see LedgerLine.Sent).
func (s *Service) markChangeSent(ctx context.Context, campaignID, lineKey string, c *LineChange) error {
	if c.Sent {
		c.sentBefore = true
		return nil
	}
	c.Sent = true
	_, err := s.Ledger.Update(ctx, campaignID, func(led *Ledger, exists bool) (bool, error) {
		if !exists || led.Lines[lineKey] == nil || led.Lines[lineKey].Changes[c.ChangeID] == nil {
			return false, fmt.Errorf("booker: ledger line %s vanished", lineKey)
		}
		led.Lines[lineKey].Changes[c.ChangeID].Sent = true
		return true, nil
	})
	return err
}

// saveChange writes a change still being applied (its task id).
func (s *Service) saveChange(ctx context.Context, line *LedgerLine, c *LineChange) error {
	_, err := s.Ledger.Update(ctx, line.Deal.CampaignID, func(led *Ledger, exists bool) (bool, error) {
		if !exists || led.Lines[line.Key] == nil || led.Lines[line.Key].Changes[c.ChangeID] == nil {
			return false, fmt.Errorf("booker: ledger line %s vanished", line.Key)
		}
		x := *c
		x.State = ChangeSubmitted
		led.Lines[line.Key].Changes[c.ChangeID] = &x
		return true, nil
	})
	return err
}

// increaseIAB raises an IAB line's budget: the IAB Deals API cannot change
// a booked deal, so the difference is booked as an additional deal on the
// same package (bookMoreIAB), never above what begin reserved for it.
func (s *Service) increaseIAB(ctx context.Context, r events.LineChangeRequested, line *LedgerLine, c *LineChange, auth sellerclient.Auth,
	fail func(code, reason string) (*LineChange, error)) (*LineChange, error) {
	added, code, why, err := s.bookMoreIAB(ctx, r, line.Key, *line.Deal, c, auth, c.Budget-c.BudgetBefore, "budget increase", "")
	switch {
	case err != nil:
		return nil, err
	case code != "":
		return fail(code, why)
	}
	c.State, c.Added = ChangeApplied, added
	c.result = changeResult{budget: c.BudgetBefore + added.SpendMicros}
	return c, nil
}

// bookMoreIAB books up to amount more of an IAB line (lineKey, booked as
// d) as an additional deal: a fresh quote on the same product at the
// line's agreed CPM for the impressions amount buys, then the booking (its
// own DealBooked, line_key lineKey). An add passes the remaining quote it
// books as d (seller, package, product, quote and CPM), the new line's
// key, and start: the day its flight starts ("" is the brief's start; an
// add's is today when the flight has begun). The quote and the booking carry keys derived from the
// change's, so a retry replays them. It returns the deal booked; or a
// failure code and reason when the seller definitely will not book it
// (an amount below the seller's minimum order is not asked for); or an
// error while the outcome is unknown (the caller retries). A deal the
// seller books above amount is cancelled again at once.
func (s *Service) bookMoreIAB(ctx context.Context, r events.LineChangeRequested, lineKey string, d events.DealBooked, c *LineChange, auth sellerclient.Auth,
	amount events.Micros, what, start string) (*events.DealBooked, string, string, error) {
	b := s.Booker
	var code, why string
	fail := func(cd, reason string) (*LineChange, error) {
		code, why = cd, reason
		return nil, nil
	}
	refused := func(err error) (*events.DealBooked, string, string, error) {
		if _, err := s.sellerFailure(c, err, fail); err != nil {
			return nil, "", "", err
		}
		return nil, code, why, nil
	}
	cmp, err := s.Campaigns.Get(ctx, r.CampaignID)
	if err != nil {
		return nil, "", "", err
	}
	if cmp.Request == nil {
		return nil, events.ChangeUnsupported, "campaign " + r.CampaignID + " has no request to book an additional deal from", nil
	}
	if err := s.Campaigns.LoadQuote(ctx, cmp, d.SellerURL, d.PackageID); err != nil {
		return nil, "", "", err
	}
	q, ok := cmp.Quotes[campaign.QuoteKey(d.SellerURL, d.PackageID)]
	if !ok {
		return nil, events.ChangeUnsupported, "the line's quote is not in the campaign: no package to book more of", nil
	}
	cpm := d.AgreedCPMMicros
	if cpm <= 0 {
		cpm = d.CPMMicros
	}
	if cpm <= 0 {
		return nil, events.ChangeUnsupported, "the line has no CPM to book more of it at", nil
	}
	imps := int64(amount) * 1000 / int64(cpm)
	if least := max(q.MinImpressions, 1); imps < least {
		return nil, events.ChangeUnsupported, fmt.Sprintf("%s buys %d impressions at %s CPM, below the seller's minimum order of %d", amount, imps, cpm.Cents(), least), nil
	}
	l := events.PlanLine{SellerURL: d.SellerURL, SellerName: d.SellerName, PackageID: d.PackageID, ProductID: d.ProductID, QuoteID: d.QuoteID,
		Protocol: events.ProtocolIAB, CPMMicros: cpm, Impressions: imps, SpendMicros: events.CostMicros(imps, cpm)}
	cctx, cancel := context.WithTimeout(ctx, b.callTimeout())
	rq, err := b.requote(cctx, auth, cmp, q, l, c.Key+".quote", start)
	cancel()
	if err != nil {
		if errors.Is(err, errNoProduct) {
			return nil, events.ChangeUnsupported, err.Error(), nil
		}
		return refused(err)
	}
	if got := rq.Pricing.FinalCPM; got == nil || got.Micros() != cpm {
		return nil, events.ChangeSellerRefused, fmt.Sprintf("the fresh quote priced %v, the line's agreed CPM is %s; nothing booked", got, cpm.Cents()), nil
	}
	cctx, cancel = context.WithTimeout(ctx, b.callTimeout())
	res, err := b.Client.BookDeal(cctx, d.SellerURL, auth, sellerclient.DealBookingRequest{IdempotencyKey: c.Key + ".book", QuoteID: rq.QuoteID,
		Notes: "dealflow campaign " + r.CampaignID + ": " + what + " of line " + lineKey})
	cancel()
	if err != nil {
		return refused(err)
	}
	added := dealBooked(cmp, q, l, rq.QuoteID, res)
	added.LineKey, added.PlanRevision, added.ChangeID = lineKey, d.PlanRevision, r.ChangeID
	if added.SpendMicros > amount {
		// The seller booked more than asked: the budget would not hold.
		// Cancel it again at once.
		cctx, cancel = context.WithTimeout(ctx, b.callTimeout())
		_, cerr := b.Client.BulkDeals(cctx, d.SellerURL, auth, sellerclient.BulkDealRequest{Operations: []sellerclient.BulkDealOperation{
			{Action: sellerclient.BulkCancel, DealID: added.DealID, Notes: "dealflow: booked above the " + what}}})
		cancel()
		if cerr != nil {
			return nil, "", "", unknown(fmt.Errorf("the additional deal %s costs %s, above the %s asked, and cancelling it failed: %w", added.DealID, added.SpendMicros, amount, cerr))
		}
		return nil, events.ChangeSellerRefused, fmt.Sprintf("the seller booked %s for the additional deal, above the %s asked; the deal was cancelled", added.SpendMicros, amount), nil
	}
	return added, "", "", nil
}

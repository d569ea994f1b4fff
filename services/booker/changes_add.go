package booker

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/campaign"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/sellerclient"
)

// An add (a reallocation's move to a remaining quote) books a quote of the
// campaign that no line was booked from as a new line, mid-flight, the way
// an IAB increase books its additional deal:
//
//  1. beginAdd: the new line (key events.AddedLineKey(change_id)) is
//     written to the ledger reserved for the budget, with the change and
//     its idempotency key, before any seller call — refused (over_budget,
//     the seller never called) if committed spend would pass the budget.
//     A redelivery finds the line and its change there.
//  2. the quote's package is re-quoted at its agreed CPM for what the
//     budget buys and booked (bookMoreIAB: keys derived from the change's,
//     so a retry replays them), never above the budget.
//  3. finishAdd: the line is booked (its DealBooked makes the pacer and the
//     activator follow it like any line) and committed spend becomes the
//     deal's; or it failed and the reservation is released. When the
//     seller's answer never came within the booking horizon the add is
//     reported unresolved, the reservation kept, and reconciled
//     (addUnsettled) until the seller's answer settles it.
//
// An AdCP quote is booked as its own media buy instead (addADCP): one
// create_media_buy for the budget, exactly as bookADCP books an approved
// line, under an idempotency key derived from the change_id and written to
// the ledger before the call.

// handleAdd applies an add request once.
func (s *Service) handleAdd(ctx context.Context, in events.Event, r events.LineChangeRequested, log zerolog.Logger) ([]events.Event, error) {
	key := events.AddedLineKey(r.ChangeID)
	if r.LineKey != key {
		return nil, bus.Permanent(fmt.Errorf("%w: an add's line_key is events.AddedLineKey(change_id) %q, not %q", events.ErrInvalid, key, r.LineKey))
	}
	if r.Quote == nil || r.BudgetMicros <= 0 {
		return nil, bus.Permanent(fmt.Errorf("%w: an add names its quote and a positive budget", events.ErrInvalid))
	}
	ch, line, err := s.beginAdd(ctx, r)
	if err != nil {
		return nil, err
	}
	if line == nil {
		f := events.LineChangeFailed{CampaignID: r.CampaignID, ChangeID: r.ChangeID, LineKey: r.LineKey, Action: r.Action, RequestedBy: r.RequestedBy,
			ReallocationRevision: r.ReallocationRevision, SellerURL: r.Quote.SellerURL, Code: events.ChangeUnknownLine,
			Reason: "campaign " + r.CampaignID + " has no booking ledger: nothing booked to add a line to", FailedAt: s.now()}
		log.Warn().Msg("add for a campaign with no ledger")
		return outputs(in, &LineChange{ChangeID: r.ChangeID, Failed: &f})
	}
	if !ch.done() {
		res, err := s.applyAdd(ctx, r, line, ch)
		if err != nil {
			return s.addUnsettled(ctx, in, r, ch, err, log)
		}
		if ch.State == ChangeUnresolved && res.Added != nil {
			res.Added.Reconciled = true
		}
		if ch, err = s.finishAdd(ctx, r, res); err != nil {
			return nil, err
		}
		switch {
		case ch.Failed != nil:
			log.Warn().Str("code", ch.Failed.Code).Str("reason", ch.Failed.Reason).Msg("add failed")
		case ch.Added.Reconciled:
			log.Warn().Str("deal_id", ch.Added.DealID).Str("committed", ch.Changed.CommittedMicros.String()).
				Msg("reconciled: the seller booked the add whose outcome was unknown")
		default:
			log.Info().Str("deal_id", ch.Added.DealID).Str("budget", ch.Changed.BudgetAfterMicros.String()).
				Str("committed", ch.Changed.CommittedMicros.String()).Msg("remaining quote booked as a new line")
		}
	}
	return outputs(in, ch)
}

// addUnsettled answers an add whose seller gave no definite answer (err):
// retried with the same keys until the booking horizon; at the horizon
// reported unresolved (LineChangeFailed with unresolved set, the new line
// unknown and its spend still reserved); from then on asked again, by the
// same idempotent calls, every reconcileAfter until ReconcileFor has passed.
// Asking is the replay the seller answers from its idempotency records —
// the deal it booked under those keys, or a refusal (an expired quote, no
// buy) that releases the reservation; a seller that never saw the request
// books it then, within the reservation the add has held all along.
func (s *Service) addUnsettled(ctx context.Context, in events.Event, r events.LineChangeRequested, ch *LineChange, cause error,
	log zerolog.Logger) ([]events.Event, error) {
	since := s.now().Sub(ch.BegunAt) - s.horizon()
	switch {
	case since < 0:
		log.Warn().Err(cause).Msg("add not settled; retrying with the same keys")
		return nil, cause
	case ch.State == ChangeUnresolved && since >= s.reconcileFor():
		log.Error().Err(cause).Dur("unresolved_for", since).
			Msg("reconciliation gives up: the added line stays unresolved with its spend reserved; settle it with the seller")
		return nil, nil
	case ch.State == ChangeUnresolved:
		log.Info().Err(cause).Dur("unresolved_for", since).Msg("add still unresolved; asking the seller again later")
		return nil, bus.Again(s.reconcileAfter(since), "reconcile an unresolved add")
	}
	x := *ch
	x.State, x.Failed = ChangeUnresolved, &events.LineChangeFailed{Code: events.ChangeSellerUnreachable, Unresolved: true,
		Reason: "no definite answer from the seller within the booking horizon (" + s.horizon().String() + "): " + cause.Error() +
			"; the new line's spend stays reserved while the seller is asked again with the same keys"}
	ch, err := s.finishAdd(ctx, r, &x)
	if err != nil {
		return nil, err
	}
	s.observe(OutcomeUnresolved)
	log.Error().Err(cause).Msg("add outcome unknown at the horizon; reconciling")
	out, err := outputs(in, ch)
	if err != nil || ch.State != ChangeUnresolved {
		return out, err
	}
	return out, bus.Again(s.reconcileAfter(0), "reconcile an unresolved add")
}

// addFailed is the LineChangeFailed of an add.
func (s *Service) addFailed(led *Ledger, r events.LineChangeRequested, l *LedgerLine, ch *LineChange, code, reason string) *events.LineChangeFailed {
	f := s.changeFailed(led, l, ch, code, reason)
	f.CampaignID = r.CampaignID
	return f
}

// beginAdd writes the new line, reserved for the budget, with the change
// (or finds both there on a redelivery). The line is nil when the campaign
// has no ledger.
func (s *Service) beginAdd(ctx context.Context, r events.LineChangeRequested) (*LineChange, *LedgerLine, error) {
	var ch *LineChange
	var line *LedgerLine
	_, err := s.Ledger.Update(ctx, r.CampaignID, func(led *Ledger, exists bool) (bool, error) {
		ch, line = nil, nil
		if !exists {
			return false, nil
		}
		if x := led.Lines[r.LineKey]; x != nil {
			ch, line = x.Changes[r.ChangeID], x
			if ch == nil {
				return false, bus.Permanent(fmt.Errorf("%w: line %s exists without its add %s", events.ErrInvalid, r.LineKey, r.ChangeID))
			}
			return false, nil
		}
		now := s.now()
		q := r.Quote
		ch = &LineChange{ChangeID: r.ChangeID, Action: events.LineAdd, State: ChangePending, RequestedBy: r.RequestedBy, Revision: r.ReallocationRevision,
			Reason: r.Reason, Budget: r.BudgetMicros, RequestedAt: r.RequestedAt, BegunAt: now,
			Key: "dealflow.chg." + events.ChildID(r.CampaignID+"/"+r.LineKey, StageChange, r.ChangeID)[:32]}
		line = &LedgerLine{Key: r.LineKey, QuoteID: q.QuoteID, SellerURL: q.SellerURL, PackageID: q.PackageID, Protocol: events.ProtocolIAB,
			ReservedAt: now, UpdatedAt: now, Changes: map[string]*LineChange{r.ChangeID: ch}}
		switch c := led.Committed(); {
		case c+r.BudgetMicros > led.BudgetMicros:
			line.State, ch.State = LineFailed, ChangeFailed
			ch.Failed = s.addFailed(led, r, line, ch, events.ChangeOverBudget, fmt.Sprintf("adding a line of %s to %s committed would pass the campaign's %s budget",
				r.BudgetMicros, c, led.BudgetMicros))
		default:
			line.State, line.SpendMicros, line.PendingChange, ch.Reserved = LineReserved, r.BudgetMicros, r.ChangeID, r.BudgetMicros
		}
		led.Lines[r.LineKey] = line
		return true, nil
	})
	return ch, line, err
}

// applyAdd books the quote for the budget at its seller: the change
// applied with the deal booked, or failed (the seller definitely will not
// book it), or an error while the outcome is unknown.
func (s *Service) applyAdd(ctx context.Context, r events.LineChangeRequested, line *LedgerLine, ch *LineChange) (*LineChange, error) {
	c := *ch
	fail := c.fail
	b := s.Booker
	if b == nil {
		return fail(events.ChangeUnsupported, "this booker has no seller clients")
	}
	q := r.Quote
	cmp, err := s.Campaigns.Get(ctx, r.CampaignID)
	if err != nil {
		return nil, err
	}
	if cmp.Request == nil {
		return fail(events.ChangeUnsupported, "campaign "+r.CampaignID+" has no request to book a new line from")
	}
	if err := s.Campaigns.LoadQuote(ctx, cmp, q.SellerURL, q.PackageID); err != nil {
		return nil, err
	}
	stored, ok := cmp.Quotes[q.SellerURL+"|"+q.PackageID]
	if !ok || stored.FinalCPMMicros <= 0 {
		return fail(events.ChangeUnsupported, "the campaign has no priced quote for "+q.PackageID+" of "+q.SellerURL)
	}
	// Mid-flight, the new deal's flight starts the day it is asked for
	// (fixed by the change's begin, so a retry asks for the same quote):
	// the seller delivers, and the pacer plans, its budget over what is
	// left of the flight, not from the brief's start.
	start := ""
	if day := c.BegunAt.UTC().Format(time.DateOnly); day > cmp.Request.Brief.StartDate && day <= cmp.Request.Brief.EndDate {
		start = day
	}
	if err := s.markChangeSent(ctx, r.CampaignID, line.Key, &c); err != nil {
		return nil, err
	}
	var added *events.DealBooked
	var code, why string
	if stored.Seller.Protocol.IsADCP() {
		added, code, why, err = s.addADCP(ctx, r, cmp, stored, line, &c, start)
	} else {
		added, code, why, err = s.addIAB(ctx, r, stored, line, &c, start)
	}
	switch {
	case err != nil:
		return nil, err
	case code != "":
		return fail(code, why)
	}
	c.State, c.Added, c.Failed = ChangeApplied, added, nil
	return &c, nil
}

// addIAB books an IAB quote for the add's budget: bookMoreIAB re-quotes
// its package at its agreed CPM for what the budget buys and books it.
func (s *Service) addIAB(ctx context.Context, r events.LineChangeRequested, stored events.QuoteReady, line *LedgerLine, c *LineChange, start string) (*events.DealBooked, string, string, error) {
	q := r.Quote
	auth, err := sellerclient.AuthFor(s.Booker.Credentials, q.SellerURL, stored.Tier)
	if err != nil {
		return nil, "credentials", err.Error(), nil
	}
	// The quote as the line it becomes: bookMoreIAB re-quotes its package
	// at its agreed CPM for what the budget buys.
	d := events.DealBooked{CampaignID: r.CampaignID, SellerURL: q.SellerURL, SellerName: stored.Seller.Name, Protocol: events.ProtocolIAB,
		PackageID: q.PackageID, ProductID: stored.Package.ProductID, QuoteID: stored.QuoteID, CPMMicros: stored.FinalCPMMicros,
		AgreedCPMMicros: stored.FinalCPMMicros, Tier: stored.Tier}
	return s.bookMoreIAB(ctx, r, line.Key, d, c, auth, c.Budget, "reallocation to a remaining quote", start)
}

// addADCP books an AdCP quote for the add's budget as a new media buy, the
// way bookADCP books an approved line: the buyer's credentials for the
// tier the quote was made at, one create_media_buy (or the quote's
// proposal bought whole) with the budget, a submitted answer followed with
// the task-status tool (the reservation kept and the request retried while
// the seller decides). Its idempotency key is derived from the campaign,
// the line key and the change's key — all three from the change_id — and
// the key is written to the ledger line before the first call, so a
// redelivery, or a booker killed mid-way, sends the same key and the
// seller creates one buy. The flight starts on start when set (mid-flight).
func (s *Service) addADCP(ctx context.Context, r events.LineChangeRequested, cmp *campaign.Campaign, q events.QuoteReady, line *LedgerLine, c *LineChange,
	start string) (*events.DealBooked, string, string, error) {
	// The key and protocol first, so even a refusal below names the
	// line's protocol.
	if line.BookKey == "" || !line.Protocol.IsADCP() {
		if err := s.keyAdd(ctx, r, line, c.Key); err != nil {
			return nil, "", "", err
		}
	}
	cpm := q.FinalCPMMicros
	imps := int64(c.Budget) * 1000 / int64(cpm)
	if least := max(q.MinImpressions, 1); imps < least {
		return nil, events.ChangeUnsupported, fmt.Sprintf("%s buys %d impressions at %s CPM, below the seller's minimum order of %d", c.Budget, imps, cpm.Cents(), least), nil
	}
	l := events.PlanLine{QuoteID: q.QuoteID, SellerURL: q.Seller.URL, SellerName: q.Seller.Name, Protocol: events.ProtocolADCP, PackageID: q.Package.ID,
		ProductID: q.Package.ProductID, DealType: q.DealType, Tier: q.Tier, CPMMicros: cpm, Impressions: imps, SpendMicros: c.Budget}
	bought := cmp
	if start != "" {
		// The buy's flight, and the DealBooked's, run from start.
		cc, rq := *cmp, *cmp.Request
		rq.Brief.StartDate = start
		cc.Request = &rq
		bought = &cc
	}
	finish := func(d *events.DealBooked, f *events.BookingFailed) (*events.DealBooked, *events.BookingFailed, error) {
		if d == nil && ctx.Err() != nil {
			// Stopping: a call cut short says nothing about the seller.
			return nil, nil, unknown(ctx.Err())
		}
		return d, f, nil
	}
	d, f, err := s.Booker.bookADCP(ctx, s.Ledger, bought, q, l, line, finish)
	switch {
	case err != nil:
		return nil, "", "", err
	case f != nil:
		code := events.ChangeSellerRefused
		switch f.Code {
		case "credentials":
			code = f.Code
		case "unsupported", "unsupported_protocol":
			code = events.ChangeUnsupported
		}
		return nil, code, f.Code + ": " + f.Reason, nil
	}
	d.LineKey, d.ChangeID = line.Key, r.ChangeID
	return d, "", "", nil
}

// keyAdd writes the AdCP add's book key (the change's key) and protocol to
// its ledger line before any seller call, and sets them on line.
func (s *Service) keyAdd(ctx context.Context, r events.LineChangeRequested, line *LedgerLine, key string) error {
	_, err := s.Ledger.Update(ctx, r.CampaignID, func(led *Ledger, exists bool) (bool, error) {
		l := led.Lines[line.Key]
		if !exists || l == nil {
			return false, fmt.Errorf("booker: ledger line %s of %s vanished", line.Key, r.CampaignID)
		}
		if l.BookKey == "" {
			l.BookKey = key
		}
		l.Protocol = events.ProtocolADCP
		line.BookKey, line.Protocol = l.BookKey, l.Protocol
		return true, nil
	})
	return err
}

// finishAdd writes an add's outcome: the line booked on its deal (its
// committed spend the deal's, never above the reservation), or failed with
// its reservation released; or, for an outcome still unknown at the
// horizon, the line unknown with its reservation kept until a later
// delivery settles it.
func (s *Service) finishAdd(ctx context.Context, r events.LineChangeRequested, ch *LineChange) (*LineChange, error) {
	return s.writeOutcome(ctx, r.CampaignID, r.LineKey, ch, func(led *Ledger, l *LedgerLine, c *LineChange) {
		switch c.State {
		case ChangeUnresolved:
			// The seller may have booked it: the reservation stays (a
			// submitted AdCP buy keeps its task to poll).
			if l.State != LineSubmitted {
				l.State = LineUnknown
			}
			unresolved := *c.Failed
			c.Failed = s.addFailed(led, r, l, c, unresolved.Code, unresolved.Reason)
			c.Failed.Unresolved = true
		case ChangeFailed:
			l.PendingChange = ""
			l.State = LineFailed
			l.SpendMicros -= c.Reserved
			c.Failed = s.addFailed(led, r, l, c, c.Failed.Code, c.Failed.Reason)
		default:
			l.PendingChange = ""
			d := *c.Added
			l.State, l.Deal, l.SpendMicros = LineBooked, &d, d.SpendMicros
			// The new line's own deal: not one added on top of it.
			c.Added = &d
			c.Changed = s.lineChanged(led, l, c)
			c.Changed.AddedDealID = ""
		}
	})
}

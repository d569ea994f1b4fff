package booker

import (
	"context"
	"errors"
	"fmt"

	"github.com/rs/zerolog"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/campaign"
	"github.com/dealflow/dealflow/pkg/events"
)

// Line outcomes, as ObserveLineOutcome counts them.
const (
	OutcomeBooked              = "booked"
	OutcomeFailed              = "failed"
	OutcomeUnresolved          = "unresolved"
	OutcomeReconciledBooked    = "reconciled_booked"
	OutcomeReconciledNotBooked = "reconciled_not_booked"
)

// Codes of BookingFailed for lines whose outcome is not known.
const (
	// CodeOutcomeUnknown: the line was still unknown at the booking
	// horizon (timeouts, dropped answers, 5xx); it is reconciled.
	CodeOutcomeUnknown = "outcome_unknown"
	// CodeAwaitingSeller: an AdCP buy the seller answered "submitted" was
	// still awaiting the seller's approval at the horizon; its task is
	// followed.
	CodeAwaitingSeller = "awaiting_seller_approval"
	// CodeNotBooked: the reconciler's answer for an unresolved line whose
	// seller shows no booking: its reserved spend is released.
	CodeNotBooked = "not_booked"
)

// HandleLine is the line consumer: it books one approved line per delivery.
//
//   - A deal or a definite failure (nothing was booked: refused connection,
//     DNS or TLS failure, an explicit refusal from the seller) is
//     published at once as DealBooked or BookingFailed.
//   - An unknown outcome (the request may have been booked) is retried
//     with backoff and the same idempotency key, the seller being asked
//     what it did before each new attempt.
//   - At the booking horizon an unknown line is published as BookingFailed
//     with code outcome_unknown and unresolved set; its spend stays
//     reserved, and the line is handed back to JetStream to be reconciled
//     (bus.Again) until the seller shows a deal (DealBooked, reconciled) or
//     none (BookingFailed not_booked, the reservation released).
func (s *Service) HandleLine(ctx context.Context, in events.Event, p *events.LineApproved) ([]events.Event, error) {
	la := *p
	if la.CampaignID != in.Subject() || la.LineKey != campaign.LineKey(la.Line) {
		return nil, bus.Permanent(fmt.Errorf("%w: line %q of campaign %q does not match its subject %q or its line", events.ErrInvalid, la.LineKey, la.CampaignID, in.Subject()))
	}
	c, err := s.Campaigns.Get(ctx, la.CampaignID)
	if errors.Is(err, campaign.ErrNotFound) {
		// Lines are handed out after their approval was recorded.
		return nil, fmt.Errorf("%w: line of campaign %s, which has no record", campaign.ErrNotVisible, la.CampaignID)
	}
	if err != nil {
		return nil, classify(err)
	}
	if c.Request == nil {
		return nil, bus.Permanent(fmt.Errorf("%w: campaign %s has no request", campaign.ErrNotFound, c.ID))
	}
	l := la.Line
	if err := s.Campaigns.LoadQuote(ctx, c, l.SellerURL, l.PackageID); err != nil {
		return nil, err
	}
	log := bus.CampaignLogger(ctx, s.Log, c.ID).With().Str("seller", l.SellerURL).Str("package_id", l.PackageID).Str("line_key", la.LineKey).Logger()

	led, found, err := s.Ledger.Get(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	var line *LedgerLine
	if found {
		line = led.Lines[la.LineKey]
	}
	if line == nil {
		switch {
		case c.Approved == nil || c.BookedRevision < la.PlanRevision || c.Approved.Revision < la.PlanRevision:
			// The line was handed out after its approval was recorded: a
			// record without it is one read before that write (a replica
			// not yet caught up). Retried.
			return nil, fmt.Errorf("%w: line of plan revision %d, campaign books %s", campaign.ErrNotVisible, la.PlanRevision, approvedRevision(c))
		case c.Approved.Revision != la.PlanRevision:
			// Never taken up, and of an approval the campaign has moved
			// past: a stale line must not start a booking.
			return nil, bus.Permanent(fmt.Errorf("%w: line of plan revision %d, campaign books %s", campaign.ErrStale, la.PlanRevision, approvedRevision(c)))
		}
	}
	if line != nil {
		switch {
		case line.State == LineUnknown || (line.State == LineSubmitted && line.Failure != nil && line.Failure.Unresolved):
			return s.reconcileLine(ctx, in, la, c, line, log)
		case (line.State == LineReserved || line.State == LineSubmitted) && s.pastHorizon(line):
			// Redelivered after the horizon (a booker died meanwhile):
			// settle it now rather than try once more.
			return s.atHorizon(ctx, in, la, c, line, errors.New("the booking horizon passed between attempts"), log)
		}
	}

	o, line, err := s.Booker.BookLine(ctx, s.Ledger, c, l)
	switch {
	case o.deal != nil:
		d := *o.deal
		d.PlanRevision = la.PlanRevision
		if o.fresh {
			s.observeDeal(d, OutcomeBooked)
			logDeal(log, d)
		}
		return derive(in, events.KindDealBooked, d)
	case o.fail != nil:
		f := *o.fail
		f.PlanRevision = la.PlanRevision
		if o.fresh || line == nil {
			s.observe(OutcomeFailed)
			log.Warn().Str("code", f.Code).Str("reason", f.Reason).Msg("booking failed")
		}
		return derive(in, events.KindBookingFailed, f)
	case errors.Is(err, errOutcomeUnknown), errors.Is(err, ErrBuyPending):
		if line != nil && s.pastHorizon(line) {
			return s.atHorizon(ctx, in, la, c, line, err, log)
		}
		return nil, err // retried with backoff, the same keys
	}
	return nil, err
}

func approvedRevision(c *campaign.Campaign) string {
	if c.Approved == nil {
		return "no approval"
	}
	return fmt.Sprint("revision ", c.Approved.Revision)
}

// pastHorizon reports whether the line has been trying to book for longer
// than the booking horizon.
func (s *Service) pastHorizon(line *LedgerLine) bool {
	return !line.ReservedAt.IsZero() && s.now().Sub(line.ReservedAt) >= s.horizon()
}

// atHorizon settles a line still unknown at the booking horizon: the
// seller is asked once what it did, and only when it cannot tell is the
// line reported unresolved.
func (s *Service) atHorizon(ctx context.Context, in events.Event, la events.LineApproved, c *campaign.Campaign, line *LedgerLine,
	cause error, log zerolog.Logger) ([]events.Event, error) {
	out, settled, err := s.settle(ctx, in, la, c, line, log)
	if settled || err != nil {
		return out, err
	}
	return s.unresolve(ctx, in, la, c, line, cause, log)
}

// unresolve reports a line still unknown at the horizon: the ledger keeps
// its spend reserved (state unknown, or submitted for an AdCP buy awaiting
// the seller), BookingFailed with unresolved set is published, and the
// line comes back to be reconciled.
func (s *Service) unresolve(ctx context.Context, in events.Event, la events.LineApproved, c *campaign.Campaign, line *LedgerLine,
	cause error, log zerolog.Logger) ([]events.Event, error) {
	code := CodeOutcomeUnknown
	if line.State == LineSubmitted {
		code = CodeAwaitingSeller
	} else {
		line.State = LineUnknown
	}
	reason := fmt.Sprintf("no definite answer from the seller within the booking horizon (%s): %v; its spend stays reserved while the seller is asked what it did",
		s.horizon(), cause)
	f := failure(c, la.Line, code, reason)
	f.LineKey, f.PlanRevision, f.Unresolved, f.TaskID = la.LineKey, la.PlanRevision, true, line.TaskID
	line.Failure = f
	if err := saveLine(ctx, s.Ledger, c.ID, line); err != nil {
		return nil, err
	}
	s.observe(OutcomeUnresolved)
	log.Error().Str("code", code).Err(cause).Msg("booking outcome unknown at the horizon; reconciling")
	out, err := deriveAs(in, events.KindBookingFailed, "unresolved", *f)
	if err != nil {
		return nil, err
	}
	return out, bus.Again(s.reconcileAfter(0), "reconcile an unresolved line")
}

// reconcileLine asks the seller what became of an unresolved line: a deal
// is published as DealBooked (reconciled), a seller that shows none
// releases the reservation with BookingFailed not_booked, and anything
// else is asked again later, until ReconcileFor has passed.
func (s *Service) reconcileLine(ctx context.Context, in events.Event, la events.LineApproved, c *campaign.Campaign, line *LedgerLine,
	log zerolog.Logger) ([]events.Event, error) {
	since := s.now().Sub(line.ReservedAt) - s.horizon()
	out, settled, err := s.settle(ctx, in, la, c, line, log)
	switch {
	case settled || err != nil:
		return out, err
	case since >= s.reconcileFor():
		log.Error().Dur("unresolved_for", since).
			Msg("reconciliation gives up: the line stays unresolved with its spend reserved; settle it with the seller")
		return nil, nil
	}
	log.Info().Dur("unresolved_for", since).Msg("line still unresolved; asking the seller again later")
	return nil, bus.Again(s.reconcileAfter(since), "reconcile an unresolved line")
}

// settle asks the seller what became of a line whose outcome is unknown
// and, when it can tell, writes and returns the final outcome: its deal
// (DealBooked, reconciled) or not_booked (the reservation released).
// settled is false while the seller cannot tell; err is the ledger's.
func (s *Service) settle(ctx context.Context, in events.Event, la events.LineApproved, c *campaign.Campaign, line *LedgerLine,
	log zerolog.Logger) (out []events.Event, settled bool, err error) {
	d, none, rerr := s.Booker.reconcileLine(ctx, s.Ledger, c, la.Line, line)
	switch {
	case d != nil:
		d.LineKey, d.PlanRevision, d.Reconciled = la.LineKey, la.PlanRevision, true
		line.State, line.Deal, line.SpendMicros = LineBooked, d, d.SpendMicros
		if err := saveLine(ctx, s.Ledger, c.ID, line); err != nil {
			return nil, false, err
		}
		s.observeDeal(*d, OutcomeReconciledBooked)
		logDeal(log, *d)
		log.Warn().Msg("reconciled: the seller booked the line whose outcome was unknown")
		out, err := derive(in, events.KindDealBooked, *d)
		return out, true, err
	case none != "":
		f := failure(c, la.Line, CodeNotBooked, none)
		f.LineKey, f.PlanRevision, f.TaskID = la.LineKey, la.PlanRevision, line.TaskID
		line.State, line.Failure, line.SpendMicros = LineFailed, f, 0
		if err := saveLine(ctx, s.Ledger, c.ID, line); err != nil {
			return nil, false, err
		}
		s.observe(OutcomeReconciledNotBooked)
		log.Warn().Str("reason", none).Msg("reconciled: the seller booked nothing; reservation released")
		out, err := derive(in, events.KindBookingFailed, *f)
		return out, true, err
	}
	log.Debug().Err(rerr).Msg("the seller cannot tell what became of the line")
	return nil, false, nil
}

// derive is the final outcome event of a line, its id derived from the
// line's: one per line, however often the line is delivered.
func derive(in events.Event, k events.Kind, data any) ([]events.Event, error) {
	return deriveAs(in, k, "outcome", data)
}

// deriveAs is derive under another key (the unresolved report, which a
// final outcome follows).
func deriveAs(in events.Event, k events.Kind, key string, data any) ([]events.Event, error) {
	e, err := events.Derive(in, k, events.StageBooker, key, data)
	if err != nil {
		return nil, err
	}
	return []events.Event{e}, nil
}

func (s *Service) observe(outcome string) {
	if s.Metrics != nil {
		s.Metrics.ObserveLineOutcome(outcome)
	}
}

func (s *Service) observeDeal(d events.DealBooked, outcome string) {
	if s.Metrics != nil {
		s.Metrics.ObserveDealBooked(d.Protocol, d.DealType, d.SpendMicros)
		s.Metrics.ObserveLineOutcome(outcome)
	}
}

func logDeal(log zerolog.Logger, d events.DealBooked) {
	if d.CPMMismatch {
		log.Error().Str("deal_id", d.DealID).Str("booked_cpm", d.CPMMicros.String()).
			Str("agreed_cpm", d.AgreedCPMMicros.String()).Msg("ALARM: booked CPM differs from agreed CPM")
	}
	log.Info().Str("protocol", string(d.Protocol)).Str("deal_id", d.DealID).Str("media_buy_id", d.MediaBuyID).
		Str("cpm", d.CPMMicros.String()).Str("spend", d.SpendMicros.String()).Msg("deal booked")
}

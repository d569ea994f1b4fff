package booker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/pkg/events"
)

// Line changes after the booking (issue 27 item 4, and the seller
// operations a reallocation applies): the change consumer takes one
// LineChangeRequested per delivery and applies it at the line's seller
// exactly once, through the ledger:
//
//  1. begin: the change is written to the line in the ledger, with its
//     idempotency key, before any seller call; a set_budget increase
//     reserves the difference in the same revision-checked write, refused
//     (over_budget, the seller never called) if committed spend would pass
//     the budget. One change per line runs at a time.
//  2. apply: the seller operation (AdCP update_media_buy; IAB bulk cancel,
//     an additional deal for an increase, or for a decrease both: the
//     line's deals cancelled and the remainder booked), retried with the
//     same keys while its outcome is unknown.
//  3. finish: the line's state and committed spend follow the seller's
//     answer (a decrease lowers committed only now; a failure releases an
//     increase's reservation), and the outputs are stored with the change,
//     so a redelivered request publishes the same events again under the
//     same ids.

// StageChange is the change consumer.
const StageChange = events.StageBooker + "-change"

// ChangeSubjects are the inputs of the change consumer.
func ChangeSubjects() []string { return []string{events.KindLineChangeRequested.Filter()} }

// Change states in the ledger.
const (
	ChangePending   = "pending"
	ChangeSubmitted = "submitted"
	ChangeApplied   = "applied"
	ChangeFailed    = "failed"
	// ChangeUnresolved is an add whose outcome was still unknown at the
	// booking horizon: reported unresolved, its reservation kept while it is
	// reconciled.
	ChangeUnresolved = "unresolved"
)

// LineChange is one change of a booked line, in the ledger under its
// change_id: written before the seller is called, finished with the
// outputs it published.
type LineChange struct {
	ChangeID    string            `json:"change_id"`
	Action      events.LineAction `json:"action"`
	State       string            `json:"state"`
	RequestedBy events.Requester  `json:"requested_by,omitempty"`
	Revision    int               `json:"reallocation_revision,omitempty"`
	Reason      string            `json:"reason,omitempty"`
	// Key is the idempotency key given to the seller (AdCP
	// update_media_buy; IAB the additional deal's re-quote and booking derive
	// theirs from it).
	Key string `json:"key"`
	// BudgetBefore is the line's budget when the change began; Budget
	// what set_budget asked for.
	BudgetBefore events.Micros `json:"budget_before_micros"`
	Budget       events.Micros `json:"budget_micros,omitempty"`
	// Reserved is what a set_budget increase added to the line's
	// committed spend while it is applied.
	Reserved events.Micros `json:"reserved_micros,omitempty"`
	// TaskID is the AdCP task of an update the seller submitted.
	TaskID string `json:"task_id,omitempty"`
	// RequoteID is the IAB increase's fresh quote.
	RequoteID string `json:"requote_id,omitempty"`
	// DealsCancelled: an IAB decrease cancelled the line's deals and read
	// Delivered, the spend they delivered, before booking the remainder;
	// stored before the remainder's quote so a retry asks for the same.
	DealsCancelled bool          `json:"deals_cancelled,omitempty"`
	Delivered      events.Micros `json:"delivered_micros,omitempty"`
	// Outcome says why an applied change left the line otherwise than
	// asked (an IAB decrease whose remainder was not booked: cancelled).
	Outcome     string    `json:"outcome,omitempty"`
	RequestedAt time.Time `json:"requested_at"`
	BegunAt     time.Time `json:"begun_at"`

	// The outputs, once finished.
	Changed   *events.LineChanged      `json:"changed,omitempty"`
	Failed    *events.LineChangeFailed `json:"failed,omitempty"`
	Paused    *events.LinePaused       `json:"paused,omitempty"`
	Resumed   *events.LineResumed      `json:"resumed,omitempty"`
	Cancelled []events.DealCancelled   `json:"cancelled,omitempty"`
	Added     *events.DealBooked       `json:"added,omitempty"`

	// Sent is written before the change's first seller call (see
	// LedgerLine.Sent); sentBefore says, for one delivery, that it was
	// already set when the delivery began.
	Sent       bool `json:"sent,omitempty"`
	sentBefore bool

	// What apply found, for finish to write to the line.
	result changeResult
}

// changeResult is what an applied change makes of its line.
type changeResult struct {
	state     events.LineState
	budget    events.Micros
	delivered events.Micros
	revision  int
}

// set writes an applied change's result to the line.
func (c *LineChange) set(l *LedgerLine) {
	r := c.result
	if r.state != "" {
		l.ChangeState = r.state
	}
	if l.ChangeState == events.LineStateLive {
		l.ChangeState = ""
	}
	l.SpendMicros = r.budget
	l.DeliveredMicros = r.delivered
	if r.revision > 0 {
		l.MediaBuyRevision = r.revision
	}
	if c.Added != nil {
		d := *c.Added
		l.Added = append(l.Added, &d)
	}
}

// fail marks the change failed at its seller, definitely (apply's answer
// for a refusal): finish releases what it reserved.
func (c *LineChange) fail(code, reason string) (*LineChange, error) {
	c.State, c.Failed = ChangeFailed, &events.LineChangeFailed{Code: code, Reason: reason}
	return c, nil
}

// done reports whether the change has its outcome.
func (c *LineChange) done() bool { return c.State == ChangeApplied || c.State == ChangeFailed }

// LineState is the line's state after the booking: live, paused, cancelled.
func (l *LedgerLine) LineState() events.LineState {
	if l.ChangeState == "" {
		return events.LineStateLive
	}
	return l.ChangeState
}

// Deals are the line's booked deals: the booking's, then those added by
// budget changes (IAB), cancelled ones included.
func (l *LedgerLine) Deals() []events.DealBooked {
	var out []events.DealBooked
	if l.Deal != nil {
		out = append(out, *l.Deal)
	}
	for _, d := range l.Added {
		out = append(out, *d)
	}
	return out
}

// planned is what begin decided for a request.
type planned struct {
	change *LineChange
	// code and reason: the change fails at once.
	code, reason string
	// noop: nothing to do at the seller.
	noop bool
}

// planChange decides, from the ledger alone, what a request does to a
// booked line: fail at once (its state forbids it, or over budget), nothing
// (already so), or a change to apply at the seller, with the increase it
// reserves. It is pure: begin runs it inside the ledger's revision-checked
// write.
func planChange(led *Ledger, line *LedgerLine, r events.LineChangeRequested) planned {
	ch := &LineChange{ChangeID: r.ChangeID, Action: r.Action, State: ChangePending, RequestedBy: r.RequestedBy, Revision: r.ReallocationRevision,
		Reason: r.Reason, BudgetBefore: line.SpendMicros, Budget: r.BudgetMicros, RequestedAt: r.RequestedAt}
	fail := func(code, reason string) planned { return planned{change: ch, code: code, reason: reason} }
	if line.State != LineBooked || line.Deal == nil {
		return fail(events.ChangeUnknownLine, "line "+line.Key+" is not booked (state "+line.State+"): only a booked line can change")
	}
	state := line.LineState()
	if state == events.LineStateCancelled {
		return fail(events.ChangeInvalidState, "line "+line.Key+" is cancelled: a cancelled line changes no more")
	}
	iab := !line.Deal.Protocol.IsADCP()
	switch r.Action {
	case events.LinePause, events.LineResume:
		if iab {
			return fail(events.ChangeUnsupported, "the IAB Deals API has no pause: an IAB line can only be cancelled (or paused in the DSP)")
		}
		if (r.Action == events.LinePause) == (state == events.LineStatePaused) {
			return planned{change: ch, noop: true}
		}
	case events.LineCancel:
	case events.LineSetBudget:
		switch {
		case r.BudgetMicros <= 0:
			return fail(events.ChangeUnsupported, "set_budget needs a positive budget_micros (cancel the line to stop it)")
		case r.BudgetMicros == line.SpendMicros:
			return planned{change: ch, noop: true}
		case r.BudgetMicros > line.SpendMicros:
			more := r.BudgetMicros - line.SpendMicros
			if c := led.Committed(); c+more > led.BudgetMicros {
				return fail(events.ChangeOverBudget, fmt.Sprintf("raising line %s from %s to %s would commit %s of the campaign's %s budget",
					line.Key, line.SpendMicros, r.BudgetMicros, c+more, led.BudgetMicros))
			}
			ch.Reserved = more
		}
	default:
		return fail(events.ChangeUnsupported, "unknown action "+string(r.Action))
	}
	return planned{change: ch}
}

// errLineBusy retries a change while another change of the same line runs.
var errLineBusy = errors.New("booker: another change of this line is being applied")

// begin records the change in the ledger (or finds it there on a
// redelivery) and returns it with the line as written.
func (s *Service) begin(ctx context.Context, r events.LineChangeRequested) (*LineChange, *LedgerLine, error) {
	var ch *LineChange
	var line *LedgerLine
	_, err := s.Ledger.Update(ctx, r.CampaignID, func(led *Ledger, exists bool) (bool, error) {
		ch, line = nil, nil
		if !exists || led.Lines[r.LineKey] == nil {
			return false, nil
		}
		line = led.Lines[r.LineKey]
		if x := line.Changes[r.ChangeID]; x != nil {
			ch = x
			return false, nil
		}
		if line.PendingChange != "" {
			return false, fmt.Errorf("%w: %s", errLineBusy, line.PendingChange)
		}
		p := planChange(led, line, r)
		ch = p.change
		now := s.now()
		ch.BegunAt, ch.Key = now, "dealflow.chg."+events.ChildID(r.CampaignID+"/"+r.LineKey, StageChange, r.ChangeID)[:32]
		switch {
		case p.code != "":
			ch.State, ch.Failed = ChangeFailed, s.changeFailed(led, line, ch, p.code, p.reason)
		case p.noop:
			ch.State = ChangeApplied
			ch.Changed = s.lineChanged(led, line, ch)
			ch.Changed.Noop = true
		default:
			line.SpendMicros += ch.Reserved
			line.PendingChange = r.ChangeID
		}
		if line.Changes == nil {
			line.Changes = map[string]*LineChange{}
		}
		line.Changes[r.ChangeID] = ch
		line.UpdatedAt = now
		return true, nil
	})
	return ch, line, err
}

// finish writes a change's outcome to the line: its state and budget when
// applied (apply set them on line), the reservation released when it
// failed.
func (s *Service) finish(ctx context.Context, campaignID string, line *LedgerLine, ch *LineChange, apply func(l *LedgerLine)) (*LineChange, error) {
	return s.writeOutcome(ctx, campaignID, line.Key, ch, func(led *Ledger, l *LedgerLine, c *LineChange) {
		l.PendingChange = ""
		if c.State == ChangeFailed {
			l.SpendMicros -= c.Reserved
			c.Failed = s.changeFailed(led, l, c, c.Failed.Code, c.Failed.Reason)
			return
		}
		apply(l)
		c.Changed = s.lineChanged(led, l, c)
		s.namedOutputs(l, c)
	})
}

// writeOutcome writes change ch's outcome to its ledger line in one
// revision-checked write: write makes the line and the stored change of
// it. A change already done keeps the outcome stored first (a redelivery,
// or another booker, got there before); that stored change is returned.
func (s *Service) writeOutcome(ctx context.Context, campaignID, lineKey string, ch *LineChange, write func(led *Ledger, l *LedgerLine, c *LineChange)) (*LineChange, error) {
	var out *LineChange
	_, err := s.Ledger.Update(ctx, campaignID, func(led *Ledger, exists bool) (bool, error) {
		if !exists || led.Lines[lineKey] == nil {
			return false, fmt.Errorf("booker: ledger line %s of %s vanished", lineKey, campaignID)
		}
		l := led.Lines[lineKey]
		cur := l.Changes[ch.ChangeID]
		if cur == nil || cur.done() {
			out = cur
			return false, nil
		}
		c := *ch
		c.Sent = c.Sent || cur.Sent // written by markChangeSent meanwhile
		write(led, l, &c)
		l.Changes[c.ChangeID] = &c
		l.UpdatedAt = s.now()
		out = &c
		return true, nil
	})
	return out, err
}

// lineChanged is the LineChanged of a change applied to line l.
func (s *Service) lineChanged(led *Ledger, l *LedgerLine, ch *LineChange) *events.LineChanged {
	d := l.Deal
	out := &events.LineChanged{CampaignID: d.CampaignID, ChangeID: ch.ChangeID, LineKey: l.Key, Action: ch.Action, RequestedBy: ch.RequestedBy,
		ReallocationRevision: ch.Revision, SellerURL: d.SellerURL, SellerName: d.SellerName, Protocol: d.Protocol.Or(), PackageID: d.PackageID,
		DealID: d.DealID, MediaBuyID: d.MediaBuyID, SellerPackageID: d.SellerPackageID, Revision: l.MediaBuyRevision, State: l.LineState(),
		BudgetBeforeMicros: ch.BudgetBefore, BudgetAfterMicros: l.SpendMicros, CommittedMicros: led.Committed(), BudgetMicros: led.BudgetMicros,
		Reason: ch.Outcome, AppliedAt: s.now()}
	if ch.DealsCancelled || out.State == events.LineStateCancelled {
		out.DeliveredSpendMicros = l.DeliveredMicros
	}
	if out.Revision == 0 {
		out.Revision = d.Revision
	}
	if !d.Protocol.IsADCP() {
		for _, x := range l.Deals() {
			out.DealIDs = append(out.DealIDs, x.DealID)
		}
		if ch.Added != nil {
			out.AddedDealID = ch.Added.DealID
		}
	}
	return out
}

// changeFailed is the LineChangeFailed of a change of line l.
func (s *Service) changeFailed(led *Ledger, l *LedgerLine, ch *LineChange, code, reason string) *events.LineChangeFailed {
	f := &events.LineChangeFailed{CampaignID: "", ChangeID: ch.ChangeID, LineKey: l.Key, Action: ch.Action, RequestedBy: ch.RequestedBy,
		ReallocationRevision: ch.Revision, SellerURL: l.SellerURL, Protocol: l.Protocol, Code: code, Reason: events.ShortReason(reason),
		BudgetMicros: led.BudgetMicros, CommittedMicros: led.Committed(), FailedAt: s.now()}
	if l.Deal != nil {
		f.CampaignID = l.Deal.CampaignID
	}
	return f
}

// namedOutputs are the facts a change states besides LineChanged.
func (s *Service) namedOutputs(l *LedgerLine, ch *LineChange) {
	d, now := l.Deal, s.now()
	switch {
	case ch.Action == events.LinePause:
		ch.Paused = &events.LinePaused{CampaignID: d.CampaignID, ChangeID: ch.ChangeID, LineKey: l.Key, SellerURL: d.SellerURL, Protocol: d.Protocol.Or(),
			PackageID: d.PackageID, MediaBuyID: d.MediaBuyID, SellerPackageID: d.SellerPackageID, RequestedBy: ch.RequestedBy, Reason: ch.Reason, PausedAt: now}
	case ch.Action == events.LineResume:
		ch.Resumed = &events.LineResumed{CampaignID: d.CampaignID, ChangeID: ch.ChangeID, LineKey: l.Key, SellerURL: d.SellerURL, Protocol: d.Protocol.Or(),
			PackageID: d.PackageID, MediaBuyID: d.MediaBuyID, SellerPackageID: d.SellerPackageID, RequestedBy: ch.RequestedBy, Reason: ch.Reason, ResumedAt: now}
	case l.LineState() == events.LineStateCancelled, ch.DealsCancelled:
		// Every deal the change cancelled: all of the line's, but the
		// one an IAB decrease booked for the remainder.
		for _, x := range l.Deals() {
			if ch.Added != nil && x.DealID == ch.Added.DealID {
				continue
			}
			ch.Cancelled = append(ch.Cancelled, events.DealCancelled{CampaignID: d.CampaignID, ChangeID: ch.ChangeID, LineKey: l.Key, SellerURL: x.SellerURL,
				Protocol: x.Protocol.Or(), PackageID: x.PackageID, DealID: x.DealID, MediaBuyID: x.MediaBuyID, SellerPackageID: x.SellerPackageID,
				BookedSpendMicros: ch.BudgetBefore, DeliveredSpendMicros: l.DeliveredMicros, RequestedBy: ch.RequestedBy, Reason: ch.Reason, CancelledAt: now})
		}
	}
}

// changeEventID is the id of a change's output: derived from the campaign,
// the change and the output alone, so every delivery of the request (and
// any copy of it published under another id) publishes the same events.
func changeEventID(campaignID, changeID, key string) string {
	return events.ChildID("line-change/"+campaignID+"/"+changeID, StageChange, key)
}

// outputs are the events of a finished change.
func outputs(in events.Event, ch *LineChange) ([]events.Event, error) {
	var out []events.Event
	add := func(k events.Kind, key string, data any) error {
		e, err := events.Derive(in, k, StageChange, key, data)
		if err != nil {
			return err
		}
		e.SetID(changeEventID(in.Subject(), ch.ChangeID, key))
		out = append(out, e)
		return nil
	}
	var err error
	switch {
	case ch.State == ChangeUnresolved:
		// The report that the outcome is unknown; the final outcome
		// follows under its own key.
		return out, add(events.KindLineChangeFailed, "unresolved", *ch.Failed)
	case ch.Failed != nil:
		return out, add(events.KindLineChangeFailed, "failed", *ch.Failed)
	}
	if ch.Added != nil {
		err = errors.Join(err, add(events.KindDealBooked, "deal", *ch.Added))
	}
	if ch.Changed != nil {
		err = errors.Join(err, add(events.KindLineChanged, "changed", *ch.Changed))
	}
	if ch.Paused != nil {
		err = errors.Join(err, add(events.KindLinePaused, "paused", *ch.Paused))
	}
	if ch.Resumed != nil {
		err = errors.Join(err, add(events.KindLineResumed, "resumed", *ch.Resumed))
	}
	for i, c := range ch.Cancelled {
		err = errors.Join(err, add(events.KindDealCancelled, fmt.Sprint("cancelled/", i), c))
	}
	return out, err
}

// HandleChange is the change consumer: it applies one LineChangeRequested
// to its line, once (see the comment at the top of this file).
func (s *Service) HandleChange(ctx context.Context, in events.Event, p *events.LineChangeRequested) ([]events.Event, error) {
	r := *p
	if r.CampaignID != in.Subject() {
		return nil, bus.Permanent(fmt.Errorf("%w: change names campaign %q on subject %q", events.ErrInvalid, r.CampaignID, in.Subject()))
	}
	if r.ChangeID == "" || r.LineKey == "" {
		return nil, bus.Permanent(fmt.Errorf("%w: a line change needs change_id and line_key", events.ErrInvalid))
	}
	if r.RequestedAt.IsZero() {
		r.RequestedAt = in.Time()
	}
	log := bus.CampaignLogger(ctx, s.Log, r.CampaignID).With().Str("line_key", r.LineKey).Str("change_id", r.ChangeID).
		Str("action", string(r.Action)).Logger()
	if r.Action == events.LineAdd {
		return s.handleAdd(ctx, in, r, log)
	}
	ch, line, err := s.begin(ctx, r)
	if err != nil {
		return nil, err
	}
	if line == nil {
		f := events.LineChangeFailed{CampaignID: r.CampaignID, ChangeID: r.ChangeID, LineKey: r.LineKey, Action: r.Action, RequestedBy: r.RequestedBy,
			ReallocationRevision: r.ReallocationRevision, Code: events.ChangeUnknownLine, Reason: "campaign " + r.CampaignID + " has no booked line " + r.LineKey,
			FailedAt: s.now()}
		log.Warn().Msg("line change for an unknown line")
		return outputs(in, &LineChange{ChangeID: r.ChangeID, Failed: &f})
	}
	if !ch.done() {
		res, err := s.apply(ctx, r, line, ch)
		if err == nil {
			ch = res
		} else {
			if s.now().Sub(ch.BegunAt) < s.horizon() {
				log.Warn().Err(err).Msg("line change not settled; retrying with the same key")
				return nil, err
			}
			// Past the horizon the outcome stays unknown: reported failed,
			// an increase's reservation kept (the seller may have applied
			// it), nothing lowered.
			x := *ch
			x.State, x.Failed = ChangeFailed, &events.LineChangeFailed{Code: events.ChangeSellerUnreachable,
				Reason: "no definite answer from the seller within " + s.horizon().String() + ": " + err.Error()}
			x.Reserved = 0
			ch = &x
		}
		if ch, err = s.finish(ctx, r.CampaignID, line, ch, ch.set); err != nil {
			return nil, err
		}
		if ch.Failed != nil {
			log.Warn().Str("code", ch.Failed.Code).Str("reason", ch.Failed.Reason).Msg("line change failed")
		} else {
			log.Info().Str("state", string(ch.Changed.State)).Str("budget", ch.Changed.BudgetAfterMicros.String()).
				Str("committed", ch.Changed.CommittedMicros.String()).Msg("line changed at the seller")
		}
	}
	return outputs(in, ch)
}

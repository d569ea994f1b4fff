// Package reallocator is the stage that acts on pacing: it follows each
// campaign's booked lines (DealBooked, the latest DeliveryReported of each,
// the LineChanged of each change), and on a PacingDeviation proposes a
// reallocation as a new revision — the budget a line cannot deliver moved
// to lines on plan, an overspending line paused (Propose) — once per
// deviation episode and never while another revision of the campaign is
// pending. An approved revision (automatically when the brief asked for
// auto-approval, else through the bookings API) is applied as
// LineChangeRequested commands the booker carries out: decreases and pauses
// first, increases only once their decreases are LineChanged, so the
// campaign's committed spend never rises above its budget; it ends
// ReallocationApplied or ReallocationFailed. Its state is the
// dealflow_reallocations bucket; nothing waits in a timer.
package reallocator

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/rs/zerolog"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/campaign"
	"github.com/dealflow/dealflow/pkg/events"
)

// Stage is the reallocator's durable consumer.
const Stage = "reallocator"

// Subjects are the reallocator's inputs.
func Subjects() []string {
	return []string{events.KindDealBooked.Filter(), events.KindDeliveryReported.Filter(), events.KindPacingDeviation.Filter(),
		events.KindReallocationApproved.Filter(), events.KindReallocationRejected.Filter(),
		events.KindLineChanged.Filter(), events.KindLineChangeFailed.Filter()}
}

// StageConfig is the reallocator's consumer: never dead-lettered (a
// revision being applied must see every outcome), retried from 1s.
func StageConfig() bus.StageConfig {
	return bus.StageConfig{Name: Stage, Subjects: Subjects(), Workers: 4, AckWait: 30 * time.Second,
		MaxDeliver: -1, RetryBase: time.Second, RetryMax: time.Minute}
}

// Campaigns reads a campaign's record (its budget and auto-approval) and
// its quotes (the remaining ones a reallocation may book); *campaign.Store
// is one.
type Campaigns interface {
	Get(ctx context.Context, id string) (*campaign.Campaign, error)
	LoadQuotes(ctx context.Context, c *campaign.Campaign) error
}

// Observer is told about the reallocator's work (telemetry.Metrics
// implements it).
type Observer interface {
	ObserveReallocation(outcome string)
}

// Service is the reallocator.
type Service struct {
	Records   *Records
	Campaigns Campaigns
	Log       zerolog.Logger
	Metrics   Observer
	Now       func() time.Time
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Service) observe(outcome string) {
	if s.Metrics != nil {
		s.Metrics.ObserveReallocation(outcome)
	}
}

// Handle is the reallocator's handler.
func (s *Service) Handle(ctx context.Context, in events.Event, payload any) ([]events.Event, error) {
	switch p := payload.(type) {
	case *events.DealBooked:
		return nil, s.booked(ctx, p)
	case *events.DeliveryReported:
		return s.reported(ctx, in, p)
	case *events.PacingDeviation:
		return s.deviation(ctx, in, p)
	case *events.ReallocationApproved:
		return s.approved(ctx, in, p)
	case *events.ReallocationRejected:
		return nil, s.rejected(ctx, p)
	case *events.LineChanged:
		return s.changed(ctx, in, p.CampaignID, p.ChangeID, p, nil)
	case *events.LineChangeFailed:
		return s.changed(ctx, in, p.CampaignID, p.ChangeID, nil, p)
	}
	return nil, bus.Permanent(fmt.Errorf("%w: the reallocator does not handle %s", events.ErrInvalid, in.Type()))
}

func lineOf(r *Record, key string) *Line {
	l := r.Lines[key]
	if l == nil {
		l = &Line{LineKey: key, Seq: -1}
		r.Lines[key] = l
	}
	return l
}

// booked learns a booked line and its budget. A line already known (a
// redelivery, or the additional deal of an IAB budget increase) keeps the
// budget the reallocator knows.
func (s *Service) booked(ctx context.Context, d *events.DealBooked) error {
	key := campaign.DealLineKey(d)
	_, err := s.Records.update(ctx, d.CampaignID, func(r *Record, _ bool) (bool, error) {
		if l := r.Lines[key]; l != nil && l.Budget > 0 {
			return false, nil
		}
		l := lineOf(r, key)
		l.SellerURL, l.SellerName, l.PackageID, l.Budget = d.SellerURL, d.SellerName, d.PackageID, d.SpendMicros
		return true, nil
	})
	return err
}

// snapshot folds a line's snapshot into its record; an older one than
// known changes nothing.
func snapshot(r *Record, key string, seq int, sellerURL, sellerName, pkg string, planned events.Micros, status events.PacingStatus,
	spend events.Micros, elapsed float64, final bool) bool {
	l := lineOf(r, key)
	if seq <= l.Seq && !(seq == l.Seq && final && !l.Final) {
		return false
	}
	if l.SellerURL == "" {
		l.SellerURL, l.SellerName, l.PackageID = sellerURL, sellerName, pkg
	}
	if l.Budget == 0 {
		l.Budget = planned
	}
	l.Seq, l.Status, l.Final, l.Elapsed = seq, status, l.Final || final, elapsed
	if status != events.PacingNotReporting || spend > l.Spend {
		l.Spend = spend
	}
	return true
}

// reported folds a snapshot into the line's record and, for a line a
// revision paused for its pace whose plan has now caught up with it,
// proposes its resume (Resume), once per pause, when no other revision is
// pending (a later snapshot looks again).
func (s *Service) reported(ctx context.Context, in events.Event, d *events.DeliveryReported) ([]events.Event, error) {
	now := s.now()
	var proposed *Revision
	var plan Plan
	rec, err := s.Records.update(ctx, d.CampaignID, func(r *Record, _ bool) (bool, error) {
		proposed, plan = nil, Plan{}
		if !snapshot(r, d.LineKey, d.Seq, d.SellerURL, d.SellerName, d.PackageID, d.PlannedSpendMicros, d.Status, d.SpendMicros, d.FlightElapsed, d.Final) {
			return false, nil
		}
		l := r.Lines[d.LineKey]
		if l.PausedBy == 0 || !r.Loaded {
			return true, nil
		}
		key := ResumeKey(d.LineKey, l.PausedBy)
		if _, done := r.Episodes[key]; done || r.Pending() != nil {
			return true, nil
		}
		plan = Resume(views(r), *d, l.State, l.PausedBy)
		if plan.Empty() {
			if plan.Settled {
				r.Episodes[key] = 0
			}
			return true, nil
		}
		proposed = r.propose(in, plan, events.ReallocationProposed{CampaignID: d.CampaignID, LineKey: d.LineKey, Direction: events.DeviationUnder,
			SinceSeq: d.Seq, Seq: d.Seq}, key, now)
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	if proposed == nil {
		// A redelivery of the snapshot whose first handling proposed a
		// resume (its publish cut short) publishes it again.
		for _, v := range rec.Revisions {
			if v.ProposedBy == in.ID() {
				return s.proposalEvents(in, v)
			}
		}
		return nil, nil
	}
	s.observe("proposed")
	log := bus.CampaignLogger(ctx, s.Log, d.CampaignID)
	log.Info().Str("stage", Stage).Str("line_key", d.LineKey).Int("revision", proposed.Revision).
		Bool("auto_approve", proposed.Proposal.AutoApprove).Str("reason", plan.Reason).Msg("resume of a paused line proposed")
	return s.proposalEvents(in, proposed)
}

func statusOf(d events.Deviation) events.PacingStatus {
	switch d {
	case events.DeviationOver:
		return events.PacingOver
	case events.DeviationNotReporting:
		return events.PacingNotReporting
	}
	return events.PacingUnder
}

// views are the record's lines for the planner.
func views(r *Record) []LineView {
	out := make([]LineView, 0, len(r.Lines))
	for _, l := range r.Lines {
		out = append(out, LineView{Key: l.LineKey, SellerURL: l.SellerURL, SellerName: l.SellerName, PackageID: l.PackageID, Budget: l.Budget,
			State: l.State, Reported: l.Seq >= 0, Status: l.Status, Spend: l.Spend, Elapsed: l.Elapsed, Final: l.Final})
	}
	return out
}

// deviation proposes a reallocation for a deviation episode not yet
// settled, when no other revision of the campaign is pending.
func (s *Service) deviation(ctx context.Context, in events.Event, d *events.PacingDeviation) ([]events.Event, error) {
	log := bus.CampaignLogger(ctx, s.Log, d.CampaignID).With().Str("stage", Stage).Str("line_key", d.LineKey).
		Str("direction", string(d.Direction)).Int("since_seq", d.SinceSeq).Logger()
	rec, found, err := s.Records.Get(ctx, d.CampaignID)
	if err != nil {
		return nil, err
	}
	if found {
		for _, v := range rec.Revisions {
			if v.ProposedBy == in.ID() {
				return s.proposalEvents(in, v) // this deviation's first handling was cut short
			}
		}
	}
	var budget, sellerCap, maxCPM events.Micros
	var auto, loaded bool
	var quotes []QuoteView
	// A line that cannot deliver may give budget to a remaining quote: the
	// campaign's quotes are read for it (one read per quote, only for an
	// under or not_reporting deviation).
	if !found || !rec.Loaded || d.Direction != events.DeviationOver {
		c, err := s.Campaigns.Get(ctx, d.CampaignID)
		switch {
		case errors.Is(err, campaign.ErrNotFound):
		case err != nil:
			return nil, err
		case c.Request != nil:
			budget, sellerCap, auto, loaded = c.Request.Brief.BudgetMicros, c.Request.Brief.PerSellerCapMicros, c.Request.AutoApprove, true
			maxCPM = c.Request.Brief.KPIs.MaxCPMMicros
			if d.Direction != events.DeviationOver {
				if err := s.Campaigns.LoadQuotes(ctx, c); err != nil {
					return nil, err
				}
				quotes = quoteViews(c)
			}
		}
	}
	now := s.now()
	ep := EpisodeKey(d.LineKey, d.Direction, d.SinceSeq)
	var (
		proposed *Revision
		plan     Plan
		note     string
	)
	_, err = s.Records.update(ctx, d.CampaignID, func(r *Record, _ bool) (bool, error) {
		proposed, plan, note = nil, Plan{}, ""
		changed := snapshot(r, d.LineKey, d.Seq, d.SellerURL, d.SellerName, d.PackageID, d.PlannedSpendMicros, statusOf(d.Direction), d.SpendMicros, d.FlightElapsed, d.Final)
		if loaded && !r.Loaded {
			r.Loaded, r.Budget, r.SellerCap, r.AutoApprove, changed = true, budget, sellerCap, auto, true
		}
		if _, done := r.Episodes[ep]; done {
			note = "episode already settled"
			return changed, nil
		}
		if p := r.Pending(); p != nil {
			note = "revision " + strconv.Itoa(p.Revision) + " is pending; a later snapshot of this episode will be looked at again"
			return changed, nil
		}
		if !r.Loaded {
			note = "the campaign's budget is not known yet"
			return changed, nil
		}
		plan = Propose(Input{Budget: r.Budget, SellerCap: r.SellerCap, MaxCPM: maxCPM, Tolerance: d.Tolerance, Trigger: *d, Lines: views(r),
			Quotes: remaining(r, quotes)})
		if plan.Empty() {
			if plan.Settled {
				r.Episodes[ep] = 0
				changed = true
			}
			return changed, nil
		}
		proposed = r.propose(in, plan, events.ReallocationProposed{CampaignID: d.CampaignID, LineKey: d.LineKey, Direction: d.Direction,
			SinceSeq: d.SinceSeq, Seq: d.Seq}, ep, now)
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	if proposed == nil {
		if note == "" {
			note = plan.Reason
		}
		log.Debug().Str("why", note).Msg("no reallocation proposed")
		return nil, nil
	}
	s.observe("proposed")
	log.Info().Int("revision", proposed.Revision).Int("moves", len(plan.Moves)).Int("pauses", len(plan.Pauses)).
		Bool("auto_approve", proposed.Proposal.AutoApprove).Str("reason", plan.Reason).Msg("reallocation proposed")
	return s.proposalEvents(in, proposed)
}

// propose appends the next revision, proposing plan for the trigger named
// in p (campaign, line, direction, since_seq, seq), and settles the episode
// key with it. The committed spend is the booker's last word when it is
// higher than the lines' budgets summed.
func (r *Record) propose(in events.Event, plan Plan, p events.ReallocationProposed, key string, now time.Time) *Revision {
	n := len(r.Revisions) + 1
	committed := max(r.Committed, plan.CommittedBefore)
	p.Revision, p.Moves, p.Pauses, p.Resumes, p.Lines = n, plan.Moves, plan.Pauses, plan.Resumes, plan.Lines
	p.BudgetMicros, p.CommittedBeforeMicros, p.CommittedAfterMicros = r.Budget, committed, committed-(plan.CommittedBefore-plan.CommittedAfter)
	p.AutoApprove, p.Reason, p.ProposedAt = r.AutoApprove, plan.Reason, now
	v := &Revision{Revision: n, Status: StatusProposed, ProposedBy: in.ID(), Proposal: p}
	r.Revisions = append(r.Revisions, v)
	r.Episodes[key] = n
	return v
}

// EventID is the id of a revision's event name: one per revision and
// name, whatever input publishes it.
func EventID(campaignID string, revision int, name string) string {
	return events.ChildID(campaignID, Stage, "revision/"+strconv.Itoa(revision)+"/"+name)
}

func derive(in events.Event, k events.Kind, campaignID string, revision int, name string, payload any) (events.Event, error) {
	e, err := events.Derive(in, k, Stage, name, payload)
	if err != nil {
		return events.Event{}, err
	}
	e.SetID(EventID(campaignID, revision, name))
	return e, nil
}

// proposalEvents are a proposal's events: ReallocationProposed, and its
// automatic approval when the brief asked for one.
func (s *Service) proposalEvents(in events.Event, v *Revision) ([]events.Event, error) {
	p := v.Proposal
	e, err := derive(in, events.KindReallocationProposed, p.CampaignID, p.Revision, "proposed", p)
	if err != nil {
		return nil, err
	}
	out := []events.Event{e}
	if p.AutoApprove {
		a, err := derive(in, events.KindReallocationApproved, p.CampaignID, p.Revision, "approved",
			events.ReallocationApproved{CampaignID: p.CampaignID, Revision: p.Revision, ApprovedBy: "auto", ApprovedAt: p.ProposedAt})
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// rejected settles a proposed revision as rejected.
func (s *Service) rejected(ctx context.Context, p *events.ReallocationRejected) error {
	log := bus.CampaignLogger(ctx, s.Log, p.CampaignID).With().Str("stage", Stage).Int("revision", p.Revision).Logger()
	won := false
	_, err := s.Records.update(ctx, p.CampaignID, func(r *Record, _ bool) (bool, error) {
		won = false
		v := r.Revision(p.Revision)
		if v == nil || v.Status != StatusProposed {
			return false, nil
		}
		at := p.RejectedAt
		v.Status, v.DecidedBy, v.DecidedAt, v.Reason, v.EndedAt = StatusRejected, p.RejectedBy, &at, p.Reason, &at
		won = true
		return true, nil
	})
	if err != nil {
		return err
	}
	if won {
		s.observe("rejected")
		log.Info().Str("by", p.RejectedBy).Msg("reallocation rejected")
	} else {
		log.Info().Msg("rejection of a reallocation that is not proposed (decided already, or unknown); ignored")
	}
	return nil
}

// approved starts applying a proposed revision: its decreases and pauses
// are requested (phase 1).
func (s *Service) approved(ctx context.Context, in events.Event, p *events.ReallocationApproved) ([]events.Event, error) {
	log := bus.CampaignLogger(ctx, s.Log, p.CampaignID).With().Str("stage", Stage).Int("revision", p.Revision).Logger()
	now := s.now()
	var v *Revision
	rec, err := s.Records.update(ctx, p.CampaignID, func(r *Record, _ bool) (bool, error) {
		v = nil
		x := r.Revision(p.Revision)
		if x == nil || x.Status != StatusProposed {
			return false, nil
		}
		at := p.ApprovedAt
		x.Status, x.DecidedBy, x.DecidedAt, x.ApprovedBy, x.Phase1At = StatusApplying, p.ApprovedBy, &at, in.ID(), now
		x.Changes = phase1(r, x)
		v = x
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	if v == nil {
		if x := rec.Revision(p.Revision); x != nil && x.ApprovedBy == in.ID() {
			return s.requests(in, x, 1, x.Phase1At) // redelivered: the same requests again
		}
		log.Info().Msg("approval of a reallocation that is not proposed (decided already, or unknown); ignored")
		return nil, nil
	}
	s.observe("approved")
	log.Info().Str("by", p.ApprovedBy).Int("changes", len(v.Changes)).Msg("reallocation approved; decreases and pauses requested")
	return s.requests(in, v, 1, v.Phase1At)
}

// phase1 are a revision's decreases (one per line giving budget up, by
// the sum of its moves) and pauses.
func phase1(r *Record, v *Revision) []Change {
	var out []Change
	add := func(c events.ReallocationChange) {
		c.ChangeID, c.Outcome = ChangeID(r.CampaignID, v.Revision, len(out)), "pending"
		out = append(out, Change{ReallocationChange: c, Phase: 1})
	}
	seen := map[string]bool{}
	for _, m := range v.Proposal.Moves {
		if seen[m.FromLineKey] {
			continue
		}
		seen[m.FromLineKey] = true
		var sum events.Micros
		for _, x := range v.Proposal.Moves {
			if x.FromLineKey == m.FromLineKey {
				sum += x.AmountMicros
			}
		}
		budget := max(lineOf(r, m.FromLineKey).Budget-sum, 0)
		add(events.ReallocationChange{LineKey: m.FromLineKey, Action: events.LineSetBudget, BudgetMicros: budget,
			Reason: fmt.Sprintf("Reallocation %d: %s of this line's budget moves to lines delivering on plan. %s", v.Revision, sum, m.Reason)})
	}
	for _, x := range v.Proposal.Pauses {
		add(events.ReallocationChange{LineKey: x.LineKey, Action: events.LinePause, Reason: fmt.Sprintf("Reallocation %d: %s", v.Revision, x.Reason)})
	}
	for _, x := range v.Proposal.Resumes {
		add(events.ReallocationChange{LineKey: x.LineKey, Action: events.LineResume, Reason: fmt.Sprintf("Reallocation %d: %s", v.Revision, x.Reason)})
	}
	return out
}

// phase2 are a revision's increases: each receiving line's budget grows by
// the moves whose decrease was applied, and a move to a remaining quote is
// an add booking it as a new line (its key derived from the add's
// change_id); a move whose decrease failed is skipped.
func phase2(r *Record, v *Revision) []Change {
	freed := map[string]bool{}
	for _, c := range v.Changes {
		if c.Phase == 1 && c.Action == events.LineSetBudget && c.Outcome == "changed" {
			freed[c.LineKey] = true
		}
	}
	out := v.Changes
	seen := map[string]bool{}
	for _, m := range v.Proposal.Moves {
		to := target(m)
		if seen[to] {
			continue
		}
		seen[to] = true
		var sum events.Micros
		var why string
		for _, x := range v.Proposal.Moves {
			if target(x) == to && freed[x.FromLineKey] {
				sum += x.AmountMicros
				why = x.Reason
			}
		}
		id := ChangeID(r.CampaignID, v.Revision, len(out))
		c := events.ReallocationChange{ChangeID: id, LineKey: m.ToLineKey, Action: events.LineSetBudget}
		if m.ToQuote != nil {
			q := *m.ToQuote
			c.Action, c.LineKey, c.Quote = events.LineAdd, events.AddedLineKey(id), &q
		}
		switch {
		case sum == 0:
			c.Outcome, c.Code, c.Reason = "skipped", "decrease_failed", "The budget it was to receive was not freed: the decrease failed."
		case m.ToQuote != nil:
			c.Outcome, c.BudgetMicros = "pending", sum
			c.Reason = fmt.Sprintf("Reallocation %d: the remaining quote %s of %s is booked as a new line for %s. %s", v.Revision, m.ToQuote.PackageID,
				m.ToQuote.SellerURL, sum, why)
		default:
			c.Outcome, c.BudgetMicros = "pending", lineOf(r, m.ToLineKey).Budget+sum
			c.Reason = fmt.Sprintf("Reallocation %d: this line receives %s. %s", v.Revision, sum, why)
		}
		out = append(out, Change{ReallocationChange: c, Phase: 2})
	}
	return out
}

// target names what a move gives budget to: a booked line, or a remaining
// quote.
func target(m events.ReallocationMove) string {
	if m.ToQuote != nil {
		return "quote:" + m.ToQuote.SellerURL + "|" + m.ToQuote.PackageID
	}
	return m.ToLineKey
}

// requests are the LineChangeRequested of a revision's pending changes of
// one phase, under ids derived from their change ids.
func (s *Service) requests(in events.Event, v *Revision, phase int, at time.Time) ([]events.Event, error) {
	var out []events.Event
	for _, c := range v.Changes {
		if c.Phase != phase || c.Outcome == "skipped" {
			continue
		}
		req := events.LineChangeRequested{CampaignID: v.Proposal.CampaignID, ChangeID: c.ChangeID, LineKey: c.LineKey, Action: c.Action,
			BudgetMicros: c.BudgetMicros, Quote: c.Quote, Reason: c.Reason, RequestedBy: events.RequestedByReallocation, ReallocationRevision: v.Revision,
			RequestedAt: at}
		e, err := derive(in, events.KindLineChangeRequested, req.CampaignID, v.Revision, "change/"+c.ChangeID, req)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

func resolved(v *Revision, phase int) bool {
	for _, c := range v.Changes {
		if c.Phase == phase && c.Outcome == "pending" {
			return false
		}
	}
	return true
}

func hasPhase(v *Revision, phase int) bool {
	for _, c := range v.Changes {
		if c.Phase == phase {
			return true
		}
	}
	return false
}

// changed folds a line change's outcome: the line's budget and state, and,
// for a change of the revision being applied, its outcome; once every
// decrease has one the increases are requested, once every change has one
// the revision ends.
func (s *Service) changed(ctx context.Context, in events.Event, campaignID, changeID string, ok *events.LineChanged, failed *events.LineChangeFailed) ([]events.Event, error) {
	log := bus.CampaignLogger(ctx, s.Log, campaignID).With().Str("stage", Stage).Str("change_id", changeID).Logger()
	now := s.now()
	var (
		v          *Revision
		next, done bool
	)
	rec, err := s.Records.update(ctx, campaignID, func(r *Record, _ bool) (bool, error) {
		v, next, done = nil, false, false
		changed := false
		if ok != nil {
			l := lineOf(r, ok.LineKey)
			if l.SellerURL == "" {
				l.SellerURL, l.SellerName, l.PackageID = ok.SellerURL, ok.SellerName, ok.PackageID
			}
			l.Budget, l.State, r.Committed = ok.BudgetAfterMicros, ok.State, ok.CommittedMicros
			// Paused for its pace by a revision, the line is resumed by one
			// too; paused by the buyer, it is not. A budget change of a
			// paused line leaves who paused it as it was.
			switch {
			case ok.Noop:
			case ok.State != events.LineStatePaused:
				l.PausedBy = 0
			case ok.Action == events.LinePause && ok.RequestedBy == events.RequestedByReallocation:
				l.PausedBy = max(ok.ReallocationRevision, 1)
			case ok.Action == events.LinePause:
				l.PausedBy = 0
			}
			changed = true
		}
		x := r.Pending()
		if x == nil || x.Status != StatusApplying {
			return changed, nil
		}
		i := -1
		for j := range x.Changes {
			if x.Changes[j].ChangeID == changeID {
				i = j
			}
		}
		if i < 0 || x.Changes[i].Outcome != "pending" {
			return changed, nil
		}
		c := &x.Changes[i]
		if ok != nil {
			c.Outcome = "changed"
		} else {
			c.Outcome, c.Code, c.Reason = "failed", failed.Code, failed.Reason
		}
		v = x
		if resolved(x, 1) && !hasPhase(x, 2) {
			x.Changes = phase2(r, x)
			x.Phase2By, x.Phase2At = in.ID(), now
			next = true
		}
		if resolved(x, 1) && resolved(x, 2) {
			end(x, now)
			x.EndedBy, done = in.ID(), true
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	if v == nil {
		// A redelivery of the input that moved a revision on publishes
		// what it published then.
		for _, x := range rec.Revisions {
			var out []events.Event
			if x.Phase2By == in.ID() {
				reqs, err := s.requests(in, x, 2, x.Phase2At)
				if err != nil {
					return nil, err
				}
				out = append(out, reqs...)
			}
			if x.EndedBy == in.ID() {
				e, err := s.endEvent(in, rec, x)
				if err != nil {
					return nil, err
				}
				out = append(out, e)
			}
			if len(out) > 0 {
				return out, nil
			}
		}
		return nil, nil
	}
	log = log.With().Int("revision", v.Revision).Logger()
	var out []events.Event
	if next && !done {
		reqs, err := s.requests(in, v, 2, v.Phase2At)
		if err != nil {
			return nil, err
		}
		log.Info().Int("increases", len(reqs)).Msg("reallocation: decreases done; increases requested")
		out = append(out, reqs...)
	}
	if done {
		e, err := s.endEvent(in, rec, v)
		if err != nil {
			return nil, err
		}
		s.observe(v.Status)
		log.Info().Str("status", v.Status).Int64("committed_micros", int64(rec.Committed)).Msg("reallocation ended")
		out = append(out, e)
	}
	return out, nil
}

// end settles a revision whose changes all have an outcome.
func end(v *Revision, now time.Time) {
	outcome := map[string]string{}
	added := map[string]string{} // a remaining quote's target: its new line
	for _, c := range v.Changes {
		switch {
		case c.Action == events.LineSetBudget:
			outcome[strconv.Itoa(c.Phase)+"/"+c.LineKey] = c.Outcome
		case c.Action == events.LineAdd && c.Quote != nil:
			to := target(events.ReallocationMove{ToQuote: c.Quote})
			outcome["2/"+to], added[to] = c.Outcome, c.LineKey
		}
	}
	v.Status = StatusApplied
	for _, c := range v.Changes {
		if c.Outcome != "changed" {
			v.Status = StatusFailed
		}
	}
	v.Moves = nil
	for _, m := range v.Proposal.Moves {
		o := events.ReallocationMoveOutcome{FromLineKey: m.FromLineKey, ToLineKey: m.ToLineKey, ToQuote: m.ToQuote, AmountMicros: m.AmountMicros, Outcome: "applied"}
		if m.ToQuote != nil {
			o.ToLineKey = added[target(m)]
		}
		switch {
		case outcome["1/"+m.FromLineKey] != "changed":
			o.Outcome, o.Reason = "failed", "the decrease of the line giving it up failed: nothing moved"
		case outcome["2/"+target(m)] != "changed":
			o.Outcome, o.Reason = "failed", "the increase failed: the budget was freed and not spent"
		}
		v.Moves = append(v.Moves, o)
	}
	v.EndedAt = &now
}

// endEvent is a revision's ReallocationApplied or ReallocationFailed.
func (s *Service) endEvent(in events.Event, r Record, v *Revision) (events.Event, error) {
	changes := make([]events.ReallocationChange, len(v.Changes))
	var failed []string
	for i, c := range v.Changes {
		changes[i] = c.ReallocationChange
		if c.Outcome != "changed" {
			failed = append(failed, c.LineKey+" "+string(c.Action)+" "+c.Outcome)
		}
	}
	at := s.now()
	if v.EndedAt != nil {
		at = *v.EndedAt
	}
	if v.Status == StatusApplied {
		return derive(in, events.KindReallocationApplied, r.CampaignID, v.Revision, "applied", events.ReallocationApplied{CampaignID: r.CampaignID,
			Revision: v.Revision, Moves: v.Moves, Changes: changes, CommittedMicros: r.Committed, BudgetMicros: r.Budget, AppliedAt: at})
	}
	return derive(in, events.KindReallocationFailed, r.CampaignID, v.Revision, "failed", events.ReallocationFailed{CampaignID: r.CampaignID,
		Revision: v.Revision, Moves: v.Moves, Changes: changes, CommittedMicros: r.Committed, BudgetMicros: r.Budget,
		Reason: fmt.Sprintf("%d of %d changes not applied: %v", len(failed), len(changes), failed), FailedAt: at})
}

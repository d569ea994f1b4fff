package events

import "time"

// Reallocation: when a booked line cannot deliver its budget (a pacing
// deviation under, or a seller that stopped reporting), the reallocator
// proposes to move what it cannot spend to lines of the same campaign that
// deliver on plan or ahead; a line that overspends is paused, and resumed
// once its plan has caught up with what it spent. A proposal is
// a new revision of the campaign's portfolio (1, 2, ... per campaign), with
// a reason per move; it is approved (automatically when the brief asked for
// auto-approval, else through the bookings API) or rejected, then applied
// as LineChangeRequested commands — decreases and pauses first, increases
// only once their decreases are LineChanged — and ends ReallocationApplied
// or ReallocationFailed.

// ReallocationMove moves budget from one booked line to another, or to a
// remaining quote of the campaign booked as a new line (to_quote).
type ReallocationMove struct {
	FromLineKey  string    `json:"from_line_key" desc:"The line that gives budget up (DealBooked.line_key)."`
	ToLineKey    string    `json:"to_line_key" desc:"The line that receives it; empty for a move to a remaining quote (to_quote), whose new line's key is only known once its add is requested."`
	ToQuote      *QuoteRef `json:"to_quote,omitempty" desc:"A remaining quote of the campaign (not booked) that receives the budget as a new line: the budget the lines on plan cannot take."`
	AmountMicros Micros    `json:"amount_micros" desc:"How much budget moves, in micros."`
	Reason       string    `json:"reason" desc:"Why, in a sentence."`
}

// ReallocationPause pauses a line that overspends.
type ReallocationPause struct {
	LineKey string `json:"line_key"`
	Reason  string `json:"reason"`
}

// ReallocationResume resumes a line an earlier reallocation paused for
// delivering ahead of its plan, once its plan has caught up with it: a
// pause for pace is a throttle, not a cancellation, and a line left paused
// would leave its budget unspent.
type ReallocationResume struct {
	LineKey          string `json:"line_key"`
	PausedByRevision int    `json:"paused_by_revision" desc:"The reallocation revision that paused the line."`
	Reason           string `json:"reason"`
}

// ReallocationLine is one line a reallocation changes: its budget before and
// after (a paused line keeps its budget).
type ReallocationLine struct {
	LineKey            string `json:"line_key"`
	SellerURL          string `json:"seller_url"`
	SellerName         string `json:"seller_name,omitempty"`
	PackageID          string `json:"package_id"`
	BudgetBeforeMicros Micros `json:"budget_before_micros"`
	BudgetAfterMicros  Micros `json:"budget_after_micros"`
	Pause              bool   `json:"pause,omitempty" desc:"The line is to be paused."`
	Resume             bool   `json:"resume,omitempty" desc:"The line, paused by an earlier reallocation, is to be resumed."`
	NewLine            bool   `json:"new_line,omitempty" desc:"A remaining quote booked as a new line (line_key empty until its add is requested; budget before 0)."`
}

// ReallocationProposed proposes a reallocation of a campaign's booked
// budget, triggered by one deviation episode of one line.
type ReallocationProposed struct {
	CampaignID string `json:"campaign_id"`
	Revision   int    `json:"revision" desc:"The reallocation's revision: 1, 2, ... per campaign; at most one is pending at a time."`
	// The deviation episode that triggered it.
	LineKey   string    `json:"line_key" desc:"The deviating line (PacingDeviation.line_key)."`
	Direction Deviation `json:"direction" desc:"The episode's direction: under, over or not_reporting. A resume is under: the paused line is no longer ahead of its plan (since_seq and seq are the snapshot that shows it)."`
	SinceSeq  int       `json:"since_seq" desc:"The episode's first snapshot: (line_key, direction, since_seq) names it; one proposal per episode."`
	Seq       int       `json:"seq" desc:"The snapshot the proposal was made on."`

	Moves                 []ReallocationMove   `json:"moves,omitempty"`
	Pauses                []ReallocationPause  `json:"pauses,omitempty"`
	Resumes               []ReallocationResume `json:"resumes,omitempty"`
	Lines                 []ReallocationLine   `json:"lines" desc:"Every line the proposal changes, with its budget before and after."`
	BudgetMicros          Micros               `json:"budget_micros" desc:"The campaign's budget."`
	CommittedBeforeMicros Micros               `json:"committed_before_micros" desc:"The campaign's booked line budgets, summed, before the reallocation."`
	CommittedAfterMicros  Micros               `json:"committed_after_micros" desc:"After it: moves take from one line what they give another, so never more than before."`
	AutoApprove           bool                 `json:"auto_approve,omitempty" desc:"The brief asked for auto-approval: a ReallocationApproved by auto follows."`
	Reason                string               `json:"reason" desc:"The proposal in a sentence."`
	ProposedAt            time.Time            `json:"proposed_at"`
}

// ReallocationApproved approves a proposed reallocation for applying.
type ReallocationApproved struct {
	CampaignID string    `json:"campaign_id"`
	Revision   int       `json:"revision"`
	ApprovedBy string    `json:"approved_by" desc:"auto (the brief's auto-approval) or api."`
	ApprovedAt time.Time `json:"approved_at"`
}

// ReallocationRejected records that the buyer refused a proposed
// reallocation; nothing is changed.
type ReallocationRejected struct {
	CampaignID string    `json:"campaign_id"`
	Revision   int       `json:"revision"`
	RejectedBy string    `json:"rejected_by"`
	Reason     string    `json:"reason,omitempty"`
	RejectedAt time.Time `json:"rejected_at"`
}

// ReallocationChange is one line change of a reallocation being applied,
// and its outcome.
type ReallocationChange struct {
	ChangeID     string     `json:"change_id" desc:"The LineChangeRequested's change_id: derived from campaign, revision and the change's index, so each is applied at most once."`
	LineKey      string     `json:"line_key"`
	Action       LineAction `json:"action" desc:"set_budget, pause, resume (a line an earlier revision paused), or add (a remaining quote booked as a new line, line_key AddedLineKey(change_id))."`
	BudgetMicros Micros     `json:"budget_micros,omitempty" desc:"set_budget: the line's new budget; add: the new line's."`
	Quote        *QuoteRef  `json:"quote,omitempty" desc:"add: the quote booked."`
	Outcome      string     `json:"outcome" desc:"changed (LineChanged), failed (LineChangeFailed), skipped (an increase whose decrease failed: never requested) or pending."`
	Code         string     `json:"code,omitempty" desc:"failed: LineChangeFailed.code; skipped: decrease_failed."`
	Reason       string     `json:"reason,omitempty"`
}

// ReallocationMoveOutcome is what became of one move.
type ReallocationMoveOutcome struct {
	FromLineKey  string    `json:"from_line_key"`
	ToLineKey    string    `json:"to_line_key" desc:"A move to a remaining quote: the new line's key (empty when its add was never requested)."`
	ToQuote      *QuoteRef `json:"to_quote,omitempty"`
	AmountMicros Micros    `json:"amount_micros"`
	Outcome      string    `json:"outcome" desc:"applied (both lines changed), failed (the decrease failed, so nothing moved; or the increase failed, so the budget was freed and not spent)."`
	Reason       string    `json:"reason,omitempty"`
}

// ReallocationApplied says every change of an approved reallocation was
// applied at the sellers.
type ReallocationApplied struct {
	CampaignID      string                    `json:"campaign_id"`
	Revision        int                       `json:"revision"`
	Moves           []ReallocationMoveOutcome `json:"moves,omitempty"`
	Changes         []ReallocationChange      `json:"changes"`
	CommittedMicros Micros                    `json:"committed_micros" desc:"The campaign's committed spend after the last change (LineChanged.committed_micros), never above budget_micros."`
	BudgetMicros    Micros                    `json:"budget_micros"`
	AppliedAt       time.Time                 `json:"applied_at"`
}

// ReallocationFailed says an approved reallocation was applied only in
// part, or not at all: the outcome of each move and change.
type ReallocationFailed struct {
	CampaignID      string                    `json:"campaign_id"`
	Revision        int                       `json:"revision"`
	Moves           []ReallocationMoveOutcome `json:"moves,omitempty"`
	Changes         []ReallocationChange      `json:"changes"`
	CommittedMicros Micros                    `json:"committed_micros" desc:"The campaign's committed spend after the last change that was applied, never above budget_micros."`
	BudgetMicros    Micros                    `json:"budget_micros"`
	Reason          string                    `json:"reason"`
	FailedAt        time.Time                 `json:"failed_at"`
}

func (p ReallocationProposed) campaign() string { return p.CampaignID }
func (p ReallocationApproved) campaign() string { return p.CampaignID }
func (p ReallocationRejected) campaign() string { return p.CampaignID }
func (p ReallocationApplied) campaign() string  { return p.CampaignID }
func (p ReallocationFailed) campaign() string   { return p.CampaignID }

// Validate checks the payload against the contract (its kind's schema); the
// error is a *FieldError naming the field.
func (p ReallocationProposed) Validate() error {
	errs := []error{checkCampaignID("", p.CampaignID), checkEnum("", "direction", p.Direction, Deviations, false)}
	for i, m := range p.Moves {
		switch q := m.ToQuote; {
		case q == nil && m.ToLineKey == "":
			errs = append(errs, &FieldError{Field: index("moves", i), Reason: "a move names the line (to_line_key) or the quote (to_quote) that receives it"})
		case q != nil && (q.SellerURL == "" || q.PackageID == "" || q.QuoteID == ""):
			errs = append(errs, &FieldError{Field: index("moves", i) + ".to_quote", Reason: "names seller_url, package_id and quote_id"})
		}
	}
	return join(errs...)
}

// Validate checks the payload against the contract (its kind's schema); the
// error is a *FieldError naming the field.
func (p ReallocationApproved) Validate() error { return checkCampaignID("", p.CampaignID) }

// Validate checks the payload against the contract (its kind's schema); the
// error is a *FieldError naming the field.
func (p ReallocationRejected) Validate() error { return checkCampaignID("", p.CampaignID) }

func validateChanges(changes []ReallocationChange) error {
	for i := range changes {
		if err := checkEnum(index("changes", i), "action", changes[i].Action, LineActions, false); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks the payload against the contract (its kind's schema); the
// error is a *FieldError naming the field.
func (p ReallocationApplied) Validate() error {
	return join(checkCampaignID("", p.CampaignID), validateChanges(p.Changes))
}

// Validate checks the payload against the contract (its kind's schema); the
// error is a *FieldError naming the field.
func (p ReallocationFailed) Validate() error {
	return join(checkCampaignID("", p.CampaignID), validateChanges(p.Changes))
}

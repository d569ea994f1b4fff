package events

import "time"

// Line changes: after the booking, a booked line is paused, resumed,
// cancelled or given a new budget at its seller. A LineChangeRequested is a
// command (from the bookings API or from a reallocation); the booker, which
// owns the ledger and the seller calls, applies it once per change_id (the
// idempotency key it gives the seller derives from it) and reports
// LineChanged or LineChangeFailed, plus the named facts LinePaused,
// LineResumed and DealCancelled.

// LineAction is what a LineChangeRequested asks of a booked line.
type LineAction string

// Line actions.
const (
	// LinePause stops the line delivering until it is resumed.
	LinePause LineAction = "pause"
	// LineResume lets a paused line deliver again.
	LineResume LineAction = "resume"
	// LineCancel ends the line for good at the seller.
	LineCancel LineAction = "cancel"
	// LineSetBudget gives the line a new total budget for its flight.
	LineSetBudget LineAction = "set_budget"
	// LineAdd books a remaining quote of the campaign (quote) as a new
	// line for budget_micros; its line_key is AddedLineKey(change_id).
	LineAdd LineAction = "add"
)

// LineActions lists every action; the schemas' enum comes from it.
var LineActions = []LineAction{LinePause, LineResume, LineCancel, LineSetBudget, LineAdd}

// QuoteRef names a quote of the campaign (QuoteReady) that is not booked:
// what a reallocation's move to a remaining quote, and the add that
// applies it, book.
type QuoteRef struct {
	SellerURL  string `json:"seller_url"`
	SellerName string `json:"seller_name,omitempty"`
	PackageID  string `json:"package_id"`
	QuoteID    string `json:"quote_id" desc:"The negotiated quote (QuoteReady.quote_id); the booker re-quotes its package at its CPM for the budget."`
	CPMMicros  Micros `json:"cpm_micros,omitempty" desc:"The quote's agreed CPM (QuoteReady.final_cpm_micros)."`
}

// AddedLineKey is the line_key of the line an add books: derived from the
// change alone, so every delivery of the request names the same line.
func AddedLineKey(changeID string) string { return ChildID("line-add", "booker-change", changeID)[:24] }

// EnumValues implements Enum.
func (LineAction) EnumValues() []string { return enumStrings(LineActions) }

// Requester says who asked for a line change.
type Requester string

// Requesters.
const (
	// RequestedByAPI: a person, through the bookings API or the console.
	RequestedByAPI Requester = "api"
	// RequestedByReallocation: an approved reallocation being applied.
	RequestedByReallocation Requester = "reallocation"
)

// Requesters lists every requester; the schemas' enum comes from it.
var Requesters = []Requester{RequestedByAPI, RequestedByReallocation}

// EnumValues implements Enum.
func (Requester) EnumValues() []string { return enumStrings(Requesters) }

// LineState is where a booked line stands at its seller.
type LineState string

// Line states.
const (
	// LineStateLive: booked and delivering (or due to deliver).
	LineStateLive LineState = "live"
	// LineStatePaused: paused at the seller; it can be resumed.
	LineStatePaused LineState = "paused"
	// LineStateCancelled: cancelled at the seller, for good.
	LineStateCancelled LineState = "cancelled"
)

// LineStates lists every state; the schemas' enum comes from it.
var LineStates = []LineState{LineStateLive, LineStatePaused, LineStateCancelled}

// EnumValues implements Enum.
func (LineState) EnumValues() []string { return enumStrings(LineStates) }

// Codes of a LineChangeFailed.
const (
	// ChangeOverBudget: a set_budget increase would take the campaign's
	// committed spend above its budget; the seller was not called.
	ChangeOverBudget = "over_budget"
	// ChangeUnsupported: the action cannot be applied to this line (its
	// seller or protocol offers no such operation, or the new budget is
	// below what the line already delivered).
	ChangeUnsupported = "unsupported"
	// ChangeSellerRefused: the seller refused the change.
	ChangeSellerRefused = "seller_refused"
	// ChangeUnknownLine: no booked line has that line_key.
	ChangeUnknownLine = "unknown_line"
	// ChangeInvalidState: the line's state forbids the action (a cancelled
	// line changes no more; only a paused line resumes).
	ChangeInvalidState = "invalid_state"
	// ChangeSellerUnreachable: the seller could not be reached or its
	// answer could not be read; the outcome at the seller may be unknown.
	ChangeSellerUnreachable = "seller_unreachable"
)

// LineChangeRequested asks the booker to change one booked line at its
// seller. change_id identifies the change: a request delivered twice, or
// published twice with the same change_id, is applied once.
type LineChangeRequested struct {
	CampaignID           string     `json:"campaign_id"`
	ChangeID             string     `json:"change_id" desc:"Unique per change; the idempotency key given to the seller derives from it, so a redelivered request applies once."`
	LineKey              string     `json:"line_key" desc:"The booked line (DealBooked.line_key); add: the new line's, AddedLineKey(change_id)."`
	Action               LineAction `json:"action" desc:"pause, resume, cancel, set_budget or add."`
	BudgetMicros         Micros     `json:"budget_micros,omitempty" desc:"set_budget: the line's new total budget for the flight, in micros; add: the new line's budget."`
	Quote                *QuoteRef  `json:"quote,omitempty" desc:"add: the remaining quote of the campaign to book as a new line."`
	Reason               string     `json:"reason" desc:"Why, in a sentence."`
	RequestedBy          Requester  `json:"requested_by" desc:"api (a person, through the bookings API) or reallocation."`
	ReallocationRevision int        `json:"reallocation_revision,omitempty" desc:"requested_by reallocation: the reallocation's revision."`
	RequestedAt          time.Time  `json:"requested_at"`
}

// LineChanged reports a line change the seller accepted (or one with
// nothing to do, such as pausing a paused line), with the line's budget
// before and after and the campaign's committed spend after it.
type LineChanged struct {
	CampaignID           string     `json:"campaign_id"`
	ChangeID             string     `json:"change_id"`
	LineKey              string     `json:"line_key"`
	Action               LineAction `json:"action"`
	RequestedBy          Requester  `json:"requested_by,omitempty"`
	ReallocationRevision int        `json:"reallocation_revision,omitempty"`
	SellerURL            string     `json:"seller_url"`
	SellerName           string     `json:"seller_name,omitempty"`
	Protocol             Protocol   `json:"protocol,omitempty" desc:"iab-seller-agent (also when absent): applied with POST /api/v1/deals/bulk (and, for a budget increase, an additional deal booked); adcp: applied with update_media_buy."`
	PackageID            string     `json:"package_id"`
	DealID               string     `json:"deal_id,omitempty" desc:"IAB: the line's first deal."`
	DealIDs              []string   `json:"deal_ids,omitempty" desc:"IAB: every deal of the line after the change, cancelled ones included (a budget change adds one)."`
	AddedDealID          string     `json:"added_deal_id,omitempty" desc:"IAB set_budget: the additional deal booked for the difference (increase) or for the remainder after cancelling the line's deals (decrease); its own DealBooked follows."`
	MediaBuyID           string     `json:"media_buy_id,omitempty"`
	SellerPackageID      string     `json:"seller_package_id,omitempty"`
	Revision             int        `json:"revision,omitempty" desc:"AdCP: the media buy's revision after the change."`
	State                LineState  `json:"state" desc:"The line's state after the change: live, paused or cancelled."`
	BudgetBeforeMicros   Micros     `json:"budget_before_micros" desc:"The line's budget before the change."`
	BudgetAfterMicros    Micros     `json:"budget_after_micros" desc:"The line's budget after it (cancel: what stays committed, its delivered spend)."`
	CommittedMicros      Micros     `json:"committed_micros" desc:"The campaign's committed spend after the change, never above its budget."`
	BudgetMicros         Micros     `json:"budget_micros" desc:"The campaign's budget."`
	Noop                 bool       `json:"noop,omitempty" desc:"Nothing had to change (the line already was in the state asked for, or had that budget); the seller was not called."`
	DeliveredSpendMicros Micros     `json:"delivered_spend_micros,omitempty" desc:"A cancel, or an IAB set_budget decrease: the spend the line delivered until its deals (or package) stopped, read from the seller then (0 when unreadable)."`
	Reason               string     `json:"reason,omitempty" desc:"Why the line ended otherwise than asked: an IAB set_budget decrease whose remainder (the budget asked less delivered_spend_micros) was too small to book, or could not be booked, leaves the line cancelled."`
	AppliedAt            time.Time  `json:"applied_at"`
}

// LineChangeFailed reports a line change that was not applied.
type LineChangeFailed struct {
	CampaignID           string     `json:"campaign_id"`
	ChangeID             string     `json:"change_id"`
	LineKey              string     `json:"line_key"`
	Action               LineAction `json:"action"`
	RequestedBy          Requester  `json:"requested_by,omitempty"`
	ReallocationRevision int        `json:"reallocation_revision,omitempty"`
	SellerURL            string     `json:"seller_url,omitempty"`
	Protocol             Protocol   `json:"protocol,omitempty"`
	Code                 string     `json:"code" desc:"over_budget (the increase would take committed spend above the budget; the seller was not called), unsupported, invalid_state (e.g. the line is cancelled), unknown_line, seller_refused (the seller's text in reason), seller_unreachable."`
	Reason               string     `json:"reason"`
	BudgetMicros         Micros     `json:"budget_micros,omitempty" desc:"The campaign's budget."`
	CommittedMicros      Micros     `json:"committed_micros,omitempty" desc:"The campaign's committed spend, unchanged."`
	Unresolved           bool       `json:"unresolved,omitempty" desc:"True for an add (code seller_unreachable) whose outcome is still unknown at the booking horizon: the new line's spend stays reserved while the booker asks the seller again with the same idempotency keys; a LineChanged with its DealBooked (reconciled), or a final LineChangeFailed that releases the reservation, follows."`
	FailedAt             time.Time  `json:"failed_at"`
}

// LinePaused says a booked line was paused at its seller.
type LinePaused struct {
	CampaignID      string    `json:"campaign_id"`
	ChangeID        string    `json:"change_id"`
	LineKey         string    `json:"line_key"`
	SellerURL       string    `json:"seller_url"`
	Protocol        Protocol  `json:"protocol,omitempty"`
	PackageID       string    `json:"package_id"`
	DealIDs         []string  `json:"deal_ids,omitempty" desc:"IAB: the line's deals, each paused."`
	MediaBuyID      string    `json:"media_buy_id,omitempty"`
	SellerPackageID string    `json:"seller_package_id,omitempty"`
	RequestedBy     Requester `json:"requested_by,omitempty"`
	Reason          string    `json:"reason"`
	PausedAt        time.Time `json:"paused_at"`
}

// LineResumed says a paused line was resumed at its seller.
type LineResumed struct {
	CampaignID      string    `json:"campaign_id"`
	ChangeID        string    `json:"change_id"`
	LineKey         string    `json:"line_key"`
	SellerURL       string    `json:"seller_url"`
	Protocol        Protocol  `json:"protocol,omitempty"`
	PackageID       string    `json:"package_id"`
	DealIDs         []string  `json:"deal_ids,omitempty"`
	MediaBuyID      string    `json:"media_buy_id,omitempty"`
	SellerPackageID string    `json:"seller_package_id,omitempty"`
	RequestedBy     Requester `json:"requested_by,omitempty"`
	Reason          string    `json:"reason"`
	ResumedAt       time.Time `json:"resumed_at"`
}

// DealCancelled says one booked deal (IAB) or media-buy package (AdCP) was
// cancelled at its seller; a line with several deals has one per deal.
type DealCancelled struct {
	CampaignID           string    `json:"campaign_id"`
	ChangeID             string    `json:"change_id"`
	LineKey              string    `json:"line_key"`
	SellerURL            string    `json:"seller_url"`
	Protocol             Protocol  `json:"protocol,omitempty"`
	PackageID            string    `json:"package_id"`
	DealID               string    `json:"deal_id,omitempty" desc:"IAB: the cancelled deal, to be taken out of the DSP."`
	MediaBuyID           string    `json:"media_buy_id,omitempty"`
	SellerPackageID      string    `json:"seller_package_id,omitempty"`
	BookedSpendMicros    Micros    `json:"booked_spend_micros" desc:"The line's budget before the cancel."`
	DeliveredSpendMicros Micros    `json:"delivered_spend_micros" desc:"The line's delivered spend to date as last reported (DeliveryReported), 0 when none was; what stays committed."`
	RequestedBy          Requester `json:"requested_by,omitempty"`
	Reason               string    `json:"reason"`
	CancelledAt          time.Time `json:"cancelled_at"`
}

func (r LineChangeRequested) campaign() string { return r.CampaignID }
func (c LineChanged) campaign() string         { return c.CampaignID }
func (f LineChangeFailed) campaign() string    { return f.CampaignID }
func (p LinePaused) campaign() string          { return p.CampaignID }
func (p LineResumed) campaign() string         { return p.CampaignID }
func (c DealCancelled) campaign() string       { return c.CampaignID }

// Validate checks the payload against the contract (its kind's schema); the
// error is a *FieldError naming the field.
func (r LineChangeRequested) Validate() error {
	return join(checkCampaignID("", r.CampaignID),
		checkEnum("", "action", r.Action, LineActions, false),
		checkEnum("", "requested_by", r.RequestedBy, Requesters, false),
		checkAdd(r))
}

// checkAdd: an add names the quote it books and a budget; no other action
// names a quote.
func checkAdd(r LineChangeRequested) error {
	switch {
	case r.Action != LineAdd && r.Quote != nil:
		return &FieldError{Field: "quote", Reason: "only an add names a quote"}
	case r.Action != LineAdd:
		return nil
	case r.Quote == nil || r.Quote.SellerURL == "" || r.Quote.PackageID == "" || r.Quote.QuoteID == "":
		return &FieldError{Field: "quote", Reason: "an add names the quote it books (seller_url, package_id, quote_id)"}
	case r.BudgetMicros <= 0:
		return &FieldError{Field: "budget_micros", Reason: "an add books a positive budget"}
	}
	return nil
}

// Validate checks the payload against the contract (its kind's schema); the
// error is a *FieldError naming the field.
func (c LineChanged) Validate() error {
	return join(checkCampaignID("", c.CampaignID),
		checkEnum("", "action", c.Action, LineActions, false),
		checkEnum("", "requested_by", c.RequestedBy, Requesters, true),
		checkEnum("", "protocol", c.Protocol, Protocols, true),
		checkEnum("", "state", c.State, LineStates, false))
}

// Validate checks the payload against the contract (its kind's schema); the
// error is a *FieldError naming the field.
func (f LineChangeFailed) Validate() error {
	return join(checkCampaignID("", f.CampaignID),
		checkEnum("", "action", f.Action, LineActions, false),
		checkEnum("", "requested_by", f.RequestedBy, Requesters, true),
		checkEnum("", "protocol", f.Protocol, Protocols, true))
}

// Validate checks the payload against the contract (its kind's schema); the
// error is a *FieldError naming the field.
func (p LinePaused) Validate() error {
	return join(checkCampaignID("", p.CampaignID),
		checkEnum("", "protocol", p.Protocol, Protocols, true),
		checkEnum("", "requested_by", p.RequestedBy, Requesters, true))
}

// Validate checks the payload against the contract (its kind's schema); the
// error is a *FieldError naming the field.
func (p LineResumed) Validate() error {
	return join(checkCampaignID("", p.CampaignID),
		checkEnum("", "protocol", p.Protocol, Protocols, true),
		checkEnum("", "requested_by", p.RequestedBy, Requesters, true))
}

// Validate checks the payload against the contract (its kind's schema); the
// error is a *FieldError naming the field.
func (c DealCancelled) Validate() error {
	return join(checkCampaignID("", c.CampaignID),
		checkEnum("", "protocol", c.Protocol, Protocols, true),
		checkEnum("", "requested_by", c.RequestedBy, Requesters, true))
}

// Package campaign owns a campaign's lifecycle: the record every process
// agrees on (kept in the campaigns KV bucket), its typed statuses and the
// transitions between them.
//
//	requested ─► shopping ─► proposed ──────────► booking ─► completed | partial | failed
//	    │           │    └─► awaiting_approval ─┘    │
//	    │           └─► empty | failed               └─► proposed (re-plan after failed bookings)
//	    └─────────────┴─► rejected  (invalid brief; or the buyer rejects the proposal)
//
// Each transition is a method of *Campaign that checks the current status,
// changes the record and returns the events that announce the change. The
// methods are pure; Store applies them with revision-checked writes. The
// booker's plan and book consumers, its deadline sweeper, the bookings API
// and the CLI all change campaigns only through these methods: nothing else
// writes the record.
package campaign

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/dealflow/dealflow/pkg/events"
)

// Status is a campaign's lifecycle status (the contract's vocabulary).
type Status = events.CampaignStatus

// Errors of the transitions. ErrInvalidState and ErrExists map to HTTP 409,
// ErrSelection to 422, ErrNotFound to 404.
var (
	ErrNotFound     = errors.New("campaign: not found")
	ErrExists       = errors.New("campaign: a campaign with this id exists")
	ErrInvalidState = errors.New("campaign: not allowed in the current status")
	ErrStale        = errors.New("campaign: approval of a plan revision that is not the current one")
	// ErrNotVisible: the record read does not yet show what the event
	// being handled was published after (an approval of a plan revision
	// the record does not have yet). The write exists, or the event could
	// not have been published; retry the event.
	ErrNotVisible = errors.New("campaign: the record does not yet show the write this event follows")
	ErrSelection  = errors.New("campaign: invalid line selection")
	// ErrUnavailable wraps failures of the state store: retry later.
	ErrUnavailable = errors.New("campaign: store unavailable")
)

// StateError is ErrInvalidState with the status the campaign was in.
type StateError struct {
	Op     string
	Status Status
}

// Error names the refused operation and the current status.
func (e *StateError) Error() string {
	return fmt.Sprintf("campaign: cannot %s: status is %s", e.Op, e.Status)
}

// Is matches ErrInvalidState.
func (e *StateError) Is(target error) bool { return target == ErrInvalidState }

// Event sources of the events transitions emit.
const (
	SourceAPI    = "api"
	SourceBooker = events.StageBooker
)

// MaxLateQuotes bounds the late quotes a record keeps (the count is exact).
const MaxLateQuotes = 50

// Campaign is the record of one campaign. Every field is written only by the
// transition methods of this package.
type Campaign struct {
	ID        string    `json:"id"`
	Status    Status    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Deadline is when the booker plans with the quotes it has.
	Deadline       time.Time `json:"deadline,omitzero"`
	DeadlinePassed bool      `json:"deadline_passed,omitempty"`

	Request *events.CampaignRequested `json:"request,omitempty"`
	// Traceparent is the campaign's trace: the CampaignRequested's (the
	// caller's, through the bookings API). Every event the state machine
	// emits continues it, so an approval or a re-published event stays in
	// the campaign's one trace.
	Traceparent string `json:"traceparent,omitempty"`

	DiscoveryDone bool                   `json:"discovery_done"`
	Sources       []events.SourceStatus  `json:"sources,omitempty"`
	Expected      []string               `json:"expected_sellers,omitempty"`
	Skipped       []events.SellerSkipped `json:"skipped,omitempty"`
	// PackagesTotal is each seller's number of fitting packages.
	PackagesTotal map[string]int `json:"packages_total,omitempty"`
	// Quotes are keyed by QuoteKey(seller, package). They live in their own
	// bucket (Store.LoadQuotes), not in the record, which keeps only which
	// packages are quoted and how many per seller.
	Quotes     map[string]events.QuoteReady `json:"-"`
	QuoteKeys  map[string]bool              `json:"quote_keys,omitempty"`
	QuoteCount map[string]int               `json:"quote_count,omitempty"`
	// LateQuotes arrived after the plan: recorded (the first MaxLateQuotes,
	// and the count), not lost.
	LateQuotes []events.QuoteReady `json:"late_quotes,omitempty"`
	LateCount  int                 `json:"late_count,omitempty"`

	Plan       *events.PortfolioProposed `json:"plan,omitempty"`
	Approved   *events.PortfolioApproved `json:"approved,omitempty"`
	ApprovedAt time.Time                 `json:"approved_at,omitzero"`
	// BookedRevision is the latest plan revision whose approval the book
	// consumer took up; until it catches up with Approved, the sweeper
	// re-publishes the approval.
	BookedRevision int `json:"booked_revision,omitempty"`

	Deals    []events.DealBooked    `json:"deals,omitempty"`
	Failures []events.BookingFailed `json:"failures,omitempty"`
	// Unresolved are lines whose outcome was still unknown at the booking
	// horizon: their spend stays reserved until the reconciler's DealBooked
	// or BookingFailed (not_booked) moves them to Deals or Failures.
	Unresolved []events.BookingFailed `json:"unresolved,omitempty"`
	Errors     []string               `json:"errors,omitempty"`

	// Seen holds the ids of events already applied, so a redelivered event
	// changes nothing; Effects maps a trigger event id to what it emitted,
	// so a redelivery re-emits the same events (same ids: JetStream drops
	// the copies) when the first attempt died before publishing them.
	Seen    map[string]bool     `json:"seen,omitempty"`
	Effects map[string][]string `json:"effects,omitempty"`
}

// NewID mints a campaign id: the one generator for the API and the CLI.
func NewID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return "cmp-" + hex.EncodeToString(b[:])
}

// QuoteKey identifies a package of a seller within a campaign.
func QuoteKey(sellerURL, packageID string) string { return sellerURL + "|" + packageID }

// Terminal reports whether the campaign has ended.
func (c *Campaign) Terminal() bool { return c.Status.Terminal() }

func (c *Campaign) touch(now time.Time) {
	if c.CreatedAt.IsZero() {
		c.CreatedAt = now
	}
	c.UpdatedAt = now
}

func (c *Campaign) markSeen(id string) bool {
	if c.Seen == nil {
		c.Seen = map[string]bool{}
	}
	if c.Seen[id] {
		return false
	}
	c.Seen[id] = true
	return true
}

func (c *Campaign) addEffect(trigger, effect string) {
	if trigger == "" {
		return
	}
	if c.Effects == nil {
		c.Effects = map[string][]string{}
	}
	c.Effects[trigger] = append(c.Effects[trigger], effect)
}

// skippedSeller reports whether the whole seller was skipped (a skip
// naming one package leaves the seller's other packages counting).
func (c *Campaign) skippedSeller(url string) bool {
	for _, s := range c.Skipped {
		if s.SellerURL == url && s.PackageID == "" {
			return true
		}
	}
	return false
}

// skippedPackages counts the seller's packages skipped on their own and
// not quoted after all.
func (c *Campaign) skippedPackages(url string) int {
	n := 0
	for _, s := range c.Skipped {
		if s.SellerURL == url && s.PackageID != "" && !c.QuoteKeys[QuoteKey(url, s.PackageID)] {
			n++
		}
	}
	return n
}

// Resolved counts the expected sellers that are done: skipped, or with a
// QuoteReady for every fitting package.
func (c *Campaign) Resolved() (done, total int) {
	for _, u := range c.Expected {
		if c.skippedSeller(u) {
			done++
			continue
		}
		if n, ok := c.PackagesTotal[u]; ok && c.QuoteCount[u]+c.skippedPackages(u) >= n {
			done++
		}
	}
	return done, len(c.Expected)
}

// ReadyToPlan reports whether the booker should plan now: the campaign is
// shopping and every seller is resolved, or its shopping deadline passed.
func (c *Campaign) ReadyToPlan() bool {
	if c.Status != events.StatusShopping || c.Request == nil || c.Plan != nil {
		return false
	}
	if c.DeadlinePassed {
		return true
	}
	done, total := c.Resolved()
	return c.DiscoveryDone && done == total
}

// Progress follows the reference's milestones: 0.1 once shopping, up to 0.8
// as sellers resolve, 0.9 with a plan, 0.95 booking, 1 at the end.
func (c *Campaign) Progress() float64 {
	switch c.Status {
	case events.StatusRequested:
		return 0
	case events.StatusShopping:
		p := 0.1
		if c.DiscoveryDone {
			p = 0.2
			if done, total := c.Resolved(); total > 0 {
				p += 0.6 * float64(done) / float64(total)
			}
		}
		return p
	case events.StatusProposed, events.StatusAwaitingApproval:
		return 0.9
	case events.StatusBooking:
		return 0.95
	}
	return 1
}

// SortedQuotes returns the loaded quotes in a stable order.
func (c *Campaign) SortedQuotes() []events.QuoteReady {
	out := make([]events.QuoteReady, 0, len(c.Quotes))
	for _, q := range c.Quotes {
		out = append(out, q)
	}
	sort.Slice(out, func(i, j int) bool {
		return QuoteKey(out[i].Seller.URL, out[i].Package.ID) < QuoteKey(out[j].Seller.URL, out[j].Package.ID)
	})
	return out
}

// TotalSpend is what the booked deals cost: the sellers' booked amounts.
func (c *Campaign) TotalSpend() events.Micros {
	var s events.Micros
	for _, d := range c.Deals {
		s += d.SpendMicros
	}
	return s
}

// UnresolvedSpend is the spend still reserved for unresolved lines.
func (c *Campaign) UnresolvedSpend() events.Micros {
	var s events.Micros
	for _, u := range c.Unresolved {
		s += u.SpendMicros
	}
	return s
}

// Budget is the brief's budget (0 before the request is known).
func (c *Campaign) Budget() events.Micros {
	if c.Request == nil {
		return 0
	}
	return c.Request.Brief.BudgetMicros
}

// Summary is the CampaignCompleted payload for the campaign's current state.
func (c *Campaign) Summary() events.CampaignCompleted {
	sum := events.CampaignCompleted{CampaignID: c.ID, Status: c.Status, BudgetMicros: c.Budget(), TotalSpendMicros: c.TotalSpend(),
		Deals: append([]events.DealBooked{}, c.Deals...), Failed: c.Failures, Unresolved: c.Unresolved}
	for _, s := range c.Skipped {
		sum.SkippedSellers = append(sum.SkippedSellers, events.SkippedSeller{SellerURL: s.SellerURL, Reason: events.ShortReason(s.Code + ": " + s.Reason)})
	}
	fitSummary(&sum, summaryDataLimit)
	return sum
}

// summaryDataLimit is the most a CampaignCompleted's data may take: the
// event size limit less room for the CloudEvent headers.
const summaryDataLimit = events.MaxEventBytes - 16<<10

// fitSummary keeps a campaign's summary within limit bytes of JSON by
// listing only the first skipped sellers, then only the first deals, when
// all of them do not fit, with SkippedTotal and DealsTotal saying how many
// there were (each has its own event). A summary that could not be
// published was dead-lettered, and downstream never saw the campaign end.
func fitSummary(sum *events.CampaignCompleted, limit int) {
	size := func(v any) int {
		b, _ := json.Marshal(v)
		return len(b)
	}
	over := size(sum) - limit
	if over <= 0 {
		return
	}
	const totalsRoom = 64 // "skipped_total":N,"deals_total":N
	over += totalsRoom
	if n := len(sum.SkippedSellers); n > 0 {
		keep := n
		for keep > 0 && over > 0 {
			keep--
			over -= size(sum.SkippedSellers[keep]) + 1
		}
		sum.SkippedSellers, sum.SkippedTotal = sum.SkippedSellers[:keep], n
	}
	if n := len(sum.Deals); n > 0 && over > 0 {
		keep := n
		for keep > 0 && over > 0 {
			keep--
			over -= size(sum.Deals[keep]) + 1
		}
		sum.Deals, sum.DealsTotal = sum.Deals[:keep], n
	}
}

// ---- events the transitions emit ----

func (c *Campaign) event(k events.Kind, source, key string, data any) (events.Event, error) {
	e, err := events.New(k, events.ChildID(c.ID, source, key), source, c.ID, data)
	if err == nil && c.Traceparent != "" {
		e.SetExtension(events.TraceparentExt, c.Traceparent)
	}
	return e, err
}

// RequestedEvent is the CampaignRequested that Submit publishes (and the
// sweeper re-publishes while the booker has not taken it up).
func (c *Campaign) RequestedEvent() (events.Event, error) {
	return c.event(events.KindCampaignRequested, SourceAPI, "requested", c.Request)
}

func (c *Campaign) proposalEvents() ([]events.Event, error) {
	p := c.Plan
	rev := strconv.Itoa(p.Revision)
	prop, err := c.event(events.KindPortfolioProposed, SourceBooker, "proposed-"+rev, p)
	if err != nil {
		return nil, err
	}
	out := []events.Event{prop}
	if p.AutoApprove && len(p.Lines) > 0 {
		appr, err := c.event(events.KindPortfolioApproved, SourceBooker, "approved-"+rev,
			events.PortfolioApproved{CampaignID: c.ID, ApprovedBy: "auto", Revision: p.Revision, Lines: p.Lines})
		if err != nil {
			return nil, err
		}
		out = append(out, appr)
	}
	return out, nil
}

func (c *Campaign) approvalEvent() (events.Event, error) {
	return c.event(events.KindPortfolioApproved, SourceAPI, "approved-"+strconv.Itoa(c.Approved.Revision), *c.Approved)
}

// ApprovalRetryEvery is how often, by default, the sweeper publishes a
// new copy of an approval the book consumer has not taken up (see Due).
const ApprovalRetryEvery = time.Minute

// approvalCopy is the approval the sweeper publishes for a campaign whose
// approval was not taken up, waiting for this long past the grace: the
// approval as first published (same id: if it was never stored this
// stores it, if it is waiting in the stream JetStream drops the copy),
// then, every retry period, a copy under a new id, which the book
// consumer takes up even when the first one was dead-lettered. Every copy
// hands out the same lines (the book consumer derives their ids from the
// campaign, source and revision, not from the approval's id).
func (c *Campaign) approvalCopy(waited, retry time.Duration) (events.Event, error) {
	source := SourceAPI
	if c.Status == events.StatusProposed {
		source = SourceBooker // an automatic approval (propose)
	}
	key := "approved-" + strconv.Itoa(c.Approved.Revision)
	if retry <= 0 {
		retry = ApprovalRetryEvery
	}
	if n := int(waited / retry); n > 0 {
		key += "-again-" + strconv.Itoa(n)
	}
	return c.event(events.KindPortfolioApproved, source, key, *c.Approved)
}

func (c *Campaign) completionEvent() (events.Event, error) {
	return c.event(events.KindCampaignCompleted, SourceBooker, "completed", c.Summary())
}

// UnpublishableEvent is the CampaignRejected the sweeper publishes for a
// requested campaign whose CampaignRequested can never be published (err,
// from bus.CheckEvent or Publish, wraps events.ErrInvalid): the campaign is
// rejected with the reason instead of being retried for ever. Campaigns
// recorded before the API refused such requests are the ones it finds.
func (c *Campaign) UnpublishableEvent(err error) (events.Event, error) {
	return c.rejectionEvent(events.CampaignRejected{CampaignID: c.ID, Field: "brief",
		Reason: events.ShortReason("the request can never be published: " + err.Error())})
}

func (c *Campaign) rejectionEvent(rej events.CampaignRejected) (events.Event, error) {
	return c.event(events.KindCampaignRejected, SourceAPI, "rejected", rej)
}

// Replay returns the events a trigger emitted when it was first applied, so
// a redelivered trigger publishes them again (with the same ids).
func (c *Campaign) Replay(trigger string) ([]events.Event, error) {
	var out []events.Event
	for _, eff := range c.Effects[trigger] {
		var (
			evs []events.Event
			err error
		)
		switch {
		case eff == "completed":
			var e events.Event
			e, err = c.completionEvent()
			evs = []events.Event{e}
		case len(eff) > 9 && eff[:9] == "proposal:":
			if c.Plan != nil && strconv.Itoa(c.Plan.Revision) == eff[9:] {
				evs, err = c.proposalEvents()
			}
		}
		if err != nil {
			return nil, err
		}
		out = append(out, evs...)
	}
	return out, nil
}

// ---- transitions ----

// New is a campaign just submitted: requested, not yet taken up.
func New(req events.CampaignRequested, now time.Time) *Campaign {
	r := req
	c := &Campaign{ID: req.CampaignID, Status: events.StatusRequested, Request: &r}
	c.touch(now)
	return c
}

// Start takes up a CampaignRequested: requested (or a campaign first heard
// of through the event) → shopping, with the shopping deadline.
func (c *Campaign) Start(trigger string, req events.CampaignRequested, now time.Time, window time.Duration) error {
	switch c.Status {
	case "", events.StatusRequested:
	default:
		return nil // already under way or ended: a late or repeated request
	}
	c.ID = req.CampaignID
	if c.Request == nil {
		r := req
		c.Request = &r
	}
	if req.ShoppingWindowSec > 0 {
		window = time.Duration(req.ShoppingWindowSec) * time.Second
	}
	c.Status = events.StatusShopping
	c.Deadline = now.Add(window)
	c.touch(now)
	return nil
}

// RecordDiscovery notes which sellers the booker must hear back from.
func (c *Campaign) RecordDiscovery(d events.DiscoveryCompleted, now time.Time) {
	c.DiscoveryDone, c.Expected, c.Sources = true, d.Sellers, d.Sources
	c.touch(now)
}

// RecordSkip notes a seller left out, or with PackageID one package of it
// (a dead-lettered PackageFound or QuoteReady), which then counts as that
// package's resolution. A dead letter is also named in the errors.
func (c *Campaign) RecordSkip(s events.SellerSkipped, now time.Time) {
	c.touch(now)
	for _, x := range c.Skipped {
		if x.SellerURL == s.SellerURL && (x.PackageID == "" || x.PackageID == s.PackageID) {
			return
		}
	}
	c.Skipped = append(c.Skipped, s)
	if s.PackageID != "" && s.PackagesTotal > 0 {
		if c.PackagesTotal == nil {
			c.PackagesTotal = map[string]int{}
		}
		if _, ok := c.PackagesTotal[s.SellerURL]; !ok {
			c.PackagesTotal[s.SellerURL] = s.PackagesTotal
		}
	}
	if s.Code == events.SkipDeadLettered {
		c.Errors = append(c.Errors, "dead letter: "+s.Reason)
	}
}

// RecordQuote counts a package's quote, or keeps it as late once planned.
func (c *Campaign) RecordQuote(q events.QuoteReady, now time.Time) {
	c.touch(now)
	if c.Plan != nil || c.Terminal() {
		c.LateCount++
		if len(c.LateQuotes) < MaxLateQuotes {
			c.LateQuotes = append(c.LateQuotes, q)
		}
		return
	}
	if c.QuoteKeys == nil {
		c.QuoteKeys, c.QuoteCount = map[string]bool{}, map[string]int{}
	}
	if c.PackagesTotal == nil {
		c.PackagesTotal = map[string]int{}
	}
	if key := QuoteKey(q.Seller.URL, q.Package.ID); !c.QuoteKeys[key] {
		c.QuoteKeys[key] = true
		c.QuoteCount[q.Seller.URL]++
	}
	c.PackagesTotal[q.Seller.URL] = q.PackagesTotal
}

// PassDeadline marks the shopping window over, so the booker plans with
// the quotes it has.
func (c *Campaign) PassDeadline(now time.Time) {
	if c.Status != events.StatusShopping || c.Plan != nil {
		return
	}
	c.DeadlinePassed = true
	c.touch(now)
}

// Reject ends a campaign whose request was refused: requested or shopping
// → rejected. It emits CampaignCompleted with status rejected.
func (c *Campaign) Reject(trigger string, rej events.CampaignRejected, now time.Time) ([]events.Event, error) {
	switch c.Status {
	case "", events.StatusRequested, events.StatusShopping:
	default:
		return nil, nil // already decided: the rejection changes nothing
	}
	c.ID = rej.CampaignID
	c.Status = events.StatusRejected
	c.Errors = append(c.Errors, rejectionText(rej))
	c.touch(now)
	return c.complete(trigger)
}

func rejectionText(r events.CampaignRejected) string {
	if r.Field != "" {
		return "rejected: " + r.Field + " " + r.Reason
	}
	return "rejected: " + r.Reason
}

func (c *Campaign) complete(trigger string) ([]events.Event, error) {
	c.addEffect(trigger, "completed")
	e, err := c.completionEvent()
	if err != nil {
		return nil, err
	}
	return []events.Event{e}, nil
}

// Planner optimises the campaign's loaded quotes within budget. exclude
// names quote keys that must not be planned (booked or failed earlier).
// An error is permanent: the campaign cannot be planned.
type Planner func(c *Campaign, budget events.Micros, revision int, exclude map[string]string) (*events.PortfolioProposed, error)

// Propose plans the portfolio once the campaign is ReadyToPlan: shopping →
// awaiting_approval (a buyer approves), proposed (auto-approved: the
// approval is emitted at once), empty (nothing bookable) or failed (the
// planner refused). The quotes must be loaded (Store.LoadQuotes).
func (c *Campaign) Propose(trigger string, plan Planner, now time.Time) ([]events.Event, error) {
	if !c.ReadyToPlan() {
		return nil, nil
	}
	p, err := plan(c, c.Budget(), 1, nil)
	if err != nil {
		return c.Fail(trigger, "planning failed: "+err.Error(), now)
	}
	if c.DeadlinePassed {
		done, total := c.Resolved()
		p.Notes = append(p.Notes, fmt.Sprintf("shopping deadline passed with %d of %d sellers resolved; planned with the quotes received", done, total))
	}
	return c.propose(trigger, p, now)
}

func (c *Campaign) propose(trigger string, p *events.PortfolioProposed, now time.Time) ([]events.Event, error) {
	c.Plan, c.Approved = p, nil
	c.touch(now)
	c.addEffect(trigger, "proposal:"+strconv.Itoa(p.Revision))
	out, err := c.proposalEvents()
	if err != nil {
		return nil, err
	}
	switch {
	case len(p.Lines) == 0 && p.Revision == 1:
		c.Status = events.StatusEmpty
		c.Errors = append(c.Errors, "no bookable quotes: nothing to book")
		done, err := c.complete(trigger)
		return append(out, done...), err
	case p.AutoApprove:
		c.Status = events.StatusProposed
		c.Approved = &events.PortfolioApproved{CampaignID: c.ID, ApprovedBy: "auto", Revision: p.Revision, Lines: p.Lines}
		c.ApprovedAt = now
	default:
		c.Status = events.StatusAwaitingApproval
	}
	return out, nil
}

// Approve records a buyer's approval of lines of the current plan:
// awaiting_approval → booking. It emits PortfolioApproved. Exactly one
// approval can win: the second finds the campaign booking.
func (c *Campaign) Approve(lines []events.PlanLine, by string, now time.Time) ([]events.Event, error) {
	if c.Status != events.StatusAwaitingApproval || c.Plan == nil {
		return nil, &StateError{Op: "approve", Status: c.Status}
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("%w: no lines approved", ErrSelection)
	}
	appr := events.PortfolioApproved{CampaignID: c.ID, ApprovedBy: by, Revision: c.Plan.Revision, Lines: lines}
	if err := CheckApproval(c.Plan, appr); err != nil {
		return nil, err
	}
	c.Status, c.Approved, c.ApprovedAt = events.StatusBooking, &appr, now
	c.touch(now)
	e, err := c.approvalEvent()
	if err != nil {
		return nil, err
	}
	return []events.Event{e}, nil
}

// RejectPortfolio records the buyer's rejection of the proposed portfolio:
// awaiting_approval → rejected. It emits CampaignRejected and
// CampaignCompleted.
func (c *Campaign) RejectPortfolio(reason string, now time.Time) ([]events.Event, error) {
	if c.Status != events.StatusAwaitingApproval {
		return nil, &StateError{Op: "reject", Status: c.Status}
	}
	rej := events.CampaignRejected{CampaignID: c.ID, Reason: reason}
	c.Status = events.StatusRejected
	c.Errors = append(c.Errors, rejectionText(rej))
	c.touch(now)
	e, err := c.rejectionEvent(rej)
	if err != nil {
		return nil, err
	}
	done, err := c.complete("")
	return append([]events.Event{e}, done...), err
}

// bookingStarted reports whether the book consumer took up the current
// approval.
func (c *Campaign) bookingStarted() bool {
	return c.Approved != nil && c.BookedRevision >= c.Approved.Revision
}

// BeginBooking takes up an approval in the book consumer: proposed (auto)
// or booking (approved through the API) → booking. An approval taken up
// before (a redelivery) changes nothing and is not an error: the ledger
// answers for its lines. An approval of a revision the record does not
// have yet is ErrNotVisible (transient: the event follows the write that
// planned it), unless the campaign has ended (it is never planned again);
// of an earlier revision, or of lines not in the plan, it is refused with
// ErrStale or ErrSelection (permanent).
func (c *Campaign) BeginBooking(appr events.PortfolioApproved, now time.Time) error {
	if appr.Revision > 0 && appr.Revision <= c.BookedRevision {
		if c.Approved != nil && appr.Revision == c.Approved.Revision && !sameLines(c.Approved.Lines, appr.Lines) {
			return fmt.Errorf("%w: the approval differs from the one being booked", ErrSelection)
		}
		return nil
	}
	if (c.Plan == nil || appr.Revision > c.Plan.Revision) && !c.Terminal() {
		return fmt.Errorf("%w: approved revision %d, current %s", ErrNotVisible, appr.Revision, planRevision(c.Plan))
	}
	if appr.Revision != c.Plan.Revision {
		return fmt.Errorf("%w: approved revision %d, current %s", ErrStale, appr.Revision, planRevision(c.Plan))
	}
	switch c.Status {
	case events.StatusProposed, events.StatusBooking:
	default:
		return &StateError{Op: "book", Status: c.Status}
	}
	if err := CheckApproval(c.Plan, appr); err != nil {
		return err
	}
	if c.Approved != nil && !sameLines(c.Approved.Lines, appr.Lines) {
		return fmt.Errorf("%w: the approval differs from the one recorded", ErrSelection)
	}
	a := appr
	c.Approved, c.Status, c.BookedRevision = &a, events.StatusBooking, appr.Revision
	c.touch(now)
	return nil
}

func planRevision(p *events.PortfolioProposed) string {
	if p == nil {
		return "none"
	}
	return strconv.Itoa(p.Revision)
}

// LinesToBook are the lines of appr the book consumer hands out to be
// booked: all of them for the approval being booked; for an approval of
// an earlier revision (a redelivery after a re-plan) only lines that
// already have their outcome, which the ledger answers for again, so a
// stale approval can never start a new booking.
func (c *Campaign) LinesToBook(appr events.PortfolioApproved) []events.PlanLine {
	if c.Approved != nil && appr.Revision == c.Approved.Revision {
		return appr.Lines
	}
	var out []events.PlanLine
	for _, l := range appr.Lines {
		if c.outcomeOf(LineKey(l)) != "" {
			out = append(out, l)
		}
	}
	return out
}

// lineKeyOf is the line key an outcome names; outcomes recorded before
// line keys existed are matched by seller, package and quote.
func lineKeyOf(key, seller, pkg, quote string) string {
	if key != "" {
		return key
	}
	return LineKey(events.PlanLine{SellerURL: seller, PackageID: pkg, QuoteID: quote})
}

func dealKey(d events.DealBooked) string {
	return lineKeyOf(d.LineKey, d.SellerURL, d.PackageID, d.QuoteID)
}

func failKey(f events.BookingFailed) string {
	return lineKeyOf(f.LineKey, f.SellerURL, f.PackageID, f.QuoteID)
}

// Outcomes of a line, as outcomeOf reports them.
const (
	lineBooked     = "booked"
	lineFailed     = "failed"
	lineUnresolved = "unresolved"
)

// outcomeOf says what is known of the line with this key ("" = nothing yet).
func (c *Campaign) outcomeOf(key string) string {
	for _, d := range c.Deals {
		if dealKey(d) == key {
			return lineBooked
		}
	}
	for _, f := range c.Failures {
		if failKey(f) == key {
			return lineFailed
		}
	}
	for _, u := range c.Unresolved {
		if failKey(u) == key {
			return lineUnresolved
		}
	}
	return ""
}

// Settled reports whether every line of the approval being booked has an
// outcome (booked, failed, or unresolved at the booking horizon): the
// campaign can then finish, or re-plan what failed.
func (c *Campaign) Settled() bool {
	if c.Status != events.StatusBooking || c.Approved == nil || !c.bookingStarted() {
		return false
	}
	for _, l := range c.Approved.Lines {
		if c.outcomeOf(LineKey(l)) == "" {
			return false
		}
	}
	return true
}

// RecordDeal folds one line's DealBooked into the record, once per line.
// A deal of an unresolved line (found by the reconciler) replaces it, and
// a campaign that had already ended gets its status and spend adjusted.
//
// A deal a line change booked (DealBooked.change_id) is not recorded: the
// record is the booked portfolio, which a budget change or a reallocation
// does not rebook; the ledger follows the lines' budgets after it, and
// counting such a deal here would put total spend on top of the budget the
// line gave up.
func (c *Campaign) RecordDeal(d events.DealBooked, now time.Time) {
	if d.ChangeID != "" {
		return
	}
	key := dealKey(d)
	switch c.outcomeOf(key) {
	case lineBooked, lineFailed:
		return
	case lineUnresolved:
		c.Unresolved = removeFailure(c.Unresolved, key)
		c.Errors = append(c.Errors, fmt.Sprintf("reconciled: %s %s was booked after all (deal %s%s)", d.SellerURL, d.PackageID, d.DealID, d.MediaBuyID))
	}
	if d.CPMMismatch {
		c.Errors = append(c.Errors, fmt.Sprintf("CPM mismatch on deal %s (%s %s): booked %s, agreed %s", d.DealID, d.SellerURL, d.PackageID, d.CPMMicros, d.AgreedCPMMicros))
	}
	c.Deals = append(c.Deals, d)
	sort.SliceStable(c.Deals, func(i, j int) bool { return c.Deals[i].SellerURL < c.Deals[j].SellerURL })
	c.touch(now)
	c.restatus()
}

// RecordFailure folds one line's BookingFailed into the record, once per
// line: a definite failure, or an unresolved line (kept apart, its spend
// still reserved). The reconciler's definite answer for an unresolved line
// replaces it.
func (c *Campaign) RecordFailure(f events.BookingFailed, now time.Time) {
	key := failKey(f)
	switch c.outcomeOf(key) {
	case lineBooked, lineFailed:
		return
	case lineUnresolved:
		if f.Unresolved {
			return
		}
		c.Unresolved = removeFailure(c.Unresolved, key)
	}
	c.touch(now)
	if f.Unresolved {
		c.Unresolved = append(c.Unresolved, f)
		c.Errors = append(c.Errors, fmt.Sprintf("booking outcome unknown: %s %s: %s", f.SellerURL, f.PackageID, f.Reason))
		return
	}
	c.Failures = append(c.Failures, f)
	c.Errors = append(c.Errors, fmt.Sprintf("booking failed: %s %s: %s: %s", f.SellerURL, f.PackageID, f.Code, f.Reason))
	c.restatus()
}

func removeFailure(list []events.BookingFailed, key string) []events.BookingFailed {
	out := list[:0:0]
	for _, f := range list {
		if failKey(f) != key {
			out = append(out, f)
		}
	}
	return out
}

// endStatus is how a booked campaign ended, from its outcomes: completed
// (every approved line booked), failed (nothing booked and nothing
// unresolved), empty (nothing approved got an outcome) or partial.
func (c *Campaign) endStatus() Status {
	switch {
	case len(c.Deals) == 0 && len(c.Unresolved) == 0 && len(c.Failures) > 0:
		return events.StatusFailed
	case len(c.Deals) == 0 && len(c.Unresolved) == 0:
		return events.StatusEmpty
	case len(c.Failures) == 0 && len(c.Unresolved) == 0:
		return events.StatusCompleted
	}
	return events.StatusPartial
}

// restatus re-derives the status of a campaign that ended after booking,
// when a reconciled line changes its outcomes.
func (c *Campaign) restatus() {
	switch c.Status {
	case events.StatusCompleted, events.StatusPartial, events.StatusFailed:
		c.Status = c.endStatus()
	}
}

// Replan gives the budget freed by failed bookings to the next best quotes.
type Replan struct {
	Plan         Planner
	MaxRevisions int
}

// FinishBooking ends the booking of an approval once every line has its
// outcome (Settled): booking → completed, partial, failed, or, for an
// auto-approved campaign with definite failures and revisions left,
// proposed again with a re-plan of the freed budget (lines still
// unresolved keep theirs reserved). It emits CampaignCompleted or the
// re-plan's proposal and approval. The quotes must be loaded for a re-plan.
func (c *Campaign) FinishBooking(trigger string, rp Replan, now time.Time) ([]events.Event, error) {
	if !c.Settled() {
		return c.Replay(trigger) // not yet, or finished by an earlier delivery
	}
	rev := c.Approved.Revision
	failed := 0
	for _, f := range c.Failures {
		if f.PlanRevision == rev || f.PlanRevision == 0 {
			failed++
		}
	}
	c.touch(now)
	if failed > 0 && c.Request != nil && c.Request.AutoApprove && rp.Plan != nil && rev < rp.MaxRevisions {
		if p, err := c.replan(rp.Plan, rev+1); err != nil {
			c.Errors = append(c.Errors, "re-plan failed: "+err.Error())
		} else if p != nil {
			return c.propose(trigger, p, now)
		}
	}
	c.Status = c.endStatus()
	return c.complete(trigger)
}

// SellerWide reports whether a booking failure code says the seller
// itself cannot be booked now (not reached, or refusing this buyer), not
// only that line: a re-plan then leaves all its quotes out.
func SellerWide(code string) bool {
	switch code {
	case "connection_refused", "unreachable", "private_address", "invalid_url", "unauthorized", "credentials":
		return true
	}
	return false
}

func (c *Campaign) replan(plan Planner, revision int) (*events.PortfolioProposed, error) {
	exclude := map[string]string{}
	for _, d := range c.Deals {
		exclude[QuoteKey(d.SellerURL, d.PackageID)] = "already booked in an earlier revision"
	}
	for _, f := range c.Failures {
		exclude[QuoteKey(f.SellerURL, f.PackageID)] = "booking failed: " + f.Code
		if SellerWide(f.Code) {
			// The seller cannot be booked at all: none of its other
			// quotes is worth planning.
			for k, q := range c.Quotes {
				if _, ok := exclude[k]; !ok && q.Seller.URL == f.SellerURL {
					exclude[k] = "the seller could not be booked: " + f.Code
				}
			}
		}
	}
	for _, u := range c.Unresolved {
		exclude[QuoteKey(u.SellerURL, u.PackageID)] = "booking outcome unknown: its spend stays reserved"
	}
	remaining := c.Budget() - c.TotalSpend() - c.UnresolvedSpend()
	if remaining <= 0 {
		return nil, nil
	}
	p, err := plan(c, remaining, revision, exclude)
	if err != nil || len(p.Lines) == 0 {
		return nil, err
	}
	p.Notes = append(p.Notes, fmt.Sprintf("re-plan after %d failed bookings: %s of budget left", len(c.Failures), remaining))
	return p, nil
}

// Fail ends a campaign that cannot go on (a permanent planning or booking
// error): any open status → failed, with the reason in its errors. It emits
// CampaignCompleted with status failed.
func (c *Campaign) Fail(trigger, reason string, now time.Time) ([]events.Event, error) {
	if c.Terminal() {
		return nil, nil
	}
	c.Status = events.StatusFailed
	c.Errors = append(c.Errors, reason)
	c.touch(now)
	return c.complete(trigger)
}

// Due lists the events the booker's sweeper must publish for this campaign
// now: the CampaignRequested that Submit could not publish, the shopping
// deadline, and an approval (automatic or the buyer's) the book consumer
// has not taken up, however it was lost: never published, or
// dead-lettered (approvalCopy). All have deterministic ids, so publishing
// one twice is harmless. grace is how long a just-written record may wait
// for its own publisher; retry how often a new copy of an approval is
// published (0: ApprovalRetryEvery).
func (c *Campaign) Due(now time.Time, grace, retry time.Duration) ([]events.Event, error) {
	switch {
	case c.Status == events.StatusRequested && c.Request != nil && now.Sub(c.CreatedAt) > grace:
		e, err := c.RequestedEvent()
		return []events.Event{e}, err
	case c.Status == events.StatusShopping && !c.DeadlinePassed && !c.Deadline.IsZero() && now.After(c.Deadline):
		e, err := c.event(events.KindShoppingDeadlinePassed, SourceBooker, "deadline",
			events.ShoppingDeadlinePassed{CampaignID: c.ID, Deadline: c.Deadline})
		return []events.Event{e}, err
	case c.approvalPending() && now.Sub(c.ApprovedAt) > grace:
		e, err := c.approvalCopy(now.Sub(c.ApprovedAt)-grace, retry)
		return []events.Event{e}, err
	}
	return nil, nil
}

// approvalPending reports an approval recorded and not yet taken up by the
// book consumer: approved through the API (booking) or automatically
// (proposed).
func (c *Campaign) approvalPending() bool {
	return (c.Status == events.StatusBooking || c.Status == events.StatusProposed) && c.Approved != nil && !c.bookingStarted()
}

// Open reports whether the sweeper may have work for this campaign.
func (c *Campaign) Open() bool {
	switch c.Status {
	case events.StatusRequested:
		return true
	case events.StatusShopping:
		return !c.DeadlinePassed
	case events.StatusBooking, events.StatusProposed:
		return c.approvalPending()
	}
	return false
}

package reallocator

import (
	"fmt"
	"sort"

	"github.com/dealflow/dealflow/pkg/events"
)

// LineView is what the planner knows of one booked line: its budget now
// (after the changes applied to it) and its latest snapshot.
type LineView struct {
	Key        string
	SellerURL  string
	SellerName string
	PackageID  string
	// Budget is the line's budget now; State its state at the seller
	// ("" is live).
	Budget events.Micros
	State  events.LineState
	// Reported: a snapshot is known; Status, Spend, Elapsed and Final are
	// its numbers.
	Reported bool
	Status   events.PacingStatus
	Spend    events.Micros
	Elapsed  float64
	Final    bool
}

func (l LineView) live() bool { return l.State == "" || l.State == events.LineStateLive }

func (l LineView) name() string {
	n := l.SellerName
	if n == "" {
		n = l.SellerURL
	}
	return n + " " + l.PackageID
}

// projected is the line's spend by the flight's end at its pace so far.
func (l LineView) projected() events.Micros {
	if l.Final || l.Elapsed >= 1 {
		return l.Spend
	}
	if l.Elapsed <= 0 {
		return 0
	}
	return events.Micros(float64(l.Spend) / l.Elapsed)
}

// index is the line's pace against its budget now: projected / budget.
func (l LineView) index() float64 {
	if l.Budget <= 0 {
		return 0
	}
	return float64(l.projected()) / float64(l.Budget)
}

// QuoteView is a remaining quote of the campaign (negotiated, bookable,
// not booked) that may receive what no line on plan can take.
type QuoteView struct {
	events.QuoteRef
	Protocol events.Protocol
	// Score is the optimiser's value of the quote per thousand dollars
	// (portfolio.Score with the campaign's weights): the best is chosen.
	Score          float64
	MinImpressions int64
	// MinSpend is an AdCP package's min_spend_per_package: the seller
	// refuses a smaller budget.
	MinSpend events.Micros
}

func (q QuoteView) key() string { return q.SellerURL + "|" + q.PackageID }

func (q QuoteView) name() string {
	n := q.SellerName
	if n == "" {
		n = q.SellerURL
	}
	return n + " " + q.PackageID
}

// MinFlightLeft is the share of the flight that must be left for a
// remaining quote to be booked mid-flight: a new line needs time to
// deliver what it is given.
const MinFlightLeft = 0.25

// Input is what a reallocation is planned from: the campaign's budget, the
// deviation that asks for one, every booked line of the campaign and its
// remaining quotes.
type Input struct {
	Budget events.Micros
	// MaxCPM is the brief's max CPM (0: none): no remaining quote above it
	// is booked.
	MaxCPM events.Micros
	// Quotes are the campaign's bookable quotes no line was booked from.
	Quotes []QuoteView
	// SellerCap is the brief's per-seller cap (0: none): a line receives
	// no more than its seller's lines leave room for under it.
	SellerCap events.Micros
	Tolerance float64
	Trigger   events.PacingDeviation
	Lines     []LineView
}

// Plan is a proposed reallocation, or why there is none.
type Plan struct {
	Moves           []events.ReallocationMove
	Pauses          []events.ReallocationPause
	Resumes         []events.ReallocationResume
	Lines           []events.ReallocationLine
	CommittedBefore events.Micros
	CommittedAfter  events.Micros
	// Reason is the proposal in a sentence, or why nothing is proposed.
	Reason string
	// Settled: with nothing proposed, nothing will be for this episode
	// either (the line has nothing to give up, the flight ended); else a
	// later snapshot of the same episode may find a line to take it.
	Settled bool
}

// Empty reports whether the plan changes nothing.
func (p Plan) Empty() bool { return len(p.Moves) == 0 && len(p.Pauses) == 0 && len(p.Resumes) == 0 }

// cent is the granularity of a move: budgets move in whole cents.
const cent = events.Micros(10_000)

// minGift is the least one line is given: a dollar.
const minGift = events.Micros(1_000_000)

// MinMove is the least a reallocation moves, as a share of the line's
// budget (and never less than a dollar): a few cents are not worth a
// seller call.
const MinMove = 0.01

// Propose plans a reallocation for a deviation. Pure: the same input gives
// the same plan.
//
//   - under or not_reporting: the line cannot deliver its budget. What it
//     will not spend (its budget less its projected spend — less its spend
//     to date for a seller that stopped reporting, or all of it for a line
//     that never started) moves to the live lines delivering on plan
//     (pace against their budget now within the tolerance of 1: a line
//     that far ahead is to be paused, not fed), in proportion to their
//     budget times their pace, each at most doubled.
//   - over: a live line that at its pace would spend more than its budget
//     by more than the tolerance is paused.
//
// Moves take from one line what they give another, so the committed spend
// after is never more than before.
func Propose(in Input) Plan {
	var p Plan
	var src *LineView
	for i := range in.Lines {
		l := &in.Lines[i]
		p.CommittedBefore += l.Budget
		if l.Key == in.Trigger.LineKey {
			src = l
		}
	}
	p.CommittedAfter = p.CommittedBefore
	if src == nil {
		p.Reason = "the deviating line is not known yet"
		return p
	}
	// The trigger's numbers are the newest for its line.
	s := *src
	s.Reported, s.Spend, s.Elapsed, s.Final = true, in.Trigger.SpendMicros, in.Trigger.FlightElapsed, s.Final || in.Trigger.Final
	switch {
	case s.Final || s.Elapsed >= 1:
		p.Reason, p.Settled = "the line's flight has ended: nothing left to move", true
		return p
	case !s.live():
		p.Reason, p.Settled = fmt.Sprintf("the line is %s: nothing to change", s.State), true
		return p
	}
	if in.Trigger.Direction == events.DeviationOver {
		return pause(p, s, in.Tolerance)
	}
	return move(p, s, in)
}

// Resume plans the resume of a line that revision pausedBy paused for its
// pace, on its snapshot d: once its plan has caught up with what it spent
// (spend to date at or below the plan's), with flight left. Pure. Lines are
// every booked line, for the committed spend, which a resume leaves as it
// is. A line the buyer paused (pausedBy 0) is never resumed here.
func Resume(lines []LineView, d events.DeliveryReported, state events.LineState, pausedBy int) Plan {
	var p Plan
	for _, l := range lines {
		p.CommittedBefore += l.Budget
	}
	p.CommittedAfter = p.CommittedBefore
	switch {
	case pausedBy <= 0 || state != events.LineStatePaused:
		return p
	case d.Final || d.FlightElapsed >= 1:
		p.Reason, p.Settled = "the line's flight has ended: nothing to resume", true
		return p
	case d.ExpectedSpendMicros <= 0 || d.SpendMicros > d.ExpectedSpendMicros:
		p.Reason = fmt.Sprintf("still ahead of its plan: %s spent, %s planned by now", d.SpendMicros, d.ExpectedSpendMicros)
		return p
	}
	name := d.SellerName
	if name == "" {
		name = d.SellerURL
	}
	reason := fmt.Sprintf("%s %s, paused by reallocation %d for delivering ahead of its plan, has been caught up by it: %s spent, %s planned by now, so it is resumed to deliver the rest of its budget.",
		name, d.PackageID, pausedBy, d.SpendMicros, d.ExpectedSpendMicros)
	p.Resumes = []events.ReallocationResume{{LineKey: d.LineKey, PausedByRevision: pausedBy, Reason: reason}}
	p.Lines = []events.ReallocationLine{{LineKey: d.LineKey, SellerURL: d.SellerURL, SellerName: d.SellerName, PackageID: d.PackageID,
		BudgetBeforeMicros: d.PlannedSpendMicros, BudgetAfterMicros: d.PlannedSpendMicros, Resume: true}}
	for _, l := range lines {
		if l.Key == d.LineKey {
			p.Lines[0].BudgetBeforeMicros, p.Lines[0].BudgetAfterMicros = l.Budget, l.Budget
		}
	}
	p.Reason = reason
	return p
}

func pause(p Plan, s LineView, tol float64) Plan {
	proj := s.projected()
	if float64(proj) <= float64(s.Budget)*(1+tol) {
		p.Reason = fmt.Sprintf("%s would spend %s at its pace, within %.0f%% of its budget of %s now: not paused", s.name(), proj, tol*100, s.Budget)
		return p
	}
	reason := fmt.Sprintf("%s delivers ahead of its plan: at its pace it would spend %s against its budget of %s, so it is paused before it overspends.",
		s.name(), proj, s.Budget)
	p.Pauses = []events.ReallocationPause{{LineKey: s.Key, Reason: reason}}
	p.Lines = []events.ReallocationLine{{LineKey: s.Key, SellerURL: s.SellerURL, SellerName: s.SellerName, PackageID: s.PackageID,
		BudgetBeforeMicros: s.Budget, BudgetAfterMicros: s.Budget, Pause: true}}
	p.Reason = reason
	return p
}

func move(p Plan, s LineView, in Input) Plan {
	keep := s.projected()
	why := fmt.Sprintf("at its pace so far it will spend about %s of its %s budget", keep, s.Budget)
	switch {
	case in.Trigger.Direction == events.DeviationNotReporting:
		keep = s.Spend
		why = fmt.Sprintf("its seller stopped reporting at %s spent of its %s budget", s.Spend, s.Budget)
	case s.Spend == 0:
		why = fmt.Sprintf("it has not started delivering its %s budget", s.Budget)
	}
	release := (s.Budget - min(max(keep, s.Spend), s.Budget)) / cent * cent
	least := max(events.Micros(float64(s.Budget)*MinMove), 1_000_000)
	if release < least {
		p.Reason, p.Settled = fmt.Sprintf("%s: %s, leaving %s unspent, too little to move", s.name(), why, release), true
		return p
	}
	// room is what each seller's lines may still grow by under the
	// per-seller cap, counting the source line at what it keeps.
	var room map[string]events.Micros
	if in.SellerCap > 0 {
		room = map[string]events.Micros{}
		for _, l := range in.Lines {
			if l.Key != s.Key {
				room[l.SellerURL] -= l.Budget
			}
		}
		room[s.SellerURL] -= s.Budget - release
		for _, q := range in.Quotes {
			room[q.SellerURL] += 0 // a seller with no line has the whole cap
		}
		for k, v := range room {
			room[k] = max(in.SellerCap+v, 0) / cent * cent
		}
	}
	tol := in.Tolerance
	var recv []LineView
	atCap := false
	for _, l := range in.Lines {
		if l.Key == s.Key || !l.live() || !l.Reported || l.Final || l.Budget <= 0 || l.Elapsed <= 0 || l.Elapsed >= 1 {
			continue
		}
		// On plan against its budget now: not behind, and not so far ahead
		// that it is to be paused; and its seller below the cap.
		if (l.Status == events.PacingOnTrack || l.Status == events.PacingOver) && l.index() >= 1-tol && l.index() <= 1+tol {
			if room != nil && room[l.SellerURL] < minGift {
				atCap = true
				continue
			}
			recv = append(recv, l)
		}
	}
	// Ahead first, then by key: the order the remainder is given in.
	sort.Slice(recv, func(i, j int) bool {
		if a, b := recv[i].index(), recv[j].index(); a != b {
			return a > b
		}
		return recv[i].Key < recv[j].Key
	})
	take := func(seller string, want events.Micros) events.Micros {
		if room == nil || want < 0 {
			if room != nil {
				room[seller] -= want
			}
			return want
		}
		got := min(want, room[seller])
		room[seller] -= got
		return got
	}
	var capacity events.Micros
	caps := make([]events.Micros, len(recv))
	var weight float64
	for i, l := range recv {
		caps[i] = l.Budget / cent * cent // at most doubled
		capacity += caps[i]
		weight += float64(l.Budget) * l.index()
	}
	amount := min(release, capacity)
	given := make([]events.Micros, len(recv))
	var sum events.Micros
	for i, l := range recv {
		share := events.Micros(0)
		if weight > 0 {
			share = events.Micros(float64(amount)*float64(l.Budget)*l.index()/weight) / cent * cent
		}
		given[i] = take(l.SellerURL, min(share, caps[i]))
		sum += given[i]
	}
	for i, l := range recv { // the rounding's remainder, ahead first
		if sum >= amount {
			break
		}
		add := take(l.SellerURL, min(caps[i]-given[i], amount-sum))
		given[i] += add
		sum += add
	}
	for i, l := range recv { // a move of cents (a seller a cent under its cap) is not worth a change at the seller
		if given[i] > 0 && given[i] < minGift {
			take(l.SellerURL, -given[i])
			sum -= given[i]
			given[i] = 0
		}
	}
	// What the lines on plan cannot take goes to the best remaining quote
	// that can take it, booked as a new line.
	q, toQuote, qwhy := bestQuote(in, release-sum, least, take)
	if sum == 0 && toQuote == 0 {
		switch {
		case len(recv) == 0 && !atCap:
			p.Reason = fmt.Sprintf("%s: %s, but no other line delivers on plan to take the %s, and %s", s.name(), why, release, qwhy)
		default:
			p.Reason = fmt.Sprintf("%s: %s, but the lines on plan are at their sellers' cap of %s, and %s", s.name(), why, in.SellerCap, qwhy)
		}
		return p
	}
	p.Lines = append(p.Lines, events.ReallocationLine{LineKey: s.Key, SellerURL: s.SellerURL, SellerName: s.SellerName, PackageID: s.PackageID,
		BudgetBeforeMicros: s.Budget, BudgetAfterMicros: s.Budget - sum - toQuote})
	for i, l := range recv {
		if given[i] <= 0 {
			continue
		}
		p.Moves = append(p.Moves, events.ReallocationMove{FromLineKey: s.Key, ToLineKey: l.Key, AmountMicros: given[i],
			Reason: fmt.Sprintf("%s cannot deliver it (%s); %s delivers at %.2f of its plan and can spend more.", s.name(), why, l.name(), l.index())})
		p.Lines = append(p.Lines, events.ReallocationLine{LineKey: l.Key, SellerURL: l.SellerURL, SellerName: l.SellerName, PackageID: l.PackageID,
			BudgetBeforeMicros: l.Budget, BudgetAfterMicros: l.Budget + given[i]})
	}
	onPlan := len(p.Moves)
	if toQuote > 0 {
		ref := q.QuoteRef
		p.Moves = append(p.Moves, events.ReallocationMove{FromLineKey: s.Key, ToQuote: &ref, AmountMicros: toQuote,
			Reason: fmt.Sprintf("%s cannot deliver it (%s); the lines on plan cannot take it, so it books the campaign's best remaining quote, %s at %s CPM (value %.1f), as a new line.",
				s.name(), why, q.name(), q.CPMMicros.Cents(), q.Score)})
		p.Lines = append(p.Lines, events.ReallocationLine{SellerURL: q.SellerURL, SellerName: q.SellerName, PackageID: q.PackageID,
			BudgetAfterMicros: toQuote, NewLine: true})
	}
	p.Reason = fmt.Sprintf("%s: %s; %s moves to %d line(s) delivering on plan.", s.name(), why, sum, onPlan)
	switch {
	case toQuote > 0 && sum == 0:
		p.Reason = fmt.Sprintf("%s: %s; no line delivering on plan can take it, so %s books the remaining quote %s as a new line.", s.name(), why, toQuote, q.name())
	case toQuote > 0:
		p.Reason += fmt.Sprintf(" %s books the remaining quote %s as a new line.", toQuote, q.name())
	}
	if rest := release - sum - toQuote; rest > 0 {
		p.Reason += fmt.Sprintf(" %s stays with it: the lines on plan can take no more (each at most doubles, and no seller goes past the per-seller cap), and %s.", rest, qwhy)
	}
	return p
}

// bestQuote picks the remaining quote that receives what the lines on plan
// cannot take (rest): the highest value (the optimiser's score) among the
// quotes (IAB or AdCP: the booker books either as a new line) within the
// brief's max CPM whose seller has room under the per-seller cap and for
// which what it can take buys at least the seller's minimum order (an AdCP
// package's minimum spend too) and least — while at least MinFlightLeft of the flight is
// left. It returns the quote and the amount it takes (0: none, with why).
func bestQuote(in Input, rest, least events.Micros, take func(seller string, want events.Micros) events.Micros) (QuoteView, events.Micros, string) {
	switch {
	case rest <= 0:
		return QuoteView{}, 0, ""
	case len(in.Quotes) == 0:
		return QuoteView{}, 0, "the campaign has no remaining quote to book"
	case 1-in.Trigger.FlightElapsed < MinFlightLeft:
		return QuoteView{}, 0, fmt.Sprintf("too little of the flight is left (under %.0f%%) to book a remaining quote", MinFlightLeft*100)
	}
	qs := append([]QuoteView(nil), in.Quotes...)
	sort.Slice(qs, func(i, j int) bool {
		if qs[i].Score != qs[j].Score {
			return qs[i].Score > qs[j].Score
		}
		if qs[i].CPMMicros != qs[j].CPMMicros {
			return qs[i].CPMMicros < qs[j].CPMMicros
		}
		return qs[i].key() < qs[j].key()
	})
	why := "no remaining quote can take it (above the max CPM, no value, its seller at the per-seller cap, or below its minimum order)"
	for _, q := range qs {
		switch {
		case q.CPMMicros <= 0, q.Score <= 0, in.MaxCPM > 0 && q.CPMMicros > in.MaxCPM:
			continue
		}
		amount := take(q.SellerURL, rest/cent*cent)
		imps := int64(amount) * 1000 / int64(q.CPMMicros)
		if amount < least || amount < q.MinSpend || imps < max(q.MinImpressions, 1) {
			take(q.SellerURL, -amount) // give the room back
			continue
		}
		return q, amount, ""
	}
	return QuoteView{}, 0, why
}

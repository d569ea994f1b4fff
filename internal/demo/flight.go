package demo

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/dealflow/dealflow/pkg/events"
)

// Delivery is a booked line's delivery in the demo output (demo --flight):
// its last snapshot, against the line's plan.
type Delivery struct {
	Impressions         int64         `json:"impressions"`
	PlannedImpressions  int64         `json:"planned_impressions"`
	SpendMicros         events.Micros `json:"spend_micros"`
	Spend               float64       `json:"spend"`
	PlannedSpendMicros  events.Micros `json:"planned_spend_micros"`
	ExpectedSpendMicros events.Micros `json:"expected_spend_micros" desc:"What the plan expected spent by as_of."`
	// PacingIndex is spend / expected spend (1 on plan), Status the
	// pacer's word (on_track, under, over, not_reporting, ...).
	PacingIndex   float64             `json:"pacing_index"`
	Status        events.PacingStatus `json:"status"`
	FlightElapsed float64             `json:"flight_elapsed"`
	AsOf          time.Time           `json:"as_of"`
	Snapshots     int                 `json:"snapshots"`
	Final         bool                `json:"final"`
	// Deviations are the line's deviation episodes (one per run of
	// snapshots deviating the same way), with the first snapshot's numbers.
	Deviations []Deviation `json:"deviations,omitempty"`
	// BudgetMicros is the line's budget at the end of the flight, after
	// the reallocations changed it (its planned spend when none did);
	// State its state at the seller (live, paused, cancelled).
	BudgetMicros events.Micros    `json:"budget_micros"`
	State        events.LineState `json:"state,omitempty"`

	lastSeq  int             // the newest snapshot's seq
	episodes map[string]bool // the deviation episodes seen
}

// Deviation is one deviation episode of a line.
type Deviation struct {
	Direction     events.Deviation `json:"direction"`
	SinceSeq      int              `json:"since_seq"`
	PacingIndex   float64          `json:"pacing_index"`
	FlightElapsed float64          `json:"flight_elapsed"`
	Reason        string           `json:"reason"`
}

// FlightInfo is the flight part of the demo output.
type FlightInfo struct {
	// TimeScale is how long one flight day lasted; PacingEvery the flight
	// time between two readings of a line.
	TimeScale   string `json:"time_scale"`
	PacingEvery string `json:"pacing_every"`
	// DeliveredSpendMicros is what the lines spent over the flight, as
	// their final snapshots say; WithinBudget whether it is at most the
	// budget.
	DeliveredSpendMicros events.Micros `json:"delivered_spend_micros"`
	DeliveredSpend       float64       `json:"delivered_spend"`
	WithinBudget         bool          `json:"within_budget"`
	// Deviations counts the deviation episodes of every line.
	Deviations int `json:"deviations"`
	// Reallocations counts the reallocations applied; MaxCommittedMicros
	// is the highest committed spend the booker reported while applying
	// them (LineChanged.committed_micros), never above the budget.
	Reallocations      int           `json:"reallocations"`
	MaxCommittedMicros events.Micros `json:"max_committed_micros,omitempty"`
}

// Activation is a booked deal's activation in the DSP (demo --flight).
type Activation struct {
	SellerName string `json:"seller_name"`
	DealID     string `json:"deal_id"`
	LineKey    string `json:"line_key,omitempty"`
	// Status is activated (ready_to_serve) or failed.
	Status   string `json:"status"`
	DSP      string `json:"dsp,omitempty"`
	Attempts int    `json:"attempts,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// Reallocation is one reallocation of the flight (demo --flight).
type Reallocation struct {
	Revision int `json:"revision"`
	// Status is proposed, approved, applied, failed or rejected.
	Status     string           `json:"status"`
	LineKey    string           `json:"line_key" desc:"The deviating line that triggered it."`
	SellerName string           `json:"seller_name"`
	PackageID  string           `json:"package_id"`
	Direction  events.Deviation `json:"direction"`
	ApprovedBy string           `json:"approved_by,omitempty"`
	Moves      []Move           `json:"moves,omitempty"`
	Pauses     []string         `json:"pauses,omitempty"`
	Resumes    []string         `json:"resumes,omitempty"`
	// Committed before and after as proposed; CommittedMicros as the
	// booker reported it when the reallocation ended.
	CommittedBeforeMicros events.Micros `json:"committed_before_micros"`
	CommittedAfterMicros  events.Micros `json:"committed_after_micros"`
	CommittedMicros       events.Micros `json:"committed_micros,omitempty"`
	Reason                string        `json:"reason"`
}

// Move is one move of a reallocation.
type Move struct {
	From         string        `json:"from"`
	To           string        `json:"to"`
	FromLineKey  string        `json:"from_line_key"`
	ToLineKey    string        `json:"to_line_key"`
	AmountMicros events.Micros `json:"amount_micros"`
	Reason       string        `json:"reason"`
	Outcome      string        `json:"outcome,omitempty"`
	// toQuote names a move's remaining quote (seller|package): its
	// outcome names the new line.
	toQuote string
}

// lineName is a line's seller and package, as the demo prints it.
func lineName(res *Result, key string, name func(string) string) string {
	for _, d := range res.Deals {
		if d.LineKey == key {
			return d.SellerName + " " + d.PackageID
		}
	}
	if l, ok := res.lines[key]; ok {
		return name(l[0]) + " " + l[1]
	}
	return key
}

func (r *Result) reallocation(n int) *Reallocation {
	for i := range r.Reallocations {
		if r.Reallocations[i].Revision == n {
			return &r.Reallocations[i]
		}
	}
	return nil
}

// observeFlight folds a delivery event into the result and prints the
// moments worth seeing: a line's first snapshot, each new deviation
// episode, its final snapshot.
func observeFlight(e events.Event, res *Result, names map[string]string, w io.Writer) {
	name := func(u string) string {
		if n := names[u]; n != "" {
			return n
		}
		return u
	}
	p, _, err := events.Payload(e)
	if err != nil {
		return
	}
	if res.delivery == nil {
		res.delivery = map[string]*Delivery{}
	}
	switch v := p.(type) {
	case *events.DeliveryReported:
		d := res.delivery[v.LineKey]
		if d == nil {
			d = &Delivery{lastSeq: -1}
			res.delivery[v.LineKey] = d
		}
		if d.Snapshots == 0 {
			fmt.Fprintf(w, "  [pacer] following %-20s %-14s %s to %s\n", name(v.SellerURL), v.PackageID, v.FlightStart, v.FlightEnd)
		}
		d.Snapshots++
		if v.Seq < d.lastSeq {
			return // an older snapshot published late: the newer one stands
		}
		d.lastSeq = v.Seq
		d.Impressions, d.PlannedImpressions, d.SpendMicros, d.Spend = v.Impressions, v.PlannedImpressions, v.SpendMicros, v.SpendMicros.Dollars()
		d.PlannedSpendMicros, d.ExpectedSpendMicros, d.PacingIndex, d.Status = v.PlannedSpendMicros, v.ExpectedSpendMicros, v.PacingIndex, v.Status
		d.FlightElapsed, d.AsOf, d.Final = v.FlightElapsed, v.AsOf, d.Final || v.Final
		if v.Final {
			fmt.Fprintf(w, "  [pacer] final     %-20s %-14s %9d of %9d imps, spend %s of %s, pacing %.2f (%s)\n", name(v.SellerURL), v.PackageID,
				v.Impressions, v.PlannedImpressions, v.SpendMicros, v.PlannedSpendMicros, v.PacingIndex, v.Status)
		}
	case *events.DealBooked:
		if res.lines == nil {
			res.lines = map[string][2]string{}
		}
		if _, ok := res.lines[v.LineKey]; !ok {
			res.lines[v.LineKey] = [2]string{v.SellerURL, v.PackageID}
		}
		// A line booked after the campaign completed (a remaining quote a
		// reallocation booked, its LineChanged add to follow; or an
		// unresolved line the reconciler found booked) is followed like
		// the others; an IAB budget change's added deal is of a line
		// already listed.
		if res.Status != "" && !slices.ContainsFunc(res.Deals, func(d Deal) bool { return d.LineKey == v.LineKey }) {
			res.Deals = append(res.Deals, Deal{SellerURL: v.SellerURL, SellerName: name(v.SellerURL), PackageID: v.PackageID, DealID: v.DealID,
				Protocol: string(v.Protocol.Or()), CPM: v.CPMMicros.Dollars(), CPMMicros: v.CPMMicros, Impressions: v.Impressions,
				Spend: v.SpendMicros.Dollars(), SpendMicros: v.SpendMicros, LineKey: v.LineKey, NewLine: res.newLines[v.LineKey]})
			fmt.Fprintf(w, "  [booker] booked  %-20s %-14s deal %s at %.2f, spend %s after the campaign completed\n", name(v.SellerURL), v.PackageID, v.DealID,
				v.CPMMicros.Dollars(), v.SpendMicros)
		}
	case *events.DealActivated:
		res.Activations = append(res.Activations, Activation{SellerName: name(v.SellerURL), DealID: v.DealID, LineKey: v.LineKey, Status: "activated",
			DSP: v.DSP, Attempts: v.Attempts})
		fmt.Fprintf(w, "  [activator] %-20s deal %s set up in the DSP (%s, %d attempt(s)): %s\n", name(v.SellerURL), v.DealID, v.DSP, v.Attempts, v.SeatStatus)
	case *events.DealActivationFailed:
		if !v.Retryable {
			res.Activations = append(res.Activations, Activation{SellerName: name(v.SellerURL), DealID: v.DealID, LineKey: v.LineKey, Status: "failed",
				DSP: v.DSP, Attempts: v.Attempt, Reason: v.Code + ": " + v.Reason})
		}
		fmt.Fprintf(w, "  [activator] %-20s deal %s activation failed (attempt %d, retryable %v): %s\n", name(v.SellerURL), v.DealID, v.Attempt, v.Retryable, v.Reason)
	case *events.ReallocationProposed:
		if res.reallocation(v.Revision) != nil {
			return
		}
		r := Reallocation{Revision: v.Revision, Status: "proposed", LineKey: v.LineKey, Direction: v.Direction,
			CommittedBeforeMicros: v.CommittedBeforeMicros, CommittedAfterMicros: v.CommittedAfterMicros, Reason: v.Reason}
		for _, d := range res.Deals {
			if d.LineKey == v.LineKey {
				r.SellerName, r.PackageID = d.SellerName, d.PackageID
			}
		}
		for _, m := range v.Moves {
			mv := Move{From: lineName(res, m.FromLineKey, name), To: lineName(res, m.ToLineKey, name), FromLineKey: m.FromLineKey,
				ToLineKey: m.ToLineKey, AmountMicros: m.AmountMicros, Reason: m.Reason}
			if q := m.ToQuote; q != nil {
				mv.To, mv.toQuote = "remaining quote "+name(q.SellerURL)+" "+q.PackageID+" (new line)", q.SellerURL+"|"+q.PackageID
			}
			r.Moves = append(r.Moves, mv)
		}
		for _, x := range v.Pauses {
			r.Pauses = append(r.Pauses, lineName(res, x.LineKey, name))
		}
		for _, x := range v.Resumes {
			r.Resumes = append(r.Resumes, lineName(res, x.LineKey, name))
		}
		res.Reallocations = append(res.Reallocations, r)
		fmt.Fprintf(w, "  [reallocator] PROPOSED revision %d: %s\n", v.Revision, v.Reason)
		for _, m := range r.Moves {
			fmt.Fprintf(w, "           move %s from %s to %s\n", m.AmountMicros, m.From, m.To)
		}
		for _, x := range r.Pauses {
			fmt.Fprintf(w, "           pause %s\n", x)
		}
		for _, x := range r.Resumes {
			fmt.Fprintf(w, "           resume %s\n", x)
		}
	case *events.ReallocationApproved:
		if r := res.reallocation(v.Revision); r != nil && r.Status == "proposed" {
			r.Status, r.ApprovedBy = "approved", v.ApprovedBy
			fmt.Fprintf(w, "  [reallocator] revision %d approved by %s\n", v.Revision, v.ApprovedBy)
		}
	case *events.ReallocationRejected:
		if r := res.reallocation(v.Revision); r != nil {
			r.Status = "rejected"
		}
	case *events.LineChanged:
		if v.Action == events.LineAdd {
			if res.newLines == nil {
				res.newLines = map[string]bool{}
			}
			res.newLines[v.LineKey] = true
			for i := range res.Deals {
				if res.Deals[i].LineKey == v.LineKey {
					res.Deals[i].NewLine = true
				}
			}
		}
		if d := res.delivery[v.LineKey]; d != nil {
			d.BudgetMicros, d.State = v.BudgetAfterMicros, v.State
		} else {
			res.delivery[v.LineKey] = &Delivery{lastSeq: -1, BudgetMicros: v.BudgetAfterMicros, State: v.State}
		}
		res.maxCommitted = max(res.maxCommitted, v.CommittedMicros)
		fmt.Fprintf(w, "  [booker] changed   %-20s %-14s %s: budget %s -> %s (%s), campaign committed %s of %s\n", name(v.SellerURL), v.PackageID, v.Action,
			v.BudgetBeforeMicros, v.BudgetAfterMicros, v.State, v.CommittedMicros, v.BudgetMicros)
	case *events.LineChangeFailed:
		fmt.Fprintf(w, "  [booker] CHANGE FAILED %s %s: %s %s\n", v.LineKey, v.Action, v.Code, v.Reason)
	case *events.ReallocationApplied:
		if r := res.reallocation(v.Revision); r != nil && r.Status != "applied" {
			r.Status, r.CommittedMicros = "applied", v.CommittedMicros
			outcomes(r, v.Moves)
			fmt.Fprintf(w, "  [reallocator] revision %d applied: campaign committed %s of %s\n", v.Revision, v.CommittedMicros, v.BudgetMicros)
		}
	case *events.ReallocationFailed:
		if r := res.reallocation(v.Revision); r != nil && r.Status != "failed" {
			r.Status, r.CommittedMicros = "failed", v.CommittedMicros
			outcomes(r, v.Moves)
			fmt.Fprintf(w, "  [reallocator] revision %d FAILED: %s\n", v.Revision, v.Reason)
		}
	case *events.PacingDeviation:
		d := res.delivery[v.LineKey]
		if d == nil {
			d = &Delivery{lastSeq: -1}
			res.delivery[v.LineKey] = d
		}
		ep := fmt.Sprintf("%s/%d", v.Direction, v.SinceSeq)
		if d.episodes[ep] {
			return // the same episode goes on
		}
		if d.episodes == nil {
			d.episodes = map[string]bool{}
		}
		d.episodes[ep] = true
		d.Deviations = append(d.Deviations, Deviation{Direction: v.Direction, SinceSeq: v.SinceSeq, PacingIndex: v.PacingIndex, FlightElapsed: v.FlightElapsed, Reason: v.Reason})
		fmt.Fprintf(w, "  [pacer] DEVIATION %-20s %-14s %s at %.0f%% of the flight: %s\n", name(v.SellerURL), v.PackageID, v.Direction, v.FlightElapsed*100, v.Reason)
	}
}

func outcomes(r *Reallocation, moves []events.ReallocationMoveOutcome) {
	for i := range r.Moves {
		for _, m := range moves {
			switch {
			case m.FromLineKey != r.Moves[i].FromLineKey:
			case r.Moves[i].toQuote != "" && m.ToQuote != nil && m.ToQuote.SellerURL+"|"+m.ToQuote.PackageID == r.Moves[i].toQuote:
				r.Moves[i].Outcome, r.Moves[i].ToLineKey = m.Outcome, m.ToLineKey
			case r.Moves[i].toQuote == "" && m.ToLineKey == r.Moves[i].ToLineKey:
				r.Moves[i].Outcome = m.Outcome
			}
		}
	}
}

// flightDone reports whether every booked deal's line has had its final
// snapshot and no reallocation is still being applied.
func flightDone(res *Result) bool {
	for _, d := range res.Deals {
		if l := res.delivery[d.LineKey]; l == nil || !l.Final {
			return false
		}
	}
	for _, r := range res.Reallocations {
		if r.Status == "proposed" || r.Status == "approved" {
			return false
		}
	}
	return true
}

// finishFlight attaches each deal's delivery and sums up the flight.
func finishFlight(res *Result, scale, every time.Duration) {
	info := &FlightInfo{TimeScale: scale.String(), PacingEvery: every.String()}
	for i := range res.Deals {
		d := res.delivery[res.Deals[i].LineKey]
		if d == nil {
			continue
		}
		if d.BudgetMicros == 0 {
			d.BudgetMicros = res.Deals[i].SpendMicros
		}
		res.Deals[i].Delivery = d
		info.DeliveredSpendMicros += d.SpendMicros
		info.Deviations += len(d.Deviations)
	}
	for _, r := range res.Reallocations {
		if r.Status == "applied" {
			info.Reallocations++
		}
	}
	info.MaxCommittedMicros = res.maxCommitted
	info.DeliveredSpend = info.DeliveredSpendMicros.Dollars()
	info.WithinBudget = info.DeliveredSpendMicros <= res.BudgetMicros
	res.Flight = info
}

// PrintFlight writes each line's delivery against its plan and the
// deviations the pacer saw.
func PrintFlight(w io.Writer, r Result) {
	if r.Flight == nil {
		return
	}
	fmt.Fprintf(w, "\nDelivery over the flight (one flight day per %s, read every %s of flight time):\n", r.Flight.TimeScale, r.Flight.PacingEvery)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "SELLER\tPACKAGE\tIMPRESSIONS\tPLANNED\tSPEND\tPLANNED SPEND\tPACING\tSTATUS\tSNAPSHOTS\t")
	for _, d := range r.Deals {
		l := d.Delivery
		if l == nil {
			fmt.Fprintf(tw, "%s\t%s\t-\t%d\t-\t%s\t-\tnot followed\t0\t\n", d.SellerName, d.PackageID, d.Impressions, d.SpendMicros.Cents())
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%.2f\t%s\t%d\t\n", d.SellerName, d.PackageID, l.Impressions, l.PlannedImpressions,
			l.SpendMicros.Cents(), l.PlannedSpendMicros.Cents(), l.PacingIndex, l.Status, l.Snapshots)
	}
	tw.Flush()
	var devs []string
	for _, d := range r.Deals {
		if d.Delivery == nil {
			continue
		}
		for _, x := range d.Delivery.Deviations {
			devs = append(devs, fmt.Sprintf("  %s %s: %s from %.0f%% of the flight (%s)", d.SellerName, d.PackageID, x.Direction, x.FlightElapsed*100, x.Reason))
		}
	}
	sort.Strings(devs)
	if len(devs) > 0 {
		fmt.Fprintln(w, "\nPacing deviations:")
		for _, s := range devs {
			fmt.Fprintln(w, s)
		}
	}
	if len(r.Activations) > 0 {
		fmt.Fprintln(w, "\nActivations in the DSP:")
		for _, a := range r.Activations {
			fmt.Fprintf(w, "  %s deal %s: %s", a.SellerName, a.DealID, a.Status)
			if a.Reason != "" {
				fmt.Fprintf(w, " (%s)", a.Reason)
			}
			fmt.Fprintln(w)
		}
	}
	if len(r.Reallocations) > 0 {
		fmt.Fprintln(w, "\nReallocations:")
		for _, x := range r.Reallocations {
			fmt.Fprintf(w, "  revision %d (%s, approved by %s): %s\n", x.Revision, x.Status, x.ApprovedBy, x.Reason)
			for _, m := range x.Moves {
				fmt.Fprintf(w, "    %s from %s to %s: %s\n", m.AmountMicros, m.From, m.To, m.Outcome)
			}
			for _, p := range x.Pauses {
				fmt.Fprintf(w, "    pause %s\n", p)
			}
			for _, p := range x.Resumes {
				fmt.Fprintf(w, "    resume %s\n", p)
			}
		}
	}
	within := "within"
	if !r.Flight.WithinBudget {
		within = "OVER"
	}
	fmt.Fprintf(w, "\nDelivered spend: %s of the %s booked, %s the %s budget\n", r.Flight.DeliveredSpendMicros, r.TotalSpendMicros, within, r.BudgetMicros)
}

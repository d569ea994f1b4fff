package demo

import (
	"fmt"
	"io"
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

// flightDone reports whether every booked deal's line has had its final
// snapshot.
func flightDone(res *Result) bool {
	for _, d := range res.Deals {
		if l := res.delivery[d.LineKey]; l == nil || !l.Final {
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
		res.Deals[i].Delivery = d
		info.DeliveredSpendMicros += d.SpendMicros
		info.Deviations += len(d.Deviations)
	}
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
	within := "within"
	if !r.Flight.WithinBudget {
		within = "OVER"
	}
	fmt.Fprintf(w, "\nDelivered spend: %s of the %s booked, %s the %s budget\n", r.Flight.DeliveredSpendMicros, r.TotalSpendMicros, within, r.BudgetMicros)
}

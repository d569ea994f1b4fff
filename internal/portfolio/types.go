package portfolio

import (
	"errors"
	"github.com/dealflow/dealflow/pkg/events"
	"math"
	"strings"
	"time"
)

// ErrInvalidInput marks input that cannot describe a real campaign (NaN or
// infinite numbers, a negative budget, duplicate quote ids, ...). Ordinary
// infeasibility (no quotes, zero budget, everything above the max CPM) is not an
// error: it comes back as a Plan with Feasible=false and the reasons.
var ErrInvalidInput = errors.New("portfolio: invalid input")

// ErrInternal reports a bug in this package caught before it could crash the
// caller (no panic crosses the package boundary); no plan comes with it.
var ErrInternal = errors.New("portfolio: internal error")

// Quote is one priced offer from one seller, as the buyer would book it.
type Quote struct {
	// ID identifies the quote; it must be unique within one call and is the
	// deterministic tie-breaker (lower ID wins a tie).
	ID string
	// Seller groups quotes for per-seller caps and the seller count.
	Seller string
	// PackageID is carried through to the plan for booking.
	PackageID string
	// CPM is the agreed (negotiated) or fixed price in dollars per thousand
	// impressions. A CPM <= 0 means "unpriced"; such a quote is never booked
	// (the reference books unpriced quotes, defect 21).
	CPM float64
	// AvailableImpressions bounds the line; 0 means unknown, and the line is
	// then bounded only by the budget and the seller cap.
	AvailableImpressions int64
	// MinImpressions is the seller's minimum order (0 = none). A quote is
	// either left out or booked at least at this volume, never in between.
	MinImpressions int64
	// Formats are the ad formats the package serves ("video", "ctv",
	// "display", ...); matching is case-insensitive.
	Formats []string
	// Negotiable and VolumeDiscounts feed the score (the guide's bonuses).
	Negotiable, VolumeDiscounts bool
}

// Weights are the coefficients of the guide's score. They are configuration
// (decision 7), so a campaign can, e.g., care more about price than format.
// A negative weight is a penalty; a quote whose score is 0 or less adds no
// value and is never booked.
type Weights struct {
	// Price multiplies the headroom below PriceCeiling: max(0, PriceCeiling-CPM).
	Price float64
	// Video is added once when the quote serves video or CTV.
	Video float64
	// Display is added once when the quote serves display.
	Display float64
	// Negotiable is added when the quote is negotiable.
	Negotiable float64
	// Volume is added when the seller offers volume discounts.
	Volume float64
	// PriceCeiling is the CPM at and above which price contributes nothing.
	PriceCeiling float64
}

// DefaultWeights reproduces the guide's example score (section 0, step 6):
// max(0, 50 - CPM) + 10 if video + 5 if display + 5 if negotiable + 5 if volume
// discounts.
func DefaultWeights() Weights {
	return Weights{Price: 1, Video: 10, Display: 5, Negotiable: 5, Volume: 5, PriceCeiling: 50}
}

// Score is the guide's value of one quote per thousand dollars of spend. It is
// a rate, not a total: the optimiser multiplies it by the spend, so a high
// score on a tiny line is worth less than a good score on a large one.
func Score(q Quote, w Weights) float64 {
	s := math.Max(0, w.PriceCeiling-q.CPM) * w.Price
	video, display := false, false
	for _, f := range q.Formats {
		switch normFormat(f) {
		case "video", "ctv":
			video = true
		case "display":
			display = true
		}
	}
	if video {
		s += w.Video
	}
	if display {
		s += w.Display
	}
	if q.Negotiable {
		s += w.Negotiable
	}
	if q.VolumeDiscounts {
		s += w.Volume
	}
	return s
}

// Brief holds the campaign's hard limits and preferences for one selection.
type Brief struct {
	// Budget is the hard limit in dollars: the booked Σ impressions×CPM/1000
	// never exceeds it (decision 7). Money is handled in integer micros, so
	// Budget and CPMs are read to the nearest micro-dollar.
	Budget float64
	// PerSellerCap is an absolute cap in dollars per seller (0 = none).
	PerSellerCap float64
	// PerSellerCapShare caps each seller at this fraction of Budget (0 = none).
	// When both caps are set the smaller applies.
	PerSellerCapShare float64
	// FormatMix is the minimum share of spend per format, e.g. {"video": 0.3}:
	// spend on quotes serving the format >= share × total spend. A quote that
	// serves several formats counts toward each of them. Keys are matched
	// case-insensitively against Quote.Formats, exactly ("video" does not
	// match "ctv"; list both if both count).
	FormatMix map[string]float64
	// MinSellers asks for at least this many distinct sellers. It is honoured
	// when some plan can meet it; otherwise the optimiser says so in
	// Plan.Notes and plans without it.
	MinSellers int
	// MinSellerSpend is what a seller must receive to count toward
	// MinSellers, so "three sellers" cannot be met by buying a handful of
	// impressions. The threshold is never below the cost of one impression at
	// the seller's dearest priced quote within MaxCPM (the value used when
	// MinSellerSpend is 0).
	MinSellerSpend float64
	// MaxCPM excludes quotes priced above it (0 = no limit).
	MaxCPM float64
	// Weights configure the score; the zero value means DefaultWeights().
	Weights Weights
	// TimeLimit bounds the search (0 = DefaultTimeLimit). When it is hit
	// the plan is the best found so far (or, when none was, the guide's
	// greedy selection if it meets the brief) and Notes say so; it is the
	// only use of the clock, so a plan found within it is deterministic.
	TimeLimit time.Duration
}

// DefaultTimeLimit is the search's time limit when Brief.TimeLimit is 0: far
// above what any valid brief needs (milliseconds for hundreds of quotes),
// far below a stage's patience.
const DefaultTimeLimit = 10 * time.Second

// Line is one quote the plan books, with why it is in and at what spend.
type Line struct {
	QuoteID, Seller, PackageID string
	// CPMMicros is the quote's CPM read to the micro-dollar (never above
	// the quote), the price booked; CPM is the same in dollars.
	CPMMicros events.Micros
	CPM       float64
	// Impressions is a whole number; SpendMicros =
	// events.CostMicros(Impressions, CPMMicros), the amount the seller books;
	// Spend is the same in dollars.
	Impressions int64
	SpendMicros events.Micros
	Spend       float64
	Score       float64
	Reason      string
}

// Exclusion is a quote the plan does not book, with the reason.
type Exclusion struct {
	QuoteID string
	// Reason starts with the kind of cause ("CPM 62.00 above max CPM 40.00",
	// "below seller minimum spend", "budget exhausted by higher-value
	// quotes", "seller cap reached", ...) followed by the specifics.
	Reason string
}

// Plan is the optimiser's answer. Every input quote appears exactly once, in
// Lines or in Excluded.
type Plan struct {
	// Lines are ordered by score (best first), then quote ID.
	Lines []Line
	// Excluded are ordered by quote ID.
	Excluded []Exclusion
	// TotalSpendMicros is Σ Line.SpendMicros and never exceeds
	// BudgetMicros; TotalSpend is the same in dollars.
	TotalSpendMicros events.Micros
	TotalSpend       float64
	// BudgetMicros is the budget read to the micro-dollar (not above Budget).
	BudgetMicros events.Micros
	// TotalValue is Σ Score×Spend/1000 over the lines (see the package doc).
	TotalValue float64
	Budget     float64
	// Feasible is true when the plan books at least one line and meets the
	// budget, seller caps, availability, seller minimums and format mix.
	// MinSellers is best effort: when it is dropped, Notes say so.
	Feasible bool
	// Notes explain plan-level facts: dropped MinSellers, a search stopped at
	// its node limit (with the proven optimality gap), infeasible format mix.
	Notes []string
}

// Value recomputes the plan's value from its lines: Σ Score×Spend/1000.
func (p Plan) Value() float64 {
	v := 0.0
	for _, l := range p.Lines {
		v += l.Score * l.Spend / 1000
	}
	return v
}

func normFormat(f string) string { return strings.ToLower(strings.TrimSpace(f)) }

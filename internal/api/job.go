package api

import (
	"time"

	"github.com/dealflow/dealflow/internal/campaign"
	"github.com/dealflow/dealflow/pkg/events"
)

// Job is the bookings API's view of a campaign record. Its status is the
// campaign's lifecycle status, the same word CampaignCompleted, `campaign
// watch` and the demo use.
type Job struct {
	JobID               string                 `json:"job_id"`
	Status              events.CampaignStatus  `json:"status"`
	Progress            float64                `json:"progress"`
	CampaignName        string                 `json:"campaign_name"`
	Budget              float64                `json:"budget" desc:"USD, from budget_micros"`
	BudgetMicros        events.Micros          `json:"budget_micros"`
	AutoApprove         bool                   `json:"auto_approve"`
	SellersExpected     int                    `json:"sellers_expected"`
	SellersResolved     int                    `json:"sellers_resolved"`
	SkippedSellers      []events.SellerSkipped `json:"skipped_sellers"`
	Sources             []events.SourceStatus  `json:"sources,omitempty"`
	Quotes              []events.QuoteReady    `json:"quotes"`
	LateQuotes          []events.QuoteReady    `json:"late_quotes,omitempty"`
	LateQuoteCount      int                    `json:"late_quote_count,omitempty"`
	Recommendations     []events.PlanLine      `json:"recommendations"`
	Excluded            []events.PlanExclusion `json:"excluded,omitempty"`
	PlanNotes           []string               `json:"plan_notes,omitempty"`
	PlanRevision        int                    `json:"plan_revision,omitempty"`
	ProposedSpend       float64                `json:"proposed_spend"`
	ProposedSpendMicros events.Micros          `json:"proposed_spend_micros"`
	ApprovedBy          string                 `json:"approved_by,omitempty"`
	BookedLines         []BookedLine           `json:"booked_lines"`
	Failed              []events.BookingFailed `json:"failed"`
	Unresolved          []events.BookingFailed `json:"unresolved,omitempty"`
	ReservedSpendMicros events.Micros          `json:"reserved_spend_micros,omitempty"`
	TotalSpend          float64                `json:"total_spend"`
	TotalSpendMicros    events.Micros          `json:"total_spend_micros"`
	// Lines are the booked lines after the booking: each one's state at
	// its seller and current budget (the booking ledger); CommittedMicros
	// the campaign's committed spend, never above its budget.
	Lines           []LineView    `json:"lines,omitempty"`
	CommittedMicros events.Micros `json:"committed_micros,omitempty"`
	Errors          []string      `json:"errors"`
	Deadline        *time.Time    `json:"deadline,omitempty"`
	CreatedAt       time.Time     `json:"created_at"`
	UpdatedAt       time.Time     `json:"updated_at"`
}

// BookedLine is a booked deal in the job: the DealBooked event (micros)
// plus the reference's booked_lines dollar fields cpm and cost, derived from
// cpm_micros and spend_micros.
type BookedLine struct {
	events.DealBooked
	CPM  float64 `json:"cpm"`
	Cost float64 `json:"cost"`
}

// JobOf renders a campaign record (with its quotes loaded) as a job.
func JobOf(c *campaign.Campaign) Job {
	j := Job{JobID: c.ID, Status: c.Status, Progress: c.Progress(), CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt,
		SkippedSellers: nonNil(c.Skipped), Sources: c.Sources, Quotes: nonNil(c.SortedQuotes()), LateQuotes: c.LateQuotes, LateQuoteCount: c.LateCount,
		Recommendations: []events.PlanLine{}, BookedLines: []BookedLine{}, Failed: nonNil(c.Failures), Errors: nonNil(c.Errors)}
	if c.Request != nil {
		j.CampaignName, j.AutoApprove = c.Request.Brief.Name, c.Request.AutoApprove
	}
	j.BudgetMicros = c.Budget()
	j.Budget = j.BudgetMicros.Dollars()
	j.SellersResolved, j.SellersExpected = c.Resolved()
	if c.Plan != nil {
		j.Recommendations, j.Excluded, j.PlanNotes = nonNil(c.Plan.Lines), c.Plan.Excluded, c.Plan.Notes
		j.PlanRevision, j.ProposedSpendMicros = c.Plan.Revision, c.Plan.TotalSpendMicros
		j.ProposedSpend = j.ProposedSpendMicros.Dollars()
	}
	if c.Approved != nil {
		j.ApprovedBy = c.Approved.ApprovedBy
	}
	if !c.Deadline.IsZero() {
		d := c.Deadline
		j.Deadline = &d
	}
	for _, d := range c.Deals {
		j.BookedLines = append(j.BookedLines, BookedLine{DealBooked: d, CPM: d.CPMMicros.Dollars(), Cost: d.SpendMicros.Dollars()})
	}
	j.Unresolved, j.ReservedSpendMicros = c.Unresolved, c.UnresolvedSpend()
	j.TotalSpendMicros = c.TotalSpend()
	j.TotalSpend = j.TotalSpendMicros.Dollars()
	return j
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

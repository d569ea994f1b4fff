package events

import "time"

// CampaignStatus is a campaign's lifecycle status. The bookings API's job
// status, CampaignCompleted.status, `campaign watch` and the demo all use
// these words with these meanings.
type CampaignStatus string

// Campaign statuses, in lifecycle order. The last five are terminal.
const (
	// StatusRequested: accepted and published, not yet picked up by the booker.
	StatusRequested CampaignStatus = "requested"
	// StatusShopping: discovery, media kits and negotiations are under way.
	StatusShopping CampaignStatus = "shopping"
	// StatusProposed: a portfolio is planned and approved automatically;
	// booking has not begun.
	StatusProposed CampaignStatus = "proposed"
	// StatusAwaitingApproval: a portfolio is planned and waits for a buyer.
	StatusAwaitingApproval CampaignStatus = "awaiting_approval"
	// StatusBooking: approved lines are being booked with their sellers.
	StatusBooking CampaignStatus = "booking"
	// StatusCompleted: every approved line was booked.
	StatusCompleted CampaignStatus = "completed"
	// StatusPartial: some lines were booked and at least one booking failed.
	StatusPartial CampaignStatus = "partial"
	// StatusEmpty: nothing was bookable, so nothing was booked.
	StatusEmpty CampaignStatus = "empty"
	// StatusFailed: nothing was booked because every booking failed, or the
	// campaign could not be planned (the reason is in its errors).
	StatusFailed CampaignStatus = "failed"
	// StatusRejected: the request was invalid, or the buyer rejected the
	// proposed portfolio.
	StatusRejected CampaignStatus = "rejected"
)

// CampaignStatuses lists every status; the schemas' enum comes from it.
var CampaignStatuses = []CampaignStatus{StatusRequested, StatusShopping, StatusProposed, StatusAwaitingApproval,
	StatusBooking, StatusCompleted, StatusPartial, StatusEmpty, StatusFailed, StatusRejected}

// EnumValues implements Enum.
func (CampaignStatus) EnumValues() []string { return enumStrings(CampaignStatuses) }

// Valid reports whether s is one of the statuses.
func (s CampaignStatus) Valid() bool {
	for _, x := range CampaignStatuses {
		if s == x {
			return true
		}
	}
	return false
}

// Terminal reports whether the campaign has ended.
func (s CampaignStatus) Terminal() bool {
	switch s {
	case StatusCompleted, StatusPartial, StatusEmpty, StatusFailed, StatusRejected:
		return true
	}
	return false
}

// Succeeded reports whether the campaign ended with deals booked: the only
// statuses for which the demo and `campaign watch` exit 0.
func (s CampaignStatus) Succeeded() bool { return s == StatusCompleted || s == StatusPartial }

// ShoppingDeadlinePassed says a campaign's shopping window ended before every
// seller was resolved: the booker plans with the quotes it has. The booker's
// deadline sweeper publishes it, so planning has a single entry point (the
// plan consumer).
type ShoppingDeadlinePassed struct {
	CampaignID string    `json:"campaign_id"`
	Deadline   time.Time `json:"deadline" desc:"When the shopping window ended."`
}

func enumStrings[T ~string](vs []T) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}

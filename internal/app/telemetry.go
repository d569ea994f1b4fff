package app

import (
	"context"

	"github.com/dealflow/dealflow/internal/campaign"
	"github.com/dealflow/dealflow/internal/telemetry"
)

// campaignCounter counts the campaign records by status, and their
// unresolved booking lines, for the dealflow_campaigns and
// dealflow_booking_lines_unresolved gauges: from the campaign store's
// index, so a scrape costs the same whatever the number of campaigns.
func campaignCounter(cs *campaign.Store) telemetry.CampaignCounter {
	return func(ctx context.Context) (telemetry.CampaignCounts, error) {
		c, err := cs.Counts(ctx)
		if err != nil {
			return telemetry.CampaignCounts{}, err
		}
		counts := telemetry.CampaignCounts{ByStatus: make(map[string]int, len(c.ByStatus)), UnresolvedLines: c.UnresolvedLines}
		for st, n := range c.ByStatus {
			counts.ByStatus[string(st)] = n
		}
		return counts, nil
	}
}

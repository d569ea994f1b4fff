package app

import (
	"context"

	"github.com/dealflow/dealflow/internal/campaign"
	"github.com/dealflow/dealflow/internal/telemetry"
)

// campaignCounter counts the campaign records by status, for
// the dealflow_campaigns gauge. It reads every record at each
// scrape: fine for thousands of campaigns; a booker-maintained count would
// be the next step beyond that.
func campaignCounter(cs *campaign.Store) telemetry.CampaignCounter {
	return func(ctx context.Context) (telemetry.CampaignCounts, error) {
		all, err := cs.List(ctx)
		if err != nil {
			return telemetry.CampaignCounts{}, err
		}
		counts := telemetry.CampaignCounts{ByStatus: map[string]int{}}
		for _, c := range all {
			counts.ByStatus[string(c.Status)]++
			counts.UnresolvedLines += len(c.Unresolved)
		}
		return counts, nil
	}
}

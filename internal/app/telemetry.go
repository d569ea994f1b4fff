package app

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/telemetry"
)

// campaignCounter counts the booker's campaign projections by status, for
// the dealflow_campaigns gauge. It reads every projection's status at each
// scrape: fine for thousands of campaigns; a booker-maintained count would
// be the next step beyond that.
func campaignCounter(kv jetstream.KeyValue) telemetry.CampaignCounter {
	return func(ctx context.Context) (map[string]int, error) {
		counts := map[string]int{}
		keys, err := kv.ListKeys(ctx)
		if err != nil {
			if errors.Is(err, jetstream.ErrNoKeysFound) || bus.IsNotFound(err) {
				return counts, nil
			}
			return nil, err
		}
		for k := range keys.Keys() {
			var c struct {
				Status string `json:"status"`
			}
			if _, found, err := bus.GetJSON(ctx, kv, k, &c); err != nil || !found {
				continue
			}
			if c.Status == "" {
				c.Status = "unknown"
			}
			counts[c.Status]++
		}
		return counts, nil
	}
}

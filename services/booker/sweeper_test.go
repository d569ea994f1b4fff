package booker

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/campaign"
	"github.com/dealflow/dealflow/internal/checkfor"
	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/pkg/events"
)

// TestSweeperRejectsAnUnpublishableRequest: a campaign recorded with a
// request whose CampaignRequested can never be published (too large: what
// the API once answered "published automatically, do not submit it again")
// is rejected by the sweeper, naming the reason, instead of being retried
// every second for ever.
func TestSweeperRejectsAnUnpublishableRequest(t *testing.T) {
	env := natstest.Start(t)
	s, _ := stores(t, env)
	start := time.Now().UTC().AddDate(0, 0, 7).Format(events.DateLayout)
	req := events.CampaignRequested{CampaignID: "c-huge", RequestedAt: time.Now().UTC(),
		Brief: events.Brief{Name: "huge", BudgetMicros: events.MustMicros(1000), StartDate: start, EndDate: start,
			TargetAudience: map[string]any{"segments": strings.Repeat("x", events.MaxEventBytes)}}}
	seed(t, s, campaign.New(req, time.Now().Add(-time.Minute))) // recorded, as before the API refused it
	svc := &Service{Campaigns: s, Log: zerolog.Nop()}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		svc.RunSweeper(ctx, 50*time.Millisecond, env.Bus.Publish)
	}()
	plan := bus.StageConfig{Name: StagePlan, Subjects: PlanSubjects(), Workers: 2, AckWait: 5 * time.Second}
	go func() { _ = env.Bus.Run(ctx, plan, svc.HandlePlan) }()
	checkfor.Check(t, 20*time.Second, 50*time.Millisecond, func() error {
		c, err := s.Get(context.Background(), "c-huge")
		if err != nil || c.Status != events.StatusRejected {
			return fmt.Errorf("campaign still %v (%v)", c, err)
		}
		if !strings.Contains(strings.Join(c.Errors, "\n"), "can never be published") {
			t.Fatalf("errors %v do not say why", c.Errors)
		}
		return nil
	})
	cancel()
	<-done
}

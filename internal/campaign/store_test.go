package campaign_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/campaign"
	"github.com/dealflow/dealflow/internal/checkfor"
	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/pkg/events"
)

// TestConcurrentTransitions: many Transitions of one campaign at once (they
// are batched into shared writes) each apply exactly once, each caller gets
// its own events, and one failing function changes nothing and fails alone.
func TestConcurrentTransitions(t *testing.T) {
	env := natstest.Start(t)
	ctx := context.Background()
	s, err := campaign.Open(ctx, env.Bus)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Transition(ctx, "c1", func(c *campaign.Campaign, exists bool) ([]events.Event, error) {
		c.ID = "c1"
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	const n = 40
	var wg sync.WaitGroup
	errs := make([]error, n)
	outs := make([][]events.Event, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, out, err := s.Transition(ctx, "c1", func(c *campaign.Campaign, _ bool) ([]events.Event, error) {
				c.Errors = append(c.Errors, fmt.Sprint(i))
				if i == 7 {
					return nil, boom
				}
				e, err := events.New(events.KindCampaignRejected, fmt.Sprint("e", i), "t", "c1", events.CampaignRejected{CampaignID: "c1", Reason: fmt.Sprint(i)})
				return []events.Event{e}, err
			})
			errs[i], outs[i] = err, out
			if err == nil && c == nil {
				t.Error("no record returned")
			}
		}()
	}
	wg.Wait()
	for i := 0; i < n; i++ {
		switch {
		case i == 7 && !errors.Is(errs[i], boom):
			t.Errorf("failing transition: err %v", errs[i])
		case i != 7 && (errs[i] != nil || len(outs[i]) != 1 || outs[i][0].ID() != fmt.Sprint("e", i)):
			t.Errorf("transition %d: err %v, events %v", i, errs[i], outs[i])
		}
	}
	c, err := s.Get(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, e := range c.Errors {
		seen[e]++
	}
	if len(c.Errors) != n-1 || seen["7"] != 0 {
		t.Fatalf("record has %d entries (%v), want %d without 7", len(c.Errors), seen, n-1)
	}
}

// TestQueuedTransitionGivesUpWithItsContext: a Transition queued behind a
// running one of the same campaign returns when its own context ends, and
// its function is then never applied.
func TestQueuedTransitionGivesUpWithItsContext(t *testing.T) {
	env := natstest.Start(t)
	ctx := context.Background()
	s, err := campaign.Open(ctx, env.Bus)
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, _, err := s.Transition(ctx, "c2", func(c *campaign.Campaign, _ bool) ([]events.Event, error) {
			close(entered)
			<-release
			c.ID = "c2"
			return nil, nil
		})
		done <- err
	}()
	<-entered
	qctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	applied := false
	_, _, err = s.Transition(qctx, "c2", func(c *campaign.Campaign, _ bool) ([]events.Event, error) {
		applied = true
		return nil, nil
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("queued transition: %v, want its deadline", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if applied {
		t.Fatal("a withdrawn transition was applied")
	}
	if _, _, err := s.Transition(ctx, "c2", func(c *campaign.Campaign, exists bool) ([]events.Event, error) {
		if !exists || c.ID != "c2" {
			t.Errorf("record after: exists=%v %+v", exists, c.ID)
		}
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestListFollowsEveryWriter: a store lists its own writes at once and
// another process's as its watch delivers them; counts follow; a closed
// store's listing answers an error.
func TestListFollowsEveryWriter(t *testing.T) {
	env := natstest.Start(t)
	ctx := t.Context()
	api, err := campaign.Open(ctx, env.Bus)
	if err != nil {
		t.Fatal(err)
	}
	other, err := campaign.Open(ctx, env.Connect(t, "booker"))
	if err != nil {
		t.Fatal(err)
	}
	submit := func(s *campaign.Store, id string, at time.Time) {
		t.Helper()
		if _, _, err := s.Transition(ctx, id, func(c *campaign.Campaign, _ bool) ([]events.Event, error) {
			*c = *campaign.New(events.CampaignRequested{CampaignID: id, Brief: events.Brief{Name: "n-" + id, BudgetMicros: 1_000_000}}, at)
			return nil, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
	submit(other, "c1", t0) // before the index exists: the watch's replay brings it
	if p, err := api.List(ctx, campaign.ListQuery{Limit: 10}); err != nil || p.Total != 1 || p.Summaries[0].Name != "n-c1" {
		t.Fatalf("first list: %+v %v", p, err)
	}
	submit(api, "c2", t0.Add(time.Second))
	if p, err := api.List(ctx, campaign.ListQuery{Limit: 10}); err != nil || p.Total != 2 || p.Summaries[0].ID != "c2" {
		t.Fatalf("own write not listed at once: %+v %v", p, err)
	}
	submit(other, "c3", t0.Add(2*time.Second))
	if _, _, err := other.Transition(ctx, "c1", func(c *campaign.Campaign, _ bool) ([]events.Event, error) {
		return c.Fail("x", "boom", t0)
	}); err != nil {
		t.Fatal(err)
	}
	checkfor.Check(t, 10*time.Second, 20*time.Millisecond, func() error {
		p, err := api.List(ctx, campaign.ListQuery{Limit: 10})
		c, cerr := api.Counts(ctx)
		if err == nil && cerr == nil && p.Total == 3 && p.Summaries[0].ID == "c3" && c.ByStatus[events.StatusFailed] == 1 &&
			c.ByStatus[events.StatusRequested] == 2 {
			return nil
		}
		return fmt.Errorf("another process's writes never listed: %+v %v; counts %+v %v", p, err, c, cerr)
	})
	api.Close()
	if _, err := api.List(ctx, campaign.ListQuery{Limit: 10}); err == nil {
		t.Fatal("a closed store still lists")
	}
	if _, err := api.Get(ctx, "c3"); err != nil {
		t.Fatalf("a closed store's records: %v", err)
	}
}

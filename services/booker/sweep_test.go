package booker

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/campaign"
	"github.com/dealflow/dealflow/pkg/events"
)

// An approval of a plan revision the record does not show yet (a read
// behind the write that planned it) is retried, never dead-lettered; the
// same approval books once the record shows its plan.
func TestApprovalNotYetVisibleIsRetried(t *testing.T) {
	f := newFixture(t, nil)
	lines := []events.PlanLine{f.line(f.quotes[0], 100000)}
	appr := f.store(t, lines)
	ahead := must(events.New(events.KindPortfolioApproved, "fx-appr-2", "test", f.c.ID,
		events.PortfolioApproved{CampaignID: f.c.ID, ApprovedBy: "auto", Revision: 2, Lines: lines}))
	_, err := f.svc.book(t.Context(), ahead)
	if !errors.Is(err, campaign.ErrNotVisible) || bus.IsPermanent(err) {
		t.Fatalf("approval of revision 2 on a record at revision 1: %v (permanent %v), want a transient ErrNotVisible", err, bus.IsPermanent(err))
	}
	unknown := must(events.New(events.KindPortfolioApproved, "fx-appr-x", "test", "cmp-nothing",
		events.PortfolioApproved{CampaignID: "cmp-nothing", ApprovedBy: "auto", Revision: 1, Lines: lines}))
	if _, err := f.svc.book(t.Context(), unknown); !errors.Is(err, campaign.ErrNotVisible) || bus.IsPermanent(err) {
		t.Fatalf("approval of a campaign without a record: %v, want a transient ErrNotVisible", err)
	}
	out, err := f.svc.book(t.Context(), appr)
	if err != nil || len(out) != 1 {
		t.Fatalf("approval of the current revision: %d lines, %v", len(out), err)
	}
	// A line of a revision the record does not show yet is retried too.
	la := must(events.PayloadOf[events.LineApproved](out[0], events.KindLineApproved))
	la.PlanRevision = 2
	ahead2 := must(events.New(events.KindLineApproved, "fx-line-2", "test", f.c.ID, la))
	if _, err := f.svc.bookLine(t.Context(), ahead2); !errors.Is(err, campaign.ErrNotVisible) || bus.IsPermanent(err) {
		t.Fatalf("line of revision 2: %v, want a transient ErrNotVisible", err)
	}
}

// An auto-approved campaign whose approval was dead-lettered is not left
// proposed: the sweeper publishes a copy under a new id, the book consumer
// takes it up, it hands out the same lines as the first approval would
// have, and the campaign is booked.
func TestSweeperRetakesADeadLetteredApproval(t *testing.T) {
	f := newFixture(t, nil)
	lines := []events.PlanLine{f.line(f.quotes[0], 100000), f.line(f.quotes[1], 100000)}
	f.c.Plan = &events.PortfolioProposed{CampaignID: f.c.ID, BudgetMicros: events.MustMicros(10000), Lines: lines, Revision: 1, AutoApprove: true}
	f.c.Approved = &events.PortfolioApproved{CampaignID: f.c.ID, ApprovedBy: "auto", Revision: 1, Lines: lines}
	f.c.ApprovedAt = time.Now().UTC().Add(-PublishGrace - time.Second)
	seed(t, f.svc.Campaigns, f.c)
	// The approval as the plan consumer published it, dead-lettered: the
	// stream holds its id, so a copy under that id is dropped.
	rec := must(f.svc.Campaigns.Get(t.Context(), f.c.ID))
	first, err := rec.Due(f.c.ApprovedAt.Add(PublishGrace+time.Millisecond), PublishGrace, time.Hour)
	if err != nil || len(first) != 1 {
		t.Fatalf("%d due events for a pending approval", len(first))
	}
	stored := map[string]bool{first[0].ID(): true}

	f.svc.ApprovalRetry = 100 * time.Millisecond
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var (
		mu     sync.Mutex
		copies []events.Event
	)
	go f.svc.RunSweeper(ctx, 20*time.Millisecond, func(_ context.Context, e events.Event) error {
		mu.Lock()
		defer mu.Unlock()
		if !stored[e.ID()] { // JetStream's de-duplication
			stored[e.ID()] = true
			copies = append(copies, e)
		}
		return nil
	})
	var cp events.Event
	for cp.ID() == "" {
		select {
		case <-ctx.Done():
			t.Fatal("the sweeper published no new copy of the dead-lettered approval")
		case <-time.After(20 * time.Millisecond):
		}
		mu.Lock()
		if len(copies) > 0 {
			cp = copies[0]
		}
		mu.Unlock()
	}
	if cp.Type() != events.KindPortfolioApproved.Type || cp.Source() != first[0].Source() || string(cp.Data()) != string(first[0].Data()) {
		t.Fatalf("copy %s from %s with %s; the approval was from %s with %s", cp.Type(), cp.Source(), cp.Data(), first[0].Source(), first[0].Data())
	}
	out, err := f.svc.bookAll(t.Context(), cp)
	if err != nil {
		t.Fatal(err)
	}
	// The first approval, had it been taken up, hands out the same lines.
	again, err := f.svc.book(t.Context(), first[0])
	if err != nil {
		t.Fatal(err)
	}
	k := kinds(out)
	if len(again) != 2 || len(k[events.KindLineApproved.Type]) != 2 {
		t.Fatalf("lines: copy %d, first approval %d", len(k[events.KindLineApproved.Type]), len(again))
	}
	for i, l := range k[events.KindLineApproved.Type] {
		if l.ID() != again[i].ID() {
			t.Fatalf("line %d: id %s from the copy, %s from the approval", i, l.ID(), again[i].ID())
		}
	}
	c := must(f.svc.Campaigns.Get(t.Context(), f.c.ID))
	if c.Status != events.StatusCompleted || len(c.Deals) != 2 {
		t.Fatalf("campaign %s with %d deals (errors %v)", c.Status, len(c.Deals), c.Errors)
	}
	// Taken up: the sweeper publishes no more copies.
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	n := len(copies)
	mu.Unlock()
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(copies) != n {
		t.Fatalf("the sweeper kept publishing copies after the booking began: %d then %d", n, len(copies))
	}
}

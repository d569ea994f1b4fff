package pacer

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/checkfor"
	"github.com/dealflow/dealflow/pkg/events"
)

// TestSweeperPublishesWhatIsDue: the schedule in the pacing bucket, swept
// by two sweepers at once, publishes each due reading once (claimed in the
// line's record) when it falls due and not before; a due reading nobody
// takes up is published again as the next round after ResendAfter; once
// read, the next reading follows.
func TestSweeperPublishesWhatIsDue(t *testing.T) {
	f := newFixture(t)
	f.svc.ResendAfter = 30 * time.Second
	var mu sync.Mutex
	published := map[string]int{}
	publish := func(ctx context.Context, e events.Event) error {
		mu.Lock()
		published[e.ID()]++
		mu.Unlock()
		return f.env.Bus.Publish(ctx, e)
	}
	other := &Service{Lines: f.svc.Lines, Reader: f.reader, Every: f.svc.Every, Now: f.clock.now, ResendAfter: f.svc.ResendAfter, Log: f.svc.Log}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for _, s := range []*Service{f.svc, other} {
		wg.Add(1)
		go func() { defer wg.Done(); s.RunSweeper(ctx, publish) }()
	}
	t.Cleanup(func() { cancel(); wg.Wait() })

	if _, err := f.handle(t, dealBookedEvent(t, booked())); err != nil {
		t.Fatal(err)
	}
	checkfor.Until(t, 10*time.Second, "both sweepers to see the line", func() bool {
		return f.svc.Counts()["scheduled"] == 1 && other.Counts()["scheduled"] == 1
	})
	dues := func() uint64 { return f.env.SubjectCount(t, events.KindDeliveryDue.SubjectFor("c-1")) }
	if n := dues(); n != 0 {
		t.Fatalf("%d readings published before the first fell due", n)
	}
	f.clock.set(flightStart.AddDate(0, 0, 1))
	checkfor.Until(t, 10*time.Second, "the first reading published", func() bool { return dues() == 1 })
	checkfor.Until(t, 10*time.Second, "the first reading claimed", func() bool {
		l := f.line(t)
		return l.Sent != nil && l.Sent.Seq == 0 && l.Sent.Round == 0
	})
	mu.Lock()
	first := published[dueID("c-1", "line-1", 0, 0)]
	mu.Unlock()
	if first < 1 || first > 2 {
		t.Fatalf("the first reading was published %d times by two sweepers", first)
	}

	// Nobody takes it up: published again, round 1, after ResendAfter.
	f.clock.set(f.clock.now().Add(31 * time.Second))
	checkfor.Until(t, 10*time.Second, "the reading published again", func() bool { return dues() == 2 })
	checkfor.Until(t, 10*time.Second, "round 1 claimed", func() bool { l := f.line(t); return l.Sent != nil && l.Sent.Round == 1 })

	// The reading is taken: the next one is due a day later, not before.
	f.reader.set(func(events.DealBooked) (Reading, error) {
		return Reading{SpendMicros: 2_000_000_000, AsOf: flightStart.AddDate(0, 0, 1)}, nil
	})
	if out, err := f.handle(t, dueEvent(t, 0, 1)); err != nil || len(out) != 1 {
		t.Fatalf("reading: %v %v", out, err)
	}
	checkfor.Until(t, 10*time.Second, "the sweepers to see the reading", func() bool {
		return f.svc.Counts()["on_track"] == 1 && other.Counts()["on_track"] == 1
	})
	if n := dues(); n != 2 {
		t.Fatalf("%d readings published; the second is not due yet", n)
	}
	f.clock.set(flightStart.AddDate(0, 0, 2))
	checkfor.Until(t, 10*time.Second, "the second reading published", func() bool { return dues() == 3 })
	mu.Lock()
	defer mu.Unlock()
	for id, n := range published {
		if n > 2 {
			t.Errorf("due reading %s published %d times by two sweepers", id, n)
		}
	}
}

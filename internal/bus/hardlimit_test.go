package bus_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/checkfor"
	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/pkg/events"
)

// stuckHandler blocks every handling of the campaign stuck until release is
// closed, ignoring its context (a handler "forced to run forever"), and
// echoes every other event.
func stuckHandler(stuck string, calls *atomic.Int32, release <-chan struct{}, free func(n int32) bool) bus.Handler {
	return func(ctx context.Context, in events.Event, p any) ([]events.Event, error) {
		if in.Subject() == stuck {
			n := calls.Add(1)
			if free == nil || !free(n) {
				<-release
				return nil, fmt.Errorf("released")
			}
		}
		return echo(ctx, in, p)
	}
}

// TestHandlerPastItsHardLimitIsAbandoned: a handler that ignores its
// context and never returns holds the stage's only worker until the hard
// limit (handler timeout plus grace); then the handling is abandoned, the
// worker takes the other campaigns, the event is retried once and then
// dead-lettered with the reason, and its keep-alive no longer holds it.
func TestHandlerPastItsHardLimitIsAbandoned(t *testing.T) {
	env := natstest.Start(t)
	cfg := stage("stuck")
	cfg.Workers, cfg.AckWait, cfg.MaxDeliver = 1, 600*time.Millisecond, 8
	cfg.HandlerTimeout, cfg.HandlerGrace = 300*time.Millisecond, 200*time.Millisecond
	var calls atomic.Int32
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	run(t, env.Bus, cfg, stuckHandler("c-stuck", &calls, release, nil))

	natstest.PublishRequest(t, env.Bus, "c-stuck")
	checkfor.Until(t, 20*time.Second, "the stuck handling to start", func() bool { return calls.Load() == 1 })
	const others = 6
	for i := range others {
		natstest.PublishRequest(t, env.Bus, fmt.Sprintf("c-ok-%d", i))
	}
	// With one worker these can only be handled once the stuck handling is
	// abandoned: before the hard limit they waited for ever.
	checkfor.Until(t, 20*time.Second, "the other campaigns, handled while the stuck handler still runs", func() bool {
		for i := range others {
			if subjectCount(t, env.Bus, bus.StreamEvents, events.KindSellerSkipped.SubjectFor(fmt.Sprintf("c-ok-%d", i))) != 1 {
				return false
			}
		}
		return true
	})
	dl := dlqMessages(t, env.Bus, "stuck", 1)
	r := dl[0].Header.Get(bus.HeaderDLQReason)
	if !strings.Contains(r, "hard limit of 500ms") || dl[0].Header.Get(bus.HeaderDLQDeliveries) != "2" {
		t.Fatalf("dead letter reason %q after %s deliveries, want the hard limit after 2", r, dl[0].Header.Get(bus.HeaderDLQDeliveries))
	}
	if bus.AbandonedHandlings() < 2 {
		t.Fatalf("%d abandoned handlings running, want the 2 stuck ones", bus.AbandonedHandlings())
	}
	checkfor.Until(t, 20*time.Second, "the stage to be idle", func() bool { return consumerIdle(t, env.Bus, "stuck") })
	time.Sleep(3 * cfg.AckWait) // a keep-alive or redelivery, had there been one, would show by now
	if n := calls.Load(); n != 2 {
		t.Fatalf("the stuck event was handled %d times, want 2 (once, retried once)", n)
	}
}

// TestHardLimitOnAnUncappedStageRetries: a stage that is never
// dead-lettered (MaxDeliver -1, the booker's line consumer) retries an
// abandoned handling with backoff until it completes.
func TestHardLimitOnAnUncappedStageRetries(t *testing.T) {
	env := natstest.Start(t)
	cfg := stage("stuck-line")
	cfg.Workers, cfg.AckWait, cfg.MaxDeliver = 1, 600*time.Millisecond, -1
	cfg.HandlerTimeout, cfg.HandlerGrace = 200*time.Millisecond, 100*time.Millisecond
	var calls atomic.Int32
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	run(t, env.Bus, cfg, stuckHandler("c-line", &calls, release, func(n int32) bool { return n > 3 }))
	natstest.PublishRequest(t, env.Bus, "c-line")
	checkfor.Until(t, 20*time.Second, "the handling after three abandoned ones", func() bool {
		return subjectCount(t, env.Bus, bus.StreamEvents, events.KindSellerSkipped.SubjectFor("c-line")) == 1 && consumerIdle(t, env.Bus, "stuck-line")
	})
	if n := calls.Load(); n != 4 {
		t.Fatalf("handled %d times, want 4", n)
	}
	if n := subjectCount(t, env.Bus, bus.StreamDLQ, bus.DLQPrefix+"stuck-line"); n != 0 {
		t.Fatalf("%d dead letters on a stage that never dead-letters", n)
	}
}

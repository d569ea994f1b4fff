package bus_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/checkfor"
	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/pkg/events"
)

// smallBus provisions the test server's streams with an event stream of
// maxBytes and returns a bus on it.
func smallBus(t *testing.T, maxBytes int64) *bus.Bus {
	t.Helper()
	env := natstest.Start(t)
	nc, err := nats.Connect(env.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	b, err := bus.New(nc, bus.Config{MaxBytes: maxBytes}, natstest.Logger())
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Provision(t.Context()); err != nil {
		t.Fatal(err)
	}
	st, err := b.JS.Stream(t.Context(), bus.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	if cfg := st.CachedInfo().Config; cfg.MaxBytes != maxBytes || cfg.Discard != jetstream.DiscardNew || cfg.MaxAge != 0 {
		t.Fatalf("event stream provisioned with max bytes %d, discard %v, max age %s", cfg.MaxBytes, cfg.Discard, cfg.MaxAge)
	}
	return b
}

func request(t *testing.T, i int) events.Event {
	t.Helper()
	id := fmt.Sprintf("c-%04d", i)
	e, err := events.New(events.KindCampaignRequested, events.NewID(), "test", id, events.CampaignRequested{
		CampaignID: id, Brief: events.Brief{Name: "n", BudgetMicros: events.MustMicros(1), StartDate: "2028-06-01", EndDate: "2028-06-02"},
		RequestedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func streamState(t *testing.T, b *bus.Bus) jetstream.StreamState {
	t.Helper()
	st, err := b.JS.Stream(t.Context(), bus.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	return st.CachedInfo().State
}

func ack(context.Context, events.Event, any) ([]events.Event, error) { return nil, nil }

// A full event stream refuses publishes (ErrFull) rather than delete an
// event; Admit refuses new work; processed events are purged only once
// every durable consumer processed them, and then publishes go through
// again.
func TestFullStreamRefusesAndPurgesOnlyProcessedEvents(t *testing.T) {
	const maxBytes = 64 << 10
	b := smallBus(t, maxBytes)
	ctx := t.Context()
	fast, slow := stage("fast"), stage("slow")
	run(t, b, fast, ack)
	if _, err := b.Consumer(ctx, slow); err != nil { // a stage that is down
		t.Fatal(err)
	}
	if err := b.Admit(ctx, bus.Work{}); err != nil {
		t.Fatalf("an empty stream refuses: %v", err)
	}
	n := 0
	for ; ; n++ {
		err := b.Publish(ctx, request(t, n))
		if err == nil {
			continue
		}
		if !errors.Is(err, bus.ErrFull) {
			t.Fatalf("publish %d: %v, want ErrFull", n, err)
		}
		break
	}
	st := streamState(t, b)
	if st.FirstSeq != 1 || st.Msgs != uint64(n) {
		t.Fatalf("%d published, the stream holds %d from %d: an event was deleted", n, st.Msgs, st.FirstSeq)
	}
	b.ForgetUsage() // Admit acts on a reading up to 250 ms old
	var full *bus.FullError
	if err := b.Admit(ctx, bus.Work{}); !errors.As(err, &full) || full.Usage.Name != bus.StreamEvents || full.RetryAfter <= 0 {
		t.Fatalf("admit on a full stream: %v", err)
	}
	checkfor.Until(t, 20*time.Second, "the fast stage to process everything", func() bool { return consumerIdle(t, b, "fast") })
	if purged, err := b.PurgeProcessed(ctx, 0); err != nil || purged != 0 {
		t.Fatalf("purged %d events the slow stage has not processed (%v)", purged, err)
	}
	if st := streamState(t, b); st.Msgs != uint64(n) {
		t.Fatalf("the stream holds %d of %d", st.Msgs, n)
	}

	handled := map[string]bool{}
	done := make(chan string, n)
	run(t, b, slow, func(_ context.Context, in events.Event, _ any) ([]events.Event, error) {
		done <- in.Subject()
		return nil, nil
	})
	for range n {
		handled[<-done] = true
	}
	if len(handled) != n {
		t.Fatalf("the slow stage handled %d of %d", len(handled), n)
	}
	checkfor.Until(t, 20*time.Second, "the slow stage to ack everything", func() bool { return consumerIdle(t, b, "slow") })
	purged, err := b.PurgeProcessed(ctx, 0)
	if err != nil || purged == 0 {
		t.Fatalf("nothing purged once everything was processed: %v", err)
	}
	st = streamState(t, b)
	if float64(st.Bytes) > bus.PurgeTo*maxBytes+1024 || st.LastSeq != uint64(n) || st.FirstSeq != uint64(1)+purged {
		t.Fatalf("after purging %d: %d bytes, sequences %d-%d (want the newest kept, at most %.0f bytes)", purged, st.Bytes, st.FirstSeq, st.LastSeq, bus.PurgeTo*maxBytes)
	}
	if err := b.Publish(ctx, request(t, n)); err != nil {
		t.Fatalf("publish after the purge: %v", err)
	}
	b.ForgetUsage()
	if err := b.Admit(ctx, bus.Work{}); err != nil {
		t.Fatalf("admit after the purge: %v", err)
	}
	// Room is kept for the work in flight: n events were stored for 4
	// units, so 3 in flight will still publish about ¾ of them.
	if err := b.Admit(ctx, bus.Work{InFlight: 3, Done: 1}); !errors.As(err, &full) {
		t.Fatalf("admit with three quarters of a full stream's worth in flight: %v", err)
	}
	// Each unit is assumed to take at least a tenth of this small stream.
	if err := b.Admit(ctx, bus.Work{InFlight: 4, Done: 400}); !errors.As(err, &full) {
		t.Fatalf("admit with four tenths of the stream in flight on a half-full stream: %v", err)
	}
	if err := b.Admit(ctx, bus.Work{InFlight: 1, Done: 400}); err != nil {
		t.Fatalf("admit with little in flight: %v", err)
	}
}

// Processed events older than the age are purged; an event a durable
// consumer has not processed stays, however old.
func TestRetentionAgesOutOnlyProcessedEvents(t *testing.T) {
	b := smallBus(t, 1<<20)
	ctx := t.Context()
	stopA := run(t, b, stage("a"), ack)
	stopB := run(t, b, stage("b"), ack)
	for i := range 3 {
		if err := b.Publish(ctx, request(t, i)); err != nil {
			t.Fatal(err)
		}
	}
	checkfor.Until(t, 20*time.Second, "both stages idle", func() bool { return consumerIdle(t, b, "a") && consumerIdle(t, b, "b") })
	stopB() // b is down: what comes next is not processed by it
	time.Sleep(600 * time.Millisecond)
	for i := 3; i < 5; i++ {
		if err := b.Publish(ctx, request(t, i)); err != nil {
			t.Fatal(err)
		}
	}
	checkfor.Until(t, 20*time.Second, "a idle", func() bool { return consumerIdle(t, b, "a") })
	time.Sleep(600 * time.Millisecond)
	// The first three are 1.2 s old, the last two 0.6 s.
	if purged, err := b.PurgeProcessed(ctx, time.Second); err != nil || purged != 3 {
		t.Fatalf("purged %d (%v), want the 3 processed events past the age", purged, err)
	}
	time.Sleep(time.Second)
	if purged, err := b.PurgeProcessed(ctx, time.Second); err != nil || purged != 0 {
		t.Fatalf("purged %d (%v) events stage b has not processed", purged, err)
	}
	if st := streamState(t, b); st.Msgs != 2 || st.FirstSeq != 4 {
		t.Fatalf("the stream holds %d from %d, want the 2 unprocessed from 4", st.Msgs, st.FirstSeq)
	}
	stopA()
}

// WaitForRoom holds an event while the stream is full, and hands it to
// the handler once processed events were purged; a wait that outlives the
// handler's deadline is a (retried) ErrFull.
func TestWaitForRoomHoldsEventsWhileFull(t *testing.T) {
	b := smallBus(t, 64<<10)
	ctx := t.Context()
	if _, err := b.Consumer(ctx, stage("late")); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		if err := b.Publish(ctx, request(t, i)); err != nil {
			if !errors.Is(err, bus.ErrFull) {
				t.Fatal(err)
			}
			break
		}
	}
	b.ForgetUsage()
	var full *bus.FullError
	if err := b.Admit(ctx, bus.Work{}); !errors.As(err, &full) { // a reading of the full stream
		t.Fatalf("admit on a full stream: %v", err)
	}
	called := make(chan struct{}, 2)
	h := b.WaitForRoom(func(context.Context, events.Event, any) ([]events.Event, error) {
		called <- struct{}{}
		return nil, nil
	})
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if _, err := h(short, request(t, -1), nil); !errors.Is(err, bus.ErrFull) {
		t.Fatalf("a wait past the deadline: %v, want ErrFull", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := h(ctx, request(t, -2), nil)
		done <- err
	}()
	select {
	case <-called:
		t.Fatal("handled while the stream is full")
	case <-time.After(600 * time.Millisecond):
	}
	run(t, b, stage("late"), ack)
	checkfor.Until(t, 20*time.Second, "the late stage to catch up", func() bool { return consumerIdle(t, b, "late") })
	if n, err := b.PurgeProcessed(ctx, 0); err != nil || n == 0 {
		t.Fatalf("purged %d: %v", n, err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the held event was not handled once there was room")
	}
	if len(called) != 1 {
		t.Fatalf("handler called %d times", len(called))
	}
}

// TestAdmitWhenUsageUnreadable: a reading of the stores that fails (here,
// a context already done; in production a JetStream API slowed by load)
// is not a full store. Admit decides on the last reading that succeeded,
// and with none it admits, leaving the hard limits to judge: a busy
// machine must not answer submissions 503 (it did, under a race run).
func TestAdmitWhenUsageUnreadable(t *testing.T) {
	b := smallBus(t, 64<<10)
	ctx := t.Context()
	done, cancel := context.WithCancel(ctx)
	cancel()
	if err := b.Admit(done, bus.Work{}); err != nil {
		t.Fatalf("no reading yet, and it cannot be made: %v, want admitted", err)
	}
	for i := 0; ; i++ {
		if err := b.Publish(ctx, request(t, i)); err != nil {
			if !errors.Is(err, bus.ErrFull) {
				t.Fatal(err)
			}
			break
		}
	}
	b.ForgetUsage()
	var full *bus.FullError
	if err := b.Admit(ctx, bus.Work{}); !errors.As(err, &full) {
		t.Fatalf("admit on a full stream: %v", err)
	}
	b.ForgetUsage()
	if err := b.Admit(done, bus.Work{}); !errors.As(err, &full) {
		t.Fatalf("a failed reading after one that found the stream full: %v, want the full error of the last good reading", err)
	}
}

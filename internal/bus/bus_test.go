package bus_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/checkfor"
	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/pkg/events"
)

// echo turns a CampaignRequested into one SellerSkipped, a stand-in stage.
func echo(ctx context.Context, in events.Event, payload any) ([]events.Event, error) {
	p, ok := payload.(*events.CampaignRequested)
	if !ok {
		return nil, fmt.Errorf("echo: payload %T", payload)
	}
	out, err := events.Derive(in, events.KindSellerSkipped, "echo", "only", events.SellerSkipped{
		CampaignID: p.CampaignID, SellerURL: "http://s", Stage: "echo", Code: "test", Reason: "echo"})
	if err != nil {
		return nil, err
	}
	return []events.Event{out}, nil
}

func stage(name string) bus.StageConfig {
	return bus.StageConfig{Name: name, Subjects: []string{events.KindCampaignRequested.Filter()}, Workers: 2,
		AckWait: time.Second, MaxDeliver: 4, RetryBase: 100 * time.Millisecond, DrainTimeout: 5 * time.Second}
}

func run(t *testing.T, b *bus.Bus, cfg bus.StageConfig, h bus.Handler) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx, cfg, h) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// subjectCount counts stored messages on a subject.
func subjectCount(t *testing.T, b *bus.Bus, stream, subject string) uint64 {
	t.Helper()
	s, err := b.JS.Stream(t.Context(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context(), jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects[subject]
}

func consumerIdle(t *testing.T, b *bus.Bus, name string) bool {
	c, err := b.JS.Consumer(t.Context(), bus.StreamEvents, name)
	if err != nil {
		return false
	}
	info, err := c.Info(t.Context())
	return err == nil && info.NumPending == 0 && info.NumAckPending == 0
}

func dlqMessages(t *testing.T, b *bus.Bus, stage string, want int) []*nats.Msg {
	t.Helper()
	sub, err := b.NC.SubscribeSync("_tmp.never")
	if err != nil {
		t.Fatal(err)
	}
	_ = sub.Unsubscribe()
	cons, err := b.JS.OrderedConsumer(t.Context(), bus.StreamDLQ, jetstream.OrderedConsumerConfig{FilterSubjects: []string{bus.DLQPrefix + stage}})
	if err != nil {
		t.Fatal(err)
	}
	var out []*nats.Msg
	deadline := time.Now().Add(20 * time.Second)
	for len(out) < want && time.Now().Before(deadline) {
		m, err := cons.Next(jetstream.FetchMaxWait(time.Second))
		if err != nil {
			continue
		}
		out = append(out, &nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
	}
	if len(out) != want {
		t.Fatalf("dead letters for %s: got %d, want %d", stage, len(out), want)
	}
	return out
}

func TestPublishBeforeAckSurvivesCrash(t *testing.T) {
	env := natstest.Start(t)
	replicaA := env.Connect(t, "a")
	replicaB := env.Connect(t, "b")
	crashed := make(chan struct{})
	var once sync.Once
	cfgA := bus.WithAfterPublish(stage("crashy"), func(events.Event) bool {
		once.Do(func() { close(crashed) })
		return false // "die" after publishing, before acking
	})
	stopA := run(t, replicaA, cfgA, echo)
	natstest.PublishRequest(t, env.Bus, "c-crash")
	select {
	case <-crashed:
	case <-time.After(20 * time.Second):
		t.Fatal("handler never ran")
	}
	stopA()
	if n := subjectCount(t, env.Bus, bus.StreamEvents, events.KindSellerSkipped.SubjectFor("c-crash")); n != 1 {
		t.Fatalf("outputs after crash = %d, want 1 (published before the ack)", n)
	}
	var handled atomic.Int32
	run(t, replicaB, stage("crashy"), func(ctx context.Context, in events.Event, p any) ([]events.Event, error) {
		handled.Add(1)
		return echo(ctx, in, p)
	})
	checkfor.Until(t, 20*time.Second, "redelivery to replica B", func() bool { return handled.Load() == 1 && consumerIdle(t, env.Bus, "crashy") })
	if n := subjectCount(t, env.Bus, bus.StreamEvents, events.KindSellerSkipped.SubjectFor("c-crash")); n != 1 {
		t.Fatalf("outputs after redelivery = %d, want exactly 1 (deterministic id de-duplicated)", n)
	}
}

func TestTransientErrorRetriesWithBackoff(t *testing.T) {
	env := natstest.Start(t)
	var mu sync.Mutex
	var times []time.Time
	run(t, env.Bus, stage("flaky"), func(ctx context.Context, in events.Event, p any) ([]events.Event, error) {
		mu.Lock()
		times = append(times, time.Now())
		n := len(times)
		mu.Unlock()
		if n < 3 {
			return nil, errors.New("seller timed out")
		}
		return echo(ctx, in, p)
	})
	natstest.PublishRequest(t, env.Bus, "c-flaky")
	checkfor.Until(t, 20*time.Second, "third delivery", func() bool {
		return subjectCount(t, env.Bus, bus.StreamEvents, events.KindSellerSkipped.SubjectFor("c-flaky")) == 1
	})
	mu.Lock()
	defer mu.Unlock()
	if len(times) != 3 {
		t.Fatalf("deliveries = %d, want 3", len(times))
	}
	// Backoff is 100ms then 200ms: redelivery must not come sooner (a plain
	// Nak would redeliver at once).
	if g := times[1].Sub(times[0]); g < 100*time.Millisecond {
		t.Fatalf("first retry after %v, want >= 100ms", g)
	}
	if g := times[2].Sub(times[1]); g < 200*time.Millisecond {
		t.Fatalf("second retry after %v, want >= 200ms", g)
	}
}

func TestMalformedEventsAreDeadLettered(t *testing.T) {
	env := natstest.Start(t)
	var calls atomic.Int32
	run(t, env.Bus, stage("strict"), func(ctx context.Context, in events.Event, p any) ([]events.Event, error) {
		calls.Add(1)
		return echo(ctx, in, p)
	})
	subj := events.KindCampaignRequested.SubjectFor("c-bad")
	// 1: no CloudEvents headers at all.
	if _, err := env.Bus.JS.PublishMsg(t.Context(), &nats.Msg{Subject: subj, Data: []byte(`{"hello":1}`)}); err != nil {
		t.Fatal(err)
	}
	// 2: a valid CloudEvent whose payload violates the schema.
	m := rawMsg(events.KindCampaignRequested, "bad-payload", "c-bad", []byte(`{"campaign_id":"c-bad","brief":"not an object"}`))
	if _, err := env.Bus.JS.PublishMsg(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	dl := dlqMessages(t, env.Bus, "strict", 2)
	var raw, schema *nats.Msg
	for _, m := range dl {
		if string(m.Data) == `{"hello":1}` {
			raw = m
		} else {
			schema = m
		}
	}
	if raw == nil || schema == nil {
		t.Fatalf("dead letters lost the originals: %v", dl)
	}
	if r := raw.Header.Get(bus.HeaderDLQReason); !strings.Contains(r, "ce-specversion") || raw.Header.Get(bus.HeaderDLQSubject) != subj {
		t.Fatalf("undecodable event: reason %q subject %q", r, raw.Header.Get(bus.HeaderDLQSubject))
	}
	if r := schema.Header.Get(bus.HeaderDLQReason); !strings.Contains(r, "/brief") || !strings.Contains(r, "schema") {
		t.Fatalf("schema violation: reason %q does not name the field", r)
	}
	checkfor.Until(t, 20*time.Second, "consumer idle", func() bool { return consumerIdle(t, env.Bus, "strict") })
	// Neither reaches the handler: the runner applies the decode rules,
	// schema included, before any handler is called.
	if calls.Load() != 0 {
		t.Fatalf("handler called %d times, want 0", calls.Load())
	}
	// The schema-invalid request still has a usable campaign id: its
	// submitter hears back through a CampaignRejected naming the field,
	// with an id derived from the request's.
	rej := lastEvent(t, env.Bus, events.KindCampaignRejected.SubjectFor("c-bad"))
	p, err := events.PayloadOf[events.CampaignRejected](rej, events.KindCampaignRejected)
	if err != nil {
		t.Fatal(err)
	}
	if p.CampaignID != "c-bad" || p.Field != "buyer" || !strings.Contains(p.Reason, "schema") || !strings.Contains(p.Reason, "/brief: got string, want object") ||
		rej.ID() != events.ChildID("bad-payload", "strict", "rejected") {
		t.Fatalf("rejection %s %+v", rej.ID(), p)
	}
	if n := subjectCount(t, env.Bus, bus.StreamEvents, events.KindCampaignRejected.SubjectFor("c-bad")); n != 1 {
		t.Fatalf("%d rejections, want 1", n)
	}
}

// lastEvent reads the last stored event on a subject.
func lastEvent(t *testing.T, b *bus.Bus, subject string) events.Event {
	t.Helper()
	var raw *jetstream.RawStreamMsg
	checkfor.Until(t, 20*time.Second, "an event on "+subject, func() bool {
		m, err := b.JS.Stream(t.Context(), bus.StreamEvents)
		if err != nil {
			return false
		}
		raw, err = m.GetLastMsgForSubject(t.Context(), subject)
		return err == nil
	})
	e, err := events.Decode(events.Header(raw.Header), raw.Data)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestPermanentErrorIsDeadLettered(t *testing.T) {
	env := natstest.Start(t)
	var calls atomic.Int32
	run(t, env.Bus, stage("perm"), func(ctx context.Context, in events.Event, p any) ([]events.Event, error) {
		calls.Add(1)
		return nil, bus.Permanent(fmt.Errorf("brief.end_date before start_date"))
	})
	natstest.PublishRequest(t, env.Bus, "c-perm")
	dl := dlqMessages(t, env.Bus, "perm", 1)
	if r := dl[0].Header.Get(bus.HeaderDLQReason); !strings.Contains(r, "end_date") {
		t.Fatalf("reason = %q", r)
	}
	if calls.Load() != 1 {
		t.Fatalf("permanent error retried: %d calls", calls.Load())
	}
}

func TestMaxDeliverExhaustionIsDeadLettered(t *testing.T) {
	env := natstest.Start(t)
	var calls atomic.Int32
	run(t, env.Bus, stage("doomed"), func(ctx context.Context, in events.Event, p any) ([]events.Event, error) {
		calls.Add(1)
		return nil, errors.New("seller down")
	})
	natstest.PublishRequest(t, env.Bus, "c-doomed")
	dl := dlqMessages(t, env.Bus, "doomed", 1)
	if r := dl[0].Header.Get(bus.HeaderDLQReason); !strings.Contains(r, "max deliveries (4) exhausted") || !strings.Contains(r, "seller down") {
		t.Fatalf("reason = %q", r)
	}
	if calls.Load() != 4 {
		t.Fatalf("handler calls = %d, want MaxDeliver = 4", calls.Load())
	}
}

// TestJanitorDeadLettersUnackedEvents covers events whose handler never
// answers (a replica that crashes every time): the server gives up after
// MaxDeliver, announces it in an advisory, and the janitor dead-letters it.
func TestJanitorDeadLettersUnackedEvents(t *testing.T) {
	env := natstest.Start(t)
	cfg := bus.StageConfig{Name: "hangs", Subjects: []string{events.KindCampaignRequested.Filter()}, AckWait: 200 * time.Millisecond, MaxDeliver: 2}
	cons, err := env.Bus.Consumer(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = env.Bus.RunJanitor(ctx) }()
	natstest.PublishRequest(t, env.Bus, "c-hang")
	var deliveries atomic.Int32
	cc, err := cons.Consume(func(m jetstream.Msg) { deliveries.Add(1) }) // never acks
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Stop()
	dl := dlqMessages(t, env.Bus, "hangs", 1)
	if r := dl[0].Header.Get(bus.HeaderDLQReason); !strings.Contains(r, "max deliveries (2)") {
		t.Fatalf("reason = %q", r)
	}
	if _, err := events.Decode(events.Header(dl[0].Header), dl[0].Data); err != nil {
		t.Fatalf("dead letter is not the original event: %v", err)
	}
	if deliveries.Load() != 2 {
		t.Fatalf("deliveries = %d, want 2", deliveries.Load())
	}
}

func TestReplicasShareDurableConsumer(t *testing.T) {
	env := natstest.Start(t)
	const n = 40
	var mu sync.Mutex
	seen := map[string]int{}
	byReplica := map[string]int{}
	handler := func(replica string) bus.Handler {
		return func(ctx context.Context, in events.Event, p any) ([]events.Event, error) {
			time.Sleep(5 * time.Millisecond)
			mu.Lock()
			seen[in.ID()]++
			byReplica[replica]++
			mu.Unlock()
			return echo(ctx, in, p)
		}
	}
	run(t, env.Connect(t, "r1"), stage("shared"), handler("r1"))
	run(t, env.Connect(t, "r2"), stage("shared"), handler("r2"))
	for i := 0; i < n; i++ {
		natstest.PublishRequest(t, env.Bus, fmt.Sprintf("c-%d", i))
	}
	checkfor.Until(t, 20*time.Second, "all handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == n && consumerIdle(t, env.Bus, "shared")
	})
	mu.Lock()
	defer mu.Unlock()
	for id, c := range seen {
		if c != 1 {
			t.Fatalf("event %s handled %d times", id, c)
		}
	}
	if byReplica["r1"] == 0 || byReplica["r2"] == 0 || byReplica["r1"]+byReplica["r2"] != n {
		t.Fatalf("work split %v, want both replicas used and %d in total", byReplica, n)
	}
}

func TestUpdateIsRevisionChecked(t *testing.T) {
	env := natstest.Start(t)
	kv, err := env.Bus.KV(t.Context(), bus.BucketCampaigns)
	if err != nil {
		t.Fatal(err)
	}
	type counter struct{ N int }
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := bus.Update(t.Context(), kv, "k", func(c *counter, _ bool) (bool, error) { c.N++; return true, nil }); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	var c counter
	if _, found, err := bus.GetJSON(t.Context(), kv, "k", &c); err != nil || !found || c.N != 20 {
		t.Fatalf("counter = %+v found=%v err=%v, want 20 (no lost update)", c, found, err)
	}
}

func TestProvisionIsIdempotent(t *testing.T) {
	env := natstest.Start(t) // provisions once
	other := env.Connect(t, "second")
	for i := 0; i < 2; i++ {
		if err := other.Provision(t.Context()); err != nil {
			t.Fatalf("provision %d: %v", i, err)
		}
	}
	s, err := env.Bus.JS.Stream(t.Context(), bus.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	c := info.Config
	// No age limit at the server (RunRetention ages out processed events
	// only) and no deletion to make room (DiscardNew).
	if c.Retention != jetstream.LimitsPolicy || c.MaxAge != 0 || c.Discard != jetstream.DiscardNew || c.MaxBytes != 1<<30 ||
		c.Duplicates != 20*time.Minute || c.Replicas != 1 {
		t.Fatalf("stream config %+v", c)
	}
	for _, b := range bus.Buckets {
		if _, err := other.KV(t.Context(), b); err != nil {
			t.Fatalf("bucket %s: %v", b, err)
		}
	}
}

// TestPublishNamesAnotherStream: with the event stream gone and another
// stream capturing its subjects, a publish is an error naming that stream,
// not a silent success.
func TestPublishNamesAnotherStream(t *testing.T) {
	t.Parallel()
	env := natstest.Start(t)
	ctx := t.Context()
	e, err := events.New(events.KindCampaignRequested, events.NewID(), "test", "c-1", events.CampaignRequested{CampaignID: "c-1",
		Brief: events.Brief{Name: "b", BudgetMicros: events.MustMicros(10), StartDate: "2028-06-01", EndDate: "2028-06-30"}, RequestedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Bus.Publish(ctx, e); err != nil {
		t.Fatalf("publish to the event stream: %v", err)
	}
	if err := env.Bus.JS.DeleteStream(ctx, bus.StreamEvents); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Bus.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "IMPOSTOR", Subjects: []string{events.SubjectRoot + ".>"}}); err != nil {
		t.Fatal(err)
	}
	e2, _ := events.New(events.KindCampaignRequested, events.NewID(), "test", "c-1", events.CampaignRequested{CampaignID: "c-1",
		Brief: events.Brief{Name: "b", BudgetMicros: events.MustMicros(10), StartDate: "2028-06-01", EndDate: "2028-06-30"}, RequestedAt: time.Now()})
	err = env.Bus.Publish(ctx, e2)
	if !errors.Is(err, bus.ErrWrongStream) || !strings.Contains(err.Error(), `"IMPOSTOR"`) {
		t.Fatalf("publish captured by another stream: err %v, want ErrWrongStream naming IMPOSTOR", err)
	}
}

// TestLongHandlerIsKeptAlive: a handler that runs for several ack waits is
// not redelivered meanwhile: the runner sends InProgress every AckWait/3.
func TestLongHandlerIsKeptAlive(t *testing.T) {
	t.Parallel()
	env := natstest.Start(t)
	b := env.Connect(t, "slow")
	cfg := stage("slow")
	cfg.AckWait, cfg.Workers = 300*time.Millisecond, 4
	var calls atomic.Int32
	run(t, b, cfg, func(ctx context.Context, in events.Event, p any) ([]events.Event, error) {
		calls.Add(1)
		time.Sleep(1200 * time.Millisecond) // four ack waits
		return echo(ctx, in, p)
	})
	natstest.PublishRequest(t, env.Bus, "c-slow")
	checkfor.Until(t, 20*time.Second, "the slow handler's output", func() bool {
		return subjectCount(t, env.Bus, bus.StreamEvents, events.KindSellerSkipped.SubjectFor("c-slow")) == 1 && consumerIdle(t, env.Bus, "slow")
	})
	time.Sleep(cfg.AckWait) // a redelivery, had there been one, would show by now
	if n := calls.Load(); n != 1 {
		t.Fatalf("handler ran %d times, want 1: the event was redelivered while it was handled", n)
	}
}

// TestAgainPublishesThenRedelivers: a handler that answers Again has its
// outputs published at once and is handed the same input again after the
// delay, past MaxDeliver when the stage sets it to -1 (no cap), until it
// answers for good; nothing is dead-lettered on the way.
func TestAgainPublishesThenRedelivers(t *testing.T) {
	env := natstest.Start(t)
	cfg := stage("again")
	cfg.MaxDeliver = -1
	var mu sync.Mutex
	var times []time.Time
	const rounds = 6 // more than stage()'s usual MaxDeliver of 4
	run(t, env.Bus, cfg, func(ctx context.Context, in events.Event, payload any) ([]events.Event, error) {
		mu.Lock()
		times = append(times, time.Now())
		n := len(times)
		mu.Unlock()
		out, err := echo(ctx, in, payload)
		if err != nil || n >= rounds {
			return out, err
		}
		return out, bus.Again(150*time.Millisecond, "not yet")
	})
	natstest.PublishRequest(t, env.Bus, "c-again")
	checkfor.Until(t, 20*time.Second, "the output of the first handling, published before the input is done", func() bool {
		return subjectCount(t, env.Bus, bus.StreamEvents, events.KindSellerSkipped.SubjectFor("c-again")) == 1
	})
	checkfor.Until(t, 20*time.Second, "the last handling", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(times) == rounds && consumerIdle(t, env.Bus, "again")
	})
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(times); i++ {
		if g := times[i].Sub(times[i-1]); g < 150*time.Millisecond {
			t.Fatalf("handling %d came %v after the previous one, before the Again delay", i+1, g)
		}
	}
	if n := subjectCount(t, env.Bus, bus.StreamEvents, events.KindSellerSkipped.SubjectFor("c-again")); n != 1 {
		t.Fatalf("outputs = %d, want 1 (the same output each time, de-duplicated)", n)
	}
	if n := subjectCount(t, env.Bus, bus.StreamDLQ, bus.DLQPrefix+"again"); n != 0 {
		t.Fatalf("%d dead letters", n)
	}
}

// TestDeadLetteredLineStillHasAnOutcome: a LineApproved the booker cannot
// handle is dead-lettered, and its campaign still hears of the line: a
// BookingFailed, unresolved (whether the seller booked it is not known).
func TestDeadLetteredLineStillHasAnOutcome(t *testing.T) {
	env := natstest.Start(t)
	cfg := stage("lines")
	cfg.Subjects = []string{events.KindLineApproved.Filter()}
	run(t, env.Bus, cfg, func(ctx context.Context, in events.Event, _ any) ([]events.Event, error) {
		return nil, bus.Permanent(errors.New("cannot book this"))
	})
	line := events.PlanLine{QuoteID: "qt-1", SellerURL: "http://s", PackageID: "p-1", Tier: events.TierAgency, CPMMicros: 10_000_000,
		Impressions: 1000, SpendMicros: 10_000_000}
	e, err := events.New(events.KindLineApproved, "line-1", "test", "c-line", events.LineApproved{CampaignID: "c-line", PlanRevision: 1,
		ApprovedBy: "auto", LineKey: "k-1", Lines: 1, Line: line})
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Bus.Publish(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	dlqMessages(t, env.Bus, "lines", 1)
	f := lastEvent(t, env.Bus, events.KindBookingFailed.SubjectFor("c-line"))
	bf, err := events.PayloadOf[events.BookingFailed](f, events.KindBookingFailed)
	if err != nil {
		t.Fatal(err)
	}
	if !bf.Unresolved || bf.Code != events.SkipDeadLettered || bf.LineKey != "k-1" || bf.SpendMicros != line.SpendMicros || !strings.Contains(bf.Reason, "cannot book this") {
		t.Fatalf("resolution %+v", bf)
	}
}

package pacer

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/checkfor"
	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/pkg/events"
)

// fakeReader answers each reading with the next of its readings (or
// error), counting the calls.
type fakeReader struct {
	mu    sync.Mutex
	calls atomic.Int64
	next  func(d events.DealBooked) (Reading, error)
	// gate, when set, holds every read until it is closed.
	gate chan struct{}
}

func (f *fakeReader) Read(ctx context.Context, d events.DealBooked) (Reading, error) {
	f.calls.Add(1)
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return Reading{}, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.next(d)
}

func (f *fakeReader) set(next func(d events.DealBooked) (Reading, error)) {
	f.mu.Lock()
	f.next = next
	f.mu.Unlock()
}

type wall struct {
	mu sync.Mutex
	t  time.Time
}

func (w *wall) now() time.Time { w.mu.Lock(); defer w.mu.Unlock(); return w.t }
func (w *wall) set(t time.Time) {
	w.mu.Lock()
	w.t = t
	w.mu.Unlock()
}

type fixture struct {
	svc    *Service
	reader *fakeReader
	clock  *wall
	env    *natstest.Env
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	env := natstest.Start(t)
	lines, err := bus.OpenStore[Line](t.Context(), env.Bus, bus.BucketPacing)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{reader: &fakeReader{}, clock: &wall{t: flightStart.Add(-time.Hour)}, env: env}
	f.reader.set(func(events.DealBooked) (Reading, error) { return Reading{}, nil })
	f.svc = &Service{Lines: lines, Reader: f.reader, Every: 24 * time.Hour, Now: f.clock.now, Log: natstest.Logger()}
	return f
}

func dealBookedEvent(t *testing.T, d events.DealBooked) events.Event {
	t.Helper()
	e, err := events.New(events.KindDealBooked, events.NewID(), events.StageBooker, d.CampaignID, d)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func dueEvent(t *testing.T, seq, round int) events.Event {
	t.Helper()
	d := booked()
	due := events.DeliveryDue{CampaignID: d.CampaignID, LineKey: d.LineKey, Seq: seq, Round: round, DueAt: flightStart}
	e, err := events.New(events.KindDeliveryDue, dueID(d.CampaignID, d.LineKey, seq, round), Stage, d.CampaignID, due)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (f *fixture) handle(t *testing.T, e events.Event) ([]events.Event, error) {
	t.Helper()
	p, _, err := events.Payload(e)
	if err != nil {
		t.Fatal(err)
	}
	return f.svc.Handle(t.Context(), e, p)
}

func (f *fixture) line(t *testing.T) Line {
	t.Helper()
	l, ok, err := f.svc.Lines.Get(t.Context(), LineID("c-1", "line-1"))
	if err != nil || !ok {
		t.Fatalf("line: %v %v", ok, err)
	}
	return l
}

// TestHandlerFollowsAndReads drives the handler through a line's life:
// booked (once, whatever the redeliveries), read on plan, read under plan
// (a deviation), a redelivered DeliveryDue answered with what its first
// handling stored without reading again, stale and duplicate rounds
// dropped, a failed reading, and the final snapshot.
func TestHandlerFollowsAndReads(t *testing.T) {
	f := newFixture(t)
	booking := dealBookedEvent(t, booked())
	for range 2 {
		out, err := f.handle(t, booking)
		if err != nil || len(out) != 0 {
			t.Fatalf("DealBooked: %v %v", out, err)
		}
	}
	l := f.line(t)
	if l.NextSeq != 0 || l.NextSlot != 1 || !l.NextDue.Equal(flightStart.AddDate(0, 0, 1)) || l.Deal.DealID != "DEMO-1" {
		t.Fatalf("line after booking: %+v", l)
	}
	// A reconciled DealBooked for the same line changes nothing.
	again := booked()
	again.Reconciled = true
	if _, err := f.handle(t, dealBookedEvent(t, again)); err != nil {
		t.Fatal(err)
	}
	if l2 := f.line(t); !l2.Anchor.Equal(l.Anchor) || l2.NextSeq != 0 {
		t.Fatalf("the line was followed twice: %+v", l2)
	}

	type reading struct {
		day   int
		spend events.Micros
		err   error
		due   events.Event
		kinds []string
		seq   int
	}
	dues := []events.Event{dueEvent(t, 0, 0), dueEvent(t, 1, 0), dueEvent(t, 2, 0)}
	for i, c := range []reading{
		{day: 1, spend: 2_000_000_000, due: dues[0], kinds: []string{events.KindDeliveryReported.Type}, seq: 0},
		{day: 2, spend: 1_600_000_000, due: dues[1], kinds: []string{events.KindDeliveryReported.Type, events.KindPacingDeviation.Type}, seq: 1},
		{day: 3, err: errors.New("seller down"), due: dues[2], kinds: []string{events.KindDeliveryReported.Type}, seq: 2},
	} {
		f.clock.set(flightStart.AddDate(0, 0, c.day))
		f.reader.set(func(events.DealBooked) (Reading, error) {
			if c.err != nil {
				return Reading{}, c.err
			}
			return Reading{SpendMicros: c.spend, Impressions: int64(c.spend / 20_000), AsOf: flightStart.AddDate(0, 0, c.day)}, nil
		})
		before := f.reader.calls.Load()
		out, err := f.handle(t, c.due)
		if err != nil {
			t.Fatalf("reading %d: %v", i, err)
		}
		if len(out) != len(c.kinds) {
			t.Fatalf("reading %d: %d outputs, want %v", i, len(out), c.kinds)
		}
		for j, e := range out {
			if e.Type() != c.kinds[j] {
				t.Fatalf("reading %d: output %d is %s", i, j, e.Type())
			}
		}
		s, err := events.PayloadOf[events.DeliveryReported](out[0], events.KindDeliveryReported)
		if err != nil || s.Seq != c.seq || out[0].ID() != SnapshotID("c-1", "line-1", c.seq) {
			t.Fatalf("reading %d: snapshot %+v id %s: %v", i, s, out[0].ID(), err)
		}
		// The same DeliveryDue redelivered: the same events, no new reading.
		again, err := f.handle(t, c.due)
		if err != nil || len(again) != len(out) || f.reader.calls.Load() != before+1 {
			t.Fatalf("reading %d redelivered: %d outputs, %d reads: %v", i, len(again), f.reader.calls.Load()-before, err)
		}
		for j := range out {
			if again[j].ID() != out[j].ID() || string(again[j].Data()) != string(out[j].Data()) {
				t.Fatalf("reading %d redelivered: output %d differs:\n%s\n%s", i, j, out[j].Data(), again[j].Data())
			}
		}
		// Another round of the same reading: nothing (this one made it).
		if out, err := f.handle(t, dueEvent(t, c.seq, 1)); err != nil || len(out) != 0 {
			t.Fatalf("reading %d, another round: %v %v", i, out, err)
		}
	}
	// A reading not yet due, and one of a line nobody follows: dropped.
	if out, err := f.handle(t, dueEvent(t, 7, 0)); err != nil || len(out) != 0 {
		t.Fatalf("stale due: %v %v", out, err)
	}
	stray := events.DeliveryDue{CampaignID: "c-1", LineKey: "nobody", Seq: 0, DueAt: flightStart}
	se, _ := events.New(events.KindDeliveryDue, events.NewID(), Stage, "c-1", stray)
	if out, err := f.handle(t, se); err != nil || len(out) != 0 {
		t.Fatalf("unknown line: %v %v", out, err)
	}
	l = f.line(t)
	if l.NextSeq != 3 || l.Missed != 1 || l.Last.Status != events.PacingNotReporting || l.Last.SpendMicros != 1_600_000_000 || l.Status() != "not_reporting" {
		t.Fatalf("after a failed reading: %+v", l)
	}
	// The flight ends: the final snapshot, then nothing.
	f.clock.set(flightEnd.Add(time.Minute))
	f.reader.set(func(events.DealBooked) (Reading, error) {
		return Reading{SpendMicros: 19_000_000_000, Impressions: 950_000, AsOf: flightEnd}, nil
	})
	out, err := f.handle(t, dueEvent(t, 3, 0))
	if err != nil || len(out) != 1 {
		t.Fatalf("final: %v %v", out, err)
	}
	s, _ := events.PayloadOf[events.DeliveryReported](out[0], events.KindDeliveryReported)
	if !s.Final || s.Status != events.PacingOnTrack || s.PacingIndex != 0.95 || !f.line(t).Done {
		t.Fatalf("final snapshot %+v", s)
	}
	if out, err := f.handle(t, dueEvent(t, 4, 0)); err != nil || len(out) != 0 {
		t.Fatalf("after the end: %v %v", out, err)
	}
	if _, err := f.svc.Handle(t.Context(), booking, &events.CampaignRequested{}); !bus.IsPermanent(err) {
		t.Fatalf("a payload the pacer does not handle: %v", err)
	}
}

// TestOneReadingPerSeq: two rounds of one reading handled at once by two
// pacers (the sweeper published it again while the first was slow) make
// one snapshot; a pacer stopped mid-reading records nothing and is asked
// again.
func TestOneReadingPerSeq(t *testing.T) {
	f := newFixture(t)
	if _, err := f.handle(t, dealBookedEvent(t, booked())); err != nil {
		t.Fatal(err)
	}
	f.clock.set(flightStart.AddDate(0, 0, 1))
	f.reader.set(func(events.DealBooked) (Reading, error) {
		return Reading{SpendMicros: 2_000_000_000, AsOf: flightStart.AddDate(0, 0, 1)}, nil
	})
	f.reader.gate = make(chan struct{})
	var wg sync.WaitGroup
	outs := make([][]events.Event, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := dueEvent(t, 0, i)
			p, _, _ := events.Payload(e)
			var err error
			outs[i], err = f.svc.Handle(context.Background(), e, p)
			if err != nil {
				t.Error(err)
			}
		}()
	}
	checkfor.Until(t, 10*time.Second, "both rounds reading", func() bool { return f.reader.calls.Load() >= 2 })
	close(f.reader.gate)
	wg.Wait()
	if n := len(outs[0]) + len(outs[1]); n != 1 {
		t.Fatalf("two rounds made %d snapshots", n)
	}

	// Stopped mid-reading: an error (the runner retries), nothing stored.
	f.reader.gate = make(chan struct{})
	ctx, cancel := context.WithCancel(t.Context())
	e := dueEvent(t, 1, 0)
	p, _, _ := events.Payload(e)
	errc := make(chan error, 1)
	go func() { _, err := f.svc.Handle(ctx, e, p); errc <- err }()
	checkfor.Until(t, 10*time.Second, "the reading under way", func() bool { return f.reader.calls.Load() >= 3 })
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("a reading cut short by shutdown was recorded")
	}
	if l := f.line(t); l.NextSeq != 1 || l.Missed != 0 {
		t.Fatalf("after a stopped reading: %+v", l)
	}
}

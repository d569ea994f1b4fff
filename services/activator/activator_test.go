package activator_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/services/activator"
)

// scripted is a DSP that answers each call with the next scripted error
// (nil: activated), recording every call. It stands in for the DSP, not
// for the broker: the seat records are in a real JetStream KV bucket.
type scripted struct {
	mu      sync.Mutex
	answers []error
	calls   []activator.Activation
	made    map[string]bool
}

func (d *scripted) Name() string { return "test" }

func (d *scripted) Activate(_ context.Context, a activator.Activation) (activator.Receipt, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, a)
	var err error
	if len(d.answers) > 0 {
		err, d.answers = d.answers[0], d.answers[1:]
	}
	if err != nil {
		return activator.Receipt{}, err
	}
	if d.made == nil {
		d.made = map[string]bool{}
	}
	replayed := d.made[a.IdempotencyKey]
	d.made[a.IdempotencyKey] = true
	return activator.Receipt{Ref: "ref-" + a.Deal.DealID, Replayed: replayed}, nil
}

func (d *scripted) callCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.calls)
}

type counts struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *counts) ObserveActivation(outcome string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	c.m[outcome]++
}

func (c *counts) get(o string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[o]
}

var now = time.Date(2028, 6, 1, 12, 0, 0, 0, time.UTC)

func booked(t *testing.T, campaign, dealID string, protocol events.Protocol) (events.Event, *events.DealBooked) {
	t.Helper()
	p := &events.DealBooked{CampaignID: campaign, LineKey: "line-" + dealID, SellerURL: "http://127.0.0.1:9001", SellerName: "S1", Protocol: protocol,
		PackageID: "pkg-1", QuoteID: "qt-1", DealID: dealID, DealType: "PD", CPMMicros: 20_000_000, AgreedCPMMicros: 20_000_000,
		Impressions: 100_000, SpendMicros: 2_000_000_000, Currency: "USD", FlightStart: "2028-06-04", FlightEnd: "2028-06-30", Tier: events.TierAgency,
		ActivationInstructions: map[string]string{"ttd": "In The Trade Desk, create a new PMP deal with Deal ID: " + dealID},
		OpenRTB:                &events.OpenRTBDeal{ID: dealID, BidFloorMicros: 20_000_000, Currency: "USD", AuctionType: 1, WSeat: []string{"ttd-seat-123"}},
		BookedAt:               now}
	if protocol.IsADCP() {
		p.DealID, p.MediaBuyID, p.ActivationInstructions, p.OpenRTB = "", "mb-1", nil, nil
	}
	e, err := events.New(events.KindDealBooked, events.NewID(), "booker", campaign, p)
	if err != nil {
		t.Fatal(err)
	}
	return e, p
}

func newService(t *testing.T, dsp activator.DSP, attempts int) (*activator.Service, *counts) {
	t.Helper()
	env := natstest.Start(t)
	seats, err := activator.OpenSeats(context.Background(), env.Bus)
	if err != nil {
		t.Fatal(err)
	}
	m := &counts{}
	return &activator.Service{Seats: seats, DSP: dsp, Attempts: attempts, Timeout: time.Second, Backoff: activator.StageConfig().Backoff,
		Now: func() time.Time { return now }, Metrics: m}, m
}

func retryable(code string) error { return &activator.Error{Code: code, Reason: code, Retryable: true} }

// TestHandleTable: each input and DSP behaviour gives the outputs, the
// seat status, the calls to the DSP (all with the deal's one key) and the
// runner instruction (done, again later, dead-letter) it must.
func TestHandleTable(t *testing.T) {
	cases := []struct {
		name      string
		protocol  events.Protocol
		dealID    string
		answers   []error
		attempts  int
		handlings int // how many times the input is handled (redeliveries)
		wantKinds []string
		wantCalls int
		wantSeat  events.SeatStatus
		wantLast  string // the last handling's error: "", "again", "permanent"
		outcome   string
	}{
		{name: "activated", protocol: events.ProtocolIAB, dealID: "DEMO-A1", handlings: 1,
			wantKinds: []string{"DealActivated"}, wantCalls: 1, wantSeat: events.SeatReadyToServe, outcome: activator.OutcomeActivated},
		{name: "redelivered after activation: same event, no second call", protocol: events.ProtocolIAB, dealID: "DEMO-A2", handlings: 3,
			wantKinds: []string{"DealActivated", "DealActivated", "DealActivated"}, wantCalls: 1, wantSeat: events.SeatReadyToServe, outcome: activator.OutcomeActivated},
		{name: "AdCP media buy skipped", protocol: events.ProtocolADCP, handlings: 1, wantCalls: 0, outcome: activator.OutcomeSkipped},
		{name: "5xx then success", protocol: events.ProtocolIAB, dealID: "DEMO-A3", answers: []error{retryable(activator.CodeHTTPError)}, handlings: 2,
			wantKinds: []string{"DealActivationFailed", "DealActivated"}, wantCalls: 2, wantSeat: events.SeatReadyToServe, outcome: activator.OutcomeRetried},
		{name: "refused is final", protocol: events.ProtocolIAB, dealID: "DEMO-A4",
			answers:   []error{&activator.Error{Code: activator.CodeRefused, Reason: "the DSP refused the deal: 422"}},
			handlings: 2, wantKinds: []string{"DealActivationFailed", "DealActivationFailed"}, wantCalls: 1, wantSeat: events.SeatApproved, outcome: activator.OutcomeRefused},
		{name: "attempts run out", protocol: events.ProtocolIAB, dealID: "DEMO-A5", attempts: 3,
			answers:   []error{retryable(activator.CodeTimeout), retryable(activator.CodeTimeout), retryable(activator.CodeUnreachable)},
			handlings: 3, wantKinds: []string{"DealActivationFailed", "DealActivationFailed", "DealActivationFailed"}, wantCalls: 3,
			wantSeat: events.SeatApproved, outcome: activator.OutcomeGaveUp},
		{name: "a plain error counts as retryable", protocol: events.ProtocolIAB, dealID: "DEMO-A6", answers: []error{errors.New("boom")}, handlings: 1,
			wantKinds: []string{"DealActivationFailed"}, wantCalls: 1, wantSeat: events.SeatApproved, wantLast: "again", outcome: activator.OutcomeRetried},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dsp := &scripted{answers: c.answers}
			svc, m := newService(t, dsp, c.attempts)
			in, p := booked(t, "cmp-1", c.dealID, c.protocol)
			var kinds []string
			ids := map[string]int{}
			var last error
			for i := 0; i < c.handlings; i++ {
				outs, err := svc.Handle(t.Context(), in, p)
				last = err
				for _, o := range outs {
					k, _ := events.KindOf(o.Type())
					kinds = append(kinds, k.Name)
					ids[o.ID()]++
					if o.Subject() != "cmp-1" {
						t.Fatalf("output subject %q", o.Subject())
					}
				}
			}
			if strings.Join(kinds, ",") != strings.Join(c.wantKinds, ",") {
				t.Fatalf("outputs %v, want %v", kinds, c.wantKinds)
			}
			if got := dsp.callCount(); got != c.wantCalls {
				t.Fatalf("DSP called %d times, want %d", got, c.wantCalls)
			}
			for _, a := range dsp.calls {
				if a.IdempotencyKey != dsp.calls[0].IdempotencyKey || a.IdempotencyKey != activator.IdempotencyKey(activator.SeatKey(p.SellerURL, p.DealID)) {
					t.Fatalf("keys %q and %q: one deal, one key", a.IdempotencyKey, dsp.calls[0].IdempotencyKey)
				}
				if a.Deal.ActivationInstructions["ttd"] == "" || a.Deal.OpenRTB == nil || a.Deal.OpenRTB.WSeat[0] != "ttd-seat-123" || a.Deal.FixedCPMMicros != 20_000_000 {
					t.Fatalf("activation lacks the seller's terms: %+v", a.Deal)
				}
			}
			switch c.wantLast {
			case "":
				if last != nil && c.answers == nil {
					t.Fatalf("last handling: %v", last)
				}
			case "again":
				if last == nil || bus.IsPermanent(last) || !strings.Contains(last.Error(), "again in") {
					t.Fatalf("last handling: %v, want bus.Again", last)
				}
			}
			if m.get(c.outcome) == 0 {
				t.Fatalf("metrics %v lack %s", m.m, c.outcome)
			}
			if c.protocol.IsADCP() {
				return
			}
			seat, found, err := svc.Seats.Get(t.Context(), activator.SeatKey(p.SellerURL, p.DealID))
			if err != nil || !found || seat.Status != c.wantSeat || seat.Origin != events.OriginBooked || seat.CampaignID != "cmp-1" || seat.LineKey != p.LineKey {
				t.Fatalf("seat %+v found %v err %v, want status %s", seat, found, err, c.wantSeat)
			}
			if seat.Activation.Attempts != c.wantCalls {
				t.Fatalf("attempts recorded %d, want %d", seat.Activation.Attempts, c.wantCalls)
			}
		})
	}
}

// TestRetryEventsAndAgain: a retryable failure publishes its own
// DealActivationFailed (one id per attempt) and asks to be handled again
// after the stage's backoff; the final failure's event is published again
// under its id on a redelivery, and the DSP is not called again.
func TestRetryEventsAndAgain(t *testing.T) {
	dsp := &scripted{answers: []error{retryable(activator.CodeHTTPError), retryable(activator.CodeHTTPError), &activator.Error{Code: activator.CodeRefused, Reason: "no"}}}
	svc, _ := newService(t, dsp, 8)
	in, p := booked(t, "cmp-2", "DEMO-R1", events.ProtocolIAB)
	var ids []string
	for i := 1; i <= 2; i++ {
		outs, err := svc.Handle(t.Context(), in, p)
		if err == nil || !strings.Contains(err.Error(), "again in "+activator.StageConfig().Backoff(uint64(i)).String()) {
			t.Fatalf("attempt %d: err %v, want again after the stage's backoff", i, err)
		}
		f, err := events.PayloadOf[events.DealActivationFailed](outs[0], events.KindDealActivationFailed)
		if err != nil || !f.Retryable || f.Attempt != i || f.Code != activator.CodeHTTPError || f.DSP != "test" {
			t.Fatalf("attempt %d: %+v %v", i, f, err)
		}
		ids = append(ids, outs[0].ID())
	}
	if ids[0] == ids[1] {
		t.Fatal("two attempts' failures share an id")
	}
	outs, err := svc.Handle(t.Context(), in, p)
	if err != nil || len(outs) != 1 {
		t.Fatalf("final: %v %v", outs, err)
	}
	f, _ := events.PayloadOf[events.DealActivationFailed](outs[0], events.KindDealActivationFailed)
	if f.Retryable || f.Code != activator.CodeRefused || f.Attempt != 3 {
		t.Fatalf("final failure %+v", f)
	}
	again, err := svc.Handle(t.Context(), in, p)
	if err != nil || len(again) != 1 || again[0].ID() != outs[0].ID() || dsp.callCount() != 3 {
		t.Fatalf("redelivered final: %v %v, %d calls", again, err, dsp.callCount())
	}
}

// TestPushedDealLifecycle: a pushed deal is pending until approved; the
// approval of its terms activates it (applied twice, by the API and by
// the stage, it is one approval); an approval of terms the seller changed
// since, or of a rejected deal, activates nothing; the status follows the
// flight.
func TestPushedDealLifecycle(t *testing.T) {
	dsp := &scripted{}
	svc, m := newService(t, dsp, 8)
	ctx := t.Context()
	terms := events.DealTerms{DealID: "PUSH-1", DealType: "PG", SellerURL: "http://127.0.0.1:9001", FixedCPMMicros: 25_000_000, Currency: "USD",
		Impressions: 500_000, FlightStart: "2028-06-04", FlightEnd: "2028-06-30", BuyerSeatIDs: []string{"ttd-seat-123"}}
	key := activator.SeatKey(terms.SellerURL, terms.DealID)
	seat, err := svc.Seats.Transition(ctx, key, func(s *activator.Seat, exists bool) (bool, error) { return s.Receive(exists, key, terms, now) })
	if err != nil || seat.Status != events.SeatPending || seat.Origin != events.OriginPushed || seat.CampaignID != activator.PushedCampaignID(key) {
		t.Fatalf("received: %+v %v", seat, err)
	}
	if events.ValidateCampaignID(seat.CampaignID) != nil {
		t.Fatalf("pushed campaign id %q is not a campaign id", seat.CampaignID)
	}
	approve := func(tt events.DealTerms) (events.Event, *events.DealApproved) {
		p := &events.DealApproved{CampaignID: seat.CampaignID, DealKey: key, ApprovedBy: "api", Terms: tt, ApprovedAt: now}
		e, err := events.New(events.KindDealApproved, events.NewID(), "api", seat.CampaignID, p)
		if err != nil {
			t.Fatal(err)
		}
		return e, p
	}
	// Stale: the approval names other terms than the pending ones.
	other := terms
	other.FixedCPMMicros = 24_000_000
	e, p := approve(other)
	if outs, err := svc.Handle(ctx, e, p); err != nil || len(outs) != 0 || m.get(activator.OutcomeStale) != 1 || dsp.callCount() != 0 {
		t.Fatalf("stale approval: %v %v", outs, err)
	}
	// The API's transition, then the stage's: one approval.
	if _, err := svc.Seats.Transition(ctx, key, func(s *activator.Seat, exists bool) (bool, error) {
		return s.Approve(exists, activator.TermsHash(terms), "api", now)
	}); err != nil {
		t.Fatal(err)
	}
	e, p = approve(terms)
	outs, err := svc.Handle(ctx, e, p)
	if err != nil || len(outs) != 1 {
		t.Fatalf("approved: %v %v", outs, err)
	}
	a, _ := events.PayloadOf[events.DealActivated](outs[0], events.KindDealActivated)
	if a.Origin != events.OriginPushed || a.SeatStatus != events.SeatReadyToServe || a.DealID != "PUSH-1" || outs[0].Subject() != seat.CampaignID {
		t.Fatalf("activated %+v", a)
	}
	seat, _, _ = svc.Seats.Get(ctx, key)
	for _, c := range []struct {
		at   time.Time
		want events.SeatStatus
	}{
		{now, events.SeatReadyToServe},
		{time.Date(2028, 6, 4, 0, 0, 0, 0, time.UTC), events.SeatActive},
		{time.Date(2028, 6, 30, 23, 59, 0, 0, time.UTC), events.SeatActive},
		{time.Date(2028, 7, 1, 0, 0, 0, 0, time.UTC), events.SeatComplete},
	} {
		if got := seat.StatusAt(c.at); got != c.want {
			t.Fatalf("status at %s = %s, want %s", c.at, got, c.want)
		}
	}
	// A push of other terms for the approved deal is refused; the same
	// terms again change nothing.
	if _, err := svc.Seats.Transition(ctx, key, func(s *activator.Seat, exists bool) (bool, error) { return s.Receive(exists, key, other, now) }); !errors.Is(err, activator.ErrState) {
		t.Fatalf("new price for an approved deal: %v", err)
	}
	if _, err := svc.Seats.Transition(ctx, key, func(s *activator.Seat, exists bool) (bool, error) { return s.Receive(exists, key, terms, now) }); err != nil {
		t.Fatal(err)
	}
	// A rejected deal is not activated by a late approval.
	terms2 := terms
	terms2.DealID = "PUSH-2"
	key2 := activator.SeatKey(terms2.SellerURL, terms2.DealID)
	if _, err := svc.Seats.Transition(ctx, key2, func(s *activator.Seat, exists bool) (bool, error) { return s.Receive(exists, key2, terms2, now) }); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Seats.Transition(ctx, key2, func(s *activator.Seat, exists bool) (bool, error) {
		return s.Reject(exists, "api", "price too high", now)
	}); err != nil {
		t.Fatal(err)
	}
	p2 := &events.DealApproved{CampaignID: activator.PushedCampaignID(key2), DealKey: key2, ApprovedBy: "api", Terms: terms2, ApprovedAt: now}
	e2, _ := events.New(events.KindDealApproved, events.NewID(), "api", p2.CampaignID, p2)
	if outs, err := svc.Handle(ctx, e2, p2); err != nil || len(outs) != 0 || dsp.callCount() != 1 {
		t.Fatalf("approval of a rejected deal: %v %v, %d calls", outs, err, dsp.callCount())
	}
	// New terms after a rejection are a new proposal: pending again.
	terms2.FixedCPMMicros = 20_000_000
	s2, err := svc.Seats.Transition(ctx, key2, func(s *activator.Seat, exists bool) (bool, error) { return s.Receive(exists, key2, terms2, now) })
	if err != nil || s2.Status != events.SeatPending || s2.Pushes != 2 {
		t.Fatalf("re-pushed after rejection: %+v %v", s2, err)
	}
}

// TestBookedDealNeedsADealID: an IAB DealBooked without a deal id can never
// be activated: dead-lettered, not retried.
func TestBookedDealNeedsADealID(t *testing.T) {
	svc, _ := newService(t, &scripted{}, 8)
	in, p := booked(t, "cmp-3", "DEMO-X", events.ProtocolIAB)
	p.DealID = ""
	if _, err := svc.Handle(t.Context(), in, p); !bus.IsPermanent(err) {
		t.Fatalf("err %v, want permanent", err)
	}
}

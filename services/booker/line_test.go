package booker

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/campaign"
	"github.com/dealflow/dealflow/internal/sandbox"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/sellerclient"
)

// clock is a settable clock for the booking horizon.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// withClock makes the fixture's booker run on a fake clock, with a short
// booking call and one attempt per call, and returns the clock.
func (f *fixture) withClock() *clock {
	c := &clock{t: time.Now().UTC()}
	f.svc.Now, f.svc.Booker.Now = c.now, c.now
	f.svc.BookingHorizon = time.Minute
	f.svc.Booker.CallTimeout = 300 * time.Millisecond
	f.svc.Booker.Client = sellerclient.New(sellerclient.Config{AllowPrivate: true, MaxAttempts: 1,
		HTTPClient: &http.Client{Transport: &f.reads}})
	return c
}

// silentReads makes the seller's reads (GET) fail after they are sent, as
// a seller that stopped answering: the booker cannot learn from the quote
// what became of a booking. Off, requests pass.
type silentReads struct{ on atomic.Bool }

func (s *silentReads) RoundTrip(r *http.Request) (*http.Response, error) {
	if s.on.Load() && r.Method == http.MethodGet {
		return nil, errors.New("the seller stopped answering (test)")
	}
	return http.DefaultTransport.RoundTrip(r)
}

// againOf reports whether err is bus.Again's.
func againOf(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "again in ")
}

// TestRefusedConnectionFailsAtOnce: a seller refusing connections at
// booking time fails its lines definitely (nothing was sent), at the first
// attempt, with the code; the re-plan leaves the seller's other quotes out
// (here the only seller, so the campaign ends failed, its budget free).
func TestRefusedConnectionFailsAtOnce(t *testing.T) {
	f := newFixture(t, nil)
	f.withClock()
	appr := f.store(t, []events.PlanLine{f.line(f.quotes[0], 200000)})
	if err := f.seller.SetFaults(sandbox.Faults{Down: true}); err != nil {
		t.Fatal(err)
	}
	out, err := f.svc.bookAll(t.Context(), appr)
	if err != nil {
		t.Fatalf("a refused connection was retried: %v", err)
	}
	k := kinds(out)
	if len(k[events.KindBookingFailed.Type]) != 1 {
		t.Fatalf("outputs %v", keysOf(k))
	}
	bf := must(events.PayloadOf[events.BookingFailed](k[events.KindBookingFailed.Type][0], events.KindBookingFailed))
	if bf.Code != "connection_refused" || bf.Unresolved || bf.LineKey == "" || bf.PlanRevision != 1 {
		t.Fatalf("failure %+v", bf)
	}
	if len(k[events.KindPortfolioProposed.Type]) != 0 || len(k[events.KindCampaignCompleted.Type]) != 1 {
		t.Fatalf("the unreachable seller was re-planned: %v", keysOf(k))
	}
	done := must(events.PayloadOf[events.CampaignCompleted](k[events.KindCampaignCompleted.Type][0], events.KindCampaignCompleted))
	if done.Status != events.StatusFailed || len(done.Failed) != 1 {
		t.Fatalf("campaign %s with %d failures", done.Status, len(done.Failed))
	}
	led := ledgerOfFixture(t, f)
	if c := led.Committed(); c != 0 {
		t.Fatalf("a definite failure keeps %d micros reserved", c)
	}
}

// TestUnknownOutcomeIsReconciled: a booking whose outcome is unknown (the
// seller holds the request, or answers 503) is retried, becomes an
// unresolved BookingFailed at the horizon with its spend reserved, and the
// campaign ends partial; the reconciler then asks the seller (again while
// it is down) and publishes what it shows, exactly once: the deal when it
// booked (the campaign's spend and status follow), not_booked with the
// reservation released when it did not.
func TestUnknownOutcomeIsReconciled(t *testing.T) {
	cases := []struct {
		fault  sandbox.BookingFault
		booked bool
	}{{sandbox.BookingThenHang, true}, {sandbox.BookingHang, false}, {sandbox.BookingUnavailable, false}}
	for _, tc := range cases {
		t.Run(string(tc.fault), func(t *testing.T) {
			f := newFixture(t, nil)
			clk := f.withClock()
			ok, stalled := f.line(f.quotes[0], 200000), f.line(f.quotes[1], 200000)
			appr := f.store(t, []events.PlanLine{ok, stalled})
			lines, err := f.svc.book(t.Context(), appr)
			if err != nil || len(lines) != 2 {
				t.Fatal(err)
			}
			// The first line books; its DealBooked is out before the
			// other line is even tried.
			out, err := f.svc.line(t.Context(), lines[0])
			if err != nil || len(kinds(out)[events.KindDealBooked.Type]) != 1 {
				t.Fatalf("first line: %v %v", keysOf(kinds(out)), err)
			}
			if err := f.seller.SetFaults(sandbox.Faults{Booking: tc.fault}); err != nil {
				t.Fatal(err)
			}
			f.reads.on.Store(true) // and it answers nothing else either
			out, err = f.svc.line(t.Context(), lines[1])
			if !errors.Is(err, errOutcomeUnknown) || len(out) != 0 {
				t.Fatalf("stalled line: %v %v, want an unknown outcome and nothing published", keysOf(kinds(out)), err)
			}
			// Retried before the horizon: still unknown, same key.
			clk.add(30 * time.Second)
			if _, err := f.svc.line(t.Context(), lines[1]); !errors.Is(err, errOutcomeUnknown) {
				t.Fatalf("retry: %v", err)
			}
			if n := bookingsWithOneKey(t, f); n != 1 {
				t.Fatalf("the retries used %d idempotency keys, want 1", n)
			}

			// At the horizon: unresolved, spend still reserved, campaign partial.
			clk.add(31 * time.Second)
			out, err = f.svc.line(t.Context(), lines[1])
			if !againOf(err) {
				t.Fatalf("at the horizon: %v, want Again", err)
			}
			k := kinds(out)
			bf := must(events.PayloadOf[events.BookingFailed](k[events.KindBookingFailed.Type][0], events.KindBookingFailed))
			if bf.Code != CodeOutcomeUnknown || !bf.Unresolved {
				t.Fatalf("unresolved report %+v", bf)
			}
			done := must(events.PayloadOf[events.CampaignCompleted](k[events.KindCampaignCompleted.Type][0], events.KindCampaignCompleted))
			if done.Status != events.StatusPartial || len(done.Unresolved) != 1 || len(done.Deals) != 1 {
				t.Fatalf("campaign at the horizon: %s, %d unresolved, %d deals", done.Status, len(done.Unresolved), len(done.Deals))
			}
			led := ledgerOfFixture(t, f)
			if led.Committed() != ok.SpendMicros+stalled.SpendMicros {
				t.Fatalf("committed %d, want both lines reserved (%d)", led.Committed(), ok.SpendMicros+stalled.SpendMicros)
			}

			// The seller is down: nothing to tell, asked again later.
			if err := f.seller.SetFaults(sandbox.Faults{Down: true}); err != nil {
				t.Fatal(err)
			}
			clk.add(time.Minute)
			if out, err := f.svc.line(t.Context(), lines[1]); !againOf(err) || len(out) != 0 {
				t.Fatalf("seller down: %v %v", keysOf(kinds(out)), err)
			}
			// Back: the reconciler publishes what the seller shows.
			if err := f.seller.SetFaults(sandbox.Faults{}); err != nil {
				t.Fatal(err)
			}
			f.reads.on.Store(false)
			out, err = f.svc.line(t.Context(), lines[1])
			if err != nil {
				t.Fatal(err)
			}
			k = kinds(out)
			final := must(f.svc.Campaigns.Get(t.Context(), f.c.ID))
			led = ledgerOfFixture(t, f)
			if tc.booked {
				if len(k[events.KindDealBooked.Type]) != 1 {
					t.Fatalf("reconciled: %v", keysOf(k))
				}
				d := must(events.PayloadOf[events.DealBooked](k[events.KindDealBooked.Type][0], events.KindDealBooked))
				if !d.Reconciled || d.DealID != f.seller.Deals()[1].DealID {
					t.Fatalf("reconciled deal %+v, seller deals %+v", d, f.seller.Deals())
				}
				if final.Status != events.StatusCompleted || len(final.Deals) != 2 || len(final.Unresolved) != 0 ||
					final.TotalSpend() != ok.SpendMicros+stalled.SpendMicros {
					t.Fatalf("campaign after reconciliation: %s, %d deals, %d unresolved, spend %d", final.Status, len(final.Deals), len(final.Unresolved), final.TotalSpend())
				}
			} else {
				bf := must(events.PayloadOf[events.BookingFailed](k[events.KindBookingFailed.Type][0], events.KindBookingFailed))
				if bf.Code != CodeNotBooked || bf.Unresolved {
					t.Fatalf("reconciled failure %+v", bf)
				}
				if led.Committed() != ok.SpendMicros {
					t.Fatalf("committed %d after not_booked, want the reservation released (%d)", led.Committed(), ok.SpendMicros)
				}
				if final.Status != events.StatusPartial || len(final.Unresolved) != 0 || len(final.Failures) != 1 || len(f.seller.Deals()) != 1 {
					t.Fatalf("campaign after reconciliation: %s, %d unresolved, %d failures, seller deals %d", final.Status, len(final.Unresolved), len(final.Failures), len(f.seller.Deals()))
				}
			}
			// Delivered again (a lost ack): the same event, nothing new.
			again, err := f.svc.line(t.Context(), lines[1])
			if err != nil || len(again) == 0 || again[0].ID() != out[0].ID() {
				t.Fatalf("redelivery: %v %v", keysOf(kinds(again)), err)
			}
			if n := len(f.seller.Deals()); (tc.booked && n != 2) || (!tc.booked && n != 1) {
				t.Fatalf("seller holds %d deals", n)
			}
		})
	}
}

// TestRefusedRetryAfterUnknownKeepsTheReservation: a booking that reached
// the seller unanswered (it booked, then hung), retried while the seller
// refuses connections: the retry never left, which says nothing about the
// first call, so the line stays unknown with its spend reserved (never
// failed and released while the seller holds its deal) and is reconciled
// to the deal once the seller answers.
func TestRefusedRetryAfterUnknownKeepsTheReservation(t *testing.T) {
	f := newFixture(t, nil)
	clk := f.withClock()
	l := f.line(f.quotes[0], 200000)
	lines, err := f.svc.book(t.Context(), f.store(t, []events.PlanLine{l}))
	if err != nil || len(lines) != 1 {
		t.Fatal(err)
	}
	if err := f.seller.SetFaults(sandbox.Faults{Booking: sandbox.BookingThenHang}); err != nil {
		t.Fatal(err)
	}
	f.reads.on.Store(true)
	if _, err := f.svc.line(t.Context(), lines[0]); !errors.Is(err, errOutcomeUnknown) {
		t.Fatalf("first attempt: %v, want an unknown outcome", err)
	}
	if err := f.seller.SetFaults(sandbox.Faults{Down: true}); err != nil {
		t.Fatal(err)
	}
	clk.add(10 * time.Second)
	out, err := f.svc.line(t.Context(), lines[0])
	if !errors.Is(err, errOutcomeUnknown) || len(out) != 0 {
		t.Fatalf("refused retry: %v %v, want an unknown outcome and nothing published", keysOf(kinds(out)), err)
	}
	if led := ledgerOfFixture(t, f); led.Committed() != l.SpendMicros || len(f.seller.Deals()) != 1 {
		t.Fatalf("committed %s with %d deals at the seller, want %s reserved", led.Committed(), len(f.seller.Deals()), l.SpendMicros)
	}
	if err := f.seller.SetFaults(sandbox.Faults{}); err != nil {
		t.Fatal(err)
	}
	f.reads.on.Store(false)
	out, err = f.svc.line(t.Context(), lines[0])
	k := kinds(out)
	if err != nil || len(k[events.KindDealBooked.Type]) != 1 {
		t.Fatalf("seller back: %v %v", keysOf(k), err)
	}
	d := must(events.PayloadOf[events.DealBooked](k[events.KindDealBooked.Type][0], events.KindDealBooked))
	if d.DealID != f.seller.Deals()[0].DealID || len(f.seller.Deals()) != 1 {
		t.Fatalf("deal %s, seller deals %+v", d.DealID, f.seller.Deals())
	}
}

// bookingsWithOneKey counts the distinct idempotency keys of the deal
// bookings the seller received.
func bookingsWithOneKey(t *testing.T, f *fixture) int {
	t.Helper()
	keys := map[string]bool{}
	for _, r := range f.seller.Requests() {
		if r.Method == "POST" && strings.HasSuffix(r.Path, "/api/v1/deals") {
			var b struct {
				Key string `json:"idempotency_key"`
			}
			if err := jsonUnmarshal(r.Body, &b); err == nil {
				keys[b.Key] = true
			}
		}
	}
	// One key for the first (booked) line, one for the stalled one.
	return len(keys) - 1
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func ledgerOfFixture(t *testing.T, f *fixture) Ledger {
	t.Helper()
	led, found, err := f.svc.Ledger.Get(t.Context(), f.c.ID)
	if err != nil || !found {
		t.Fatalf("ledger: found %v, %v", found, err)
	}
	return led
}

// TestLineAheadOfItsRecordIsRetried: a line delivered before the campaign
// record read shows its approval taken up (a replica behind the leader)
// is retried, not dead-lettered; once the record has caught up it books.
func TestLineAheadOfItsRecordIsRetried(t *testing.T) {
	f := newFixture(t, nil)
	l := f.line(f.quotes[0], 200000)
	appr := f.store(t, []events.PlanLine{l})
	line := must(events.Derive(appr, events.KindLineApproved, events.StageBooker, "line:"+campaign.LineKey(l),
		events.LineApproved{CampaignID: f.c.ID, PlanRevision: 1, ApprovedBy: "auto", LineKey: campaign.LineKey(l), Lines: 1, Line: l}))
	_, err := f.svc.bookLine(t.Context(), line)
	if err == nil || bus.IsPermanent(err) {
		t.Fatalf("a line ahead of its record: %v, want a transient error", err)
	}
	if n := len(f.seller.Deals()); n != 0 {
		t.Fatalf("booked %d deals before the approval was taken up", n)
	}
	if _, err := f.svc.book(t.Context(), appr); err != nil {
		t.Fatal(err)
	}
	out, err := f.svc.bookLine(t.Context(), line)
	if err != nil || len(kinds(out)[events.KindDealBooked.Type]) != 1 {
		t.Fatalf("after the approval: %v %v", keysOf(kinds(out)), err)
	}
}

package e2e

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/app"
	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/checkfor"
	"github.com/dealflow/dealflow/internal/config"
	"github.com/dealflow/dealflow/internal/demo"
	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/internal/sandbox"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/sellerclient"
	"github.com/dealflow/dealflow/services/booker"
)

// Booking settings of these tests: one booking call gives up after
// bookCall, an unknown outcome is reported at horizon and then reconciled
// every reconcile.
const (
	bookCall  = 400 * time.Millisecond
	horizon   = 3 * time.Second
	reconcile = 200 * time.Millisecond
)

// bookingStack is the whole pipeline against the default sandbox market,
// with short booking settings (startBookingStack's atApproval runs on the
// first approval the book consumer takes up, before its lines are handed
// out).
type bookingStack struct {
	*stack
	api string
}

func startBookingStack(t *testing.T, atApproval func(m *sandbox.Market, appr events.PortfolioApproved)) *bookingStack {
	t.Helper()
	ctx := context.Background()
	m, err := sandbox.Start(ctx, sandbox.DefaultMarket())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	cfg := config.Defaults()
	cfg.DataDir, cfg.NATSPort, cfg.RegistryURL, cfg.AllowPrivate, cfg.Window = t.TempDir(), 0, m.RegistryURL, true, 45*time.Second
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.BookingHorizon, cfg.BookCallTO, cfg.ReconcileEvery = horizon, bookCall, reconcile
	var once sync.Once
	wrap := func(stage string, h bus.Handler) bus.Handler {
		if stage != booker.StageBook {
			return h
		}
		return func(ctx context.Context, in events.Event, payload any) ([]events.Event, error) {
			once.Do(func() {
				if appr, ok := payload.(*events.PortfolioApproved); ok {
					atApproval(m, *appr)
				}
			})
			return h(ctx, in, payload)
		}
	}
	a, err := app.Start(ctx, cfg, natstest.Logger(), app.Options{Credentials: m.Credentials(), SweepEvery: 200 * time.Millisecond, WrapHandler: wrap})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	return &bookingStack{stack: &stack{market: m, app: a}, api: "http://" + a.HTTPAddr}
}

// sellerOf is the sandbox IAB seller behind a (canonical) seller URL.
func sellerOf(m *sandbox.Market, url string) *sandbox.Seller {
	for _, s := range m.Sellers {
		if u, err := sellerclient.CanonicalURL(s.URL); err == nil && u == url {
			return s
		}
	}
	return nil
}

// stallFirstIABSeller picks the seller of the approval's first IAB line
// and hands it to fault, which makes it misbehave from now on.
func stallFirstIABSeller(picked *atomic.Pointer[sandbox.Seller], fault func(*sandbox.Seller)) func(*sandbox.Market, events.PortfolioApproved) {
	return func(m *sandbox.Market, appr events.PortfolioApproved) {
		for _, l := range appr.Lines {
			if l.Protocol.IsADCP() {
				continue
			}
			if s := sellerOf(m, l.SellerURL); s != nil {
				picked.Store(s)
				fault(s)
				return
			}
		}
	}
}

// recorded is one event a test saw, with when it saw it.
type recorded struct {
	e  events.Event
	at time.Time
}

// record follows a campaign's events into a list until ctx ends.
func (s *bookingStack) record(t *testing.T, id string) (func() []recorded, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	var mu sync.Mutex
	var got []recorded
	go func() {
		_ = s.app.Bus.Follow(ctx, id, func(e events.Event) bool {
			mu.Lock()
			got = append(got, recorded{e, time.Now()})
			mu.Unlock()
			return true
		})
	}()
	t.Cleanup(cancel)
	return func() []recorded {
		mu.Lock()
		defer mu.Unlock()
		return append([]recorded(nil), got...)
	}, cancel
}

func payloads[T any](t *testing.T, evs []recorded, k events.Kind) []T {
	t.Helper()
	var out []T
	for _, r := range evs {
		if r.e.Type() == k.Type {
			p, err := events.PayloadOf[T](r.e, k)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, p)
		}
	}
	return out
}

// TestRefusedSellerAtBookingIsReplanned: one seller refuses connections
// at booking time. The other lines' DealBooked events are published as
// soon as their sellers answer (not held back by the refused seller), the
// refused lines fail definitely at once (code connection_refused, no
// retries) and their budget is re-planned to other quotes, and the
// campaign finishes with every deal the sellers hold reported once.
func TestRefusedSellerAtBookingIsReplanned(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a whole campaign: skipped under -short")
	}
	var down atomic.Pointer[sandbox.Seller]
	s := startBookingStack(t, stallFirstIABSeller(&down, func(s *sandbox.Seller) {
		if err := s.SetFaults(sandbox.Faults{Down: true}); err != nil {
			t.Error(err)
		}
	}))
	req := demo.SampleCampaign("e2e-refused", "adaptive")
	seen, _ := s.record(t, req.CampaignID)
	s.submit(t, req)
	res := s.follow(t, req.CampaignID)
	refused := down.Load()
	if refused == nil {
		t.Fatal("no IAB line was approved: nothing was refused")
	}
	refusedURL, _ := sellerclient.CanonicalURL(refused.URL)
	checkfor.Until(t, 90*time.Second, "the recorder to read the campaign's end", func() bool {
		return len(payloads[events.CampaignCompleted](t, seen(), events.KindCampaignCompleted)) == 1
	})
	evs := seen()

	fails := payloads[events.BookingFailed](t, evs, events.KindBookingFailed)
	if len(fails) == 0 {
		t.Fatal("the refused seller's lines did not fail")
	}
	for _, f := range fails {
		if f.SellerURL != refusedURL || f.Code != "connection_refused" || f.Unresolved {
			t.Fatalf("failure %+v, want connection_refused for %s only", f, refusedURL)
		}
	}
	// A definite failure is not retried: one booking attempt per line at
	// most reached the seller's address, and none was booked there.
	if n := len(refused.Deals()); n != 0 {
		t.Fatalf("the refused seller holds %d deals", n)
	}

	props := payloads[events.PortfolioProposed](t, evs, events.KindPortfolioProposed)
	if len(props) < 2 || props[1].Revision != 2 || len(props[1].Lines) == 0 {
		t.Fatalf("no re-plan of the freed budget: %d proposals", len(props))
	}
	for _, l := range props[1].Lines {
		if l.SellerURL == refusedURL {
			t.Fatalf("the re-plan books the refused seller again: %+v", l)
		}
	}

	// Every deal at a seller is one DealBooked, published within the
	// booking horizon of the seller's answer: the refused seller held no
	// other line back (the old design published none of them until every
	// line of the approval was settled).
	deals := payloads[events.DealBooked](t, evs, events.KindDealBooked)
	booked := sellerDeals(s.market)
	if len(booked) != len(deals) || len(deals) != len(res.Deals) {
		t.Fatalf("sellers hold %d bookings, %d DealBooked events, campaign reports %d", len(booked), len(deals), len(res.Deals))
	}
	for _, r := range evs {
		if r.e.Type() != events.KindDealBooked.Type {
			continue
		}
		d, _ := events.PayloadOf[events.DealBooked](r.e, events.KindDealBooked)
		if booked[bookingIDOf(d)] != 1 {
			t.Fatalf("deal %s: %d bookings at the seller", bookingIDOf(d), booked[bookingIDOf(d)])
		}
		if lag := r.e.Time().Sub(d.BookedAt); lag > horizon {
			t.Fatalf("DealBooked %s published %v after its booking", bookingIDOf(d), lag)
		}
	}
	if res.Status != events.StatusPartial || res.TotalSpendMicros > req.Brief.BudgetMicros {
		t.Fatalf("campaign %s, spend %s of %s", res.Status, res.TotalSpendMicros, req.Brief.BudgetMicros)
	}
	t.Logf("%d deals, %d refused lines, re-plan of %d lines", len(deals), len(fails), len(props[1].Lines))
}

// bookingIDOf is how sellerDeals names a DealBooked's booking.
func bookingIDOf(d events.DealBooked) string {
	if d.Protocol.IsADCP() {
		return d.SellerURL + "|" + d.MediaBuyID
	}
	return d.DealID
}

// TestStalledSellerAtBookingIsReconciled: one seller stops answering while
// its line books (it booked first, or it did not), or answers 503 to
// everything. The other lines' deals are published while it stalls; at the
// booking horizon its line is reported unresolved (its spend reserved) and
// the campaign ends partial, the API showing the unresolved line. When the
// seller comes back, the reconciler publishes what it shows, once: its
// deal, or not_booked with the reservation released.
func TestStalledSellerAtBookingIsReconciled(t *testing.T) {
	if testing.Short() {
		t.Skip("runs whole campaigns: skipped under -short")
	}
	cases := []struct {
		name   string
		fault  sandbox.Faults
		booked bool
	}{
		{"stops answering after booking", sandbox.Faults{Booking: sandbox.BookingThenHang}, true},
		{"stops answering without booking", sandbox.Faults{Booking: sandbox.BookingHang}, false},
		{"answers 503 for good", sandbox.Faults{ErrorRate: 1}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stalled atomic.Pointer[sandbox.Seller]
			s := startBookingStack(t, stallFirstIABSeller(&stalled, func(s *sandbox.Seller) {
				if err := s.SetFaults(tc.fault); err != nil {
					t.Error(err)
				}
			}))
			req := demo.SampleCampaign("e2e-stall", "adaptive")
			req.AutoApprove = true
			seen, _ := s.record(t, req.CampaignID)
			s.submit(t, req)

			// At the horizon: partial, the stalled line unresolved and shown.
			checkfor.Until(t, 90*time.Second, "the campaign to end at the horizon", func() bool {
				return len(payloads[events.CampaignCompleted](t, seen(), events.KindCampaignCompleted)) == 1
			})
			seller := stalled.Load()
			url, _ := sellerclient.CanonicalURL(seller.URL)
			evs := seen()
			done := payloads[events.CampaignCompleted](t, evs, events.KindCampaignCompleted)[0]
			if done.Status != events.StatusPartial || len(done.Unresolved) == 0 {
				t.Fatalf("at the horizon: %s with %d unresolved lines", done.Status, len(done.Unresolved))
			}
			for _, u := range done.Unresolved {
				if u.SellerURL != url || u.Code != booker.CodeOutcomeUnknown || !u.Unresolved {
					t.Fatalf("unresolved %+v, want the stalled seller's (%s)", u, url)
				}
			}
			// The other sellers' deals were published while it stalled.
			others := payloads[events.DealBooked](t, evs, events.KindDealBooked)
			if len(others) == 0 {
				t.Fatal("no other line's deal was published while one seller stalled")
			}
			for _, d := range others {
				if d.SellerURL == url {
					t.Fatalf("the stalled seller's deal was published before it came back: %+v", d)
				}
			}
			code, job := httpJSON(t, "GET", s.api+"/bookings/"+req.CampaignID, nil, nil)
			if code != 200 || job["status"] != "partial" || len(job["unresolved"].([]any)) != len(done.Unresolved) || job["reserved_spend_micros"].(float64) <= 0 {
				t.Fatalf("the API does not show the unresolved line: %d %v %v", code, job["status"], job["unresolved"])
			}
			var reserved events.Micros
			for _, u := range done.Unresolved {
				reserved += u.SpendMicros
			}

			// The seller comes back.
			if err := seller.SetFaults(sandbox.Faults{}); err != nil {
				t.Fatal(err)
			}
			final := func() map[string]any {
				_, j := httpJSON(t, "GET", s.api+"/bookings/"+req.CampaignID, nil, nil)
				return j
			}
			checkfor.Until(t, 90*time.Second, "the reconciler to settle the unresolved lines", func() bool {
				u, _ := final()["unresolved"].([]any)
				return len(u) == 0
			})
			time.Sleep(5 * reconcile) // let any extra reconciliation happen, to see it publish nothing more
			evs = seen()
			var mine []events.DealBooked
			for _, d := range payloads[events.DealBooked](t, evs, events.KindDealBooked) {
				if d.SellerURL == url {
					mine = append(mine, d)
				}
			}
			var notBooked int
			for _, f := range payloads[events.BookingFailed](t, evs, events.KindBookingFailed) {
				if f.SellerURL == url && f.Code == booker.CodeNotBooked {
					notBooked++
				}
			}
			j := final()
			spend := events.Micros(int64(j["total_spend_micros"].(float64)))
			if tc.booked {
				if len(mine) != len(done.Unresolved) || notBooked != 0 || len(seller.Deals()) != len(mine) {
					t.Fatalf("reconciled deals %d (seller holds %d), not_booked %d, for %d unresolved lines", len(mine), len(seller.Deals()), notBooked, len(done.Unresolved))
				}
				for _, d := range mine {
					if !d.Reconciled {
						t.Fatalf("deal %+v not marked reconciled", d)
					}
				}
				if spend != done.TotalSpendMicros+reserved || j["status"] != "completed" {
					t.Fatalf("after reconciliation: %v, spend %d, want %d", j["status"], spend, done.TotalSpendMicros+reserved)
				}
			} else {
				if len(mine) != 0 || notBooked != len(done.Unresolved) || len(seller.Deals()) != 0 {
					for _, r := range seller.Requests() {
						t.Logf("%s %s %s %s", r.Time.Format("15:04:05.000"), r.Method, r.Path, r.Body)
					}
					t.Logf("deals %+v", seller.Deals())
					t.Fatalf("reconciled deals %d (seller holds %d), not_booked %d, for %d unresolved lines", len(mine), len(seller.Deals()), notBooked, len(done.Unresolved))
				}
				if spend != done.TotalSpendMicros || j["reserved_spend_micros"] != nil {
					t.Fatalf("after reconciliation: spend %d (was %d), reserved %v", spend, done.TotalSpendMicros, j["reserved_spend_micros"])
				}
				led := ledgerCommitted(t, s.stack, req.CampaignID)
				if led != done.TotalSpendMicros {
					t.Fatalf("the ledger keeps %d micros committed, want the deals' %d (reservation released)", led, done.TotalSpendMicros)
				}
			}
		})
	}
}

// ledgerCommitted reads the campaign's committed spend from the booking
// ledger.
func ledgerCommitted(t *testing.T, s *stack, id string) events.Micros {
	t.Helper()
	led, found, err := s.app.Booker.Ledger.Get(t.Context(), id)
	if err != nil || !found {
		t.Fatalf("ledger of %s: %v %v", id, found, err)
	}
	return led.Committed()
}

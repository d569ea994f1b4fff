package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/campaign"
	"github.com/dealflow/dealflow/internal/checkfor"
	"github.com/dealflow/dealflow/internal/demo"
	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/internal/sandbox"
	sandboxadcp "github.com/dealflow/dealflow/internal/sandbox/adcp"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/sellerclient"
	"github.com/dealflow/dealflow/services/booker"
)

// TestBookingChaos books several campaigns at once with booker replicas
// (separate processes of the real binary) SIGKILLed while lines book and
// IAB sellers stalling at random at booking (they book and stop
// answering, or stop answering without booking, then come back). Counted
// from the sellers' own booking records once the dust settles:
//   - every booking a seller holds is one DealBooked event, and every
//     DealBooked is a booking a seller holds (nothing lost, nothing
//     doubled);
//   - every campaign is terminal, and none has an unresolved line left
//     once the sellers answer again;
//   - no campaign's bookings at the sellers cost more than its budget.
func TestBookingChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs booker processes under SIGKILL: skipped under -short")
	}
	tmp := t.TempDir()
	bin := buildBinary(t, tmp)
	env := natstest.Start(t)

	// IAB sellers only: the stalls below are IAB booking faults, and with the
	// AdCP sales agents in the market (they are bought at the agency tier
	// too) most lines could book where nothing stalls, leaving nothing tested.
	market := sandbox.DefaultMarket()
	market.ADCPSellers = nil
	m, err := sandbox.Start(context.Background(), market)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	credFile := filepath.Join(tmp, "credentials.json")
	if err := os.WriteFile(credFile, m.CredentialsFile(), 0o600); err != nil {
		t.Fatal(err)
	}

	// Sellers that stall at random: half book and then stop answering, the
	// other half stop answering without booking; a healer brings every
	// stalled seller back after a while (changing its faults ends the
	// stall), until the test turns the faults off.
	var iab []*sandbox.Seller
	for _, s := range m.Sellers {
		if s.InRegistry && s.Trust != "blocked" && !s.Faults().Down {
			iab = append(iab, s)
		}
	}
	faults := map[*sandbox.Seller]sandbox.Faults{}
	for i, s := range iab {
		f := sandbox.Faults{Booking: sandbox.BookingThenHang, BookingRate: 0.35}
		if i%2 == 1 {
			f.Booking = sandbox.BookingHang
		}
		faults[s] = f
		if err := s.SetFaults(f); err != nil {
			t.Fatal(err)
		}
	}
	healCtx, stopHealing := context.WithCancel(context.Background())
	healed := make(chan struct{})
	go func() {
		defer close(healed)
		rng := rand.New(rand.NewPCG(7, 11))
		for {
			select {
			case <-healCtx.Done():
				return
			case <-time.After(time.Duration(500+rng.IntN(1500)) * time.Millisecond):
			}
			for _, s := range iab {
				_ = s.SetFaults(faults[s])
			}
		}
	}()
	t.Cleanup(func() { stopHealing(); <-healed })

	common := []string{
		"DEALFLOW_NATS_URL=" + env.URL,
		"DEALFLOW_REGISTRY_URL=" + m.RegistryURL,
		"DEALFLOW_CREDENTIALS=" + credFile,
		"DEALFLOW_ALLOW_PRIVATE=true",
		"DEALFLOW_SHOPPING_WINDOW=60s",
		"DEALFLOW_METRICS_ADDR=127.0.0.1:0",
		"DEALFLOW_LOG_JSON=true",
		"DEALFLOW_BOOKING_HORIZON=4s",
		"DEALFLOW_BOOKING_CALL_TIMEOUT=500ms",
		"DEALFLOW_RECONCILE_EVERY=300ms",
	}
	var mu sync.Mutex
	var procs []*proc
	start := func(name, stages string) *proc {
		t.Helper()
		p := startProc(t, tmp, name, bin, []string{"run", "--stages", stages}, common)
		mu.Lock()
		procs = append(procs, p)
		mu.Unlock()
		p.waitLog(t, "stage running")
		return p
	}
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		stopProcs(t, procs, 30)
	})
	start("shopping", "discoverer,kitfetcher,negotiator")
	bookers := []*proc{start("booker-1", "booker"), start("booker-2", "booker")}

	const n = 6
	var ids []string
	budgets := map[string]events.Micros{}
	for i := range n {
		req := demo.SampleCampaign(fmt.Sprintf("chaos-%d", i), "adaptive")
		ids = append(ids, req.CampaignID)
		budgets[req.CampaignID] = req.Brief.BudgetMicros
		e, err := events.New(events.KindCampaignRequested, events.NewID(), "test", req.CampaignID, req)
		if err != nil {
			t.Fatal(err)
		}
		if err := env.Bus.Publish(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}

	// Kill a booker while lines book (a seller holds a deal, or a line is
	// approved), start another, and do it again to the other one.
	kills := 0
	for _, victim := range []int{0, 1} {
		checkfor.Until(t, 90*time.Second, "lines booking", func() bool { return countSubject(t, env.Bus, events.KindLineApproved.Filter()) > uint64(kills*3) })
		if err := bookers[victim].cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-bookers[victim].done
		kills++
		bookers = append(bookers, start(fmt.Sprintf("booker-%d", 3+victim), "booker"))
	}

	campaigns, err := campaign.Open(context.Background(), env.Bus)
	if err != nil {
		t.Fatal(err)
	}
	checkfor.Check(t, 3*time.Minute, 200*time.Millisecond, func() error {
		for _, id := range ids {
			c, err := campaigns.Get(context.Background(), id)
			if err != nil {
				return fmt.Errorf("campaigns not terminal after the horizon: %s: %w", id, err)
			}
			if !c.Terminal() {
				return fmt.Errorf("campaigns not terminal after the horizon: %s is %s", id, c.Status)
			}
		}
		return nil
	})

	// The sellers answer again: the reconcilers settle every line.
	stopHealing()
	<-healed
	for _, s := range iab {
		if err := s.SetFaults(sandbox.Faults{}); err != nil {
			t.Fatal(err)
		}
	}
	unresolved := func() int {
		left := 0
		for _, id := range ids {
			if c, err := campaigns.Get(context.Background(), id); err == nil {
				left += len(c.Unresolved)
			}
		}
		return left
	}
	checkfor.Until(t, 90*time.Second, "every unresolved line reconciled", func() bool { return unresolved() == 0 })

	deals := storedEvents(t, env.Bus, events.KindDealBooked.Filter())
	byBooking := map[string]int{}
	spendEvents := map[string]events.Micros{}
	for _, e := range deals {
		d, err := events.PayloadOf[events.DealBooked](e, events.KindDealBooked)
		if err != nil {
			t.Fatal(err)
		}
		byBooking[bookingIDOf(d)]++
		spendEvents[d.CampaignID] += d.SpendMicros
	}
	held, spendSellers := sellerBookings(t, m)
	for id, n := range byBooking {
		if n != 1 {
			t.Errorf("booking %s has %d DealBooked events", id, n)
		}
		if _, ok := held[id]; !ok {
			t.Errorf("DealBooked %s names a booking no seller holds", id)
		}
	}
	for id := range held {
		if byBooking[id] == 0 {
			t.Errorf("the seller holds booking %s, which no DealBooked reports", id)
		}
	}
	for id, spent := range spendSellers {
		if spent > budgets[id] {
			t.Errorf("campaign %s: %s booked at the sellers, budget %s", id, spent, budgets[id])
		}
		if spendEvents[id] != spent {
			t.Errorf("campaign %s: %s booked at the sellers, %s in DealBooked events", id, spent, spendEvents[id])
		}
	}
	for _, id := range ids {
		c, _ := campaigns.Get(context.Background(), id)
		if c.TotalSpend() != spendSellers[id] {
			t.Errorf("campaign %s reports %s spent, the sellers hold %s", id, c.TotalSpend(), spendSellers[id])
		}
	}
	lines := countSubject(t, env.Bus, events.KindLineApproved.Filter())
	codes := map[string]int{}
	for _, e := range storedEvents(t, env.Bus, events.KindBookingFailed.Filter()) {
		f, _ := events.PayloadOf[events.BookingFailed](e, events.KindBookingFailed)
		codes[f.Code]++
	}
	reconciled := 0
	for _, e := range deals {
		if d, _ := events.PayloadOf[events.DealBooked](e, events.KindDealBooked); d.Reconciled {
			reconciled++
		}
	}
	t.Logf("%d campaigns, %d lines, %d bookings at the sellers (%d reconciled), failures by code %v, %d booker kills",
		len(ids), lines, len(held), reconciled, codes, kills)
	if unknown := reconciled + codes[booker.CodeNotBooked] + codes[booker.CodeOutcomeUnknown]; len(held) == 0 || kills != 2 || unknown == 0 {
		t.Fatalf("nothing was tested: %d bookings, %d kills, %d lines whose outcome was unknown", len(held), kills, unknown)
	}
}

// countSubject counts the events stored under a subject filter.
func countSubject(t *testing.T, b *bus.Bus, filter string) uint64 {
	t.Helper()
	s, err := b.JS.Stream(t.Context(), bus.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context(), jetstream.WithSubjectFilter(filter))
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n
}

// storedEvents reads every event stored under a subject filter.
func storedEvents(t *testing.T, b *bus.Bus, filter string) []events.Event {
	t.Helper()
	want := countSubject(t, b, filter)
	cons, err := b.JS.OrderedConsumer(t.Context(), bus.StreamEvents, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		t.Fatal(err)
	}
	var out []events.Event
	for uint64(len(out)) < want {
		batch, err := cons.Fetch(100, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			e, err := events.Decode(events.Header(m.Headers()), m.Data())
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, e)
		}
		if got == 0 {
			t.Fatalf("read %d of %d events under %s", len(out), want, filter)
		}
	}
	return out
}

// sellerBookings lists the bookings every seller holds (named as
// bookingIDOf names a DealBooked's) and what each campaign's cost there:
// IAB deals by the campaign in their notes, AdCP media buys by the
// po_number and budget of the create_media_buy that made them.
func sellerBookings(t *testing.T, m *sandbox.Market) (map[string]bool, map[string]events.Micros) {
	t.Helper()
	held, spend := map[string]bool{}, map[string]events.Micros{}
	for _, s := range m.Sellers {
		for _, d := range s.Deals() {
			held[d.DealID] = true
			id := strings.TrimPrefix(d.Notes, "dealflow campaign ")
			spend[id] += events.CostMicros(d.Impressions, events.Micros(d.FinalMicros))
		}
	}
	for _, s := range m.ADCPSellers {
		seller, err := sellerclient.CanonicalURL(s.URL)
		if err != nil {
			seller = s.URL
		}
		for _, b := range s.Agent.(*sandboxadcp.Agent).Buys() {
			if b.Status == "rejected" || b.Status == "canceled" {
				continue
			}
			held[seller+"|"+b.MediaBuyID] = true
			line, _ := b.Context["dealflow_line"].(string)
			id, _, _ := strings.Cut(line, "/")
			spend[id] += events.MustMicros(b.TotalBudget)
		}
	}
	return held, spend
}

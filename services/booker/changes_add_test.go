package booker

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/campaign"
	"github.com/dealflow/dealflow/internal/checkfor"
	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/internal/portfolio"
	"github.com/dealflow/dealflow/internal/sandbox"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/sellerclient/adcp"
)

// addEvent is a LineChangeRequested add of quote q, as the reallocator
// publishes it.
func addEvent(t *testing.T, cid, changeID string, q events.QuoteReady, budget events.Micros) (events.Event, *events.LineChangeRequested) {
	t.Helper()
	r := events.LineChangeRequested{CampaignID: cid, ChangeID: changeID, LineKey: events.AddedLineKey(changeID), Action: events.LineAdd, BudgetMicros: budget,
		Quote:  &events.QuoteRef{SellerURL: q.Seller.URL, PackageID: q.Package.ID, QuoteID: q.QuoteID, CPMMicros: q.FinalCPMMicros},
		Reason: "test add", RequestedBy: events.RequestedByReallocation, ReallocationRevision: 1, RequestedAt: time.Now().UTC()}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	return must(events.New(events.KindLineChangeRequested, changeID, "test", cid, r)), &r
}

// TestIABAdd: against the IAB sandbox seller, on real NATS: an add books a
// remaining quote (one no line was booked from) as a new line — a fresh
// quote on its package for the budget, then the deal, DealBooked under the
// line_key derived from the change_id — once however often the request is
// delivered; committed spend rises by the deal's spend, never above the
// budget; an add past the budget fails without calling the seller and
// leaves nothing committed.
func TestIABAdd(t *testing.T) {
	f := newFixture(t, nil)
	appr := f.store(t, []events.PlanLine{f.line(f.quotes[0], 200000), f.line(f.quotes[1], 200000)})
	if _, err := f.svc.bookAll(t.Context(), appr); err != nil {
		t.Fatal(err)
	}
	led0 := ledgerNow(t, f.svc, f.c.ID)
	committed := led0.Committed()
	handle := handleOK(t, f)

	q := f.quotes[2] // not booked
	deals := len(f.seller.Deals())
	e, r := addEvent(t, f.c.ID, "realloc-fx-1-1", q, events.MustMicros(1000))
	out := handle(e, r)
	booked := payloads[events.DealBooked](t, out, events.KindDealBooked)
	changed := payloads[events.LineChanged](t, out, events.KindLineChanged)
	key := events.AddedLineKey("realloc-fx-1-1")
	if len(booked) != 1 || len(changed) != 1 {
		t.Fatalf("add outputs: %s", ids(out))
	}
	d, ch := booked[0], changed[0]
	if d.LineKey != key || d.DealID == "" || d.PackageID != q.Package.ID || d.SellerURL != q.Seller.URL || d.QuoteID == q.QuoteID ||
		d.CPMMicros != q.FinalCPMMicros || d.SpendMicros <= 0 || d.SpendMicros > events.MustMicros(1000) || d.FlightStart != "2028-06-01" {
		t.Fatalf("new line's deal %+v", d)
	}
	if ch.Action != events.LineAdd || ch.LineKey != key || ch.BudgetBeforeMicros != 0 || ch.BudgetAfterMicros != d.SpendMicros ||
		ch.CommittedMicros != committed+d.SpendMicros || ch.State != events.LineStateLive || ch.ReallocationRevision != 1 || len(ch.DealIDs) != 1 {
		t.Fatalf("changed %+v (deal spend %s, committed before %s)", ch, d.SpendMicros, committed)
	}
	if got := len(f.seller.Deals()); got != deals+1 {
		t.Fatalf("seller holds %d deals, want %d", got, deals+1)
	}
	led := ledgerNow(t, f.svc, f.c.ID)
	if l := led.Lines[key]; l == nil || l.State != LineBooked || l.Deal == nil || l.Deal.DealID != d.DealID || l.SpendMicros != d.SpendMicros ||
		l.PendingChange != "" || led.Committed() != ch.CommittedMicros {
		t.Fatalf("ledger line %+v, committed %s", l, led.Committed())
	}

	// Redelivered: the same events under the same ids, no second deal.
	again := handle(e, r)
	if ids(again) != ids(out) || len(f.seller.Deals()) != deals+1 {
		t.Fatalf("redelivery: %s\nfirst: %s (%d deals)", ids(again), ids(out), len(f.seller.Deals()))
	}
	// The same change published again under another event id: applied once.
	e2, r2 := addEvent(t, f.c.ID, "realloc-fx-1-1", q, events.MustMicros(1000))
	if x := handle(e2, r2); ids(x) != ids(out) || len(f.seller.Deals()) != deals+1 {
		t.Fatalf("republished: %s", ids(x))
	}

	// Past the budget: refused before the seller is called; nothing stays
	// committed for it.
	n := len(f.seller.Requests())
	out = handle(addEvent(t, f.c.ID, "realloc-fx-2-1", q, events.MustMicros(10000)))
	if fs := payloads[events.LineChangeFailed](t, out, events.KindLineChangeFailed); len(fs) != 1 || fs[0].Code != events.ChangeOverBudget ||
		fs[0].CommittedMicros != ch.CommittedMicros || fs[0].CampaignID != f.c.ID {
		t.Fatalf("over budget: %s %+v", ids(out), fs)
	}
	if len(f.seller.Requests()) != n {
		t.Fatal("the seller was called for an add over budget")
	}
	if led := ledgerNow(t, f.svc, f.c.ID); led.Committed() != ch.CommittedMicros {
		t.Fatalf("committed %s after a refused add, want %s", led.Committed(), ch.CommittedMicros)
	}

	// A quote the campaign does not have: fails, its reservation released.
	unknown := q
	unknown.Package.ID = "pkg-none"
	out = handle(addEvent(t, f.c.ID, "realloc-fx-3-1", unknown, events.MustMicros(500)))
	if fs := payloads[events.LineChangeFailed](t, out, events.KindLineChangeFailed); len(fs) != 1 || fs[0].Code != events.ChangeUnsupported {
		t.Fatalf("unknown quote: %s", ids(out))
	}
	if led := ledgerNow(t, f.svc, f.c.ID); led.Committed() != ch.CommittedMicros {
		t.Fatalf("committed %s after a failed add, want %s", led.Committed(), ch.CommittedMicros)
	}

	// Mid-flight the new deal is quoted and booked from the day the add
	// began to the flight's end.
	f.svc.Now = func() time.Time { return time.Date(2028, 6, 11, 9, 0, 0, 0, time.UTC) }
	out = handle(addEvent(t, f.c.ID, "realloc-fx-5-1", f.quotes[1], events.MustMicros(500)))
	if ds := payloads[events.DealBooked](t, out, events.KindDealBooked); len(ds) != 1 || ds[0].FlightStart != "2028-06-11" || ds[0].FlightEnd != "2028-06-30" {
		t.Fatalf("mid-flight add: %s %+v", ids(out), ds)
	}
	f.svc.Now = nil

	// An add whose line_key is not the one derived from its change_id is
	// refused as invalid, never applied.
	bad, br := addEvent(t, f.c.ID, "realloc-fx-4-1", q, events.MustMicros(500))
	br.LineKey = campaign.LineKey(f.line(q, 1))
	if _, err := f.svc.HandleChange(t.Context(), bad, br); !errors.Is(err, events.ErrInvalid) {
		t.Fatalf("mismatched line_key: %v", err)
	}
}

// TestADCPAdd: against the AdCP sandbox agent, on real NATS: an add of an
// AdCP quote books it as a new media buy (create_media_buy for the budget,
// with the buyer's credentials for the quote's tier), DealBooked under the
// line_key derived from the change_id and carrying it. A booker killed
// after the seller created the buy (its answer lost) and the request
// redelivered to another booker: the same idempotency key, one buy. A
// product the seller approves by hand: submitted, the reservation kept
// while the task is followed, then booked. Mid-flight, the buy runs from
// the day the add began.
func TestADCPAdd(t *testing.T) {
	f := newADCPFixture(t, map[string]bool{"ctv_run_of_network": true}, false, nil)
	l := f.line("olv_sports_preroll", 200000)
	if _, err := f.svc.bookAll(t.Context(), f.approve(t, l)); err != nil {
		t.Fatal(err)
	}
	led0 := ledgerNow(t, f.svc, f.c.ID)
	committed := led0.Committed()

	// Killed after create_media_buy reached the seller.
	ctx, die := context.WithCancel(t.Context())
	defer die()
	crashing := adcp.New(adcp.Config{AllowPrivate: true, MaxAttempts: 1, HTTPClient: &http.Client{Transport: &adcpCrash{mode: "after", die: die}}})
	crashed := &Service{Campaigns: f.svc.Campaigns, Ledger: f.svc.Ledger, Weights: portfolio.DefaultWeights(), Log: natstest.Logger(),
		Booker: &Booker{ADCP: crashing, Credentials: f.creds}}
	q := f.quotes["display_news_300x250"]
	budget := events.MustMicros(1000)
	e, r := addEvent(t, f.c.ID, "realloc-adcp-1-1", q, budget)
	if _, err := crashed.HandleChange(ctx, e, r); err == nil {
		t.Fatal("the killed booker's add reported an outcome")
	}
	key := events.AddedLineKey("realloc-adcp-1-1")
	if ll := ledgerNow(t, f.svc, f.c.ID).Lines[key]; ll == nil || ll.State != LineReserved || ll.BookKey == "" || !ll.Protocol.IsADCP() || ll.SpendMicros != budget {
		t.Fatalf("after the crash the ledger line is %+v", ll)
	}
	if b := f.buys(t); len(b) != 2 {
		t.Fatalf("the seller holds buys by key %v, want the line's and the add's", b)
	}

	handle := func(e events.Event, r *events.LineChangeRequested) []events.Event {
		t.Helper()
		out, err := f.svc.HandleChange(t.Context(), e, r)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	out := handle(e, r)
	booked := payloads[events.DealBooked](t, out, events.KindDealBooked)
	changed := payloads[events.LineChanged](t, out, events.KindLineChanged)
	if len(booked) != 1 || len(changed) != 1 {
		t.Fatalf("add outputs: %s", ids(out))
	}
	d, ch := booked[0], changed[0]
	if d.LineKey != key || d.ChangeID != "realloc-adcp-1-1" || d.Protocol != events.ProtocolADCP || d.MediaBuyID == "" || d.DealID != "" ||
		d.SellerPackageID == "" || d.PackageID != q.Package.ID || d.ProductID != "display_news_300x250" || d.Tier != q.Tier ||
		d.CPMMicros != q.FinalCPMMicros || d.SpendMicros != budget || d.CPMMismatch || d.FlightStart != "2028-06-01" || d.FlightEnd != "2028-06-30" {
		t.Fatalf("new line's buy %+v", d)
	}
	if ch.Action != events.LineAdd || ch.LineKey != key || ch.Protocol != events.ProtocolADCP || ch.MediaBuyID != d.MediaBuyID || ch.BudgetBeforeMicros != 0 ||
		ch.BudgetAfterMicros != budget || ch.CommittedMicros != committed+budget || ch.State != events.LineStateLive || ch.AddedDealID != "" {
		t.Fatalf("changed %+v", ch)
	}
	buys := f.buys(t)
	if len(buys) != 2 {
		t.Fatalf("media buys by key %v, want the line's and the add's", buys)
	}
	for k, n := range buys {
		if n != 1 {
			t.Fatalf("key %s bought %d times", k, n)
		}
	}
	led := ledgerNow(t, f.svc, f.c.ID)
	if ll := led.Lines[key]; ll == nil || ll.State != LineBooked || ll.Deal == nil || ll.Deal.MediaBuyID != d.MediaBuyID || ll.SpendMicros != budget ||
		ll.PendingChange != "" || led.Committed() != committed+budget {
		t.Fatalf("ledger line %+v, committed %s", ll, led.Committed())
	}
	// Redelivered again: the same events, still one buy.
	if again := handle(e, r); ids(again) != ids(out) || len(f.buys(t)) != 2 {
		t.Fatalf("redelivery: %s\nfirst: %s (buys %v)", ids(again), ids(out), f.buys(t))
	}
	committed = led.Committed()

	// Submitted: followed until the seller approves it.
	f.svc.Booker.PollWait = time.Millisecond
	f.svc.Now = func() time.Time { return time.Date(2028, 6, 11, 9, 0, 0, 0, time.UTC) }
	defer func() { f.svc.Now = nil }()
	ctv := f.quotes["ctv_run_of_network"]
	e, r = addEvent(t, f.c.ID, "realloc-adcp-2-1", ctv, events.MustMicros(1500))
	if _, err := f.svc.HandleChange(t.Context(), e, r); err == nil {
		t.Fatal("the submitted add was settled at once")
	}
	key = events.AddedLineKey("realloc-adcp-2-1")
	if ll := ledgerNow(t, f.svc, f.c.ID).Lines[key]; ll == nil || ll.State != LineSubmitted || ll.TaskID == "" || ll.SpendMicros != events.MustMicros(1500) {
		t.Fatalf("while submitted: %+v", ll)
	}
	checkfor.Check(t, 5*time.Second, 20*time.Millisecond, func() (err error) {
		out, err = f.svc.HandleChange(t.Context(), e, r)
		return err
	})
	ds := payloads[events.DealBooked](t, out, events.KindDealBooked)
	if len(ds) != 1 || ds[0].LineKey != key || ds[0].MediaBuyID == "" || ds[0].SpendMicros != events.MustMicros(1500) ||
		ds[0].FlightStart != "2028-06-11" || ds[0].FlightEnd != "2028-06-30" {
		t.Fatalf("after approval: %s %+v", ids(out), ds)
	}
	if b := f.buys(t); len(b) != 3 {
		t.Fatalf("media buys by key %v", b)
	}
	if led := ledgerNow(t, f.svc, f.c.ID); led.Lines[key].State != LineBooked || led.Committed() != committed+events.MustMicros(1500) {
		t.Fatalf("ledger line %+v, committed %s", led.Lines[key], led.Committed())
	}

	// Below the seller's minimum order: refused before any call, as an
	// AdCP line, the reservation released.
	small := f.quotes["display_news_300x250"]
	small.MinImpressions = 1_000_000
	if err := f.svc.Campaigns.SaveQuote(t.Context(), small); err != nil {
		t.Fatal(err)
	}
	out = handle(addEvent(t, f.c.ID, "realloc-adcp-3-1", small, events.MustMicros(10)))
	if fs := payloads[events.LineChangeFailed](t, out, events.KindLineChangeFailed); len(fs) != 1 || fs[0].Code != events.ChangeUnsupported ||
		fs[0].Protocol != events.ProtocolADCP || !strings.Contains(fs[0].Reason, "minimum order") {
		t.Fatalf("below the minimum order: %s %+v", ids(out), fs)
	}
	if b := f.buys(t); len(b) != 3 {
		t.Fatalf("media buys by key %v after a refused add", b)
	}
}

// TestUnresolvedAddIsReconciled: an IAB add whose booking reached the
// seller but was never answered (the seller booked, then hung) is retried
// with the same keys — a refused connection on a retry proves nothing
// about the first call, so the reservation stays — then reported
// unresolved at the booking horizon (LineChangeFailed with unresolved set,
// the new line unknown, its spend still committed), asked again while the
// seller is down, and settled once it answers: the deal it booked then,
// DealBooked reconciled with the LineChanged, one deal at the seller.
// An add the seller never settles is given up after ReconcileFor with its
// spend still reserved.
func TestUnresolvedAddIsReconciled(t *testing.T) {
	f := newFixture(t, nil)
	clk := f.withClock()
	f.svc.ReconcileFor = time.Hour
	appr := f.store(t, []events.PlanLine{f.line(f.quotes[0], 200000), f.line(f.quotes[1], 200000)})
	if _, err := f.svc.bookAll(t.Context(), appr); err != nil {
		t.Fatal(err)
	}
	led0 := ledgerNow(t, f.svc, f.c.ID)
	committed := led0.Committed()
	deals := len(f.seller.Deals())
	budget := events.MustMicros(1000)
	key := events.AddedLineKey("realloc-fx-1-1")
	e, r := addEvent(t, f.c.ID, "realloc-fx-1-1", f.quotes[2], budget)
	reserved := func(what string) {
		t.Helper()
		led := ledgerNow(t, f.svc, f.c.ID)
		if l := led.Lines[key]; l == nil || l.SpendMicros != budget || led.Committed() != committed+budget {
			t.Fatalf("%s: line %+v, committed %s, want %s reserved on top of %s", what, l, led.Committed(), budget, committed)
		}
	}

	if err := f.seller.SetFaults(sandbox.Faults{Booking: sandbox.BookingThenHang}); err != nil {
		t.Fatal(err)
	}
	if out, err := f.svc.HandleChange(t.Context(), e, r); err == nil || len(out) != 0 {
		t.Fatalf("booked, unanswered: %s %v, want an error to retry and nothing published", ids(out), err)
	}
	if len(f.seller.Deals()) != deals+1 {
		t.Fatalf("the seller holds %d deals, want the add's booked (%d)", len(f.seller.Deals()), deals+1)
	}
	reserved("unanswered")

	// The seller now refuses connections: the retry never reaches it, which
	// says nothing about the first call.
	if err := f.seller.SetFaults(sandbox.Faults{Down: true}); err != nil {
		t.Fatal(err)
	}
	clk.add(30 * time.Second)
	if out, err := f.svc.HandleChange(t.Context(), e, r); err == nil || againOf(err) || len(out) != 0 {
		t.Fatalf("retry refused: %s %v, want an error to retry and nothing published", ids(out), err)
	}
	reserved("retry refused")

	// At the horizon: unresolved, reported once, the reservation kept.
	clk.add(31 * time.Second)
	out, err := f.svc.HandleChange(t.Context(), e, r)
	fs := payloads[events.LineChangeFailed](t, out, events.KindLineChangeFailed)
	if !againOf(err) || len(out) != 1 || len(fs) != 1 || !fs[0].Unresolved || fs[0].Code != events.ChangeSellerUnreachable ||
		fs[0].CommittedMicros != committed+budget {
		t.Fatalf("at the horizon: %s %+v %v", ids(out), fs, err)
	}
	unresolvedID := out[0].ID()
	if l := ledgerNow(t, f.svc, f.c.ID).Lines[key]; l.State != LineUnknown || l.Changes["realloc-fx-1-1"].State != ChangeUnresolved {
		t.Fatalf("unresolved line %+v", l)
	}
	reserved("unresolved")

	// Still down: nothing to tell, asked again later.
	clk.add(time.Minute)
	if out, err := f.svc.HandleChange(t.Context(), e, r); !againOf(err) || len(out) != 0 {
		t.Fatalf("seller down: %s %v", ids(out), err)
	}
	reserved("seller down")

	// Back: the replay with the same keys answers the deal it booked.
	if err := f.seller.SetFaults(sandbox.Faults{}); err != nil {
		t.Fatal(err)
	}
	out = handleOK(t, f)(e, r)
	booked := payloads[events.DealBooked](t, out, events.KindDealBooked)
	changed := payloads[events.LineChanged](t, out, events.KindLineChanged)
	if len(booked) != 1 || len(changed) != 1 || len(payloads[events.LineChangeFailed](t, out, events.KindLineChangeFailed)) != 0 {
		t.Fatalf("reconciled: %s", ids(out))
	}
	d := booked[0]
	if !d.Reconciled || d.LineKey != key || d.DealID != f.seller.Deals()[deals].DealID || len(f.seller.Deals()) != deals+1 {
		t.Fatalf("reconciled deal %+v; seller deals %d", d, len(f.seller.Deals()))
	}
	if changed[0].CommittedMicros != committed+d.SpendMicros || changed[0].BudgetAfterMicros != d.SpendMicros {
		t.Fatalf("changed %+v (deal spend %s)", changed[0], d.SpendMicros)
	}
	led := ledgerNow(t, f.svc, f.c.ID)
	if l := led.Lines[key]; l.State != LineBooked || l.PendingChange != "" || led.Committed() != committed+d.SpendMicros {
		t.Fatalf("ledger line %+v, committed %s", l, led.Committed())
	}
	for _, x := range out {
		if x.ID() == unresolvedID {
			t.Fatal("the final outcome reuses the unresolved report's event id")
		}
	}
	if again := handleOK(t, f)(e, r); ids(again) != ids(out) {
		t.Fatalf("redelivery: %s, first %s", ids(again), ids(out))
	}

	// Never settled: given up after ReconcileFor, the spend still reserved.
	committed = led.Committed()
	e2, r2 := addEvent(t, f.c.ID, "realloc-fx-2-1", f.quotes[2], budget)
	if err := f.seller.SetFaults(sandbox.Faults{Booking: sandbox.BookingHang}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.HandleChange(t.Context(), e2, r2); err == nil {
		t.Fatal("hung add settled")
	}
	clk.add(61 * time.Second)
	if _, err := f.svc.HandleChange(t.Context(), e2, r2); !againOf(err) {
		t.Fatalf("second add at the horizon: %v", err)
	}
	clk.add(2 * time.Hour)
	if out, err := f.svc.HandleChange(t.Context(), e2, r2); err != nil || len(out) != 0 {
		t.Fatalf("given up: %s %v, want nothing and an ack", ids(out), err)
	}
	if led := ledgerNow(t, f.svc, f.c.ID); led.Committed() != committed+budget {
		t.Fatalf("given up: committed %s, want %s still reserved", led.Committed(), committed+budget)
	}
}

package booker

import (
	"errors"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/campaign"
	"github.com/dealflow/dealflow/pkg/events"
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

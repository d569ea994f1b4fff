package reallocator

import (
	"context"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/campaign"
	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/pkg/events"
)

// campaigns answers one campaign's request (the budget and auto-approval
// the reallocator reads) and its quotes.
type campaigns struct {
	req    events.CampaignRequested
	quotes []events.QuoteReady
}

func (c campaigns) LoadQuotes(_ context.Context, cmp *campaign.Campaign) error {
	cmp.Quotes = map[string]events.QuoteReady{}
	for _, q := range c.quotes {
		cmp.Quotes[campaign.QuoteKey(q.Seller.URL, q.Package.ID)] = q
	}
	return nil
}

func (c campaigns) Get(_ context.Context, id string) (*campaign.Campaign, error) {
	if id != c.req.CampaignID {
		return nil, campaign.ErrNotFound
	}
	r := c.req
	return &campaign.Campaign{ID: id, Request: &r}, nil
}

type fixture struct {
	svc *Service
}

func newFixture(t *testing.T, auto bool) *fixture {
	t.Helper()
	env := natstest.Start(t)
	recs, err := OpenRecords(t.Context(), env.Bus)
	if err != nil {
		t.Fatal(err)
	}
	req := events.CampaignRequested{CampaignID: "c-1", AutoApprove: auto, Brief: events.Brief{BudgetMicros: 10_000 * dollar}}
	return &fixture{svc: &Service{Records: recs, Campaigns: campaigns{req: req}, Log: natstest.Logger()}}
}

func ev(t *testing.T, k events.Kind, id string, p any) events.Event {
	t.Helper()
	e, err := events.New(k, id, "test", "c-1", p)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (f *fixture) handle(t *testing.T, e events.Event) []events.Event {
	t.Helper()
	p, _, err := events.Payload(e)
	if err != nil {
		t.Fatal(err)
	}
	out, err := f.svc.Handle(t.Context(), e, p)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (f *fixture) record(t *testing.T) Record {
	t.Helper()
	r, _, err := f.svc.Records.Get(t.Context(), "c-1")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func ofKind[T any](t *testing.T, out []events.Event, k events.Kind) []T {
	t.Helper()
	var got []T
	for _, e := range out {
		if e.Type() != k.Type {
			continue
		}
		p, _, err := events.Payload(e)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, *p.(*T))
	}
	return got
}

func ids(out []events.Event) []string {
	var s []string
	for _, e := range out {
		s = append(s, e.ID())
	}
	return s
}

func same(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// setup books three lines of 2000, 3000 and 1000 dollars and reports b and c
// on plan at a fifth of the flight.
func (f *fixture) setup(t *testing.T) {
	for _, l := range []struct {
		key    string
		budget events.Micros
	}{{"a", 2000 * dollar}, {"b", 3000 * dollar}, {"c", 1000 * dollar}} {
		f.handle(t, ev(t, events.KindDealBooked, "booked-"+l.key, events.DealBooked{CampaignID: "c-1", LineKey: l.key, SellerURL: "http://127.0.0.1:1",
			SellerName: "S" + l.key, PackageID: "p" + l.key, DealID: "D" + l.key, SpendMicros: l.budget, Tier: events.TierAgency}))
		if l.key != "a" {
			f.handle(t, ev(t, events.KindDeliveryReported, "snap-"+l.key, events.DeliveryReported{CampaignID: "c-1", LineKey: l.key, Seq: 2,
				SellerURL: "http://127.0.0.1:1", PackageID: "p" + l.key, PlannedSpendMicros: l.budget, SpendMicros: l.budget / 5, FlightElapsed: 0.2,
				Status: events.PacingOnTrack, PacingIndex: 1}))
		}
	}
}

func under(t *testing.T, id string, seq, since int) events.Event {
	return ev(t, events.KindPacingDeviation, id, events.PacingDeviation{CampaignID: "c-1", LineKey: "a", Seq: seq, SinceSeq: since,
		Direction: events.DeviationUnder, SellerURL: "http://127.0.0.1:1", PackageID: "pa", FlightElapsed: 0.2, SpendMicros: 200 * dollar,
		PlannedSpendMicros: 2000 * dollar, Tolerance: 0.2})
}

// TestReallocationAppliedOnce: an under-delivering line's deviation is
// proposed once per episode, auto-approved, applied decreases first and
// increases after, each change once, and ends ReallocationApplied; every
// redelivered input publishes what its first handling did, under the same
// ids, and nothing else.
func TestReallocationAppliedOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t, true)
	f.setup(t)

	dev := under(t, "dev-1", 2, 2)
	out := f.handle(t, dev)
	props := ofKind[events.ReallocationProposed](t, out, events.KindReallocationProposed)
	apps := ofKind[events.ReallocationApproved](t, out, events.KindReallocationApproved)
	if len(props) != 1 || len(apps) != 1 || apps[0].ApprovedBy != "auto" {
		t.Fatalf("outputs %d proposals, %d approvals", len(props), len(apps))
	}
	p := props[0]
	// a projects 1000 of its 2000: 1000 moves, 3:1 to b and c.
	if p.Revision != 1 || len(p.Moves) != 2 || p.Moves[0].ToLineKey != "b" || p.Moves[0].AmountMicros != 750*dollar ||
		p.Moves[1].AmountMicros != 250*dollar || p.CommittedAfterMicros > p.CommittedBeforeMicros || p.CommittedBeforeMicros != 6000*dollar {
		t.Fatalf("proposal %+v", p)
	}
	if again := f.handle(t, dev); !same(ids(again), ids(out)) {
		t.Fatalf("redelivered deviation published %v, first %v", ids(again), ids(out))
	}
	if next := f.handle(t, under(t, "dev-2", 3, 2)); len(next) != 0 {
		t.Fatalf("the same episode proposed again: %v", ids(next))
	}
	// Another episode while revision 1 is pending: nothing yet.
	if next := f.handle(t, under(t, "dev-3", 4, 4)); len(next) != 0 {
		t.Fatalf("a second revision while one is pending: %v", ids(next))
	}

	approval := out[1]
	reqs := ofKind[events.LineChangeRequested](t, f.handle(t, approval), events.KindLineChangeRequested)
	if len(reqs) != 1 || reqs[0].LineKey != "a" || reqs[0].Action != events.LineSetBudget || reqs[0].BudgetMicros != 1000*dollar ||
		reqs[0].RequestedBy != events.RequestedByReallocation || reqs[0].ReallocationRevision != 1 || reqs[0].ChangeID != ChangeID("c-1", 1, 0) {
		t.Fatalf("phase 1 requests %+v", reqs)
	}
	if again := ofKind[events.LineChangeRequested](t, f.handle(t, approval), events.KindLineChangeRequested); len(again) != 1 || again[0].ChangeID != reqs[0].ChangeID {
		t.Fatalf("redelivered approval: %+v", again)
	}
	if out := f.handle(t, ev(t, events.KindReallocationApproved, "api-approval", events.ReallocationApproved{CampaignID: "c-1", Revision: 1, ApprovedBy: "api"})); len(out) != 0 {
		t.Fatalf("a second approval published %v", ids(out))
	}

	changed := func(id, key string, before, after, committed events.Micros, change string) events.Event {
		return ev(t, events.KindLineChanged, id, events.LineChanged{CampaignID: "c-1", ChangeID: change, LineKey: key, Action: events.LineSetBudget,
			RequestedBy: events.RequestedByReallocation, ReallocationRevision: 1, SellerURL: "http://127.0.0.1:1", PackageID: "p" + key,
			State: events.LineStateLive, BudgetBeforeMicros: before, BudgetAfterMicros: after, CommittedMicros: committed, BudgetMicros: 10_000 * dollar})
	}
	dec := changed("changed-a", "a", 2000*dollar, 1000*dollar, 5000*dollar, reqs[0].ChangeID)
	inc := ofKind[events.LineChangeRequested](t, f.handle(t, dec), events.KindLineChangeRequested)
	if len(inc) != 2 || inc[0].LineKey != "b" || inc[0].BudgetMicros != 3750*dollar || inc[1].LineKey != "c" || inc[1].BudgetMicros != 1250*dollar {
		t.Fatalf("phase 2 requests %+v", inc)
	}
	if again := ofKind[events.LineChangeRequested](t, f.handle(t, dec), events.KindLineChangeRequested); len(again) != 2 {
		t.Fatalf("redelivered decrease: %+v", again)
	}
	if out := f.handle(t, changed("changed-b", "b", 3000*dollar, 3750*dollar, 5750*dollar, inc[0].ChangeID)); len(out) != 0 {
		t.Fatalf("one increase of two ended the revision: %v", ids(out))
	}
	last := changed("changed-c", "c", 1000*dollar, 1250*dollar, 6000*dollar, inc[1].ChangeID)
	out = f.handle(t, last)
	applied := ofKind[events.ReallocationApplied](t, out, events.KindReallocationApplied)
	if len(applied) != 1 || len(applied[0].Changes) != 3 || applied[0].CommittedMicros != 6000*dollar || applied[0].Moves[0].Outcome != "applied" {
		t.Fatalf("outputs %+v", applied)
	}
	if again := f.handle(t, last); !same(ids(again), ids(out)) {
		t.Fatalf("redelivered last change: %v, first %v", ids(again), ids(out))
	}
	r := f.record(t)
	if r.Revisions[0].Status != StatusApplied || r.Lines["a"].Budget != 1000*dollar || r.Lines["b"].Budget != 3750*dollar {
		t.Fatalf("record %+v", r.Revisions[0])
	}
	// Once it ended, a new episode may be proposed.
	if out := f.handle(t, under(t, "dev-4", 5, 4)); len(out) != 0 {
		// a now projects 1000 of its 1000: nothing to move.
		t.Fatalf("revision after the line's budget was lowered: %v", ids(out))
	}
}

// TestReallocationDecreaseFails: an increase whose decrease failed is
// never requested; the revision ends ReallocationFailed with each move's
// outcome.
func TestReallocationDecreaseFails(t *testing.T) {
	t.Parallel()
	f := newFixture(t, true)
	f.setup(t)
	out := f.handle(t, under(t, "dev-1", 2, 2))
	reqs := ofKind[events.LineChangeRequested](t, f.handle(t, out[1]), events.KindLineChangeRequested)
	fail := ev(t, events.KindLineChangeFailed, "failed-a", events.LineChangeFailed{CampaignID: "c-1", ChangeID: reqs[0].ChangeID, LineKey: "a",
		Action: events.LineSetBudget, Code: events.ChangeSellerRefused, Reason: "no"})
	out = f.handle(t, fail)
	if n := len(ofKind[events.LineChangeRequested](t, out, events.KindLineChangeRequested)); n != 0 {
		t.Fatalf("%d increases requested after their decrease failed", n)
	}
	failed := ofKind[events.ReallocationFailed](t, out, events.KindReallocationFailed)
	if len(failed) != 1 || len(failed[0].Moves) != 2 || failed[0].Moves[0].Outcome != "failed" || failed[0].Changes[1].Outcome != "skipped" {
		t.Fatalf("outputs %+v", failed)
	}
}

// TestReallocationWaitsForApproval: without auto-approval a proposal waits;
// a rejection settles it, and a later approval changes nothing.
func TestReallocationWaitsForApproval(t *testing.T) {
	t.Parallel()
	f := newFixture(t, false)
	f.setup(t)
	out := f.handle(t, under(t, "dev-1", 2, 2))
	if len(out) != 1 || out[0].Type() != events.KindReallocationProposed.Type {
		t.Fatalf("outputs %v", ids(out))
	}
	f.handle(t, ev(t, events.KindReallocationRejected, "rej", events.ReallocationRejected{CampaignID: "c-1", Revision: 1, RejectedBy: "api", RejectedAt: time.Now()}))
	if out := f.handle(t, ev(t, events.KindReallocationApproved, "app", events.ReallocationApproved{CampaignID: "c-1", Revision: 1, ApprovedBy: "api"})); len(out) != 0 {
		t.Fatalf("a rejected revision was applied: %v", ids(out))
	}
	if r := f.record(t); r.Revisions[0].Status != StatusRejected || r.Pending() != nil {
		t.Fatalf("record %+v", r.Revisions[0])
	}
}

// TestReallocationToRemainingQuote: what the lines on plan cannot take goes
// to the campaign's best remaining quote (a quote some line was booked from
// is not one), applied after the decrease as an add whose line_key derives
// from its change_id, and the move's outcome names the new line.
func TestReallocationToRemainingQuote(t *testing.T) {
	t.Parallel()
	f := newFixture(t, true)
	const seller = "http://127.0.0.1:1"
	q := func(pkg string, cpm events.Micros, formats ...string) events.QuoteReady {
		return events.QuoteReady{CampaignID: "c-1", Seller: events.Seller{URL: seller, Name: "S"}, Package: events.Package{ID: pkg, AdFormats: formats},
			Outcome: events.OutcomeFixedPrice, QuoteID: "q-" + pkg, FinalCPMMicros: cpm}
	}
	f.svc.Campaigns = campaigns{req: f.svc.Campaigns.(campaigns).req, quotes: []events.QuoteReady{
		q("pb", 5*dollar, "video"),          // booked as line b: not remaining
		q("pdisplay", 20*dollar, "display"), // value 35
		q("pvideo", 20*dollar, "video"),     // value 40: the best remaining
		{CampaignID: "c-1", Seller: events.Seller{URL: seller}, Package: events.Package{ID: "prejected"}, Outcome: events.OutcomeRejected},
	}}
	for _, l := range []struct {
		key    string
		budget events.Micros
	}{{"a", 2000 * dollar}, {"b", 500 * dollar}} {
		f.handle(t, ev(t, events.KindDealBooked, "booked-"+l.key, events.DealBooked{CampaignID: "c-1", LineKey: l.key, SellerURL: seller,
			SellerName: "S", PackageID: "p" + l.key, DealID: "D" + l.key, SpendMicros: l.budget, Tier: events.TierAgency}))
	}
	f.handle(t, ev(t, events.KindDeliveryReported, "snap-b", events.DeliveryReported{CampaignID: "c-1", LineKey: "b", Seq: 2, SellerURL: seller,
		PackageID: "pb", PlannedSpendMicros: 500 * dollar, SpendMicros: 100 * dollar, FlightElapsed: 0.2, Status: events.PacingOnTrack, PacingIndex: 1}))

	out := f.handle(t, under(t, "dev-1", 2, 2))
	props := ofKind[events.ReallocationProposed](t, out, events.KindReallocationProposed)
	if len(props) != 1 {
		t.Fatalf("outputs %v", ids(out))
	}
	p := props[0]
	// a projects 1000 of its 2000: b takes 500 (doubled), 500 books pvideo.
	if len(p.Moves) != 2 || p.Moves[0].ToLineKey != "b" || p.Moves[0].AmountMicros != 500*dollar || p.Moves[1].ToQuote == nil ||
		p.Moves[1].ToQuote.PackageID != "pvideo" || p.Moves[1].ToQuote.QuoteID != "q-pvideo" || p.Moves[1].AmountMicros != 500*dollar ||
		p.CommittedAfterMicros != p.CommittedBeforeMicros {
		t.Fatalf("proposal %+v", p)
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	reqs := ofKind[events.LineChangeRequested](t, f.handle(t, out[1]), events.KindLineChangeRequested)
	if len(reqs) != 1 || reqs[0].LineKey != "a" || reqs[0].BudgetMicros != 1000*dollar {
		t.Fatalf("phase 1 %+v", reqs)
	}
	dec := ev(t, events.KindLineChanged, "changed-a", events.LineChanged{CampaignID: "c-1", ChangeID: reqs[0].ChangeID, LineKey: "a", Action: events.LineSetBudget,
		SellerURL: seller, PackageID: "pa", State: events.LineStateLive, BudgetBeforeMicros: 2000 * dollar, BudgetAfterMicros: 1000 * dollar, CommittedMicros: 1500 * dollar})
	out = f.handle(t, dec)
	inc := ofKind[events.LineChangeRequested](t, out, events.KindLineChangeRequested)
	addID := ChangeID("c-1", 1, 2)
	if len(inc) != 2 || inc[0].LineKey != "b" || inc[0].BudgetMicros != 1000*dollar || inc[1].Action != events.LineAdd || inc[1].ChangeID != addID ||
		inc[1].LineKey != events.AddedLineKey(addID) || inc[1].BudgetMicros != 500*dollar || inc[1].Quote == nil || inc[1].Quote.PackageID != "pvideo" {
		t.Fatalf("phase 2 %+v", inc)
	}
	for _, r := range inc {
		if err := r.Validate(); err != nil {
			t.Fatal(err)
		}
	}
	if again := f.handle(t, dec); !same(ids(again), ids(out)) {
		t.Fatalf("redelivered decrease: %v, first %v", ids(again), ids(out))
	}
	f.handle(t, ev(t, events.KindLineChanged, "changed-b", events.LineChanged{CampaignID: "c-1", ChangeID: inc[0].ChangeID, LineKey: "b",
		Action: events.LineSetBudget, SellerURL: seller, PackageID: "pb", State: events.LineStateLive, BudgetBeforeMicros: 500 * dollar,
		BudgetAfterMicros: 1000 * dollar, CommittedMicros: 2000 * dollar}))
	newKey := events.AddedLineKey(addID)
	out = f.handle(t, ev(t, events.KindLineChanged, "changed-new", events.LineChanged{CampaignID: "c-1", ChangeID: addID, LineKey: newKey,
		Action: events.LineAdd, SellerURL: seller, PackageID: "pvideo", State: events.LineStateLive, BudgetAfterMicros: 490 * dollar, CommittedMicros: 2490 * dollar}))
	applied := ofKind[events.ReallocationApplied](t, out, events.KindReallocationApplied)
	if len(applied) != 1 || len(applied[0].Moves) != 2 || applied[0].Moves[1].Outcome != "applied" || applied[0].Moves[1].ToLineKey != newKey ||
		applied[0].Moves[1].ToQuote == nil {
		t.Fatalf("outputs %+v", applied)
	}
	if r := f.record(t); r.Lines[newKey] == nil || r.Lines[newKey].Budget != 490*dollar || r.Lines[newKey].PackageID != "pvideo" {
		t.Fatalf("record lines %+v", r.Lines)
	}
	// The quote was proposed once: a later episode does not propose it again.
	if got := remaining(ptr(f.record(t)), quoteViews(&campaign.Campaign{Request: &events.CampaignRequested{}, Quotes: map[string]events.QuoteReady{
		"x": q("pvideo", 20*dollar, "video"), "y": q("pdisplay", 20*dollar, "display")}})); len(got) != 1 || got[0].PackageID != "pdisplay" {
		t.Fatalf("remaining %+v", got)
	}
}

func ptr[T any](v T) *T { return &v }

// TestPausedLineIsResumedWhenItsPlanCatchesUp: a line a revision paused
// for delivering ahead of its plan is resumed by a new revision once a
// snapshot shows its plan has caught up with what it spent — not before,
// once per pause, through the same approval — while a line the buyer
// paused is never resumed here.
func TestPausedLineIsResumedWhenItsPlanCatchesUp(t *testing.T) {
	t.Parallel()
	f := newFixture(t, true)
	f.setup(t)
	// b projects 4500 of its 3000 at a fifth of the flight: paused.
	out := f.handle(t, ev(t, events.KindPacingDeviation, "over-b", events.PacingDeviation{CampaignID: "c-1", LineKey: "b", Seq: 3, SinceSeq: 3,
		Direction: events.DeviationOver, SellerURL: "http://127.0.0.1:1", PackageID: "pb", FlightElapsed: 0.2, SpendMicros: 900 * dollar,
		PlannedSpendMicros: 3000 * dollar, Tolerance: 0.2}))
	props := ofKind[events.ReallocationProposed](t, out, events.KindReallocationProposed)
	if len(props) != 1 || len(props[0].Pauses) != 1 || len(out) != 2 {
		t.Fatalf("over: %+v", props)
	}
	reqs := ofKind[events.LineChangeRequested](t, f.handle(t, out[1]), events.KindLineChangeRequested)
	if len(reqs) != 1 || reqs[0].Action != events.LinePause {
		t.Fatalf("pause requests %+v", reqs)
	}
	lineChanged := func(id, key string, a events.LineAction, st events.LineState, by events.Requester, rev int, change string) events.Event {
		return ev(t, events.KindLineChanged, id, events.LineChanged{CampaignID: "c-1", ChangeID: change, LineKey: key, Action: a, RequestedBy: by,
			ReallocationRevision: rev, SellerURL: "http://127.0.0.1:1", PackageID: "p" + key, State: st, BudgetBeforeMicros: 3000 * dollar,
			BudgetAfterMicros: 3000 * dollar, CommittedMicros: 6000 * dollar, BudgetMicros: 10_000 * dollar})
	}
	if out := f.handle(t, lineChanged("paused-b", "b", events.LinePause, events.LineStatePaused, events.RequestedByReallocation, 1, reqs[0].ChangeID)); len(ofKind[events.ReallocationApplied](t, out, events.KindReallocationApplied)) != 1 {
		t.Fatalf("pause applied: %v", ids(out))
	}
	snap := func(id string, seq int, elapsed float64, spend, expected events.Micros) events.Event {
		return ev(t, events.KindDeliveryReported, id, events.DeliveryReported{CampaignID: "c-1", LineKey: "b", Seq: seq, SellerURL: "http://127.0.0.1:1",
			SellerName: "Sb", PackageID: "pb", PlannedSpendMicros: 3000 * dollar, SpendMicros: spend, ExpectedSpendMicros: expected, FlightElapsed: elapsed,
			Status: events.PacingPaused, PacingIndex: float64(spend) / float64(expected)})
	}
	// Still ahead: 900 spent, 750 planned by now.
	if out := f.handle(t, snap("snap-b-4", 4, 0.25, 900*dollar, 750*dollar)); len(out) != 0 {
		t.Fatalf("resumed while still ahead: %v", ids(out))
	}
	// Caught up: 900 spent, 900 planned.
	catch := snap("snap-b-5", 5, 0.3, 900*dollar, 900*dollar)
	out = f.handle(t, catch)
	props = ofKind[events.ReallocationProposed](t, out, events.KindReallocationProposed)
	if len(props) != 1 || len(out) != 2 {
		t.Fatalf("caught up: %v", ids(out))
	}
	p := props[0]
	if p.Revision != 2 || len(p.Resumes) != 1 || p.Resumes[0].LineKey != "b" || p.Resumes[0].PausedByRevision != 1 || len(p.Moves)+len(p.Pauses) != 0 ||
		len(p.Lines) != 1 || !p.Lines[0].Resume || p.Lines[0].BudgetAfterMicros != 3000*dollar || p.CommittedAfterMicros != p.CommittedBeforeMicros ||
		p.Direction != events.DeviationUnder || p.Seq != 5 {
		t.Fatalf("resume proposal %+v", p)
	}
	if again := f.handle(t, catch); !same(ids(again), ids(out)) {
		t.Fatalf("redelivered snapshot: %v, first %v", ids(again), ids(out))
	}
	if next := f.handle(t, snap("snap-b-6", 6, 0.35, 900*dollar, 1050*dollar)); len(next) != 0 {
		t.Fatalf("a second resume of one pause: %v", ids(next))
	}
	reqs = ofKind[events.LineChangeRequested](t, f.handle(t, out[1]), events.KindLineChangeRequested)
	if len(reqs) != 1 || reqs[0].Action != events.LineResume || reqs[0].LineKey != "b" || reqs[0].ReallocationRevision != 2 {
		t.Fatalf("resume requests %+v", reqs)
	}
	out = f.handle(t, lineChanged("resumed-b", "b", events.LineResume, events.LineStateLive, events.RequestedByReallocation, 2, reqs[0].ChangeID))
	if a := ofKind[events.ReallocationApplied](t, out, events.KindReallocationApplied); len(a) != 1 || a[0].Revision != 2 {
		t.Fatalf("resume applied: %v", ids(out))
	}
	if r := f.record(t); r.Lines["b"].State != events.LineStateLive || r.Lines["b"].PausedBy != 0 {
		t.Fatalf("line after the resume %+v", r.Lines["b"])
	}

	// Paused again by a revision, then its budget changed by the buyer:
	// still the revision's pause, so still resumed once caught up.
	f.handle(t, lineChanged("paused-b-2", "b", events.LinePause, events.LineStatePaused, events.RequestedByReallocation, 3, "realloc-c-1-3-0"))
	f.handle(t, lineChanged("budget-b", "b", events.LineSetBudget, events.LineStatePaused, events.RequestedByAPI, 0, "api-budget-b"))
	if r := f.record(t); r.Lines["b"].PausedBy != 3 {
		t.Fatalf("after a budget change of the paused line: %+v", r.Lines["b"])
	}

	// Paused by the buyer: stays paused however far behind its plan.
	f.handle(t, lineChanged("paused-c", "c", events.LinePause, events.LineStatePaused, events.RequestedByAPI, 0, "api-pause-c"))
	if out := f.handle(t, ev(t, events.KindDeliveryReported, "snap-c-9", events.DeliveryReported{CampaignID: "c-1", LineKey: "c", Seq: 9,
		SellerURL: "http://127.0.0.1:1", PackageID: "pc", PlannedSpendMicros: 1000 * dollar, SpendMicros: 100 * dollar, ExpectedSpendMicros: 500 * dollar,
		FlightElapsed: 0.5, Status: events.PacingPaused, PacingIndex: 0.2})); len(out) != 0 {
		t.Fatalf("a line the buyer paused was resumed: %v", ids(out))
	}
}

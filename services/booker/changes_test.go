package booker

import (
	"strings"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/campaign"
	"github.com/dealflow/dealflow/internal/checkfor"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/services/pacer"
)

func TestPlanChange(t *testing.T) {
	t.Parallel()
	iab := &events.DealBooked{CampaignID: "c", Protocol: events.ProtocolIAB, DealID: "D1"}
	adcpDeal := &events.DealBooked{CampaignID: "c", Protocol: events.ProtocolADCP, MediaBuyID: "mb", SellerPackageID: "p"}
	line := func(d *events.DealBooked, spend events.Micros, st events.LineState) *LedgerLine {
		return &LedgerLine{Key: "k", State: LineBooked, Deal: d, SpendMicros: spend, ChangeState: st}
	}
	req := func(a events.LineAction, budget events.Micros) events.LineChangeRequested {
		return events.LineChangeRequested{CampaignID: "c", ChangeID: "ch", LineKey: "k", Action: a, BudgetMicros: budget, RequestedBy: events.RequestedByAPI}
	}
	cases := []struct {
		name      string
		line      *LedgerLine
		other     events.Micros // committed by the campaign's other lines
		budget    events.Micros
		r         events.LineChangeRequested
		code      string
		noop      bool
		reserved  events.Micros
		wantApply bool
	}{
		{"pause adcp", line(adcpDeal, 100, ""), 0, 1000, req(events.LinePause, 0), "", false, 0, true},
		{"pause paused", line(adcpDeal, 100, events.LineStatePaused), 0, 1000, req(events.LinePause, 0), "", true, 0, false},
		{"resume live", line(adcpDeal, 100, ""), 0, 1000, req(events.LineResume, 0), "", true, 0, false},
		{"resume paused", line(adcpDeal, 100, events.LineStatePaused), 0, 1000, req(events.LineResume, 0), "", false, 0, true},
		{"pause iab", line(iab, 100, ""), 0, 1000, req(events.LinePause, 0), events.ChangeUnsupported, false, 0, false},
		{"cancel iab", line(iab, 100, ""), 0, 1000, req(events.LineCancel, 0), "", false, 0, true},
		{"cancel cancelled", line(iab, 10, events.LineStateCancelled), 0, 1000, req(events.LineCancel, 0), events.ChangeInvalidState, false, 0, false},
		{"budget same", line(adcpDeal, 100, ""), 0, 1000, req(events.LineSetBudget, 100), "", true, 0, false},
		{"budget down", line(adcpDeal, 100, ""), 0, 1000, req(events.LineSetBudget, 60), "", false, 0, true},
		{"budget up fits exactly", line(adcpDeal, 100, ""), 400, 1000, req(events.LineSetBudget, 600), "", false, 500, true},
		{"budget up over", line(adcpDeal, 100, ""), 400, 1000, req(events.LineSetBudget, 601), events.ChangeOverBudget, false, 0, false},
		{"budget zero", line(adcpDeal, 100, ""), 0, 1000, req(events.LineSetBudget, 0), events.ChangeUnsupported, false, 0, false},
		{"not booked", &LedgerLine{Key: "k", State: LineReserved, SpendMicros: 100}, 0, 1000, req(events.LineCancel, 0), events.ChangeUnknownLine, false, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			led := &Ledger{BudgetMicros: c.budget, Lines: map[string]*LedgerLine{"k": c.line,
				"other": {Key: "other", State: LineBooked, SpendMicros: c.other}}}
			p := planChange(led, c.line, c.r)
			if p.code != c.code || p.noop != c.noop || p.change.Reserved != c.reserved || (p.code == "" && !p.noop) != c.wantApply {
				t.Fatalf("planned %+v (change %+v), want code %q noop %v reserved %d", p, p.change, c.code, c.noop, c.reserved)
			}
			if p.change.BudgetBefore != c.line.SpendMicros || p.change.ChangeID != "ch" {
				t.Fatalf("change %+v", p.change)
			}
			if c.code == events.ChangeOverBudget && !strings.Contains(p.reason, "budget") {
				t.Fatalf("reason %q", p.reason)
			}
		})
	}
}

// changeEvent is a LineChangeRequested as the API publishes it.
func changeEvent(t *testing.T, cid, lineKey, changeID string, a events.LineAction, budget events.Micros) (events.Event, *events.LineChangeRequested) {
	t.Helper()
	r := events.LineChangeRequested{CampaignID: cid, ChangeID: changeID, LineKey: lineKey, Action: a, BudgetMicros: budget, Reason: "test " + string(a),
		RequestedBy: events.RequestedByAPI, RequestedAt: time.Now().UTC()}
	return must(events.New(events.KindLineChangeRequested, changeID, "test", cid, r)), &r
}

func payloads[T any](t *testing.T, out []events.Event, k events.Kind) []T {
	t.Helper()
	var xs []T
	for _, e := range kinds(out)[k.Type] {
		xs = append(xs, must(events.PayloadOf[T](e, k)))
	}
	return xs
}

func ids(out []events.Event) string {
	var s []string
	for _, e := range out {
		s = append(s, e.Type()+"/"+e.ID())
	}
	return strings.Join(s, ",")
}

// TestIABLineChanges: against the IAB sandbox seller, on real NATS: pause is
// unsupported; a budget increase books an additional deal (same line_key,
// its own DealBooked) once however often the request is delivered; an
// increase past the budget fails without calling the seller; cancel cancels
// every deal of the line with bulk cancel and lowers committed spend to the
// spend delivered; a cancelled line changes no more.
func TestIABLineChanges(t *testing.T) {
	f := newFixture(t, nil)
	f.svc.Booker.Delivered = pacer.SellerReader{Client: f.client}.Spent
	l0 := f.line(f.quotes[0], 200000)
	appr := f.store(t, []events.PlanLine{l0, f.line(f.quotes[2], 200000)})
	if _, err := f.svc.bookAll(t.Context(), appr); err != nil {
		t.Fatal(err)
	}
	key := campaign.LineKey(l0)
	led0 := ledgerNow(t, f.svc, f.c.ID)
	before, committed := led0.Lines[key].SpendMicros, led0.Committed()

	handle := func(e events.Event, r *events.LineChangeRequested) []events.Event {
		t.Helper()
		out, err := f.svc.HandleChange(t.Context(), e, r)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	out := handle(changeEvent(t, f.c.ID, key, "ch-pause", events.LinePause, 0))
	if fs := payloads[events.LineChangeFailed](t, out, events.KindLineChangeFailed); len(fs) != 1 || fs[0].Code != events.ChangeUnsupported {
		t.Fatalf("IAB pause: %s", ids(out))
	}

	// An increase of $1,000: an additional deal for the difference.
	deals := len(f.seller.Deals())
	e, r := changeEvent(t, f.c.ID, key, "ch-more", events.LineSetBudget, before+events.MustMicros(1000))
	out = handle(e, r)
	added := payloads[events.DealBooked](t, out, events.KindDealBooked)
	changed := payloads[events.LineChanged](t, out, events.KindLineChanged)
	if len(added) != 1 || len(changed) != 1 || added[0].LineKey != key || added[0].DealID == "" || added[0].DealID == led0.Lines[key].Deal.DealID {
		t.Fatalf("increase outputs: %s", ids(out))
	}
	ch := changed[0]
	if ch.BudgetBeforeMicros != before || ch.BudgetAfterMicros != before+added[0].SpendMicros || added[0].SpendMicros > events.MustMicros(1000) ||
		ch.CommittedMicros != committed+added[0].SpendMicros || ch.State != events.LineStateLive || ch.AddedDealID != added[0].DealID || len(ch.DealIDs) != 2 {
		t.Fatalf("changed %+v (added spend %s)", ch, added[0].SpendMicros)
	}
	if got := len(f.seller.Deals()); got != deals+1 {
		t.Fatalf("seller holds %d deals, want %d", got, deals+1)
	}
	// Redelivered: the same events, no second deal.
	again := handle(e, r)
	if ids(again) != ids(out) || len(f.seller.Deals()) != deals+1 {
		t.Fatalf("redelivery: %s\nfirst: %s (%d deals)", ids(again), ids(out), len(f.seller.Deals()))
	}

	// Past the budget: refused before the seller is called.
	n := len(f.seller.Requests())
	out = handle(changeEvent(t, f.c.ID, key, "ch-over", events.LineSetBudget, events.MustMicros(10001)))
	if fs := payloads[events.LineChangeFailed](t, out, events.KindLineChangeFailed); len(fs) != 1 || fs[0].Code != events.ChangeOverBudget ||
		fs[0].CommittedMicros != ch.CommittedMicros {
		t.Fatalf("over budget: %s %+v", ids(out), fs)
	}
	if len(f.seller.Requests()) != n {
		t.Fatal("the seller was called for an increase over budget")
	}

	out = handle(changeEvent(t, f.c.ID, key, "ch-cancel", events.LineCancel, 0))
	cancelled := payloads[events.DealCancelled](t, out, events.KindDealCancelled)
	changed = payloads[events.LineChanged](t, out, events.KindLineChanged)
	if len(cancelled) != 2 || len(changed) != 1 || changed[0].State != events.LineStateCancelled {
		t.Fatalf("cancel outputs: %s", ids(out))
	}
	// What stays committed is what the line delivered, read from the
	// seller once its deals stopped.
	delivered := cancelled[0].DeliveredSpendMicros
	if want := ch.CommittedMicros - ch.BudgetAfterMicros + delivered; changed[0].BudgetAfterMicros != delivered || delivered >= ch.BudgetAfterMicros ||
		changed[0].CommittedMicros != want {
		t.Fatalf("cancelled %+v, want budget %s and committed %s", changed[0], delivered, want)
	}
	for _, d := range f.seller.Deals() {
		if (d.DealID == cancelled[0].DealID || d.DealID == cancelled[1].DealID) && d.Status != "cancelled" {
			t.Fatalf("deal %s is %s at the seller", d.DealID, d.Status)
		}
	}
	out = handle(changeEvent(t, f.c.ID, key, "ch-late", events.LineSetBudget, before))
	if fs := payloads[events.LineChangeFailed](t, out, events.KindLineChangeFailed); len(fs) != 1 || fs[0].Code != events.ChangeInvalidState {
		t.Fatalf("change of a cancelled line: %s", ids(out))
	}
	out = handle(changeEvent(t, f.c.ID, "no-such-line", "ch-x", events.LineCancel, 0))
	if fs := payloads[events.LineChangeFailed](t, out, events.KindLineChangeFailed); len(fs) != 1 || fs[0].Code != events.ChangeUnknownLine {
		t.Fatalf("unknown line: %s", ids(out))
	}
	if led := ledgerNow(t, f.svc, f.c.ID); led.Committed() > led.BudgetMicros || led.Lines[key].LineState() != events.LineStateCancelled {
		t.Fatalf("ledger %+v", led)
	}
}

func ledgerNow(t *testing.T, s *Service, cid string) Ledger {
	t.Helper()
	led, ok, err := s.Ledger.Get(t.Context(), cid)
	if err != nil || !ok {
		t.Fatalf("ledger: %v %v", ok, err)
	}
	return led
}

// TestADCPLineChanges: against the AdCP sandbox agent: pause, pause again
// (nothing to do), resume, a budget decrease (committed lowered once the
// seller confirmed), an increase the seller must approve (submitted, then
// followed), and cancel, each with update_media_buy and its own
// idempotency key, applied once however often delivered.
func TestADCPLineChanges(t *testing.T) {
	f := newADCPFixture(t, map[string]bool{"display_news_300x250": false}, false, nil)
	l := f.line("olv_sports_preroll", 200000)
	appr := f.approve(t, l)
	if _, err := f.svc.bookAll(t.Context(), appr); err != nil {
		t.Fatal(err)
	}
	key := campaign.LineKey(l)
	handle := func(e events.Event, r *events.LineChangeRequested) []events.Event {
		t.Helper()
		out, err := f.svc.HandleChange(t.Context(), e, r)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	updates := func() int {
		n := 0
		for _, c := range f.agent.Calls() {
			if c.Tool == "update_media_buy" && !c.IsError && !strings.Contains(string(c.Result), `"replayed":true`) {
				n++
			}
		}
		return n
	}
	e, r := changeEvent(t, f.c.ID, key, "a-pause", events.LinePause, 0)
	out := handle(e, r)
	if p := payloads[events.LinePaused](t, out, events.KindLinePaused); len(p) != 1 || p[0].MediaBuyID == "" {
		t.Fatalf("pause: %s", ids(out))
	}
	if again := handle(e, r); ids(again) != ids(out) || updates() != 1 {
		t.Fatalf("redelivered pause: %s, %d updates", ids(again), updates())
	}
	out = handle(changeEvent(t, f.c.ID, key, "a-pause-2", events.LinePause, 0))
	if c := payloads[events.LineChanged](t, out, events.KindLineChanged); len(c) != 1 || !c[0].Noop || c[0].State != events.LineStatePaused || updates() != 1 {
		t.Fatalf("pausing a paused line: %s", ids(out))
	}
	out = handle(changeEvent(t, f.c.ID, key, "a-resume", events.LineResume, 0))
	if p := payloads[events.LineResumed](t, out, events.KindLineResumed); len(p) != 1 || updates() != 2 {
		t.Fatalf("resume: %s", ids(out))
	}
	before := ledgerNow(t, f.svc, f.c.ID)
	out = handle(changeEvent(t, f.c.ID, key, "a-less", events.LineSetBudget, l.SpendMicros/2))
	c := payloads[events.LineChanged](t, out, events.KindLineChanged)
	if len(c) != 1 || c[0].BudgetAfterMicros != l.SpendMicros/2 || c[0].CommittedMicros != before.Committed()-l.SpendMicros/2 || c[0].Revision < 4 {
		t.Fatalf("decrease: %+v", c)
	}
	for _, b := range f.agent.Buys() {
		if b.TotalBudget*1e6 != float64(l.SpendMicros/2) {
			t.Fatalf("the seller's buy has budget %v", b.TotalBudget)
		}
	}
	out = handle(changeEvent(t, f.c.ID, key, "a-cancel", events.LineCancel, 0))
	if dc := payloads[events.DealCancelled](t, out, events.KindDealCancelled); len(dc) != 1 || dc[0].MediaBuyID == "" {
		t.Fatalf("cancel: %s", ids(out))
	}
	if b := f.agent.Buys(); len(b) != 1 || b[0].Status != "canceled" {
		t.Fatalf("the seller's buy: %+v", b)
	}
	led := ledgerNow(t, f.svc, f.c.ID)
	if ll := led.Lines[key]; ll.LineState() != events.LineStateCancelled || ll.PendingChange != "" || led.Committed() > led.BudgetMicros {
		t.Fatalf("ledger line %+v", ll)
	}
}

// TestADCPIncreaseSubmitted: an increase on a product whose changes the
// seller approves by hand: submitted, the increase stays reserved while the
// task is followed, then applied.
func TestADCPIncreaseSubmitted(t *testing.T) {
	f := newADCPFixture(t, map[string]bool{"olv_sports_preroll": true}, false, nil)
	l := f.line("olv_sports_preroll", 200000)
	if _, err := f.svc.bookAll(t.Context(), f.approve(t, l)); err != nil {
		t.Fatal(err)
	}
	key := campaign.LineKey(l)
	f.svc.Booker.PollWait = time.Millisecond
	e, r := changeEvent(t, f.c.ID, key, "a-more", events.LineSetBudget, l.SpendMicros+events.MustMicros(500))
	_, err := f.svc.HandleChange(t.Context(), e, r)
	if err == nil {
		t.Fatal("the submitted increase was settled at once")
	}
	led := ledgerNow(t, f.svc, f.c.ID)
	if ll := led.Lines[key]; ll.SpendMicros != l.SpendMicros+events.MustMicros(500) || ll.Changes["a-more"].TaskID == "" {
		t.Fatalf("while submitted: %+v %+v", ll, ll.Changes["a-more"])
	}
	var out []events.Event
	checkfor.Check(t, 5*time.Second, 20*time.Millisecond, func() (err error) {
		out, err = f.svc.HandleChange(t.Context(), e, r)
		return err
	})
	if c := payloads[events.LineChanged](t, out, events.KindLineChanged); len(c) != 1 || c[0].BudgetAfterMicros != l.SpendMicros+events.MustMicros(500) {
		t.Fatalf("after approval: %s", ids(out))
	}
}

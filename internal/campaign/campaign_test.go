package campaign

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/pkg/events"
)

var t0 = time.Date(2027, 1, 1, 12, 0, 0, 0, time.UTC)

func request(auto bool) events.CampaignRequested {
	return events.CampaignRequested{CampaignID: "c1", AutoApprove: auto, RequestedAt: t0,
		Brief: events.Brief{Name: "n", BudgetMicros: 100_000_000, StartDate: "2028-07-01", EndDate: "2028-07-10"}}
}

func line(seller, pkg, product string, impr int64, cpm events.Micros) events.PlanLine {
	return events.PlanLine{QuoteID: "q-" + seller + pkg, SellerURL: seller, PackageID: pkg, ProductID: product,
		CPMMicros: cpm, Impressions: impr, SpendMicros: events.CostMicros(impr, cpm), Reason: "best"}
}

// planWith returns a planner proposing lines (or failing with err).
func planWith(lines []events.PlanLine, err error) Planner {
	return func(c *Campaign, budget events.Micros, rev int, exclude map[string]string) (*events.PortfolioProposed, error) {
		if err != nil {
			return nil, err
		}
		var kept []events.PlanLine
		var total events.Micros
		for _, l := range lines {
			if _, ok := exclude[QuoteKey(l.SellerURL, l.PackageID)]; ok {
				continue
			}
			kept = append(kept, l)
			total += l.SpendMicros
		}
		return &events.PortfolioProposed{CampaignID: c.ID, BudgetMicros: budget, TotalSpendMicros: total, Lines: kept,
			AutoApprove: c.Request.AutoApprove, Revision: rev}, nil
	}
}

var twoLines = []events.PlanLine{line("https://a", "p1", "prod-1", 1000, 10_000_000), line("https://b", "p2", "prod-2", 2000, 5_000_000)}

// in builds a campaign in the given status through the transitions
// themselves, so the fixtures cannot disagree with the state machine.
func in(t *testing.T, st events.CampaignStatus, auto bool) *Campaign {
	t.Helper()
	c := New(request(auto), t0)
	if st == events.StatusRequested {
		return c
	}
	must(t, c.Start("req", *c.Request, t0, time.Minute))
	c.RecordDiscovery(events.DiscoveryCompleted{CampaignID: "c1", Sellers: []string{"https://a", "https://b"}}, t0)
	for i, l := range twoLines {
		c.RecordQuote(quote(l.SellerURL, l.PackageID, 1), t0)
		_ = i
	}
	switch st {
	case events.StatusShopping:
		c.Plan = nil
		return c
	case events.StatusRejected:
		mustEvents(t)(c.Reject("rej", events.CampaignRejected{CampaignID: "c1", Reason: "bad"}, t0))
		return c
	case events.StatusEmpty:
		mustEvents(t)(c.Propose("plan", planWith(nil, nil), t0))
		return c
	}
	mustEvents(t)(c.Propose("plan", planWith(twoLines, nil), t0))
	switch st {
	case events.StatusProposed, events.StatusAwaitingApproval:
		if c.Status != st {
			t.Fatalf("fixture: status %s, want %s (auto=%v)", c.Status, st, auto)
		}
		return c
	}
	if !auto {
		mustEvents(t)(c.Approve(c.Plan.Lines, "api", t0))
	}
	must(t, c.BeginBooking(*c.Approved, t0))
	if st == events.StatusBooking {
		return c
	}
	var deals []events.DealBooked
	var fails []events.BookingFailed
	for i, l := range c.Approved.Lines {
		if st == events.StatusFailed || (st == events.StatusPartial && i == 1) {
			fails = append(fails, failed(l.SellerURL, l.PackageID, "rejected"))
			continue
		}
		deals = append(deals, deal(l.SellerURL, l.PackageID, l.SpendMicros))
	}
	mustEvents(t)(finish(c, "book", deals, fails, Replan{}, t0))
	if c.Status != st {
		t.Fatalf("fixture: status %s, want %s", c.Status, st)
	}
	return c
}

// finish records each line's outcome as the plan consumer folds them, then
// finishes the booking.
func finish(c *Campaign, trigger string, deals []events.DealBooked, fails []events.BookingFailed, rp Replan, now time.Time) ([]events.Event, error) {
	for _, d := range deals {
		c.RecordDeal(d, now)
	}
	for _, f := range fails {
		c.RecordFailure(f, now)
	}
	return c.FinishBooking(trigger, rp, now)
}

func deal(seller, pkg string, spend events.Micros) events.DealBooked {
	return events.DealBooked{CampaignID: "c1", SellerURL: seller, PackageID: pkg, QuoteID: "q-" + seller + pkg, DealID: "d-" + pkg, DealType: "PD",
		Currency: "USD", Tier: events.TierAgency, SpendMicros: spend, BookedAt: t0}
}

func failed(seller, pkg, code string) events.BookingFailed {
	return events.BookingFailed{CampaignID: "c1", SellerURL: seller, PackageID: pkg, QuoteID: "q-" + seller + pkg, Code: code, Reason: "seller said no"}
}

func quote(seller, pkg string, total int) events.QuoteReady {
	return events.QuoteReady{CampaignID: "c1", Seller: events.Seller{URL: seller, Trust: events.TrustVerified, Source: "registry"},
		Package: events.Package{ID: pkg}, PackagesTotal: total, Tier: events.TierAgency, Outcome: events.OutcomeAccepted}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustEvents(t *testing.T) func([]events.Event, error) []events.Event {
	return func(evs []events.Event, err error) []events.Event {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}
}

func types(evs []events.Event) string {
	s := ""
	for _, e := range evs {
		k, _ := events.KindOf(e.Type())
		s += k.Name + " "
	}
	return s
}

func TestTransitions(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		from   events.CampaignStatus
		auto   bool
		do     func(c *Campaign) ([]events.Event, error)
		want   events.CampaignStatus
		events string
		err    error
	}{
		{"start", events.StatusRequested, false, func(c *Campaign) ([]events.Event, error) {
			return nil, c.Start("r", *c.Request, t0, time.Minute)
		}, events.StatusShopping, "", nil},
		{"plan for approval", events.StatusShopping, false, func(c *Campaign) ([]events.Event, error) {
			return c.Propose("x", planWith(twoLines, nil), t0)
		}, events.StatusAwaitingApproval, "PortfolioProposed ", nil},
		{"plan auto-approved", events.StatusShopping, true, func(c *Campaign) ([]events.Event, error) {
			return c.Propose("x", planWith(twoLines, nil), t0)
		}, events.StatusProposed, "PortfolioProposed PortfolioApproved ", nil},
		{"plan nothing bookable", events.StatusShopping, true, func(c *Campaign) ([]events.Event, error) {
			return c.Propose("x", planWith(nil, nil), t0)
		}, events.StatusEmpty, "PortfolioProposed CampaignCompleted ", nil},
		{"planner refuses", events.StatusShopping, false, func(c *Campaign) ([]events.Event, error) {
			return c.Propose("x", planWith(nil, errors.New("budget above the optimiser's limit")), t0)
		}, events.StatusFailed, "CampaignCompleted ", nil},
		{"invalid brief", events.StatusShopping, false, func(c *Campaign) ([]events.Event, error) {
			return c.Reject("x", events.CampaignRejected{CampaignID: "c1", Field: "brief.budget", Reason: "too big"}, t0)
		}, events.StatusRejected, "CampaignCompleted ", nil},
		{"approve", events.StatusAwaitingApproval, false, func(c *Campaign) ([]events.Event, error) {
			return c.Approve(c.Plan.Lines[:1], "api", t0)
		}, events.StatusBooking, "PortfolioApproved ", nil},
		{"reject portfolio", events.StatusAwaitingApproval, false, func(c *Campaign) ([]events.Event, error) {
			return c.RejectPortfolio("too pricey", t0)
		}, events.StatusRejected, "CampaignRejected CampaignCompleted ", nil},
		{"begin auto booking", events.StatusProposed, true, func(c *Campaign) ([]events.Event, error) {
			return nil, c.BeginBooking(*c.Approved, t0)
		}, events.StatusBooking, "", nil},
		{"all booked", events.StatusBooking, true, func(c *Campaign) ([]events.Event, error) {
			return finish(c, "b", []events.DealBooked{deal("https://a", "p1", 0), deal("https://b", "p2", 0)}, nil, Replan{}, t0)
		}, events.StatusCompleted, "CampaignCompleted ", nil},
		{"one failed", events.StatusBooking, false, func(c *Campaign) ([]events.Event, error) {
			return finish(c, "b", []events.DealBooked{deal("https://a", "p1", 0)},
				[]events.BookingFailed{failed("https://b", "p2", "quote_expired")}, Replan{}, t0)
		}, events.StatusPartial, "CampaignCompleted ", nil},
		{"all failed", events.StatusBooking, false, func(c *Campaign) ([]events.Event, error) {
			return finish(c, "b", nil, []events.BookingFailed{failed("https://a", "p1", "x"), failed("https://b", "p2", "x")}, Replan{}, t0)
		}, events.StatusFailed, "CampaignCompleted ", nil},
		{"failure re-planned", events.StatusBooking, true, func(c *Campaign) ([]events.Event, error) {
			spare := append(append([]events.PlanLine{}, twoLines...), line("https://c", "p3", "prod-3", 1000, 4_000_000))
			return finish(c, "b", []events.DealBooked{deal("https://a", "p1", 10_000)},
				[]events.BookingFailed{failed("https://b", "p2", "unavailable")}, Replan{Plan: planWith(spare, nil), MaxRevisions: 3}, t0)
		}, events.StatusProposed, "PortfolioProposed PortfolioApproved ", nil},
		{"fail while shopping", events.StatusShopping, false, func(c *Campaign) ([]events.Event, error) {
			return c.Fail("x", "booker gave up", t0)
		}, events.StatusFailed, "CampaignCompleted ", nil},

		// Refused transitions: the status is unchanged and the error says why.
		{"approve while shopping", events.StatusShopping, false, func(c *Campaign) ([]events.Event, error) {
			return c.Approve(twoLines, "api", t0)
		}, events.StatusShopping, "", ErrInvalidState},
		{"approve an auto-approved plan", events.StatusProposed, true, func(c *Campaign) ([]events.Event, error) {
			return c.Approve(c.Plan.Lines, "api", t0)
		}, events.StatusProposed, "", ErrInvalidState},
		{"approve twice", events.StatusBooking, false, func(c *Campaign) ([]events.Event, error) {
			return c.Approve(c.Plan.Lines, "api", t0)
		}, events.StatusBooking, "", ErrInvalidState},
		{"approve a finished campaign", events.StatusCompleted, false, func(c *Campaign) ([]events.Event, error) {
			return c.Approve(c.Plan.Lines, "api", t0)
		}, events.StatusCompleted, "", ErrInvalidState},
		{"approve a line not planned", events.StatusAwaitingApproval, false, func(c *Campaign) ([]events.Event, error) {
			return c.Approve([]events.PlanLine{line("https://z", "p9", "", 1, 1)}, "api", t0)
		}, events.StatusAwaitingApproval, "", ErrSelection},
		{"approve a line at a higher price", events.StatusAwaitingApproval, false, func(c *Campaign) ([]events.Event, error) {
			l := c.Plan.Lines[0]
			l.CPMMicros++
			return c.Approve([]events.PlanLine{l}, "api", t0)
		}, events.StatusAwaitingApproval, "", ErrSelection},
		{"approve nothing", events.StatusAwaitingApproval, false, func(c *Campaign) ([]events.Event, error) {
			return c.Approve(nil, "api", t0)
		}, events.StatusAwaitingApproval, "", ErrSelection},
		{"reject while booking", events.StatusBooking, false, func(c *Campaign) ([]events.Event, error) {
			return c.RejectPortfolio("late", t0)
		}, events.StatusBooking, "", ErrInvalidState},
		{"reject while shopping", events.StatusShopping, false, func(c *Campaign) ([]events.Event, error) {
			return c.RejectPortfolio("early", t0)
		}, events.StatusShopping, "", ErrInvalidState},
		{"book before approval", events.StatusAwaitingApproval, false, func(c *Campaign) ([]events.Event, error) {
			return nil, c.BeginBooking(events.PortfolioApproved{CampaignID: "c1", Revision: 1, Lines: c.Plan.Lines}, t0)
		}, events.StatusAwaitingApproval, "", ErrInvalidState},
		{"book a revision the record does not show yet", events.StatusProposed, true, func(c *Campaign) ([]events.Event, error) {
			return nil, c.BeginBooking(events.PortfolioApproved{CampaignID: "c1", Revision: 7, Lines: c.Plan.Lines}, t0)
		}, events.StatusProposed, "", ErrNotVisible},
		{"book a revision already re-planned", events.StatusProposed, true, func(c *Campaign) ([]events.Event, error) {
			c.Plan.Revision, c.Approved.Revision = 2, 2 // as a re-plan leaves it
			return nil, c.BeginBooking(events.PortfolioApproved{CampaignID: "c1", Revision: 1, Lines: c.Plan.Lines}, t0)
		}, events.StatusProposed, "", ErrStale},
		{"approval redelivered after the end", events.StatusCompleted, true, func(c *Campaign) ([]events.Event, error) {
			return nil, c.BeginBooking(*c.Approved, t0)
		}, events.StatusCompleted, "", nil},
		{"book a finished campaign anew", events.StatusCompleted, true, func(c *Campaign) ([]events.Event, error) {
			return nil, c.BeginBooking(events.PortfolioApproved{CampaignID: "c1", Revision: 2, Lines: c.Plan.Lines}, t0)
		}, events.StatusCompleted, "", ErrStale},
		{"book other lines than approved", events.StatusBooking, false, func(c *Campaign) ([]events.Event, error) {
			return nil, c.BeginBooking(events.PortfolioApproved{CampaignID: "c1", Revision: 1, Lines: c.Plan.Lines[:1]}, t0)
		}, events.StatusBooking, "", ErrSelection},
		{"start again", events.StatusAwaitingApproval, false, func(c *Campaign) ([]events.Event, error) {
			return nil, c.Start("again", *c.Request, t0, time.Minute)
		}, events.StatusAwaitingApproval, "", nil},
		{"reject request after the plan", events.StatusAwaitingApproval, false, func(c *Campaign) ([]events.Event, error) {
			return c.Reject("x", events.CampaignRejected{CampaignID: "c1", Reason: "late"}, t0)
		}, events.StatusAwaitingApproval, "", nil},
		{"plan twice", events.StatusAwaitingApproval, false, func(c *Campaign) ([]events.Event, error) {
			return c.Propose("again", planWith(twoLines, nil), t0)
		}, events.StatusAwaitingApproval, "", nil},
		{"fail a finished campaign", events.StatusPartial, false, func(c *Campaign) ([]events.Event, error) {
			return c.Fail("x", "late", t0)
		}, events.StatusPartial, "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := in(t, tc.from, tc.auto)
			evs, err := tc.do(c)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if c.Status != tc.want {
				t.Fatalf("status %s, want %s", c.Status, tc.want)
			}
			if got := types(evs); got != tc.events {
				t.Fatalf("events %q, want %q", got, tc.events)
			}
			for _, e := range evs {
				if e.Subject() != "c1" {
					t.Fatalf("event %s for campaign %q", e.Type(), e.Subject())
				}
				if k, _ := events.KindOf(e.Type()); k.Name == "CampaignCompleted" {
					sum, err := events.PayloadOf[events.CampaignCompleted](e, events.KindCampaignCompleted)
					if err != nil || sum.Status != tc.want {
						t.Fatalf("CampaignCompleted status %q (err %v), want %s", sum.Status, err, tc.want)
					}
				}
			}
		})
	}
}

// TestEveryStatusRefusesWhatItMust runs every operation from every status.
func TestEveryStatusRefusesWhatItMust(t *testing.T) {
	t.Parallel()
	approveOK := map[events.CampaignStatus]bool{events.StatusAwaitingApproval: true}
	rejectOK := map[events.CampaignStatus]bool{events.StatusAwaitingApproval: true}
	for _, st := range events.CampaignStatuses {
		t.Run(string(st), func(t *testing.T) {
			t.Parallel()
			auto := st == events.StatusProposed
			c := in(t, st, auto)
			lines := twoLines
			if c.Plan != nil {
				lines = c.Plan.Lines
			}
			_, err := c.Approve(lines, "api", t0)
			if approveOK[st] != (err == nil) {
				t.Fatalf("approve from %s: err %v", st, err)
			}
			c = in(t, st, auto)
			_, err = c.RejectPortfolio("r", t0)
			if rejectOK[st] != (err == nil) {
				t.Fatalf("reject from %s: err %v", st, err)
			}
			c = in(t, st, auto)
			evs, err := c.Fail("x", "boom", t0)
			if err != nil || st.Terminal() != (len(evs) == 0) || (!st.Terminal() && c.Status != events.StatusFailed) {
				t.Fatalf("fail from %s: status %s events %d err %v", st, c.Status, len(evs), err)
			}
		})
	}
}

func TestRedeliveryReplaysTheSameEvents(t *testing.T) {
	t.Parallel()
	c := in(t, events.StatusShopping, true)
	first := mustEvents(t)(c.Propose("trigger-1", planWith(twoLines, nil), t0))
	again := mustEvents(t)(c.Replay("trigger-1"))
	if len(first) != 2 || len(again) != len(first) {
		t.Fatalf("first %d events, replay %d", len(first), len(again))
	}
	for i := range first {
		if first[i].ID() != again[i].ID() {
			t.Fatalf("replayed id %s, first %s", again[i].ID(), first[i].ID())
		}
	}
	if evs := mustEvents(t)(c.Replay("other")); len(evs) != 0 {
		t.Fatalf("unrelated trigger replayed %d events", len(evs))
	}
}

func TestApplyDeduplicates(t *testing.T) {
	t.Parallel()
	c := &Campaign{}
	req := request(false)
	e, err := events.New(events.KindCampaignRequested, "e1", "test", "c1", req)
	must(t, err)
	if _, err := Apply(c, e, &req, t0, time.Minute); err != nil || c.Status != events.StatusShopping {
		t.Fatalf("status %s err %v", c.Status, err)
	}
	qr := quote("https://a", "p", 2)
	q, err := events.New(events.KindQuoteReady, "e2", "test", "c1", qr)
	must(t, err)
	for range 3 {
		if _, err := Apply(c, q, &qr, t0, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if c.QuoteCount["https://a"] != 1 {
		t.Fatalf("quote counted %d times", c.QuoteCount["https://a"])
	}
}

func TestDue(t *testing.T) {
	t.Parallel()
	grace := 10 * time.Second
	cases := []struct {
		name string
		c    func() *Campaign
		at   time.Time
		want string
		open bool // whether the sweeper follows it at all
	}{
		{"requested, within grace", func() *Campaign { return in(t, events.StatusRequested, false) }, t0.Add(time.Second), "", true},
		{"requested, never taken up", func() *Campaign { return in(t, events.StatusRequested, false) }, t0.Add(time.Minute), "CampaignRequested ", true},
		{"shopping before deadline", func() *Campaign { return in(t, events.StatusShopping, false) }, t0.Add(30 * time.Second), "", true},
		{"shopping after deadline", func() *Campaign { return in(t, events.StatusShopping, false) }, t0.Add(2 * time.Minute), "ShoppingDeadlinePassed ", true},
		{"deadline already handled", func() *Campaign {
			c := in(t, events.StatusShopping, false)
			c.PassDeadline(t0)
			return c
		}, t0.Add(2 * time.Minute), "", false},
		{"approved, booker not started", func() *Campaign {
			c := in(t, events.StatusAwaitingApproval, false)
			mustEvents(t)(c.Approve(c.Plan.Lines, "api", t0))
			return c
		}, t0.Add(time.Minute), "PortfolioApproved ", true},
		{"auto-approved, within grace", func() *Campaign { return in(t, events.StatusProposed, true) }, t0.Add(time.Second), "", true},
		{"auto-approved, booker not started", func() *Campaign { return in(t, events.StatusProposed, true) }, t0.Add(time.Minute), "PortfolioApproved ", true},
		{"booking under way", func() *Campaign { return in(t, events.StatusBooking, false) }, t0.Add(time.Hour), "", false},
		{"auto-approved booking under way", func() *Campaign { return in(t, events.StatusBooking, true) }, t0.Add(time.Hour), "", false},
		{"completed", func() *Campaign { return in(t, events.StatusCompleted, true) }, t0.Add(time.Hour), "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.c()
			evs, err := c.Due(tc.at, grace, 0)
			must(t, err)
			if got := types(evs); got != tc.want {
				t.Fatalf("due %q, want %q", got, tc.want)
			}
			if c.Open() != tc.open {
				t.Fatalf("Open() = %v, want %v", c.Open(), tc.open)
			}
		})
	}
}

// An approval not taken up is published first as it was (the same id:
// stored once however often it is sent), then, every ApprovalRetryEvery,
// under a new id, so a dead-lettered approval is taken up again; every
// copy carries the approval recorded, from the source that approved it.
func TestDueApprovalCopies(t *testing.T) {
	t.Parallel()
	grace := 10 * time.Second
	for _, auto := range []bool{true, false} {
		var c *Campaign
		if auto {
			c = in(t, events.StatusProposed, true)
		} else {
			c = in(t, events.StatusAwaitingApproval, false)
			mustEvents(t)(c.Approve(c.Plan.Lines, "api", t0))
		}
		var original events.Event
		if auto {
			evs, err := c.proposalEvents()
			must(t, err)
			original = evs[1]
		} else {
			e, err := c.approvalEvent()
			must(t, err)
			original = e
		}
		ids := map[string]bool{}
		for _, at := range []time.Duration{11 * time.Second, 40 * time.Second, grace + ApprovalRetryEvery + time.Second, grace + 2*ApprovalRetryEvery + time.Second} {
			evs := mustEvents(t)(c.Due(t0.Add(at), grace, 0))
			if len(evs) != 1 {
				t.Fatalf("auto=%v at %s: %d due events", auto, at, len(evs))
			}
			e := evs[0]
			if e.Source() != original.Source() || string(e.Data()) != string(original.Data()) {
				t.Fatalf("auto=%v at %s: copy from %s with %s, approval from %s with %s", auto, at, e.Source(), e.Data(), original.Source(), original.Data())
			}
			if at < grace+ApprovalRetryEvery && e.ID() != original.ID() {
				t.Fatalf("auto=%v at %s: first copy has id %s, the approval %s", auto, at, e.ID(), original.ID())
			}
			ids[e.ID()] = true
		}
		if len(ids) != 3 {
			t.Fatalf("auto=%v: %d distinct ids over three retry periods, want 3", auto, len(ids))
		}
		must(t, c.BeginBooking(*c.Approved, t0))
		if evs := mustEvents(t)(c.Due(t0.Add(time.Hour), grace, 0)); len(evs) != 0 || c.Open() {
			t.Fatalf("auto=%v: taken up, still due %d events (open %v)", auto, len(evs), c.Open())
		}
	}
}

func TestSelect(t *testing.T) {
	t.Parallel()
	p := &events.PortfolioProposed{Revision: 1, Lines: []events.PlanLine{
		line("https://a", "p1", "prod-ctv", 1000, 10_000_000),
		line("https://b", "p2", "prod-ctv", 1000, 10_000_000),
		line("https://c", "p3", "prod-x", 1000, 10_000_000),
	}}
	cases := []struct {
		sel   Selection
		want  string
		field string
	}{
		{Selection{ProductIDs: []string{"prod-x"}}, "[p3]", ""},
		{Selection{QuoteIDs: []string{"q-https://ap1"}, PackageIDs: []string{"p2"}}, "[p1 p2]", ""},
		{Selection{ProductIDs: []string{"prod-ctv"}}, "", "approved_product_ids"},
		{Selection{PackageIDs: []string{"nope"}}, "", "approved_package_ids"},
		{Selection{}, "", "approved_quote_ids"},
	}
	for _, tc := range cases {
		lines, err := Select(p, tc.sel)
		var pkgs []string
		for _, l := range lines {
			pkgs = append(pkgs, l.PackageID)
		}
		var se *SelectionError
		switch {
		case tc.field == "" && (err != nil || fmt.Sprint(pkgs) != tc.want):
			t.Errorf("%+v: lines %v err %v, want %s", tc.sel, pkgs, err, tc.want)
		case tc.field != "" && (!errors.As(err, &se) || se.Field != tc.field || len(lines) != 0):
			t.Errorf("%+v: err %v lines %v, want a selection error on %s", tc.sel, err, pkgs, tc.field)
		}
	}
}

// TestDeadLetteredPackageResolvesIt: a SellerSkipped naming one package (a
// dead-lettered PackageFound) counts as that package's resolution, so the
// campaign plans without waiting for its shopping window, and the job's
// errors say why.
func TestDeadLetteredPackageResolvesIt(t *testing.T) {
	t.Parallel()
	c := New(request(false), t0)
	must(t, c.Start("r", *c.Request, t0, time.Hour))
	c.RecordDiscovery(events.DiscoveryCompleted{CampaignID: "c1", Sellers: []string{"https://a", "https://b"}}, t0)
	c.RecordQuote(quote("https://a", "p1", 2), t0)
	c.RecordQuote(quote("https://b", "p9", 1), t0)
	if c.ReadyToPlan() {
		t.Fatal("ready with one of seller a's two packages unresolved")
	}
	dl := events.SellerSkipped{CampaignID: "c1", SellerURL: "https://a", PackageID: "p2", PackagesTotal: 2, Stage: "negotiator",
		Code: events.SkipDeadLettered, Reason: "negotiator dead-lettered PackageFound e1: boom"}
	c.RecordSkip(dl, t0)
	c.RecordSkip(dl, t0) // redelivered
	if !c.ReadyToPlan() {
		done, total := c.Resolved()
		t.Fatalf("not ready after the dead-lettered package was skipped: %d of %d sellers resolved", done, total)
	}
	if len(c.Skipped) != 1 || c.skippedSeller("https://a") || len(c.Errors) != 1 || c.Errors[0] != "dead letter: "+dl.Reason {
		t.Fatalf("skipped %v errors %v", c.Skipped, c.Errors)
	}
	// A seller whose only package was dead-lettered before any quote: the
	// skip's packages_total completes its count.
	c2 := New(request(false), t0)
	must(t, c2.Start("r", *c2.Request, t0, time.Hour))
	c2.RecordDiscovery(events.DiscoveryCompleted{CampaignID: "c1", Sellers: []string{"https://a"}}, t0)
	c2.RecordSkip(events.SellerSkipped{CampaignID: "c1", SellerURL: "https://a", PackageID: "p1", PackagesTotal: 1, Stage: "negotiator", Code: events.SkipDeadLettered, Reason: "x"}, t0)
	if !c2.ReadyToPlan() {
		t.Fatal("a seller whose only package was dead-lettered is not resolved")
	}
}

// TestLineOutcomesFold: each line's outcome is folded as it comes; the
// campaign finishes only when every approved line has one; an unresolved
// line ends it partial with its spend reserved, and what the reconciler
// finds later (a deal, or not_booked) replaces it and re-derives the
// status and spend, once.
func TestLineOutcomesFold(t *testing.T) {
	t.Parallel()
	a, b := twoLines[0], twoLines[1]
	unresolved := failed(b.SellerURL, b.PackageID, "outcome_unknown")
	unresolved.Unresolved, unresolved.SpendMicros = true, b.SpendMicros

	for _, tc := range []struct {
		name       string
		reconciled func(c *Campaign)
		status     events.CampaignStatus
		spend      events.Micros
	}{
		{"deal found later", func(c *Campaign) { c.RecordDeal(deal(b.SellerURL, b.PackageID, b.SpendMicros), t0) }, events.StatusCompleted, a.SpendMicros + b.SpendMicros},
		{"seller booked nothing", func(c *Campaign) { c.RecordFailure(failed(b.SellerURL, b.PackageID, "not_booked"), t0) }, events.StatusPartial, a.SpendMicros},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := in(t, events.StatusBooking, true)
			c.RecordDeal(deal(a.SellerURL, a.PackageID, a.SpendMicros), t0)
			if c.Settled() {
				t.Fatal("settled with one of two lines known")
			}
			if evs := mustEvents(t)(c.FinishBooking("early", Replan{}, t0)); len(evs) != 0 || c.Status != events.StatusBooking {
				t.Fatalf("finished early: %s %s", types(evs), c.Status)
			}
			c.RecordFailure(unresolved, t0)
			c.RecordFailure(unresolved, t0) // a copy changes nothing
			if !c.Settled() {
				t.Fatal("not settled with every line known")
			}
			// An unresolved line is not re-planned: its spend stays reserved.
			evs := mustEvents(t)(c.FinishBooking("last", Replan{Plan: planWith(twoLines, nil), MaxRevisions: 3}, t0))
			if types(evs) != "CampaignCompleted " || c.Status != events.StatusPartial || len(c.Unresolved) != 1 || c.UnresolvedSpend() != b.SpendMicros {
				t.Fatalf("at the horizon: %s %s, %d unresolved", types(evs), c.Status, len(c.Unresolved))
			}
			if s := c.Summary(); len(s.Unresolved) != 1 || s.TotalSpendMicros != a.SpendMicros {
				t.Fatalf("summary %+v", s)
			}
			tc.reconciled(c)
			tc.reconciled(c) // once only
			if c.Status != tc.status || len(c.Unresolved) != 0 || c.TotalSpend() != tc.spend || len(c.Deals)+len(c.Failures) != 2 {
				t.Fatalf("after reconciliation: %s, spend %d, %d unresolved, %d deals, %d failures", c.Status, c.TotalSpend(), len(c.Unresolved), len(c.Deals), len(c.Failures))
			}
		})
	}
}

// TestDealOfALineChangeIsNotRecorded: a deal a line change booked after
// the campaign's booking (an IAB budget change's additional deal, a line a
// reallocation added) is not part of the booked portfolio: recording it
// would put the campaign's total spend on top of what the line gave up.
func TestDealOfALineChangeIsNotRecorded(t *testing.T) {
	t.Parallel()
	a, b := twoLines[0], twoLines[1]
	c := in(t, events.StatusBooking, true)
	c.RecordDeal(deal(a.SellerURL, a.PackageID, a.SpendMicros), t0)
	c.RecordDeal(deal(b.SellerURL, b.PackageID, b.SpendMicros), t0)
	before := c.TotalSpend()
	added := deal(b.SellerURL, "pkg-other", 5_000_000_000)
	added.LineKey, added.ChangeID = "line-added", "realloc-c-1-0"
	c.RecordDeal(added, t0)
	if len(c.Deals) != 2 || c.TotalSpend() != before {
		t.Fatalf("after a line change's deal: %d deals, total spend %s (was %s)", len(c.Deals), c.TotalSpend(), before)
	}
}

// TestReplanKeepsUnresolvedSpendReserved: a re-plan after a definite
// failure gets the budget less what is booked and what unresolved lines
// keep reserved, and never plans an unresolved line's quote again.
func TestReplanKeepsUnresolvedSpendReserved(t *testing.T) {
	t.Parallel()
	three := append(append([]events.PlanLine{}, twoLines...), line("https://c", "p3", "prod-3", 1000, 4_000_000))
	c := New(request(true), t0)
	must(t, c.Start("req", *c.Request, t0, time.Minute))
	c.RecordDiscovery(events.DiscoveryCompleted{CampaignID: "c1", Sellers: []string{"https://a", "https://b", "https://c"}}, t0)
	for _, l := range three {
		c.RecordQuote(quote(l.SellerURL, l.PackageID, 1), t0)
	}
	mustEvents(t)(c.Propose("plan", planWith(three[:2], nil), t0))
	must(t, c.BeginBooking(*c.Approved, t0))
	unresolved := failed("https://b", "p2", "outcome_unknown")
	unresolved.Unresolved, unresolved.SpendMicros = true, twoLines[1].SpendMicros
	var gotBudget events.Micros
	var gotExclude map[string]string
	plan := func(c *Campaign, budget events.Micros, rev int, exclude map[string]string) (*events.PortfolioProposed, error) {
		gotBudget, gotExclude = budget, exclude
		return planWith(three, nil)(c, budget, rev, exclude)
	}
	evs := mustEvents(t)(finish(c, "b", nil, []events.BookingFailed{failed("https://a", "p1", "connection_refused")}, Replan{}, t0))
	if len(evs) != 0 {
		t.Fatalf("finished with a line unknown: %s", types(evs))
	}
	c.RecordFailure(unresolved, t0)
	evs = mustEvents(t)(c.FinishBooking("b2", Replan{Plan: plan, MaxRevisions: 3}, t0))
	if types(evs) != "PortfolioProposed PortfolioApproved " {
		t.Fatalf("no re-plan: %s", types(evs))
	}
	if want := c.Budget() - twoLines[1].SpendMicros; gotBudget != want {
		t.Fatalf("re-plan budget %d, want %d (the unresolved line's spend kept)", gotBudget, want)
	}
	if _, ok := gotExclude[QuoteKey("https://b", "p2")]; !ok || len(c.Plan.Lines) != 1 || c.Plan.Lines[0].PackageID != "p3" {
		t.Fatalf("re-plan %+v excluding %v", c.Plan.Lines, gotExclude)
	}
}

// TestReplanLeavesOutASellerThatCannotBeBooked: a line failed because its
// seller could not be reached at all; the re-plan plans none of that
// seller's other quotes, while a line that failed on its own
// (quote_expired) leaves the seller's other quotes in.
func TestReplanLeavesOutASellerThatCannotBeBooked(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		code string
		want []string
	}{{"connection_refused", []string{"p3"}}, {"quote_expired", []string{"p3", "p4"}}} {
		t.Run(tc.code, func(t *testing.T) {
			lines := append(append([]events.PlanLine{}, twoLines...), line("https://c", "p3", "prod-3", 1000, 4_000_000),
				line("https://a", "p4", "prod-4", 1000, 4_000_000))
			c := New(request(true), t0)
			must(t, c.Start("req", *c.Request, t0, time.Minute))
			c.Quotes = map[string]events.QuoteReady{}
			per := map[string]int{"https://a": 2, "https://b": 1, "https://c": 1}
			for _, l := range lines {
				q := quote(l.SellerURL, l.PackageID, per[l.SellerURL])
				c.RecordQuote(q, t0)
				c.Quotes[QuoteKey(l.SellerURL, l.PackageID)] = q
			}
			c.RecordDiscovery(events.DiscoveryCompleted{CampaignID: "c1", Sellers: []string{"https://a", "https://b", "https://c"}}, t0)
			mustEvents(t)(c.Propose("plan", planWith(twoLines, nil), t0))
			if c.Approved == nil {
				t.Fatalf("no plan: %s", c.Status)
			}
			must(t, c.BeginBooking(*c.Approved, t0))
			mustEvents(t)(finish(c, "b", []events.DealBooked{deal("https://b", "p2", twoLines[1].SpendMicros)},
				[]events.BookingFailed{failed("https://a", "p1", tc.code)}, Replan{Plan: planWith(lines, nil), MaxRevisions: 3}, t0))
			var got []string
			for _, l := range c.Plan.Lines {
				got = append(got, l.PackageID)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("re-plan lines %v, want %v", got, tc.want)
			}
		})
	}
}

// TestSummaryFitsOneEvent: a campaign that skipped thousands of sellers
// (each reason at its longest) and booked hundreds of deals still ends
// with a CampaignCompleted within the event limit, listing the first of
// each and counting them all; a small one lists everything.
func TestSummaryFitsOneEvent(t *testing.T) {
	c := in(t, events.StatusRequested, true)
	for i := range 3000 {
		c.Skipped = append(c.Skipped, events.SellerSkipped{CampaignID: "c1", SellerURL: fmt.Sprintf("https://seller-%d.example", i), Code: "unreachable",
			Reason: strings.Repeat("r", events.MaxReasonLen)})
	}
	for i := range 600 {
		c.Deals = append(c.Deals, events.DealBooked{CampaignID: "c1", SellerURL: fmt.Sprintf("https://seller-%d.example", i), PackageID: "p",
			QuoteID: "q", DealID: strings.Repeat("d", 200), DealType: "PD", CPMMicros: 1, Impressions: 1000, SpendMicros: 1, Currency: "USD", Tier: events.TierPublic, BookedAt: t0,
			ActivationInstructions: map[string]string{"ttd": strings.Repeat("a", 400)}})
	}
	sum := c.Summary()
	b, err := json.Marshal(sum)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > summaryDataLimit || sum.SkippedTotal != 3000 || len(sum.SkippedSellers) >= 3000 || sum.DealsTotal != 600 || len(sum.Deals) == 0 {
		t.Fatalf("%d bytes, skipped %d of %d, deals %d of %d", len(b), len(sum.SkippedSellers), sum.SkippedTotal, len(sum.Deals), sum.DealsTotal)
	}
	e, err := c.completionEvent()
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.CheckEvent(e); err != nil {
		t.Fatalf("the completion cannot be published: %v", err)
	}
	small := in(t, events.StatusRequested, true)
	small.Skipped = c.Skipped[:3]
	if s := small.Summary(); len(s.SkippedSellers) != 3 || s.SkippedTotal != 0 || s.DealsTotal != 0 {
		t.Fatalf("%+v", s)
	}
}

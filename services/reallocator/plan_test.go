package reallocator

import (
	"strings"
	"testing"

	"github.com/dealflow/dealflow/pkg/events"
)

const dollar = events.Micros(1_000_000)

func onPlan(key string, budget events.Micros, pace float64, elapsed float64) LineView {
	return LineView{Key: key, SellerName: "S-" + key, PackageID: "p-" + key, Budget: budget, Reported: true, Status: events.PacingOnTrack,
		Spend: events.Micros(float64(budget) * pace * elapsed), Elapsed: elapsed}
}

func atSeller(l LineView, url string) LineView { l.SellerURL = url; return l }

func quote(pkg, seller string, cpm events.Micros, score float64) QuoteView {
	return QuoteView{QuoteRef: events.QuoteRef{SellerURL: seller, PackageID: pkg, QuoteID: "q-" + pkg, CPMMicros: cpm}, Protocol: events.ProtocolIAB, Score: score}
}

func dev(key string, dir events.Deviation, spend events.Micros, elapsed float64) events.PacingDeviation {
	return events.PacingDeviation{CampaignID: "c", LineKey: key, Direction: dir, Seq: 3, SinceSeq: 2, SpendMicros: spend, FlightElapsed: elapsed}
}

func TestPropose(t *testing.T) {
	t.Parallel()
	type move struct {
		from, to string
		amount   events.Micros
	}
	cases := []struct {
		name    string
		in      Input
		moves   []move
		pauses  []string
		settled bool
		reason  string
	}{
		{
			name: "under: what the line will not spend moves to the on-plan lines by budget x pace",
			in: Input{Budget: 10_000 * dollar, Tolerance: 0.2, Trigger: dev("a", events.DeviationUnder, 250*dollar, 0.25),
				Lines: []LineView{{Key: "a", Budget: 2000 * dollar, Reported: true, Status: events.PacingUnder, Spend: 250 * dollar, Elapsed: 0.25},
					onPlan("b", 3000*dollar, 1, 0.25), onPlan("c", 1000*dollar, 1, 0.25)}},
			// a projects 1000 of 2000: 1000 moves, 3:1 by budget at pace 1.
			moves: []move{{"a", "b", 750 * dollar}, {"a", "c", 250 * dollar}},
		},
		{
			name: "a line that never started gives up all of it; capped at doubling the receiver",
			in: Input{Budget: 10_000 * dollar, Tolerance: 0.2, Trigger: dev("a", events.DeviationUnder, 0, 0.1),
				Lines: []LineView{{Key: "a", Budget: 3000 * dollar, Reported: true, Status: events.PacingUnder, Elapsed: 0.1},
					onPlan("b", 1000*dollar, 1, 0.1)}},
			moves: []move{{"a", "b", 1000 * dollar}},
		},
		{
			name: "not reporting: what is left after the spend to date",
			in: Input{Budget: 10_000 * dollar, Tolerance: 0.2, Trigger: dev("a", events.DeviationNotReporting, 400*dollar, 0.5),
				Lines: []LineView{{Key: "a", Budget: 1000 * dollar, Reported: true, Status: events.PacingNotReporting, Spend: 400 * dollar, Elapsed: 0.5},
					onPlan("b", 5000*dollar, 1, 0.5)}},
			moves: []move{{"a", "b", 600 * dollar}},
		},
		{
			name: "receivers: ahead first; under, overspending, paused, early, final and unreported lines take nothing",
			in: Input{Budget: 100_000 * dollar, Tolerance: 0.2, Trigger: dev("a", events.DeviationUnder, 0, 0.5),
				Lines: []LineView{{Key: "a", Budget: 1000 * dollar, Reported: true, Status: events.PacingUnder, Elapsed: 0.5},
					onPlan("slow", 1000*dollar, 0.7, 0.5), onPlan("fast", 1000*dollar, 1.1, 0.5), onPlan("hot", 1000*dollar, 1.5, 0.5),
					func() LineView {
						l := onPlan("paused", 1000*dollar, 1, 0.5)
						l.State = events.LineStatePaused
						return l
					}(),
					func() LineView { l := onPlan("early", 1000*dollar, 1, 0.5); l.Status = events.PacingEarly; return l }(),
					func() LineView { l := onPlan("final", 1000*dollar, 1, 0.5); l.Final = true; return l }(),
					{Key: "new", Budget: 1000 * dollar}}},
			moves: []move{{"a", "fast", 1000 * dollar}},
		},
		{
			name: "per-seller cap: a receiver takes only its seller's room, the rest goes to the others",
			in: Input{Budget: 10_000 * dollar, SellerCap: 3500 * dollar, Tolerance: 0.2, Trigger: dev("a", events.DeviationUnder, 250*dollar, 0.25),
				Lines: []LineView{{Key: "a", SellerURL: "x", Budget: 2000 * dollar, Reported: true, Status: events.PacingUnder, Spend: 250 * dollar, Elapsed: 0.25},
					atSeller(onPlan("b", 3000*dollar, 1, 0.25), "y"), atSeller(onPlan("c", 1000*dollar, 1, 0.25), "z")}},
			// b's seller has 500 of room under the cap; c takes the rest.
			moves: []move{{"a", "b", 500 * dollar}, {"a", "c", 500 * dollar}},
		},
		{
			name: "per-seller cap: a seller a cent under its cap is given nothing, not a cent",
			in: Input{Budget: 10_000 * dollar, SellerCap: 2000*dollar + cent, Tolerance: 0.2, Trigger: dev("a", events.DeviationUnder, 250*dollar, 0.25),
				Lines: []LineView{{Key: "a", SellerURL: "x", Budget: 2000 * dollar, Reported: true, Status: events.PacingUnder, Spend: 250 * dollar, Elapsed: 0.25},
					atSeller(onPlan("b", 2000*dollar, 1, 0.25), "y"), atSeller(onPlan("c", 1000*dollar, 1, 0.25), "z")}},
			moves: []move{{"a", "c", 1000 * dollar}},
		},
		{
			name: "per-seller cap: the receiver's seller is full (it sells the source line too): nothing moves",
			in: Input{Budget: 10_000 * dollar, SellerCap: 2500 * dollar, Tolerance: 0.2, Trigger: dev("a", events.DeviationUnder, 250*dollar, 0.25),
				Lines: []LineView{{Key: "a", SellerURL: "x", Budget: 2000 * dollar, Reported: true, Status: events.PacingUnder, Spend: 250 * dollar, Elapsed: 0.25},
					atSeller(onPlan("b", 1500*dollar, 1, 0.25), "x")}},
			reason: "cap",
		},
		{
			name: "no line on plan: nothing now, the episode stays open",
			in: Input{Budget: 10_000 * dollar, Tolerance: 0.2, Trigger: dev("a", events.DeviationUnder, 0, 0.2),
				Lines: []LineView{{Key: "a", Budget: 1000 * dollar, Reported: true, Elapsed: 0.2}, onPlan("b", 1000*dollar, 0.5, 0.2)}},
			reason: "no other line",
		},
		{
			name: "too little to move: settled",
			in: Input{Budget: 10_000 * dollar, Tolerance: 0.2, Trigger: dev("a", events.DeviationUnder, 995*dollar, 0.999),
				Lines: []LineView{{Key: "a", Budget: 1000 * dollar, Reported: true, Elapsed: 0.999}, onPlan("b", 1000*dollar, 1, 0.999)}},
			settled: true, reason: "too little",
		},
		{
			name: "the flight ended: settled",
			in: Input{Budget: 10_000 * dollar, Tolerance: 0.2, Trigger: func() events.PacingDeviation {
				d := dev("a", events.DeviationUnder, 100*dollar, 1)
				d.Final = true
				return d
			}(), Lines: []LineView{{Key: "a", Budget: 1000 * dollar}, onPlan("b", 1000*dollar, 1, 0.9)}},
			settled: true, reason: "ended",
		},
		{
			name: "a cancelled line: settled",
			in: Input{Budget: 10_000 * dollar, Tolerance: 0.2, Trigger: dev("a", events.DeviationUnder, 0, 0.5),
				Lines: []LineView{{Key: "a", Budget: 1000 * dollar, State: events.LineStateCancelled}, onPlan("b", 1000*dollar, 1, 0.5)}},
			settled: true, reason: "cancelled",
		},
		{
			name: "over: the line is paused",
			in: Input{Budget: 10_000 * dollar, Tolerance: 0.2, Trigger: dev("a", events.DeviationOver, 800*dollar, 0.5),
				Lines: []LineView{{Key: "a", Budget: 1000 * dollar, Reported: true, Status: events.PacingOver, Elapsed: 0.5}, onPlan("b", 1000*dollar, 1, 0.5)}},
			pauses: []string{"a"},
		},
		{
			name: "over the old plan but not its budget now (it was given more): not paused",
			in: Input{Budget: 10_000 * dollar, Tolerance: 0.2, Trigger: dev("a", events.DeviationOver, 800*dollar, 0.5),
				Lines: []LineView{{Key: "a", Budget: 1500 * dollar, Reported: true, Status: events.PacingOver, Elapsed: 0.5}}},
			reason: "not paused",
		},
		{
			name: "remaining quote: what the lines on plan cannot take (each at most doubled) books the best eligible quote",
			in: Input{Budget: 10_000 * dollar, MaxCPM: 30 * dollar, Tolerance: 0.2, Trigger: dev("a", events.DeviationUnder, 0, 0.1),
				Lines: []LineView{{Key: "a", SellerURL: "x", Budget: 3000 * dollar, Reported: true, Status: events.PacingUnder, Elapsed: 0.1},
					atSeller(onPlan("b", 1000*dollar, 1, 0.1), "y")},
				Quotes: []QuoteView{quote("fair", "z", 20*dollar, 30), quote("best", "z", 10*dollar, 40),
					quote("dear", "w", 31*dollar, 50), quote("worthless", "w", 60*dollar, 0)}},
			moves:  []move{{"a", "b", 1000 * dollar}, {"a", "q:best", 2000 * dollar}},
			reason: "remaining quote",
		},
		{
			name: "remaining quote: an AdCP quote of the best value is chosen like an IAB one; one whose minimum spend the amount misses is not",
			in: Input{Budget: 10_000 * dollar, MaxCPM: 30 * dollar, Tolerance: 0.2, Trigger: dev("a", events.DeviationUnder, 0, 0.1),
				Lines: []LineView{{Key: "a", SellerURL: "x", Budget: 3000 * dollar, Reported: true, Status: events.PacingUnder, Elapsed: 0.1},
					atSeller(onPlan("b", 1000*dollar, 1, 0.1), "y")},
				Quotes: []QuoteView{quote("best-iab", "z", 10*dollar, 40),
					func() QuoteView {
						q := quote("adcp-min", "v", 4*dollar, 50)
						q.Protocol, q.MinSpend = events.ProtocolADCP, 2500*dollar
						return q
					}(),
					func() QuoteView {
						q := quote("adcp", "w", 5*dollar, 45)
						q.Protocol, q.MinSpend = events.ProtocolADCP, 2000*dollar
						return q
					}()}},
			moves:  []move{{"a", "b", 1000 * dollar}, {"a", "q:adcp", 2000 * dollar}},
			reason: "remaining quote",
		},
		{
			name: "remaining quote: no line on plan, all of it to the best quote; ties go to the cheaper",
			in: Input{Budget: 10_000 * dollar, Tolerance: 0.2, Trigger: dev("a", events.DeviationUnder, 0, 0.2),
				Lines:  []LineView{{Key: "a", Budget: 1000 * dollar, Reported: true, Elapsed: 0.2}, onPlan("b", 1000*dollar, 0.5, 0.2)},
				Quotes: []QuoteView{quote("dearer", "z", 20*dollar, 30), quote("cheaper", "z", 10*dollar, 30)}},
			moves: []move{{"a", "q:cheaper", 1000 * dollar}},
		},
		{
			name: "remaining quote: its seller's room under the per-seller cap bounds it; below its minimum order the next is taken",
			in: Input{Budget: 10_000 * dollar, SellerCap: 2500 * dollar, Tolerance: 0.2, Trigger: dev("a", events.DeviationUnder, 0, 0.2),
				Lines: []LineView{{Key: "a", SellerURL: "x", Budget: 1000 * dollar, Reported: true, Elapsed: 0.2},
					atSeller(onPlan("b", 2200*dollar, 0.5, 0.2), "y")},
				Quotes: []QuoteView{func() QuoteView { q := quote("big", "z", 10*dollar, 50); q.MinImpressions = 200_000; return q }(),
					quote("capped", "y", 10*dollar, 40)}},
			// big needs $2,000 (200k at $10), a gives up $1,000; y has $300 of room.
			moves: []move{{"a", "q:capped", 300 * dollar}},
		},
		{
			name: "remaining quote: none eligible (above the max CPM, its seller at the cap, below an AdCP minimum spend): it stays, the episode open",
			in: Input{Budget: 10_000 * dollar, SellerCap: 1000 * dollar, MaxCPM: 15 * dollar, Tolerance: 0.2, Trigger: dev("a", events.DeviationUnder, 0, 0.2),
				Lines: []LineView{{Key: "a", SellerURL: "x", Budget: 1000 * dollar, Reported: true, Elapsed: 0.2}, atSeller(onPlan("b", 1000*dollar, 0.5, 0.2), "y")},
				Quotes: []QuoteView{quote("dear", "z", 20*dollar, 50), quote("full", "y", 10*dollar, 40),
					func() QuoteView {
						q := quote("adcp", "w", 5*dollar, 45)
						q.Protocol, q.MinSpend = events.ProtocolADCP, 1500*dollar
						return q
					}()}},
			reason: "no remaining quote can take it",
		},
		{
			name: "remaining quote: too little of the flight left to book one: it stays",
			in: Input{Budget: 10_000 * dollar, Tolerance: 0.2, Trigger: dev("a", events.DeviationUnder, 0, 0.8),
				Lines:  []LineView{{Key: "a", Budget: 1000 * dollar, Reported: true, Elapsed: 0.8}, onPlan("b", 1000*dollar, 0.5, 0.8)},
				Quotes: []QuoteView{quote("best", "z", 10*dollar, 40)}},
			reason: "too little of the flight",
		},
		{
			name:   "an unknown line: nothing yet",
			in:     Input{Budget: 10_000 * dollar, Tolerance: 0.2, Trigger: dev("x", events.DeviationUnder, 0, 0.5), Lines: []LineView{onPlan("b", 1000*dollar, 1, 0.5)}},
			reason: "not known",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p := Propose(c.in)
			var got []move
			var given events.Micros
			for _, m := range p.Moves {
				to := m.ToLineKey
				if m.ToQuote != nil {
					to = "q:" + m.ToQuote.PackageID
					if m.ToLineKey != "" || m.ToQuote.QuoteID != "q-"+m.ToQuote.PackageID {
						t.Errorf("move to a quote %+v", m)
					}
				}
				got = append(got, move{m.FromLineKey, to, m.AmountMicros})
				given += m.AmountMicros
				if m.Reason == "" || m.AmountMicros <= 0 || m.AmountMicros%cent != 0 {
					t.Errorf("move %+v", m)
				}
			}
			if len(got) != len(c.moves) {
				t.Fatalf("moves %+v, want %+v (%s)", got, c.moves, p.Reason)
			}
			for i := range got {
				if got[i] != c.moves[i] {
					t.Errorf("move %d: %+v, want %+v", i, got[i], c.moves[i])
				}
			}
			var paused []string
			for _, x := range p.Pauses {
				paused = append(paused, x.LineKey)
			}
			if strings.Join(paused, ",") != strings.Join(c.pauses, ",") {
				t.Errorf("pauses %v, want %v", paused, c.pauses)
			}
			if p.Settled != c.settled || !strings.Contains(p.Reason, c.reason) {
				t.Errorf("settled %v reason %q, want %v and %q", p.Settled, p.Reason, c.settled, c.reason)
			}
			// Never more committed after than before; the lines' budgets
			// after add up to what moved.
			if p.CommittedAfter > p.CommittedBefore {
				t.Errorf("committed %s -> %s", p.CommittedBefore, p.CommittedAfter)
			}
			var delta events.Micros
			for _, l := range p.Lines {
				delta += l.BudgetAfterMicros - l.BudgetBeforeMicros
				if l.BudgetAfterMicros < 0 {
					t.Errorf("line %+v", l)
				}
			}
			if delta != 0 {
				t.Errorf("budgets after change the total by %s (moved %s)", delta, given)
			}
		})
	}
}

// TestProposeNeverCommitsMore: over random campaigns the moves add up to
// what the source gives up, never more than it will not spend, and no
// receiver more than doubles.
func TestProposeNeverCommitsMore(t *testing.T) {
	t.Parallel()
	for seed := range 500 {
		r := seed*7919 + 13
		next := func(n int) int { r = (r*1103515245 + 12345) & 0x7fffffff; return r % n }
		n := 2 + next(6)
		lines := make([]LineView, n)
		for i := range lines {
			lines[i] = onPlan(string(rune('a'+i)), events.Micros(1+next(5000))*dollar+events.Micros(next(999_999)), 0.5+float64(next(100))/100, 0.3)
		}
		lines[0].Status = events.PacingUnder
		for i := range lines {
			lines[i].SellerURL = string(rune('x' + next(3)))
		}
		var sellerCap events.Micros
		if next(2) == 0 {
			sellerCap = events.Micros(1+next(8000)) * dollar
		}
		tr := dev("a", events.DeviationUnder, lines[0].Spend, 0.3)
		p := Propose(Input{Budget: 1 << 50, SellerCap: sellerCap, Tolerance: 0.2, Trigger: tr, Lines: lines})
		if sellerCap > 0 {
			before, after := map[string]events.Micros{}, map[string]events.Micros{}
			for _, l := range lines {
				before[l.SellerURL] += l.Budget
				after[l.SellerURL] += l.Budget
			}
			for _, l := range p.Lines {
				after[l.SellerURL] += l.BudgetAfterMicros - l.BudgetBeforeMicros
			}
			for url, a := range after {
				if a > before[url] && a > sellerCap {
					t.Fatalf("seed %d: seller %s grows from %s to %s, past the cap of %s", seed, url, before[url], a, sellerCap)
				}
			}
		}
		var sum events.Micros
		budgets := map[string]events.Micros{}
		for _, l := range lines {
			budgets[l.Key] = l.Budget
		}
		for _, m := range p.Moves {
			sum += m.AmountMicros
			if m.AmountMicros > budgets[m.ToLineKey] {
				t.Fatalf("seed %d: %+v more than doubles %s", seed, m, budgets[m.ToLineKey])
			}
		}
		if free := max(lines[0].Budget-lines[0].projected(), 0); sum > free {
			t.Fatalf("seed %d: moved %s, the line leaves only %s unspent", seed, sum, free)
		}
	}
}

// TestResume: a line a revision paused is resumed only while paused by it,
// with flight left, once its spend is at or below its plan's.
func TestResume(t *testing.T) {
	lines := []LineView{{Key: "b", Budget: 3000 * dollar, State: events.LineStatePaused}, {Key: "c", Budget: 1000 * dollar}}
	snap := events.DeliveryReported{LineKey: "b", SellerName: "Sb", PackageID: "pb", PlannedSpendMicros: 3000 * dollar, SpendMicros: 900 * dollar,
		ExpectedSpendMicros: 900 * dollar, FlightElapsed: 0.3}
	cases := []struct {
		name     string
		mut      func(d *events.DeliveryReported)
		state    events.LineState
		pausedBy int
		resume   bool
		settled  bool
	}{
		{name: "caught up", state: events.LineStatePaused, pausedBy: 1, resume: true},
		{name: "behind", mut: func(d *events.DeliveryReported) { d.ExpectedSpendMicros = 1200 * dollar }, state: events.LineStatePaused, pausedBy: 1, resume: true},
		{name: "still ahead", mut: func(d *events.DeliveryReported) { d.SpendMicros = 901 * dollar }, state: events.LineStatePaused, pausedBy: 1},
		{name: "not started", mut: func(d *events.DeliveryReported) { d.SpendMicros, d.ExpectedSpendMicros = 0, 0 }, state: events.LineStatePaused, pausedBy: 1},
		{name: "paused by the buyer", state: events.LineStatePaused},
		{name: "live", state: events.LineStateLive, pausedBy: 1},
		{name: "final", mut: func(d *events.DeliveryReported) { d.Final = true }, state: events.LineStatePaused, pausedBy: 1, settled: true},
		{name: "flight over", mut: func(d *events.DeliveryReported) { d.FlightElapsed = 1 }, state: events.LineStatePaused, pausedBy: 1, settled: true},
	}
	for _, tc := range cases {
		d := snap
		if tc.mut != nil {
			tc.mut(&d)
		}
		p := Resume(lines, d, tc.state, tc.pausedBy)
		if got := len(p.Resumes) == 1; got != tc.resume || p.Settled != tc.settled || p.CommittedAfter != p.CommittedBefore || p.CommittedBefore != 4000*dollar {
			t.Errorf("%s: %+v", tc.name, p)
			continue
		}
		if tc.resume && (p.Resumes[0].PausedByRevision != 1 || len(p.Lines) != 1 || p.Lines[0].BudgetAfterMicros != 3000*dollar || !p.Lines[0].Resume || p.Reason == "") {
			t.Errorf("%s: %+v", tc.name, p)
		}
	}
}

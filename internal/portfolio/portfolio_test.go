package portfolio

import (
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

func lineOf(p Plan, id string) (Line, bool) {
	for _, l := range p.Lines {
		if l.QuoteID == id {
			return l, true
		}
	}
	return Line{}, false
}

func exclusionOf(p Plan, id string) (string, bool) {
	for _, e := range p.Excluded {
		if e.QuoteID == id {
			return e.Reason, true
		}
	}
	return "", false
}

type wantLine struct {
	id     string
	imps   int64
	spend  float64
	reason string // substring
}

type wantExcl struct {
	id, reason string // reason: prefix
}

func TestOptimiseTable(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		quotes    []Quote
		brief     Brief
		lines     []wantLine
		excluded  []wantExcl
		spend     float64
		value     float64 // checked when > 0
		feasible  bool
		noteHas   string
		noteCount int // -1: don't check
	}{
		{
			name:     "budget exact fit",
			quotes:   []Quote{{ID: "a", Seller: "s", CPM: 10, AvailableImpressions: 1_000_000}},
			brief:    Brief{Budget: 10_000},
			lines:    []wantLine{{"a", 1_000_000, 10_000, "all available impressions"}},
			spend:    10_000,
			value:    400,
			feasible: true,
		},
		{
			name:     "a quote's volume is not the seller's availability",
			quotes:   []Quote{{ID: "a", Seller: "s", CPM: 10, AvailableImpressions: 1_000_000, QuotedVolume: true}},
			brief:    Brief{Budget: 20_000},
			lines:    []wantLine{{"a", 1_000_000, 10_000, "the whole quoted volume (the seller stated no availability)"}},
			spend:    10_000,
			feasible: true,
		},
		{
			// s2's second quote is set aside before the solve for s2's
			// better one; but s1 and s3 take the whole budget, so no cap of
			// s2's is what keeps it out.
			name: "a seller cap is named only for a seller in the plan",
			quotes: []Quote{{ID: "a", Seller: "s1", CPM: 5, AvailableImpressions: 200_000, Formats: []string{"video"}},
				{ID: "b", Seller: "s3", CPM: 5, AvailableImpressions: 200_000, Formats: []string{"video"}},
				{ID: "c", Seller: "s2", CPM: 20, AvailableImpressions: 100_000, Formats: []string{"video"}},
				{ID: "d", Seller: "s2", CPM: 30, AvailableImpressions: 100_000, Formats: []string{"video"}}},
			brief:     Brief{Budget: 2_000, PerSellerCap: 1_000},
			lines:     []wantLine{{"a", 200_000, 1_000, ""}, {"b", 200_000, 1_000, ""}},
			excluded:  []wantExcl{{"c", "budget exhausted by higher-value quotes"}, {"d", "budget exhausted by higher-value quotes: s2 has better quotes"}},
			spend:     2_000,
			feasible:  true,
			noteCount: -1,
		},
		{
			name:     "one cent short of the inventory",
			quotes:   []Quote{{ID: "a", Seller: "s", CPM: 10, AvailableImpressions: 1_000_000}},
			brief:    Brief{Budget: 9_999.99},
			lines:    []wantLine{{"a", 999_999, 9_999.99, "limited by the budget"}},
			spend:    9_999.99,
			value:    399.9996,
			feasible: true,
		},
		{
			name:     "spend is the seller's booked amount in micros and stays under budget",
			quotes:   []Quote{{ID: "a", Seller: "s", CPM: 3.33}},
			brief:    Brief{Budget: 100},
			lines:    []wantLine{{"a", 30_030, 99.9999, "limited by the budget"}},
			spend:    99.9999,
			feasible: true,
		},
		{
			name: "per-seller cap",
			quotes: []Quote{
				{ID: "a", Seller: "A", CPM: 5, AvailableImpressions: 10_000_000},
				{ID: "b", Seller: "A", CPM: 6, AvailableImpressions: 10_000_000},
				{ID: "c", Seller: "B", CPM: 20},
				{ID: "d", Seller: "A", CPM: 8, AvailableImpressions: 1_000_000, Formats: []string{"display"}},
			},
			brief: Brief{Budget: 50_000, PerSellerCap: 15_000},
			lines: []wantLine{
				{"d", 1_000_000, 8_000, "all available impressions"},
				{"a", 1_400_000, 7_000, "capped by seller cap $15,000.00"},
				{"c", 750_000, 15_000, "capped by seller cap $15,000.00"},
			},
			excluded: []wantExcl{{"b", "seller cap reached"}},
			spend:    30_000,
			feasible: true,
		},
		{
			name:     "the smaller of the absolute and the share cap applies",
			quotes:   []Quote{{ID: "a", Seller: "A", CPM: 10}, {ID: "b", Seller: "B", CPM: 40}},
			brief:    Brief{Budget: 50_000, PerSellerCap: 20_000, PerSellerCapShare: 0.2},
			lines:    []wantLine{{"a", 1_000_000, 10_000, "capped by seller cap $10,000.00"}, {"b", 250_000, 10_000, "capped by seller cap $10,000.00"}},
			spend:    20_000,
			feasible: true,
		},
		{
			name: "seller minimum above the budget excludes the quote",
			quotes: []Quote{
				{ID: "big", Seller: "A", CPM: 10, MinImpressions: 2_000_000},
				{ID: "ok", Seller: "B", CPM: 20},
			},
			brief:    Brief{Budget: 10_000},
			lines:    []wantLine{{"ok", 500_000, 10_000, "limited by the budget"}},
			excluded: []wantExcl{{"big", "below seller minimum spend: the minimum order of 2,000,000 impressions costs $20,000.00, more than the budget $10,000.00"}},
			spend:    10_000,
			feasible: true,
		},
		{
			name: "seller minimum: book the minimum and trim the better quote",
			quotes: []Quote{
				{ID: "A", Seller: "sa", CPM: 10, AvailableImpressions: 10_000_000, MinImpressions: 600_000},
				{ID: "B", Seller: "sb", CPM: 5, AvailableImpressions: 1_000_000},
				{ID: "C", Seller: "sc", CPM: 20},
			},
			brief: Brief{Budget: 10_000},
			lines: []wantLine{
				{"B", 800_000, 4_000, "limited by the budget"},
				{"A", 600_000, 6_000, "at the seller minimum of 600,000 impressions"},
			},
			excluded: []wantExcl{{"C", "budget exhausted by higher-value quotes"}},
			spend:    10_000,
			value:    420,
			feasible: true,
		},
		{
			name: "seller minimum that does not pay is left out",
			quotes: []Quote{
				{ID: "A", Seller: "sa", CPM: 30, MinImpressions: 300_000},
				{ID: "B", Seller: "sb", CPM: 5, AvailableImpressions: 1_800_000},
			},
			brief:    Brief{Budget: 10_000},
			lines:    []wantLine{{"B", 1_800_000, 9_000, "all available impressions"}},
			excluded: []wantExcl{{"A", "below seller minimum spend: the minimum order of 300,000 impressions costs $9,000.00, only $1,000.00 is left under the budget"}},
			spend:    9_000,
			feasible: true,
		},
		{
			name: "format mix",
			quotes: []Quote{
				{ID: "d", Seller: "S1", CPM: 5, Formats: []string{"display"}},
				{ID: "v", Seller: "S2", CPM: 30, Formats: []string{"Video"}},
			},
			brief:    Brief{Budget: 10_000, FormatMix: map[string]float64{"video": 0.5}},
			lines:    []wantLine{{"d", 999_998, 4_999.99, ""}, {"v", 166_667, 5_000.01, "counts toward video >= 50%"}},
			spend:    10_000,
			feasible: true,
		},
		{
			name: "min sellers",
			quotes: []Quote{
				{ID: "a", Seller: "S1", CPM: 5},
				{ID: "b", Seller: "S2", CPM: 10},
				{ID: "c", Seller: "S3", CPM: 20},
			},
			brief: Brief{Budget: 10_000, MinSellers: 3, MinSellerSpend: 1_000},
			lines: []wantLine{
				{"a", 1_600_000, 8_000, ""},
				{"b", 100_000, 1_000, "keeps S2 at the $1,000.00 that counts toward min sellers 3"},
				{"c", 50_000, 1_000, "keeps S3 at the $1,000.00"},
			},
			spend:     10_000,
			value:     430,
			feasible:  true,
			noteCount: 0,
		},
		{
			name:     "min sellers above the number of sellers is dropped with a note",
			quotes:   []Quote{{ID: "a", Seller: "S1", CPM: 5}, {ID: "b", Seller: "S2", CPM: 10}},
			brief:    Brief{Budget: 10_000, MinSellers: 3},
			lines:    []wantLine{{"a", 2_000_000, 10_000, ""}},
			excluded: []wantExcl{{"b", "budget exhausted by higher-value quotes"}},
			spend:    10_000,
			feasible: true,
			noteHas:  "min sellers 3 cannot be met: only 2 sellers have eligible quotes; planned without it",
		},
		{
			name:     "min sellers the budget cannot fund is dropped with a note",
			quotes:   []Quote{{ID: "a", Seller: "S1", CPM: 5}, {ID: "b", Seller: "S2", CPM: 10}},
			brief:    Brief{Budget: 10_000, MinSellers: 2, MinSellerSpend: 6_000},
			lines:    []wantLine{{"a", 2_000_000, 10_000, ""}},
			spend:    10_000,
			feasible: true,
			noteHas:  "min sellers 2 cannot be met within the budget",
		},
		{
			name:      "no quotes",
			brief:     Brief{Budget: 10_000},
			noteHas:   "no quotes to choose from",
			noteCount: -1,
		},
		{
			name:     "zero budget",
			quotes:   []Quote{{ID: "a", Seller: "S1", CPM: 5}},
			brief:    Brief{},
			excluded: []wantExcl{{"a", "budget is $0.00: nothing can be booked"}},
		},
		{
			name:     "everything above max CPM",
			quotes:   []Quote{{ID: "a", Seller: "S1", CPM: 62}, {ID: "b", Seller: "S2", CPM: 45}},
			brief:    Brief{Budget: 10_000, MaxCPM: 40},
			excluded: []wantExcl{{"a", "CPM 62.00 above max CPM 40.00"}, {"b", "CPM 45.00 above max CPM 40.00"}},
			noteHas:  "no quote is eligible",
		},
		{
			name:     "unpriced and worthless quotes are never booked",
			quotes:   []Quote{{ID: "free", Seller: "S1"}, {ID: "dear", Seller: "S2", CPM: 55}},
			brief:    Brief{Budget: 10_000},
			excluded: []wantExcl{{"dear", "score 0.00: no value under the weights"}, {"free", "unpriced quote"}},
		},
		{
			name:     "format mix nobody serves books nothing",
			quotes:   []Quote{{ID: "a", Seller: "S1", CPM: 5, Formats: []string{"display"}}},
			brief:    Brief{Budget: 10_000, FormatMix: map[string]float64{"video": 0.3}},
			excluded: []wantExcl{{"a", "nothing can be booked: format mix video >= 30% cannot be met"}},
			noteHas:  "no eligible quote serves video",
		},
		{
			name: "ties go to the lower quote ID",
			quotes: []Quote{
				{ID: "b", Seller: "S", CPM: 10},
				{ID: "a", Seller: "S", CPM: 10},
				{ID: "y", Seller: "T", CPM: 10},
				{ID: "x", Seller: "U", CPM: 10},
			},
			brief:    Brief{Budget: 1_000},
			lines:    []wantLine{{"a", 100_000, 1_000, ""}},
			excluded: []wantExcl{{"b", "budget exhausted by higher-value quotes"}, {"x", "budget exhausted"}, {"y", "budget exhausted"}},
			spend:    1_000,
			feasible: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			plan, err := Optimise(tc.quotes, tc.brief)
			if err != nil {
				t.Fatalf("Optimise: %v", err)
			}
			if len(plan.Lines) != len(tc.lines) {
				t.Fatalf("lines = %+v, want %d lines", plan.Lines, len(tc.lines))
			}
			for _, w := range tc.lines {
				l, ok := lineOf(plan, w.id)
				if !ok {
					t.Fatalf("no line for %s: %+v", w.id, plan)
				}
				if l.Impressions != w.imps || math.Abs(l.Spend-w.spend) > 1e-9 {
					t.Errorf("%s: %d impressions $%.2f, want %d $%.2f", w.id, l.Impressions, l.Spend, w.imps, w.spend)
				}
				if !strings.Contains(l.Reason, w.reason) || !strings.HasPrefix(l.Reason, "score ") {
					t.Errorf("%s reason %q, want it to contain %q", w.id, l.Reason, w.reason)
				}
			}
			for _, w := range tc.excluded {
				r, ok := exclusionOf(plan, w.id)
				if !ok {
					t.Fatalf("%s not excluded: %+v", w.id, plan)
				}
				if !strings.HasPrefix(r, w.reason) {
					t.Errorf("%s excluded for %q, want prefix %q", w.id, r, w.reason)
				}
			}
			if len(plan.Lines)+len(plan.Excluded) != len(tc.quotes) {
				t.Errorf("%d lines + %d exclusions for %d quotes", len(plan.Lines), len(plan.Excluded), len(tc.quotes))
			}
			if math.Abs(plan.TotalSpend-tc.spend) > 1e-9 {
				t.Errorf("TotalSpend %.2f, want %.2f", plan.TotalSpend, tc.spend)
			}
			if plan.TotalSpend > tc.brief.Budget {
				t.Errorf("TotalSpend %.2f over budget %.2f", plan.TotalSpend, tc.brief.Budget)
			}
			if tc.value > 0 && math.Abs(plan.TotalValue-tc.value) > 1e-6 {
				t.Errorf("TotalValue %.6f, want %.6f", plan.TotalValue, tc.value)
			}
			if math.Abs(plan.Value()-plan.TotalValue) > 1e-9 {
				t.Errorf("Value() %.6f != TotalValue %.6f", plan.Value(), plan.TotalValue)
			}
			if plan.Feasible != tc.feasible {
				t.Errorf("Feasible %v, want %v (notes %v)", plan.Feasible, tc.feasible, plan.Notes)
			}
			if tc.noteHas != "" && !strings.Contains(strings.Join(plan.Notes, "\n"), tc.noteHas) {
				t.Errorf("notes %q, want one containing %q", plan.Notes, tc.noteHas)
			}
			if tc.noteCount == 0 && tc.noteHas == "" && tc.feasible && len(plan.Notes) != 0 {
				t.Errorf("unexpected notes %q", plan.Notes)
			}
			if plan.Budget != tc.brief.Budget {
				t.Errorf("Budget %v, want %v", plan.Budget, tc.brief.Budget)
			}
		})
	}
}

func TestOptimiseRejectsInvalidInput(t *testing.T) {
	t.Parallel()
	ok := Quote{ID: "a", Seller: "S", CPM: 10}
	cases := map[string]struct {
		quotes []Quote
		brief  Brief
	}{
		"NaN budget":          {[]Quote{ok}, Brief{Budget: math.NaN()}},
		"negative budget":     {[]Quote{ok}, Brief{Budget: -1}},
		"infinite cap":        {[]Quote{ok}, Brief{Budget: 10, PerSellerCap: math.Inf(1)}},
		"NaN CPM":             {[]Quote{{ID: "a", Seller: "S", CPM: math.NaN()}}, Brief{Budget: 10}},
		"NaN weight":          {[]Quote{ok}, Brief{Budget: 10, Weights: Weights{Price: math.NaN()}}},
		"duplicate IDs":       {[]Quote{ok, ok}, Brief{Budget: 10}},
		"empty ID":            {[]Quote{{Seller: "S", CPM: 10}}, Brief{Budget: 10}},
		"empty seller":        {[]Quote{{ID: "a", CPM: 10}}, Brief{Budget: 10}},
		"share above one":     {[]Quote{ok}, Brief{Budget: 10, FormatMix: map[string]float64{"video": 1.5}}},
		"duplicate mix key":   {[]Quote{ok}, Brief{Budget: 10, FormatMix: map[string]float64{"video": 0.1, "VIDEO": 0.2}}},
		"cap share above one": {[]Quote{ok}, Brief{Budget: 10, PerSellerCapShare: 2}},
		"negative impressions": {[]Quote{{ID: "a", Seller: "S", CPM: 10, AvailableImpressions: -5}},
			Brief{Budget: 10}},
		"negative min sellers": {[]Quote{ok}, Brief{Budget: 10, MinSellers: -1}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := Optimise(tc.quotes, tc.brief)
			if !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("err = %v, want ErrInvalidInput", err)
			}
			g := Greedy(tc.quotes, tc.brief, 0)
			if len(g.Lines) != 0 || len(g.Notes) != 1 || !strings.Contains(g.Notes[0], "invalid input") {
				t.Fatalf("Greedy on invalid input = %+v", g)
			}
		})
	}
}

func TestScoreReproducesTheGuide(t *testing.T) {
	t.Parallel()
	w := DefaultWeights()
	cases := []struct {
		q    Quote
		want float64
	}{
		{Quote{CPM: 20, Formats: []string{"CTV"}, Negotiable: true}, 30 + 10 + 5},
		{Quote{CPM: 60, Formats: []string{"display", "video"}, VolumeDiscounts: true}, 0 + 10 + 5 + 5},
		{Quote{CPM: 12.5, Formats: []string{"video", "ctv"}}, 37.5 + 10},
		{Quote{CPM: 49, Formats: []string{" Display "}, Negotiable: true, VolumeDiscounts: true}, 1 + 5 + 5 + 5},
		{Quote{CPM: 50}, 0},
	}
	for _, tc := range cases {
		if got := Score(tc.q, w); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("Score(%+v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	custom := Weights{Price: 2, Video: 1, PriceCeiling: 30}
	if got := Score(Quote{CPM: 10, Formats: []string{"video"}, Negotiable: true}, custom); got != 41 {
		t.Errorf("custom weights score %v, want 41", got)
	}
	// The zero Weights in a brief means the guide's defaults.
	a, _ := Optimise([]Quote{{ID: "a", Seller: "S", CPM: 10}}, Brief{Budget: 1000})
	b, _ := Optimise([]Quote{{ID: "a", Seller: "S", CPM: 10}}, Brief{Budget: 1000, Weights: DefaultWeights()})
	if a.TotalValue != 40 || !reflect.DeepEqual(a, b) {
		t.Errorf("zero weights plan %+v, default weights plan %+v", a, b)
	}
}

// TestOptimiseIsDeterministic: the input order never changes the plan.
func TestOptimiseIsDeterministic(t *testing.T) {
	t.Parallel()
	quotes, brief := realisticInstance(rand.New(rand.NewPCG(5, 5)), 300)
	want, err := Optimise(quotes, brief)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for k := 0; k < 3; k++ {
		shuffled := append([]Quote(nil), quotes...)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		got, err := Optimise(shuffled, brief)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("shuffled input changed the plan")
		}
	}
	if !want.Feasible || len(want.Lines) < 10 {
		t.Fatalf("realistic plan: feasible %v with %d lines, notes %v", want.Feasible, len(want.Lines), want.Notes)
	}
}

func TestGreedyFollowsTheGuide(t *testing.T) {
	t.Parallel()
	// The guide: sort by score, a fixed 10,000 per seller of a 50,000 budget.
	var quotes []Quote
	for i, cpm := range []float64{12, 8, 20, 15, 9, 30} {
		quotes = append(quotes, Quote{ID: string(rune('a' + i)), Seller: "S" + string(rune('a'+i)), CPM: cpm})
	}
	plan := Greedy(quotes, Brief{Budget: 50_000}, 10_000)
	// Whole impressions: 10,000 / (9/1000) is 1,111,111.1 impressions, so
	// some sellers get $9,999.999 (exact micros, as the seller books them).
	if len(plan.Lines) != 5 || plan.TotalSpendMicros != 49_999_985_000 || plan.TotalSpend != 49_999.985 {
		t.Fatalf("greedy plan %+v", plan)
	}
	for _, l := range plan.Lines {
		if l.Spend < 9_999.99 || l.Spend > 10_000 {
			t.Errorf("%s spend %.2f, want the fixed 10,000", l.QuoteID, l.Spend)
		}
	}
	if r, _ := exclusionOf(plan, "f"); r != "budget exhausted by higher-score quotes" {
		t.Errorf("f excluded for %q", r)
	}
	if got := plan.Lines[0].QuoteID; got != "b" {
		t.Errorf("first line %s, want the best score b", got)
	}
	// Seller minimums that do not fit are skipped, the optimiser books them.
	q := []Quote{
		{ID: "A", Seller: "sa", CPM: 10, AvailableImpressions: 10_000_000, MinImpressions: 600_000},
		{ID: "B", Seller: "sb", CPM: 5, AvailableImpressions: 1_000_000},
		{ID: "C", Seller: "sc", CPM: 20},
	}
	g := Greedy(q, Brief{Budget: 10_000}, 0)
	o, _ := Optimise(q, Brief{Budget: 10_000})
	if r, _ := exclusionOf(g, "A"); !strings.HasPrefix(r, "below seller minimum spend") {
		t.Errorf("greedy excluded A for %q", r)
	}
	if g.TotalValue != 375 || o.TotalValue != 420 {
		t.Errorf("greedy value %v (want 375), optimiser %v (want 420)", g.TotalValue, o.TotalValue)
	}
}

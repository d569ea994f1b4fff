package campaign

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/dealflow/dealflow/pkg/events"
)

func ids(p ListPage) string {
	s := ""
	for _, x := range p.Summaries {
		s += x.ID + " "
	}
	return s
}

// The index pages newest first (ties by id), per status, with totals and
// counts; a newer revision moves a campaign between statuses, an older one
// changes nothing, a deletion removes it.
func TestIndexPages(t *testing.T) {
	t.Parallel()
	x := newIndex()
	sum := func(id string, st Status, at int, unresolved int) Summary {
		return Summary{ID: id, Status: st, CreatedAt: t0.Add(time.Duration(at) * time.Second), Unresolved: unresolved}
	}
	x.put(sum("a", events.StatusShopping, 1, 0), 1)
	x.put(sum("b", events.StatusShopping, 2, 0), 2)
	x.put(sum("c", events.StatusCompleted, 3, 1), 3)
	x.put(sum("d", events.StatusShopping, 3, 0), 4) // same time as c: ids ascending
	x.put(sum("e", events.StatusShopping, 0, 0), 5) // created before all (a record written late)
	cases := []struct {
		q     ListQuery
		want  string
		total int
	}{
		{ListQuery{Limit: 10}, "c d b a e ", 5},
		{ListQuery{Limit: 2}, "c d ", 5},
		{ListQuery{Offset: 2, Limit: 2}, "b a ", 5},
		{ListQuery{Offset: 4, Limit: 2}, "e ", 5},
		{ListQuery{Offset: 5, Limit: 2}, "", 5},
		{ListQuery{Offset: 1 << 30, Limit: 2}, "", 5},
		{ListQuery{Status: events.StatusShopping, Limit: 10}, "d b a e ", 4},
		{ListQuery{Status: events.StatusShopping, Offset: 1, Limit: 2}, "b a ", 4},
		{ListQuery{Status: events.StatusCompleted, Limit: 10}, "c ", 1},
		{ListQuery{Status: events.StatusFailed, Limit: 10}, "", 0},
	}
	for _, tc := range cases {
		p := x.page(tc.q)
		if ids(p) != tc.want || p.Total != tc.total {
			t.Fatalf("%+v: %q total %d, want %q total %d", tc.q, ids(p), p.Total, tc.want, tc.total)
		}
	}
	if c := x.counts(); c.ByStatus[events.StatusShopping] != 4 || c.ByStatus[events.StatusCompleted] != 1 || c.UnresolvedLines != 1 {
		t.Fatalf("counts %+v", c)
	}

	x.put(sum("b", events.StatusCompleted, 2, 2), 6) // b completes
	x.put(sum("b", events.StatusFailed, 2, 0), 5)    // an older revision: ignored
	if p := x.page(ListQuery{Status: events.StatusCompleted, Limit: 10}); ids(p) != "c b " {
		t.Fatalf("completed: %q", ids(p))
	}
	if p := x.page(ListQuery{Status: events.StatusShopping, Limit: 10}); ids(p) != "d a e " {
		t.Fatalf("shopping: %q", ids(p))
	}
	if c := x.counts(); c.ByStatus[events.StatusFailed] != 0 || c.UnresolvedLines != 3 || c.ByStatus[events.StatusCompleted] != 2 {
		t.Fatalf("counts %+v", c)
	}
	x.del("d", 3) // older than the record: ignored
	x.del("d", 7)
	if p := x.page(ListQuery{Limit: 10}); ids(p) != "c b a e " || p.Counts[events.StatusShopping] != 2 {
		t.Fatalf("after delete: %q %v", ids(p), p.Counts)
	}
}

// A summary decoded from the stored record is the one taken from the
// record itself.
func TestSummaryOfStoredRecord(t *testing.T) {
	t.Parallel()
	c := in(t, events.StatusPartial, true)
	c.RecordFailure(events.BookingFailed{CampaignID: "c1", SellerURL: "https://x", PackageID: "px", Code: "outcome_unknown", Unresolved: true}, t0)
	b, err := json.Marshal(c)
	must(t, err)
	var r summaryRecord
	must(t, json.Unmarshal(b, &r))
	if got, want := r.summary(), SummaryOf(c); fmt.Sprint(got) != fmt.Sprint(want) || want.Deals != 1 || want.Unresolved != 1 || want.TotalSpendMicros == 0 {
		t.Fatalf("decoded %+v, record's %+v", got, want)
	}
}

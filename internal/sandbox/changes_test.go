package sandbox

import (
	"testing"
	"time"
)

func TestBulkCancelStopsDelivery(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}
	m, err := Start(t.Context(), performanceMarket(), WithClock(clk.now), WithTimeScale(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	s := m.Seller(fixtureSeller)
	const goal = 1_000_000
	cancelled := bookFor(t, s, ProductStandardDisplay, goal)
	kept := bookFor(t, s, ProductStandardDisplay, goal)
	served := func(id string) int64 {
		t.Helper()
		return integer(t, get(t, call(t, "GET", s.URL+"/api/v1/deals/"+id+"/performance", nil).body, "impressions_served"))
	}
	clk.advance(5 * time.Second) // a quarter of the flight
	r := call(t, "POST", s.URL+"/api/v1/deals/bulk", map[string]any{"operations": []any{
		map[string]any{"action": "cancel", "deal_id": cancelled},
		map[string]any{"action": "update", "deal_id": kept, "notes": "hello"},
		map[string]any{"action": "cancel", "deal_id": "DEMO-NOPE"},
		map[string]any{"action": "create", "quote_id": "qt-x"},
	}})
	wantStatus(t, r, 200)
	wantEq(t, "total", get(t, r.body, "total"), 4)
	wantEq(t, "succeeded", get(t, r.body, "succeeded"), 2)
	wantEq(t, "failed", get(t, r.body, "failed"), 2)
	wantEq(t, "cancel ok", get(t, r.body, "results", 0, "success"), true)
	wantEq(t, "update ok", get(t, r.body, "results", 1, "success"), true)
	wantEq(t, "unknown deal", get(t, r.body, "results", 2, "error"), "Deal 'DEMO-NOPE' not found")
	wantEq(t, "create", get(t, r.body, "results", 3, "success"), false)
	atCancel := served(cancelled)
	if atCancel == 0 {
		t.Fatal("the cancelled deal had delivered nothing a quarter into its flight")
	}
	clk.advance(time.Minute) // past the flight's end
	if got := served(cancelled); got != atCancel {
		t.Fatalf("a cancelled deal delivered on: %d, then %d", atCancel, got)
	}
	if got := served(kept); got != goal {
		t.Fatalf("the other deal delivered %d of %d", got, goal)
	}
	// Cancelling again succeeds (a retry is harmless) and changes nothing.
	r = call(t, "POST", s.URL+"/api/v1/deals/bulk", map[string]any{"operations": []any{map[string]any{"action": "cancel", "deal_id": cancelled}}})
	wantEq(t, "again", get(t, r.body, "results", 0, "success"), true)
	wantEq(t, "deal status", get(t, call(t, "GET", s.URL+"/api/v1/deals/"+cancelled, nil).body, "deal", "status"), "cancelled")
	wantStatus(t, call(t, "POST", s.URL+"/api/v1/deals/bulk", map[string]any{}), 422)
}

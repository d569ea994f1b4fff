package sellerclient

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// placeholderPerformance is the reference seller's answer without an ad
// server (seller-agent v2.4.2 deal_service.get_deal_performance).
const placeholderPerformance = `{"deal_id":"DEMO-7CE8BB4B565B","impressions_available":1000000,"impressions_served":0,"fill_rate":0.0,` +
	`"win_rate":0.0,"avg_cpm_actual":0.0,"delivery_pacing":"not_started","last_updated":"2026-12-07T12:00:00.123456Z"}`

func TestGetDealPerformance(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var ops []string
	calls := 0
	srv := newFake(t, func(_ int, r recorded) reply {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		switch r.Path {
		case "/api/v1/deals/DEMO-7CE8BB4B565B/performance":
			return reply{body: placeholderPerformance}
		case "/api/v1/deals/DEMO-LIVE/performance":
			return reply{body: `{"deal_id":"DEMO-LIVE","impressions_available":1000000,"impressions_served":250123,"fill_rate":25.0,` +
				`"win_rate":0.0,"avg_cpm_actual":18.35,"delivery_pacing":"on_track","last_updated":"2028-06-03T12:00:00Z"}`}
		case "/api/v1/deals/DEMO-FLAKY/performance":
			if n%2 == 1 {
				return reply{status: 503, body: `{"detail":"reporting unavailable"}`}
			}
			return reply{body: strings.ReplaceAll(placeholderPerformance, "DEMO-7CE8BB4B565B", "DEMO-FLAKY")}
		case "/api/v1/deals/DEMO-BAD/performance":
			return reply{body: `{"deal_id":"DEMO-BAD","impressions_served":12.5}`}
		case "/api/v1/deals/DEMO-DUP/performance":
			return reply{body: `{"deal_id":"DEMO-DUP","deal_id":"DEMO-DUP"}`}
		}
		return reply{status: 404, body: `{"detail":{"error":"deal_not_found","message":"Deal 'x' not found."}}`}
	})
	c := New(Config{AllowPrivate: true, RetryBase: time.Millisecond, Observe: func(op, code string, _ time.Duration) {
		mu.Lock()
		ops = append(ops, op+" "+code)
		mu.Unlock()
	}})
	ctx := context.Background()

	p, err := c.GetDealPerformance(ctx, srv.URL, "DEMO-7CE8BB4B565B")
	if err != nil {
		t.Fatal(err)
	}
	if p.ImpressionsServed != 0 || p.ImpressionsAvailable != 1_000_000 || p.DeliveryPacing != "not_started" ||
		!p.LastUpdated.Equal(time.Date(2026, 12, 7, 12, 0, 0, 123456000, time.UTC)) {
		t.Fatalf("placeholder: %+v", p)
	}
	if r := srv.last(t); r.Method != "GET" || r.Header.Get("X-Api-Key") != "" || r.Header.Get("Authorization") != "" {
		t.Fatalf("performance is read without credentials: %+v", r)
	}
	p, err = c.GetDealPerformance(ctx, srv.URL, "DEMO-LIVE")
	if err != nil || p.ImpressionsServed != 250_123 || p.AvgCPMMicros() != 18_350_000 || p.FillRate != 25 {
		t.Fatalf("live: %+v %v", p, err)
	}
	// A 503 is retried like any read.
	if p, err := c.GetDealPerformance(ctx, srv.URL, "DEMO-FLAKY"); err != nil || p.DealID != "DEMO-FLAKY" {
		t.Fatalf("flaky: %+v %v", p, err)
	}
	if _, err := c.GetDealPerformance(ctx, srv.URL, "DEMO-NOPE"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown deal: %v", err)
	}
	for _, id := range []string{"DEMO-BAD", "DEMO-DUP"} {
		if _, err := c.GetDealPerformance(ctx, srv.URL, id); !errors.Is(err, ErrBadResponse) {
			t.Fatalf("%s: %v, want a bad response (strict decoding)", id, err)
		}
	}
	if _, err := c.GetDealPerformance(ctx, srv.URL, "a/b"); err == nil {
		t.Fatal("an id with a slash was sent")
	}
	mu.Lock()
	defer mu.Unlock()
	for _, want := range []string{"performance 200", "performance 503", "performance 404", "performance bad_response"} {
		found := false
		for _, o := range ops {
			found = found || o == want
		}
		if !found {
			t.Errorf("observer never saw %q: %v", want, ops)
		}
	}
}

// FuzzParsePerformance: any body either parses into a reading the pacer can
// use (a deal id, no negative count or price) or is an error; never both,
// never a panic.
func FuzzParsePerformance(f *testing.F) {
	for _, s := range []string{placeholderPerformance, `{"deal_id":"d","impressions_served":5,"avg_cpm_actual":12.5,"last_updated":"2028-06-01"}`,
		`{"deal_id":"d","impressions_served":-1}`, `{"deal_id":"d","impressions_served":1.5}`, `{"deal_id":"d","last_updated":"soon"}`,
		`{"deal_id":""}`, `{}`, `[]`, ``, `{"deal_id":"d","deal_id":"e"}`} {
		f.Add([]byte(s))
	}
	f.Add(oversized)
	f.Fuzz(func(t *testing.T, data []byte) {
		b, ok := capped(t, data)
		if !ok {
			return
		}
		p, err := parsePerformance(b)
		if (p == nil) == (err == nil) {
			t.Fatalf("performance %v err %v", p, err)
		}
		if p != nil {
			if p.DealID == "" || p.ImpressionsServed < 0 || p.ImpressionsAvailable < 0 || p.AvgCPMActual < 0 || p.AvgCPMMicros() < 0 {
				t.Fatalf("accepted %+v", p)
			}
			mustEncode(t, p)
		}
	})
}

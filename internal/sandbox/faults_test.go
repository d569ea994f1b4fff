package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// rawGet performs a GET and returns the response (body unread) or the error.
func rawGet(t *testing.T, url string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	return c.Do(req)
}

func rawGetCtx(ctx context.Context, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return nil, err
	}
	res, err := http.DefaultClient.Do(req)
	if err == nil {
		res.Body.Close()
	}
	return res, err
}

func wantRefused(t *testing.T, url string) {
	t.Helper()
	res, err := rawGet(t, url)
	if err == nil {
		res.Body.Close()
		t.Fatalf("GET %s succeeded (%d), want connection refused", url, res.StatusCode)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("GET %s: %v, want ECONNREFUSED", url, err)
	}
}

func TestFaultDownRefusesConnections(t *testing.T) {
	m, err := Start(t.Context(), DefaultMarket())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	off := m.Seller("Offline Networks")
	if !strings.HasPrefix(off.URL, "http://127.0.0.1:") {
		t.Fatalf("down seller URL %q", off.URL)
	}
	wantRefused(t, off.URL+"/health")

	// Runtime toggle on a healthy seller: down refuses, up serves again on the same URL.
	s := m.Seller("Northwind Video")
	wantStatus(t, call(t, "GET", s.URL+"/health", nil), 200)
	if err := s.SetFaults(Faults{Down: true}); err != nil {
		t.Fatal(err)
	}
	wantRefused(t, s.URL+"/health")
	if err := s.SetFaults(Faults{}); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, call(t, "GET", s.URL+"/health", nil), 200)
	// And the down-at-start seller can be brought up.
	if err := off.SetFaults(Faults{}); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, call(t, "GET", off.URL+"/media-kit", nil), 200)
}

func TestFaultRegistryDown(t *testing.T) {
	cfg := fixtureConfig()
	cfg.Registry.Faults = Faults{Down: true}
	m, err := Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	wantRefused(t, m.RegistryURL+"/agents")
	if err := m.Registry.SetFaults(Faults{}); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, call(t, "GET", m.RegistryURL+"/agents", nil), 200)
}

func TestFaultBodies(t *testing.T) {
	m := startFixture(t)
	s := m.Seller(fixtureSeller)
	url := s.URL + "/media-kit"

	t.Run("garbage", func(t *testing.T) {
		if err := s.SetFaults(Faults{Garbage: true}); err != nil {
			t.Fatal(err)
		}
		res, err := rawGet(t, url)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil || res.StatusCode != 200 || json.Valid(b) {
			t.Errorf("garbage: status %d valid JSON %v err %v", res.StatusCode, json.Valid(b), err)
		}
	})
	t.Run("truncated", func(t *testing.T) {
		if err := s.SetFaults(Faults{Truncated: true}); err != nil {
			t.Fatal(err)
		}
		res, err := rawGet(t, url)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("truncated read err = %v, want unexpected EOF", err)
		}
		if res.StatusCode != 200 || len(b) == 0 || int64(len(b)) >= res.ContentLength || !strings.HasPrefix(string(b), `{"`) {
			t.Errorf("truncated: status %d, %d of %d bytes: %q", res.StatusCode, len(b), res.ContentLength, b)
		}
	})
	t.Run("oversized", func(t *testing.T) {
		if err := s.SetFaults(Faults{Oversized: true}); err != nil {
			t.Fatal(err)
		}
		res, err := rawGet(t, url)
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if err != nil || res.StatusCode != 200 || n <= 16<<20 || res.ContentLength != n {
			t.Errorf("oversized: status %d, %d bytes (declared %d), err %v", res.StatusCode, n, res.ContentLength, err)
		}
	})
	t.Run("slow body", func(t *testing.T) {
		if err := s.SetFaults(Faults{SlowBody: 300 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		res, err := rawGet(t, url)
		if err != nil {
			t.Fatal(err)
		}
		headers := time.Since(start)
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		total := time.Since(start)
		if err != nil || !json.Valid(b) {
			t.Fatalf("slow body: err %v, valid %v", err, json.Valid(b))
		}
		if headers > 150*time.Millisecond || total < 250*time.Millisecond {
			t.Errorf("slow body: headers after %v, body after %v", headers, total)
		}
	})
	t.Run("latency", func(t *testing.T) {
		if err := s.SetFaults(Faults{Latency: 120 * time.Millisecond, Jitter: 30 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		wantStatus(t, call(t, "GET", url, nil), 200)
		if d := time.Since(start); d < 120*time.Millisecond || d > 2*time.Second {
			t.Errorf("latency: took %v", d)
		}
	})
	t.Run("error rate 1", func(t *testing.T) {
		if err := s.SetFaults(Faults{ErrorRate: 1}); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			r := call(t, "GET", url, nil)
			wantStatus(t, r, 503)
		}
	})
	t.Run("invalid", func(t *testing.T) {
		if err := s.SetFaults(Faults{ErrorRate: 2}); !errors.Is(err, ErrConfig) {
			t.Errorf("SetFaults(ErrorRate 2) = %v, want ErrConfig", err)
		}
	})
	if err := s.SetFaults(Faults{}); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, call(t, "GET", url, nil), 200)
	if got := s.Faults(); got != (Faults{}) {
		t.Errorf("Faults() = %+v", got)
	}
}

// errorSequence returns which of n requests got a 503.
func errorSequence(t *testing.T, rate float64, n int) []bool {
	t.Helper()
	cfg := fixtureConfig()
	cfg.Sellers[0].Faults = Faults{ErrorRate: rate}
	m, err := Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	out := make([]bool, n)
	for i := range n {
		r := call(t, "GET", m.Seller(fixtureSeller).URL+"/health", nil)
		out[i] = r.status == 503
		if r.status != 200 && r.status != 503 {
			t.Fatalf("status %d", r.status)
		}
	}
	return out
}

func TestFaultErrorRateIsSeededAndDeterministic(t *testing.T) {
	a := errorSequence(t, 0.5, 40)
	b := errorSequence(t, 0.5, 40)
	fails := 0
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("request %d differs between runs", i)
		}
		if a[i] {
			fails++
		}
	}
	if fails < 8 || fails > 32 {
		t.Errorf("%d of 40 failed at rate 0.5", fails)
	}
	for i, f := range errorSequence(t, 0, 5) {
		if f {
			t.Errorf("request %d failed at rate 0", i)
		}
	}
}

func TestSharedListener(t *testing.T) {
	m, err := Start(t.Context(), DefaultMarket(), WithSharedListener())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	s := m.Seller("StreamMax CTV")
	if !strings.HasSuffix(s.URL, "/s/streammax-ctv") || !strings.HasSuffix(m.RegistryURL, "/registry") {
		t.Fatalf("URLs %q %q", s.URL, m.RegistryURL)
	}
	base := strings.TrimSuffix(s.URL, "/s/streammax-ctv")
	if !strings.HasPrefix(m.Seller("Metro Mobile").URL, base+"/s/") || !strings.HasPrefix(m.RegistryURL, base) {
		t.Errorf("sellers are not on one listener: %q vs %q", m.Seller("Metro Mobile").URL, base)
	}
	r := call(t, "GET", s.URL+"/.well-known/agent.json", nil)
	wantEq(t, "card url", get(t, r.body, "url"), s.URL)
	r = call(t, "GET", s.URL+"/packages/pkg-51a00001", nil, key(s, "agency")...)
	wantEq(t, "exact", num(t, get(t, r.body, "exact_price")), 34.2) // round(38*0.9, 2)
	if reqs := s.Requests(); len(reqs) != 2 || reqs[1].Path != "/packages/pkg-51a00001" {
		t.Errorf("recorded paths not relative to the seller: %+v", reqs)
	}
	qid := quoteFor(t, s, key(s, "agency"), map[string]any{"product_id": ctvProduct, "deal_type": "PG", "impressions": 1_000_000})
	b := call(t, "POST", s.URL+"/api/v1/deals", map[string]any{"idempotency_key": "x", "quote_id": qid}, key(s, "agency")...)
	wantEq(t, "booked", integer(t, get(t, b.body, "deal", "pricing", "final_cpm", "amount_micros")), 34_200_000)
	r = call(t, "GET", m.RegistryURL+"/agents?capabilities=ctv", nil)
	wantEq(t, "registry", agentNames(t, r), []string{"Offline Networks", "Shady Reseller", "StreamMax CTV"})
	r = call(t, "GET", base+"/s/nobody/health", nil)
	wantStatus(t, r, 404)

	// Down at start: its own refusing port, still with the path prefix.
	off := m.Seller("Offline Networks")
	if strings.HasPrefix(off.URL, base) || !strings.HasSuffix(off.URL, "/s/offline-networks") {
		t.Errorf("down seller URL %q", off.URL)
	}
	wantRefused(t, off.URL+"/health")
	if err := off.SetFaults(Faults{}); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, call(t, "GET", off.URL+"/health", nil), 200)
	// Down at runtime on the shared listener: connections are cut.
	if err := s.SetFaults(Faults{Down: true}); err != nil {
		t.Fatal(err)
	}
	if res, err := rawGet(t, s.URL+"/health"); err == nil {
		res.Body.Close()
		t.Errorf("down shared seller answered %d", res.StatusCode)
	}
	wantStatus(t, call(t, "GET", m.Seller("Metro Mobile").URL+"/health", nil), 200)
}

func TestSharedListenerThousandSellers(t *testing.T) {
	m, err := Start(t.Context(), MarketConfig{}, WithSellerCount(1000, 0), WithSharedListener(), WithoutRequestLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	if len(m.Sellers) != 1000 {
		t.Fatalf("sellers = %d", len(m.Sellers))
	}
	r := call(t, "GET", m.RegistryURL+"/agents?agent_type=seller", nil)
	if n := len(get(t, r.body, "agents").([]any)); n != 1000 {
		t.Errorf("registry lists %d sellers", n)
	}
	prices := map[int64]bool{}
	for _, i := range []int{0, 1, 499, 998, 999} {
		s := m.Sellers[i]
		r := call(t, "GET", s.URL+"/products/"+s.cfg.Products[0].ID, nil)
		wantStatus(t, r, 200)
		prices[integer(t, get(t, r.body, "base_price", "amount_micros"))] = true
	}
	if len(prices) < 3 {
		t.Errorf("generated sellers do not vary in price: %v", prices)
	}
	if n := len(m.Sellers[0].Requests()) + len(m.Registry.Requests()); n != 0 {
		t.Errorf("WithoutRequestLog still recorded %d requests", n)
	}
}

// TestBookingFaults: the booking faults hit at POST /api/v1/deals. hang
// makes the seller stop answering and books nothing; book_then_hang books,
// then stops answering; both let go when the faults change; unavailable
// answers the booking 503 and the rest as usual.
func TestBookingFaults(t *testing.T) {
	m := startFixture(t)
	s := m.Seller(fixtureSeller)
	book := func(ctx context.Context, qid string) (int, error) {
		b, _ := json.Marshal(map[string]any{"idempotency_key": newKey(), "quote_id": qid})
		req, _ := http.NewRequestWithContext(ctx, "POST", s.URL+"/api/v1/deals", strings.NewReader(string(b)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Api-Key", s.Keys["agency"])
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		res.Body.Close()
		return res.StatusCode, nil
	}
	quote := func() string {
		return quoteFor(t, s, key(s, "agency"), map[string]any{"product_id": videoProduct, "deal_type": "PD"})
	}
	short := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(t.Context(), 200*time.Millisecond)
	}

	if err := s.SetFaults(Faults{Booking: BookingHang}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := short()
	if _, err := book(ctx, quote()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hang: %v", err)
	}
	cancel()
	if n := len(s.Deals()); n != 0 {
		t.Fatalf("hang booked %d deals", n)
	}
	// The seller answers nothing else either, until the faults change.
	ctx, cancel = short()
	if _, err := rawGetCtx(ctx, s.URL+"/health"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read during the stall: %v", err)
	}
	cancel()

	if err := s.SetFaults(Faults{Booking: BookingThenHang}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = short()
	if _, err := book(ctx, quote()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("book_then_hang: %v", err)
	}
	cancel()
	if n := len(s.Deals()); n != 1 {
		t.Fatalf("book_then_hang booked %d deals, want 1", n)
	}
	// Held with the client still waiting: released by the next change.
	done := make(chan int, 1)
	go func() { st, _ := book(t.Context(), quote()); done <- st }()
	time.Sleep(100 * time.Millisecond)
	if err := s.SetFaults(Faults{}); err != nil {
		t.Fatal(err)
	}
	select {
	case st := <-done:
		if st != 200 {
			t.Fatalf("released answer: %d", st)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a held booking was not released when the faults changed")
	}

	if err := s.SetFaults(Faults{Booking: BookingUnavailable}); err != nil {
		t.Fatal(err)
	}
	if st, err := book(t.Context(), quote()); err != nil || st != 503 {
		t.Fatalf("unavailable: %d %v", st, err)
	}
	if r := call(t, "GET", s.URL+"/health", nil); r.status != 200 {
		t.Fatalf("read beside an unavailable booking: %d", r.status)
	}
	if err := s.SetFaults(Faults{Booking: "sometimes"}); err == nil {
		t.Fatal("an unknown booking fault was accepted")
	}
}

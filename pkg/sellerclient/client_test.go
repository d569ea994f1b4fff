package sellerclient

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func quoteReq(key string) QuoteRequest {
	return QuoteRequest{IdempotencyKey: key, ProductID: "prod-15ba2543", DealType: DealPD}
}

func TestRetryOn503ReusesIdenticalBody(t *testing.T) {
	t.Parallel()
	for _, status := range []int{502, 503, 504} {
		srv := newFake(t, func(n int, _ recorded) reply {
			if n == 0 {
				return reply{status: status, body: `{"detail":"try later"}`}
			}
			return reply{body: quoteBody}
		})
		q, err := testClient().CreateQuote(context.Background(), srv.URL, Auth{APIKey: "ask_live_k"}, quoteReq("key-retry-1"))
		if err != nil {
			t.Fatalf("%d: %v", status, err)
		}
		if q.QuoteID != "qt-0123456789ab" {
			t.Fatalf("quote id %q", q.QuoteID)
		}
		reqs := srv.requests()
		if len(reqs) != 2 {
			t.Fatalf("%d: %d attempts, want 2", status, len(reqs))
		}
		if !bytes.Equal(reqs[0].Body, reqs[1].Body) {
			t.Fatalf("bodies differ:\n%s\n%s", reqs[0].Body, reqs[1].Body)
		}
		if !bytes.Contains(reqs[0].Body, []byte(`"idempotency_key":"key-retry-1"`)) {
			t.Fatalf("body lacks the key: %s", reqs[0].Body)
		}
		for _, r := range reqs {
			if r.Header.Get("X-Api-Key") != "ask_live_k" {
				t.Fatal("retry lost the API key")
			}
		}
	}
}

func TestRetryGivesUpAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	srv := newFake(t, func(int, recorded) reply { return reply{status: 503, body: `<html>down</html>`, ctype: "text/html"} })
	c := New(Config{AllowPrivate: true, RetryBase: time.Millisecond, MaxAttempts: 4})
	_, err := c.GetDeal(context.Background(), srv.URL, "DEMO-7CE8BB4B565B")
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrUnavailable) || e.Status != 503 || !IsTransient(err) {
		t.Fatalf("err = %v", err)
	}
	if n := len(srv.requests()); n != 4 {
		t.Fatalf("%d attempts, want 4", n)
	}
}

func TestNoRetryOnClientErrorsAndOther5xx(t *testing.T) {
	t.Parallel()
	cases := []struct {
		status int
		body   string
		want   error
	}{
		{400, `{"detail":{"error":"pg_requires_impressions","message":"PG requires impressions"}}`, ErrValidation},
		{409, errEnvelopeBody, ErrIdempotencyConflict},
		{500, errPlain500, ErrUnavailable},
		{501, `{"detail":"nope"}`, ErrUnavailable},
		{401, `{"detail":"Invalid API key"}`, ErrUnauthorized},
		{422, err422Body, ErrValidation},
	}
	for _, c := range cases {
		srv := newFake(t, func(int, recorded) reply { return reply{status: c.status, body: c.body} })
		_, err := testClient().CreateQuote(context.Background(), srv.URL, Auth{}, quoteReq("k"))
		if !errors.Is(err, c.want) {
			t.Errorf("%d: err = %v, want %v", c.status, err, c.want)
		}
		if IsTransient(err) {
			t.Errorf("%d: transient", c.status)
		}
		if n := len(srv.requests()); n != 1 {
			t.Errorf("%d: %d attempts, want 1", c.status, n)
		}
	}
}

func TestRetryOnNetworkTimeout(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	var mu sync.Mutex
	var bodies [][]byte
	mux.HandleFunc("/api/v1/deals", func(w http.ResponseWriter, r *http.Request) {
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(r.Body)
		mu.Lock()
		bodies = append(bodies, buf.Bytes())
		n := len(bodies)
		mu.Unlock()
		if n == 1 {
			select { // hang past the client timeout
			case <-time.After(2 * time.Second):
			case <-r.Context().Done():
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(dealBody))
	})
	u := newHandlerServer(t, mux)
	c := New(Config{AllowPrivate: true, RetryBase: time.Millisecond, HTTPClient: &http.Client{Timeout: 150 * time.Millisecond}})
	d, err := c.BookDeal(context.Background(), u, Auth{}, DealBookingRequest{IdempotencyKey: "bk-1", QuoteID: "qt-0123456789ab"})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if d.Deal.DealID != "DEMO-7CE8BB4B565B" || len(bodies) != 2 || !bytes.Equal(bodies[0], bodies[1]) {
		t.Fatalf("deal %q calls %d bodies %q", d.Deal.DealID, len(bodies), bodies)
	}
}

func TestContextDeadlineIsUnavailableAndStopsRetrying(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	var calls atomic.Int32
	mux.HandleFunc("/media-kit", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	})
	u := newHandlerServer(t, mux)
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := testClient().MediaKit(ctx, u)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) || !IsTransient(err) {
		t.Fatalf("err = %v", err)
	}
	if calls.Load() != 1 || time.Since(start) > time.Second {
		t.Fatalf("calls %d after %v", calls.Load(), time.Since(start))
	}
	// A cancelled context is only the cancellation.
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	_, err = testClient().MediaKit(ctx2, u)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnavailable) || IsTransient(err) {
		t.Fatalf("cancelled: %v", err)
	}
}

func TestConnectionRefusedIsUnavailableNotRetried(t *testing.T) {
	// Not parallel: it asserts wall-clock bounds of a few tens of ms.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := New(Config{AllowPrivate: true, RetryBase: 200 * time.Millisecond})
	start := time.Now()
	_, err = c.MediaKit(context.Background(), "http://"+addr)
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrUnavailable) || e.Code != "connection_refused" || IsTransient(err) {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > 150*time.Millisecond {
		t.Fatalf("took %v: refused connections must not be retried with backoff", time.Since(start))
	}
}

func TestOversizedBody(t *testing.T) {
	t.Parallel()
	big := `{"total_packages":1,"featured":[],"all_packages":[],"pad":"` + strings.Repeat("x", 4096) + `"}`
	// Known Content-Length.
	srv := newFake(t, func(int, recorded) reply { return reply{body: big} })
	c := New(Config{AllowPrivate: true, MaxBodyBytes: 1024})
	_, err := c.MediaKit(context.Background(), srv.URL)
	if !errors.Is(err, ErrBodyTooLarge) || !errors.Is(err, ErrBadResponse) || IsTransient(err) {
		t.Fatalf("content-length: err = %v", err)
	}
	// Chunked (unknown length).
	mux := http.NewServeMux()
	mux.HandleFunc("/media-kit", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		for i := 0; i < 8; i++ {
			_, _ = w.Write([]byte(big[i*512 : (i+1)*512]))
			w.(http.Flusher).Flush()
		}
	})
	u := newHandlerServer(t, mux)
	_, err = c.MediaKit(context.Background(), u)
	if !errors.Is(err, ErrBodyTooLarge) {
		t.Fatalf("chunked: err = %v", err)
	}
	// Exactly at the cap is fine.
	exact := `{"total_packages":0,"pad":"` + strings.Repeat("y", 1024-len(`{"total_packages":0,"pad":""}`)) + `"}`
	srv2 := newFake(t, func(int, recorded) reply { return reply{body: exact} })
	mk, err := c.MediaKit(context.Background(), srv2.URL)
	if err != nil || len(exact) != 1024 || mk.TotalPackages != 0 {
		t.Fatalf("at cap: %v len %d", err, len(exact))
	}
	// The default cap is 4 MiB.
	if New(Config{}).cfg.MaxBodyBytes != 4<<20 {
		t.Fatal("default cap")
	}
}

func TestLargeErrorBodyStillRetryable(t *testing.T) {
	t.Parallel()
	srv := newFake(t, func(n int, _ recorded) reply {
		if n == 0 {
			return reply{status: 503, body: strings.Repeat("<p>busy</p>", 100000), ctype: "text/html"}
		}
		return reply{body: mediaKitBody}
	})
	mk, err := New(Config{AllowPrivate: true, RetryBase: time.Millisecond, MaxBodyBytes: 4096}).MediaKit(context.Background(), srv.URL)
	if err != nil || mk.TotalPackages != 2 {
		t.Fatalf("%v", err)
	}
}

func TestBadSuccessBodies(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"html":          `<html>hello</html>`,
		"empty":         ``,
		"truncated":     quoteBody[:len(quoteBody)/2],
		"array":         `[1,2,3]`,
		"wrong shape":   `{"quote":"qt-1"}`,
		"no quote":      `{"result":{}}`,
		"missing id":    `{"quote":{"status":"available"}}`,
		"float money":   strings.Replace(quoteBody, `"amount_micros":21380000`, `"amount_micros":21380000.0`, 1),
		"bad timestamp": strings.Replace(quoteBody, `"2026-11-26T18:55:22.955953Z"`, `"tomorrow"`, 1),
		"trailing junk": quoteBody + `}`,
	}
	for name, body := range cases {
		srv := newFake(t, func(int, recorded) reply { return reply{body: body} })
		q, err := testClient().GetQuote(context.Background(), srv.URL, "qt-0123456789ab")
		var e *Error
		if q != nil || !errors.As(err, &e) || !errors.Is(err, ErrBadResponse) || e.Status != 200 || e.Code != "bad_response" {
			t.Errorf("%s: q=%v err=%v", name, q, err)
		}
		if n := len(srv.requests()); n != 1 {
			t.Errorf("%s: %d attempts", name, n)
		}
	}
}

func TestTruncatedBodyMidStream(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("/media-kit", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", fmt.Sprint(len(mediaKitBody)))
		_, _ = w.Write([]byte(mediaKitBody[:100]))
		// Returning early closes the connection short of Content-Length.
		hj, ok := w.(http.Hijacker)
		if ok {
			w.(http.Flusher).Flush()
			conn, _, _ := hj.Hijack()
			conn.Close()
		}
	})
	u := newHandlerServer(t, mux)
	_, err := testClient().MediaKit(context.Background(), u)
	if !errors.Is(err, ErrBadResponse) || IsTransient(err) {
		t.Fatalf("err = %v", err)
	}
}

func TestAuthHeadersAndUserAgent(t *testing.T) {
	t.Parallel()
	srv := newFake(t, routes(map[string]reply{"GET /packages": {body: `{"packages":[]}`}}))
	c := testClient()
	ctx := context.Background()
	cases := []struct {
		auth          Auth
		xkey, authHdr string
	}{
		{Auth{}, "", ""},
		{Auth{APIKey: "ask_live_abc"}, "ask_live_abc", ""},
		{Auth{APIKey: "ask_live_abc", Bearer: true}, "", "Bearer ask_live_abc"},
	}
	for _, cs := range cases {
		if _, err := c.Packages(ctx, srv.URL, cs.auth, TierClaim{}); err != nil {
			t.Fatal(err)
		}
		r := srv.last(t)
		if r.Header.Get("X-Api-Key") != cs.xkey || r.Header.Get("Authorization") != cs.authHdr {
			t.Errorf("%+v: X-Api-Key=%q Authorization=%q", cs.auth, r.Header.Get("X-Api-Key"), r.Header.Get("Authorization"))
		}
		if r.Header.Get("User-Agent") != "test-agent/1" || r.Header.Get("Accept") != "application/json" {
			t.Errorf("headers %v", r.Header)
		}
	}
	n := len(srv.requests())
	if _, err := c.Packages(ctx, srv.URL, Auth{APIKey: "k\r\nX-Evil: 1"}, TierClaim{}); !errors.Is(err, ErrValidation) {
		t.Fatalf("header injection: %v", err)
	}
	if len(srv.requests()) != n {
		t.Fatal("invalid key was sent")
	}
	if New(Config{}).cfg.UserAgent != DefaultUserAgent {
		t.Fatal("default UA")
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c := New(Config{})
	if c.cfg.MaxAttempts != 3 || c.cfg.RetryBase != 100*time.Millisecond || c.cfg.MaxBodyBytes != 4<<20 || c.cfg.AllowPrivate {
		t.Fatalf("defaults %+v", c.cfg)
	}
	tr, ok := c.base.(*http.Transport)
	if !ok || tr.Proxy != nil || tr.MaxIdleConnsPerHost == 0 || tr.TLSHandshakeTimeout == 0 {
		t.Fatalf("transport %#v", c.base)
	}
	// A caller's client is copied, not mutated.
	own := &http.Client{Timeout: time.Second}
	c2 := New(Config{HTTPClient: own})
	if own.CheckRedirect != nil || c2.hc == own || c2.hc.Timeout != time.Second || c2.hc.CheckRedirect == nil {
		t.Fatal("HTTPClient not copied")
	}
}

func TestBackoffIsBoundedFullJitter(t *testing.T) {
	// Not parallel: it asserts wall-clock bounds of a few tens of ms.
	c := New(Config{RetryBase: time.Millisecond})
	for n := 1; n <= 3; n++ {
		start := time.Now()
		if err := c.sleep(context.Background(), n); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > time.Duration(1<<(n-1))*time.Millisecond+50*time.Millisecond {
			t.Fatalf("sleep(%d) took %v", n, d)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := New(Config{RetryBase: time.Hour}).sleep(ctx, 10); !errors.Is(err, context.Canceled) {
		t.Fatalf("sleep with cancelled ctx: %v", err)
	}
}

// TestReadLimitedSized checks that the announced length is only a hint: the
// body read is what the seller sent, and the limit holds either way.
func TestReadLimitedSized(t *testing.T) {
	body := strings.Repeat("x", 100)
	for _, c := range []struct {
		name           string
		max, announced int64
		want           int
		wantErr        error
	}{
		{"exact", 1000, 100, 100, nil},
		{"unknown", 1000, -1, 100, nil},
		{"announced short", 1000, 10, 100, nil},
		{"announced long", 1000, 500, 100, nil},
		{"announced zero", 1000, 0, 100, nil},
		{"over the limit", 50, 100, 0, ErrBodyTooLarge},
		{"over the limit, announced short", 50, 10, 0, ErrBodyTooLarge},
		{"at the limit", 100, 100, 100, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, err := readLimitedSized(strings.NewReader(body), c.max, c.announced)
			if !errors.Is(err, c.wantErr) || len(b) != c.want {
				t.Fatalf("got %d bytes, err %v; want %d, %v", len(b), err, c.want, c.wantErr)
			}
			if c.wantErr == nil && string(b) != body {
				t.Fatal("body changed")
			}
		})
	}
}

// TestDecodedPackagesOutliveTheBodyBuffer: response bodies are decoded
// through the JSON library's recycled decoder buffers, so what a call
// returns must not share their memory. The seller answers every call with
// a body of the same length and different bytes, so a later call reuses
// the earlier call's buffer.
func TestDecodedPackagesOutliveTheBodyBuffer(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := calls.Add(1) % 1000
		body := `{"packages":[` + publicPackageBody + `]}`
		body = strings.ReplaceAll(body, "Premium", fmt.Sprintf("Prem%03d", i))
		body = strings.ReplaceAll(body, "pkg-1a2b3c4d", fmt.Sprintf("pkg-1a2b3%03d", i))
		body = strings.ReplaceAll(body, `"standard_taxonomy_version":"1.1"`, fmt.Sprintf(`"standard_taxonomy_version":"%03d"`, i))
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	c := testClient()
	first, err := c.Packages(t.Context(), srv.URL, Auth{}, TierClaim{})
	if err != nil || len(first) != 1 {
		t.Fatalf("packages %v: %v", first, err)
	}
	want, _ := json.Marshal(first)
	if !strings.Contains(string(want), "pkg-1a2b3001") || !strings.Contains(string(want), `"001"`) {
		t.Fatalf("first call decoded %s", want)
	}
	for range 50 {
		if _, err := c.Packages(t.Context(), srv.URL, Auth{}, TierClaim{}); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := json.Marshal(first); string(got) != string(want) {
		t.Fatalf("the first call's packages changed under later calls:\n%s\nwas\n%s", got, want)
	}
}

// TestNotSentOnlyWhenNothingReachedTheSeller: ErrNotSent marks failures
// where the request provably never left (the booker then fails a booking
// definitely), and never one where some attempt may have reached the
// seller (whose outcome is unknown).
func TestNotSentOnlyWhenNothingReachedTheSeller(t *testing.T) {
	t.Parallel()
	closed := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		return "http://" + addr
	}
	req := DealBookingRequest{IdempotencyKey: "bk-1", QuoteID: "qt-0123456789ab"}
	c := New(Config{AllowPrivate: true, RetryBase: time.Millisecond, HTTPClient: &http.Client{Timeout: 150 * time.Millisecond}})

	// Refused connection: nothing was sent.
	_, err := c.BookDeal(context.Background(), closed(), Auth{}, req)
	if !IsNotSent(err) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("refused: %v", err)
	}
	// Refused before sending (a private address, a bad URL).
	if _, err := New(Config{}).BookDeal(context.Background(), "http://127.0.0.1:1", Auth{}, req); !IsNotSent(err) {
		t.Fatalf("private address: %v", err)
	}
	if _, err := c.BookDeal(context.Background(), "ftp://seller.example", Auth{}, req); !IsNotSent(err) {
		t.Fatalf("bad URL: %v", err)
	}

	// Answered: a 503 and a 4xx reached the seller.
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/deals", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "busy", http.StatusServiceUnavailable)
	})
	busy := newHandlerServer(t, mux)
	if _, err := c.BookDeal(context.Background(), busy, Auth{}, req); err == nil || IsNotSent(err) {
		t.Fatalf("503: %v", err)
	}
	// A timeout after the request was written: it may have been booked.
	hang := http.NewServeMux()
	hang.HandleFunc("/api/v1/deals", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	})
	if _, err := c.BookDeal(context.Background(), newHandlerServer(t, hang), Auth{}, req); err == nil || IsNotSent(err) {
		t.Fatalf("timeout after sending: %v", err)
	}

	// A first attempt that reached the seller (503, retried), then a
	// refused connection: the call as a whole may have been acted on.
	var srv *httptest.Server
	once := http.NewServeMux()
	once.HandleFunc("/api/v1/deals", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "busy", http.StatusServiceUnavailable)
		go srv.Close() // the next attempt is refused
	})
	srv = httptest.NewServer(once)
	defer srv.Close()
	_, err = New(Config{AllowPrivate: true, RetryBase: 50 * time.Millisecond, MaxAttempts: 3}).BookDeal(context.Background(), srv.URL, Auth{}, req)
	if err == nil || IsNotSent(err) {
		t.Fatalf("503 then refused: %v (IsNotSent %v)", err, IsNotSent(err))
	}
}

// TestStreamedBodyFailsAsItsReading: a 2xx body decoded as it arrives is
// still read to its end, so how the reading ended decides the error, as
// when the body was read whole before decoding: a body past the limit is
// body_too_large and one cut short truncated_body even when its JSON went
// wrong first, one that stalls is a retryable timeout; only a body read
// whole is judged by its JSON (bad_response, trailing data included).
func TestStreamedBodyFailsAsItsReading(t *testing.T) {
	t.Parallel()
	const limit = 1024
	valid := `{"packages":[` + publicPackageBody + `]}`
	if len(valid) > limit {
		t.Fatalf("valid body %d bytes, above the %d-byte limit of the test", len(valid), limit)
	}
	type serve func(w http.ResponseWriter, r *http.Request)
	chunks := func(parts ...string) serve { // chunked: no Content-Length
		return func(w http.ResponseWriter, _ *http.Request) {
			for _, p := range parts {
				_, _ = io.WriteString(w, p)
				w.(http.Flusher).Flush()
			}
		}
	}
	cut := func(announced int, sent string) serve { // the connection closes short of Content-Length
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", fmt.Sprint(announced))
			_, _ = io.WriteString(w, sent)
			w.(http.Flusher).Flush()
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		}
	}
	stall := func(first string) serve { // the body stops coming until the client hangs up
		return func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, first)
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		}
	}
	for _, c := range []struct {
		name      string
		serve     serve
		code      string
		kind      error
		retryable bool
	}{
		{"bad JSON, then past the limit", chunks(`<html>`, strings.Repeat("x", 600), strings.Repeat("x", 600)), "body_too_large", ErrBodyTooLarge, false},
		{"valid JSON, then past the limit", chunks(valid, strings.Repeat(" ", limit)), "body_too_large", ErrBodyTooLarge, false},
		{"bad JSON, then cut short", cut(900, `{"packages":[}`+strings.Repeat(" ", 100)), "truncated_body", ErrBadResponse, false},
		{"valid JSON, then cut short", cut(len(valid)+100, valid), "truncated_body", ErrBadResponse, false},
		{"bad JSON, then stalled", stall(`{"packages":[}`), "timeout", ErrUnavailable, true},
		{"trailing data", chunks(valid, ` {}`), "bad_response", ErrBadResponse, false},
		{"bad JSON", chunks(`{"packages":[}`), "bad_response", ErrBadResponse, false},
		{"empty", chunks(), "bad_response", ErrBadResponse, false},
		{"null", chunks(`null`), "bad_response", ErrBadResponse, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			u := newHandlerServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				c.serve(w, r)
			}))
			cl := New(Config{AllowPrivate: true, MaxBodyBytes: limit, MaxAttempts: 1, HTTPClient: &http.Client{Timeout: 300 * time.Millisecond}})
			pkgs, err := cl.Packages(t.Context(), u, Auth{}, TierClaim{})
			var e *Error
			if pkgs != nil || !errors.As(err, &e) || e.Code != c.code || !errors.Is(err, c.kind) || e.Retryable != c.retryable || e.Status != 200 {
				t.Fatalf("packages %v, err %v (%#v); want code %s, %v, retryable %v", pkgs, err, e, c.code, c.kind, c.retryable)
			}
		})
	}
}

// TestGzipAnswers: the client asks for gzip itself and decompresses what
// comes back, and every body limit applies to the decompressed bytes: a
// small compressed answer that inflates past MaxBodyBytes is too large, a
// body that is not the gzip it claims is a bad response.
func TestGzipAnswers(t *testing.T) {
	t.Parallel()
	const limit = 4096
	valid := `{"packages":[` + publicPackageBody + `]}`
	gz := func(s string) []byte {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		_, _ = io.WriteString(zw, s)
		_ = zw.Close()
		return b.Bytes()
	}
	bomb := gz(`{"packages":[` + strings.Repeat(" ", 1<<20) + `]}`) // 1 MiB of spaces, about 1 KB compressed
	if len(bomb) > limit {
		t.Fatalf("the bomb is %d bytes compressed, not under the %d-byte limit", len(bomb), limit)
	}
	corrupt := gz(valid)
	corrupt[len(corrupt)-5] ^= 0xff // the CRC: detected at the end
	for _, c := range []struct {
		name string
		body []byte
		code string // "" for a decoded answer
	}{
		{"gzip answer", gz(valid), ""},
		{"inflates past the limit", bomb, "body_too_large"},
		{"not gzip at all", []byte(valid), "bad_encoding"},
		{"checksum wrong", corrupt, "bad_encoding"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			u := newHandlerServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Accept-Encoding") != "gzip" {
					t.Errorf("Accept-Encoding %q, want gzip", r.Header.Get("Accept-Encoding"))
				}
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Content-Encoding", "gzip")
				_, _ = w.Write(c.body)
			}))
			cl := New(Config{AllowPrivate: true, MaxBodyBytes: limit, MaxAttempts: 1})
			pkgs, err := cl.Packages(t.Context(), u, Auth{}, TierClaim{})
			if c.code == "" {
				if err != nil || len(pkgs) != 1 {
					t.Fatalf("packages %v, err %v", pkgs, err)
				}
				return
			}
			var e *Error
			if pkgs != nil || !errors.As(err, &e) || e.Code != c.code || !errors.Is(err, ErrBadResponse) {
				t.Fatalf("packages %v, err %v; want code %s", pkgs, err, c.code)
			}
		})
	}
}

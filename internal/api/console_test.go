package api

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// TestConsoleServedWithoutKey: with an API key the console's page and
// assets are served without it (they hold no data), everything under
// /bookings still needs it, and a missing asset is the API's JSON 404.
func TestConsoleServedWithoutKey(t *testing.T) {
	srv := httptest.NewServer(New(nil, nil, "k", zerolog.Nop(), Options{}))
	defer srv.Close()
	get := func(path, key string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest("GET", srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if key != "" {
			req.Header.Set("X-API-Key", key)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	for _, c := range []struct{ path, ctype, has string }{
		{"/", "text/html", `<script src="/static/app.js"`},
		{"/static/app.js", "text/javascript", "X-API-Key"},
		{"/static/app.css", "text/css", ":root"},
	} {
		res, body := get(c.path, "")
		if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), c.ctype) || !strings.Contains(body, c.has) {
			t.Fatalf("GET %s: %d %s", c.path, res.StatusCode, res.Header.Get("Content-Type"))
		}
	}
	if res, _ := get("/", ""); !strings.Contains(res.Header.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Fatalf("the page has no CSP: %v", res.Header)
	}
	for _, p := range []string{"/bookings", "/bookings/cmp-1", "/bookings/cmp-1/events", "/bookings/cmp-1/deals.csv", "/static", "/index.html"} {
		if res, _ := get(p, ""); res.StatusCode != 401 {
			t.Fatalf("GET %s without the key: %d, want 401", p, res.StatusCode)
		}
	}
	if res, body := get("/static/nope.js", ""); res.StatusCode != 404 || !strings.Contains(body, `"not_found"`) {
		t.Fatalf("missing asset: %d %s", res.StatusCode, body)
	}
	if res, body := get("/nope", "k"); res.StatusCode != 404 || !strings.Contains(body, `"not_found"`) {
		t.Fatalf("unknown route: %d %s", res.StatusCode, body)
	}
}

package app

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dealflow/dealflow/internal/config"
	"github.com/dealflow/dealflow/internal/natstest"
)

// startAPI runs the bookings API alone over an embedded NATS on a TCP port
// (so the test can stop the broker under it).
func startAPI(t *testing.T, logs io.Writer) *App {
	t.Helper()
	cfg := config.Defaults()
	cfg.Stages = nil
	cfg.NATSPort = 0
	cfg.DataDir = t.TempDir()
	cfg.HTTPAddr = "127.0.0.1:0"
	a, err := Start(context.Background(), cfg, zerolog.New(logs), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	return a
}

// TestAccessLog: one info line per request with method, route pattern,
// status and duration; never the API key, the body or the raw path.
func TestAccessLog(t *testing.T) {
	var logs natstest.LogBuffer
	a := startAPI(t, &logs)
	base := "http://" + a.HTTPAddr
	req, _ := http.NewRequest(http.MethodGet, base+"/bookings/cmp-nosuchjob?secret=q", nil)
	req.Header.Set("X-API-Key", "sekrit-key")
	for _, r := range []*http.Request{req, mustReq(t, http.MethodPost, base+"/bookings", `{"brief":{"name":"body-marker"}}`)} {
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	var lines []map[string]any
	for _, l := range strings.Split(logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["message"] == "http request" {
			lines = append(lines, m)
		}
	}
	if len(lines) != 2 {
		t.Fatalf("access lines %v\nlog:\n%s", lines, logs.String())
	}
	if l := lines[0]; l["level"] != "info" || l["method"] != "GET" || l["route"] != "GET /bookings/{id}" || l["status"] != float64(404) ||
		!strings.HasSuffix(l["duration"].(string), "s") {
		t.Fatalf("line %v", l)
	}
	if l := lines[1]; l["method"] != "POST" || l["route"] != "POST /bookings" || l["status"] != float64(422) {
		t.Fatalf("line %v", l)
	}
	for _, leak := range []string{"sekrit-key", "secret=q", "cmp-nosuchjob", "body-marker"} {
		for _, l := range lines {
			if b, _ := json.Marshal(l); strings.Contains(string(b), leak) {
				t.Fatalf("access line leaks %q: %s", leak, b)
			}
		}
	}
}

func mustReq(t *testing.T, method, url, body string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/json")
	return r
}

// TestAPIAnswers503PromptlyWithoutBroker: with the NATS server stopped
// under a running API, reads and writes answer 503 within a bound instead
// of hanging.
func TestAPIAnswers503PromptlyWithoutBroker(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for store timeouts")
	}
	a := startAPI(t, io.Discard)
	base := "http://" + a.HTTPAddr
	resp, err := http.Get(base + "/bookings")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("with the broker up: %d", resp.StatusCode)
	}
	a.Server.Shutdown()
	a.Server.WaitForShutdown()

	const bound = 8 * time.Second
	client := &http.Client{Timeout: 2 * bound}
	body := `{"brief":{"name":"x","budget":1000,"start_date":"2027-01-04","end_date":"2027-01-31","kpis":{"target_cpm":10,"max_cpm":20},"channels":["video"]}}`
	for _, r := range []*http.Request{
		mustReq(t, http.MethodGet, base+"/bookings", ""),
		mustReq(t, http.MethodGet, base+"/bookings/cmp-0123456789abcdef0123", ""),
		mustReq(t, http.MethodPost, base+"/bookings", body),
	} {
		start := time.Now()
		resp, err := client.Do(r)
		if err != nil {
			t.Fatalf("%s %s: %v", r.Method, r.URL.Path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if d := time.Since(start); resp.StatusCode != http.StatusServiceUnavailable || d > bound {
			t.Fatalf("%s %s: %d after %v: %s", r.Method, r.URL.Path, resp.StatusCode, d, b)
		}
	}
}

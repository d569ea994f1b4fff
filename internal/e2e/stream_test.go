package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/api"
	"github.com/dealflow/dealflow/internal/app"
	"github.com/dealflow/dealflow/internal/config"
	"github.com/dealflow/dealflow/internal/demo"
	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/internal/sandbox"
	"github.com/dealflow/dealflow/pkg/events"
)

type sseEvent struct {
	id    uint64
	event string
	data  []byte
}

// readSSE reads a whole event stream (the server closes it after
// CampaignCompleted), failing on a stream that does not end in time.
func readSSE(t *testing.T, base, id, lastID string) (*http.Response, []sseEvent) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/bookings/"+id+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		return res, nil
	}
	var out []sseEvent
	var cur sseEvent
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<22)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.data != nil {
				out = append(out, cur)
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "id: "):
			n, err := strconv.ParseUint(strings.TrimPrefix(line, "id: "), 10, 64)
			if err != nil {
				t.Fatalf("id line %q", line)
			}
			cur.id = n
		case strings.HasPrefix(line, "event: "):
			cur.event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			cur.data = append(cur.data, strings.TrimPrefix(line, "data: ")...)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("the stream did not end after CampaignCompleted: %v", err)
	}
	return res, out
}

// TestEventStreamAndDealsCSV: GET /bookings/{id}/events replays a campaign
// from its start as structured-mode CloudEvents, resumes after Last-Event-ID
// and closes after CampaignCompleted; GET /bookings/{id}/deals.csv lists the
// booked deals with CSV quoting (a seller name with a comma and quotes).
func TestEventStreamAndDealsCSV(t *testing.T) {
	const odd = `Metro "Mobile", Inc.`
	_, base := consoleStack(t, "", func(mc *sandbox.MarketConfig) {
		for i := range mc.Sellers {
			if mc.Sellers[i].Name == "Metro Mobile" {
				mc.Sellers[i].Name = odd
			}
		}
	})
	code, body, _ := httpDo(t, "POST", base+"/bookings", "", map[string]any{
		"brief": map[string]any{"name": "Stream", "budget": 20000, "start_date": time.Now().AddDate(0, 0, 14).Format("2006-01-02"),
			"end_date": time.Now().AddDate(0, 0, 40).Format("2006-01-02"), "channels": []string{"ctv", "video"},
			"kpis": map[string]any{"target_cpm": 18, "max_cpm": 32}, "per_seller_cap": 12000},
		"auto_approve": true})
	if code != 200 {
		t.Fatalf("POST /bookings: %d %s", code, body)
	}
	var created struct {
		JobID string `json:"job_id"`
	}
	if err := json.Unmarshal(body, &created); err != nil {
		t.Fatal(err)
	}
	id := created.JobID

	res, evs := readSSE(t, base, id, "")
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	if len(evs) < 5 || evs[0].event != events.KindCampaignRequested.Type || evs[len(evs)-1].event != events.KindCampaignCompleted.Type {
		t.Fatalf("stream of %d events from %q to %q", len(evs), evs[0].event, evs[len(evs)-1].event)
	}
	var prev uint64
	for _, e := range evs {
		var ce struct {
			SpecVersion     string          `json:"specversion"`
			ID              string          `json:"id"`
			Source          string          `json:"source"`
			Type            string          `json:"type"`
			Subject         string          `json:"subject"`
			Time            time.Time       `json:"time"`
			DataContentType string          `json:"datacontenttype"`
			Data            json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(e.data, &ce); err != nil {
			t.Fatalf("data %s: %v", e.data, err)
		}
		if ce.SpecVersion != "1.0" || ce.ID == "" || ce.Source == "" || ce.Type != e.event || ce.Subject != id || ce.Time.IsZero() ||
			ce.DataContentType != "application/json" || len(ce.Data) == 0 || ce.Data[0] != '{' {
			t.Fatalf("not a structured CloudEvent of %s: %s", id, e.data)
		}
		if e.id <= prev {
			t.Fatalf("ids not increasing: %d after %d", e.id, prev)
		}
		prev = e.id
	}
	var done events.CampaignCompleted
	if err := json.Unmarshal(evs[len(evs)-1].data, &struct {
		Data *events.CampaignCompleted `json:"data"`
	}{&done}); err != nil {
		t.Fatal(err)
	}

	// Resumed after the third-last event: exactly the last two.
	_, tail := readSSE(t, base, id, strconv.FormatUint(evs[len(evs)-3].id, 10))
	if len(tail) != 2 || tail[0].id != evs[len(evs)-2].id || tail[1].event != events.KindCampaignCompleted.Type {
		t.Fatalf("resumed stream: %d events", len(tail))
	}
	if res, _ := readSSE(t, base, "cmp-nope", ""); res.StatusCode != 404 {
		t.Fatalf("unknown campaign: %d", res.StatusCode)
	}
	if res, _ := readSSE(t, base, id, "x"); res.StatusCode != 400 {
		t.Fatalf("bad Last-Event-ID: %d", res.StatusCode)
	}

	// The CSV: one row per booked deal, quoting intact.
	code, body, h := httpDo(t, "GET", base+"/bookings/"+id+"/deals.csv", "", nil)
	if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/csv") || !strings.Contains(h.Get("Content-Disposition"), id) {
		t.Fatalf("deals.csv: %d %v", code, h)
	}
	rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("CSV %s: %v", body, err)
	}
	if !slices.Equal(rows[0], api.DealsCSVHeader) || len(rows) != len(done.Deals)+1 || len(done.Deals) == 0 {
		t.Fatalf("CSV has %d rows for %d deals: %q", len(rows)-1, len(done.Deals), rows)
	}
	sawOdd, oddDeal := false, false
	for i, d := range done.Deals {
		oddDeal = oddDeal || d.SellerName == odd
		r := rows[i+1]
		want := []string{d.SellerURL, string(d.Protocol.Or()), d.PackageID, d.DealID, d.MediaBuyID, d.DealType, d.CPMMicros.Cents(), strconv.FormatInt(int64(d.CPMMicros), 10),
			strconv.FormatInt(d.Impressions, 10), d.SpendMicros.Cents(), strconv.FormatInt(int64(d.SpendMicros), 10), d.FlightStart, d.FlightEnd}
		if !slices.Equal(r[1:], want) {
			t.Fatalf("row %q, want %q", r[1:], want)
		}
		sawOdd = sawOdd || r[0] == odd
	}
	if !oddDeal || !sawOdd || !strings.Contains(string(body), `"Metro ""Mobile"", Inc."`) {
		t.Fatalf("the seller name %q did not survive CSV quoting (booked there: %v):\n%s", odd, oddDeal, body)
	}
}

// consoleStack is startStack with the bookings API on a free port and the
// demo's buyer as the operator's identity (the form sends no buyer), so
// sellers see an agency or advertiser tier and negotiate.
func consoleStack(t *testing.T, apiKey string, market func(*sandbox.MarketConfig)) (*stack, string) {
	t.Helper()
	ctx := context.Background()
	mc := sandbox.DefaultMarket()
	if market != nil {
		market(&mc)
	}
	m, err := sandbox.Start(ctx, mc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	cfg := config.Defaults()
	cfg.DataDir, cfg.NATSPort, cfg.RegistryURL, cfg.AllowPrivate, cfg.Window = t.TempDir(), 0, m.RegistryURL, true, 45*time.Second
	cfg.HTTPAddr, cfg.APIKey = "127.0.0.1:0", apiKey
	buyer := demo.SampleCampaign("x", "adaptive").Buyer
	a, err := app.Start(ctx, cfg, natstest.Logger(), app.Options{Credentials: m.Credentials(), Buyer: &buyer, SweepEvery: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	return &stack{market: m, app: a}, "http://" + a.HTTPAddr
}

func httpDo(t *testing.T, method, url, key string, body any) (int, []byte, http.Header) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(res.Body)
	return res.StatusCode, buf.Bytes(), res.Header
}

package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/dealflow/dealflow/internal/api"
	"github.com/dealflow/dealflow/internal/api/apitest"
	"github.com/dealflow/dealflow/internal/app"
	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/checkfor"
	"github.com/dealflow/dealflow/internal/config"
	"github.com/dealflow/dealflow/internal/demo"
	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/internal/sandbox"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/services/notifier"
)

const apiKey = "buyer-key"

var auth = map[string]string{"X-API-Key": apiKey}

func startMarket(t *testing.T) *sandbox.Market {
	t.Helper()
	m, err := sandbox.Start(context.Background(), sandbox.DefaultMarket())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func startApp(t *testing.T, m *sandbox.Market, dir string, tune func(*bus.StageConfig)) *app.App {
	t.Helper()
	cfg := config.Defaults()
	cfg.DataDir, cfg.NATSPort, cfg.RegistryURL, cfg.AllowPrivate, cfg.Window = dir, 0, m.RegistryURL, true, 45*time.Second
	cfg.HTTPAddr, cfg.APIKey = "127.0.0.1:0", apiKey
	a, err := app.Start(context.Background(), cfg, natstest.Logger(), app.Options{Credentials: m.Credentials(), SweepEvery: 200 * time.Millisecond, StageTuning: tune})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	return a
}

// receiver is a webhook endpoint that verifies every delivery's signature.
type receiver struct {
	t      *testing.T
	secret string
	status int
	mu     sync.Mutex
	got    map[string]int // event id -> deliveries
	types  map[string]string
	first  chan struct{}
	once   sync.Once
	srv    *httptest.Server
}

func newReceiver(t *testing.T, status int) *receiver {
	r := &receiver{t: t, secret: "0123456789abcdef-secret", status: status, got: map[string]int{}, types: map[string]string{}, first: make(chan struct{})}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if !notifier.Verify(r.secret, req.Header.Get(notifier.HeaderTimestamp), body, req.Header.Get(notifier.HeaderSignature)) {
			t.Errorf("delivery %s: signature does not verify", req.Header.Get(notifier.HeaderEventID))
		}
		var ce struct{ ID, Type string }
		if err := json.Unmarshal(body, &ce); err != nil || ce.ID != req.Header.Get(notifier.HeaderEventID) || req.Header.Get("Content-Type") != notifier.ContentType {
			t.Errorf("delivery: %v %s %v", err, body, req.Header)
		}
		r.mu.Lock()
		r.got[ce.ID]++
		r.types[ce.ID] = ce.Type
		r.mu.Unlock()
		w.WriteHeader(r.status)
		r.once.Do(func() { close(r.first) })
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) delivered() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for k, v := range r.got {
		out[k] = v
	}
	return out
}

func booking(id string, notify map[string]any) map[string]any {
	s := demo.SampleCampaign(id, "adaptive")
	b := map[string]any{"campaign_id": id, "brief": api.BriefInputOf(s.Brief), "auto_approve": true, "buyer": s.Buyer}
	if notify != nil {
		b["notify"] = notify
	}
	return b
}

type sseEvent struct {
	id, typ string
	ce      map[string]any
}

// readSSE reads the stream to its end (or the deadline), checking the
// response against the OpenAPI document.
func readSSE(t *testing.T, url string, lastID string) (*http.Response, []sseEvent) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	req.Header.Set("X-API-Key", apiKey)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		apitest.Check(t, req, resp.StatusCode, resp.Header, b)
		return resp, nil
	}
	apitest.Check(t, req, resp.StatusCode, resp.Header, nil)
	var (
		out []sseEvent
		cur sseEvent
	)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 8<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.id != "" {
				out = append(out, cur)
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, "id: "):
			cur.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			cur.typ = line[7:]
		case strings.HasPrefix(line, "data: "):
			if err := json.Unmarshal([]byte(line[6:]), &cur.ce); err != nil {
				t.Fatalf("data: %v", err)
			}
		}
	}
	if ctx.Err() != nil {
		t.Fatalf("stream did not end: %d events", len(out))
	}
	return resp, out
}

// TestBookingsAPIStreamsWebhooksAndDocument runs one campaign with a webhook
// through the API: every answer matches the OpenAPI document; the SSE stream
// replays in order and ends after CampaignCompleted; resuming with
// Last-Event-ID gives exactly the rest; every status change and deal reaches
// the webhook signed.
func TestBookingsAPIStreamsWebhooksAndDocument(t *testing.T) {
	m := startMarket(t)
	a := startApp(t, m, t.TempDir(), nil)
	base := "http://" + a.HTTPAddr
	rcv := newReceiver(t, 200)

	for _, p := range []string{"/openapi.json", "/api", "/livez"} {
		req, _ := http.NewRequest("GET", base+p, nil)
		if code, _, body := apitest.Do(t, req); code != 200 || len(body) == 0 {
			t.Fatalf("%s without a key: %d", p, code)
		}
	}
	if code, out := apitest.JSON(t, "GET", base+"/bookings/nope/events", nil, nil); code != 401 || out["error"] != "unauthorized" {
		t.Fatalf("events without a key: %d %v", code, out)
	}
	if code, out := apitest.JSON(t, "GET", base+"/bookings/nope/events", nil, auth); code != 404 || out["error"] != "not_found" {
		t.Fatalf("events of an unknown job: %d %v", code, out)
	}
	if code, out := apitest.JSON(t, "POST", base+"/bookings", booking("hook-bad", map[string]any{"url": "ftp://example.com/x", "secret": rcv.secret}), auth); code != 422 || out["field"] != "notify.url" {
		t.Fatalf("bad notify.url: %d %v", code, out)
	}
	if code, out := apitest.JSON(t, "POST", base+"/bookings", booking("hook-bad", map[string]any{"url": rcv.srv.URL, "secret": "short"}), auth); code != 422 || out["field"] != "notify.secret" {
		t.Fatalf("short secret: %d %v", code, out)
	}
	if code, out := apitest.JSON(t, "POST", base+"/bookings", booking("hook-1", map[string]any{"url": rcv.srv.URL + "/hook", "secret": rcv.secret}), auth); code != 200 || out["job_id"] != "hook-1" {
		t.Fatalf("create: %d %v", code, out)
	}
	if code, out := apitest.JSON(t, "POST", base+"/bookings", booking("hook-1", nil), auth); code != 409 {
		t.Fatalf("duplicate: %d %v", code, out)
	}

	_, evs := readSSE(t, base+"/bookings/hook-1/events", "")
	if len(evs) < 5 || evs[0].typ != events.KindCampaignRequested.Type || evs[len(evs)-1].typ != events.KindCampaignCompleted.Type {
		t.Fatalf("stream: %d events, first %v", len(evs), evs)
	}
	var prev uint64
	for _, e := range evs {
		seq, err := strconv.ParseUint(e.id, 10, 64)
		if err != nil || seq <= prev || e.ce["type"] != e.typ || e.ce["subject"] != "hook-1" || e.ce["specversion"] != "1.0" {
			t.Fatalf("event %+v after %d", e, prev)
		}
		prev = seq
	}
	if n := strings.Count(mustJSON(evs[0].ce["data"]), "secret"); n != 0 || !strings.Contains(mustJSON(evs[0].ce["data"]), rcv.srv.URL) {
		t.Fatalf("CampaignRequested data must carry notify.url and no secret: %v", evs[0].ce["data"])
	}
	cut := len(evs) / 2
	_, rest := readSSE(t, base+"/bookings/hook-1/events", evs[cut-1].id)
	if len(rest) != len(evs)-cut {
		t.Fatalf("resume after %s: %d events, want %d", evs[cut-1].id, len(rest), len(evs)-cut)
	}
	for i, e := range rest {
		if e.id != evs[cut+i].id || e.ce["id"] != evs[cut+i].ce["id"] {
			t.Fatalf("resumed event %d: %s, want %s", i, e.id, evs[cut+i].id)
		}
	}
	_, after := readSSE(t, base+"/bookings/hook-1/events?after="+evs[len(evs)-2].id, "")
	if len(after) != 1 || after[0].typ != events.KindCampaignCompleted.Type {
		t.Fatalf("?after: %v", after)
	}

	want := expectedDeliveries(evs)
	waitDeliveries(t, rcv, want)
	for _, p := range []string{"/bookings/hook-1", "/bookings?status=completed", "/bookings?limit=0", "/bookings/x/approve-all", "/nope"} {
		method := "GET"
		if strings.HasSuffix(p, "approve-all") {
			method = "POST"
		}
		apitest.JSON(t, method, base+p, nil, auth)
	}
	apitest.JSON(t, "POST", base+"/bookings/hook-1/reject", map[string]any{"reason": "late"}, auth)
	apitest.JSON(t, "POST", base+"/bookings/hook-1/approve", map[string]any{"approved_quote_ids": []string{"x"}}, auth)
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// expectedDeliveries are the ids of the stream's events a webhook gets.
func expectedDeliveries(evs []sseEvent) map[string]string {
	kinds := map[string]bool{}
	for _, k := range notifier.Kinds {
		kinds[k.Type] = true
	}
	want := map[string]string{}
	for _, e := range evs {
		if kinds[e.typ] {
			want[e.ce["id"].(string)] = e.typ
		}
	}
	return want
}

func waitDeliveries(t *testing.T, rcv *receiver, want map[string]string) {
	t.Helper()
	checkfor.Check(t, 30*time.Second, 100*time.Millisecond, func() error {
		got := rcv.delivered()
		missing := 0
		for id := range want {
			if got[id] == 0 {
				missing++
			}
		}
		if missing > 0 {
			return fmt.Errorf("%d of %d deliveries missing: got %v, want %v", missing, len(want), got, want)
		}
		return nil
	})
	types := map[string]bool{}
	for _, ty := range want {
		types[ty] = true
	}
	for _, k := range []events.Kind{events.KindPortfolioProposed, events.KindPortfolioApproved, events.KindDealBooked, events.KindCampaignCompleted} {
		if !types[k.Type] {
			t.Fatalf("no %s among the deliveries %v", k.Name, want)
		}
	}
}

// TestWebhookDeliveriesSurviveRestart stops the process right after the
// first delivery and starts a new one on the same store: every status change
// and deal still reaches the webhook, at least once.
func TestWebhookDeliveriesSurviveRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts the whole process")
	}
	m := startMarket(t)
	dir := t.TempDir()
	a := startApp(t, m, dir, nil)
	rcv := newReceiver(t, 200)
	if code, out := apitest.JSON(t, "POST", "http://"+a.HTTPAddr+"/bookings", booking("hook-restart", map[string]any{"url": rcv.srv.URL, "secret": rcv.secret}), auth); code != 200 {
		t.Fatalf("create: %d %v", code, out)
	}
	select {
	case <-rcv.first:
	case <-time.After(90 * time.Second):
		t.Fatal("no delivery")
	}
	a.Stop()
	b := startApp(t, m, dir, nil)
	_, evs := readSSE(t, "http://"+b.HTTPAddr+"/bookings/hook-restart/events", "")
	waitDeliveries(t, rcv, expectedDeliveries(evs))
}

// TestFailingWebhookIsRetriedThenDeadLettered: a receiver answering 500 is
// retried up to MaxDeliver, then the event is dead-lettered with the reason.
func TestFailingWebhookIsRetriedThenDeadLettered(t *testing.T) {
	m := startMarket(t)
	a := startApp(t, m, t.TempDir(), func(sc *bus.StageConfig) {
		if sc.Name == notifier.Stage {
			sc.MaxDeliver, sc.RetryBase, sc.RetryMax = 3, 20*time.Millisecond, 50*time.Millisecond
		}
	})
	rcv := newReceiver(t, 500)
	if code, out := apitest.JSON(t, "POST", "http://"+a.HTTPAddr+"/bookings", booking("hook-500", map[string]any{"url": rcv.srv.URL, "secret": rcv.secret}), auth); code != 200 {
		t.Fatalf("create: %d %v", code, out)
	}
	_, evs := readSSE(t, "http://"+a.HTTPAddr+"/bookings/hook-500/events", "")
	want := expectedDeliveries(evs)
	cons, err := a.Bus.JS.OrderedConsumer(t.Context(), bus.StreamDLQ, jetstream.OrderedConsumerConfig{FilterSubjects: []string{bus.DLQPrefix + notifier.Stage}})
	if err != nil {
		t.Fatal(err)
	}
	dead := map[string]bool{}
	deadline := time.Now().Add(30 * time.Second)
	for len(dead) < len(want) && time.Now().Before(deadline) {
		msg, err := cons.Next(jetstream.FetchMaxWait(time.Second))
		if err != nil {
			continue
		}
		e, err := events.Decode(events.Header(msg.Headers()), msg.Data())
		if err != nil {
			t.Fatal(err)
		}
		if r := msg.Headers().Get(bus.HeaderDLQReason); !strings.Contains(r, "max deliveries (3) exhausted") || !strings.Contains(r, "answered 500") {
			t.Fatalf("dead-letter reason %q", r)
		}
		dead[e.ID()] = true
	}
	got := rcv.delivered()
	for id := range want {
		if !dead[id] || got[id] != 3 {
			t.Fatalf("event %s (%s): dead-lettered %v after %d attempts, want 3", id, want[id], dead[id], got[id])
		}
	}
}

// TestNotifyURLPrivateRefused: without --allow-private a webhook on a
// private address is a 422 on notify.url, before anything is stored.
func TestNotifyURLPrivateRefused(t *testing.T) {
	h := api.New(nil, nil, "", zerolog.Nop(), api.Options{})
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, u := range []string{"http://127.0.0.1:9/hook", "http://10.0.0.1/", "http://localhost/x", "http://169.254.169.254/"} {
		code, out := apitest.JSON(t, "POST", srv.URL+"/bookings", booking("c-1", map[string]any{"url": u, "secret": "0123456789abcdef"}), nil)
		if code != 422 || out["field"] != "notify.url" {
			t.Fatalf("%s: %d %v", u, code, out)
		}
	}
}

// TestOpenAPICheckCatchesDrift: the checker refuses an undocumented status,
// a body off its schema and an undocumented route.
func TestOpenAPICheckCatchesDrift(t *testing.T) {
	get, _ := http.NewRequest("GET", "http://x/bookings/c-1", nil)
	h := http.Header{"Content-Type": {"application/json"}}
	if err := apitest.Validate(get, 418, h, []byte(`{"error":"x","detail":"y"}`)); err == nil {
		t.Fatal("undocumented status accepted")
	}
	if err := apitest.Validate(get, 200, h, []byte(`{"job_id":1}`)); err == nil {
		t.Fatal("body off its schema accepted")
	}
	if err := apitest.Validate(get, 404, h, []byte(`{"error":"not_found","detail":"Job not found"}`)); err != nil {
		t.Fatal(err)
	}
	other, _ := http.NewRequest("DELETE", "http://x/bookings/c-1", nil)
	if err := apitest.Validate(other, 200, h, []byte(`{}`)); err == nil {
		t.Fatal("undocumented route accepted")
	}
}

// TestEventStreamOutlivesReadTimeout: a stream waiting for an approval stays
// open past the server's ReadTimeout with heartbeats, then carries the
// approval through to CampaignCompleted and closes.
func TestEventStreamOutlivesReadTimeout(t *testing.T) {
	m := startMarket(t)
	a := startApp(t, m, t.TempDir(), nil)
	base := "http://" + a.HTTPAddr
	b := booking("sse-wait", nil)
	b["auto_approve"] = false
	if code, out := apitest.JSON(t, "POST", base+"/bookings", b, auth); code != 200 {
		t.Fatalf("create: %d %v", code, out)
	}
	srv := httptest.NewUnstartedServer(api.New(a.Bus, a.Campaigns, apiKey, zerolog.Nop(), api.Options{Heartbeat: 100 * time.Millisecond}))
	srv.Config.ReadTimeout = 300 * time.Millisecond
	srv.Start()
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/bookings/sse-wait/events", nil)
	req.Header.Set("X-API-Key", apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("headers %v", resp.Header)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 8<<20)
	var (
		heartbeats int
		approved   bool
		last       string
		start      = time.Now()
	)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == ": heartbeat":
			heartbeats++
		case strings.HasPrefix(line, "event: "):
			last = line[7:]
		}
		if !approved && last == events.KindPortfolioProposed.Type && time.Since(start) > time.Second && heartbeats > 3 {
			approved = true
			if code, out := apitest.JSON(t, "POST", base+"/bookings/sse-wait/approve-all", nil, auth); code != 200 {
				t.Fatalf("approve: %d %v", code, out)
			}
		}
	}
	if !approved || last != events.KindCampaignCompleted.Type || ctx.Err() != nil {
		t.Fatalf("approved %v, last event %q, heartbeats %d, err %v", approved, last, heartbeats, sc.Err())
	}
}

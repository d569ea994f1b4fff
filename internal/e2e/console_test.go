package e2e

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/dealflow/dealflow/internal/api"
	"github.com/dealflow/dealflow/internal/checkfor"
)

// The console's browser tests drive headless Chromium (Debian's `chromium`
// package; .ci/run installs it) against a real stack: embedded JetStream,
// every stage, the bookings API and the sandbox market.

// chromiumPath finds the browser. Missing, the test fails in CI (CI set) and
// is skipped elsewhere.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "chromium is not installed: the console's browser tests need it (apt-get install -y chromium; .ci/run installs it)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg + "; skipped because CI is not set")
	return ""
}

// artifactsDir is where screenshots go: $DEALFLOW_ARTIFACTS, else a temp dir.
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("DEALFLOW_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	dir = filepath.Join(dir, t.Name())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

type browserTab struct {
	t   *testing.T
	ctx context.Context
	dir string
}

// newBrowser starts headless Chromium (no sandbox: CI runs as root; no GPU)
// and returns its first tab.
func newBrowser(t *testing.T) *browserTab {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1280, 1000))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil { // starts the browser, with no timeout
		t.Fatalf("start chromium: %v", err)
	}
	watchConsole(t, ctx)
	return &browserTab{t: t, ctx: ctx, dir: artifactsDir(t)}
}

// watchConsole fails the test on an uncaught exception or a Content
// Security Policy violation in the tab (error answers the test provokes,
// 401, 409 and 422, are logged only).
func watchConsole(t *testing.T, ctx context.Context) {
	var mu sync.Mutex
	var bad []string
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.IsException() || strings.Contains(m.Text, "Content Security Policy") {
				mu.Lock()
				bad = append(bad, m.String())
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range bad {
			t.Errorf("browser console: %s", m)
		}
	})
}

// newTab opens another tab of the same browser.
func (b *browserTab) newTab() *browserTab {
	ctx, cancel := chromedp.NewContext(b.ctx)
	b.t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		b.t.Fatal(err)
	}
	watchConsole(b.t, ctx)
	return &browserTab{t: b.t, ctx: ctx, dir: b.dir}
}

func (b *browserTab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
		b.t.Fatalf("%s: %v", what, err)
	}
}

// click clicks the element selector names, in one turn of the page's
// JavaScript, as soon as it is there and enabled. A live view re-renders
// its elements as events arrive: chromedp.Click resolves a node, then
// clicks it, and a node replaced in between is gone ("Could not find node
// with given id").
func (b *browserTab) click(what, selector string) {
	b.t.Helper()
	sel, _ := json.Marshal(selector)
	b.wait(what, fmt.Sprintf(`(() => { const e = document.querySelector(%s); if (!e || e.disabled) return false; e.click(); return true; })()`, sel),
		30*time.Second)
}

// wait polls a JavaScript condition until it is true.
func (b *browserTab) wait(what, cond string, timeout time.Duration) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout+5*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](cond, chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
		b.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
		body, _ := eval[string](b, `document.querySelector('main').innerText.slice(0, 3000)`)
		b.t.Fatalf("waiting for %s (%s): %v\npage:\n%s", what, cond, err, body)
	}
}

func eval[T any](b *browserTab, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr))
}

func mustEval[T any](b *browserTab, expr string) T {
	b.t.Helper()
	v, err := eval[T](b, expr)
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// shot saves a full-page PNG screenshot as a test artifact and returns it.
func (b *browserTab) shot(name string) []byte {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return nil
	}
	p := filepath.Join(b.dir, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s", p)
	return png
}

// waitJob polls the API (the test's own check, not the page's) until the
// job reaches status.
func waitJob(t *testing.T, base, id, status string) api.Job {
	t.Helper()
	var j api.Job
	checkfor.Check(t, 90*time.Second, 200*time.Millisecond, func() error {
		code, body, _ := httpDo(t, "GET", base+"/bookings/"+id, "", nil)
		j = api.Job{}
		if code == 200 && json.Unmarshal(body, &j) == nil && string(j.Status) == status {
			return nil
		}
		return fmt.Errorf("job %s never reached %s: %d %s", id, status, code, body)
	})
	return j
}

const (
	statusIs   = `document.querySelector('#c-status').dataset.status === %q`
	terminalOK = `['completed','partial'].includes(document.querySelector('#c-status').dataset.status) && !document.querySelector('#c-final').hidden`
)

// TestConsoleCampaignApproval drives the console through a campaign: the
// form's field errors, the live view up to awaiting_approval with the
// portfolio and its charts, approving all lines but one, the booked deals
// with their deal ids, the CSV export, the campaign list, and a 409 when
// someone else approved first.
func TestConsoleCampaignApproval(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: skipped with -short")
	}
	b := newBrowser(t)
	s, base := consoleStack(t, "", nil)

	// An invalid budget: the API's 422 message sits next to the budget field.
	b.do("open the form", chromedp.Navigate(base+"/#/new"), chromedp.WaitVisible(chromedp.ID("new-form")),
		chromedp.SetValue(chromedp.ID("f-name"), "Console e2e"), chromedp.SetValue(chromedp.ID("f-budget"), "-5"),
		chromedp.Click(chromedp.ID("f-submit")))
	budgetErr := `document.querySelector('.field-error[data-field="brief.budget"]')`
	b.wait("the budget's error", budgetErr+`.textContent.includes('positive')`, 20*time.Second)
	if !mustEval[bool](b, budgetErr+`.parentElement.contains(document.getElementById('f-budget')) && document.getElementById('f-budget').getAttribute('aria-invalid') === 'true'`) {
		t.Fatal("the budget's message is not next to the budget field")
	}
	if h := mustEval[string](b, `location.hash`); h != "#/new" {
		t.Fatalf("an invalid brief left the form: %s", h)
	}
	b.shot("new-campaign-invalid-budget")

	// A valid brief, without auto-approve: the live view reaches awaiting_approval.
	if mustEval[bool](b, `document.getElementById('f-auto').checked`) {
		t.Fatal("auto-approve is on by default")
	}
	b.do("submit the form", chromedp.SetValue(chromedp.ID("f-budget"), "20000"), chromedp.Click(chromedp.ID("f-submit")))
	b.wait("the campaign page", `location.hash.startsWith('#/c/')`, 20*time.Second)
	id := strings.TrimPrefix(mustEval[string](b, `location.hash`), "#/c/")
	b.wait("awaiting_approval with the portfolio and its charts", fmt.Sprintf(statusIs, "awaiting_approval")+
		` && document.querySelectorAll('#plan tbody tr').length >= 2 && !!document.querySelector('#plan-by-seller svg rect')`+
		` && !!document.querySelector('#plan-by-format svg rect') && !document.querySelector('#approval').hidden`, 90*time.Second)
	lines := mustEval[[]string](b, `[...document.querySelectorAll('#plan tbody tr')].map(r => r.dataset.quoteId)`)
	if mustEval[bool](b, `!document.getElementById('c-csv').hidden`) {
		t.Fatal("the Deals CSV link shows before any deal")
	}
	// One format mix is one bar, however its formats are ordered.
	if bars := mustEval[[]string](b, `[...document.querySelectorAll('#plan-by-format svg text')].map(t => t.textContent)`); slices.Contains(bars, "mobile/video") && slices.Contains(bars, "video/mobile") {
		t.Fatalf("one format mix is two bars: %v", bars)
	}
	// Packages are named as the seller names them, beside their id.
	if !mustEval[bool](b, `[...document.querySelectorAll('#plan tbody tr td:nth-child(3)')].every(td => td.textContent.includes('(') || !td.textContent.startsWith('pkg-'))`) {
		t.Fatal("a plan line shows a bare package id where the name is known")
	}
	if n := mustEval[int](b, `document.querySelectorAll('#sellers tbody tr').length`); n == 0 {
		t.Fatal("no sellers shown")
	}
	if !mustEval[bool](b, `[...document.querySelectorAll('#skipped tbody tr')].some(r => r.innerText.includes('blocked'))`) {
		t.Fatal("the blocked seller's skip is not shown")
	}
	if n := mustEval[int](b, `document.querySelectorAll('#negotiations .nego svg').length`); n == 0 {
		t.Fatal("no negotiation chart")
	}
	if !mustEval[bool](b, `document.querySelector('#sellers tbody').innerText.includes('recommended')`) {
		t.Fatal("the disclosure (tier and why) is not shown")
	}
	b.shot("campaign-awaiting-approval")

	// Untick the first line and approve the rest.
	dropped := lines[0]
	b.do("untick a line", chromedp.Click(chromedp.CSS(`#plan tbody tr:first-child .line-check`)))
	b.wait("the line unticked", `!document.querySelector('#plan tbody tr:first-child .line-check').checked`, 5*time.Second)
	// The charts follow the selection: the unticked line is not counted.
	b.wait("the charts without the unticked line", `document.querySelector('#plan-by-seller h4').textContent.startsWith('Selected spend')`, 5*time.Second)
	b.do("approve the selection", chromedp.Click(chromedp.ID("approve-selected")))
	b.wait("the approval's answer", fmt.Sprintf(`document.querySelector('#approval-msg').textContent.includes('Approved %d lines')`, len(lines)-1), 20*time.Second)
	b.wait("the booked deals", terminalOK+` && document.querySelectorAll('#deals tbody tr').length > 0`, 90*time.Second)
	shown := mustEval[[]string](b, `[...document.querySelectorAll('#deals tbody tr')].map(r => r.querySelector('.deal-id').textContent)`)
	c, err := s.app.Campaigns.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var stored []string
	for _, d := range c.Deals {
		if d.QuoteID == dropped {
			t.Fatalf("the unticked line %s was booked", dropped)
		}
		id := d.DealID
		if d.Protocol == "adcp" {
			id = d.MediaBuyID
		}
		if id == "" {
			t.Fatalf("a deal without a deal id or media buy id: %+v", d)
		}
		stored = append(stored, id)
	}
	slices.Sort(shown)
	slices.Sort(stored)
	if !slices.Equal(shown, stored) {
		t.Fatalf("page shows deals %v, the store holds %v", shown, stored)
	}
	// Both protocol families: an AdCP media buy is a line of the deals
	// table like an IAB deal.
	if n := mustEval[int](b, `document.querySelectorAll('#deals tbody tr[data-protocol="adcp"]').length`); n == 0 {
		t.Fatalf("no AdCP line in the console's deals (store: %v)", stored)
	}
	// Money shown adds up: the spend shown is the sum of the lines shown.
	if !mustEval[bool](b, `(() => { const c = (t) => Math.round(parseFloat(t.replace(/[$,]/g, '')) * 100);
		const lines = [...document.querySelectorAll('#deals tbody tr td:nth-child(7)')].reduce((a, td) => a + c(td.textContent), 0);
		return lines === c(document.getElementById('c-spend').textContent); })()`) {
		t.Fatal("the spend shown is not the sum of the deal lines shown")
	}
	if mustEval[bool](b, `document.getElementById('c-csv').hidden`) {
		t.Fatal("the Deals CSV link is hidden with deals booked")
	}
	if string(c.Status) == "completed" && len(stored) != len(lines)-1 {
		t.Fatalf("completed with %d deals, approved %d lines", len(stored), len(lines)-1)
	}
	png := b.shot("campaign-booked")
	if p := os.Getenv("DEALFLOW_DOCS_SCREENSHOT"); p != "" && png != nil {
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// The CSV export behind the page's link.
	href := mustEval[string](b, `document.getElementById('c-csv').getAttribute('href')`)
	code, body, h := httpDo(t, "GET", base+href, "", nil)
	if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/csv") {
		t.Fatalf("GET %s: %d %s", href, code, h.Get("Content-Type"))
	}
	rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rows[0], api.DealsCSVHeader) || len(rows) != len(stored)+1 {
		t.Fatalf("CSV %q", rows)
	}
	for _, r := range rows[1:] {
		if !slices.Contains(stored, r[4]) && !slices.Contains(stored, r[5]) {
			t.Fatalf("CSV row %q names no booked deal", r)
		}
	}

	// The campaign list: the campaign, its status and the counts.
	b.do("open the list", chromedp.Navigate(base+"/#/"), chromedp.WaitVisible(chromedp.ID("list-view")))
	b.wait("the campaign in the list", fmt.Sprintf(`!!document.querySelector('#jobs tbody tr[data-job=%q]') && document.querySelector('#counts').innerText.includes(%q)`, id, string(c.Status)), 20*time.Second)
	b.shot("campaigns")

	// Someone else approves first: a second campaign awaiting approval, a
	// tab whose live connection is stalled (its EventSource never
	// connects), the approval made through the API, then the tab's own
	// approval answers 409 invalid_state.
	code, body, _ = httpDo(t, "POST", base+"/bookings", "", map[string]any{
		"brief": map[string]any{"name": "Console conflict", "budget": 15000, "start_date": time.Now().AddDate(0, 0, 14).Format("2006-01-02"),
			"end_date": time.Now().AddDate(0, 0, 40).Format("2006-01-02"), "channels": []string{"ctv", "video"},
			"kpis": map[string]any{"target_cpm": 18, "max_cpm": 32}},
		"auto_approve": false})
	if code != 200 {
		t.Fatalf("POST /bookings: %d %s", code, body)
	}
	var created struct {
		JobID string `json:"job_id"`
	}
	if err := json.Unmarshal(body, &created); err != nil {
		t.Fatal(err)
	}
	waitJob(t, base, created.JobID, "awaiting_approval")
	stale := b.newTab()
	if _, err := chromedp.Call(stale.ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
		Source: `window.EventSource = class { constructor() { this.readyState = 0; } addEventListener() {} close() {} };`}); err != nil {
		t.Fatal(err)
	}
	stale.do("open the second campaign", chromedp.Navigate(base+"/#/c/"+created.JobID))
	stale.wait("the approval panel", `!document.querySelector('#approval').hidden`, 20*time.Second)
	if code, body, _ := httpDo(t, "POST", base+"/bookings/"+created.JobID+"/approve-all", "", nil); code != 200 {
		t.Fatalf("the other approver: %d %s", code, body)
	}
	stale.do("approve in the stale tab", chromedp.Click(chromedp.ID("approve-all")))
	stale.wait("the 409", `document.querySelector('#approval-msg').textContent.includes('409 invalid_state')`, 20*time.Second)
	stale.wait("the current status after the 409", `document.querySelector('#c-status').dataset.status !== 'awaiting_approval'`, 20*time.Second)
	stale.shot("approval-conflict-409")
}

// TestConsoleAPIKey: with --api-key the page and its assets load without
// the key, the page asks for it once, keeps it in sessionStorage, sends it
// as X-API-Key (the live view reads the event stream with fetch() and the
// header), and the key never appears in any URL the browser requests.
func TestConsoleAPIKey(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: skipped with -short")
	}
	const key = "console-test-key-7f3a"
	b := newBrowser(t)
	_, base := consoleStack(t, key, nil)

	for _, p := range []string{"/", "/static/app.js", "/static/app.css"} {
		if code, _, _ := httpDo(t, "GET", base+p, "", nil); code != 200 {
			t.Fatalf("GET %s without the key: %d, want 200", p, code)
		}
	}
	for _, p := range []string{"/bookings", "/bookings/x/events", "/bookings/x/deals.csv"} {
		if code, _, _ := httpDo(t, "GET", base+p, "", nil); code != 401 {
			t.Fatalf("GET %s without the key: %d, want 401", p, code)
		}
	}

	var mu sync.Mutex
	var urls []string
	if _, err := chromedp.Call(b.ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Listen(b.ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			mu.Lock()
			urls = append(urls, e.Request.URL)
			mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}

	b.do("open the console", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("key-view")))
	b.shot("api-key-prompt")
	b.do("enter the key", chromedp.SetValue(chromedp.ID("key-input"), key), chromedp.Click(chromedp.CSS(`#key-form button`)))
	b.wait("the campaign list", `!document.querySelector('#list-view').hidden && !document.querySelector('#key-state').hidden`, 20*time.Second)
	if got := mustEval[string](b, `sessionStorage.getItem('dealflow.apiKey')`); got != key {
		t.Fatalf("sessionStorage holds %q", got)
	}

	b.do("open the form", chromedp.Navigate(base+"/#/new"), chromedp.WaitVisible(chromedp.ID("new-form")),
		chromedp.SetValue(chromedp.ID("f-name"), "Keyed console"), chromedp.Click(chromedp.ID("f-auto")), chromedp.Click(chromedp.ID("f-submit")))
	b.wait("the campaign page", `location.hash.startsWith('#/c/')`, 20*time.Second)
	// The flight starts in two weeks: the stream (follow=flight) stays open
	// after CampaignCompleted to follow the booked lines.
	b.wait("the booked deals, live over the keyed stream", terminalOK+` && document.querySelectorAll('#deals tbody tr').length > 0`+
		` && document.querySelector('#c-live').textContent === '● live — following the flight'`+
		` && document.querySelectorAll('#flight-lines .line-card[data-status="scheduled"], #flight-lines .line-card[data-status="not_started"]').length > 0`, 90*time.Second)
	b.shot("api-key-campaign")

	mu.Lock()
	defer mu.Unlock()
	sawStream := false
	for _, u := range urls {
		if strings.Contains(u, key) {
			t.Fatalf("the key is in a URL: %s", u)
		}
		sawStream = sawStream || strings.HasSuffix(u, "/events?follow=flight")
	}
	if !sawStream {
		t.Fatalf("the page never opened the event stream: %v", urls)
	}
}

package adcp

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/dealflow/dealflow/internal/adcpschema"
	"github.com/dealflow/dealflow/internal/checkfor"
	"github.com/dealflow/dealflow/internal/sandbox"
)

const (
	tokenA = "tok-account-a-0123456789"
	tokenB = "tok-account-b-0123456789"
)

func testConfig() Config {
	return Config{
		Tokens: map[string]Principal{
			tokenA: {AccountID: "acc_a", Operator: "agency.example", BrandDomain: "acme.example"},
			tokenB: {AccountID: "acc_b", BrandDomain: "other.example"},
		},
		Proposals:     true,
		ApprovalDelay: 30 * time.Millisecond,
	}
}

// harness serves an agent and validates every call it recorded at cleanup.
type harness struct {
	t     *testing.T
	agent *Agent
	srv   *httptest.Server
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	v, err := adcpschema.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	a := New(cfg)
	srv := httptest.NewServer(a.Handler())
	h := &harness{t: t, agent: a, srv: srv}
	t.Cleanup(func() {
		srv.Close()
		a.Close()
		for i, c := range a.Calls() {
			if err := v.CheckCall(c.Tool, c.Arguments, c.Result, c.IsError); err != nil {
				t.Errorf("call %d %s: %v\nargs %s\nresult %s", i, c.Tool, err, c.Arguments, c.Result)
			}
		}
		for _, w := range a.Webhooks() {
			if err := v.ValidateWebhook(w.Payload); err != nil {
				t.Errorf("webhook: %v\n%s", err, w.Payload)
			}
		}
	})
	return h
}

type bearer struct {
	base  http.RoundTripper
	token string
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if b.token != "" {
		r.Header.Set("Authorization", "Bearer "+b.token)
	}
	return b.base.RoundTrip(r)
}

// call makes one tools/call and returns the structuredContent as a map.
func (h *harness) call(token, tool string, args any) (map[string]any, bool) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil)
	tr := &mcp.StreamableClientTransport{Endpoint: h.srv.URL + "/mcp", HTTPClient: &http.Client{Transport: bearer{http.DefaultTransport, token}}, DisableStandaloneSSE: true}
	sess, err := c.Connect(ctx, tr, nil)
	if err != nil {
		h.t.Fatalf("connect: %v", err)
	}
	defer sess.Close()
	res, err := sess.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		h.t.Fatalf("%s: %v", tool, err)
	}
	b, _ := json.Marshal(res.StructuredContent)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		h.t.Fatalf("%s: structuredContent %s: %v", tool, b, err)
	}
	return m, res.IsError
}

func errCode(m map[string]any) string {
	e, _ := m["adcp_error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

func account() map[string]any { return map[string]any{"account_id": "acc_a"} }

func buyArgsFor(key string, pkgs ...map[string]any) map[string]any {
	ps := make([]any, len(pkgs))
	for i, p := range pkgs {
		ps[i] = p
	}
	return map[string]any{
		"idempotency_key": key, "account": account(), "brand": map[string]any{"domain": "acme.example"},
		"start_time": "asap", "end_time": time.Now().Add(30 * 24 * time.Hour).UTC().Format(time.RFC3339), "packages": ps,
	}
}

func TestCapabilitiesAndProducts(t *testing.T) {
	h := newHarness(t, testConfig())
	caps, isErr := h.call("", "get_adcp_capabilities", map[string]any{})
	if isErr || caps["adcp"] == nil {
		t.Fatalf("capabilities: %v", caps)
	}
	pub, _ := h.call("", "get_products", map[string]any{"buying_mode": "brief", "brief": "video"})
	if pub["cache_scope"] != "public" || len(pub["products"].([]any)) != len(DefaultCatalog()) {
		t.Fatalf("public products: %v", pub)
	}
	for _, p := range pub["products"].([]any) {
		for _, o := range p.(map[string]any)["pricing_options"].([]any) {
			om := o.(map[string]any)
			if om["fixed_price"] != nil || om["floor_price"] != nil {
				t.Fatalf("public tier shows a price: %v", om)
			}
		}
	}
	priv, _ := h.call(tokenA, "get_products", map[string]any{"buying_mode": "brief", "brief": "ctv", "account": account(),
		"filters": map[string]any{"channels": []string{"ctv", "olv"}}, "pagination": map[string]any{"max_results": 2}})
	if priv["cache_scope"] != "account" || len(priv["products"].([]any)) != 2 {
		t.Fatalf("priced page: %v", priv)
	}
	pg := priv["pagination"].(map[string]any)
	if pg["has_more"] != true || pg["cursor"] == nil {
		t.Fatalf("pagination: %v", pg)
	}
	next, _ := h.call(tokenA, "get_products", map[string]any{"buying_mode": "brief", "pagination": map[string]any{"max_results": 2, "cursor": pg["cursor"]},
		"filters": map[string]any{"channels": []string{"ctv", "olv"}}})
	if len(next["products"].([]any)) != 1 || next["pagination"].(map[string]any)["has_more"] != false {
		t.Fatalf("last page: %v", next)
	}
	auction := priv["products"].([]any)[1].(map[string]any)["pricing_options"].([]any)[0].(map[string]any)
	if auction["floor_price"] != 18.0 || auction["price_guidance"] == nil || auction["min_spend_per_package"] != 1000.0 {
		t.Fatalf("auction option: %v", auction)
	}
	if _, isErr := h.call("bogus-token-000000", "get_products", map[string]any{"buying_mode": "brief"}); !isErr {
		t.Fatal("invalid token accepted")
	}
}

func TestProposalFinalizeAndBuy(t *testing.T) {
	h := newHarness(t, testConfig())
	res, _ := h.call(tokenA, "get_products", map[string]any{"buying_mode": "brief", "brief": "display", "account": account(),
		"filters": map[string]any{"channels": []string{"display"}}})
	props := res["proposals"].([]any)
	pid := props[0].(map[string]any)["proposal_id"].(string)
	early, isErr := h.call(tokenA, "create_media_buy", map[string]any{
		"idempotency_key": "proposal-buy-early-0001", "account": account(), "brand": map[string]any{"domain": "acme.example"},
		"start_time": "asap", "end_time": time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339),
		"proposal_id": pid, "total_budget": map[string]any{"amount": 10000, "currency": "USD"}})
	if !isErr || errCode(early) != "PROPOSAL_NOT_COMMITTED" {
		t.Fatalf("draft proposal bought: %v", early)
	}
	fin, _ := h.call(tokenA, "get_products", map[string]any{"buying_mode": "refine",
		"refine": []any{map[string]any{"scope": "proposal", "proposal_id": pid, "action": "finalize"}, map[string]any{"scope": "request", "ask": "cheaper please"}}})
	if fin["proposals"].([]any)[0].(map[string]any)["proposal_status"] != "committed" {
		t.Fatalf("finalize: %v", fin)
	}
	buy, isErr := h.call(tokenA, "create_media_buy", map[string]any{
		"idempotency_key": "proposal-buy-final-0001", "account": account(), "brand": map[string]any{"domain": "acme.example"},
		"start_time": "asap", "end_time": time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339),
		"proposal_id": pid, "total_budget": map[string]any{"amount": 10000, "currency": "USD"}})
	if isErr || buy["media_buy_id"] == nil {
		t.Fatalf("proposal buy: %v", buy)
	}
}

func TestCreateMediaBuyFlows(t *testing.T) {
	var mu sync.Mutex
	var hooks []map[string]any
	var hookAuth []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		mu.Lock()
		hooks = append(hooks, m)
		hookAuth = append(hookAuth, r.Header.Get("Authorization"))
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hook.Close()
	h := newHarness(t, testConfig())

	display := map[string]any{"product_id": "display_news_300x250", "pricing_option_id": "display_news_auction_usd", "budget": 1000, "bid_price": 3.5}
	ok, isErr := h.call(tokenA, "create_media_buy", buyArgsFor("buy-completed-00000001", display))
	if isErr || ok["status"] != "completed" || ok["media_buy_id"] == nil || ok["revision"] != 1.0 {
		t.Fatalf("completed: %v", ok)
	}
	again, _ := h.call(tokenA, "create_media_buy", buyArgsFor("buy-completed-00000001", display))
	if again["replayed"] != true || again["media_buy_id"] != ok["media_buy_id"] {
		t.Fatalf("replay: %v", again)
	}
	other := map[string]any{"product_id": "display_news_300x250", "pricing_option_id": "display_news_auction_usd", "budget": 2000, "bid_price": 3.5}
	conflict, isErr := h.call(tokenA, "create_media_buy", buyArgsFor("buy-completed-00000001", other))
	if !isErr || errCode(conflict) != "IDEMPOTENCY_CONFLICT" {
		t.Fatalf("conflict: %v", conflict)
	}

	low := map[string]any{"product_id": "display_news_300x250", "pricing_option_id": "display_news_auction_usd", "budget": 100, "bid_price": 3.5}
	for name, tc := range map[string]struct {
		token string
		pkg   map[string]any
		code  string
	}{
		"budget":   {tokenA, low, "BUDGET_TOO_LOW"},
		"product":  {tokenA, map[string]any{"product_id": "nope", "pricing_option_id": "x", "budget": 1000}, "PRODUCT_NOT_FOUND"},
		"floor":    {tokenA, map[string]any{"product_id": "display_news_300x250", "pricing_option_id": "display_news_auction_usd", "budget": 1000, "bid_price": 1}, "VALIDATION_ERROR"},
		"no auth":  {"", display, "AUTH_MISSING"},
		"accounts": {tokenB, display, "ACCOUNT_NOT_FOUND"},
	} {
		res, isErr := h.call(tc.token, "create_media_buy", buyArgsFor("buy-err-"+strings.ReplaceAll(name, " ", "-")+"-000000", tc.pkg))
		if !isErr || errCode(res) != tc.code {
			t.Errorf("%s: want %s, got %v", name, tc.code, res)
		}
	}

	ctv := map[string]any{"product_id": "ctv_prime_guaranteed", "pricing_option_id": "ctv_prime_fixed_usd", "budget": 6000}
	args := buyArgsFor("buy-submitted-0000001", ctv)
	args["push_notification_config"] = map[string]any{"url": hook.URL + "/hook", "operation_id": "op-1", "token": "echo-token-0123456789",
		"authentication": map[string]any{"schemes": []string{"Bearer"}, "credentials": "webhook-secret-0123456789abcdef0123456789"}}
	sub, _ := h.call(tokenA, "create_media_buy", args)
	if sub["status"] != "submitted" || sub["task_id"] == nil || sub["media_buy_id"] != nil {
		t.Fatalf("submitted: %v", sub)
	}
	taskID := sub["task_id"].(string)
	var st map[string]any
	checkfor.Until(t, 5*time.Second, "the task to complete", func() bool {
		st, _ = h.call(tokenA, "get_task_status", map[string]any{"task_id": taskID, "include_result": true})
		return st["status"] == "completed"
	})
	if st["result"].(map[string]any)["media_buy_id"] == nil {
		t.Fatalf("task: %v", st)
	}
	checkfor.Until(t, 5*time.Second, "the completion webhook", func() bool { return len(h.agent.Webhooks()) > 0 })
	mu.Lock()
	if len(hooks) != 1 || hooks[0]["status"] != "completed" || hooks[0]["operation_id"] != "op-1" || hookAuth[0] != "Bearer webhook-secret-0123456789abcdef0123456789" {
		t.Errorf("webhook: %v %v", hooks, hookAuth)
	}
	mu.Unlock()

	all := []string{"pending_creatives", "pending_start", "active", "paused", "completed", "rejected", "canceled"}
	buys, _ := h.call(tokenA, "get_media_buys", map[string]any{"account": account(), "status_filter": all})
	if n := len(buys["media_buys"].([]any)); n != 2 {
		t.Fatalf("media buys: %d %v", n, buys)
	}
	// Without ids or a filter, the spec lists active buys only.
	active, _ := h.call(tokenA, "get_media_buys", map[string]any{"account": account()})
	for _, b := range active["media_buys"].([]any) {
		if st := b.(map[string]any)["status"]; st != "active" {
			t.Fatalf("unfiltered listing holds a %v buy: %v", st, active)
		}
	}
}

// TestContextIsEchoedForReconciliation: the context sent with
// create_media_buy comes back on get_media_buys, so a buyer whose answer
// was lost finds its buy again.
func TestContextIsEchoedForReconciliation(t *testing.T) {
	h := newHarness(t, testConfig())
	args := buyArgsFor("buy-context-000000001", map[string]any{"product_id": "display_news_300x250", "pricing_option_id": "display_news_auction_usd", "budget": 1000, "bid_price": 3.5})
	args["context"] = map[string]any{"dealflow_line": "cmp-1/line-a"}
	res, _ := h.call(tokenA, "create_media_buy", args)
	id := res["media_buy_id"]
	if id == nil {
		t.Fatalf("create: %v", res)
	}
	buys, _ := h.call(tokenA, "get_media_buys", map[string]any{"account": account(), "status_filter": []string{"pending_creatives", "pending_start", "active"}})
	found := false
	for _, b := range buys["media_buys"].([]any) {
		m := b.(map[string]any)
		if m["media_buy_id"] == id {
			found = true
			if ctx, _ := m["context"].(map[string]any); ctx["dealflow_line"] != "cmp-1/line-a" {
				t.Fatalf("context not echoed: %v", m)
			}
		}
	}
	if !found {
		t.Fatalf("buy %v not listed: %v", id, buys)
	}
}

func TestRejectedAndPollingName(t *testing.T) {
	cfg := testConfig()
	cfg.RejectSubmitted = true
	cfg.PollingTool = "tasks_get"
	h := newHarness(t, cfg)
	ctv := map[string]any{"product_id": "ctv_prime_guaranteed", "pricing_option_id": "ctv_prime_fixed_usd", "budget": 6000}
	sub, _ := h.call(tokenA, "create_media_buy", buyArgsFor("buy-rejected-00000001", ctv))
	var st map[string]any
	checkfor.Until(t, 5*time.Second, "the task to end", func() bool {
		st, _ = h.call(tokenA, "tasks_get", map[string]any{"task_id": sub["task_id"], "include_result": true})
		return st["status"] != "submitted"
	})
	if st["status"] != "rejected" || st["error"].(map[string]any)["code"] != "TERMS_REJECTED" {
		t.Fatalf("rejected: %v", st)
	}
	buys, _ := h.call(tokenA, "get_media_buys", map[string]any{})
	if len(buys["media_buys"].([]any)) != 0 {
		t.Fatalf("a rejected buy is listed: %v", buys)
	}
}

func TestSigningRequired(t *testing.T) {
	cfg := testConfig()
	cfg.RequireSigningFor = []string{"create_media_buy"}
	h := newHarness(t, cfg)
	caps, _ := h.call(tokenA, "get_adcp_capabilities", map[string]any{})
	rs := caps["request_signing"].(map[string]any)
	if rs["required_for"].([]any)[0] != "create_media_buy" {
		t.Fatalf("request_signing: %v", rs)
	}
	display := map[string]any{"product_id": "display_news_300x250", "pricing_option_id": "display_news_auction_usd", "budget": 1000, "bid_price": 3.5}
	res, isErr := h.call(tokenA, "create_media_buy", buyArgsFor("buy-unsigned-00000001", display))
	if !isErr || errCode(res) != "AUTHORIZATION_REQUIRED" {
		t.Fatalf("unsigned buy: %v", res)
	}
}

func TestFaults(t *testing.T) {
	a := New(testConfig())
	defer a.Close()
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	post := func() (*http.Response, error) {
		return http.Post(srv.URL, "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	}
	a.SetFaults(sandbox.Faults{ErrorRate: 1})
	if r, err := post(); err != nil || r.StatusCode != 503 {
		t.Fatalf("error_rate: %v %v", r, err)
	}
	a.SetFaults(sandbox.Faults{Garbage: true})
	r, err := post()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	if json.Valid(b) {
		t.Fatalf("garbage is JSON: %s", b)
	}
	a.SetFaults(sandbox.Faults{Down: true})
	if _, err := post(); err == nil {
		t.Fatal("down answered")
	}
	a.SetFaults(sandbox.Faults{Latency: 50 * time.Millisecond})
	start := time.Now()
	if _, err := post(); err != nil || time.Since(start) < 50*time.Millisecond {
		t.Fatalf("latency: %v %v", time.Since(start), err)
	}
}

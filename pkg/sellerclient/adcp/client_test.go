package adcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/adcpschema"
	"github.com/dealflow/dealflow/internal/checkfor"
	"github.com/dealflow/dealflow/internal/sandbox"
	sbx "github.com/dealflow/dealflow/internal/sandbox/adcp"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/sellerclient"
)

const token = "tok-client-test-0123456789"

type env struct {
	agent  *sbx.Agent
	srv    *httptest.Server
	client *Client
	seller Seller
	public Seller
}

// newEnv serves a sandbox agent; at cleanup every request the client sent
// and every answer is validated against the AdCP 3.1.19 schemas.
func newEnv(t *testing.T, mod func(*sbx.Config)) *env {
	t.Helper()
	v, err := adcpschema.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	cfg := sbx.Config{
		Tokens:        map[string]sbx.Principal{token: {AccountID: "acc_1", Operator: "agency.example", BrandDomain: "acme.example"}},
		Proposals:     true,
		ApprovalDelay: 30 * time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	a := sbx.New(cfg)
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(func() {
		srv.Close()
		a.Close()
		for i, c := range a.Calls() {
			if err := v.CheckCall(c.Tool, c.Arguments, c.Result, c.IsError); err != nil {
				t.Errorf("call %d %s: %v\nargs %s\nresult %s", i, c.Tool, err, c.Arguments, c.Result)
			}
		}
	})
	c := New(Config{AllowPrivate: true, RetryBase: time.Millisecond})
	s := Seller{URL: srv.URL + "/mcp", Token: token, Account: &AccountRef{AccountID: "acc_1"}, Brand: &BrandRef{Domain: "acme.example"}}
	return &env{agent: a, srv: srv, client: c, seller: s, public: Seller{URL: s.URL}}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestCapabilitiesCachedAndSigning(t *testing.T) {
	e := newEnv(t, func(c *sbx.Config) { c.RequireSigningFor = []string{"create_media_buy"} })
	caps, err := e.client.GetCapabilities(ctx(t), e.seller)
	if err != nil {
		t.Fatal(err)
	}
	if !caps.ADCP.Idempotency.Supported || !caps.SupportsBuyingMode("refine") {
		t.Fatalf("caps: %+v", caps)
	}
	if _, err := e.client.GetCapabilities(ctx(t), e.seller); err != nil {
		t.Fatal(err)
	}
	if n := len(e.agent.Calls()); n != 1 {
		t.Fatalf("capabilities not cached: %d calls", n)
	}
	if !RequiresSigning(caps, OpCreateMediaBuy) || RequiresSigning(caps, OpGetProducts) || RequiresSigning(nil, OpGetProducts) {
		t.Fatal("RequiresSigning")
	}
	if r := SkipReason(caps); !strings.Contains(r, "create_media_buy") {
		t.Fatalf("skip reason %q", r)
	}
	if r := SkipReason(caps, OpGetProducts); r != "" {
		t.Fatalf("skip reason for products %q", r)
	}
	n := len(e.agent.Calls())
	_, err = e.client.CreateMediaBuy(ctx(t), e.seller, buyReq(NewIdempotencyKey(), displayPkg))
	if !errors.Is(err, ErrSigningRequired) || !errors.Is(err, sellerclient.ErrUnsupported) || len(e.agent.Calls()) != n {
		t.Fatalf("unsigned buy was sent or misclassified: %v", err)
	}
	if _, err := e.client.GetProducts(ctx(t), e.seller, ProductsQuery{}); err != nil {
		t.Fatalf("products need no signature: %v", err)
	}
}

func TestProductsTiersPaginationMicros(t *testing.T) {
	e := newEnv(t, nil)
	pub, err := e.client.GetProducts(ctx(t), e.public, ProductsQuery{Brief: "anything"})
	if err != nil {
		t.Fatal(err)
	}
	if pub.CacheScope != "public" || len(pub.Products) != 5 {
		t.Fatalf("public: %+v", pub)
	}
	for _, p := range pub.Products {
		for _, o := range p.PricingOptions {
			if o.Priced {
				t.Fatalf("public price: %+v", o)
			}
		}
	}
	b := events.Brief{Name: "Q1 video", BudgetMicros: events.MustMicros(50000), StartDate: "2027-01-01", EndDate: "2027-01-31",
		Channels: []string{"ctv", "video"}, Geo: []string{"US", "US-NY"}}
	q := QueryFromBrief(b)
	q.PageSize = 1
	res, err := e.client.GetProducts(ctx(t), e.seller, q)
	if err != nil {
		t.Fatal(err)
	}
	if res.Pages != 3 || len(res.Products) != 3 || res.CacheScope != "account" || len(res.Proposals) != 1 {
		t.Fatalf("paged: pages=%d products=%d scope=%s proposals=%d", res.Pages, len(res.Products), res.CacheScope, len(res.Proposals))
	}
	var sawFixed, sawAuction bool
	for _, p := range res.Products {
		for _, o := range p.PricingOptions {
			switch {
			case o.PricingOptionID == "ctv_prime_fixed_usd":
				sawFixed = o.Fixed && o.FixedPriceMicros == 42_500_000 && o.MinSpendMicros == 5_000_000_000
			case o.PricingOptionID == "ctv_ron_auction_usd":
				sawAuction = o.IsAuction() && o.FloorPriceMicros == 18_000_000 && o.Guidance.P75 == 28_000_000
			}
		}
	}
	if !sawFixed || !sawAuction {
		t.Fatalf("pricing: %+v", res.Products)
	}
	// The request carried the brief's filters, account and brand.
	var args map[string]any
	calls := e.agent.Calls()
	_ = json.Unmarshal(calls[len(calls)-1].Arguments, &args)
	f := args["filters"].(map[string]any)
	if f["budget_range"].(map[string]any)["max"] != 50000.0 || f["countries"].([]any)[0] != "US" || len(f["countries"].([]any)) != 1 || args["account"] == nil || args["brand"] == nil {
		t.Fatalf("request: %v", args)
	}
	if len(f["channels"].([]any)) != 2 {
		t.Fatalf("channels: %v", f["channels"])
	}
	var pubArgs map[string]any
	_ = json.Unmarshal(calls[0].Arguments, &pubArgs)
	if pubArgs["account"] != nil || pubArgs["brand"] != nil {
		t.Fatalf("public request names the buyer: %v", pubArgs)
	}
}

func buyReq(key string, pkgs ...PackageRequest) MediaBuyRequest {
	return MediaBuyRequest{IdempotencyKey: key, Account: AccountRef{AccountID: "acc_1"}, Brand: BrandRef{Domain: "acme.example"},
		End: time.Now().Add(30 * 24 * time.Hour), Packages: pkgs}
}

var displayPkg = PackageRequest{ProductID: "display_news_300x250", PricingOptionID: "display_news_auction_usd", BudgetMicros: 1_000_000_000, BidPriceMicros: 3_500_000}

func TestCreateMediaBuyReplayConflictErrors(t *testing.T) {
	e := newEnv(t, nil)
	key := IdempotencyKey("campaign-1", e.seller.URL, "plan-1")
	mb, err := e.client.CreateMediaBuy(ctx(t), e.seller, buyReq(key, displayPkg))
	if err != nil {
		t.Fatal(err)
	}
	if !mb.Booked() || mb.Status != "completed" || mb.Revision != 1 || mb.TotalBudgetMicros != 1_000_000_000 ||
		len(mb.Packages) != 1 || mb.Packages[0].PackageID == "" || mb.Packages[0].BidPriceMicros != 3_500_000 || mb.Replayed {
		t.Fatalf("buy: %+v", mb)
	}
	again, err := e.client.CreateMediaBuy(ctx(t), e.seller, buyReq(key, displayPkg))
	if err != nil || !again.Replayed || again.MediaBuyID != mb.MediaBuyID {
		t.Fatalf("replay: %+v %v", again, err)
	}
	other := displayPkg
	other.BudgetMicros = 2_000_000_000
	_, err = e.client.CreateMediaBuy(ctx(t), e.seller, buyReq(key, other))
	var ae *Error
	if !errors.Is(err, sellerclient.ErrIdempotencyConflict) || !errors.As(err, &ae) || ae.Code != "IDEMPOTENCY_CONFLICT" || ae.Field != "idempotency_key" {
		t.Fatalf("conflict: %v", err)
	}
	low := displayPkg
	low.BudgetMicros = 100_000_000
	_, err = e.client.CreateMediaBuy(ctx(t), e.seller, buyReq(NewIdempotencyKey(), low))
	if !errors.Is(err, sellerclient.ErrValidation) || !strings.Contains(err.Error(), "BUDGET_TOO_LOW") {
		t.Fatalf("budget: %v", err)
	}
	_, err = e.client.CreateMediaBuy(ctx(t), e.seller, buyReq(NewIdempotencyKey(), PackageRequest{ProductID: "nope", PricingOptionID: "x", BudgetMicros: 10_000}))
	if !errors.Is(err, sellerclient.ErrNotFound) {
		t.Fatalf("product: %v", err)
	}
	_, err = e.client.CreateMediaBuy(ctx(t), e.public, buyReq(NewIdempotencyKey(), displayPkg))
	if !errors.Is(err, sellerclient.ErrUnauthorized) {
		t.Fatalf("public buy: %v", err)
	}
	// Refused before sending: no key, short key.
	n := len(e.agent.Calls())
	for _, k := range []string{"", "short", "has spaces in it 0123456789"} {
		if _, err := e.client.CreateMediaBuy(ctx(t), e.seller, buyReq(k, displayPkg)); !errors.Is(err, sellerclient.ErrValidation) {
			t.Fatalf("key %q: %v", k, err)
		}
	}
	if len(e.agent.Calls()) != n {
		t.Fatal("a buy without a valid idempotency key was sent")
	}
	buys, err := e.client.GetMediaBuys(ctx(t), e.seller, mb.MediaBuyID)
	if err != nil || len(buys) != 1 || buys[0].MediaBuyID != mb.MediaBuyID || buys[0].MediaBuyStatus != "pending_start" || buys[0].TotalBudgetMicros != 1_000_000_000 {
		t.Fatalf("get_media_buys: %+v %v", buys, err)
	}
}

func TestSubmittedPollAndWebhook(t *testing.T) {
	var mu sync.Mutex
	var got []map[string]any
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
	}))
	defer hook.Close()
	e := newEnv(t, func(c *sbx.Config) { c.PollingTool = "tasks_get" })
	ctv := PackageRequest{ProductID: "ctv_prime_guaranteed", PricingOptionID: "ctv_prime_fixed_usd", BudgetMicros: 6_000_000_000}
	r := buyReq(NewIdempotencyKey(), ctv)
	r.Push = &PushConfig{URL: hook.URL, OperationID: "op.42", Token: "echo-token-0123456789"}
	mb, err := e.client.CreateMediaBuy(ctx(t), e.seller, r)
	if err != nil || mb.Status != "submitted" || mb.TaskID == "" || mb.Booked() {
		t.Fatalf("submitted: %+v %v", mb, err)
	}
	var st *TaskStatus
	checkfor.Until(t, 5*time.Second, "the task to end", func() bool {
		if st, err = e.client.GetTaskStatus(ctx(t), e.seller, mb.TaskID); err != nil {
			t.Fatal(err)
		}
		return st.Final()
	})
	if st.Status != "completed" || !st.MediaBuy.Booked() || st.MediaBuy.TotalBudgetMicros != 6_000_000_000 {
		t.Fatalf("task: %+v", st)
	}
	checkfor.Until(t, 5*time.Second, "the webhook", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) > 0
	})
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0]["operation_id"] != "op.42" || got[0]["status"] != "completed" {
		t.Fatalf("webhook: %v", got)
	}
}

func TestSubmittedRejected(t *testing.T) {
	e := newEnv(t, func(c *sbx.Config) { c.RejectSubmitted = true })
	ctv := PackageRequest{ProductID: "ctv_prime_guaranteed", PricingOptionID: "ctv_prime_fixed_usd", BudgetMicros: 6_000_000_000}
	mb, err := e.client.CreateMediaBuy(ctx(t), e.seller, buyReq(NewIdempotencyKey(), ctv))
	if err != nil {
		t.Fatal(err)
	}
	var st *TaskStatus
	checkfor.Until(t, 5*time.Second, "the task to end", func() bool {
		if st, err = e.client.GetTaskStatus(ctx(t), e.seller, mb.TaskID); err != nil {
			t.Fatal(err)
		}
		return st.Final()
	})
	if st.Status != "rejected" || st.Error == nil || st.Error.Code != "TERMS_REJECTED" || st.MediaBuy != nil {
		t.Fatalf("rejected: %+v", st)
	}
}

func TestProposalFinalizeBuy(t *testing.T) {
	e := newEnv(t, nil)
	res, err := e.client.GetProducts(ctx(t), e.seller, ProductsQuery{Brief: "display", Channels: []string{"display"}})
	if err != nil || len(res.Proposals) != 1 {
		t.Fatalf("%+v %v", res, err)
	}
	p, err := e.client.FinalizeProposal(ctx(t), e.seller, res.Proposals[0].ProposalID)
	if err != nil || p.Status != "committed" || p.ExpiresAt.IsZero() {
		t.Fatalf("finalize: %+v %v", p, err)
	}
	r := buyReq(NewIdempotencyKey())
	r.ProposalID, r.TotalBudgetMicros = p.ProposalID, 10_000_000_000
	mb, err := e.client.CreateMediaBuy(ctx(t), e.seller, r)
	if err != nil || !mb.Booked() || mb.TotalBudgetMicros != 10_000_000_000 {
		t.Fatalf("proposal buy: %+v %v", mb, err)
	}
	if _, err := e.client.FinalizeProposal(ctx(t), e.seller, "prop_missing"); !errors.Is(err, sellerclient.ErrNotFound) {
		t.Fatalf("unknown proposal: %v", err)
	}
}

func TestFaultsAndRetries(t *testing.T) {
	e := newEnv(t, nil)
	e.agent.SetFaults(sandbox.Faults{ErrorRate: 1})
	_, err := e.client.GetProducts(ctx(t), e.public, ProductsQuery{})
	if !errors.Is(err, sellerclient.ErrUnavailable) || !IsTransient(err) {
		t.Fatalf("503: %v", err)
	}
	e.agent.SetFaults(sandbox.Faults{Garbage: true})
	_, err = e.client.GetProducts(ctx(t), e.public, ProductsQuery{})
	if !errors.Is(err, sellerclient.ErrBadResponse) || IsTransient(err) {
		t.Fatalf("garbage: %v", err)
	}
	e.agent.SetFaults(sandbox.Faults{Oversized: true})
	_, err = e.client.GetProducts(ctx(t), e.public, ProductsQuery{})
	if !errors.Is(err, sellerclient.ErrBodyTooLarge) {
		t.Fatalf("oversized: %v", err)
	}
	e.agent.SetFaults(sandbox.Faults{Down: true})
	_, err = e.client.GetProducts(ctx(t), e.public, ProductsQuery{})
	if !errors.Is(err, sellerclient.ErrUnavailable) {
		t.Fatalf("down: %v", err)
	}
	e.agent.SetFaults(sandbox.Faults{Latency: time.Second})
	short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = e.client.GetProducts(short, e.public, ProductsQuery{})
	var ae *Error
	if !errors.As(err, &ae) || ae.Code != "timeout" {
		t.Fatalf("deadline: %v", err)
	}
	e.agent.SetFaults(sandbox.Faults{})
}

// flaky fails the first n tools/call POSTs with 503, then passes through.
type flaky struct {
	mu   sync.Mutex
	n    int
	next http.Handler
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(strings.NewReader(string(b)))
	f.mu.Lock()
	fail := f.n > 0 && strings.Contains(string(b), `"tools/call"`)
	if fail {
		f.n--
	}
	f.mu.Unlock()
	if fail {
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	f.next.ServeHTTP(w, r)
}

func TestCreateRetriedWithSameKeyIsOneBuy(t *testing.T) {
	e := newEnv(t, nil)
	fl := &flaky{n: 1, next: e.agent.Handler()}
	srv := httptest.NewServer(fl)
	defer srv.Close()
	s := e.seller
	s.URL = srv.URL
	mb, err := e.client.CreateMediaBuy(ctx(t), s, buyReq(NewIdempotencyKey(), displayPkg))
	if err != nil || !mb.Booked() {
		t.Fatalf("retried buy: %+v %v", mb, err)
	}
	if fl.n != 0 {
		t.Fatal("the 503 was never served")
	}
	buys, err := e.client.ListMediaBuys(ctx(t), s)
	if err != nil || len(buys) != 1 {
		t.Fatalf("buys after retry: %d %v", len(buys), err)
	}
}

func TestPrivateGuardAndSecrets(t *testing.T) {
	e := newEnv(t, nil)
	strict := New(Config{})
	_, err := strict.GetCapabilities(ctx(t), e.seller)
	if !errors.Is(err, sellerclient.ErrInvalidURL) {
		t.Fatalf("private URL allowed: %v", err)
	}
	if strings.Contains(err.Error(), token) {
		t.Fatal("token in error")
	}
	for _, f := range []string{"%v", "%s", "%+v", "%#v", "%q", "%x"} {
		if out := fmt.Sprintf(f, e.seller); strings.Contains(out, token) {
			t.Fatalf("%s leaks the token: %s", f, out)
		}
		if out := fmt.Sprintf(f, e.seller.Token); strings.Contains(out, token) {
			t.Fatalf("%s leaks the secret: %s", f, out)
		}
	}
	b, _ := json.Marshal(e.seller)
	if strings.Contains(string(b), token) {
		t.Fatalf("JSON leaks the token: %s", b)
	}
	bad := New(Config{AllowPrivate: true, MaxAttempts: 1})
	_, err = bad.GetProducts(ctx(t), Seller{URL: e.srv.URL, Token: "bogus-token-000000"}, ProductsQuery{})
	if !errors.Is(err, sellerclient.ErrUnauthorized) || strings.Contains(err.Error(), "bogus-token") {
		t.Fatalf("bad token: %v", err)
	}
}

func TestDecimal(t *testing.T) {
	for m, want := range map[events.Micros]string{0: "0", 1: "0.000001", 42_500_000: "42.5", 1_000_000_000: "1000", 12_345_678: "12.345678"} {
		if got := string(decimal(m)); got != want {
			t.Errorf("%d: %s want %s", m, got, want)
		}
	}
}

// TestBuyFailuresSayWhetherTheSellerActed: a create_media_buy that never
// reached the seller (refused connection) is ErrNotSent; one the seller
// answered with an AdCP error is Answered; a buy whose answer was lost is
// neither (its outcome is unknown). The context sent with the buy comes
// back on ListMediaBuys, where such a buy is found again.
func TestBuyFailuresSayWhetherTheSellerActed(t *testing.T) {
	e := newEnv(t, nil)
	refused := httptest.NewServer(http.NotFoundHandler())
	refused.Close()
	s := e.seller
	s.URL = refused.URL + "/mcp"
	_, err := e.client.CreateMediaBuy(ctx(t), s, buyReq(NewIdempotencyKey(), displayPkg))
	if !sellerclient.IsNotSent(err) || Answered(err) {
		t.Fatalf("refused: %v", err)
	}

	low := displayPkg
	low.BudgetMicros = 1_000_000 // below the seller's minimum spend
	_, err = e.client.CreateMediaBuy(ctx(t), e.seller, buyReq(NewIdempotencyKey(), low))
	if !Answered(err) || sellerclient.IsNotSent(err) {
		t.Fatalf("refused by the seller: %v", err)
	}

	// The answer is lost on the way back: sent, not answered.
	lost := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(b)))
		if strings.Contains(string(b), `"create_media_buy"`) {
			rec := httptest.NewRecorder()
			e.agent.Handler().ServeHTTP(rec, r) // booked ...
			hj, _ := w.(http.Hijacker)
			conn, _, _ := hj.Hijack()
			conn.Close() // ... and the answer dropped
			return
		}
		e.agent.Handler().ServeHTTP(w, r)
	}))
	defer lost.Close()
	s.URL = lost.URL + "/mcp"
	req := buyReq(NewIdempotencyKey(), displayPkg)
	req.Context = map[string]string{"dealflow_line": "cmp-x/line-1"}
	oneTry := New(Config{AllowPrivate: true, MaxAttempts: 1})
	_, err = oneTry.CreateMediaBuy(ctx(t), s, req)
	if err == nil || sellerclient.IsNotSent(err) || Answered(err) {
		t.Fatalf("lost answer: %v", err)
	}
	buys, err := e.client.ListMediaBuys(ctx(t), e.seller)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, b := range buys {
		if b.Context["dealflow_line"] == "cmp-x/line-1" {
			found++
		}
	}
	if found != 1 {
		t.Fatalf("buys with the line's context: %d of %d", found, len(buys))
	}
}

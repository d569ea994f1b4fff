package conformance

// AdCP 3.1 conformance: the buyer's AdCP cases through pkg/sellerclient/adcp,
// against the sandbox sales agent (internal/sandbox/adcp) by default, or a
// real AdCP sales agent when ADCP_SELLER_URL is set:
//
//	ADCP_SELLER_URL=https://agent.example/mcp ADCP_SELLER_TOKEN=... \
//	  ADCP_ACCOUNT_ID=... ADCP_BRAND_DOMAIN=acme.example \
//	  go test -count=1 -run ADCP ./test/conformance/
//
// Optional: ADCP_OPERATOR (natural-key account with ADCP_BRAND_DOMAIN when
// ADCP_ACCOUNT_ID is unset), ADCP_BUDGET (per package, currency units,
// default 5000), ADCP_SUBMITTED_PRODUCT (a product the seller sends to human
// approval; without it the submitted case is not applicable on a real seller).
// The suite books real media buys: point it at a sandbox account.
//
// Every tools/call the client sends and every structuredContent it receives
// is captured by a recording transport (JSON or SSE answers) and validated
// against contracts/adcp/3.1.19/ with internal/adcpschema, in both
// modes.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/adcpschema"
	sbx "github.com/dealflow/dealflow/internal/sandbox/adcp"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/sellerclient"
	"github.com/dealflow/dealflow/pkg/sellerclient/adcp"
)

const (
	envADCPURL       = "ADCP_SELLER_URL"
	envADCPToken     = "ADCP_SELLER_TOKEN"
	envADCPAccount   = "ADCP_ACCOUNT_ID"
	envADCPOperator  = "ADCP_OPERATOR"
	envADCPBrand     = "ADCP_BRAND_DOMAIN"
	envADCPBudget    = "ADCP_BUDGET"
	envADCPSubmitted = "ADCP_SUBMITTED_PRODUCT"

	adcpSandboxToken = "adcp-conformance-token-0123456789"
)

// adcpCall is one recorded tools/call.
type adcpCall struct {
	tool    string
	args    json.RawMessage
	result  json.RawMessage
	isError bool
}

// recorder captures tools/call requests and their results at the client.
type recorder struct {
	base  http.RoundTripper
	mu    sync.Mutex
	calls []adcpCall
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		_ = req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	resp, err := r.base.RoundTrip(req)
	var rpc struct {
		Method string `json:"method"`
		Params struct {
			Name      string          `json:"name"`
			Arguments json.RawMessage `json:"arguments"`
		} `json:"params"`
	}
	if err != nil || json.Unmarshal(body, &rpc) != nil || rpc.Method != "tools/call" {
		return resp, err
	}
	rb, rerr := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(rb))
	if rerr != nil {
		return resp, nil
	}
	msg := rb
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		sc := bufio.NewScanner(bytes.NewReader(rb))
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data:"); ok && strings.Contains(d, `"result"`) {
				msg = []byte(strings.TrimSpace(d))
			}
		}
	}
	var out struct {
		Result struct {
			StructuredContent json.RawMessage `json:"structuredContent"`
			IsError           bool            `json:"isError"`
		} `json:"result"`
	}
	if json.Unmarshal(msg, &out) == nil && len(out.Result.StructuredContent) > 0 {
		args := rpc.Params.Arguments
		if len(args) == 0 {
			args = json.RawMessage(`{}`)
		}
		r.mu.Lock()
		r.calls = append(r.calls, adcpCall{rpc.Params.Name, args, out.Result.StructuredContent, out.Result.IsError})
		r.mu.Unlock()
	}
	return resp, nil
}

type adcpTarget struct {
	real      bool
	client    *adcp.Client
	seller    adcp.Seller
	public    adcp.Seller
	budget    events.Micros
	submitted string // product sent to human approval ("" = not applicable)
}

func newADCPTarget(t *testing.T) *adcpTarget {
	t.Helper()
	v, err := adcpschema.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	tg := &adcpTarget{budget: events.MustMicros(5000)}
	var allowPrivate bool
	if u := os.Getenv(envADCPURL); u != "" {
		tg.real = true
		tg.seller = adcp.Seller{URL: u, Token: adcp.Secret(os.Getenv(envADCPToken))}
		if id := os.Getenv(envADCPAccount); id != "" {
			tg.seller.Account = &adcp.AccountRef{AccountID: id}
		}
		if d := os.Getenv(envADCPBrand); d != "" {
			tg.seller.Brand = &adcp.BrandRef{Domain: d}
			if tg.seller.Account == nil && os.Getenv(envADCPOperator) != "" {
				tg.seller.Account = &adcp.AccountRef{Brand: &adcp.BrandRef{Domain: d}, Operator: os.Getenv(envADCPOperator)}
			}
		}
		if b := os.Getenv(envADCPBudget); b != "" {
			f, err := strconv.ParseFloat(b, 64)
			if err != nil {
				t.Fatalf("%s: %v", envADCPBudget, err)
			}
			tg.budget = events.MustMicros(f)
		}
		tg.submitted = os.Getenv(envADCPSubmitted)
		allowPrivate = true // the operator chose the URL
	} else {
		a := sbx.New(sbx.Config{
			Tokens:        map[string]sbx.Principal{adcpSandboxToken: {AccountID: "acc_conformance", BrandDomain: "acme.example"}},
			Proposals:     true,
			ApprovalDelay: 50 * time.Millisecond,
		})
		srv := httptest.NewServer(a.Handler())
		t.Cleanup(func() { srv.Close(); a.Close() })
		tg.seller = adcp.Seller{URL: srv.URL + "/mcp", Token: adcpSandboxToken,
			Account: &adcp.AccountRef{AccountID: "acc_conformance"}, Brand: &adcp.BrandRef{Domain: "acme.example"}}
		tg.submitted = "ctv_prime_guaranteed"
		allowPrivate = true
	}
	tg.public = adcp.Seller{URL: tg.seller.URL}
	rec := &recorder{base: sellerclient.NewGuardedTransport(allowPrivate)}
	tg.client = adcp.New(adcp.Config{HTTPClient: &http.Client{Transport: rec}, AllowPrivate: allowPrivate})
	t.Cleanup(func() {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if len(rec.calls) == 0 {
			t.Error("no tools/call was recorded")
		}
		for i, c := range rec.calls {
			if err := v.CheckCall(c.tool, c.args, c.result, c.isError); err != nil {
				t.Errorf("AdCP call %d %s does not match the 3.1.19 schemas: %v\nargs %s\nresult %s", i, c.tool, err, bodySnippet(c.args), bodySnippet(c.result))
			}
		}
	})
	return tg
}

func (tg *adcpTarget) ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	return c
}

// pick returns a package request for the first priced product the budget
// can buy (skipping the approval product), bidding the floor or p50 on auctions.
func (tg *adcpTarget) pick(t *testing.T, products []adcp.Product, want string) adcp.PackageRequest {
	t.Helper()
	for _, p := range products {
		if (want != "" && p.ProductID != want) || (want == "" && p.ProductID == tg.submitted) {
			continue
		}
		for _, o := range p.PricingOptions {
			if !o.Priced || o.MinSpendMicros > tg.budget {
				continue
			}
			pr := adcp.PackageRequest{ProductID: p.ProductID, PricingOptionID: o.PricingOptionID, BudgetMicros: tg.budget}
			if o.IsAuction() {
				pr.BidPriceMicros = max(o.FloorPriceMicros, 1)
				if o.Guidance != nil && o.Guidance.P50 > pr.BidPriceMicros {
					pr.BidPriceMicros = o.Guidance.P50
				}
			}
			return pr
		}
	}
	t.Fatalf("no priced product within a budget of %s (want %q)", tg.budget, want)
	return adcp.PackageRequest{}
}

func (tg *adcpTarget) buyRequest(pkgs ...adcp.PackageRequest) adcp.MediaBuyRequest {
	r := adcp.MediaBuyRequest{IdempotencyKey: adcp.NewIdempotencyKey(), Start: time.Now().Add(24 * time.Hour).Truncate(time.Second),
		End: time.Now().Add(31 * 24 * time.Hour).Truncate(time.Second), Packages: pkgs}
	if tg.seller.Account != nil {
		r.Account = *tg.seller.Account
	}
	if tg.seller.Brand != nil {
		r.Brand = *tg.seller.Brand
	}
	return r
}

// await polls a submitted task until it is final.
func (tg *adcpTarget) await(t *testing.T, ctx context.Context, taskID string) *adcp.TaskStatus {
	t.Helper()
	for {
		st, err := tg.client.GetTaskStatus(ctx, tg.seller, taskID)
		if err != nil {
			t.Fatalf("get_task_status %s: %v", taskID, err)
		}
		if st.Final() {
			return st
		}
		select {
		case <-ctx.Done():
			t.Fatalf("task %s still %s", taskID, st.Status)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func TestADCPConformance(t *testing.T) {
	tg := newADCPTarget(t)
	ctx := tg.ctx(t)

	caps, err := tg.client.GetCapabilities(ctx, tg.seller)
	if err != nil {
		t.Fatalf("capabilities: %v", err)
	}
	hasMajor3 := false
	for _, m := range caps.ADCP.MajorVersions {
		hasMajor3 = hasMajor3 || m == 3
	}
	if !hasMajor3 || len(caps.SupportedProtocols) == 0 {
		t.Fatalf("capabilities: major versions %v, protocols %v", caps.ADCP.MajorVersions, caps.SupportedProtocols)
	}
	if r := adcp.SkipReason(caps); r != "" {
		t.Logf("not applicable: %s", r)
		return
	}

	t.Run("public products", func(t *testing.T) {
		res, err := tg.client.GetProducts(ctx, tg.public, adcp.ProductsQuery{Brief: "video and display for a spring campaign"})
		if err != nil {
			if errors.Is(err, sellerclient.ErrUnauthorized) && tg.real {
				t.Logf("not applicable: the seller requires authentication for get_products (%v)", err)
				return
			}
			t.Fatal(err)
		}
		if !tg.real {
			for _, p := range res.Products {
				for _, o := range p.PricingOptions {
					if o.Priced {
						t.Errorf("public tier sees a price on %s", p.ProductID)
					}
				}
			}
		}
	})

	var products []adcp.Product
	t.Run("products with pricing", func(t *testing.T) {
		res, err := tg.client.GetProducts(ctx, tg.seller, adcp.ProductsQuery{Brief: "CTV, online video and display, US", PageSize: 2})
		if err != nil {
			t.Fatal(err)
		}
		products = res.Products
		priced := 0
		for _, p := range res.Products {
			if p.ProductID == "" || len(p.PricingOptions) == 0 {
				t.Errorf("product without id or pricing: %+v", p)
			}
			for _, o := range p.PricingOptions {
				if len(o.Currency) != 3 {
					t.Errorf("%s/%s: currency %q", p.ProductID, o.PricingOptionID, o.Currency)
				}
				if o.Priced {
					priced++
					if o.Fixed && o.FixedPriceMicros <= 0 {
						t.Errorf("%s: fixed price %s", p.ProductID, o.FixedPriceMicros)
					}
				}
			}
		}
		if priced == 0 {
			t.Fatal("no priced pricing option for an authenticated buyer")
		}
		if !tg.real && (res.Pages < 2 || res.CacheScope != "account") {
			t.Errorf("sandbox: pages %d, cache_scope %q", res.Pages, res.CacheScope)
		}
	})
	if len(products) == 0 {
		t.Fatal("no products to buy")
	}

	var key string
	var first *adcp.MediaBuy
	var firstReq adcp.MediaBuyRequest
	t.Run("create_media_buy completed", func(t *testing.T) {
		firstReq = tg.buyRequest(tg.pick(t, products, ""))
		key = firstReq.IdempotencyKey
		mb, err := tg.client.CreateMediaBuy(ctx, tg.seller, firstReq)
		if err != nil {
			t.Fatal(err)
		}
		if mb.Status == "submitted" || mb.Status == "working" {
			st := tg.await(t, ctx, mb.TaskID)
			if st.Status != "completed" || st.MediaBuy == nil {
				t.Fatalf("task ended %s (%v)", st.Status, st.Error)
			}
			if !tg.real {
				t.Fatal("sandbox: an auto-approved product was submitted")
			}
		} else if !mb.Booked() || mb.Revision < 1 || len(mb.Packages) == 0 || mb.Packages[0].PackageID == "" {
			t.Fatalf("completed buy without media_buy_id, revision or package ids: %+v", mb)
		}
		first = mb
	})

	t.Run("idempotent replay", func(t *testing.T) {
		if first == nil {
			t.Fatal("no first buy")
		}
		again, err := tg.client.CreateMediaBuy(ctx, tg.seller, firstReq)
		if err != nil {
			t.Fatal(err)
		}
		if !again.Replayed || again.MediaBuyID != first.MediaBuyID || again.TaskID != first.TaskID {
			t.Fatalf("replay: %+v, first %+v", again, first)
		}
	})

	t.Run("idempotency conflict", func(t *testing.T) {
		other := firstReq
		other.Packages = append([]adcp.PackageRequest(nil), firstReq.Packages...)
		other.Packages[0].BudgetMicros += events.MustMicros(1)
		other.IdempotencyKey = key
		_, err := tg.client.CreateMediaBuy(ctx, tg.seller, other)
		var ae *adcp.Error
		if !errors.Is(err, sellerclient.ErrIdempotencyConflict) || !errors.As(err, &ae) || ae.Code != "IDEMPOTENCY_CONFLICT" {
			t.Fatalf("want IDEMPOTENCY_CONFLICT, got %v", err)
		}
	})

	t.Run("create_media_buy submitted", func(t *testing.T) {
		if tg.submitted == "" {
			t.Logf("not applicable: set %s to a product the seller sends to human approval", envADCPSubmitted)
			return
		}
		mb, err := tg.client.CreateMediaBuy(ctx, tg.seller, tg.buyRequest(tg.pick(t, products, tg.submitted)))
		if err != nil {
			t.Fatal(err)
		}
		if mb.Status != "submitted" || mb.TaskID == "" || mb.Booked() {
			t.Fatalf("want submitted without media_buy_id: %+v", mb)
		}
		st := tg.await(t, ctx, mb.TaskID)
		switch st.Status {
		case "completed":
			if st.MediaBuy == nil || !st.MediaBuy.Booked() {
				t.Fatalf("completed task without a buy: %+v", st)
			}
		case "rejected", "failed", "canceled":
			if tg.real {
				t.Logf("the seller ended the submitted buy %s", st.Status)
			} else {
				t.Fatalf("sandbox: submitted buy ended %s", st.Status)
			}
		}
	})

	t.Run("get_media_buys reconciles", func(t *testing.T) {
		if first == nil || !first.Booked() {
			t.Fatal("no booked buy")
		}
		buys, err := tg.client.GetMediaBuys(ctx, tg.seller, first.MediaBuyID)
		if err != nil {
			t.Fatal(err)
		}
		if len(buys) != 1 || buys[0].MediaBuyID != first.MediaBuyID || buys[0].Revision < 1 || buys[0].TotalBudgetMicros != first.TotalBudgetMicros {
			t.Fatalf("get_media_buys: %+v", buys)
		}
	})
}

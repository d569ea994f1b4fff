// Package sdkseller starts the AdCP sales agents of seller.mjs (built on the
// AdCP TypeScript SDK, @adcp/sdk, pinned by package-lock.json) for Go tests,
// and records every request dealflow sends them.
//
// The agents run in one node process on 127.0.0.1 (random ports): a
// guaranteed seller (every buy goes to IO review: submitted, then polled),
// a non-guaranteed auction seller (auction options only when asked for with
// is_fixed_price false), and a proposal-mode seller (brief -> proposals ->
// finalize -> create_media_buy with proposal_id). All require the Bearer
// token on every request and resolve accounts by brand + operator only.
//
// node and npm come from PATH and the SDK from node_modules beside this
// file, which Start installs with `npm ci` when it is missing. Without node
// or npm Start fails the test with the fix: the tests that use it are named *SDK*, so `go test -run SDK ./...`
// runs exactly them, and they never skip.
package sdkseller

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/adcpschema"
)

// Account is a brand + operator account the sellers know from the start.
type Account struct {
	Brand    string `json:"brand"`
	Operator string `json:"operator"`
}

// Config is what seller.mjs is started with.
type Config struct {
	// Token is the Bearer token every request must carry (16+ characters).
	Token string `json:"token"`
	// Accounts exist from the start; Operators may provision more brands
	// with sync_accounts (default: the accounts' operators).
	Accounts  []Account `json:"accounts"`
	Operators []string  `json:"operators,omitempty"`
	// ProposalHoldMS is how long a finalized proposal is held (default 10 minutes).
	ProposalHoldMS int `json:"proposal_hold_ms,omitempty"`
}

// Request is one HTTP request an agent received through the recording proxy.
type Request struct {
	Seller        string // guaranteed | auction | proposal
	HTTPMethod    string
	Authorization string
	Status        int
	// Method is the JSON-RPC method (initialize, tools/list, tools/call, ...);
	// Tool and Args are set for tools/call.
	Method string
	Tool   string
	Args   json.RawMessage
	// Result is the tools/call answer's structuredContent, when there was
	// one, and IsError the answer's isError.
	Result  json.RawMessage
	IsError bool
}

// Sellers are the running agents, each behind a recording proxy.
type Sellers struct {
	// Guaranteed, Auction and Proposal are the agents' MCP endpoints as
	// dealflow sees them (the proxies).
	Guaranteed, Auction, Proposal string
	// Direct are the agents' own endpoints by name, bypassing the proxies.
	Direct map[string]string
	// SDKVersion is @adcp/sdk's version; ADCPVersion the AdCP schemas it
	// speaks (3.0.x: dealflow's schemas are 3.1.19).
	SDKVersion, ADCPVersion string
	Token                   string

	mu   sync.Mutex
	reqs []Request
}

// install runs `npm ci` here (the versions package-lock.json pins) when
// node_modules lacks the SDK, so the README's test command alone sets up
// a fresh clone; test packages running at once take turns on a lock file.
func install() error {
	sdk := filepath.Join(Dir(), "node_modules", "@adcp", "sdk", "package.json")
	if _, err := os.Stat(sdk); err == nil {
		return nil
	}
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "dealflow-adcp-sdk-seller.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	defer func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) }()
	if _, err := os.Stat(sdk); err == nil {
		return nil // another package installed it meanwhile
	}
	cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = Dir()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%w: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// Dir is the folder of seller.mjs, package.json and node_modules.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

// Start runs seller.mjs and returns its agents behind recording proxies;
// t's cleanup stops them. A missing node or node_modules fails t with the
// command that fixes it (in CI, .ci/run installs both).
func Start(t testing.TB, cfg Config) *Sellers {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("sdkseller: node is not on PATH (%v): install Node.js 20+ (Debian: apt-get install nodejs npm) and run `npm ci` in %s", err, Dir())
	}
	if err := install(); err != nil {
		t.Fatalf("sdkseller: @adcp/sdk is not installed and `npm ci` in %s failed: %v", Dir(), err)
	}
	doc, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, node, "seller.mjs")
	cmd.Dir = Dir()
	cmd.Env = append(os.Environ(), "ADCP_SDK_SELLER_CONFIG="+string(doc))
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("sdkseller: starting node: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = stdin.Close() // seller.mjs exits when stdin ends
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cancel() // kills this process only (exec.CommandContext)
			<-exited
		}
		cancel()
		if t.Failed() {
			t.Logf("sdkseller: node stderr (last 8 KiB):\n%s", stderr.tail(8<<10))
		}
	})

	type ready struct {
		Guaranteed, Auction, Proposal string
		SDK                           string `json:"sdk"`
		ADCP                          string `json:"adcp"`
	}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	var r ready
	select {
	case l, ok := <-lines:
		if !ok || json.Unmarshal([]byte(l), &r) != nil || r.Guaranteed == "" {
			t.Fatalf("sdkseller: seller.mjs did not start (first line %q); stderr:\n%s", l, stderr.tail(8<<10))
		}
	case <-time.After(90 * time.Second):
		t.Fatalf("sdkseller: seller.mjs did not listen within 90s; stderr:\n%s", stderr.tail(8<<10))
	}
	s := &Sellers{SDKVersion: r.SDK, ADCPVersion: r.ADCP, Token: cfg.Token,
		Direct: map[string]string{"guaranteed": r.Guaranteed, "auction": r.Auction, "proposal": r.Proposal}}
	s.Guaranteed = s.proxy(t, "guaranteed", r.Guaranteed)
	s.Auction = s.proxy(t, "auction", r.Auction)
	s.Proposal = s.proxy(t, "proposal", r.Proposal)
	return s
}

// Name is the agent ("guaranteed", "auction", "proposal") behind a proxy
// endpoint, or "".
func (s *Sellers) Name(endpoint string) string {
	switch strings.TrimSuffix(endpoint, "/") {
	case s.Guaranteed:
		return "guaranteed"
	case s.Auction:
		return "auction"
	case s.Proposal:
		return "proposal"
	}
	return ""
}

// Requests returns what the agents received so far, in order.
func (s *Sellers) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.reqs...)
}

// Forget drops the recorded requests drop says to (a test's deliberate
// mistakes, say), so later checks see only the others.
func (s *Sellers) Forget(drop func(Request) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.reqs[:0]
	for _, r := range s.reqs {
		if !drop(r) {
			kept = append(kept, r)
		}
	}
	s.reqs = kept
}

// proxy puts a recording reverse proxy on 127.0.0.1 in front of target and
// returns its MCP endpoint.
func (s *Sellers) proxy(t testing.TB, name, target string) string {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(&url.URL{Scheme: u.Scheme, Host: u.Host})
		pr.Out.Host = u.Host
	}}
	rp.ModifyResponse = func(resp *http.Response) error {
		rec, _ := resp.Request.Context().Value(recKey{}).(*Request)
		if rec == nil {
			return nil
		}
		rec.Status = resp.StatusCode
		if rec.Method != "tools/call" || resp.StatusCode != http.StatusOK {
			return nil
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
		_ = resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		if err == nil {
			rec.Result, rec.IsError = structuredContent(body)
		}
		return nil
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 4<<20))
		_ = r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := &Request{Seller: name, HTTPMethod: r.Method, Authorization: r.Header.Get("Authorization")}
		var rpc struct {
			Method string `json:"method"`
			Params struct {
				Name      string          `json:"name"`
				Arguments json.RawMessage `json:"arguments"`
			} `json:"params"`
		}
		if json.Unmarshal(body, &rpc) == nil {
			rec.Method = rpc.Method
			if rpc.Method == "tools/call" {
				rec.Tool, rec.Args = rpc.Params.Name, rpc.Params.Arguments
			}
		}
		rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), recKey{}, rec)))
		s.mu.Lock()
		s.reqs = append(s.reqs, *rec)
		s.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return srv.URL + u.Path
}

type recKey struct{}

// structuredContent is the result.structuredContent (and isError) of a
// JSON-RPC answer sent as JSON or as one SSE event.
func structuredContent(body []byte) (json.RawMessage, bool) {
	msg := bytes.TrimSpace(body)
	if !bytes.HasPrefix(msg, []byte("{")) {
		for l := range strings.SplitSeq(string(body), "\n") {
			if d, ok := strings.CutPrefix(l, "data:"); ok && strings.Contains(d, `"result"`) {
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
	if json.Unmarshal(msg, &out) != nil {
		return nil, false
	}
	return out.Result.StructuredContent, out.Result.IsError
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.b.Bytes()
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// String names the agents for test logs.
func (s *Sellers) String() string {
	return fmt.Sprintf("@adcp/sdk %s (AdCP %s): guaranteed %s, auction %s, proposal %s", s.SDKVersion, s.ADCPVersion, s.Guaranteed, s.Auction, s.Proposal)
}

// schemaTool is the 3.1.19 task a tool name stands for: the SDK (AdCP 3.0)
// names the task-status tool tasks_get, AdCP 3.1 get_task_status.
func schemaTool(tool string) string {
	if tool == "tasks_get" || tool == "tasks/get" {
		return "get_task_status"
	}
	return tool
}

// CheckRequests fails t unless every request recorded so far carried the
// Bearer token, every tools/call validates against dealflow's AdCP schemas
// (3.1.19, internal/adcpschema), and every account-scoped task
// (get_products, create_media_buy, get_media_buys, the task status,
// get_media_buy_delivery) named
// the account brand + operator. It returns the number of tools/calls seen.
func (s *Sellers) CheckRequests(t testing.TB, brand, operator string) int {
	t.Helper()
	v, err := adcpschema.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	reqs := s.Requests()
	calls := 0
	for i, r := range reqs {
		if r.Authorization != "Bearer "+s.Token {
			shown := r.Authorization
			if len(shown) > 12 {
				shown = shown[:12] + "…"
			}
			t.Errorf("request %d (%s %s %s to %s) carried Authorization %q, not the seller's token", i, r.HTTPMethod, r.Method, r.Tool, r.Seller, shown)
		}
		if r.Method != "tools/call" {
			continue
		}
		calls++
		args := r.Args
		if len(args) == 0 {
			args = json.RawMessage(`{}`)
		}
		if err := v.ValidateRequest(schemaTool(r.Tool), args); err != nil {
			t.Errorf("request %d %s to %s does not validate against AdCP %s: %v\nargs %s", i, r.Tool, r.Seller, adcpschema.Version, err, snippet(args))
		}
		switch schemaTool(r.Tool) {
		case "get_products", "create_media_buy", "get_media_buys", "get_task_status", "get_media_buy_delivery":
			var a struct {
				Account *struct {
					Brand *struct {
						Domain string `json:"domain"`
					} `json:"brand"`
					Operator string `json:"operator"`
				} `json:"account"`
			}
			if json.Unmarshal(args, &a) != nil || a.Account == nil || a.Account.Operator != operator || a.Account.Brand == nil || a.Account.Brand.Domain != brand {
				t.Errorf("request %d %s to %s does not name the account (brand %s + operator %s): %s", i, r.Tool, r.Seller, brand, operator, snippet(args))
			}
		}
	}
	return calls
}

func snippet(b []byte) string {
	if len(b) > 2000 {
		return string(b[:2000]) + "…"
	}
	return string(b)
}

// mediaBuyStatuses are core/media-buy-status values (3.1.19).
var mediaBuyStatuses = map[string]bool{"pending_creatives": true, "pending_start": true, "active": true, "paused": true,
	"completed": true, "rejected": true, "canceled": true}

// As31 rewrites an SDK answer (AdCP 3.0) the way AdCP 3.1.19 shapes the
// same answer, undoing exactly the differences seen between them, so that
// anything else that differs fails CheckResponses:
//
//   - 3.1 puts the task status in every answer's envelope ("status",
//     required); a 3.0 answer completed at once carries none: "completed";
//   - a 3.0 create_media_buy answer carries the buy's status
//     (pending_creatives, active, ...) in "status", where 3.1 has the task
//     status there and the buy's in "media_buy_status";
//   - a 3.0 error answer carries adcp_error without the "errors" array the
//     3.1 error variants require: errors = [adcp_error].
//
// The client (pkg/sellerclient/adcp) reads both shapes.
func As31(tool string, result json.RawMessage) (json.RawMessage, []string, error) {
	var m map[string]any
	if err := json.Unmarshal(result, &m); err != nil {
		return nil, nil, err
	}
	var diffs []string
	st, _ := m["status"].(string)
	if st == "" {
		m["status"] = "completed"
		diffs = append(diffs, "no task status in the envelope")
	} else if mediaBuyStatuses[st] && st != "completed" && st != "rejected" && st != "canceled" && (tool == "create_media_buy") {
		if _, ok := m["media_buy_status"]; !ok {
			m["media_buy_status"] = st
		}
		m["status"] = "completed"
		diffs = append(diffs, "the media buy's status in the envelope's status")
	}
	if e, ok := m["adcp_error"]; ok {
		if _, has := m["errors"]; !has {
			m["errors"] = []any{e}
			diffs = append(diffs, "adcp_error without errors[]")
		}
	}
	b, err := json.Marshal(m)
	return b, diffs, err
}

// CheckResponses validates every recorded answer against AdCP 3.1.19 after
// As31 and fails t on any difference As31 does not account for. It returns
// the differences seen, counted, for the test log.
func (s *Sellers) CheckResponses(t testing.TB) map[string]int {
	t.Helper()
	v, err := adcpschema.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for i, r := range s.Requests() {
		if r.Method != "tools/call" || len(r.Result) == 0 {
			continue
		}
		doc, diffs, err := As31(r.Tool, r.Result)
		if err != nil {
			t.Errorf("answer %d %s from %s is not a JSON object: %v", i, r.Tool, r.Seller, err)
			continue
		}
		for _, d := range diffs {
			seen[d]++
		}
		args := r.Args
		if len(args) == 0 {
			args = json.RawMessage(`{}`)
		}
		if err := v.CheckCall(schemaTool(r.Tool), args, doc, r.IsError); err != nil {
			t.Errorf("answer %d %s from %s differs from AdCP %s beyond the known 3.0 differences: %v\n%s", i, r.Tool, r.Seller, adcpschema.Version, err, snippet(r.Result))
		}
	}
	return seen
}

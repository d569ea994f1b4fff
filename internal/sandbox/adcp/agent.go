package adcp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/dealflow/dealflow/internal/sandbox"
)

// Call is one recorded tools/call: the arguments the buyer sent and the
// structuredContent the agent answered.
type Call struct {
	Tool      string          `json:"tool"`
	Token     bool            `json:"token"` // an Authorization bearer token was sent
	Arguments json.RawMessage `json:"arguments"`
	Result    json.RawMessage `json:"result"`
	IsError   bool            `json:"is_error"`
}

// Webhook is a push notification the agent sent (or failed to send).
type Webhook struct {
	URL     string          `json:"url"`
	Payload json.RawMessage `json:"payload"`
	Status  int             `json:"status"`
	Err     string          `json:"error,omitempty"`
}

// Agent is a sandbox AdCP sales agent. Create it with New, serve Handler,
// and Close it to stop pending approval timers.
type Agent struct {
	cfg     Config
	catalog map[string]Product
	order   []string
	mcp     *mcp.Server
	handler http.Handler

	mu        sync.Mutex
	faults    sandbox.Faults
	rng       *rand.Rand
	calls     []Call
	webhooks  []Webhook
	idem      map[string]idemEntry // principal account + key
	tasks     map[string]*task
	buys      map[string]*mediaBuy
	buyOrder  []string
	proposals map[string]*proposal
	// delivery holds per-package deliveries set at runtime
	// (SetDelivery), keyed media buy id/package id.
	delivery map[string]sandbox.Delivery
	seq      int
	timers   []*time.Timer
	closed   bool
	wg       sync.WaitGroup
}

type idemEntry struct {
	hash   string
	result map[string]any
	isErr  bool
	at     time.Time
}

type task struct {
	id        string
	account   string
	status    string
	created   time.Time
	updated   time.Time
	completed time.Time
	buy       *mediaBuy // set when completed
	errCode   string
	errMsg    string
	push      *pushConfig
	pending   *mediaBuy // the buy to confirm on approval
	// kind is the task's task_type: create_media_buy ("") or
	// update_media_buy; update applies a submitted update on approval and
	// returns its result, kept in updated.
	kind        string
	update      func(time.Time) map[string]any
	updateReply map[string]any
}

type pushConfig struct {
	URL         string `json:"url"`
	OperationID string `json:"operation_id,omitempty"`
	Token       string `json:"token,omitempty"`
	Auth        *struct {
		Schemes     []string `json:"schemes"`
		Credentials string   `json:"credentials"`
	} `json:"authentication,omitempty"`
}

type mediaBuy struct {
	id        string
	account   string
	status    string
	currency  string
	total     float64
	start     string
	end       string
	confirmed time.Time
	created   time.Time
	revision  int
	packages  []pkg
	context   map[string]any // echoed on get_media_buys, as the spec requires
}

type pkg struct {
	ID              string   `json:"package_id"`
	ProductID       string   `json:"product_id"`
	PricingOptionID string   `json:"pricing_option_id"`
	Budget          float64  `json:"budget"`
	BidPrice        *float64 `json:"bid_price,omitempty"`
	Impressions     float64  `json:"impressions,omitempty"`
	// course is the package's delivery after update_media_buy changes
	// (paused, canceled, a new budget).
	course sandbox.Course
}

type proposal struct {
	id       string
	account  string
	status   string // draft | committed
	expires  time.Time
	products []string
	shares   []float64
	// options are the products' pricing options ("" = the first).
	options []string
	omitted bool
}

// New builds an agent from cfg.
func New(cfg Config) *Agent {
	if cfg.Name == "" {
		cfg.Name = "dealflow-sandbox-adcp"
	}
	if cfg.Products == nil {
		cfg.Products = DefaultCatalog()
	}
	if cfg.MaxPageSize <= 0 {
		cfg.MaxPageSize = 100
	}
	if cfg.ApprovalDelay <= 0 {
		cfg.ApprovalDelay = 200 * time.Millisecond
	}
	if cfg.ProposalHold <= 0 {
		cfg.ProposalHold = time.Hour
	}
	if cfg.PollingTool == "" {
		cfg.PollingTool = "get_task_status"
	}
	if cfg.ReplayTTL < time.Hour {
		cfg.ReplayTTL = 24 * time.Hour
	}
	if cfg.WebhookClient == nil {
		cfg.WebhookClient = &http.Client{Timeout: 5 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(cfg.Name))
	seed := h.Sum64()
	a := &Agent{
		cfg: cfg, catalog: map[string]Product{}, faults: cfg.Faults,
		rng:  rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		idem: map[string]idemEntry{}, tasks: map[string]*task{}, buys: map[string]*mediaBuy{}, proposals: map[string]*proposal{},
	}
	for _, p := range cfg.Products {
		a.catalog[p.ID] = p
		a.order = append(a.order, p.ID)
	}
	a.mcp = mcp.NewServer(&mcp.Implementation{Name: cfg.Name, Version: "3.1.19"}, nil)
	obj := json.RawMessage(`{"type":"object","additionalProperties":true}`)
	tools := map[string]func(context.Context, *principalCtx, json.RawMessage) result{
		"get_adcp_capabilities":  a.capabilities,
		"get_products":           a.getProducts,
		"create_media_buy":       a.createMediaBuy,
		"update_media_buy":       a.updateMediaBuy,
		cfg.PollingTool:          a.taskStatus,
		"get_media_buys":         a.getMediaBuys,
		"get_media_buy_delivery": a.getMediaBuyDelivery,
	}
	for name, fn := range tools {
		a.mcp.AddTool(&mcp.Tool{Name: name, Description: "AdCP 3.1 " + name, InputSchema: obj}, a.wrap(name, fn))
	}
	inner := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return a.mcp },
		&mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: true, DisableLocalhostProtection: true})
	a.handler = a.front(inner)
	return a
}

// Handler serves MCP over streamable HTTP (mount it at the agent's MCP
// endpoint; every path is served).
func (a *Agent) Handler() http.Handler { return a.handler }

// SetFaults replaces the fault knobs at runtime.
func (a *Agent) SetFaults(f sandbox.Faults) {
	a.mu.Lock()
	a.faults = f
	a.mu.Unlock()
}

// Calls returns the recorded tool calls, oldest first.
func (a *Agent) Calls() []Call {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Call(nil), a.calls...)
}

// Buy is a media buy the agent holds, for tests to count what was booked
// from the seller's side.
type Buy struct {
	MediaBuyID string
	Status     string
	// TotalBudget is the buy's budget in its currency (dollars).
	TotalBudget float64
	// Context is the create_media_buy context, as stored.
	Context map[string]any
}

// Buys returns the media buys the agent created, in creation order,
// rejected ones included (with their status).
func (a *Agent) Buys() []Buy {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]Buy, 0, len(a.buyOrder))
	for _, id := range a.buyOrder {
		b := a.buys[id]
		out = append(out, Buy{MediaBuyID: b.id, Status: b.status, TotalBudget: b.total, Context: b.context})
	}
	return out
}

// Webhooks returns the push notifications sent so far.
func (a *Agent) Webhooks() []Webhook {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Webhook(nil), a.webhooks...)
}

// Close stops pending approval timers and waits for in-flight webhooks.
func (a *Agent) Close() {
	a.mu.Lock()
	a.closed = true
	for _, t := range a.timers {
		t.Stop()
	}
	a.mu.Unlock()
	a.wg.Wait()
}

// front applies the fault knobs before the MCP handler, with the IAB
// sellers' fault middleware and JSON-RPC-shaped bodies.
func (a *Agent) front(next http.Handler) http.Handler {
	return sandbox.FaultHandler(a.roll, mcpBodies, next)
}

// mcpBodies are the fault bodies in the MCP (JSON-RPC) wire format.
var mcpBodies = sandbox.FaultBodies{
	Garbage:         []byte("<html><body>502 Bad Gateway?? \x00\xff not json {\"jsonrpc\":"),
	OversizedPrefix: []byte(`{"jsonrpc":"2.0","id":1,"result":{"padding":"`),
	OversizedSuffix: []byte(`"}}`),
}

// roll draws one request's fault decisions from the agent's knobs and RNG.
func (a *Agent) roll() (sandbox.Faults, bool, time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f := a.faults
	fail := f.ErrorRate > 0 && a.rng.Float64() < f.ErrorRate
	var jitter time.Duration
	if f.Jitter > 0 {
		jitter = time.Duration(a.rng.Int64N(int64(f.Jitter) + 1))
	}
	return f, fail, jitter
}

// principalCtx is the authenticated caller of one tool call.
type principalCtx struct {
	token     bool
	valid     bool
	principal Principal
}

// result is a tool's answer: the flat structuredContent and whether it is an error.
type result struct {
	body  map[string]any
	isErr bool
}

// adcpErr builds an error answer: adcp_error plus errors[] (so task
// response schemas with an error branch accept it) and status failed.
func adcpErr(code, msg, field string) result {
	e := map[string]any{"code": code, "message": msg, "recovery": recoveryOf(code)}
	if field != "" {
		e["field"] = field
	}
	return result{body: map[string]any{"status": "failed", "adcp_error": e, "errors": []any{e}}, isErr: true}
}

func recoveryOf(code string) string {
	switch code {
	case "AUTH_INVALID", "ACCOUNT_NOT_FOUND":
		return "terminal"
	case "SERVICE_UNAVAILABLE", "RATE_LIMITED", "CONFLICT", "IDEMPOTENCY_IN_FLIGHT":
		return "transient"
	}
	return "correctable"
}

func (a *Agent) wrap(name string, fn func(context.Context, *principalCtx, json.RawMessage) result) mcp.ToolHandler {
	return func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		args := json.RawMessage(`{}`)
		if req.Params != nil && len(req.Params.Arguments) > 0 {
			args = req.Params.Arguments
		}
		p := a.authenticate(req)
		var res result
		switch {
		case p.token && !p.valid:
			res = adcpErr("AUTH_INVALID", "bearer token not recognised", "")
		case !p.token && name != "get_adcp_capabilities" && name != "get_products":
			res = adcpErr("AUTH_MISSING", "this task needs an Authorization: Bearer token", "")
		case containsStr(a.cfg.RequireSigningFor, name):
			res = adcpErr("AUTHORIZATION_REQUIRED", name+" requires an RFC 9421 signed request", "")
		default:
			var probe map[string]any
			if err := json.Unmarshal(args, &probe); err != nil {
				res = adcpErr("INVALID_REQUEST", "arguments must be a JSON object", "")
			} else {
				res = fn(ctx, &p, args)
			}
		}
		if res.body["status"] == nil {
			res.body["status"] = "completed"
		}
		out, _ := json.Marshal(res.body)
		a.mu.Lock()
		a.calls = append(a.calls, Call{Tool: name, Token: p.token, Arguments: append(json.RawMessage(nil), args...), Result: out, IsError: res.isErr})
		a.mu.Unlock()
		return &mcp.CallToolResult{
			Content:           []mcp.Content{&mcp.TextContent{Text: string(out)}},
			StructuredContent: json.RawMessage(out),
			IsError:           res.isErr,
		}, nil
	}
}

func (a *Agent) authenticate(req *mcp.CallToolRequest) principalCtx {
	var h http.Header
	if req.Extra != nil {
		h = req.Extra.Header
	}
	tok := ""
	if v := h.Get("Authorization"); v != "" {
		if t, ok := strings.CutPrefix(v, "Bearer "); ok {
			tok = strings.TrimSpace(t)
		} else {
			return principalCtx{token: true}
		}
	} else if v := h.Get("X-Adcp-Auth"); v != "" {
		tok = strings.TrimSpace(v)
	}
	if tok == "" {
		return principalCtx{}
	}
	p, ok := a.cfg.Tokens[tok]
	return principalCtx{token: true, valid: ok, principal: p}
}

func (a *Agent) nextID(prefix string) string {
	a.seq++
	return fmt.Sprintf("%s_%06d", prefix, a.seq)
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// canonicalHash hashes the JSON value of raw with sorted keys, so key order
// and whitespace do not make a replay a conflict.
func canonicalHash(raw json.RawMessage) string {
	var v any
	_ = json.Unmarshal(raw, &v)
	b, _ := json.Marshal(v)
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// Package adcp is the buyer's client to AdCP 3.1 sales agents: MCP over
// streamable HTTP (github.com/modelcontextprotocol/go-sdk) with a bearer
// token per seller. It has the guarantees of pkg/sellerclient: one typed
// error (*Error) with stable codes that matches sellerclient's sentinels,
// retries only for read-only calls and for create_media_buy (which always
// carries an idempotency key, so a retry is a replay), capped response
// bodies, sellerclient's private-address guard, and secrets that never print.
//
// AdCP money is a JSON number in a currency; this package converts it to
// integer micros once (events.MicrosFromDollars) and back to an exact decimal
// on the way out, so callers only see events.Micros.
package adcp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.opentelemetry.io/otel/trace"

	"github.com/dealflow/dealflow/pkg/sellerclient"
)

// Defaults applied by New for zero Config fields.
const (
	DefaultMaxBodyBytes    int64 = 4 << 20
	DefaultMaxAttempts           = 3
	DefaultRetryBase             = 100 * time.Millisecond
	DefaultCapabilitiesTTL       = 15 * time.Minute
	DefaultPageSize              = 50
	DefaultMaxPages              = 20
	DefaultUserAgent             = "dealflow-adcp/1"
	maxBackoff                   = 5 * time.Second
)

// Config configures a Client. The zero value is safe for production.
type Config struct {
	// HTTPClient's Transport carries every request (nil: sellerclient's
	// guarded transport, which refuses private addresses after DNS unless
	// AllowPrivate). Its CheckRedirect is replaced: redirects are refused.
	HTTPClient *http.Client
	// AllowPrivate permits loopback/private seller URLs (sandboxes, tests;
	// sellerclient.PrivatePrefixes).
	AllowPrivate bool
	// Allow lists further non-public prefixes to permit; link-local and
	// metadata addresses stay refused (sellerclient.Guard).
	Allow []netip.Prefix
	// MaxBodyBytes caps every response body (default 4 MiB).
	MaxBodyBytes int64
	// MaxAttempts bounds attempts per call, including the first (default 3).
	MaxAttempts int
	// RetryBase is the full-jitter exponential backoff base (default 100ms).
	RetryBase time.Duration
	// CapabilitiesTTL is how long get_adcp_capabilities answers are cached
	// per seller and token (default 15m).
	CapabilitiesTTL time.Duration
	// UserAgent is sent on every request (default "dealflow-adcp/1").
	UserAgent string
	// Now is the clock of the capabilities cache (default time.Now).
	Now func() time.Time
	// Observe, when set, is told about every call attempt: the operation
	// (the AdCP task, e.g. create_media_buy), a code (the HTTP status, or
	// an error class as sellerclient's: timeout, refused, network,
	// bad_response, invalid_url, canceled; or the seller's AdCP error
	// code) and the duration.
	Observe sellerclient.Observer
	// TracerProvider makes a client span of every HTTP request (nil: the
	// global provider; a no-op one makes none), so AdCP calls show in a
	// campaign's trace as IAB calls do, with the traceparent sent.
	TracerProvider trace.TracerProvider
}

// Secret is a credential. It prints as "[REDACTED]" with every fmt verb and
// in JSON, so it cannot leak through logs or events.
type Secret string

// String redacts.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[REDACTED]"
}

// GoString redacts (%#v).
func (s Secret) GoString() string { return `adcp.Secret("` + s.String() + `")` }

// Format redacts for every verb (%s, %v, %q, %x ...).
func (s Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, s.String()) }

// MarshalJSON redacts.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// Seller is one AdCP sales agent and the identity used there: the MCP
// endpoint, the bearer token, and the account and brand the token's
// credentials name. An empty Token is the public tier: no Authorization
// header, and GetProducts sends neither account nor brand.
type Seller struct {
	URL     string
	Token   Secret
	Account *AccountRef
	Brand   *BrandRef
}

// String names the seller without its token.
func (s Seller) String() string {
	if s.Token == "" {
		return "adcp seller " + s.URL + " (public)"
	}
	return "adcp seller " + s.URL + " (token [REDACTED])"
}

// Client is safe for concurrent use.
type Client struct {
	cfg  Config
	base http.RoundTripper
	mcp  *mcp.Client

	mu       sync.Mutex
	caps     map[string]capsEntry
	polls    map[string]string // seller key -> polling tool name
	tools    map[string]toolsEntry
	accounts map[string]accountEntry
}

type capsEntry struct {
	caps *Capabilities
	at   time.Time
}

// New builds a Client, filling defaults.
func New(cfg Config) *Client {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = DefaultRetryBase
	}
	if cfg.CapabilitiesTTL <= 0 {
		cfg.CapabilitiesTTL = DefaultCapabilitiesTTL
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = DefaultUserAgent
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	var base http.RoundTripper
	if cfg.HTTPClient != nil && cfg.HTTPClient.Transport != nil {
		base = cfg.HTTPClient.Transport
	} else if cfg.HTTPClient != nil {
		base = http.DefaultTransport
	} else {
		base = sellerclient.GuardFor(cfg.AllowPrivate, cfg.Allow).Transport()
	}
	base = sellerclient.TracedTransport(base, cfg.TracerProvider)
	return &Client{
		cfg: cfg, base: base,
		mcp:  mcp.NewClient(&mcp.Implementation{Name: "dealflow", Version: "1"}, nil),
		caps: map[string]capsEntry{}, polls: map[string]string{}, tools: map[string]toolsEntry{}, accounts: map[string]accountEntry{},
	}
}

// cachedCaps returns the unexpired cached capabilities of a seller, or nil.
func (c *Client) cachedCaps(u string, tok Secret) *Capabilities {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.caps[sellerKey(u, tok)]; ok && c.cfg.Now().Sub(e.at) < c.cfg.CapabilitiesTTL {
		return e.caps
	}
	return nil
}

// sellerKey identifies a seller and credential for caches without keeping
// the token itself.
func sellerKey(u string, tok Secret) string {
	h := sha256.Sum256([]byte(tok))
	return u + "#" + hex.EncodeToString(h[:8])
}

// tracker records what the HTTP layer saw during one attempt, so errors the
// MCP SDK flattens to strings can still be classified.
type tracker struct {
	mu       sync.Mutex
	status   int
	rpc      string // JSON-RPC method of the last POST (initialize, tools/list, tools/call name)
	err      error
	tooLarge bool
	redirect bool
}

type trackerState struct {
	status   int
	rpc      string
	err      error
	tooLarge bool
	redirect bool
}

func (t *tracker) snapshot() trackerState {
	t.mu.Lock()
	defer t.mu.Unlock()
	return trackerState{t.status, t.rpc, t.err, t.tooLarge, t.redirect}
}

// rpcName names a JSON-RPC request body for errors: its method, and the
// tool of a tools/call ("tools/call get_products"). "" when the body is not
// a small JSON-RPC request.
func rpcName(req *http.Request) string {
	if req.Method != http.MethodPost || req.GetBody == nil || req.ContentLength > 1<<20 {
		return ""
	}
	body, err := req.GetBody()
	if err != nil {
		return ""
	}
	defer body.Close()
	var rpc struct {
		Method string `json:"method"`
		Params struct {
			Name string `json:"name"`
		} `json:"params"`
	}
	if json.NewDecoder(io.LimitReader(body, 1<<20)).Decode(&rpc) != nil {
		return ""
	}
	if rpc.Method == "tools/call" && rpc.Params.Name != "" {
		return rpc.Method + " " + truncate(rpc.Params.Name, 64)
	}
	return truncate(rpc.Method, 64)
}

// roundTripper adds auth and User-Agent headers, records statuses and caps bodies.
type roundTripper struct {
	base  http.RoundTripper
	token Secret
	ua    string
	max   int64
	tr    *tracker
}

func (rt *roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.Header.Set("User-Agent", rt.ua)
	if rt.token != "" {
		r.Header.Set("Authorization", "Bearer "+string(rt.token))
	}
	resp, err := rt.base.RoundTrip(r)
	rt.tr.mu.Lock()
	defer rt.tr.mu.Unlock()
	if err != nil {
		if rt.tr.err == nil {
			rt.tr.err = err
		}
		return nil, err
	}
	if req.Method == http.MethodPost {
		rt.tr.status = resp.StatusCode
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			rt.tr.rpc = rpcName(req)
		}
	}
	if resp.ContentLength > rt.max {
		_ = resp.Body.Close()
		rt.tr.tooLarge = true
		return nil, sellerclient.ErrBodyTooLarge
	}
	resp.Body = &cappedBody{rc: resp.Body, left: rt.max, tr: rt.tr}
	return resp, nil
}

type cappedBody struct {
	rc   io.ReadCloser
	left int64
	tr   *tracker
}

func (c *cappedBody) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// One byte more than the cap means the body is too large.
		var b [1]byte
		if n, _ := c.rc.Read(b[:]); n > 0 {
			c.tr.mu.Lock()
			c.tr.tooLarge = true
			c.tr.mu.Unlock()
			return 0, sellerclient.ErrBodyTooLarge
		}
		return 0, io.EOF
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.rc.Read(p)
	c.left -= int64(n)
	return n, err
}

func (c *cappedBody) Close() error { return c.rc.Close() }

// session opens an MCP session to the seller for one attempt.
func (c *Client) session(ctx context.Context, u string, s Seller, tr *tracker) (*mcp.ClientSession, error) {
	hc := &http.Client{
		Transport: &roundTripper{base: c.base, token: s.Token, ua: c.cfg.UserAgent, max: c.cfg.MaxBodyBytes, tr: tr},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			tr.mu.Lock()
			tr.redirect = true
			tr.mu.Unlock()
			return errors.New("adcp: redirects are refused")
		},
	}
	if c.cfg.HTTPClient != nil {
		hc.Timeout = c.cfg.HTTPClient.Timeout
	}
	t := &mcp.StreamableClientTransport{Endpoint: u, HTTPClient: hc, MaxRetries: -1, DisableStandaloneSSE: true}
	return c.mcp.Connect(ctx, t, nil)
}

// run performs op against the seller with retries on transient failures.
// fn must be safe to repeat: read-only, or idempotent by key.
func (c *Client) run(ctx context.Context, op string, s Seller, fn func(context.Context, *mcp.ClientSession, *tracker) error) error {
	u, err := sellerclient.GuardFor(c.cfg.AllowPrivate, c.cfg.Allow).CheckURL(s.URL)
	if err != nil {
		e := clientError("invalid_url", err.Error(), sellerclient.ErrInvalidURL, sellerclient.ErrNotSent)
		e.Op, e.Seller, e.cause = op, truncate(s.URL, 200), err
		return e
	}
	if strings.ContainsAny(string(s.Token), "\r\n\x00 \t") {
		e := validationError("token contains whitespace or control characters")
		e.Op, e.Seller = op, u
		return e
	}
	if caps := c.cachedCaps(u, s.Token); RequiresSigning(caps, op) {
		e := clientError("signing_required", SkipReason(caps, op), ErrSigningRequired, sellerclient.ErrUnsupported, sellerclient.ErrNotSent)
		e.Op, e.Seller = op, u
		return e
	}
	var last *Error
	// called: some attempt got an MCP session, so the operation itself may
	// have reached the seller. Until then a failure is the session's
	// (initialize), and the seller did nothing the operation asks for.
	called := false
	notSent := func(e *Error) *Error {
		if !called {
			e.kinds = append(e.kinds, sellerclient.ErrNotSent)
		}
		return e
	}
	for attempt := 1; attempt <= c.cfg.MaxAttempts; attempt++ {
		if attempt > 1 {
			if err := sleep(ctx, c.cfg.RetryBase, attempt-1); err != nil {
				break
			}
		}
		tr := &tracker{}
		start := time.Now()
		octx := sellerclient.WithOperation(ctx, op)
		sess, err := c.session(octx, u, s, tr)
		if err == nil {
			called = true
			err = fn(octx, sess, tr)
			_ = sess.Close()
		}
		if err == nil {
			c.observe(op, "200", start)
			return nil
		}
		last = transportError(ctx, err, tr)
		last.Op, last.Seller = op, u
		c.observe(op, attemptCode(last), start)
		if !last.Retryable || ctx.Err() != nil {
			return notSent(last)
		}
	}
	if ctx.Err() != nil {
		e := transportError(ctx, ctx.Err(), &tracker{})
		e.Op, e.Seller = op, u
		if last != nil {
			e.Message += " after: " + last.Message
		}
		return notSent(e)
	}
	return notSent(last)
}

func sleep(ctx context.Context, base time.Duration, n int) error {
	ceil := base << (n - 1)
	if ceil <= 0 || ceil > maxBackoff {
		ceil = maxBackoff
	}
	t := time.NewTimer(time.Duration(rand.Int64N(int64(ceil) + 1)))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// callTool calls one task and returns its flat structuredContent. A result
// with isError or an adcp_error becomes an *Error.
func callTool(ctx context.Context, sess *mcp.ClientSession, tr *tracker, tool string, args json.RawMessage) (json.RawMessage, error) {
	res, err := sess.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		return nil, transportError(ctx, err, tr)
	}
	var raw json.RawMessage
	if res.StructuredContent != nil {
		b, err := json.Marshal(res.StructuredContent)
		if err != nil {
			return nil, badResponse("structuredContent is not JSON", err)
		}
		raw = b
	} else {
		for _, c := range res.Content {
			if t, ok := c.(*mcp.TextContent); ok && json.Valid([]byte(t.Text)) && strings.HasPrefix(strings.TrimSpace(t.Text), "{") {
				raw = json.RawMessage(t.Text)
				break
			}
		}
	}
	var env struct {
		ADCPError json.RawMessage   `json:"adcp_error"`
		Errors    []json.RawMessage `json:"errors"`
		Status    string            `json:"status"`
	}
	if raw != nil {
		if err := json.Unmarshal(raw, &env); err != nil {
			return nil, badResponse("structuredContent is not an object", err)
		}
	}
	switch {
	case len(env.ADCPError) > 0 && string(env.ADCPError) != "null":
		return nil, sellerError(env.ADCPError)
	case res.IsError && len(env.Errors) > 0:
		return nil, sellerError(env.Errors[0])
	case res.IsError:
		msg := "tool error"
		for _, c := range res.Content {
			if t, ok := c.(*mcp.TextContent); ok {
				msg = truncate(t.Text, 500)
				break
			}
		}
		e := clientError("tool_error", msg, sellerclient.ErrBadResponse)
		return nil, e
	case raw == nil:
		return nil, badResponse(tool+" returned no structuredContent", nil)
	}
	return raw, nil
}

// observe reports one call attempt to the configured Observer.
func (c *Client) observe(op, code string, start time.Time) {
	if c.cfg.Observe != nil {
		c.cfg.Observe(op, code, time.Since(start))
	}
}

// attemptCode is the code label of a failed attempt: the seller's AdCP
// error code when it answered with one, the HTTP status it answered, or
// the error class.
func attemptCode(e *Error) string {
	switch {
	case len(e.Details) > 0:
		if _, known := codeKinds[e.Code]; known {
			return e.Code
		}
		return "seller_error" // a label never takes a seller's free text
	case e.HTTPStatus > 0:
		return strconv.Itoa(e.HTTPStatus)
	}
	switch e.Code {
	case "connection_refused":
		return "refused"
	case "timeout", "network", "canceled", "invalid_url":
		return e.Code
	case "private_address":
		return "invalid_url"
	}
	return "bad_response"
}

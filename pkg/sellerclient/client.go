package sellerclient

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// Defaults applied by New for zero Config fields.
const (
	DefaultMaxBodyBytes int64 = 4 << 20
	DefaultMaxAttempts        = 3
	DefaultRetryBase          = 100 * time.Millisecond
	DefaultUserAgent          = "dealflow-sellerclient/1"

	maxBackoff   = 5 * time.Second
	maxRedirects = 5
	maxErrorBody = 64 << 10
)

// Config configures a Client. The zero value is usable and safe for
// production: private seller URLs are refused, bodies are capped at 4 MiB and
// transient failures are retried three times.
type Config struct {
	// HTTPClient is used for every request. Nil means a tuned client whose
	// dialer refuses private addresses (after DNS) unless AllowPrivate is set.
	// A caller-supplied client is copied and its CheckRedirect replaced so
	// cross-host redirects are always refused; with it, private addresses are
	// only refused when they appear literally in the URL.
	HTTPClient *http.Client
	// AllowPrivate permits loopback and private seller and registry
	// addresses (PrivatePrefixes; sandboxes and tests need it). Link-local
	// and metadata addresses stay refused (Guard).
	AllowPrivate bool
	// Allow lists further non-public prefixes to permit (an operator's
	// --allow-private 10.1.0.0/16); NeverPrefixes stay refused.
	Allow []netip.Prefix
	// MaxBodyBytes caps every response body; a larger body fails with
	// ErrBodyTooLarge (and ErrBadResponse). Default 4 MiB.
	MaxBodyBytes int64
	// MaxAttempts bounds the attempts per call, including the first. Default 3.
	MaxAttempts int
	// RetryBase is the base of the exponential backoff with full jitter: the
	// wait before attempt n+1 is uniform in [0, RetryBase*2^(n-1)], capped at 5s.
	// Default 100ms.
	RetryBase time.Duration
	// UserAgent is sent on every request. Default "dealflow-sellerclient/1".
	UserAgent string
	// Observe, when set, is called after every HTTP attempt with the
	// operation, the status or error class and the duration (metrics:
	// telemetry.Metrics.ObserveSellerRequest).
	Observe Observer
	// TracerProvider makes the client spans (every attempt is an
	// OpenTelemetry client span and sends a W3C traceparent header); nil
	// means the global provider, a no-op unless the process installed one.
	TracerProvider trace.TracerProvider
}

// Client is the buyer's HTTP client to seller agents and agent registries.
// It is safe for concurrent use. Per-call deadlines come from the context.
type Client struct {
	cfg   Config
	guard Guard
	hc    *http.Client
	base  http.RoundTripper // the transport under the tracing wrapper
	// injectTrace: tracing is off, so no transport propagates the trace
	// context; once writes it into each request.
	injectTrace bool
}

// New builds a Client, filling defaults for zero Config fields.
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
	if cfg.UserAgent == "" {
		cfg.UserAgent = DefaultUserAgent
	}
	guard := cfg.guard()
	var hc http.Client
	if cfg.HTTPClient != nil {
		hc = *cfg.HTTPClient
	} else {
		hc = http.Client{Transport: newTransport(guard)}
	}
	c := &Client{cfg: cfg, guard: guard, base: hc.Transport}
	hc.Transport, c.injectTrace = tracedTransport(hc.Transport, cfg.TracerProvider)
	hc.CheckRedirect = c.checkRedirect
	c.hc = &hc
	return c
}

// guard is the address guard of the configuration.
func (cfg Config) guard() Guard { return GuardFor(cfg.AllowPrivate, cfg.Allow) }

// newTransport returns a transport tuned for many concurrent sellers: keep-alive
// pools per host, bounded dial and TLS handshake times, no proxy (a proxy would
// hide the real destination from the private-address check), and a dialer
// that passes g on the address actually dialled.
func newTransport(g Guard) *http.Transport {
	return &http.Transport{
		Proxy:             nil,
		DialContext:       g.Dialer().DialContext,
		ForceAttemptHTTP2: true,
		// Many sellers can share a host (a platform serving its sellers
		// under path prefixes): a small per-host pool would close and
		// redial most connections of a wide fetch (a TCP handshake and a
		// TIME_WAIT socket per request), so keep as many idle as a wide
		// stage uses at once (a 1,000-seller fetch on one host).
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		// A request to a seller is a few headers and at most a small JSON
		// body; the 4 KB default write buffer, per connection, is mostly
		// unused: a wide fetch opens a connection or two per seller.
		WriteBufferSize: 1 << 10,
	}
}

// redirectRefusal is returned by checkRedirect and recognised by the retry loop.
type redirectRefusal struct{ from, to string }

// Error describes the refused hop.
func (r *redirectRefusal) Error() string {
	return fmt.Sprintf("redirect from %s to %s refused", r.from, r.to)
}

// checkRedirect follows a redirect only to the same host (an http→https upgrade
// on default ports is allowed, a downgrade is not), so an API key or idempotent
// POST never ends up at a host the caller did not choose.
func (c *Client) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return &redirectRefusal{from: via[0].URL.Redacted(), to: req.URL.Redacted() + " (too many redirects)"}
	}
	prev := via[len(via)-1].URL
	next := req.URL
	ok := sameOrigin(prev, next)
	if !ok && strings.EqualFold(prev.Hostname(), next.Hostname()) &&
		strings.EqualFold(prev.Scheme, "http") && strings.EqualFold(next.Scheme, "https") &&
		prev.Port() == "" && next.Port() == "" {
		ok = true
	}
	if ok && c.guard.checkHost(next.Hostname()) != nil {
		ok = false
	}
	if !ok {
		return &redirectRefusal{from: prev.Redacted(), to: next.Redacted()}
	}
	return nil
}

// Auth carries the seller API key for one call. The seller derives the buyer's
// tier from the key's stored identity, so choosing the key is choosing what
// the seller learns. The zero value is anonymous (public tier).
type Auth struct {
	// APIKey is sent as X-Api-Key, or as "Authorization: Bearer <key>" when
	// Bearer is true. Empty means anonymous.
	APIKey string
	Bearer bool
}

// apply sets the auth headers on h.
func (a Auth) apply(h *headerSetter) {
	if a.APIKey == "" {
		return
	}
	if a.Bearer {
		h.Set("Authorization", "Bearer "+a.APIKey)
	} else {
		h.Set("X-Api-Key", a.APIKey)
	}
}

// validate refuses keys that would corrupt the request headers.
func (a Auth) validate(op string) error {
	if strings.ContainsAny(a.APIKey, "\r\n\x00") || strings.TrimSpace(a.APIKey) != a.APIKey {
		return validationError(op, "", "API key contains whitespace or control characters")
	}
	return nil
}

// call describes one logical request (possibly several attempts).
type call struct {
	op     string
	method string
	url    string
	auth   Auth
	bearer string // registry token, sent as Authorization: Bearer
	body   []byte // marshalled once; identical on every attempt
	// One of decode and stream reads a 2xx answer: decode the body read
	// whole (within MaxBodyBytes), stream the body as it arrives, so that
	// no copy of it is made (the JSON library reads through its own
	// buffers).
	decode func(status int, body []byte) error
	stream func(body io.Reader) error
}

// do runs c with retries on 502/503/504 and network timeouts. The body bytes
// (and so the idempotency key) are identical on every attempt.
func (c *Client) do(ctx context.Context, cl call) error {
	if err := cl.auth.validate(cl.op); err != nil {
		return err
	}
	if strings.ContainsAny(cl.bearer, "\r\n\x00") {
		return validationError(cl.op, cl.url, "registry token contains control characters")
	}
	attempts := c.cfg.MaxAttempts
	var last *Error
	sent := false // an attempt may have reached the seller
	for attempt := 1; attempt <= attempts; attempt++ {
		if attempt > 1 {
			if err := c.sleep(ctx, attempt-1); err != nil {
				return c.ctxError(cl, err, last)
			}
		}
		start := time.Now()
		status, body, derr, err := c.once(ctx, cl)
		if err != nil {
			c.observe(cl.op, 0, err, start)
			if e, ok := err.(*Error); ok {
				if sent {
					e.maybeSent()
				}
				sent = sent || !errors.Is(e, ErrNotSent)
				last = e
				if e.Retryable && attempt < attempts && ctx.Err() == nil {
					continue
				}
				return e
			}
			return err
		}
		sent = true
		if status >= 200 && status < 300 {
			if cl.stream == nil {
				derr = cl.decode(status, body)
			}
			if err := derr; err != nil {
				c.observe(cl.op, status, badResponse(cl.op, cl.url, status, err), start)
				var e *Error
				if errors.As(err, &e) {
					e.Op, e.URL = cl.op, cl.url
					return e
				}
				return badResponse(cl.op, cl.url, status, err)
			}
			c.observe(cl.op, status, nil, start)
			return nil
		}
		c.observe(cl.op, status, nil, start)
		e := parseError(status, body)
		e.Op, e.URL = cl.op, cl.url
		last = e
		if e.Retryable && attempt < attempts {
			continue
		}
		return e
	}
	return last
}

// once performs a single attempt. It returns the status and, for an
// answer outside 2xx or a call that decodes the body read whole, the
// capped body; for a call that streams its 2xx answer, the decoding's
// error (derr). err is the attempt's own failure (the request, the
// connection, reading the body).
func (c *Client) once(ctx context.Context, cl call) (status int, body []byte, derr, err error) {
	var rd io.Reader
	if cl.body != nil {
		rd = bytes.NewReader(cl.body)
	}
	req, err := http.NewRequestWithContext(withOp(ctx, cl.op), cl.method, cl.url, rd)
	if err != nil {
		return 0, nil, nil, (&Error{Code: "invalid_url", Message: err.Error(), Op: cl.op, URL: cl.url, kinds: []error{ErrInvalidURL}, cause: err}).notSent()
	}
	req.Header = c.requestHeader(ctx, cl)

	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, nil, c.transportError(ctx, cl, err)
	}
	defer resp.Body.Close()
	// The body as the seller meant it: a gzip answer (requestHeader asks
	// for one) is decompressed here, and every limit below applies to what
	// it decompresses to, so a small bomb cannot become a large body.
	var raw io.Reader = resp.Body
	announced := resp.ContentLength
	var zerr error
	if strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			raw, zerr = nil, err // no gzip header: the body is unusable
		} else {
			defer zr.Close()
			raw = zr
		}
		announced = -1 // the compressed length says nothing of the body's
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// Error bodies only feed a message: keep a bounded prefix instead of
		// failing, so a 503 with a huge HTML page is still a (retryable) 503.
		var body []byte
		if raw != nil {
			body, _ = io.ReadAll(io.LimitReader(raw, min(c.cfg.MaxBodyBytes, maxErrorBody)))
		}
		return resp.StatusCode, body, nil, nil
	}
	if announced > c.cfg.MaxBodyBytes {
		return 0, nil, nil, c.tooLarge(cl, resp.StatusCode)
	}
	switch {
	case zerr != nil:
		err = zerr
	case cl.stream != nil:
		// Decoded as it arrives, and read to its end all the same: the
		// decoder reads to EOF (it refuses trailing data), and what it
		// leaves after a decoding error is read and dropped here. So a
		// body that is too large, cut short or too slow fails as such,
		// whatever its content, as when it was read whole first.
		lb := &limitedBody{r: raw, left: c.cfg.MaxBodyBytes}
		derr = cl.stream(lb)
		err = lb.finish()
	default:
		body, err = readLimitedSized(raw, c.cfg.MaxBodyBytes, announced)
	}
	if err != nil {
		if errors.Is(err, ErrBodyTooLarge) {
			return 0, nil, nil, c.tooLarge(cl, resp.StatusCode)
		}
		if ctx.Err() != nil {
			return 0, nil, nil, c.ctxError(cl, ctx.Err(), nil)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return 0, nil, nil, &Error{Status: resp.StatusCode, Code: "timeout", Message: "timeout reading body", Op: cl.op, URL: cl.url, Retryable: true, kinds: []error{ErrUnavailable}, cause: err}
		}
		var corrupt flate.CorruptInputError
		if errors.Is(err, gzip.ErrHeader) || errors.Is(err, gzip.ErrChecksum) || errors.As(err, &corrupt) {
			return 0, nil, nil, &Error{Status: resp.StatusCode, Code: "bad_encoding", Message: "response body is not the gzip it says it is", Op: cl.op, URL: cl.url, kinds: []error{ErrBadResponse}, cause: err}
		}
		return 0, nil, nil, &Error{Status: resp.StatusCode, Code: "truncated_body", Message: "response body truncated", Op: cl.op, URL: cl.url, kinds: []error{ErrBadResponse}, cause: err}
	}
	return resp.StatusCode, body, derr, nil
}

// limitedBody reads a response body within a limit and remembers how the
// reading ended, whatever its reader (a decoder) made of the errors: past
// the limit it fails with ErrBodyTooLarge.
type limitedBody struct {
	r    io.Reader
	left int64 // the bytes the limit still allows
	err  error // the first failure: the reader's (not io.EOF), or ErrBodyTooLarge
	eof  bool
}

// Read reads from the body; one byte past the limit fails the body.
func (b *limitedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.eof {
		return 0, io.EOF
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.r.Read(p)
	if int64(n) > b.left {
		b.err = ErrBodyTooLarge
		return 0, b.err
	}
	b.left -= int64(n)
	switch {
	case err == io.EOF:
		b.eof = true
	case err != nil:
		b.err = err
	}
	return n, err
}

// finish reads what is left of the body, dropping it, and returns how the
// reading ended: nil at the end of a body within the limit.
func (b *limitedBody) finish() error {
	if b.err == nil && !b.eof {
		_, _ = io.Copy(io.Discard, b)
	}
	return b.err
}

// requestHeader is the header of one attempt of cl. It is built into a map
// sized for it, with every value in one backing array: a request's headers
// set one by one cost a map growth and an allocation per value, once per
// seller call.
func (c *Client) requestHeader(ctx context.Context, cl call) http.Header {
	hs := headerSetter{h: make(http.Header, 8), vals: make([]string, 0, 8)}
	hs.Set("Accept", "application/json")
	// Asked for here rather than by net/http, which would add the header
	// in a map of its own on every request; once decompresses the answer.
	hs.Set("Accept-Encoding", "gzip")
	hs.Set("User-Agent", c.cfg.UserAgent)
	if cl.body != nil {
		hs.Set("Content-Type", "application/json")
	}
	if cl.bearer != "" {
		hs.Set("Authorization", "Bearer "+cl.bearer)
	}
	cl.auth.apply(&hs)
	if c.injectTrace {
		injectTrace(ctx, &hs)
	}
	return hs.h
}

// headerSetter sets canonical header keys, each value a one-element slice
// of a shared backing array. It is the propagation.TextMapCarrier the trace
// context is injected through.
type headerSetter struct {
	h    http.Header
	vals []string
}

// Set replaces key's values with value.
func (s *headerSetter) Set(key, value string) {
	switch key { // the carrier's keys, canonical without an allocation
	case "traceparent":
		key = "Traceparent"
	case "tracestate":
		key = "Tracestate"
	default:
		key = http.CanonicalHeaderKey(key)
	}
	s.vals = append(s.vals, value)
	s.h[key] = s.vals[len(s.vals)-1 : len(s.vals) : len(s.vals)]
}

// Get returns key's first value.
func (s *headerSetter) Get(key string) string { return s.h.Get(key) }

// Keys lists the keys set.
func (s *headerSetter) Keys() []string {
	keys := make([]string, 0, len(s.h))
	for k := range s.h {
		keys = append(keys, k)
	}
	return keys
}

// tooLarge is the oversized-body error.
func (c *Client) tooLarge(cl call, status int) *Error {
	return &Error{Status: status, Code: "body_too_large", Message: fmt.Sprintf("response body exceeds %d bytes", c.cfg.MaxBodyBytes), Op: cl.op, URL: cl.url, kinds: []error{ErrBodyTooLarge, ErrBadResponse}}
}

// transportError classifies a failure of http.Client.Do.
func (c *Client) transportError(ctx context.Context, cl call, err error) error {
	if ctx.Err() != nil {
		return c.ctxError(cl, ctx.Err(), nil)
	}
	var rr *redirectRefusal
	if errors.As(err, &rr) {
		return &Error{Code: "redirect_refused", Message: rr.Error(), Op: cl.op, URL: cl.url, kinds: []error{ErrRedirectRefused, ErrBadResponse}, cause: err}
	}
	if errors.Is(err, errPrivateDial) {
		return (&Error{Code: "private_address", Message: "destination resolves to an address the private-address guard refuses (" + c.guard.String() + ")", Op: cl.op, URL: cl.url, kinds: []error{ErrInvalidURL}, cause: err}).notSent()
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return (&Error{Code: "connection_refused", Message: "connection refused", Op: cl.op, URL: cl.url, kinds: []error{ErrUnavailable}, cause: err}).notSent()
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		e := &Error{Code: "timeout", Message: "network timeout", Op: cl.op, URL: cl.url, Retryable: true, kinds: []error{ErrUnavailable}, cause: err}
		if BeforeSending(err) { // a dial timeout: nothing was sent
			e.notSent()
		}
		return e
	}
	e := &Error{Code: "network", Message: "network error", Op: cl.op, URL: cl.url, kinds: []error{ErrUnavailable}, cause: err}
	if BeforeSending(err) {
		e.Code, e.Message = "unreachable", "connection failed"
		e.notSent()
	}
	return e
}

// ctxError reports the caller's context ending. A deadline is ErrUnavailable
// (the seller did not answer in time, transient); a cancellation is only the
// context error.
func (c *Client) ctxError(cl call, err error, last *Error) error {
	e := &Error{Code: "canceled", Message: "call canceled", Op: cl.op, URL: cl.url, cause: err}
	if errors.Is(err, context.DeadlineExceeded) {
		e.Code, e.Message, e.Retryable, e.kinds = "timeout", "deadline exceeded", true, []error{ErrUnavailable}
	}
	if last != nil {
		e.Status = last.Status
		e.Message += " after: " + last.Message
	}
	return e
}

// sleep waits for the full-jitter backoff before retry n (n>=1).
func (c *Client) sleep(ctx context.Context, n int) error {
	ceil := c.cfg.RetryBase << (n - 1)
	if ceil <= 0 || ceil > maxBackoff {
		ceil = maxBackoff
	}
	d := time.Duration(rand.Int64N(int64(ceil) + 1))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// readLimited reads at most max bytes; more fails with ErrBodyTooLarge.
func readLimited(r io.Reader, max int64) ([]byte, error) {
	return readLimitedSized(r, max, -1)
}

// readLimitedSized is readLimited with the body's announced length (-1:
// unknown): a buffer of that size, when it is within max, is read into
// without growing. The announcement is only a hint; the limit still holds
// whatever the seller sends.
func readLimitedSized(r io.Reader, max, announced int64) ([]byte, error) {
	lr := io.LimitReader(r, max+1)
	var b []byte
	var err error
	if announced >= 0 && announced <= max {
		b = make([]byte, 0, announced+1) // +1: EOF is seen without a grow
		for {
			n, rerr := lr.Read(b[len(b):cap(b)])
			b = b[:len(b)+n]
			if rerr != nil {
				if rerr != io.EOF {
					err = rerr
				}
				break
			}
			if len(b) == cap(b) {
				b = append(b, 0)[:len(b)] // the seller sent more than announced: grow
			}
		}
	} else {
		b, err = io.ReadAll(lr)
	}
	if int64(len(b)) > max {
		return nil, ErrBodyTooLarge
	}
	return b, err
}

// getJSON is the common GET-and-decode path: decode reads the body whole.
func (c *Client) getJSON(ctx context.Context, op, u string, auth Auth, decode func([]byte) error) error {
	return c.do(ctx, call{op: op, method: http.MethodGet, url: u, auth: auth, decode: func(_ int, b []byte) error { return decode(b) }})
}

// getStream is getJSON for a decoder that reads the body as it arrives.
func (c *Client) getStream(ctx context.Context, op, u string, auth Auth, decode func(io.Reader) error) error {
	return c.do(ctx, call{op: op, method: http.MethodGet, url: u, auth: auth, stream: decode})
}

// postJSON marshals v once and POSTs it; decode reads the answer whole.
func (c *Client) postJSON(ctx context.Context, op, u string, auth Auth, v any, decode func([]byte) error) error {
	body, err := json.Marshal(v)
	if err != nil {
		return validationError(op, u, "cannot encode request: "+err.Error())
	}
	return c.do(ctx, call{op: op, method: http.MethodPost, url: u, auth: auth, body: body, decode: func(_ int, b []byte) error { return decode(b) }})
}

// postStream is postJSON for a decoder that reads the answer as it arrives.
func (c *Client) postStream(ctx context.Context, op, u string, auth Auth, v any, decode func(io.Reader) error) error {
	body, err := json.Marshal(v)
	if err != nil {
		return validationError(op, u, "cannot encode request: "+err.Error())
	}
	return c.do(ctx, call{op: op, method: http.MethodPost, url: u, auth: auth, body: body, stream: decode})
}

// sellerURL validates a seller base URL for op.
func (c *Client) sellerURL(op, raw string) (string, error) {
	n, err := c.checkTarget(raw)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.Op = op
		}
		return "", err
	}
	return n, nil
}

// queryOf builds url.Values from alternating key/value pairs, skipping empty values.
func queryOf(kv ...string) url.Values {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			q.Set(kv[i], kv[i+1])
		}
	}
	return q
}

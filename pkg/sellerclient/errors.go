package sellerclient

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"unicode/utf8"
)

// Sentinel errors. Every error the Client returns for a failed call is an
// *Error that matches one or more of these with errors.Is, so callers branch
// on the meaning of a failure rather than on seller-specific strings.
var (
	// ErrNotFound: 404 (string detail, quote_not_found, deal_not_found,
	// product_not_found, ...) or 405 (route not served by this seller).
	ErrNotFound = errors.New("sellerclient: not found")
	// ErrQuoteExpired: 410 or quote_expired; request a new quote.
	ErrQuoteExpired = errors.New("sellerclient: quote expired")
	// ErrAlreadyBooked: quote_already_booked; the quote was booked under another key.
	ErrAlreadyBooked = errors.New("sellerclient: quote already booked")
	// ErrIdempotencyConflict: the idempotency key was reused with a different body.
	ErrIdempotencyConflict = errors.New("sellerclient: idempotency conflict")
	// ErrConflict: any other 409 (contention, invalid_transition).
	ErrConflict = errors.New("sellerclient: conflict")
	// ErrNegotiationClosed: the negotiation is no longer active
	// ("Negotiation is accepted, cannot counter", negotiation_closed).
	ErrNegotiationClosed = errors.New("sellerclient: negotiation closed")
	// ErrValidation: 400/422 or a request the client refused before sending.
	ErrValidation = errors.New("sellerclient: validation failed")
	// ErrUnsupported: unsupported_capability / audience_plan_unsupported; also
	// matches ErrValidation. The buyer may degrade the request and retry.
	ErrUnsupported = errors.New("sellerclient: unsupported capability")
	// ErrUnauthorized: 401 (missing, invalid, revoked or expired API key).
	ErrUnauthorized = errors.New("sellerclient: unauthorized")
	// ErrForbidden: 403 (operator credential required, blocked agent).
	ErrForbidden = errors.New("sellerclient: forbidden")
	// ErrUnavailable: 5xx (after retries for 502/503/504), 429, connection
	// refused or reset, timeouts.
	ErrUnavailable = errors.New("sellerclient: seller unavailable")
	// ErrBadResponse: a 2xx body that is not JSON, truncated, oversized or of
	// the wrong shape; a refused redirect; an unexpected 3xx.
	ErrBadResponse = errors.New("sellerclient: bad response")
	// ErrBodyTooLarge: the body exceeded Config.MaxBodyBytes; also matches ErrBadResponse.
	ErrBodyTooLarge = errors.New("sellerclient: response body too large")
	// ErrRedirectRefused: a redirect to another host (or a scheme downgrade)
	// was refused; also matches ErrBadResponse.
	ErrRedirectRefused = errors.New("sellerclient: redirect refused")
	// ErrInvalidURL: a seller/registry URL failed validation or points to a
	// private address while Config.AllowPrivate is false.
	ErrInvalidURL = errors.New("sellerclient: invalid URL")
	// ErrNotSent: the request provably never reached the seller (refused
	// before sending, or no attempt got past the connection: refused, DNS
	// failure, TLS handshake failure), so the seller did nothing. A failure
	// that does not match it may have been acted on (a timeout, a dropped
	// answer, a 5xx): for a booking its outcome is unknown.
	ErrNotSent = errors.New("sellerclient: request not sent")
)

// Error is the single error type of the package. Status is the HTTP status (0
// when no response was received or the client refused the call before
// sending). Code is the seller's machine code when it sent one (detail.error,
// e.g. "quote_expired"), "validation" for FastAPI 422 arrays, or a client code
// ("client_validation", "bad_response", "network", ...). Detail keeps the
// seller's raw `detail` JSON (or the whole JSON body when there was no detail)
// for callers that need extra fields such as below_floor_price's
// seller_minimum_cpm. Retryable reports whether the failure was transient
// (the client retries these itself; see IsTransient).
type Error struct {
	Status    int
	Code      string
	Message   string
	Detail    json.RawMessage
	Retryable bool
	Op        string
	URL       string

	kinds []error // sentinel classes matched by errors.Is
	cause error   // underlying transport/decoding error, if any
}

// Error renders "sellerclient: <op> <url>: <status> <code>: <message>".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("sellerclient:")
	if e.Op != "" {
		b.WriteString(" " + e.Op)
	}
	if e.URL != "" {
		b.WriteString(" " + e.URL)
	}
	b.WriteString(":")
	if e.Status != 0 {
		fmt.Fprintf(&b, " %d", e.Status)
	}
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Message != "" {
		if e.Status != 0 || e.Code != "" {
			b.WriteString(":")
		}
		b.WriteString(" " + e.Message)
	}
	if e.cause != nil && !strings.Contains(e.Message, e.cause.Error()) {
		b.WriteString(" (" + e.cause.Error() + ")")
	}
	return b.String()
}

// Unwrap exposes the sentinel classes and the underlying cause, so both
// errors.Is(err, ErrNotFound) and errors.As(err, *net.OpError) work.
func (e *Error) Unwrap() []error {
	out := make([]error, 0, len(e.kinds)+1)
	out = append(out, e.kinds...)
	if e.cause != nil {
		out = append(out, e.cause)
	}
	return out
}

// IsTransient reports whether err is a failure that may succeed if the same
// request is sent again later: 502/503/504 and network timeouts (the ones the
// client retries itself). Validation, auth, conflict and other 5xx failures
// are not transient.
func IsTransient(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.Retryable
	}
	return false
}

// validationError is a request the client refuses before any HTTP.
func validationError(op, u, msg string) *Error {
	return &Error{Code: "client_validation", Message: msg, Op: op, URL: u, kinds: []error{ErrValidation, ErrNotSent}}
}

// IsNotSent reports whether the request behind err provably never reached
// its destination (ErrNotSent).
func IsNotSent(err error) bool { return errors.Is(err, ErrNotSent) }

// BeforeSending reports whether a transport error happened before any byte
// of the request could reach the server: the connection was never made
// (dial refused, no route, DNS failure, a destination the guard refused)
// or its TLS handshake failed. Exported for the AdCP client, whose
// transport is another library's.
func BeforeSending(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	var cv *tls.CertificateVerificationError
	var rh tls.RecordHeaderError
	var alert tls.AlertError
	var unknownCA x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	return errors.As(err, &dns) || errors.As(err, &cv) || errors.As(err, &rh) || errors.As(err, &alert) ||
		errors.As(err, &unknownCA) || errors.As(err, &host) || errors.As(err, &invalid) ||
		errors.Is(err, errPrivateDial) || errors.Is(err, syscall.ECONNREFUSED)
}

// notSent adds ErrNotSent to e's classes.
func (e *Error) notSent() *Error {
	if !errors.Is(e, ErrNotSent) {
		e.kinds = append(e.kinds, ErrNotSent)
	}
	return e
}

// maybeSent removes ErrNotSent from e's classes: an earlier attempt of the
// same call may have reached the seller.
func (e *Error) maybeSent() {
	kept := e.kinds[:0:0]
	for _, k := range e.kinds {
		if k != ErrNotSent {
			kept = append(kept, k)
		}
	}
	e.kinds = kept
}

// badResponse wraps a decoding/shape failure of a 2xx body.
func badResponse(op, u string, status int, cause error) *Error {
	return &Error{Status: status, Code: "bad_response", Message: cause.Error(), Op: op, URL: u, kinds: []error{ErrBadResponse}, cause: cause}
}

// codeKinds maps the seller's machine codes (§1.5 shapes 3 and 4) to sentinels.
var codeKinds = map[string][]error{
	"not_found":                 {ErrNotFound},
	"product_not_found":         {ErrNotFound},
	"quote_not_found":           {ErrNotFound},
	"deal_not_found":            {ErrNotFound},
	"order_not_found":           {ErrNotFound},
	"agent_not_found":           {ErrNotFound},
	"quote_expired":             {ErrQuoteExpired},
	"quote_already_booked":      {ErrAlreadyBooked},
	"idempotency_conflict":      {ErrIdempotencyConflict},
	"contention":                {ErrConflict},
	"invalid_transition":        {ErrConflict},
	"negotiation_closed":        {ErrNegotiationClosed},
	"validation":                {ErrValidation},
	"pg_requires_impressions":   {ErrValidation},
	"below_minimum_impressions": {ErrValidation},
	"invalid_deal_type":         {ErrValidation},
	"invalid_status":            {ErrValidation},
	"below_floor_price":         {ErrValidation},
	"ceiling_exceeded":          {ErrValidation},
	"unresolvable_product_ids":  {ErrValidation},
	"unsupported_capability":    {ErrUnsupported, ErrValidation},
	"audience_plan_unsupported": {ErrUnsupported, ErrValidation},
	"authentication_required":   {ErrUnauthorized},
	"unauthorized":              {ErrUnauthorized},
	"forbidden":                 {ErrForbidden},
	"internal":                  {ErrUnavailable},
}

// classify picks the sentinels for a seller error: the machine code wins,
// then a few well-known string details, then the status.
func classify(status int, code, msg string) []error {
	if k, ok := codeKinds[strings.ToLower(code)]; ok {
		return k
	}
	lm := strings.ToLower(msg)
	switch {
	case strings.Contains(lm, "cannot counter") || (strings.HasPrefix(lm, "negotiation is ") && strings.Contains(lm, "cannot")):
		return []error{ErrNegotiationClosed}
	case strings.Contains(lm, "agent is blocked"):
		return []error{ErrForbidden}
	}
	switch {
	case status == 404 || status == 405:
		return []error{ErrNotFound}
	case status == 410:
		return []error{ErrQuoteExpired}
	case status == 409:
		return []error{ErrConflict}
	case status == 400 || status == 422:
		return []error{ErrValidation}
	case status == 401:
		return []error{ErrUnauthorized}
	case status == 403:
		return []error{ErrForbidden}
	case status == 429 || status >= 500:
		return []error{ErrUnavailable}
	case status >= 300 && status < 400:
		return []error{ErrBadResponse}
	}
	return nil
}

// parseError turns a non-2xx response into an *Error. It understands the four
// seller shapes (§1.5): FastAPI 422 {"detail":[...]}, {"detail":"text"},
// {"detail":{"error","message",...}} and the shared ErrorEnvelope (same shape
// with "unsupported"), plus flat {"error","message"|"detail"} bodies
// (registries: {"success":false,"error":"Agent not found"}) and plain text
// such as FastAPI's "Internal Server Error". It never fails and never panics.
// An error body only feeds a message, so it is read leniently, with
// encoding/json, not with the strict decoding of successful responses.
func parseError(status int, body []byte) *Error {
	e := &Error{Status: status}
	trimmed := bytes.TrimSpace(body)
	var obj map[string]json.RawMessage
	if len(trimmed) > 0 && trimmed[0] == '{' && json.Unmarshal(trimmed, &obj) == nil {
		d, hasDetail := obj["detail"]
		_, hasError := obj["error"]
		if hasDetail && !isNull(d) && !(hasError && bytes.HasPrefix(bytes.TrimSpace(d), []byte(`"`))) {
			e.Detail = append(json.RawMessage(nil), d...)
			parseDetail(e, d)
		} else {
			parseFlat(e, obj)
			if e.Code != "" || e.Message != "" {
				e.Detail = append(json.RawMessage(nil), trimmed...)
			}
		}
		if e.Message == "" && e.Code == "" {
			e.Message = textSnippet(trimmed)
		}
	} else {
		e.Message = textSnippet(trimmed)
	}
	e.kinds = classify(status, e.Code, e.Message)
	e.Retryable = status == 502 || status == 503 || status == 504
	return e
}

// parseDetail interprets a FastAPI "detail" value of any JSON type.
func parseDetail(e *Error, d json.RawMessage) {
	var s string
	if json.Unmarshal(d, &s) == nil {
		e.Message = truncate(s, 1000)
		return
	}
	var arr []json.RawMessage
	if json.Unmarshal(d, &arr) == nil {
		e.Code = "validation"
		e.Message = validationSummary(arr)
		return
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(d, &obj) == nil {
		parseFlat(e, obj)
		return
	}
	e.Message = textSnippet(d)
}

// parseFlat reads {"error": code|text, "message"|"detail"|"msg": text}.
func parseFlat(e *Error, obj map[string]json.RawMessage) {
	var code, msg string
	if raw, ok := obj["error"]; ok {
		if json.Unmarshal(raw, &code) != nil {
			// e.g. {"error":{"code":..,"message":..}}
			var inner map[string]json.RawMessage
			if json.Unmarshal(raw, &inner) == nil {
				_ = json.Unmarshal(inner["code"], &code)
				_ = json.Unmarshal(inner["message"], &msg)
			}
		}
	}
	if msg == "" {
		for _, k := range []string{"message", "detail", "msg"} {
			if raw, ok := obj[k]; ok && json.Unmarshal(raw, &msg) == nil && msg != "" {
				break
			}
		}
	}
	if code != "" && strings.ContainsAny(code, " \t\n") {
		// A sentence, not a machine code (AAMP: "Agent not found").
		if msg == "" {
			msg = code
		}
		code = ""
	}
	e.Code = truncate(code, 100)
	e.Message = truncate(msg, 1000)
}

// validationSummary renders FastAPI validation items as "loc: msg; ...".
func validationSummary(items []json.RawMessage) string {
	parts := make([]string, 0, len(items))
	for _, it := range items {
		var v struct {
			Loc []any  `json:"loc"`
			Msg string `json:"msg"`
		}
		if json.Unmarshal(it, &v) != nil {
			parts = append(parts, textSnippet(it))
			continue
		}
		locs := make([]string, 0, len(v.Loc))
		for _, l := range v.Loc {
			locs = append(locs, fmt.Sprint(l))
		}
		p := v.Msg
		if len(locs) > 0 {
			p = strings.Join(locs, ".") + ": " + v.Msg
		}
		parts = append(parts, p)
		if len(parts) >= 20 {
			break
		}
	}
	return truncate(strings.Join(parts, "; "), 1000)
}

// isNull reports whether raw JSON is the literal null.
func isNull(raw json.RawMessage) bool {
	return len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null"
}

// textSnippet returns a short, valid-UTF-8 excerpt of a body for messages.
func textSnippet(b []byte) string {
	return truncate(strings.TrimSpace(strings.ToValidUTF8(string(b), "\uFFFD")), 500)
}

// truncate shortens s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

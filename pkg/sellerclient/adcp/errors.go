package adcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	"github.com/dealflow/dealflow/pkg/sellerclient"
)

// ErrSigningRequired: the seller's cached capabilities require RFC 9421
// request signing for the operation (request_signing.required_for) and this
// client cannot sign, so the call was refused before sending (code
// "signing_required"); also matches sellerclient.ErrUnsupported. Skip the
// seller with the reason.
var ErrSigningRequired = errors.New("adcp: request signing required")

// Error is the single error type of the package. It matches the sentinels of
// pkg/sellerclient with errors.Is (ErrNotFound, ErrValidation,
// ErrIdempotencyConflict, ErrUnauthorized, ErrUnavailable, ErrBadResponse,
// ErrBodyTooLarge, ErrInvalidURL, ...), so callers branch the same way for
// both protocols.
//
// Code is the seller's AdCP error code (enums/error-code.json, e.g.
// "PRODUCT_NOT_FOUND", "IDEMPOTENCY_CONFLICT") or, for failures the client
// detected, a stable lower-case client code: "client_validation",
// "invalid_url", "private_address", "connection_refused", "network",
// "timeout", "canceled", "http_<status>", "bad_response", "body_too_large",
// "signing_required", "unsupported". Recovery is the seller's
// transient|correctable|terminal when it sent one. Retryable reports a
// transient failure (the client retries these itself).
type Error struct {
	Code       string
	Message    string
	Field      string
	Recovery   string
	HTTPStatus int
	Op         string
	Seller     string
	Retryable  bool
	// Details is the seller's raw adcp_error object, when there was one.
	Details json.RawMessage

	kinds []error
	cause error
}

// Error renders "adcp: <op> <seller>: <code>: <message> [field]".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("adcp:")
	if e.Op != "" {
		b.WriteString(" " + e.Op)
	}
	if e.Seller != "" {
		b.WriteString(" " + e.Seller)
	}
	b.WriteString(":")
	if e.Code != "" {
		b.WriteString(" " + e.Code + ":")
	}
	if e.Message != "" {
		b.WriteString(" " + e.Message)
	}
	if e.Field != "" {
		b.WriteString(" [" + e.Field + "]")
	}
	if e.cause != nil && !strings.Contains(e.Message, e.cause.Error()) {
		b.WriteString(" (" + e.cause.Error() + ")")
	}
	return b.String()
}

// Unwrap exposes the sentinel classes and the cause.
func (e *Error) Unwrap() []error {
	out := append([]error(nil), e.kinds...)
	if e.cause != nil {
		out = append(out, e.cause)
	}
	return out
}

// IsTransient reports whether err may succeed if the same call is made later.
func IsTransient(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Retryable
}

// codeKinds maps AdCP error codes to sellerclient's sentinel classes.
var codeKinds = map[string][]error{
	"PRODUCT_NOT_FOUND":      {sellerclient.ErrNotFound},
	"PROPOSAL_NOT_FOUND":     {sellerclient.ErrNotFound},
	"MEDIA_BUY_NOT_FOUND":    {sellerclient.ErrNotFound},
	"PACKAGE_NOT_FOUND":      {sellerclient.ErrNotFound},
	"REFERENCE_NOT_FOUND":    {sellerclient.ErrNotFound},
	"ACCOUNT_NOT_FOUND":      {sellerclient.ErrNotFound, sellerclient.ErrForbidden},
	"PROPOSAL_EXPIRED":       {sellerclient.ErrQuoteExpired},
	"PRODUCT_EXPIRED":        {sellerclient.ErrQuoteExpired},
	"IDEMPOTENCY_CONFLICT":   {sellerclient.ErrIdempotencyConflict},
	"IDEMPOTENCY_EXPIRED":    {sellerclient.ErrValidation},
	"IDEMPOTENCY_IN_FLIGHT":  {sellerclient.ErrConflict},
	"CONFLICT":               {sellerclient.ErrConflict},
	"INVALID_REQUEST":        {sellerclient.ErrValidation},
	"VALIDATION_ERROR":       {sellerclient.ErrValidation},
	"BUDGET_TOO_LOW":         {sellerclient.ErrValidation},
	"PROPOSAL_NOT_COMMITTED": {sellerclient.ErrValidation},
	"BRAND_REQUIRED":         {sellerclient.ErrValidation},
	"POLICY_VIOLATION":       {sellerclient.ErrValidation},
	"TERMS_REJECTED":         {sellerclient.ErrValidation},
	"REQUOTE_REQUIRED":       {sellerclient.ErrQuoteExpired},
	"UNSUPPORTED_FEATURE":    {sellerclient.ErrUnsupported, sellerclient.ErrValidation},
	"VERSION_UNSUPPORTED":    {sellerclient.ErrUnsupported, sellerclient.ErrValidation},
	"AUTH_REQUIRED":          {sellerclient.ErrUnauthorized},
	"AUTH_MISSING":           {sellerclient.ErrUnauthorized},
	"AUTH_INVALID":           {sellerclient.ErrUnauthorized},
	"AUTHORIZATION_REQUIRED": {sellerclient.ErrForbidden},
	"PERMISSION_DENIED":      {sellerclient.ErrForbidden},
	"SCOPE_INSUFFICIENT":     {sellerclient.ErrForbidden},
	"AGENT_BLOCKED":          {sellerclient.ErrForbidden},
	"AGENT_SUSPENDED":        {sellerclient.ErrForbidden},
	"ACCOUNT_SUSPENDED":      {sellerclient.ErrForbidden},
	"RATE_LIMITED":           {sellerclient.ErrUnavailable},
	"SERVICE_UNAVAILABLE":    {sellerclient.ErrUnavailable},
}

// wireError is core/error.json.
type wireError struct {
	Code     string `json:"code"`
	Message  string `json:"message"`
	Field    string `json:"field"`
	Recovery string `json:"recovery"`
}

// sellerError turns an adcp_error (or errors[0]) into an *Error. Unknown
// codes without a recovery are transient, as the AdCP manifest's
// error_code_policy requires.
func sellerError(raw json.RawMessage) *Error {
	var w wireError
	_ = json.Unmarshal(raw, &w)
	if w.Code == "" {
		w.Code = "UNKNOWN"
	}
	e := &Error{Code: truncate(w.Code, 64), Message: truncate(w.Message, 1000), Field: truncate(w.Field, 200), Recovery: w.Recovery,
		Details: append(json.RawMessage(nil), raw...)}
	kinds, known := codeKinds[w.Code]
	e.kinds = kinds
	switch {
	case w.Recovery == "transient":
		e.Retryable = true
	case w.Recovery == "" && !known:
		e.Retryable = true
	}
	if e.Retryable && len(e.kinds) == 0 {
		e.kinds = []error{sellerclient.ErrUnavailable}
	}
	return e
}

func clientError(code, msg string, kinds ...error) *Error {
	return &Error{Code: code, Message: msg, kinds: kinds}
}

func validationError(msg string) *Error {
	return clientError("client_validation", msg, sellerclient.ErrValidation, sellerclient.ErrNotSent)
}

// Answered reports whether err is the seller's own answer to the
// operation (an AdCP error code it sent, or a task it failed or rejected):
// the seller acted on the request and refused it, so nothing was bought.
func Answered(err error) bool {
	var e *Error
	return errors.As(err, &e) && len(e.Details) > 0
}

func badResponse(msg string, cause error) *Error {
	e := clientError("bad_response", msg, sellerclient.ErrBadResponse)
	e.cause = cause
	return e
}

// transportError classifies a failure of the MCP session (connect, call),
// using what the HTTP layer observed.
func transportError(ctx context.Context, err error, tr *tracker) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if ctx.Err() != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return &Error{Code: "timeout", Message: "deadline exceeded", Retryable: true, kinds: []error{sellerclient.ErrUnavailable}, cause: ctx.Err()}
		}
		return &Error{Code: "canceled", Message: "call canceled", cause: ctx.Err()}
	}
	st := tr.snapshot()
	switch {
	case st.tooLarge:
		return &Error{Code: "body_too_large", Message: "response body exceeds the cap", HTTPStatus: st.status, kinds: []error{sellerclient.ErrBodyTooLarge, sellerclient.ErrBadResponse}, cause: err}
	case st.redirect:
		return &Error{Code: "redirect_refused", Message: "redirect refused", HTTPStatus: st.status, kinds: []error{sellerclient.ErrRedirectRefused, sellerclient.ErrBadResponse}, cause: err}
	case st.err != nil:
		te := st.err
		switch {
		case sellerclient.IsPrivateDialError(te):
			return &Error{Code: "private_address", Message: "destination resolves to a private address (Config.AllowPrivate is false)", kinds: []error{sellerclient.ErrInvalidURL}, cause: te}
		case errors.Is(te, syscall.ECONNREFUSED):
			return &Error{Code: "connection_refused", Message: "connection refused", kinds: []error{sellerclient.ErrUnavailable}, cause: te}
		}
		var ne net.Error
		if errors.As(te, &ne) && ne.Timeout() {
			return &Error{Code: "timeout", Message: "network timeout", Retryable: true, kinds: []error{sellerclient.ErrUnavailable}, cause: te}
		}
		return &Error{Code: "network", Message: "network error", kinds: []error{sellerclient.ErrUnavailable}, cause: te}
	case st.status != 0 && (st.status < 200 || st.status > 299):
		e := &Error{Code: fmt.Sprintf("http_%d", st.status), Message: "HTTP " + fmt.Sprint(st.status), HTTPStatus: st.status, cause: err}
		if st.rpc != "" {
			// The MCP request the seller refused: a 401 on initialize is
			// not the same finding as one on tools/call create_media_buy.
			e.Message += " on MCP " + st.rpc
		}
		switch s := st.status; {
		case s == 401:
			e.kinds = []error{sellerclient.ErrUnauthorized}
		case s == 403:
			e.kinds = []error{sellerclient.ErrForbidden}
		case s == 404 || s == 405:
			e.kinds = []error{sellerclient.ErrNotFound}
		case s == 429 || s >= 500:
			e.kinds = []error{sellerclient.ErrUnavailable}
			e.Retryable = s == 502 || s == 503 || s == 504
		case s >= 300 && s < 400:
			e.kinds = []error{sellerclient.ErrBadResponse}
		default:
			e.kinds = []error{sellerclient.ErrValidation}
		}
		return e
	}
	e = badResponse("invalid MCP response", err)
	e.HTTPStatus = st.status
	if e.Message == "" || err != nil {
		e.Message = "invalid MCP response: " + truncate(err.Error(), 300)
	}
	return e
}

// truncate shortens s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}

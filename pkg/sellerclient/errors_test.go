package sellerclient

import (
	"context"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseErrorShapes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		status    int
		body      string
		code      string
		msg       string
		detail    string // substring expected in Detail
		is        []error
		isNot     []error
		retryable bool
	}{
		{"fastapi 422 array", 422, err422Body, "validation", "body.idempotency_key: Field required", `"loc":["body","idempotency_key"]`,
			[]error{ErrValidation}, []error{ErrNotFound}, false},
		{"string detail 404", 404, errStringBody, "", "Product not found", `"Product not found"`,
			[]error{ErrNotFound}, []error{ErrValidation}, false},
		{"object detail quote_expired", 410, errObjectBody, "quote_expired", "Quote has expired. Request a new quote.", `"error":"quote_expired"`,
			[]error{ErrQuoteExpired}, []error{ErrNotFound}, false},
		{"error envelope idempotency_conflict", 409, errEnvelopeBody, "idempotency_conflict", "idempotency_key was already used with a different request body", `"unsupported":[]`,
			[]error{ErrIdempotencyConflict}, []error{ErrConflict, ErrAlreadyBooked}, false},
		{"plain text 500", 500, errPlain500, "", "Internal Server Error", "",
			[]error{ErrUnavailable}, []error{ErrBadResponse}, false},
		{"envelope unsupported_capability", 400, `{"detail":{"error":"unsupported_capability","message":"linear TV not supported","unsupported":[{"capability":"linear_tv","path":"media_type","reason":""}]}}`,
			"unsupported_capability", "linear TV not supported", `"capability":"linear_tv"`, []error{ErrUnsupported, ErrValidation}, nil, false},
		{"quote_not_found", 404, `{"detail":{"error":"quote_not_found","message":"Quote 'x' not found."}}`, "quote_not_found", "Quote 'x' not found.", "",
			[]error{ErrNotFound}, nil, false},
		{"deal_not_found", 404, `{"detail":{"error":"deal_not_found","message":"Deal not found"}}`, "deal_not_found", "Deal not found", "", []error{ErrNotFound}, nil, false},
		{"product_not_found", 404, `{"detail":{"error":"product_not_found","message":"Product 'p' not found"}}`, "product_not_found", "Product 'p' not found", "", []error{ErrNotFound}, nil, false},
		{"quote_already_booked", 409, `{"detail":{"error":"quote_already_booked","message":"Quote status is 'booked', expected 'available'."}}`,
			"quote_already_booked", "Quote status is 'booked', expected 'available'.", "", []error{ErrAlreadyBooked}, []error{ErrIdempotencyConflict, ErrConflict}, false},
		{"pg_requires_impressions", 400, `{"detail":{"error":"pg_requires_impressions","message":"PG deals require impressions"}}`, "pg_requires_impressions", "PG deals require impressions", "", []error{ErrValidation}, nil, false},
		{"below_floor_price extra fields", 422, `{"detail":{"error":"below_floor_price","message":"too low","seller_minimum_cpm":22.5,"buyer_max_cpm":20.0}}`,
			"below_floor_price", "too low", `"seller_minimum_cpm":22.5`, []error{ErrValidation}, nil, false},
		{"invalid key 401", 401, `{"detail":"Invalid API key"}`, "", "Invalid API key", "", []error{ErrUnauthorized}, nil, false},
		{"authentication_required", 401, `{"detail":{"error":"authentication_required","message":"API key required for deal creation."}}`, "authentication_required", "API key required for deal creation.", "", []error{ErrUnauthorized}, nil, false},
		{"operator 403", 403, `{"detail":"Operator credential required"}`, "", "Operator credential required", "", []error{ErrForbidden}, nil, false},
		{"blocked agent 403", 403, `{"detail":"Agent is blocked. Contact the seller operator for access."}`, "", "Agent is blocked. Contact the seller operator for access.", "", []error{ErrForbidden}, nil, false},
		{"negotiation closed 400", 400, `{"detail":"Negotiation is accepted, cannot counter"}`, "", "Negotiation is accepted, cannot counter", "", []error{ErrNegotiationClosed}, []error{ErrValidation}, false},
		{"proposal not found", 404, `{"detail":"Proposal not found"}`, "", "Proposal not found", "", []error{ErrNotFound}, nil, false},
		{"invalid_transition 409", 409, `{"detail":{"error":"invalid_transition","message":"no","current_status":"draft","allowed_transitions":["submitted"]}}`, "invalid_transition", "no", "", []error{ErrConflict}, nil, false},
		{"aamp flat error", 404, `{"success":false,"error":"Agent not found"}`, "", "Agent not found", `"success":false`, []error{ErrNotFound}, nil, false},
		{"flat code+detail", 400, `{"error":"bad_thing","detail":"it broke"}`, "bad_thing", "it broke", "", []error{ErrValidation}, nil, false},
		{"503 html", 503, `<html><body>Service Unavailable</body></html>`, "", "<html><body>Service Unavailable</body></html>", "", []error{ErrUnavailable}, nil, true},
		{"502 empty", 502, ``, "", "", "", []error{ErrUnavailable}, nil, true},
		{"504 json", 504, `{"detail":"upstream timeout"}`, "", "upstream timeout", "", []error{ErrUnavailable}, nil, true},
		{"null detail", 400, `{"detail":null}`, "", `{"detail":null}`, "", []error{ErrValidation}, nil, false},
		{"numeric detail", 418, `{"detail":42}`, "", "42", "42", nil, []error{ErrValidation}, false},
		{"truncated json", 400, `{"detail":{"error":"quote_exp`, "", `{"detail":{"error":"quote_exp`, "", []error{ErrValidation}, nil, false},
		{"405", 405, `{"detail":"Method Not Allowed"}`, "", "Method Not Allowed", "", []error{ErrNotFound}, nil, false},
		{"429", 429, `{"detail":"slow down"}`, "", "slow down", "", []error{ErrUnavailable}, nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := parseError(c.status, []byte(c.body))
			if e.Status != c.status || e.Code != c.code || e.Message != c.msg {
				t.Fatalf("got status=%d code=%q msg=%q; want %d %q %q", e.Status, e.Code, e.Message, c.status, c.code, c.msg)
			}
			if c.detail != "" && !strings.Contains(string(e.Detail), c.detail) {
				t.Errorf("Detail = %s, want it to contain %s", e.Detail, c.detail)
			}
			for _, s := range c.is {
				if !errors.Is(e, s) {
					t.Errorf("errors.Is(%v) = false", s)
				}
			}
			for _, s := range c.isNot {
				if errors.Is(e, s) {
					t.Errorf("errors.Is(%v) = true", s)
				}
			}
			if e.Retryable != c.retryable || IsTransient(e) != c.retryable {
				t.Errorf("Retryable = %v, want %v", e.Retryable, c.retryable)
			}
		})
	}
}

func TestParseErrorBoundsMessage(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 2000)
	e := parseError(500, []byte(long))
	if len(e.Message) > 510 || !utf8.ValidString(e.Message) {
		t.Fatalf("message len %d valid %v", len(e.Message), utf8.ValidString(e.Message))
	}
	e = parseError(500, []byte{0xff, 0xfe, 'x'})
	if !utf8.ValidString(e.Message) || !strings.HasSuffix(e.Message, "x") {
		t.Fatalf("invalid utf8 not sanitised: %q", e.Message)
	}
	e = parseError(422, []byte(`{"detail":[`+strings.Repeat(`{"loc":["body","x"],"msg":"m","type":"t"},`, 100)+`{"loc":[],"msg":"last","type":"t"}]}`))
	if !strings.HasPrefix(e.Message, "body.x: m; body.x: m") || strings.Count(e.Message, ";") > 19 {
		t.Fatalf("summary = %q", e.Message)
	}
}

func TestErrorStringAndUnwrap(t *testing.T) {
	t.Parallel()
	e := parseError(409, []byte(errEnvelopeBody))
	e.Op, e.URL = "CreateQuote", "http://s/api/v1/quotes"
	want := "sellerclient: CreateQuote http://s/api/v1/quotes: 409 idempotency_conflict: idempotency_key was already used with a different request body"
	if e.Error() != want {
		t.Fatalf("Error() = %q\nwant      %q", e.Error(), want)
	}
	var target *Error
	wrapped := errors.Join(errors.New("context"), e)
	if !errors.As(wrapped, &target) || target.Code != "idempotency_conflict" || !errors.Is(wrapped, ErrIdempotencyConflict) {
		t.Fatal("errors.As/Is through a wrapper failed")
	}
	if IsTransient(errors.New("plain")) || IsTransient(nil) {
		t.Fatal("IsTransient on a foreign error")
	}
}

// TestErrorShapesOverHTTP drives each shape through a real call.
func TestErrorShapesOverHTTP(t *testing.T) {
	t.Parallel()
	cases := []struct {
		status int
		body   string
		ctype  string
		want   error
		code   string
	}{
		{422, err422Body, "", ErrValidation, "validation"},
		{404, errStringBody, "", ErrNotFound, ""},
		{410, errObjectBody, "", ErrQuoteExpired, "quote_expired"},
		{409, errEnvelopeBody, "", ErrIdempotencyConflict, "idempotency_conflict"},
		{500, errPlain500, "text/plain; charset=utf-8", ErrUnavailable, ""},
	}
	for _, c := range cases {
		srv := newFake(t, func(int, recorded) reply { return reply{status: c.status, body: c.body, ctype: c.ctype} })
		_, err := testClient().GetQuote(context.Background(), srv.URL, "qt-0123456789ab")
		var e *Error
		if !errors.As(err, &e) || !errors.Is(err, c.want) || e.Status != c.status || e.Code != c.code {
			t.Errorf("%d: err = %v (%#v), want %v code %q", c.status, err, e, c.want, c.code)
			continue
		}
		if e.Op != "GetQuote" || e.URL != srv.URL+"/api/v1/quotes/qt-0123456789ab" {
			t.Errorf("Op/URL = %q %q", e.Op, e.URL)
		}
		if n := len(srv.requests()); n != 1 {
			t.Errorf("%d: %d attempts, want 1 (no retry)", c.status, n)
		}
	}
}

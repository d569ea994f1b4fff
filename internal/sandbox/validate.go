package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/dealflow/dealflow/pkg/identity"
)

// verr is one FastAPI/pydantic validation error (error shape 1 of §1.5).
type verr struct {
	Type  string         `json:"type"`
	Loc   []any          `json:"loc"`
	Msg   string         `json:"msg"`
	Input any            `json:"input"`
	Ctx   map[string]any `json:"ctx,omitempty"`
}

func writeValidation(w http.ResponseWriter, errs []verr) {
	writeDetail(w, http.StatusUnprocessableEntity, errs)
}

// body is a request body as FastAPI sees it: JSON-decoded when the content
// type is JSON (or absent), raw text otherwise.
type body struct {
	present bool
	isJSON  bool
	value   any    // decoded JSON (numbers as json.Number)
	raw     string // non-JSON content
}

// parseBody decodes the body like FastAPI. A JSON syntax error is returned as
// a ready 422 (FastAPI reports it before dependencies such as the API key run).
func parseBody(r *http.Request, raw []byte) (body, []verr) {
	if len(raw) == 0 {
		return body{}, nil
	}
	if !isJSONContentType(r.Header.Get("Content-Type")) {
		return body{present: true, raw: string(raw)}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	if err == nil {
		if _, terr := dec.Token(); !errors.Is(terr, io.EOF) {
			err = fmt.Errorf("extra data")
		}
	}
	if err != nil {
		pos := 0
		var se *json.SyntaxError
		if errors.As(err, &se) {
			pos = int(se.Offset)
		}
		msg := "Expecting value"
		if err.Error() == "extra data" {
			msg = "Extra data"
		}
		return body{}, []verr{{Type: "json_invalid", Loc: []any{"body", pos}, Msg: "JSON decode error",
			Input: map[string]any{}, Ctx: map[string]any{"error": msg}}}
	}
	return body{present: true, isJSON: true, value: v}, nil
}

// isJSONContentType mirrors FastAPI: absent, application/json or application/*+json.
func isJSONContentType(ct string) bool {
	if strings.TrimSpace(ct) == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(strings.SplitN(ct, ";", 2)[0]))
	}
	main, sub, ok := strings.Cut(mt, "/")
	if !ok || main != "application" {
		return false
	}
	return sub == "json" || strings.HasSuffix(sub, "+json")
}

// object returns the body as a JSON object or records the pydantic error for
// a missing / non-object body.
func (b body) object(v *validator) (map[string]any, bool) {
	switch {
	case !b.present:
		v.add("missing", []any{"body"}, "Field required", nil, nil)
		return nil, false
	case !b.isJSON:
		v.add("model_attributes_type", []any{"body"}, "Input should be a valid dictionary or object to extract fields from", b.raw, nil)
		return nil, false
	}
	m, ok := b.value.(map[string]any)
	if !ok {
		v.add("model_attributes_type", []any{"body"}, "Input should be a valid dictionary or object to extract fields from", b.value, nil)
		return nil, false
	}
	return m, true
}

// validator collects pydantic-style errors in field order.
type validator struct{ errs []verr }

func (v *validator) add(typ string, loc []any, msg string, input any, ctx map[string]any) {
	v.errs = append(v.errs, verr{Type: typ, Loc: loc, Msg: msg, Input: jsonInput(input), Ctx: ctx})
}

func (v *validator) ok() bool { return len(v.errs) == 0 }

// valueError is a model validator failure (loc ["body"], "Value error, …").
func (v *validator) valueError(obj map[string]any, text string) {
	v.add("value_error", []any{"body"}, "Value error, "+text, obj, map[string]any{"error": map[string]any{}})
}

// jsonInput converts json.Number back to a plain number for the error echo.
func jsonInput(x any) any {
	switch t := x.(type) {
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i
		}
		if f, err := t.Float64(); err == nil {
			return pyFloat(f)
		}
		return t.String()
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = jsonInput(e)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = jsonInput(e)
		}
		return out
	}
	return x
}

func loc(parent []any, key string) []any {
	out := make([]any, 0, len(parent)+1)
	out = append(out, parent...)
	return append(out, key)
}

// str reads a string field. Missing or null gives nil (and a missing error
// when required). minLen > 0 enforces a minimum length.
func (v *validator) str(obj map[string]any, parent []any, key string, required bool, minLen int) *string {
	raw, present := obj[key]
	if !present || (raw == nil && !required) {
		if required && !present {
			v.add("missing", loc(parent, key), "Field required", obj, nil)
		}
		return nil
	}
	s, ok := raw.(string)
	if !ok {
		v.add("string_type", loc(parent, key), "Input should be a valid string", raw, nil)
		return nil
	}
	if len([]rune(s)) < minLen {
		v.add("string_too_short", loc(parent, key), fmt.Sprintf("String should have at least %d character", minLen)+plural(minLen), s,
			map[string]any{"min_length": minLen})
		return nil
	}
	return &s
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// enum reads a string enum field.
func (v *validator) enum(obj map[string]any, parent []any, key string, required bool, allowed []string) *string {
	raw, present := obj[key]
	if !present || (raw == nil && !required) {
		if required && !present {
			v.add("missing", loc(parent, key), "Field required", obj, nil)
		}
		return nil
	}
	s, ok := raw.(string)
	if ok {
		for _, a := range allowed {
			if s == a {
				return &s
			}
		}
	}
	quoted := make([]string, len(allowed))
	for i, a := range allowed {
		quoted[i] = "'" + a + "'"
	}
	expected := strings.Join(quoted[:len(quoted)-1], ", ") + " or " + quoted[len(quoted)-1]
	v.add("enum", loc(parent, key), "Input should be "+expected, raw, map[string]any{"expected": expected})
	return nil
}

// laxInt reads an optional integer in pydantic's lax mode (integral floats and
// numeric strings accepted) with an optional lower bound.
func (v *validator) laxInt(obj map[string]any, parent []any, key string, ge *int64) *int64 {
	raw, present := obj[key]
	if !present || raw == nil {
		return nil
	}
	l := loc(parent, key)
	var n int64
	switch t := raw.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(t.String(), 10, 64); err == nil {
			n = i
		} else if f, err := t.Float64(); err == nil && f == math.Trunc(f) && math.Abs(f) < 9e18 {
			n = int64(f)
		} else if err == nil {
			v.add("int_from_float", l, "Input should be a valid integer, got a number with a fractional part", raw, nil)
			return nil
		} else {
			v.add("int_parsing", l, "Input should be a valid integer, unable to parse string as an integer", raw, nil)
			return nil
		}
	case string:
		i, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
		if err != nil {
			v.add("int_parsing", l, "Input should be a valid integer, unable to parse string as an integer", raw, nil)
			return nil
		}
		n = i
	default:
		v.add("int_type", l, "Input should be a valid integer", raw, nil)
		return nil
	}
	if ge != nil && n < *ge {
		v.add("greater_than_equal", l, fmt.Sprintf("Input should be greater than or equal to %d", *ge), raw, map[string]any{"ge": *ge})
		return nil
	}
	return &n
}

// number reads a float field (lax: ints and numeric strings accepted).
func (v *validator) number(obj map[string]any, parent []any, key string, required bool) *float64 {
	raw, present := obj[key]
	if !present || (raw == nil && !required) {
		if required && !present {
			v.add("missing", loc(parent, key), "Field required", obj, nil)
		}
		return nil
	}
	var f float64
	var err error
	switch t := raw.(type) {
	case json.Number:
		f, err = t.Float64()
	case string:
		f, err = strconv.ParseFloat(strings.TrimSpace(t), 64)
	default:
		err = errors.New("not a number")
	}
	if err != nil {
		v.add("float_parsing", loc(parent, key), "Input should be a valid number, unable to parse string as a number", raw, nil)
		return nil
	}
	return &f
}

// boolean reads a bool field (strict JSON booleans).
func (v *validator) boolean(obj map[string]any, parent []any, key string) *bool {
	raw, present := obj[key]
	if !present || raw == nil {
		return nil
	}
	b, ok := raw.(bool)
	if !ok {
		v.add("bool_type", loc(parent, key), "Input should be a valid boolean", raw, nil)
		return nil
	}
	return &b
}

// stringList reads a list of strings.
func (v *validator) stringList(obj map[string]any, parent []any, key string) []string {
	raw, present := obj[key]
	if !present || raw == nil {
		return nil
	}
	arr, ok := raw.([]any)
	if !ok {
		v.add("list_type", loc(parent, key), "Input should be a valid list", raw, nil)
		return nil
	}
	out := make([]string, 0, len(arr))
	for i, e := range arr {
		s, ok := e.(string)
		if !ok {
			v.add("string_type", append(loc(parent, key), i), "Input should be a valid string", e, nil)
			continue
		}
		out = append(out, s)
	}
	return out
}

// intList reads a list of integers.
func (v *validator) intList(obj map[string]any, parent []any, key string) []int {
	raw, present := obj[key]
	if !present || raw == nil {
		return nil
	}
	arr, ok := raw.([]any)
	if !ok {
		v.add("list_type", loc(parent, key), "Input should be a valid list", raw, nil)
		return nil
	}
	out := make([]int, 0, len(arr))
	for i, e := range arr {
		n, ok := e.(json.Number)
		iv, err := strconv.Atoi(string(n))
		if !ok || err != nil {
			v.add("int_type", append(loc(parent, key), i), "Input should be a valid integer", e, nil)
			continue
		}
		out = append(out, iv)
	}
	return out
}

// object reads an optional free-form JSON object.
func (v *validator) object(obj map[string]any, parent []any, key string) map[string]any {
	raw, present := obj[key]
	if !present || raw == nil {
		return nil
	}
	m, ok := raw.(map[string]any)
	if !ok {
		v.add("dict_type", loc(parent, key), "Input should be a valid dictionary", raw, nil)
		return nil
	}
	return m
}

// model reads an optional nested model object.
func (v *validator) model(obj map[string]any, parent []any, key string) (map[string]any, []any) {
	raw, present := obj[key]
	l := loc(parent, key)
	if !present || raw == nil {
		return nil, l
	}
	m, ok := raw.(map[string]any)
	if !ok {
		v.add("model_attributes_type", l, "Input should be a valid dictionary or object to extract fields from", raw, nil)
		return nil, l
	}
	return m, l
}

var currencyRe = regexp.MustCompile(`^[A-Z]{3}$`)

// wireMoney is a validated Money (strict integer micros).
type wireMoney struct {
	AmountMicros int64  `json:"amount_micros"`
	Currency     string `json:"currency"`
}

// money reads an optional Money: amount_micros must be a JSON integer
// (strict: 20000000.0 is int_type), currency ^[A-Z]{3}$ defaulting to USD.
func (v *validator) money(obj map[string]any, parent []any, key string) *wireMoney {
	m, l := v.model(obj, parent, key)
	if m == nil {
		return nil
	}
	before := len(v.errs)
	out := &wireMoney{Currency: "USD"}
	raw, present := m["amount_micros"]
	switch {
	case !present:
		v.add("missing", loc(l, "amount_micros"), "Field required", m, nil)
	default:
		n, isNum := raw.(json.Number)
		i, err := strconv.ParseInt(string(n), 10, 64)
		if !isNum || err != nil {
			v.add("int_type", loc(l, "amount_micros"), "Input should be a valid integer", raw, nil)
		} else {
			out.AmountMicros = i
		}
	}
	if c, present := m["currency"]; present {
		s, ok := c.(string)
		switch {
		case !ok:
			v.add("string_type", loc(l, "currency"), "Input should be a valid string", c, nil)
		case !currencyRe.MatchString(s):
			v.add("string_pattern_mismatch", loc(l, "currency"), "String should match pattern '^[A-Z]{3}$'", s,
				map[string]any{"pattern": "^[A-Z]{3}$"})
		default:
			out.Currency = s
		}
	}
	if len(v.errs) > before {
		return nil
	}
	return out
}

// wireIdentity is the v1 BuyerIdentity body object (all optional strings).
type wireIdentity struct {
	SeatID               *string `json:"seat_id"`
	SeatName             *string `json:"seat_name"`
	DSPPlatform          *string `json:"dsp_platform"`
	AgencyID             *string `json:"agency_id"`
	AgencyName           *string `json:"agency_name"`
	AgencyHoldingCompany *string `json:"agency_holding_company"`
	AdvertiserID         *string `json:"advertiser_id"`
	AdvertiserName       *string `json:"advertiser_name"`
	AdvertiserIndustry   *string `json:"advertiser_industry"`
	CampaignID           *string `json:"campaign_id"`
	CampaignName         *string `json:"campaign_name"`
}

// toIdentity keeps the fields the seller derives tiers and scopes from.
func (w *wireIdentity) toIdentity() identity.BuyerIdentity {
	if w == nil {
		return identity.BuyerIdentity{}
	}
	d := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	return identity.BuyerIdentity{SeatID: d(w.SeatID), SeatName: d(w.SeatName), DSPPlatform: d(w.DSPPlatform),
		AgencyID: d(w.AgencyID), AgencyName: d(w.AgencyName), AgencyHoldingCompany: d(w.AgencyHoldingCompany),
		AdvertiserID: d(w.AdvertiserID), AdvertiserName: d(w.AdvertiserName), AdvertiserIndustry: d(w.AdvertiserIndustry)}
}

// buyerIdentity reads an optional BuyerIdentity object.
func (v *validator) buyerIdentity(obj map[string]any, parent []any, key string) *wireIdentity {
	m, l := v.model(obj, parent, key)
	if m == nil {
		return nil
	}
	before := len(v.errs)
	w := &wireIdentity{
		SeatID: v.str(m, l, "seat_id", false, 0), SeatName: v.str(m, l, "seat_name", false, 0),
		DSPPlatform: v.str(m, l, "dsp_platform", false, 0), AgencyID: v.str(m, l, "agency_id", false, 0),
		AgencyName: v.str(m, l, "agency_name", false, 0), AgencyHoldingCompany: v.str(m, l, "agency_holding_company", false, 0),
		AdvertiserID: v.str(m, l, "advertiser_id", false, 0), AdvertiserName: v.str(m, l, "advertiser_name", false, 0),
		AdvertiserIndustry: v.str(m, l, "advertiser_industry", false, 0), CampaignID: v.str(m, l, "campaign_id", false, 0),
		CampaignName: v.str(m, l, "campaign_name", false, 0),
	}
	if len(v.errs) > before {
		return nil
	}
	return w
}

// date reads an optional YYYY-MM-DD date (a datetime string is truncated to its date).
func (v *validator) date(obj map[string]any, parent []any, key string) *string {
	raw, present := obj[key]
	if !present || raw == nil {
		return nil
	}
	s, ok := raw.(string)
	if ok && len(s) >= 10 {
		if d, err := time.Parse("2006-01-02", s[:10]); err == nil && (len(s) == 10 || s[10] == 'T' || s[10] == ' ') {
			out := d.Format("2006-01-02")
			return &out
		}
	}
	v.add("date_from_datetime_parsing", loc(parent, key), "Input should be a valid date or datetime, invalid date format", raw, nil)
	return nil
}

// hashPayload is the idempotency hash: sha256 of the normalised request
// (struct order, defaults filled, unknown fields dropped) minus its key.
func hashPayload(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(fmt.Sprintf("%#v", v))
	}
	return shortHash(string(b), 64)
}

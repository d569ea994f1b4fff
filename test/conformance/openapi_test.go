package conformance

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// componentsURL is the resource the OpenAPI component schemas are added
// under: {"$defs": components.schemas}, with "#/components/schemas/X" refs
// rewritten to "#/$defs/X".
const componentsURL = "https://conformance.dealflow.test/seller-agent/components.json"

// validatedPaths are the POST routes whose bodies the client builds. Their
// schema names are read from the OpenAPI document, not assumed.
var validatedPaths = []string{"/api/v1/quotes", "/api/v1/deals", "/api/v1/negotiations/messages", "/media-kit/search", "/api/v1/deals/push"}

// requestValidator validates request bodies against the seller-agent OpenAPI
// request schemas (draft 2020-12, formats asserted).
type requestValidator struct {
	schemas map[string]*jsonschema.Schema // POST path → schema
	names   map[string]string             // POST path → component name
}

var (
	validatorOnce sync.Once
	validatorVal  *requestValidator
	validatorErr  error
)

// openAPIValidator loads contracts/seller-agent/openapi.json once.
func openAPIValidator(t *testing.T) *requestValidator {
	t.Helper()
	validatorOnce.Do(func() {
		dir, err := contractsDir()
		if err != nil {
			validatorErr = err
			return
		}
		validatorVal, validatorErr = loadRequestValidator(filepath.Join(dir, "seller-agent", "openapi.json"))
	})
	if validatorErr != nil {
		t.Fatalf("load OpenAPI request schemas: %v", validatorErr)
	}
	return validatorVal
}

// loadRequestValidator compiles the request-body schema of each validated path.
func loadRequestValidator(file string) (*requestValidator, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	comps, ok := dig(doc, "components", "schemas").(map[string]any)
	if !ok {
		return nil, errors.New("openapi: no components.schemas")
	}
	defs, err := rewriteRefs(comps)
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	res := map[string]any{"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": componentsURL, "$defs": defs}
	if err := c.AddResource(componentsURL, res); err != nil {
		return nil, err
	}
	v := &requestValidator{schemas: map[string]*jsonschema.Schema{}, names: map[string]string{}}
	for _, p := range validatedPaths {
		ref, _ := dig(doc, "paths", p, "post", "requestBody", "content", "application/json", "schema", "$ref").(string)
		name, ok := strings.CutPrefix(ref, "#/components/schemas/")
		if !ok {
			return nil, fmt.Errorf("openapi: POST %s has no request body schema ref (got %q)", p, ref)
		}
		s, err := c.Compile(componentsURL + "#/$defs/" + name)
		if err != nil {
			return nil, fmt.Errorf("compile %s: %w", name, err)
		}
		v.schemas[p], v.names[p] = s, name
	}
	return v, nil
}

// dig walks nested JSON objects by key.
func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// rewriteRefs copies v, pointing "#/components/schemas/X" refs at "#/$defs/X".
// Any other ref form is an error: it would silently not resolve.
func rewriteRefs(v any) (map[string]any, error) {
	var walk func(any) (any, error)
	walk = func(v any) (any, error) {
		switch x := v.(type) {
		case map[string]any:
			out := make(map[string]any, len(x))
			for k, e := range x {
				if k == "$ref" {
					s, _ := e.(string)
					name, ok := strings.CutPrefix(s, "#/components/schemas/")
					if !ok {
						return nil, fmt.Errorf("openapi: unsupported $ref %q", s)
					}
					out[k] = "#/$defs/" + name
					continue
				}
				w, err := walk(e)
				if err != nil {
					return nil, err
				}
				out[k] = w
			}
			return out, nil
		case []any:
			out := make([]any, len(x))
			for i, e := range x {
				w, err := walk(e)
				if err != nil {
					return nil, err
				}
				out[i] = w
			}
			return out, nil
		}
		return v, nil
	}
	out, err := walk(v)
	if err != nil {
		return nil, err
	}
	return out.(map[string]any), nil
}

// validate checks one POST body against its path's schema, plus what JSON
// Schema cannot say: every amount_micros must be a JSON integer literal (the
// seller's pydantic strict int refuses 20000000.0, which JSON Schema counts
// as an integer).
func (v *requestValidator) validate(path string, body []byte) error {
	s, ok := v.schemas[path]
	if !ok {
		return fmt.Errorf("no request schema for POST %s", path)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("body is not JSON: %w", err)
	}
	if err := s.Validate(inst); err != nil {
		return fmt.Errorf("violates %s: %w", v.names[path], err)
	}
	return strictMicros(inst, "")
}

// strictMicros finds amount_micros values that are not integer literals.
func strictMicros(v any, at string) error {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if k == "amount_micros" {
				n, ok := x[k].(json.Number)
				if !ok || strings.ContainsAny(n.String(), ".eE") {
					return fmt.Errorf("%s/amount_micros = %v is not an integer literal", at, x[k])
				}
				continue
			}
			if err := strictMicros(x[k], at+"/"+k); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range x {
			if err := strictMicros(e, fmt.Sprintf("%s/%d", at, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// TestOpenAPIValidatorControls proves the validator is not vacuous: bodies the
// seller answers 422 fail it, minimal valid bodies pass.
func TestOpenAPIValidatorControls(t *testing.T) {
	v := openAPIValidator(t)
	for name, want := range map[string]string{
		"/api/v1/quotes": "QuoteRequest", "/api/v1/deals": "DealBookingRequest",
		"/api/v1/negotiations/messages": "NegotiationMessage", "/media-kit/search": "MediaKitSearchRequest",
	} {
		if got := v.names[name]; got != want {
			t.Errorf("POST %s schema = %q, want %q", name, got, want)
		}
	}
	cases := []struct {
		name, path, body string
		ok               bool
	}{
		{"minimal quote", "/api/v1/quotes", `{"idempotency_key":"k","product_id":"p","deal_type":"PD"}`, true},
		{"quote with money and dates", "/api/v1/quotes", `{"idempotency_key":"k","product_id":"p","deal_type":"PG","impressions":6000000,"flight_start":"2026-01-01","flight_end":"2026-02-01","target_cpm":{"amount_micros":19000000,"currency":"USD"},"buyer_identity":{"agency_id":"a"}}`, true},
		{"quote without idempotency_key", "/api/v1/quotes", `{"product_id":"p","deal_type":"PD"}`, false},
		{"quote with empty idempotency_key", "/api/v1/quotes", `{"idempotency_key":"","product_id":"p","deal_type":"PD"}`, false},
		{"legacy deal type", "/api/v1/quotes", `{"idempotency_key":"k","product_id":"p","deal_type":"preferred_deal"}`, false},
		{"float dollars", "/api/v1/quotes", `{"idempotency_key":"k","product_id":"p","deal_type":"PD","target_cpm":20.0}`, false},
		{"float micros", "/api/v1/quotes", `{"idempotency_key":"k","product_id":"p","deal_type":"PD","target_cpm":{"amount_micros":20000000.0}}`, false},
		{"lowercase currency", "/api/v1/quotes", `{"idempotency_key":"k","product_id":"p","deal_type":"PD","target_cpm":{"amount_micros":1,"currency":"eur"}}`, false},
		{"bad date", "/api/v1/quotes", `{"idempotency_key":"k","product_id":"p","deal_type":"PD","flight_start":"01/02/2026"}`, false},
		{"minimal booking", "/api/v1/deals", `{"idempotency_key":"k","quote_id":"qt-0123456789ab"}`, true},
		{"booking without quote", "/api/v1/deals", `{"idempotency_key":"k"}`, false},
		{"counter", "/api/v1/negotiations/messages", `{"idempotency_key":"k","action":"counter","quote_id":"q","buyer_price":{"amount_micros":20000000,"currency":"USD"},"rationale":""}`, true},
		{"legacy price", "/api/v1/negotiations/messages", `{"price":20.0}`, false},
		{"unknown action", "/api/v1/negotiations/messages", `{"idempotency_key":"k","action":"haggle","quote_id":"q"}`, false},
		{"search", "/media-kit/search", `{"query":"sports video"}`, true},
		{"search without query", "/media-kit/search", `{"buyer_tier":"agency"}`, false},
		{"unknown route", "/api/v1/orders", `{}`, false},
	}
	for _, c := range cases {
		err := v.validate(c.path, []byte(c.body))
		if c.ok && err != nil {
			t.Errorf("%s: valid body rejected: %v", c.name, err)
		}
		if !c.ok && err == nil {
			t.Errorf("%s: invalid body accepted: %s", c.name, c.body)
		}
	}
}

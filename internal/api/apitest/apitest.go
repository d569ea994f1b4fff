// Package apitest checks the bookings API's answers against its OpenAPI
// document (internal/api/apidoc/openapi.json), so the document cannot drift
// from the code: the API and end-to-end tests pass every response they get
// through Check. Only tests import it.
package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/dealflow/dealflow/internal/api"
)

var (
	once   sync.Once
	doc    *openapi3.T
	router routers.Router
	errDoc error
)

// Document loads and validates the embedded OpenAPI document (kin-openapi
// supports OpenAPI 3.1, which it is written in).
func Document() (*openapi3.T, routers.Router, error) {
	once.Do(func() {
		openapi3filter.RegisterBodyDecoder("text/event-stream", openapi3filter.PlainBodyDecoder)
		openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder)
		doc, errDoc = openapi3.NewLoader().LoadFromData(api.OpenAPIDocument)
		if errDoc != nil {
			return
		}
		if errDoc = doc.Validate(context.Background()); errDoc != nil {
			return
		}
		router, errDoc = legacy.NewRouter(doc)
	})
	return doc, router, errDoc
}

// Validate checks one exchange: the route, method and status must be in the
// document and the body must match the schema of that status and content
// type. An unknown route's 404 or 405 must be the error shape.
func Validate(req *http.Request, status int, header http.Header, body []byte) error {
	d, r, err := Document()
	if err != nil {
		return fmt.Errorf("openapi document: %w", err)
	}
	route, params, err := r.FindRoute(req)
	if err != nil {
		if status == http.StatusNotFound || status == http.StatusMethodNotAllowed {
			var v any
			if err := json.Unmarshal(body, &v); err != nil {
				return fmt.Errorf("%s %s: %d body is not JSON: %w", req.Method, req.URL.Path, status, err)
			}
			return d.Components.Schemas["Error"].Value.VisitJSON(v)
		}
		return fmt.Errorf("%s %s is not in the OpenAPI document: %w", req.Method, req.URL.Path, err)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}},
		Status:  status,
		Header:  header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		return fmt.Errorf("%s %s -> %d does not match the OpenAPI document: %w\nbody: %.500s", req.Method, req.URL.Path, status, err, body)
	}
	return nil
}

// Check is Validate failing the test.
func Check(t testing.TB, req *http.Request, status int, header http.Header, body []byte) {
	t.Helper()
	if err := Validate(req, status, header, body); err != nil {
		t.Error(err)
	}
}

// Do sends req, checks the answer against the document and returns its
// status, headers and body.
func Do(t testing.TB, req *http.Request) (int, http.Header, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	Check(t, req, resp.StatusCode, resp.Header, body)
	return resp.StatusCode, resp.Header, body
}

// JSON sends method url with body (marshalled unless nil) and headers,
// checks the answer against the document and decodes it.
func JSON(t testing.TB, method, url string, body any, headers map[string]string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	status, _, b := Do(t, req)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return status, out
}

package api

import (
	_ "embed"
	"net/http"
)

// OpenAPIDocument is the bookings API's OpenAPI 3.1 document, served at
// GET /openapi.json. A test checks it is valid and that every response the
// API tests receive matches it.
//
//go:embed apidoc/openapi.json
var OpenAPIDocument []byte

//go:embed apidoc/index.html
var apiPage []byte

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(OpenAPIDocument)
}

// serveAPIPage renders the document for people: a static page whose script
// fetches openapi.json (same origin, nothing from the internet).
func serveAPIPage(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'")
	_, _ = w.Write(apiPage)
}

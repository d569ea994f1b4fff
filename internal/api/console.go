package api

import (
	"embed"
	"io/fs"
	"net/http"
)

// The buyer's console: a static page and its assets, embedded in the
// binary, served at / and /static/ without the API key (the page asks for
// the key and sends it as X-API-Key on every API call).
//
//go:embed web
var webFS embed.FS

// consoleCSP keeps the page to its own origin: no inline script, no CDN.
const consoleCSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'"

func consoleHandlers(mux *http.ServeMux) {
	web, err := fs.Sub(webFS, "web")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	static := http.StripPrefix("/static/", http.FileServerFS(web))
	mux.Handle("GET /static/", noCache(static))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", consoleCSP)
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, web, "index.html")
	})
}

func noCache(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}

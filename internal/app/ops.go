package app

import (
	"net/http"
	"net/http/pprof"
)

// opsRoutes adds the operator's routes to mux: Prometheus /metrics, the
// /livez and /readyz probes (when withProbes: the metrics listener; the
// bookings API has its own) and, with --pprof, /debug/pprof/*. None
// requires an API key; none is access-logged (scrapes every few seconds
// would drown the request lines).
func (a *App) opsRoutes(mux *http.ServeMux, withProbes bool) {
	mux.Handle("GET /metrics", a.Metrics.Handler())
	if withProbes {
		mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, map[string]string{"status": "alive"})
		})
		mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
			if err := a.Bus.Ready(); err != nil {
				writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "not_ready", Detail: err.Error()})
				return
			}
			writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
		})
	}
	if a.Config.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
}

// withOps serves the operator's routes (/metrics and, with --pprof,
// /debug/pprof/*) in front of the bookings API, so a process with an API
// address is scraped there; everything else goes to api.
func (a *App) withOps(api http.Handler) http.Handler {
	mux := http.NewServeMux()
	a.opsRoutes(mux, false)
	mux.Handle("/", api)
	return mux
}

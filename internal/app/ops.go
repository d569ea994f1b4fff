package app

import (
	"net/http"
	"net/http/pprof"

	"github.com/dealflow/dealflow/internal/api"
)

// opsRoutes adds the operator's routes to mux: Prometheus /metrics, the
// /livez and /readyz probes (when withProbes: the metrics listener; the
// bookings API has its own) and, with --pprof, /debug/pprof/*. None
// requires an API key; none is access-logged (scrapes every few seconds
// would drown the request lines).
func (a *App) opsRoutes(mux *http.ServeMux, withProbes bool) {
	mux.Handle("GET /metrics", a.Metrics.Handler())
	if withProbes {
		api.Probes(mux, a.Bus.Ready)
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
// address is scraped there; everything else goes to bookings.
func (a *App) withOps(bookings http.Handler) http.Handler {
	mux := http.NewServeMux()
	a.opsRoutes(mux, false)
	mux.Handle("/", bookings)
	return mux
}

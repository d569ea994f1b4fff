package api

import (
	"net/http"
	"time"

	"github.com/rs/zerolog"
)

// AccessLog logs one info line per request once it is answered: method,
// route pattern (the mux's, e.g. "GET /bookings/{id}", never the raw path
// with its ids and query), status and duration. It never logs a header, a
// key or a body.
func AccessLog(next http.Handler, log zerolog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		route := r.Pattern // set by the mux on this request
		if route == "" {
			route = "(unmatched)"
		}
		d := time.Since(start)
		log.Info().Str("method", r.Method).Str("route", route).Int("status", sw.status).
			Str("duration", d.Round(time.Microsecond).String()).Float64("duration_ms", float64(d.Microseconds())/1000).
			Msg("http request")
	})
}

// statusWriter records the status code a handler writes.
type statusWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

// WriteHeader implements http.ResponseWriter.
func (s *statusWriter) WriteHeader(code int) {
	if !s.wroteHeader {
		s.status, s.wroteHeader = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (s *statusWriter) Write(b []byte) (int, error) {
	s.wroteHeader = true
	return s.ResponseWriter.Write(b)
}

// Flush passes a flush through.
func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

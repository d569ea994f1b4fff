package sandbox

import (
	"bytes"
	"context"
	"errors"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// oversizedBytes is the size of an Oversized fault body: just over 16 MiB.
const oversizedBytes = 16<<20 + 4096

// maxRecordedBody caps how much of each request body is recorded and parsed.
const maxRecordedBody = 8 << 20

// Request is one request a sandbox seller or the registry received, kept so
// tests can check what the buyer revealed.
type Request struct {
	Method string
	// Path is relative to the seller's base URL (the shared-listener prefix removed).
	Path     string
	RawQuery string
	Query    url.Values
	Header   http.Header
	Body     []byte
	Time     time.Time
}

// recorder stores received requests.
type recorder struct {
	mu   sync.Mutex
	off  bool // WithoutRequestLog
	reqs []Request
	n    atomic.Int64 // requests received, counted even when off
}

func (rc *recorder) add(r Request) {
	rc.n.Add(1)
	rc.mu.Lock()
	if !rc.off {
		rc.reqs = append(rc.reqs, r)
	}
	rc.mu.Unlock()
}

func (rc *recorder) list() []Request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := make([]Request, len(rc.reqs))
	copy(out, rc.reqs)
	return out
}

func (rc *recorder) reset() {
	rc.mu.Lock()
	rc.reqs = nil
	rc.n.Store(0)
	rc.mu.Unlock()
}

// faulter holds a component's fault knobs and its seeded RNG.
type faulter struct {
	mu  sync.Mutex
	f   Faults
	rng *rand.Rand
}

func newFaulter(name string, f Faults) *faulter {
	h := fnv.New64a()
	_, _ = h.Write([]byte(name))
	seed := h.Sum64()
	return &faulter{f: f, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

func (fz *faulter) get() Faults {
	fz.mu.Lock()
	defer fz.mu.Unlock()
	return fz.f
}

func (fz *faulter) set(f Faults) {
	fz.mu.Lock()
	fz.f = f
	fz.mu.Unlock()
}

// roll draws the per-request random decisions under the lock.
func (fz *faulter) roll() (f Faults, fail bool, jitter time.Duration) {
	fz.mu.Lock()
	defer fz.mu.Unlock()
	f = fz.f
	if f.ErrorRate > 0 {
		fail = fz.rng.Float64() < f.ErrorRate
	}
	if f.Jitter > 0 {
		jitter = time.Duration(fz.rng.Int64N(int64(f.Jitter) + 1))
	}
	return f, fail, jitter
}

// frontHandler records every request and applies faults before next.
func frontHandler(prefix string, rec *recorder, fz *faulter, now func() time.Time, next http.Handler) http.Handler {
	faulty := FaultHandler(fz.roll, IABBodies, next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, maxRecordedBody))
		_ = r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(body))
		p := r.URL.Path
		if prefix != "" {
			p = trimPrefixPath(p, prefix)
			r.URL.Path = p
			r.URL.RawPath = ""
		}
		rec.add(Request{Method: r.Method, Path: p, RawQuery: r.URL.RawQuery, Query: r.URL.Query(),
			Header: r.Header.Clone(), Body: body, Time: now()})

		faulty.ServeHTTP(w, r)
	})
}

// FaultBodies are the protocol-shaped bodies a fault writes: a garbage
// answer (not JSON) and the prefix and suffix around an oversized one's
// padding, so each sandbox seller misbehaves in its own wire format.
type FaultBodies struct {
	Garbage                          []byte
	OversizedPrefix, OversizedSuffix []byte
}

// IABBodies are the IAB seller agent's fault bodies.
var IABBodies = FaultBodies{
	Garbage:         []byte("<html><body>502 Bad Gateway?? \x00\xff not json {\"detail\":"),
	OversizedPrefix: []byte(`{"packages":[],"padding":"`),
	OversizedSuffix: []byte(`"}`),
}

// FaultHandler applies the fault knobs roll draws for each request (down,
// latency and jitter, 503 error rate, oversized, garbage, truncated and
// slow bodies) before next. Every sandbox seller, IAB or AdCP, shares it.
func FaultHandler(roll func() (f Faults, fail bool, jitter time.Duration), bodies FaultBodies, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, fail, jitter := roll()
		if f.Down {
			abortConn(w)
			return
		}
		if d := f.Latency + jitter; d > 0 {
			if !sleepCtx(r.Context(), d) {
				return
			}
		}
		if fail {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("Service Unavailable"))
			return
		}
		switch {
		case f.Oversized:
			writeOversized(w, bodies.OversizedPrefix, bodies.OversizedSuffix)
			return
		case f.Garbage:
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", strconv.Itoa(len(bodies.Garbage)))
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(bodies.Garbage)
			return
		case f.Truncated || f.SlowBody > 0:
			cw := &captureWriter{header: http.Header{}, status: http.StatusOK}
			next.ServeHTTP(cw, r)
			for k, v := range cw.header {
				w.Header()[k] = v
			}
			full := cw.buf.Bytes()
			w.Header().Set("Content-Length", strconv.Itoa(len(full)))
			if f.Truncated {
				w.WriteHeader(cw.status)
				_, _ = w.Write(full[:len(full)/2])
				if fl, ok := w.(http.Flusher); ok {
					fl.Flush()
				}
				// Abort: the client sees the declared length cut short.
				panic(http.ErrAbortHandler)
			}
			dribble(r.Context(), w, cw.status, full, f.SlowBody)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// trimPrefixPath strips the shared-listener prefix, keeping a leading slash.
func trimPrefixPath(p, prefix string) string {
	if len(p) >= len(prefix) && p[:len(prefix)] == prefix {
		p = p[len(prefix):]
	}
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	return p
}

// abortConn closes the client connection without a response.
func abortConn(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // RST rather than FIN
			}
			_ = c.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// writeOversized streams a syntactically plausible JSON body over 16 MiB.
func writeOversized(w http.ResponseWriter, head, tail []byte) {
	total := oversizedBytes
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(total))
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(head); err != nil {
		return
	}
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	left := total - len(head) - len(tail)
	for left > 0 {
		n := min(left, len(chunk))
		if _, err := w.Write(chunk[:n]); err != nil {
			return
		}
		left -= n
	}
	_, _ = w.Write(tail)
}

// dribble sends headers at once, then the body in pieces spread over d.
func dribble(ctx context.Context, w http.ResponseWriter, status int, body []byte, d time.Duration) {
	w.WriteHeader(status)
	fl, _ := w.(http.Flusher)
	if fl != nil {
		fl.Flush()
	}
	const pieces = 10
	step := max(1, (len(body)+pieces-1)/pieces)
	pause := d / pieces
	for off := 0; off < len(body); off += step {
		if !sleepCtx(ctx, pause) {
			return
		}
		end := min(len(body), off+step)
		if _, err := w.Write(body[off:end]); err != nil {
			return
		}
		if fl != nil {
			fl.Flush()
		}
	}
}

// captureWriter buffers a handler's response so a fault can rewrite it.
type captureWriter struct {
	header http.Header
	status int
	wrote  bool
	buf    bytes.Buffer
}

func (c *captureWriter) Header() http.Header { return c.header }
func (c *captureWriter) WriteHeader(code int) {
	if !c.wrote {
		c.status, c.wrote = code, true
	}
}
func (c *captureWriter) Write(b []byte) (int, error) {
	c.wrote = true
	return c.buf.Write(b)
}

// listenerServer serves one handler on one fixed 127.0.0.1 address and can be
// taken down (connections refused) and brought back on the same port.
type listenerServer struct {
	mu      sync.Mutex
	addr    string
	handler http.Handler
	srv     *http.Server
	closed  bool // permanently shut down by Market.Close
}

// errAddrTaken reports that a stopped server's port was taken meanwhile.
var errAddrTaken = errors.New("sandbox: address no longer available")

// reserveAddr picks a free port and releases it, so connections to it are
// refused until something listens there again.
func reserveAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		return "", err
	}
	return addr, nil
}

// serve starts serving on an already open listener.
func (l *listenerServer) serve(ln net.Listener) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.addr = ln.Addr().String()
	srv := &http.Server{Handler: l.handler, ReadHeaderTimeout: 10 * time.Second, ErrorLog: discardLog}
	l.srv = srv
	go func() { _ = srv.Serve(ln) }()
}

// up listens again on the fixed address (no-op when already up).
func (l *listenerServer) up() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return errClosed
	}
	if l.srv != nil {
		l.mu.Unlock()
		return nil
	}
	addr := l.addr
	l.mu.Unlock()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return errors.Join(errAddrTaken, err)
	}
	l.serve(ln)
	return nil
}

// down closes the listener and every open connection.
func (l *listenerServer) down() {
	l.mu.Lock()
	srv := l.srv
	l.srv = nil
	l.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// shutdown is a permanent down.
func (l *listenerServer) shutdown() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.down()
}

package sellerclient

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/contracts"
)

// contractsDir is the repository's contracts folder (internal/contracts).
func contractsDir(t testing.TB) string {
	t.Helper()
	dir, err := contracts.Dir()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// bodyOf is b as the client hands a 2xx body to a streaming decoder: read
// as it arrives, within the default body limit.
func bodyOf(b []byte) io.Reader {
	return &limitedBody{r: bytes.NewReader(b), left: DefaultMaxBodyBytes}
}

// recorded is one request as the test server saw it.
type recorded struct {
	Method string
	Path   string // decoded path
	Raw    string // escaped path as sent
	Query  url.Values
	Header http.Header
	Body   []byte
}

// reply is a canned response.
type reply struct {
	status int
	body   string
	ctype  string
}

// fakeServer is a loopback HTTP server that records requests and answers
// from a handler.
type fakeServer struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []recorded
}

// newFake starts a server whose handler returns the reply for the n-th
// (0-based) request to it.
func newFake(t testing.TB, h func(n int, r recorded) reply) *fakeServer {
	t.Helper()
	f := &fakeServer{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec := recorded{Method: r.Method, Path: r.URL.Path, Raw: r.URL.EscapedPath(), Query: r.URL.Query(), Header: r.Header.Clone(), Body: body}
		f.mu.Lock()
		n := len(f.reqs)
		f.reqs = append(f.reqs, rec)
		f.mu.Unlock()
		rp := h(n, rec)
		ct := rp.ctype
		if ct == "" {
			ct = "application/json"
		}
		w.Header().Set("Content-Type", ct)
		if rp.status == 0 {
			rp.status = 200
		}
		w.WriteHeader(rp.status)
		_, _ = io.WriteString(w, rp.body)
	}))
	t.Cleanup(f.Close)
	return f
}

// routes answers by "METHOD /path" and 404s everything else.
func routes(m map[string]reply) func(int, recorded) reply {
	return func(_ int, r recorded) reply {
		if rp, ok := m[r.Method+" "+r.Path]; ok {
			return rp
		}
		return reply{status: 404, body: `{"detail":"Not Found"}`}
	}
}

// requests returns a copy of the recorded requests.
func (f *fakeServer) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

// last returns the last recorded request.
func (f *fakeServer) last(t testing.TB) recorded {
	t.Helper()
	r := f.requests()
	if len(r) == 0 {
		t.Fatal("server saw no request")
	}
	return r[len(r)-1]
}

// testClient is a client allowed to reach loopback, with fast retries.
func testClient() *Client {
	return New(Config{AllowPrivate: true, RetryBase: time.Millisecond, UserAgent: "test-agent/1"})
}

func ptr[T any](v T) *T { return &v }

// newHandlerServer starts a loopback server for an arbitrary handler.
func newHandlerServer(t testing.TB, h http.Handler) string {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s.URL
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }

// readFixture reads a fixture under iab-primitives/spec/fixtures.
func readFixture(tb testing.TB, rel string) ([]byte, error) {
	return os.ReadFile(filepath.Join(contractsDir(tb), "iab-primitives", "spec", "fixtures", rel))
}

func urlParse(s string) (*url.URL, error) { return url.Parse(s) }

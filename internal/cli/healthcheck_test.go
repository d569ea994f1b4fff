package cli

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestHealthcheck: exit 0 on a 2xx answer; 1 on any other status, no
// answer or no URL.
func TestHealthcheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/livez" {
			_, _ = w.Write([]byte(`{"status":"alive"}`))
			return
		}
		http.Error(w, "no", http.StatusServiceUnavailable)
	}))
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	defer srv.Close()
	for _, c := range []struct {
		args []string
		want int
	}{
		{[]string{"healthcheck", srv.URL + "/livez"}, 0},
		{[]string{"healthcheck", srv.URL + "/readyz"}, 1},
		{[]string{"healthcheck", closedURL + "/livez"}, 1},
		{[]string{"healthcheck", "--timeout", "1s", srv.URL + "/livez"}, 0},
		{[]string{"healthcheck"}, 1},
	} {
		var out, errb bytes.Buffer
		if got := Main(context.Background(), c.args, &out, &errb); got != c.want {
			t.Errorf("%v: exit %d, want %d (stderr %q)", c.args, got, c.want, errb.String())
		}
	}
}

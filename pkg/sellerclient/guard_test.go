package sellerclient

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestGuardExports(t *testing.T) {
	if _, err := CheckDestination("http://127.0.0.1:9/mcp", false); !errors.Is(err, ErrInvalidURL) {
		t.Fatalf("private literal allowed: %v", err)
	}
	if u, err := CheckDestination("http://LOCALHOST:9/mcp/", true); err != nil || u != "http://127.0.0.1:9/mcp" {
		t.Fatalf("allowPrivate: %q %v", u, err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	_, err := (&http.Client{Transport: NewGuardedTransport(false)}).Get(srv.URL)
	if !IsPrivateDialError(err) {
		t.Fatalf("guarded transport dialled a loopback address: %v", err)
	}
	resp, err := (&http.Client{Transport: NewGuardedTransport(true)}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
}

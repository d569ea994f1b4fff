package sandbox

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestWithHost: the sellers' URLs (registry answers, credentials) name the
// advertised host, and the listeners answer on it.
func TestWithHost(t *testing.T) {
	var (
		m    *Market
		port int
		err  error
	)
	for range 10 {
		port, err = FreeBasePort(16)
		if err != nil {
			t.Fatal(err)
		}
		if m, err = Start(context.Background(), DefaultMarket(), WithBasePort(port), WithHost("0.0.0.0", "localhost")); err == nil {
			break
		}
	}
	if m == nil {
		t.Fatalf("no free port range: %v", err)
	}
	defer m.Close()
	if want := "http://localhost:" + strconv.Itoa(port); m.RegistryURL != want {
		t.Fatalf("registry %s, want %s", m.RegistryURL, want)
	}
	for _, s := range m.Sellers {
		if !strings.HasPrefix(s.URL, "http://localhost:") {
			t.Fatalf("seller %s at %s", s.Name, s.URL)
		}
	}
	resp, err := http.Get(m.Sellers[0].URL + "/products")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET products via the advertised host: %d", resp.StatusCode)
	}
}

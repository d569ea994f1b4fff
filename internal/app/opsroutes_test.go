package app

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/dealflow/dealflow/internal/config"
	"github.com/dealflow/dealflow/pkg/identity"
	"github.com/dealflow/dealflow/services/discoverer"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestOpsRoutes: the bookings API address serves /metrics without the API
// key; --pprof adds /debug/pprof/* there and on --metrics-addr, which also
// answers the /livez and /readyz probes.
func TestOpsRoutes(t *testing.T) {
	cfg := config.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.Stages = []string{"booker"}
	cfg.HTTPAddr, cfg.MetricsAddr, cfg.APIKey, cfg.Pprof = "127.0.0.1:0", "127.0.0.1:0", "secret", true
	a, err := Start(t.Context(), cfg, zerolog.Nop(), Options{Credentials: &identity.Credentials{}, Known: []discoverer.KnownSeller{}, Buyer: &identity.BuyerIdentity{}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	for _, base := range []string{"http://" + a.HTTPAddr, "http://" + a.MetricsAddr} {
		for path, want := range map[string]string{
			"/metrics":                       "dealflow_consumer_pending",
			"/livez":                         "alive",
			"/readyz":                        "ready",
			"/debug/pprof/":                  "goroutine",
			"/debug/pprof/goroutine?debug=1": "goroutine profile",
		} {
			if code, body := get(t, base+path); code != http.StatusOK || !strings.Contains(body, want) {
				t.Errorf("GET %s%s: %d, no %q in %.200s", base, path, code, want, body)
			}
		}
	}
	// The API's own routes still need the key.
	if code, _ := get(t, "http://"+a.HTTPAddr+"/bookings"); code != http.StatusUnauthorized {
		t.Errorf("GET /bookings without the key: %d", code)
	}
}

// TestNoPprofByDefault: without --pprof nothing is served under /debug.
func TestNoPprofByDefault(t *testing.T) {
	cfg := config.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.Stages = []string{"negotiator"}
	cfg.HTTPAddr, cfg.MetricsAddr = "127.0.0.1:0", "127.0.0.1:0"
	a, err := Start(t.Context(), cfg, zerolog.Nop(), Options{Credentials: &identity.Credentials{}, Known: []discoverer.KnownSeller{}, Buyer: &identity.BuyerIdentity{}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	for _, base := range []string{"http://" + a.HTTPAddr, "http://" + a.MetricsAddr} {
		if code, _ := get(t, base+"/debug/pprof/"); code != http.StatusNotFound {
			t.Errorf("GET %s/debug/pprof/ without --pprof: %d", base, code)
		}
		if code, _ := get(t, base+"/metrics"); code != http.StatusOK {
			t.Errorf("GET %s/metrics: %d", base, code)
		}
	}
}

package app

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/config"
	"github.com/dealflow/dealflow/pkg/identity"
	"github.com/dealflow/dealflow/services/discoverer"
)

// TestMetricsAddr: --metrics-addr serves the process's registry, with the
// bus's consumer gauges and the campaigns by status read at scrape time.
func TestMetricsAddr(t *testing.T) {
	cfg := config.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.Stages = []string{"negotiator", "booker"}
	cfg.MetricsAddr = "127.0.0.1:0"
	a, err := Start(t.Context(), cfg, zerolog.Nop(), Options{Credentials: &identity.Credentials{}, Known: []discoverer.KnownSeller{}, Buyer: &identity.BuyerIdentity{}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	if a.Bus.Observer == nil {
		t.Fatal("the bus reports to no observer")
	}
	// A campaign projection as the booker stores it.
	kv, err := a.Bus.KV(t.Context(), bus.BucketCampaigns)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(t.Context(), "c-1", []byte(`{"id":"c-1","status":"shopping"}`)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + a.MetricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, want := range []string{"go_goroutines", `dealflow_consumer_pending{consumer="negotiator"} 0`, `dealflow_campaigns{status="shopping"} 1`} {
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), want) {
			t.Fatalf("GET /metrics: %d, no %q in\n%s", resp.StatusCode, want, b)
		}
	}
}

package app

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dealflow/dealflow/internal/campaign"
	"github.com/dealflow/dealflow/internal/config"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/identity"
	"github.com/dealflow/dealflow/services/discoverer"
)

// TestMetricsAddr: --metrics-addr serves the process's registry, with the
// bus's consumer gauges, the campaigns by status and how full each stream
// and bucket is, read at scrape time.
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
	// A campaign record, written through the state machine's store.
	req := events.CampaignRequested{CampaignID: "c-1", Brief: events.Brief{Name: "m", BudgetMicros: 1_000_000, StartDate: "2028-06-01", EndDate: "2028-06-02"}}
	if _, _, err := a.Campaigns.Transition(t.Context(), "c-1", func(c *campaign.Campaign, _ bool) ([]events.Event, error) {
		*c = *campaign.New(req, time.Now())
		return nil, c.Start("t", req, time.Now(), time.Hour)
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + a.MetricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, want := range []string{"go_goroutines", `dealflow_consumer_pending{consumer="negotiator"} 0`, `dealflow_campaigns{status="shopping"} 1`,
		// How full each stream and bucket is, against its limit.
		`dealflow_store_max_bytes{kind="stream",name="DEALFLOW"} 1.073741824e+09`,
		`dealflow_store_max_bytes{kind="bucket",name="dealflow_campaigns"} 2.68435456e+08`,
		`dealflow_store_messages{kind="bucket",name="dealflow_campaigns"} 1`,
		`dealflow_store_fill_ratio{kind="stream",name="DEALFLOW_DLQ"} 0`} {
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), want) {
			t.Fatalf("GET /metrics: %d, no %q in\n%s", resp.StatusCode, want, b)
		}
	}
}

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/dealflow/dealflow/internal/natstest"
)

func TestBenchJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the pipeline and two baselines: skipped under -short")
	}
	var out bytes.Buffer
	var errb natstest.LogBuffer // the pipeline logs from its own goroutines
	if code := Main(context.Background(), []string{"bench", "--sellers", "5", "--latency", "5ms", "--campaigns", "2", "--json"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var m map[string]any
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	want := map[string]float64{"sellers": 5, "latency_ms": 5, "campaigns": 2, "negotiator_procs": 0, "cluster_nodes": 1, "campaigns_completed": 3}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	for _, k := range []string{"kits_x_latency", "campaign_x_critical_path", "negotiations_per_s", "events_per_s", "cpu_s_per_campaign",
		"stream_bytes_per_campaign", "peak_rss_bytes", "raw_hops_per_s", "hops_per_s", "hop_vs_raw", "packages", "negotiations", "events_per_campaign"} {
		v, ok := m[k].(float64)
		if !ok || v <= 0 {
			t.Errorf("%s = %v, want a positive number", k, m[k])
		}
	}
	// Discovery and kits take at least two sequential round trips, a
	// campaign at least its critical path.
	if m["kits_x_latency"].(float64) < 1.5 || m["campaign_x_critical_path"].(float64) < 0.9 {
		t.Errorf("faster than the latency allows: %v", out.String())
	}
	if m["hop_vs_raw"].(float64) > 5 {
		t.Errorf("hop_vs_raw %v: implausible", m["hop_vs_raw"])
	}
}

func TestBenchFlags(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main(context.Background(), []string{"bench", "--cluster", "2"}, &out, &errb); code != 1 {
		t.Fatalf("--cluster 2: exit %d", code)
	}
}

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/dealflow/dealflow/internal/natstest"
)

func TestDemoClusterKillLeaderJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster demo: skipped under -short")
	}
	// Progress and the pipeline's log lines (nats reconnect callbacks among
	// them) share stderr: os.Stderr takes concurrent writes, a bare
	// bytes.Buffer does not.
	var out bytes.Buffer
	var errb natstest.LogBuffer
	code := Main(context.Background(), []string{"demo", "--json", "--cluster", "3", "--kill-leader"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var res struct {
		Status  string `json:"status"`
		Cluster struct {
			Nodes     int    `json:"nodes"`
			Killed    string `json:"killed"`
			NewLeader string `json:"new_leader"`
		} `json:"cluster"`
		Deals []struct {
			DealID string `json:"deal_id"`
		} `json:"deals"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	c := res.Cluster
	if res.Status != "completed" || len(res.Deals) == 0 || c.Nodes != 3 || c.Killed == "" || c.NewLeader == "" || c.Killed == c.NewLeader {
		t.Fatalf("result %+v", res)
	}
	if !strings.Contains(errb.String(), "took over stream DEALFLOW") {
		t.Fatalf("progress lacks the takeover: %s", errb.String())
	}
}

func TestKillLeaderNeedsCluster(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main(context.Background(), []string{"demo", "--kill-leader"}, &out, &errb); code != 1 {
		t.Fatalf("exit %d", code)
	}
}

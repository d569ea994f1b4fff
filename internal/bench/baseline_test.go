package bench_test

import (
	"context"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/bench"
	"github.com/dealflow/dealflow/internal/natstest"
)

func TestHopAndRawBaselines(t *testing.T) {
	env := natstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	hops, err := bench.HopThroughput(ctx, env.Bus, 200, 16)
	if err != nil || hops <= 0 {
		t.Fatalf("hop throughput %v: %v", hops, err)
	}
	raw, err := bench.RawHopThroughput(ctx, env.Bus.JS, env.Bus.Replicas(), 200, 16)
	if err != nil || raw <= 0 {
		t.Fatalf("raw throughput %v: %v", raw, err)
	}
	if _, err := env.Bus.JS.Stream(ctx, "DEALFLOW_BENCH_RAW"); err == nil {
		t.Fatal("raw baseline left its stream behind")
	}
	t.Logf("dealflow %.0f hops/s, raw %.0f hops/s", hops, raw)
}

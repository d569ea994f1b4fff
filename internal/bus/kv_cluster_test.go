package bus_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/natstest"
)

// On a replicated bucket a lost revision-checked write is error 10164, not
// the single server's 10071: Update must still retry it as a conflict.
func TestUpdateRetriesConflictsOnR3Bucket(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	c := natstest.StartCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nc, err := nats.Connect(c.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	b, err := bus.New(nc, bus.Config{Replicas: 3}, natstest.Logger())
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	kv, err := b.KV(ctx, bus.BucketLedger)
	if err != nil {
		t.Fatal(err)
	}
	type counter struct{ N int }
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				if _, err := bus.Update(ctx, kv, "k", func(v *counter, _ bool) (bool, error) { v.N++; return true, nil }); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got, err := bus.Update(ctx, kv, "k", func(*counter, bool) (bool, error) { return false, nil })
	if err != nil || got.N != 40 {
		t.Fatalf("counter %d, want 40: %v", got.N, err)
	}
}

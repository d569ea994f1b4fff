package bus_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/natstest"
)

type rec struct{ N int }

// A store opened WithLeaderReads reads what was just written, deleted keys
// read as missing, and its Update is revision-checked like the direct one.
func TestLeaderReads(t *testing.T) {
	env := natstest.Start(t)
	ctx := t.Context()
	s, err := bus.LeaderStore[rec](ctx, env.Bus, bus.BucketLedger)
	if err != nil {
		t.Fatal(err)
	}
	if _, found, err := s.Get(ctx, "k"); err != nil || found {
		t.Fatalf("missing key: found %v, %v", found, err)
	}
	for i := range 5 {
		v, rev, err := s.UpdateEncodedRev(ctx, "k", func(v *rec, _ bool, _ []byte) ([]byte, error) {
			v.N++
			return fmt.Appendf(nil, `{"N":%d}`, v.N), nil
		})
		if err != nil || v.N != i+1 || rev == 0 {
			t.Fatalf("update %d: %+v rev %d: %v", i, v, rev, err)
		}
		got, grev, found, err := s.GetRev(ctx, "k")
		if err != nil || !found || got.N != i+1 || grev != rev {
			t.Fatalf("read after write %d: %+v rev %d (wrote %d) found %v: %v", i, got, grev, rev, found, err)
		}
	}
	kv, err := env.Bus.KV(ctx, bus.BucketLedger)
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if _, found, err := s.Get(ctx, "k"); err != nil || found {
		t.Fatalf("deleted key: found %v, %v", found, err)
	}
	v, err := s.Update(ctx, "k", func(v *rec, exists bool) (bool, error) {
		if exists {
			t.Error("a deleted key exists for Update")
		}
		v.N = 7
		return true, nil
	})
	if err != nil || v.N != 7 {
		t.Fatalf("re-create: %+v %v", v, err)
	}
}

// On a three-node cluster, a write through one node is read back at once
// through another node's connection, every time: the leader answers. (A
// direct get from that node is answered by its own replica, which may not
// have applied the write yet: the count of such stale reads is logged.)
func TestLeaderReadsSeeWritesAcrossNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	c := natstest.StartCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var buses []*bus.Bus
	for _, n := range c.Nodes {
		nc, err := nats.Connect(n.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		b, err := bus.New(nc, bus.Config{Replicas: 3}, natstest.Logger())
		if err != nil {
			t.Fatal(err)
		}
		buses = append(buses, b)
	}
	if err := buses[0].Provision(ctx); err != nil {
		t.Fatal(err)
	}
	var leader, direct []*bus.Store[rec]
	for _, b := range buses {
		l, err := bus.OpenStore[rec](ctx, b, bus.BucketCampaigns, bus.WithLeaderReads())
		if err != nil {
			t.Fatal(err)
		}
		d, err := bus.OpenStore[rec](ctx, b, bus.BucketCampaigns)
		if err != nil {
			t.Fatal(err)
		}
		leader, direct = append(leader, l), append(direct, d)
	}
	const n = 300
	stale := 0
	for i := range n {
		w, r := leader[i%3], (i+1)%3
		key := fmt.Sprintf("k%d", i%10)
		v, err := w.Update(ctx, key, func(v *rec, _ bool) (bool, error) { v.N = i; return true, nil })
		if err != nil || v.N != i {
			t.Fatalf("write %d: %v", i, err)
		}
		if d, found, err := direct[r].Get(ctx, key); err == nil && (!found || d.N != i) {
			stale++
		}
		got, found, err := leader[r].Get(ctx, key)
		if err != nil || !found || got.N != i {
			t.Fatalf("leader read %d through node %d: %+v found %v: %v", i, r, got, found, err)
		}
	}
	t.Logf("%d writes: every leader read saw the write; %d direct reads through another node did not", n, stale)
}

// BenchmarkKVGet compares a direct get with a leader read of one key, one
// at a time and from 16 goroutines, on one node and on a three-node
// cluster (the client on a node that is not the bucket's leader when it
// can be).
func BenchmarkKVGet(b *testing.B) {
	setups := []struct {
		name  string
		start func(b *testing.B) *bus.Bus
	}{
		{"node=1", func(b *testing.B) *bus.Bus { return natstest.Start(b).Bus }},
		{"nodes=3", func(b *testing.B) *bus.Bus {
			c := natstest.StartCluster(b)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			nc, err := nats.Connect(c.URL())
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(nc.Close)
			bb, err := bus.New(nc, bus.Config{Replicas: 3}, natstest.Logger())
			if err != nil {
				b.Fatal(err)
			}
			if err := bb.Provision(ctx); err != nil {
				b.Fatal(err)
			}
			return bb
		}},
	}
	for _, st := range setups {
		b.Run(st.name, func(b *testing.B) {
			bb := st.start(b)
			ctx := context.Background()
			body := make([]byte, 8<<10) // a campaign record of some size
			for i := range body {
				body[i] = 'x'
			}
			kv, err := bb.KV(ctx, bus.BucketCampaigns)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := kv.Put(ctx, "k", fmt.Appendf(nil, `{"N":1,"pad":%q}`, body)); err != nil {
				b.Fatal(err)
			}
			for _, mode := range []struct {
				name string
				opts []bus.StoreOption
			}{{"direct", nil}, {"leader", []bus.StoreOption{bus.WithLeaderReads()}}} {
				s, err := bus.OpenStore[rec](ctx, bb, bus.BucketCampaigns, mode.opts...)
				if err != nil {
					b.Fatal(err)
				}
				b.Run(mode.name+"/serial", func(b *testing.B) {
					for b.Loop() {
						if _, _, err := s.Get(ctx, "k"); err != nil {
							b.Fatal(err)
						}
					}
				})
				b.Run(mode.name+"/parallel", func(b *testing.B) {
					b.SetParallelism(8)
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if _, _, err := s.Get(ctx, "k"); err != nil {
								b.Error(err)
								return
							}
						}
					})
				})
			}
		})
	}
}

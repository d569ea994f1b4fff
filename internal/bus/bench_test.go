package bus_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/pkg/events"
)

// BenchmarkStageHop measures one stage hop on the embedded server: publish
// an event, the stage consumes it, a no-op handler derives one output, the
// runner publishes it and acks the input; the clock stops when the output
// is seen. "latency" keeps one event in flight (the unloaded hop time);
// "throughput" publishes back to back and reports hops per second.
func BenchmarkStageHop(b *testing.B) {
	for _, mode := range []struct {
		name       string
		workers    int
		sequential bool
	}{{"latency", 1, true}, {"throughput/workers=1", 1, false}, {"throughput/workers=16", 16, false}} {
		workers := mode.workers
		b.Run(mode.name, func(b *testing.B) {
			env := natstest.Start(b)
			cfg := stage("hop")
			cfg.Workers = workers
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				_ = env.Bus.Run(ctx, cfg, func(ctx context.Context, in events.Event) ([]events.Event, error) {
					out, err := events.Derive(in, events.KindSellerSkipped, "hop", "x", events.SellerSkipped{CampaignID: in.Subject(), SellerURL: "u", Stage: "hop", Code: "c", Reason: "r"})
					return []events.Event{out}, err
				})
			}()
			var mu sync.Mutex
			sent := map[string]time.Time{}
			var lat []time.Duration
			done := make(chan struct{})
			cons, err := env.Bus.JS.OrderedConsumer(ctx, bus.StreamEvents, jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.KindSellerSkipped.Filter()}})
			if err != nil {
				b.Fatal(err)
			}
			n := b.N
			cc, err := cons.Consume(func(m jetstream.Msg) {
				mu.Lock()
				defer mu.Unlock()
				if t0, ok := sent[m.Headers().Get("ce-subject")]; ok {
					lat = append(lat, time.Since(t0))
				}
				if len(lat) == n {
					close(done)
				}
			})
			if err != nil {
				b.Fatal(err)
			}
			defer cc.Stop()
			pub := env.Connect(b, "pub")
			payload := events.CampaignRequested{Brief: events.Brief{Name: "n", BudgetMicros: events.MustMicros(1), StartDate: "2028-06-01", EndDate: "2028-06-02"}}
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < n; i++ {
				id := fmt.Sprintf("hop-%d", i)
				payload.CampaignID = id
				e, _ := events.New(events.KindCampaignRequested, events.NewID(), "bench", id, payload)
				mu.Lock()
				sent[id] = time.Now()
				mu.Unlock()
				if err := pub.Publish(ctx, e); err != nil {
					b.Fatal(err)
				}
				if mode.sequential { // one event in flight: the unloaded hop latency
					for {
						mu.Lock()
						got := len(lat)
						mu.Unlock()
						if got > i {
							break
						}
						time.Sleep(20 * time.Microsecond)
					}
				}
			}
			select {
			case <-done:
			case <-time.After(5 * time.Minute):
				b.Fatal("outputs missing")
			}
			elapsed := time.Since(start)
			b.StopTimer()
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(n)/elapsed.Seconds(), "hops/s")
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}

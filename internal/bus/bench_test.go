package bus_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/pkg/events"
)

// hopModes are the stage-hop measurements: "latency" keeps one event in
// flight (the unloaded hop time); "throughput" publishes back to back and
// reports hops per second.
var hopModes = []struct {
	name       string
	workers    int
	sequential bool
}{{"latency", 1, true}, {"throughput/workers=1", 1, false}, {"throughput/workers=16", 16, false}}

// BenchmarkStageHop measures one stage hop on the embedded server: publish
// an event, the stage consumes it, a no-op handler derives one output, the
// runner publishes it and acks the input; the clock stops when the output
// is seen. Compare with BenchmarkRawHop from the same run.
func BenchmarkStageHop(b *testing.B) {
	for _, mode := range hopModes {
		b.Run(mode.name, func(b *testing.B) {
			benchHop(b, mode.workers, mode.sequential, func(ctx context.Context, env *natstest.Env, cfg bus.StageConfig) {
				go func() {
					_ = env.Bus.Run(ctx, cfg, func(ctx context.Context, in events.Event, p any) ([]events.Event, error) {
						out, err := events.Derive(in, events.KindSellerSkipped, "hop", "x", events.SellerSkipped{CampaignID: in.Subject(), SellerURL: "u", Stage: "hop", Code: "c", Reason: "r"})
						return []events.Event{out}, err
					})
				}()
			})
		})
	}
}

// BenchmarkRawHop is BenchmarkStageHop with no dealflow code in the hop: the
// same durable pull consumer (same pull batch, same worker bound), and per
// message a synchronous JetStream publish of one output carrying a
// Nats-Msg-Id, then the ack. It is the ceiling the stage hop is compared
// with: dealflow hops/s ÷ raw hops/s, same run.
func BenchmarkRawHop(b *testing.B) {
	for _, mode := range hopModes {
		b.Run(mode.name, func(b *testing.B) {
			benchHop(b, mode.workers, mode.sequential, func(ctx context.Context, env *natstest.Env, cfg bus.StageConfig) {
				cons, err := env.Bus.JS.CreateConsumer(ctx, bus.StreamEvents, jetstream.ConsumerConfig{
					Durable: cfg.Name, AckPolicy: jetstream.AckExplicitPolicy, AckWait: cfg.AckWait, MaxDeliver: cfg.MaxDeliver,
					MaxAckPending: 1000, FilterSubject: cfg.Subjects[0]})
				if err != nil {
					b.Fatal(err)
				}
				js := env.Bus.JS
				sem := make(chan struct{}, cfg.Workers)
				cc, err := cons.Consume(func(m jetstream.Msg) {
					sem <- struct{}{}
					go func() {
						defer func() { <-sem }()
						campaign := m.Headers().Get("ce-subject")
						out := nats.NewMsg(events.KindSellerSkipped.SubjectFor(campaign))
						for k, v := range m.Headers() {
							out.Header[k] = v
						}
						out.Header.Set(nats.MsgIdHdr, "raw-"+campaign)
						out.Data = m.Data()
						if _, err := js.PublishMsg(ctx, out); err != nil {
							_ = m.Nak()
							return
						}
						_ = m.Ack()
					}()
				}, jetstream.PullMaxMessages(2*cfg.Workers), jetstream.PullExpiry(5*time.Second))
				if err != nil {
					b.Fatal(err)
				}
				go func() { <-ctx.Done(); cc.Stop() }()
			})
		})
	}
}

// benchHop starts a stage with start, publishes b.N CampaignRequested events
// and waits for one SellerSkipped output per event.
func benchHop(b *testing.B, workers int, sequential bool, start func(context.Context, *natstest.Env, bus.StageConfig)) {
	env := natstest.Start(b)
	cfg := stage("hop")
	cfg.Workers = workers
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start(ctx, env, cfg)
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
			delete(sent, m.Headers().Get("ce-subject"))
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
	t0 := time.Now()
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
		if sequential { // one event in flight: the unloaded hop latency
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
	elapsed := time.Since(t0)
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(n)/elapsed.Seconds(), "hops/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

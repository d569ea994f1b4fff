package bench

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/pkg/events"
)

// HopStage is the durable consumer name HopThroughput uses; run it on a bus
// whose server runs no pipeline (its input is CampaignRequested).
const HopStage = "bench-hop"

// rawHopStream is the scratch stream of RawHopThroughput.
const rawHopStream = "DEALFLOW_BENCH_RAW"

// HopThroughput measures n dealflow stage hops back to back, as the stage
// hop benchmark does: publish an event, the runner (workers at once)
// consumes it, a no-op handler derives one output, the runner publishes it
// and acks the input; the clock stops when the n-th output is seen. It
// returns hops per second. b must be provisioned and its server must run
// no pipeline stages.
func HopThroughput(ctx context.Context, b *bus.Bus, n, workers int) (float64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cfg := bus.StageConfig{Name: HopStage, Subjects: []string{events.KindCampaignRequested.Filter()}, Workers: workers, DrainTimeout: 5 * time.Second}
	runErr := make(chan error, 1)
	go func() {
		runErr <- b.Run(ctx, cfg, func(_ context.Context, in events.Event, _ any) ([]events.Event, error) {
			out, err := events.Derive(in, events.KindSellerSkipped, "hop", "x", events.SellerSkipped{CampaignID: in.Subject(), SellerURL: "u", Stage: "hop", Code: "c", Reason: "r"})
			return []events.Event{out}, err
		})
	}()
	// The inputs are built, validated and encoded before the clock starts
	// and published like RawHopThroughput's, so both measure the hop and
	// not their producers.
	payload := events.CampaignRequested{Brief: events.Brief{Name: "n", BudgetMicros: events.MustMicros(1), StartDate: "2027-01-01", EndDate: "2027-01-02"}}
	msgs := make([]*nats.Msg, 0, n)
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	for i := range n {
		id := "hop-" + run + "-" + strconv.Itoa(i)
		payload.CampaignID = id
		e, err := events.New(events.KindCampaignRequested, events.NewID(), "bench", id, payload)
		if err != nil {
			return 0, err
		}
		m, err := events.Encode(e, events.KindCampaignRequested.SubjectFor(id))
		if err != nil {
			return 0, err
		}
		msgs = append(msgs, &nats.Msg{Subject: m.Subject, Header: nats.Header(m.Header), Data: m.Data})
	}
	seen, err := countFrom(ctx, b.JS, bus.StreamEvents, events.KindSellerSkipped.Filter(), n)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	for _, m := range msgs {
		if _, err := b.JS.PublishMsg(ctx, m); err != nil {
			return 0, fmt.Errorf("bench: hop publish: %w", err)
		}
	}
	select {
	case <-seen:
	case err := <-runErr:
		return 0, fmt.Errorf("bench: hop stage ended: %v", err)
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// RawHopThroughput is HopThroughput's baseline with no dealflow code: the
// same publish → pull → publish → ack hop written directly against
// nats.go's jetstream API on a scratch stream with the event stream's
// replicas, carrying the same messages (an encoded CampaignRequested's
// headers and body, a Nats-Msg-Id each; the output copies them, as
// BenchmarkRawHop does), with workers handlers at once. It returns hops
// per second and deletes the stream.
func RawHopThroughput(ctx context.Context, js jetstream.JetStream, replicas, n, workers int) (float64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if replicas <= 0 {
		replicas = 1
	}
	st, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: rawHopStream, Subjects: []string{"dealflow_bench_raw.>"}, Replicas: replicas,
		Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute})
	if err != nil {
		return 0, fmt.Errorf("bench: raw baseline stream: %w", err)
	}
	defer func() { _ = js.DeleteStream(context.WithoutCancel(ctx), rawHopStream) }()
	cons, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "raw", FilterSubject: "dealflow_bench_raw.in", AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: 30 * time.Second, MaxAckPending: 1000})
	if err != nil {
		return 0, fmt.Errorf("bench: raw baseline consumer: %w", err)
	}
	sem := make(chan struct{}, max(workers, 1))
	var wg sync.WaitGroup
	var failed atomic.Value
	cc, err := cons.Consume(func(m jetstream.Msg) {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			out := nats.NewMsg("dealflow_bench_raw.out")
			for k, v := range m.Headers() {
				out.Header[k] = v
			}
			out.Data = m.Data()
			out.Header.Set(nats.MsgIdHdr, "out-"+m.Headers().Get(nats.MsgIdHdr))
			if _, err := js.PublishMsg(ctx, out); err != nil {
				failed.Store(err)
				return
			}
			if err := m.Ack(); err != nil {
				failed.Store(err)
			}
		}()
	}, jetstream.PullMaxMessages(2*max(workers, 1)))
	if err != nil {
		return 0, fmt.Errorf("bench: raw baseline consume: %w", err)
	}
	defer func() { cc.Stop(); wg.Wait() }()
	seen, err := countFrom(ctx, js, rawHopStream, "dealflow_bench_raw.out", n)
	if err != nil {
		return 0, err
	}
	tmpl, err := hopInput("raw")
	if err != nil {
		return 0, err
	}
	msgs := make([]*nats.Msg, 0, n)
	for i := range n {
		m := nats.NewMsg("dealflow_bench_raw.in")
		for k, v := range tmpl.Header {
			m.Header[k] = append([]string(nil), v...)
		}
		m.Data = tmpl.Data
		m.Header.Set(nats.MsgIdHdr, strconv.Itoa(i))
		msgs = append(msgs, m)
	}
	start := time.Now()
	for _, m := range msgs {
		if _, err := js.PublishMsg(ctx, m); err != nil {
			return 0, fmt.Errorf("bench: raw baseline publish: %w", err)
		}
	}
	select {
	case <-seen:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	elapsed := time.Since(start)
	if err, _ := failed.Load().(error); err != nil {
		return 0, fmt.Errorf("bench: raw baseline hop: %w", err)
	}
	return float64(n) / elapsed.Seconds(), nil
}

// hopInput is the encoded CampaignRequested both hops carry.
func hopInput(id string) (*events.Message, error) {
	payload := events.CampaignRequested{CampaignID: id, Brief: events.Brief{Name: "n", BudgetMicros: events.MustMicros(1), StartDate: "2027-01-01", EndDate: "2027-01-02"}}
	e, err := events.New(events.KindCampaignRequested, events.NewID(), "bench", id, payload)
	if err != nil {
		return nil, err
	}
	return events.Encode(e, events.KindCampaignRequested.SubjectFor(id))
}

// countFrom closes the returned channel once n messages on subject have
// been stored in stream (an ordered consumer from the next message on).
func countFrom(ctx context.Context, js jetstream.JetStream, stream, subject string, n int) (<-chan struct{}, error) {
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}, DeliverPolicy: jetstream.DeliverNewPolicy})
	if err != nil {
		return nil, fmt.Errorf("bench: count %s: %w", subject, err)
	}
	done := make(chan struct{})
	var got atomic.Int64
	cc, err := cons.Consume(func(jetstream.Msg) {
		if got.Add(1) == int64(n) {
			close(done)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("bench: count %s: %w", subject, err)
	}
	context.AfterFunc(ctx, cc.Stop)
	go func() {
		select {
		case <-done:
			cc.Stop()
		case <-ctx.Done():
		}
	}()
	return done, nil
}

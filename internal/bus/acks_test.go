package bus_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/pkg/events"
)

// skips builds n SellerSkipped outputs of one campaign, as a handler does.
func skips(t *testing.T, campaign, key string, n int) []events.Event {
	t.Helper()
	parent, err := events.New(events.KindCampaignRequested, events.NewID(), "test", campaign, events.CampaignRequested{CampaignID: campaign})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]events.Event, n)
	for i := range out {
		if out[i], err = events.Derive(parent, events.KindSellerSkipped, "acks", fmt.Sprintf("%s-%d", key, i), events.SellerSkipped{
			CampaignID: campaign, SellerURL: fmt.Sprintf("http://s/%d", i), Stage: "acks", Code: "test", Reason: "r"}); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestPublishAllWaitsForEveryAck: handlings publishing at the same time on
// one connection each get their own outputs' acknowledgements, and every
// output is stored once publishAll returns.
func TestPublishAllWaitsForEveryAck(t *testing.T) {
	t.Parallel()
	env := natstest.Start(t)
	ctx := t.Context()
	const handlings, each = 8, 40
	var wg sync.WaitGroup
	errs := make([]error, handlings)
	for h := range handlings {
		outs := skips(t, fmt.Sprintf("c-%d", h), "k", each)
		wg.Go(func() { errs[h] = env.Bus.PublishAll(ctx, outs) })
	}
	wg.Wait()
	for h, err := range errs {
		if err != nil {
			t.Fatalf("handling %d: %v", h, err)
		}
	}
	st, err := env.Bus.JS.Stream(ctx, bus.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != handlings*each {
		t.Fatalf("%d events stored, want %d", info.State.Msgs, handlings*each)
	}
	if err := env.Bus.PublishAll(ctx, nil); err != nil {
		t.Fatalf("no outputs: %v", err)
	}
}

// TestPublishAllReportsAFailedOutput: when the stream refuses some of a
// handling's outputs, publishAll fails (the input is then retried) naming
// the refusal, and it does not wait for the outputs' timeout to say so.
func TestPublishAllReportsAFailedOutput(t *testing.T) {
	t.Parallel()
	env := natstest.Start(t)
	ctx := t.Context()
	st, err := env.Bus.JS.Stream(ctx, bus.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	cfg.MaxMsgs, cfg.Discard = 5, jetstream.DiscardNew // the sixth is refused
	if _, err := env.Bus.JS.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	err = env.Bus.PublishAll(ctx, skips(t, "c-1", "full", 10))
	if err == nil || !strings.Contains(err.Error(), "maximum messages exceeded") {
		t.Fatalf("publishing past the stream's limit: %v", err)
	}

	// Outputs captured by another stream are not stored where the
	// pipeline reads: also a failure, naming that stream.
	if err := env.Bus.JS.DeleteStream(ctx, bus.StreamEvents); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Bus.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "IMPOSTOR", Subjects: []string{events.SubjectRoot + ".>"}}); err != nil {
		t.Fatal(err)
	}
	err = env.Bus.PublishAll(ctx, skips(t, "c-1", "impostor", 3))
	if !errors.Is(err, bus.ErrWrongStream) || !strings.Contains(err.Error(), `"IMPOSTOR"`) {
		t.Fatalf("outputs captured by another stream: %v", err)
	}
}

// TestFanOutOutputsAreStoredIntact: a stage handling many inputs at once,
// each with many outputs published together, stores every output with its
// own data.
func TestFanOutOutputsAreStoredIntact(t *testing.T) {
	t.Parallel()
	env := natstest.Start(t)
	const campaigns, each = 30, 12
	fan := func(ctx context.Context, in events.Event, p any) ([]events.Event, error) {
		outs := make([]events.Event, each)
		for i := range outs {
			var err error
			if outs[i], err = events.Derive(in, events.KindSellerSkipped, "fan", strconv.Itoa(i), events.SellerSkipped{CampaignID: in.Subject(),
				SellerURL: fmt.Sprintf("http://s/%d", i), Stage: "fan", Code: "test", Reason: in.Subject() + "/" + strconv.Itoa(i) + strings.Repeat(".", i*40)}); err != nil {
				return nil, err
			}
		}
		return outs, nil
	}
	cfg := stage("fan")
	cfg.Workers = 8
	run(t, env.Bus, cfg, fan)
	for c := range campaigns {
		natstest.PublishRequest(t, env.Bus, fmt.Sprintf("c-%d", c))
	}
	cons, err := env.Bus.JS.OrderedConsumer(t.Context(), bus.StreamEvents, jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.KindSellerSkipped.Filter()}})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for len(seen) < campaigns*each {
		m, err := cons.Next(jetstream.FetchMaxWait(20 * time.Second))
		if err != nil {
			t.Fatalf("%d of %d outputs read: %v", len(seen), campaigns*each, err)
		}
		e, err := events.Decode(events.Header(m.Headers()), m.Data())
		if err != nil {
			t.Fatal(err)
		}
		p, err := events.PayloadOf[events.SellerSkipped](e, events.KindSellerSkipped)
		if err != nil {
			t.Fatalf("stored output %s: %v", m.Data(), err)
		}
		i, _ := strconv.Atoi(strings.TrimPrefix(p.SellerURL, "http://s/"))
		if want := p.CampaignID + "/" + strconv.Itoa(i) + strings.Repeat(".", i*40); p.Reason != want || p.CampaignID != e.Subject() {
			t.Fatalf("output %s of %s stored as %q, want %q", p.SellerURL, e.Subject(), p.Reason, want)
		}
		seen[e.ID()] = true
	}
}

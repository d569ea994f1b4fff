package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dealflow/dealflow/internal/api"
	"github.com/dealflow/dealflow/internal/api/apitest"
	"github.com/dealflow/dealflow/internal/app"
	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/campaign"
	"github.com/dealflow/dealflow/internal/checkfor"
	"github.com/dealflow/dealflow/internal/config"
	"github.com/dealflow/dealflow/internal/demo"
	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/internal/sandbox"
	"github.com/dealflow/dealflow/pkg/events"
)

// stored is one event the observer saw stored in the event stream.
type stored struct {
	id, subject string
}

// TestSmallStreamBackpressure: with an event stream of 1 MiB (about
// thirteen campaigns of the sandbox market), six clients submit 30 campaigns
// through the bookings API at once. The stream fills: submissions are
// refused with 503 {error: full} and Retry-After (nothing recorded), and
// the clients submit them again after that delay. Meanwhile the processed
// events are purged to make room. In the end every campaign was accepted
// and completed, nothing was dead-lettered, and every event the stream
// ever stored was handled by every stage whose consumer it was meant for
// before it left the stream.
func TestSmallStreamBackpressure(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a stream with campaigns: skipped under -short")
	}
	const (
		streamBytes = 1 << 20
		campaigns   = 30
		clients     = 6
	)
	m, err := sandbox.Start(context.Background(), sandbox.DefaultMarket())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	cfg := config.Defaults()
	cfg.DataDir, cfg.NATSPort, cfg.RegistryURL, cfg.AllowPrivate, cfg.Window = t.TempDir(), 0, m.RegistryURL, true, 45*time.Second
	cfg.HTTPAddr, cfg.StreamMaxBytes = "127.0.0.1:0", streamBytes

	// handled[stage][event id]: the events each stage's handler took up
	// (returned without error: then its outputs are published and the
	// event acknowledged).
	var (
		hmu     sync.Mutex
		handled = map[string]map[string]bool{}
	)
	wrap := func(stage string, h bus.Handler) bus.Handler {
		return func(ctx context.Context, in events.Event, p any) ([]events.Event, error) {
			out, err := h(ctx, in, p)
			if err == nil {
				hmu.Lock()
				if handled[stage] == nil {
					handled[stage] = map[string]bool{}
				}
				handled[stage][in.ID()] = true
				hmu.Unlock()
			}
			return out, err
		}
	}
	a, err := app.Start(context.Background(), cfg, natstest.Logger(), app.Options{Credentials: m.Credentials(), SweepEvery: 200 * time.Millisecond,
		WrapHandler: wrap})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	// The observer reads every event as it is stored (before it can be
	// purged: only processed events are, and the observer is faster).
	var (
		omu  sync.Mutex
		seen = map[uint64]stored{}
	)
	oc, err := a.Bus.JS.OrderedConsumer(ctx, bus.StreamEvents, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := oc.Consume(func(msg jetstream.Msg) {
		md, err := msg.Metadata()
		if err != nil {
			return
		}
		omu.Lock()
		seen[md.Sequence.Stream] = stored{id: msg.Headers().Get("ce-id"), subject: msg.Subject()}
		omu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Stop()

	base := "http://" + a.HTTPAddr
	client := &http.Client{Timeout: 30 * time.Second}
	sample := demo.SampleCampaign("x", "adaptive")
	var sellers []string
	for _, sel := range m.Sellers {
		if !sel.InRegistry {
			sellers = append(sellers, sel.URL)
		}
	}
	// submit sends campaign i until it is accepted, after each refusal's
	// Retry-After. A connection lost before the answer (a keep-alive
	// connection the loaded server closed as it was reused) is sent again
	// as any client must: with the same campaign_id, so a 409 then means
	// the lost one was recorded.
	submit := func(i int) (id string, refusals int) {
		cid := fmt.Sprintf("cmp-full-%02d", i)
		body, _ := json.Marshal(map[string]any{"campaign_id": cid, "brief": api.BriefInputOf(sample.Brief),
			"auto_approve": true, "buyer": sample.Buyer, "sellers": sellers})
		lost := 0
		for ctx.Err() == nil {
			req, _ := http.NewRequest(http.MethodPost, base+"/bookings", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				if lost++; lost > 3 {
					t.Errorf("submit %d: %v (the connection lost %d times)", i, err, lost)
					return "", refusals
				}
				t.Logf("submit %d: %v; sending it again", i, err)
				time.Sleep(200 * time.Millisecond)
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err := apitest.Validate(req, resp.StatusCode, resp.Header, b); err != nil {
				t.Error(err)
			}
			var out struct {
				JobID  string `json:"job_id"`
				Error  string `json:"error"`
				Detail string `json:"detail"`
			}
			_ = json.Unmarshal(b, &out)
			switch {
			case resp.StatusCode == http.StatusOK:
				return out.JobID, refusals
			case resp.StatusCode == http.StatusConflict && lost > 0:
				return cid, refusals
			case resp.StatusCode == http.StatusServiceUnavailable && out.Error == "full":
				after, err := strconv.Atoi(resp.Header.Get("Retry-After"))
				if err != nil || after < 1 {
					t.Errorf("submit %d refused without a Retry-After in seconds: %q", i, resp.Header.Get("Retry-After"))
					return "", refusals
				}
				refusals++
				select {
				case <-ctx.Done():
				case <-time.After(time.Duration(after) * time.Second):
				}
			default:
				t.Errorf("submit %d: %d %s", i, resp.StatusCode, b)
				return "", refusals
			}
		}
		return "", refusals
	}
	var (
		wg       sync.WaitGroup
		smu      sync.Mutex
		ids      []string
		refused  int
		jobs     = make(chan int, campaigns)
		began    = time.Now()
		peakFill float64
	)
	for i := range campaigns {
		jobs <- i
	}
	close(jobs)
	stopPeak, peakDone := make(chan struct{}), make(chan struct{})
	go func() { // the fullest the stream gets
		defer close(peakDone)
		for {
			select {
			case <-stopPeak:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if u, err := a.Bus.Usage(ctx); err == nil {
				smu.Lock()
				peakFill = max(peakFill, u[0].Fill())
				smu.Unlock()
			}
		}
	}()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				id, n := submit(i)
				smu.Lock()
				refused += n
				if id != "" {
					ids = append(ids, id)
				}
				smu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("%d campaigns accepted in %s after %d refusals", len(ids), time.Since(began).Round(time.Millisecond), refused)
	if refused == 0 {
		t.Error("no submission was refused: the stream never filled")
	}
	if len(ids) != campaigns {
		t.Fatalf("%d of %d campaigns accepted", len(ids), campaigns)
	}
	statuses := map[events.CampaignStatus]int{}
	deadline, _ := ctx.Deadline()
	for _, id := range ids {
		var rec *campaign.Campaign
		checkfor.Check(t, time.Until(deadline), 200*time.Millisecond, func() (err error) {
			if rec, err = a.Campaigns.Get(ctx, id); err != nil {
				t.Fatalf("campaign %s: %v", id, err)
			}
			if !rec.Terminal() {
				return fmt.Errorf("campaign %s still %s", id, rec.Status)
			}
			return nil
		})
		if !rec.Status.Succeeded() {
			t.Errorf("campaign %s ended %s: %v", id, rec.Status, rec.Errors)
		}
		statuses[rec.Status]++
	}
	close(stopPeak)
	<-peakDone
	t.Logf("every campaign ended after %s: %v; the stream was %.0f%% full at most", time.Since(began).Round(time.Millisecond), statuses, 100*peakFill)
	if dead := deadLetters(t, a.Bus); len(dead) > 0 {
		t.Errorf("dead letters: %v", dead)
	}

	// Every durable consumer, idle, has handled every event meant for it
	// that the stream ever stored.
	type durable struct {
		name    string
		filters []string
	}
	var durables []durable
	waitIdle := time.Now().Add(30 * time.Second)
	st, err := a.Bus.JS.Stream(ctx, bus.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	for {
		durables = durables[:0]
		idle := true
		l := st.ListConsumers(ctx)
		for info := range l.Info() {
			if info.Config.Durable == "" {
				continue
			}
			f := info.Config.FilterSubjects
			if info.Config.FilterSubject != "" {
				f = append(f, info.Config.FilterSubject)
			}
			durables = append(durables, durable{info.Name, f})
			idle = idle && info.NumPending == 0 && info.NumAckPending == 0
		}
		if idle || time.Now().After(waitIdle) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	omu.Lock()
	defer omu.Unlock()
	hmu.Lock()
	defer hmu.Unlock()
	for seq := uint64(1); seq <= info.State.LastSeq; seq++ {
		ev, ok := seen[seq]
		if !ok {
			t.Fatalf("the observer never saw event %d of %d", seq, info.State.LastSeq)
		}
		for _, d := range durables {
			for _, f := range d.filters {
				if server.SubjectMatchesFilter(ev.subject, f) && !handled[d.name][ev.id] {
					t.Errorf("event %d (%s %s) left the stream or stayed in it unhandled by %s", seq, ev.subject, ev.id, d.name)
				}
			}
		}
	}
	t.Logf("%d events stored, %d purged once processed by all %d durable consumers; %d left", info.State.LastSeq, info.State.FirstSeq-1,
		len(durables), info.State.Msgs)
	if info.State.FirstSeq == 1 {
		t.Error("nothing was purged: the stream never needed room")
	}
}

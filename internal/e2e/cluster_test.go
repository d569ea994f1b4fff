package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dealflow/dealflow/internal/app"
	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/cluster"
	"github.com/dealflow/dealflow/internal/config"
	"github.com/dealflow/dealflow/internal/demo"
	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/internal/sandbox"
	"github.com/dealflow/dealflow/pkg/events"
)

// clusterStack is the whole pipeline in one process connected to a
// three-node cluster (started from deploy/nats/cluster.conf) with every
// URL, streams and buckets at three replicas, plus an observer connection.
type clusterStack struct {
	c        *cluster.Cluster
	market   *sandbox.Market
	app      *app.App
	observer *bus.Bus
}

func startClusterStack(t *testing.T) *clusterStack {
	t.Helper()
	if testing.Short() {
		t.Skip("cluster failover test: skipped under -short")
	}
	c := natstest.StartCluster(t)
	mcfg := sandbox.DefaultMarket()
	for i := range mcfg.Sellers {
		mcfg.Sellers[i].Faults.Latency = 15 * time.Millisecond // long enough to kill a node mid-campaign
	}
	m, err := sandbox.Start(context.Background(), mcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	cfg := config.Defaults()
	cfg.NATSURL, cfg.Replicas, cfg.RegistryURL, cfg.AllowPrivate, cfg.Window = c.URL(), 3, m.RegistryURL, true, 60*time.Second
	a, err := app.Start(context.Background(), cfg, natstest.Logger(), app.Options{Credentials: m.Credentials(), SweepEvery: 200 * time.Millisecond,
		// A message handed to a connection that then died comes back after
		// AckWait: keep it short so failover is quick.
		StageTuning: func(sc *bus.StageConfig) { sc.AckWait = 5 * time.Second }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	nc, err := nats.Connect(c.URL(), bus.ConnectOptions("observer", natstest.Logger())...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ob, err := bus.New(nc, bus.Config{Replicas: 3}, natstest.Logger())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{bus.StreamEvents, bus.StreamDLQ} {
		si, err := ob.JS.Stream(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		if r := si.CachedInfo().Config.Replicas; r != 3 {
			t.Fatalf("stream %s has %d replicas, want 3", name, r)
		}
	}
	for _, name := range bus.Buckets {
		kv, err := ob.JS.KeyValue(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		st, err := kv.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if r := st.(*jetstream.KeyValueBucketStatus).StreamInfo().Config.Replicas; r != 3 {
			t.Fatalf("bucket %s has %d replicas, want 3", name, r)
		}
	}
	return &clusterStack{c: c, market: m, app: a, observer: ob}
}

// campaignRun is what the observer saw of one campaign.
type campaignRun struct {
	req      events.CampaignRequested
	res      demo.Result
	packages map[string]int // seller|package -> PackageFound count
	quotes   map[string]int // seller|package -> QuoteReady count
}

// runCampaigns submits n campaigns, calls disrupt once the first QuoteReady
// of any of them is seen (a negotiation has finished, others are running),
// and waits until every campaign ended.
func (s *clusterStack) runCampaigns(t *testing.T, n int, disrupt func()) []*campaignRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	firstQuote := make(chan struct{})
	var once sync.Once
	runs := make([]*campaignRun, n)
	var wg sync.WaitGroup
	for i := range n {
		req := demo.SampleCampaign(fmt.Sprintf("%s-%d", strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")), i), "adaptive")
		for _, sel := range s.market.Sellers {
			if !sel.InRegistry {
				req.Sellers = append(req.Sellers, sel.URL)
			}
		}
		r := &campaignRun{req: req, res: demo.Result{CampaignID: req.CampaignID}, packages: map[string]int{}, quotes: map[string]int{}}
		runs[i] = r
		if _, err := s.app.Campaigns.Submit(ctx, s.app.Bus, req, time.Now().UTC()); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = s.observer.Follow(ctx, req.CampaignID, func(e events.Event) bool {
				p, _, _ := events.Payload(e)
				switch v := p.(type) {
				case *events.PackageFound:
					r.packages[v.Seller.URL+"|"+v.Package.ID]++
				case *events.QuoteReady:
					r.quotes[v.Seller.URL+"|"+v.Package.ID]++
					once.Do(func() { close(firstQuote) })
				}
				return demo.Observe(e, &r.res, nil, nopWriter{})
			})
		}()
	}
	select {
	case <-firstQuote:
		disrupt()
	case <-ctx.Done():
		t.Fatal("no QuoteReady before the deadline")
	}
	wg.Wait()
	return runs
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }

// checkRuns asserts every campaign completed, no event was lost, no deal
// was booked twice and spend stayed within budget.
func (s *clusterStack) checkRuns(t *testing.T, runs []*campaignRun) {
	t.Helper()
	booked := sellerDeals(s.market)
	quotesBooked := map[string]int{}
	for _, sel := range s.market.Sellers {
		for _, d := range sel.Deals() {
			quotesBooked[sel.Name+"|"+d.QuoteID]++
		}
	}
	for q, n := range quotesBooked {
		if n != 1 {
			t.Fatalf("quote %s booked %d times at the seller", q, n)
		}
	}
	reported := 0
	for _, r := range runs {
		id := r.req.CampaignID
		if st := r.res.Status; st != events.StatusCompleted && st != events.StatusPartial {
			t.Fatalf("campaign %s ended %q (failed %v)", id, st, r.res.Failed)
		}
		if len(r.packages) == 0 {
			t.Fatalf("campaign %s: no packages found", id)
		}
		for k := range r.packages {
			if r.quotes[k] != 1 {
				s.diagnose(t, id)
				t.Fatalf("campaign %s: package %s has %d QuoteReady, want exactly 1", id, k, r.quotes[k])
			}
		}
		if len(r.res.Deals) == 0 {
			t.Fatalf("campaign %s: no deals", id)
		}
		var sum events.Micros
		for _, d := range r.res.Deals {
			if booked[bookingID(d)] != 1 {
				t.Fatalf("campaign %s: deal %s booked %d times at the seller", id, bookingID(d), booked[bookingID(d)])
			}
			sum += d.SpendMicros
		}
		reported += len(r.res.Deals)
		if sum != r.res.TotalSpendMicros || sum > r.req.Brief.BudgetMicros {
			t.Fatalf("campaign %s: spend %s (deals %s) over budget %s", id, r.res.TotalSpendMicros, sum, r.req.Brief.BudgetMicros)
		}
	}
	if len(booked) != reported {
		t.Fatalf("sellers hold %d deals, campaigns report %d", len(booked), reported)
	}
	if err := s.app.Err(); err != nil {
		t.Fatalf("a component failed: %v", err)
	}
}

// diagnose logs what the stream and the dead-letter stream hold for a
// campaign, to tell a lost event from one the observer missed.
func (s *clusterStack) diagnose(t *testing.T, id string) {
	t.Helper()
	ctx := context.Background()
	subj := events.KindQuoteReady.SubjectFor(id)
	if st, err := s.observer.JS.Stream(ctx, bus.StreamEvents); err == nil {
		if info, err := st.Info(ctx, jetstream.WithSubjectFilter(subj)); err == nil {
			t.Logf("stream %s holds %d QuoteReady for %s", bus.StreamEvents, info.State.Subjects[subj], id)
		}
	}
	if st, err := s.observer.JS.Stream(ctx, bus.StreamDLQ); err == nil {
		if info, err := st.Info(ctx); err == nil {
			t.Logf("dead letters: %d", info.State.Msgs)
			for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
				if m, err := st.GetMsg(ctx, seq); err == nil {
					t.Logf("dead letter %d %s: %v", seq, m.Subject, m.Header)
				}
			}
		}
	}
	if ci, err := s.observer.JS.Consumer(ctx, bus.StreamEvents, "negotiator"); err == nil {
		info := ci.CachedInfo()
		t.Logf("negotiator consumer: pending %d, ack pending %d, redelivered %d", info.NumPending, info.NumAckPending, info.NumRedelivered)
	}
}

func TestClusterStreamLeaderKilledMidCampaign(t *testing.T) {
	s := startClusterStack(t)
	runs := s.runCampaigns(t, 2, func() {
		leader := s.c.StreamLeader(bus.StreamEvents)
		if leader < 0 {
			t.Error("no stream leader")
			return
		}
		s.c.Kill(leader)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		next, err := s.c.WaitStreamLeader(ctx, bus.StreamEvents, leader)
		if err != nil {
			t.Error(err)
			return
		}
		t.Logf("killed stream leader %s; %s took over", s.c.Nodes[leader].Name, s.c.Nodes[next].Name)
	})
	s.checkRuns(t, runs)
}

func TestClusterFollowerKilledAndRestarted(t *testing.T) {
	s := startClusterStack(t)
	runs := s.runCampaigns(t, 2, func() {
		leader := s.c.StreamLeader(bus.StreamEvents)
		victim := (leader + 1) % len(s.c.Nodes)
		s.c.Kill(victim)
		time.Sleep(300 * time.Millisecond)
		if err := s.c.Restart(victim); err != nil {
			t.Error(err)
			return
		}
		t.Logf("killed and restarted follower %s (leader %s)", s.c.Nodes[victim].Name, s.c.Nodes[max(leader, 0)].Name)
	})
	s.checkRuns(t, runs)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestClusterClientNodeKilled(t *testing.T) {
	s := startClusterStack(t)
	runs := s.runCampaigns(t, 2, func() {
		url := s.app.Bus.NC.ConnectedUrl()
		victim := -1
		for i, n := range s.c.Nodes {
			if n.ClientURL() == url {
				victim = i
			}
		}
		if victim < 0 {
			t.Errorf("stages connected to %q, not a cluster node", url)
			return
		}
		s.c.Kill(victim)
		t.Logf("killed %s, the node the stages were connected to", s.c.Nodes[victim].Name)
	})
	s.checkRuns(t, runs)
	if url := s.app.Bus.NC.ConnectedUrl(); url == "" {
		t.Fatal("stages not reconnected")
	}
}

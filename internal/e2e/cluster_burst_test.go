package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/dealflow/dealflow/internal/app"
	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/campaign"
	"github.com/dealflow/dealflow/internal/config"
	"github.com/dealflow/dealflow/internal/demo"
	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/internal/sandbox"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/services/booker"
)

// burstCampaigns is how many campaigns TestClusterBurstOfAutoApprovals
// submits: DEALFLOW_CLUSTER_BURST, default 300 (about a minute on two
// cores).
func burstCampaigns(t *testing.T) int {
	n := 300
	if v := os.Getenv("DEALFLOW_CLUSTER_BURST"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("DEALFLOW_CLUSTER_BURST=%q is not a positive count", v)
		}
	}
	return n
}

// TestClusterBurstOfAutoApprovals: on a three-node cluster, with the
// bookers in two processes on the nodes that do not lead the campaigns
// bucket, auto-approved campaigns are submitted in bursts.
// Every campaign ends (none is left proposed, booking or anywhere else),
// and no approval or line is dead-lettered: the booker reads the campaign
// records through the bucket's leader, so an approval never meets a
// record that does not show its plan yet.
func TestClusterBurstOfAutoApprovals(t *testing.T) {
	if testing.Short() {
		t.Skip("three-node cluster burst: skipped under -short")
	}
	n := burstCampaigns(t)
	c := natstest.StartCluster(t)
	// One seller with one fitting package, no latency: the burst is about
	// the campaign records, not the sellers.
	seller := sandbox.DefaultMarket().Sellers[1]
	m, err := sandbox.Start(context.Background(), sandbox.MarketConfig{Sellers: []sandbox.SellerConfig{seller}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	// The front process (shopping stages and the campaign store Submit
	// writes through) runs on the campaigns bucket's leader; the bookers
	// run on the two other nodes, whose replicas apply each write shortly
	// after the leader acknowledged it: a booker reading its own node's
	// replica may not see the plan its approval follows.
	start := func(node int, stages []string) *app.App {
		cfg := config.Defaults()
		cfg.NATSURL, cfg.Replicas, cfg.RegistryURL, cfg.AllowPrivate, cfg.Window = c.Nodes[node].ClientURL(), 3, m.RegistryURL, true, 60*time.Second
		cfg.Stages, cfg.HTTPAddr = stages, "127.0.0.1:0"
		a, err := app.Start(context.Background(), cfg, natstest.Logger(), app.Options{Credentials: m.Credentials(), SweepEvery: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(a.Stop)
		return a
	}
	front := start(0, []string{"discoverer", "kitfetcher", "negotiator"})
	leader := c.StreamLeader(campaign.RecordsStream)
	if leader < 0 {
		t.Fatal("the campaigns bucket has no leader")
	}
	if leader != 0 {
		front.Stop()
		front = start(leader, []string{"discoverer", "kitfetcher", "negotiator"})
	}
	var bookers []*app.App
	for i := range c.Nodes {
		if i != leader {
			bookers = append(bookers, start(i, []string{"booker"}))
		}
	}
	apps := append([]*app.App{front}, bookers...)

	began := time.Now()
	ids := make([]string, n)
	const burst = 50
	for b := 0; b < n; b += burst {
		var wg sync.WaitGroup
		errs := make(chan error, burst)
		for i := b; i < min(b+burst, n); i++ {
			req := demo.SampleCampaign(fmt.Sprintf("cmp-burst-%04d", i), "threshold")
			req.Brief.BudgetMicros = events.MustMicros(500) // ~20k impressions: the seller's inventory lasts
			req.Brief.PerSellerCapMicros = req.Brief.BudgetMicros
			req.Brief.Channels = []string{"video"}
			ids[i] = req.CampaignID
			a := front
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				// As a client would: a submission the store could not
				// take in time (a slow machine) is submitted again; one
				// recorded meanwhile answers ErrExists.
				for {
					_, err := a.Campaigns.Submit(ctx, a.Bus, req, time.Now().UTC())
					switch {
					case err == nil, errors.Is(err, campaign.ErrExists):
						return
					case errors.Is(err, campaign.ErrUnavailable) && ctx.Err() == nil:
						time.Sleep(time.Second)
						continue
					}
					errs <- fmt.Errorf("submit %s: %w", req.CampaignID, err)
					return
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("%d campaigns submitted in bursts of %d in %s", n, burst, time.Since(began).Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	open := map[string]events.CampaignStatus{}
	for _, id := range ids {
		open[id] = ""
	}
	statuses := map[events.CampaignStatus]int{}
	for len(open) > 0 && ctx.Err() == nil {
		for id := range open {
			rec, err := apps[0].Campaigns.Get(ctx, id)
			switch {
			case err != nil:
				open[id] = "unreadable: " + events.CampaignStatus(err.Error())
			case rec.Terminal():
				statuses[rec.Status]++
				if rec.Status != events.StatusCompleted && statuses[rec.Status] <= 2 {
					t.Logf("campaign %s ended %s: %v", id, rec.Status, rec.Errors)
				}
				delete(open, id)
			default:
				open[id] = rec.Status
			}
		}
		if len(open) > 0 {
			time.Sleep(500 * time.Millisecond)
		}
	}
	t.Logf("%d campaigns ended in %s: %v", n-len(open), time.Since(began).Round(time.Millisecond), statuses)
	dead := deadLetters(t, apps[0].Bus)
	if len(open) > 0 {
		stuck := map[events.CampaignStatus]int{}
		for _, st := range open {
			stuck[st]++
		}
		t.Errorf("%d of %d campaigns never ended: %v", len(open), n, stuck)
	}
	for _, stage := range []string{booker.StageBook, booker.StageLine} {
		if dead[stage] > 0 {
			t.Errorf("%d events dead-lettered by %s", dead[stage], stage)
		}
	}
	if statuses[events.StatusCompleted] == 0 {
		t.Errorf("no campaign completed: %v", statuses)
	}
	for _, a := range apps {
		if err := a.Err(); err != nil {
			t.Fatalf("a component failed: %v", err)
		}
	}
}

// deadLetters counts the dead letters by stage and logs them.
func deadLetters(t *testing.T, b *bus.Bus) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := b.JS.Stream(ctx, bus.StreamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(bus.DLQPrefix+">"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for subj, k := range info.State.Subjects {
		out[strings.TrimPrefix(subj, bus.DLQPrefix)] = int(k)
	}
	if len(out) > 0 {
		t.Logf("dead letters by stage: %v", out)
		for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq && seq < info.State.FirstSeq+10; seq++ {
			if m, err := st.GetMsg(ctx, seq); err == nil {
				t.Logf("dead letter %d %s: %s", seq, m.Subject, m.Header.Get(bus.HeaderDLQReason))
			}
		}
	}
	return out
}

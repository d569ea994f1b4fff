// Package bench measures dealflow on the machine it runs on, for
// `dealflow bench`: the whole pipeline against a generated sandbox market
// (latency multiples, throughput, CPU, RSS, stream bytes), and one stage hop
// against the same hop written directly on nats.go's jetstream API. It lives
// apart from internal/bus so that the event bus carries no measurement code.
package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/dealflow/dealflow/internal/app"
	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/campaign"
	"github.com/dealflow/dealflow/internal/cluster"
	"github.com/dealflow/dealflow/internal/config"
	"github.com/dealflow/dealflow/internal/embednats"
	"github.com/dealflow/dealflow/internal/sandbox"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/identity"
)

// Result is what `dealflow bench --json` prints. Every figure comes
// from one run on this machine.
type Result struct {
	Sellers           int     `json:"sellers"`
	LatencyMS         float64 `json:"latency_ms"`
	Campaigns         int     `json:"campaigns"`
	NegotiatorProcs   int     `json:"negotiator_procs"`
	NegotiatorWorkers int     `json:"negotiator_workers"`
	ClusterNodes      int     `json:"cluster_nodes"`
	CampaignsDone     int     `json:"campaigns_completed"`
	Packages          int     `json:"packages"`
	Negotiations      int     `json:"negotiations"`

	// The solo campaign (run alone first).
	KitsMS                float64 `json:"kits_ms"`
	KitsXLatency          float64 `json:"kits_x_latency"`
	CampaignMS            float64 `json:"campaign_ms"`
	CriticalPathMS        float64 `json:"critical_path_ms"`
	CampaignXCriticalPath float64 `json:"campaign_x_critical_path"`

	// The throughput phase (Campaigns submitted at once).
	NegotiationsPerS float64 `json:"negotiations_per_s"`
	EventsPerS       float64 `json:"events_per_s"`

	// Costs over both phases, per campaign (Campaigns + 1 solo).
	EventsPerCampaign      float64 `json:"events_per_campaign"`
	StreamBytesPerCampaign float64 `json:"stream_bytes_per_campaign"`
	CPUSeconds             float64 `json:"cpu_s"`
	ChildCPUSeconds        float64 `json:"child_cpu_s"`
	CPUSPerCampaign        float64 `json:"cpu_s_per_campaign"`
	PeakRSSBytes           int64   `json:"peak_rss_bytes"`
	ChildPeakRSSBytes      int64   `json:"child_peak_rss_bytes"`

	// Stage hop throughput against the raw JetStream baseline.
	RawHopsPerS float64 `json:"raw_hops_per_s"`
	HopsPerS    float64 `json:"hops_per_s"`
	HopVsRaw    float64 `json:"hop_vs_raw"`
}

// Options is one measurement's shape.
type Options struct {
	Sellers           int           // generated sandbox sellers
	Latency           time.Duration // added to every seller and registry answer
	Campaigns         int           // submitted at once in the throughput phase, after one solo campaign
	NegotiatorProcs   int           // child processes of this binary running the negotiator (0: in this process)
	NegotiatorWorkers int           // negotiations each negotiator runs at once
	Nodes             int           // JetStream nodes: 1 or 3
	Hops              int           // events for the stage-hop and raw JetStream baselines
	LogLevel          string        // the pipeline's log level
}

// benchNATS starts a fresh single server or three-node cluster.
func benchNATS(ctx context.Context, nodes int) (url string, closeFn func(), err error) {
	if nodes == 3 {
		c, err := cluster.Start(ctx, cluster.Options{})
		if err != nil {
			return "", nil, err
		}
		return c.URL(), c.Close, nil
	}
	s, err := embednats.Start(embednats.Options{Port: 0})
	if err != nil {
		return "", nil, err
	}
	return s.ClientURL(), s.Close, nil
}

func rusage(who int) syscall.Rusage {
	var ru syscall.Rusage
	_ = syscall.Getrusage(who, &ru)
	return ru
}

func cpuSeconds(ru syscall.Rusage) float64 {
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// Run measures the pipeline against a sandbox market of f.Sellers sellers,
// then the stage hop against raw JetStream on a fresh server. Everything
// shares this machine: the figures include the sandbox and NATS.
func Run(ctx context.Context, f Options, log zerolog.Logger) (Result, error) {
	res := Result{Sellers: f.Sellers, LatencyMS: float64(f.Latency) / 1e6, Campaigns: f.Campaigns, NegotiatorProcs: f.NegotiatorProcs,
		NegotiatorWorkers: f.NegotiatorWorkers, ClusterNodes: f.Nodes}
	self0, child0 := rusage(syscall.RUSAGE_SELF), rusage(syscall.RUSAGE_CHILDREN)

	url, closeNATS, err := benchNATS(ctx, f.Nodes)
	if err != nil {
		return res, err
	}
	defer closeNATS()
	mcfg := sandbox.GenerateMarket(f.Sellers, f.Latency)
	mcfg.Registry.Faults.Latency = f.Latency // the registry is one more round trip away
	m, err := sandbox.Start(ctx, mcfg, sandbox.WithSharedListener(), sandbox.WithoutRequestLog())
	if err != nil {
		return res, err
	}
	defer m.Close()

	stages := []string{"discoverer", "kitfetcher", "booker"}
	if f.NegotiatorProcs == 0 {
		stages = append(stages, "negotiator")
	}
	cfg := config.Defaults()
	cfg.NATSURL, cfg.Replicas, cfg.RegistryURL, cfg.AllowPrivate, cfg.Stages = url, f.Nodes, m.RegistryURL, true, stages
	cfg.KitWorkers, cfg.NegWorkers, cfg.LogLevel = min(max(f.Sellers, 32), 1000), f.NegotiatorWorkers, f.LogLevel
	a, err := app.Start(ctx, cfg, log, app.Options{Credentials: m.Credentials(), SweepEvery: 100 * time.Millisecond})
	if err != nil {
		return res, err
	}
	stopApp := sync.OnceFunc(a.Stop)
	defer stopApp()
	children, err := startNegotiators(ctx, f, url, m)
	stopChildren := sync.OnceFunc(func() { stopProcs(children) })
	defer stopChildren()
	if err != nil {
		return res, err
	}

	bytes0, msgs0, err := a.Bus.StreamStats(ctx)
	if err != nil {
		return res, err
	}
	// Phase 1: one campaign alone, for the latency multiples.
	solo, err := benchCampaign(ctx, a, campaign.NewID())
	if err != nil {
		return res, err
	}
	critical := time.Duration(2+solo.maxCalls+2) * f.Latency // registry, packages, quote+rounds, re-quote, booking
	res.KitsMS, res.CampaignMS, res.CriticalPathMS = ms(solo.kits), ms(solo.wall), ms(critical)
	res.KitsXLatency = round2(float64(solo.kits) / float64(f.Latency))
	res.CampaignXCriticalPath = round2(float64(solo.wall) / float64(critical))
	done, packages, negs := count(solo)

	// Phase 2: Campaigns at once, for throughput.
	_, msgs1, err := a.Bus.StreamStats(ctx)
	if err != nil {
		return res, err
	}
	start := time.Now()
	runs := make([]campaignStats, f.Campaigns)
	errs := make([]error, f.Campaigns)
	var wg sync.WaitGroup
	for i := range f.Campaigns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runs[i], errs[i] = benchCampaign(ctx, a, campaign.NewID())
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	var lastQuote time.Duration
	tputNegs := 0
	for i, r := range runs {
		if errs[i] != nil {
			return res, errs[i]
		}
		lastQuote = max(lastQuote, r.lastQuote)
		d, p, n := count(r)
		done, packages, negs, tputNegs = done+d, packages+p, negs+n, tputNegs+n
	}
	bytes2, msgs2, err := a.Bus.StreamStats(ctx)
	if err != nil {
		return res, err
	}
	res.CampaignsDone, res.Packages, res.Negotiations = done, packages, negs
	if lastQuote > 0 {
		res.NegotiationsPerS = round2(float64(tputNegs) / lastQuote.Seconds())
	}
	res.EventsPerS = round2(float64(msgs2-msgs1) / elapsed.Seconds())
	total := float64(f.Campaigns + 1)
	res.EventsPerCampaign = round2(float64(msgs2-msgs0) / total)
	res.StreamBytesPerCampaign = round2(float64(bytes2-bytes0) / total)

	stopChildren()
	stopApp()
	self1, child1 := rusage(syscall.RUSAGE_SELF), rusage(syscall.RUSAGE_CHILDREN)
	res.CPUSeconds = round2(cpuSeconds(self1) - cpuSeconds(self0))
	res.ChildCPUSeconds = round2(cpuSeconds(child1) - cpuSeconds(child0))
	res.CPUSPerCampaign = round2((res.CPUSeconds + res.ChildCPUSeconds) / total)
	res.PeakRSSBytes = self1.Maxrss * 1024 // kilobytes on Linux
	res.ChildPeakRSSBytes = child1.Maxrss * 1024

	// Baselines on a fresh server of the same shape, so nothing of the
	// pipeline competes with them.
	res.HopsPerS, res.RawHopsPerS, err = benchHops(ctx, f)
	if err != nil {
		return res, err
	}
	res.HopsPerS, res.RawHopsPerS = round2(res.HopsPerS), round2(res.RawHopsPerS)
	res.HopVsRaw = round2(res.HopsPerS / res.RawHopsPerS)
	return res, nil
}

func benchHops(ctx context.Context, f Options) (hops, raw float64, err error) {
	url, closeNATS, err := benchNATS(ctx, f.Nodes)
	if err != nil {
		return 0, 0, err
	}
	defer closeNATS()
	nc, err := nats.Connect(url, nats.Name("dealflow-bench"))
	if err != nil {
		return 0, 0, err
	}
	defer nc.Close()
	b, err := bus.New(nc, bus.Config{Replicas: f.Nodes}, zerolog.Nop())
	if err != nil {
		return 0, 0, err
	}
	if err := b.Provision(ctx); err != nil {
		return 0, 0, err
	}
	// A short unmeasured round of each first, so neither pays for the
	// fresh server's first streams, files and connections alone.
	warm := max(f.Hops/10, 1)
	if _, err := HopThroughput(ctx, b, warm, 16); err != nil {
		return 0, 0, err
	}
	if _, err := RawHopThroughput(ctx, b.JS, f.Nodes, warm, 16); err != nil {
		return 0, 0, err
	}
	if hops, err = HopThroughput(ctx, b, f.Hops, 16); err != nil {
		return 0, 0, err
	}
	raw, err = RawHopThroughput(ctx, b.JS, f.Nodes, f.Hops, 16)
	return hops, raw, err
}

type campaignStats struct {
	status     events.CampaignStatus
	kits, wall time.Duration
	lastQuote  time.Duration // since the throughput phase's campaign was submitted
	maxCalls   int
	quotes     int
	packages   int
}

func count(s campaignStats) (done, packages, negotiations int) {
	if s.status.Succeeded() {
		done = 1
	}
	return done, s.packages, s.quotes
}

// benchCampaign submits one auto-approved campaign and follows it to the
// end, timing discovery + media kits (every seller resolved) and the whole.
func benchCampaign(ctx context.Context, a *app.App, id string) (campaignStats, error) {
	req := events.CampaignRequested{CampaignID: id, Brief: events.Brief{Name: "bench", BudgetMicros: events.MustMicros(50000), StartDate: "2027-01-01", EndDate: "2027-01-31",
		Channels: []string{"ctv", "video"}, KPIs: events.KPIs{TargetCPMMicros: events.MustMicros(14), MaxCPMMicros: events.MustMicros(40)}, PerSellerCapMicros: events.MustMicros(15000)},
		Buyer: identity.BuyerIdentity{SeatID: "s", AgencyID: "a", AdvertiserID: "v"}, AutoApprove: true, RequestedAt: time.Now().UTC()}
	var st campaignStats
	start := time.Now()
	if _, err := a.Campaigns.Submit(ctx, a.Bus, req, time.Now().UTC()); err != nil {
		return st, err
	}
	expected, resolved := -1, map[string]bool{}
	err := a.Bus.Follow(ctx, id, func(e events.Event) bool {
		p, _, _ := events.Payload(e)
		switch v := p.(type) {
		case *events.DiscoveryCompleted:
			expected = len(v.Sellers)
		case *events.PackageFound:
			resolved[v.Seller.URL] = true
			st.packages++
		case *events.SellerSkipped:
			if v.Stage == events.StageKitfetcher {
				resolved[v.SellerURL] = true
			}
		case *events.QuoteReady:
			st.quotes++
			st.lastQuote = time.Since(start)
			calls := 1 + len(v.Rounds) // the quote, then each counter
			if v.Outcome == events.OutcomeAccepted && len(v.Rounds) > 0 && v.Rounds[len(v.Rounds)-1].SellerAction != "accept" {
				calls++ // the buyer's accept message
			}
			st.maxCalls = max(st.maxCalls, calls)
		case *events.CampaignRejected:
			st.status = events.StatusRejected
			return false
		case *events.CampaignCompleted:
			st.status = v.Status
			return false
		}
		if st.kits == 0 && expected >= 0 && len(resolved) >= expected {
			st.kits = time.Since(start)
		}
		return true
	})
	st.wall = time.Since(start)
	if err != nil && st.status == "" {
		return st, fmt.Errorf("campaign %s: %w", id, err)
	}
	return st, nil
}

// startNegotiators starts procs child processes of this binary running only
// the negotiator against url, and waits until each runs its stage.
func startNegotiators(ctx context.Context, f Options, url string, m *sandbox.Market) ([]*exec.Cmd, error) {
	if f.NegotiatorProcs == 0 {
		return nil, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "dealflow-bench-")
	if err != nil {
		return nil, err
	}
	creds := map[string]map[string]string{}
	for _, s := range m.Sellers {
		keys := map[string]string{}
		for tier, k := range s.Keys {
			if tier != string(identity.TierPublic) {
				keys[tier] = k
			}
		}
		creds[s.URL] = keys
	}
	b, _ := json.Marshal(map[string]any{"sellers": creds})
	credFile := filepath.Join(dir, "credentials.json")
	if err := os.WriteFile(credFile, b, 0o600); err != nil {
		return nil, err
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DEALFLOW_") {
			env = append(env, kv)
		}
	}
	var cmds []*exec.Cmd
	ready := make(chan error, f.NegotiatorProcs)
	for i := range f.NegotiatorProcs {
		cmd := exec.Command(exe, "run", "--stages", "negotiator", "--nats", url, "--replicas", strconv.Itoa(f.Nodes),
			"--negotiator-workers", strconv.Itoa(f.NegotiatorWorkers), "--allow-private", "--credentials", credFile, "--log-json", "--log-level", "info")
		cmd.Env = env
		pipe, err := cmd.StderrPipe()
		if err != nil {
			return cmds, err
		}
		if err := cmd.Start(); err != nil {
			return cmds, fmt.Errorf("negotiator process %d: %w", i+1, err)
		}
		cmds = append(cmds, cmd)
		go func() {
			sc := bufio.NewScanner(pipe)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			signalled, last := false, ""
			for sc.Scan() {
				if !signalled {
					last = sc.Text()
				}
				if !signalled && strings.Contains(sc.Text(), `"stage running"`) {
					signalled = true
					ready <- nil
				}
			}
			if !signalled {
				ready <- fmt.Errorf("negotiator process %d exited before running its stage: %s", i+1, last)
			}
		}()
	}
	for range f.NegotiatorProcs {
		select {
		case err := <-ready:
			if err != nil {
				return cmds, err
			}
		case <-ctx.Done():
			return cmds, ctx.Err()
		}
	}
	_ = os.RemoveAll(dir) // read at start-up only
	return cmds, nil
}

// stopProcs asks each child to drain and waits for it (so RUSAGE_CHILDREN
// counts it), killing one that takes longer than 20 s.
func stopProcs(cmds []*exec.Cmd) {
	for _, c := range cmds {
		_ = c.Process.Signal(syscall.SIGTERM)
	}
	for _, c := range cmds {
		t := time.AfterFunc(20*time.Second, func() { _ = c.Process.Kill() })
		_ = c.Wait()
		t.Stop()
	}
}

func ms(d time.Duration) float64 { return round2(float64(d) / 1e6) }

func round2(x float64) float64 { return math.Round(x*100) / 100 }

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dealflow/dealflow/internal/app"
	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/config"
	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/internal/sandbox"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/identity"
	"github.com/dealflow/dealflow/pkg/sellerclient"
	"github.com/dealflow/dealflow/services/kitfetcher"
	"github.com/dealflow/dealflow/services/negotiator"
)

func benchMarket(b *testing.B, n int, latency time.Duration) *sandbox.Market {
	b.Helper()
	cfg := sandbox.GenerateMarket(n, latency)
	cfg.Registry.Faults.Latency = latency // the registry is one more round trip away
	m, err := sandbox.Start(context.Background(), cfg, sandbox.WithSharedListener(), sandbox.WithoutRequestLog())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Close() })
	return m
}

func benchApp(b *testing.B, registryURL string, creds *identity.Credentials, stages []string, mutate func(*config.Config)) *app.App {
	return benchAppWrapped(b, registryURL, creds, stages, mutate, nil)
}

// benchAppWrapped is benchApp with every stage's handler wrapped by wrap
// (app.Options.WrapHandler; nil wraps none).
func benchAppWrapped(b *testing.B, registryURL string, creds *identity.Credentials, stages []string, mutate func(*config.Config), wrap func(string, bus.Handler) bus.Handler) *app.App {
	b.Helper()
	cfg := config.Defaults()
	cfg.DataDir, cfg.RegistryURL, cfg.AllowPrivate, cfg.Stages = b.TempDir(), registryURL, true, stages
	if mutate != nil {
		mutate(&cfg)
	}
	a, err := app.Start(context.Background(), cfg, natstest.Logger(), app.Options{Credentials: creds, SweepEvery: 100 * time.Millisecond, WrapHandler: wrap})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(a.Stop)
	return a
}

// cpuTime is the CPU (user + system) the whole test process has used: the
// pipeline, the embedded NATS server and the sandbox sellers together.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func allocMB() float64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.TotalAlloc) / (1 << 20)
}

// BenchmarkDiscoveryAndKits runs campaign discovery plus media-kit fetching
// across N sandbox sellers that each answer after a fixed latency. The
// critical path is two sequential round trips (registry, then each seller's
// packages in parallel); "x-latency" is the wall time as a multiple of the
// latency (ideal: about 2). With -benchtime Nx (N > 1) the first campaign
// is also reported alone ("cold-": nothing cached) and the others together
// ("warm-": the registry answer and the sellers' catalogs come from the
// process's caches, as for every campaign after the first within their
// TTLs in a long-running deployment).
func BenchmarkDiscoveryAndKits(b *testing.B) {
	const latency = 50 * time.Millisecond
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("sellers=%d", n), func(b *testing.B) {
			m := benchMarket(b, n, latency)
			kits := newKitsCounter()
			a := benchAppWrapped(b, m.RegistryURL, m.Credentials(), []string{"discoverer", "kitfetcher"}, func(c *config.Config) { c.KitWorkers = n }, kits.wrap)
			runKitsCampaigns(b, a, kits, n, latency)
		})
	}
}

// BenchmarkDiscoveryAndKitsSellersApart is the 1,000-seller case of
// BenchmarkDiscoveryAndKits with the sandbox market in a process of its own
// (`dealflow sandbox --sellers 1000 --latency 50ms`, every seller on its own
// port, as distinct sellers are), so the CPU and allocation figures are the
// buyer's process alone: the stages, the embedded NATS server and the
// benchmark's follower. The two processes still share the machine's cores,
// so the wall time pays for the sellers' CPU as before.
func BenchmarkDiscoveryAndKitsSellersApart(b *testing.B) {
	const n, latency = 1000, 50 * time.Millisecond
	dir := b.TempDir()
	bin := buildBinary(b, dir)
	credsFile := filepath.Join(dir, "credentials.json")
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "sandbox", "--sellers", strconv.Itoa(n), "--latency", latency.String(), "--json", "--credentials-out", credsFile)
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cancel(); _ = cmd.Wait() })
	var sum sandbox.MarketSummary
	line, err := bufio.NewReader(out).ReadBytes('\n')
	if err != nil || json.Unmarshal(line, &sum) != nil || len(sum.Sellers) != n {
		b.Fatalf("sandbox process: %v (%d sellers) %.200s", err, len(sum.Sellers), line)
	}
	creds, err := identity.LoadCredentials(credsFile)
	if err != nil {
		b.Fatal(err)
	}
	kits := newKitsCounter()
	a := benchAppWrapped(b, sum.RegistryURL, creds, []string{"discoverer", "kitfetcher"}, func(c *config.Config) { c.KitWorkers = n }, kits.wrap)
	runKitsCampaigns(b, a, kits, n, latency)
}

// runKitsCampaigns runs b.N campaigns through discovery and media kits, one
// at a time, each until every found seller is resolved (its packages found
// or the seller skipped), and reports their wall time, CPU and allocation.
//
// While a campaign runs, the benchmark reads only its DiscoveryCompleted and
// then waits for the kitfetcher to have handled and acknowledged every
// SellerFound of the campaign (kitsCounter): the kitfetcher publishes a
// seller's events before acknowledging it, so by then they are all stored.
// Reading every
// PackageFound as it comes would put the benchmark's own NATS reads (about
// 6 MB a campaign at 1,000 sellers) into the pipeline's figures. That every
// seller of every campaign was resolved is checked from the events after
// the last campaign, once all figures and profiles are taken.
//
// With DEALFLOW_BENCH_PROFILES set to a directory, a run of several
// campaigns writes profiles there: the process's allocations before the
// first campaign (start.allocs), after it (first.allocs) and after the last
// (last.allocs), and the CPU of the first campaign (first.cpu) and of the
// later ones (later.cpu). `go tool pprof -base first.allocs last.allocs`
// shows where the later campaigns allocate, `-base start.allocs
// first.allocs` the first (the check of each campaign's events included).
func runKitsCampaigns(b *testing.B, a *app.App, kits *kitsCounter, n int, latency time.Duration) {
	type run struct {
		wall time.Duration
		mb   float64
		cpu  time.Duration
	}
	runs := make([]run, 0, b.N)
	ids := make([]string, 0, b.N)
	var cpuProfile *os.File
	profiles := os.Getenv("DEALFLOW_BENCH_PROFILES")
	if b.N < 2 {
		profiles = "" // the profiles compare the first campaign with the later ones
	}
	if profiles != "" {
		writeAllocsProfile(b, filepath.Join(profiles, "start.allocs"))
		cpuProfile = startCPUProfile(b, filepath.Join(profiles, "first.cpu"))
	}
	for i := 0; i < b.N; i++ {
		mbI, cpuI := allocMB(), cpuTime()
		id := fmt.Sprintf("kits-%d-%d", n, i)
		req := events.CampaignRequested{CampaignID: id, Brief: events.Brief{Name: "bench", BudgetMicros: events.MustMicros(100000), StartDate: "2028-06-01", EndDate: "2028-06-30",
			Channels: []string{"ctv", "video", "display", "mobile"}}, Buyer: identity.BuyerIdentity{SeatID: "s", AgencyID: "a", AdvertiserID: "v"}, RequestedAt: time.Now()}
		e, _ := events.New(events.KindCampaignRequested, events.NewID(), "bench", id, req)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		start, before := time.Now(), kits.n.Load()
		if err := a.Bus.Publish(ctx, e); err != nil {
			b.Fatal(err)
		}
		expected, err := kits.awaitKits(ctx, a.Bus.JS, id, before)
		if err != nil {
			b.Fatal(err)
		}
		runs = append(runs, run{time.Since(start), allocMB() - mbI, cpuTime() - cpuI})
		if profiles != "" {
			switch i {
			case 0:
				pprof.StopCPUProfile()
				_ = cpuProfile.Close()
				writeAllocsProfile(b, filepath.Join(profiles, "first.allocs"))
				cpuProfile = startCPUProfile(b, filepath.Join(profiles, "later.cpu"))
			case b.N - 1:
				pprof.StopCPUProfile()
				_ = cpuProfile.Close()
				writeAllocsProfile(b, filepath.Join(profiles, "last.allocs"))
			}
		}
		cancel()
		if expected != n {
			b.Fatalf("campaign %s: %d sellers found, want %d", id, expected, n)
		}
		ids = append(ids, id)
	}
	// Checked once every campaign's figures are taken, so that no reading
	// of the checks falls into a later campaign's figures or profiles.
	for _, id := range ids {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		resolved, err := kitsResolved(ctx, a.Bus.JS, id, n)
		cancel()
		if err != nil || resolved != n {
			b.Fatalf("campaign %s: %d of %d sellers resolved: %v", id, resolved, n, err)
		}
	}
	var all run
	for _, r := range runs {
		all.wall, all.mb, all.cpu = all.wall+r.wall, all.mb+r.mb, all.cpu+r.cpu
	}
	wall := all.wall / time.Duration(b.N)
	b.ReportMetric(float64(wall.Milliseconds()), "wall-ms")
	b.ReportMetric(float64(wall)/float64(latency), "x-latency")
	b.ReportMetric(all.mb/float64(b.N), "alloc-MB/campaign")
	b.ReportMetric(float64(all.cpu.Milliseconds())/float64(b.N), "cpu-ms/campaign")
	if len(runs) > 1 {
		var warm run
		for _, r := range runs[1:] {
			warm.wall, warm.mb, warm.cpu = warm.wall+r.wall, warm.mb+r.mb, warm.cpu+r.cpu
		}
		k := float64(len(runs) - 1)
		b.ReportMetric(float64(runs[0].wall)/float64(latency), "cold-x-latency")
		b.ReportMetric(runs[0].mb, "cold-alloc-MB")
		b.ReportMetric(float64(runs[0].cpu.Milliseconds()), "cold-cpu-ms")
		b.ReportMetric(float64(warm.wall)/k/float64(latency), "warm-x-latency")
		b.ReportMetric(warm.mb/k, "warm-alloc-MB")
		b.ReportMetric(float64(warm.cpu.Milliseconds())/k, "warm-cpu-ms")
	}
}

// writeAllocsProfile writes the allocation profile as of now: two
// collections first, since the profile is only complete up to the
// collection before last.
func writeAllocsProfile(b *testing.B, path string) {
	runtime.GC()
	runtime.GC()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}

// startCPUProfile starts the process's CPU profile into path.
func startCPUProfile(b *testing.B, path string) *os.File {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return f
}

// kitsCounter counts the kitfetcher's handlings as they return (it wraps
// the stage's handler), so that the kits benchmarks can wait for a
// campaign without asking the broker over and over: a consumer-info request
// every few milliseconds is a kilobyte or two of JSON each way, about 1 MB
// and 15 ms of CPU per 1,000-seller campaign, which would be counted as the
// pipeline's.
type kitsCounter struct {
	n       atomic.Int64
	changed chan struct{} // signalled on each return
}

func newKitsCounter() *kitsCounter { return &kitsCounter{changed: make(chan struct{}, 1)} }

// wrap is an app.Options.WrapHandler.
func (c *kitsCounter) wrap(stage string, h bus.Handler) bus.Handler {
	if stage != kitfetcher.Stage {
		return h
	}
	return func(ctx context.Context, in events.Event, p any) ([]events.Event, error) {
		outs, err := h(ctx, in, p)
		c.n.Add(1)
		select {
		case c.changed <- struct{}{}:
		default:
		}
		return outs, err
	}
}

// awaitKits waits for campaign id's discovery and media kits (before is
// the kitfetcher's count of returns when the campaign was published): the
// campaign's DiscoveryCompleted (the number of sellers found), then as many
// more kitfetcher returns, then the kitfetcher's acknowledgement of the
// campaign's last SellerFound (it publishes a seller's events before
// acknowledging it, so they are all stored by then).
func (c *kitsCounter) awaitKits(ctx context.Context, js jetstream.JetStream, id string, before int64) (int, error) {
	cons, err := js.OrderedConsumer(ctx, bus.StreamEvents, jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.KindDiscoveryCompleted.SubjectFor(id)}})
	if err != nil {
		return 0, err
	}
	m, err := cons.Next(jetstream.FetchMaxWait(time.Minute))
	if err != nil {
		return 0, fmt.Errorf("DiscoveryCompleted: %w", err)
	}
	var dc struct {
		Sellers []json.RawMessage `json:"sellers"`
	}
	if err := json.Unmarshal(m.Data(), &dc); err != nil {
		return 0, err
	}
	st, err := js.Stream(ctx, bus.StreamEvents)
	if err != nil {
		return 0, err
	}
	last, err := st.GetLastMsgForSubject(ctx, events.KindSellerFound.SubjectFor(id))
	if err != nil {
		return 0, fmt.Errorf("last SellerFound: %w", err)
	}
	for c.n.Load()-before < int64(len(dc.Sellers)) {
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("%d of %d sellers handled: %w", c.n.Load()-before, len(dc.Sellers), ctx.Err())
		case <-c.changed:
		}
	}
	// The returns counted may include a retried attempt; the consumer's
	// acknowledgement floor is the proof. It is a few publications away.
	kc, err := js.Consumer(ctx, bus.StreamEvents, kitfetcher.Stage)
	if err != nil {
		return 0, err
	}
	for {
		info, err := kc.Info(ctx)
		if err != nil {
			return 0, err
		}
		if info.AckFloor.Stream >= last.Sequence {
			return len(dc.Sellers), nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-c.changed:
		case <-time.After(time.Millisecond):
		}
	}
}

// kitsResolved counts the sellers of campaign id that the kitfetcher
// resolved (a PackageFound, or a SellerSkipped of its stage), reading until
// want are.
func kitsResolved(ctx context.Context, js jetstream.JetStream, id string, want int) (int, error) {
	resolved := map[string]bool{}
	if want <= 0 {
		return 0, nil
	}
	var bad error
	err := followKits(ctx, js, id, func(typ string, data []byte) bool {
		switch typ {
		case events.KindPackageFound.Type:
			u, ok := leadingString(data, `"seller":{"url":"`)
			if !ok {
				bad = fmt.Errorf("no seller url in %.200s", data)
				return false
			}
			resolved[u] = true
		case events.KindSellerSkipped.Type:
			var v struct {
				SellerURL string `json:"seller_url"`
				Stage     string `json:"stage"`
			}
			if bad = json.Unmarshal(data, &v); bad != nil {
				return false
			}
			if v.Stage == events.StageKitfetcher {
				resolved[v.SellerURL] = true
			}
		}
		return len(resolved) < want
	})
	if bad != nil {
		return len(resolved), bad
	}
	return len(resolved), err
}

// leadingString is the JSON string that directly follows prefix in data
// (the first occurrence), when it has no escapes.
func leadingString(data []byte, prefix string) (string, bool) {
	i := bytes.Index(data, []byte(prefix))
	if i < 0 {
		return "", false
	}
	rest := data[i+len(prefix):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 || bytes.IndexByte(rest[:j], '\\') >= 0 {
		return "", false
	}
	return string(rest[:j]), true
}

// followKits reads the campaign's PackageFound and SellerSkipped events
// (only those: a filtered ordered consumer) and passes each one's type and
// data to fn until it returns false. It is lighter than bus.Follow, which
// decodes every event of the campaign as a CloudEvent.
func followKits(ctx context.Context, js jetstream.JetStream, id string, fn func(typ string, data []byte) bool) error {
	cons, err := js.OrderedConsumer(ctx, bus.StreamEvents, jetstream.OrderedConsumerConfig{FilterSubjects: []string{
		events.KindPackageFound.SubjectFor(id), events.KindSellerSkipped.SubjectFor(id)}})
	if err != nil {
		return err
	}
	it, err := cons.Messages()
	if err != nil {
		return err
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		m, err := it.Next()
		if err != nil {
			return err
		}
		if !fn(m.Headers().Get("ce-type"), m.Data()) {
			return nil
		}
	}
}

// benchPackages fetches one fitting package per seller, as the kitfetcher
// would emit them, at agency tier.
func benchPackages(b *testing.B, m *sandbox.Market) []events.PackageFound {
	b.Helper()
	client := sellerclient.New(sellerclient.Config{AllowPrivate: true})
	kit := &kitfetcher.Service{Client: client, Credentials: m.Credentials(), SellerTimeout: time.Minute}
	brief := events.Brief{Name: "bench", BudgetMicros: events.MustMicros(40000), StartDate: "2028-06-01", EndDate: "2028-06-30", KPIs: events.KPIs{TargetCPMMicros: events.MustMicros(12), MaxCPMMicros: events.MustMicros(40)}}
	var out []events.PackageFound
	for _, s := range m.Sellers {
		u, _ := sellerclient.CanonicalURL(s.URL)
		sf := events.SellerFound{CampaignID: "x", Seller: events.Seller{URL: u, Name: s.Name, Trust: identity.TrustPreferred, Source: "registry"},
			Disclosure: events.Disclosure{Tier: identity.TierAgency, Recommended: identity.TierAgency, Cap: identity.TierAgency}, Brief: brief.ForShopping()}
		pkgs, err := kit.Fetch(context.Background(), sf)
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, events.PackageFound{Seller: sf.Seller, Disclosure: sf.Disclosure, Package: pkgs[0], PackagesTotal: 1, Brief: brief.ForShopping()})
	}
	return out
}

// BenchmarkNegotiation publishes 100 campaigns x 20 packages (one per
// sandbox seller, each answering after a fixed latency) to negotiator
// replicas sharing the durable consumer, and reports negotiations per
// second. The single-campaign case reports the campaign's negotiation time
// as a multiple of (sequential seller calls of its longest negotiation x
// latency): the ideal is 1, since all its negotiations run at once.
func BenchmarkNegotiation(b *testing.B) {
	const latency = 20 * time.Millisecond
	for _, c := range []struct {
		campaigns, replicas int
	}{{1, 1}, {100, 1}, {100, 2}, {100, 3}} {
		b.Run(fmt.Sprintf("campaigns=%d/replicas=%d", c.campaigns, c.replicas), func(b *testing.B) {
			m := benchMarket(b, 20, latency)
			pkgs := benchPackages(b, m)
			env := natstest.Start(b)
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			for r := 0; r < c.replicas; r++ {
				rb := env.Connect(b, fmt.Sprint("neg-", r))
				sessions, err := bus.OpenStore[negotiator.Session](ctx, rb, bus.BucketNegotiations)
				if err != nil {
					b.Fatal(err)
				}
				quotes, err := bus.OpenStore[negotiator.Competing](ctx, rb, bus.BucketQuotes)
				if err != nil {
					b.Fatal(err)
				}
				svc := &negotiator.Service{Client: sellerclient.New(sellerclient.Config{AllowPrivate: true}), Credentials: m.Credentials(),
					Sessions: sessions, Quotes: quotes, Timeout: time.Minute, Log: natstest.Logger()}
				wg.Add(1)
				go func() {
					defer wg.Done()
					_ = rb.Run(ctx, bus.StageConfig{Name: negotiator.Stage, Subjects: negotiator.Subjects(), Workers: 64}, bus.Typed(svc.Handle))
				}()
			}
			defer func() { cancel(); wg.Wait() }()
			var totalWall time.Duration
			var ratios []float64
			for it := 0; it < b.N; it++ {
				start := time.Now()
				for ci := 0; ci < c.campaigns; ci++ {
					id := fmt.Sprintf("neg-%d-%d", it, ci)
					for pi, p := range pkgs {
						p.CampaignID = id
						p.Negotiation = events.NegotiationPolicy{Strategy: []string{"threshold", "adaptive", "competitive"}[pi%3]}
						e, _ := events.New(events.KindPackageFound, events.NewID(), "bench", id, p)
						if err := env.Bus.Publish(ctx, e); err != nil {
							b.Fatal(err)
						}
					}
				}
				var mu sync.Mutex
				var fwg sync.WaitGroup
				for ci := 0; ci < c.campaigns; ci++ {
					id := fmt.Sprintf("neg-%d-%d", it, ci)
					fwg.Add(1)
					go func() {
						defer fwg.Done()
						got, maxCalls := 0, 0
						fctx, fcancel := context.WithTimeout(ctx, 5*time.Minute)
						defer fcancel()
						_ = env.Bus.Follow(fctx, id, func(e events.Event) bool {
							if q, err := events.PayloadOf[events.QuoteReady](e, events.KindQuoteReady); err == nil {
								got++
								calls := 1 + len(q.Rounds) // the quote, then each counter
								if q.Outcome == events.OutcomeAccepted && len(q.Rounds) > 0 && q.Rounds[len(q.Rounds)-1].SellerAction != "accept" {
									calls++ // the buyer's accept message
								}
								maxCalls = max(maxCalls, calls)
							}
							return got < len(pkgs)
						})
						mu.Lock()
						ratios = append(ratios, float64(time.Since(start))/float64(time.Duration(maxCalls)*latency))
						mu.Unlock()
					}()
				}
				fwg.Wait()
				totalWall += time.Since(start)
			}
			n := float64(b.N * c.campaigns * len(pkgs))
			b.ReportMetric(n/totalWall.Seconds(), "negotiations/s")
			sort.Float64s(ratios)
			b.ReportMetric(ratios[len(ratios)/2], "campaign-x-critical-path(p50)")
		})
	}
}

// BenchmarkCampaignEndToEnd runs one whole campaign (auto-approved) through
// all four stages against sandbox sellers with a fixed latency and reports
// its wall time as a multiple of the critical path: the sequential seller
// round trips (registry, packages, quote, the longest negotiation's rounds,
// re-quote, booking) times the latency.
func BenchmarkCampaignEndToEnd(b *testing.B) {
	for _, n := range []int{10, 100, 300} {
		b.Run(fmt.Sprintf("sellers=%d", n), func(b *testing.B) { benchCampaign(b, n) })
	}
}

func benchCampaign(b *testing.B, sellers int) {
	const latency = 50 * time.Millisecond
	m := benchMarket(b, sellers, latency)
	a := benchApp(b, m.RegistryURL, m.Credentials(), []string{"discoverer", "kitfetcher", "negotiator", "booker"}, func(c *config.Config) { c.KitWorkers, c.NegWorkers = 256, 256 })
	var ratios, walls []float64
	mb0, cpu0 := allocMB(), cpuTime()
	for i := 0; i < b.N; i++ {
		id := fmt.Sprintf("e2e-%d", i)
		req := events.CampaignRequested{CampaignID: id, Brief: events.Brief{Name: "bench", BudgetMicros: events.MustMicros(50000), StartDate: "2028-06-01", EndDate: "2028-06-30",
			Channels: []string{"ctv", "video"}, KPIs: events.KPIs{TargetCPMMicros: events.MustMicros(14), MaxCPMMicros: events.MustMicros(40)}, PerSellerCapMicros: events.MustMicros(15000)},
			Buyer: identity.BuyerIdentity{SeatID: "s", AgencyID: "a", AdvertiserID: "v"}, AutoApprove: true, RequestedAt: time.Now()}
		e, _ := events.New(events.KindCampaignRequested, events.NewID(), "bench", id, req)
		start := time.Now()
		if err := a.Bus.Publish(context.Background(), e); err != nil {
			b.Fatal(err)
		}
		maxCalls, status := 0, events.CampaignStatus("")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		_ = a.Bus.Follow(ctx, id, func(e events.Event) bool {
			p, _, _ := events.Payload(e)
			switch v := p.(type) {
			case *events.QuoteReady:
				calls := 1 + len(v.Rounds)
				if v.Outcome == events.OutcomeAccepted && len(v.Rounds) > 0 && v.Rounds[len(v.Rounds)-1].SellerAction != "accept" {
					calls++
				}
				maxCalls = max(maxCalls, calls)
			case *events.CampaignCompleted:
				status = v.Status
				return false
			}
			return true
		})
		cancel()
		if status != "completed" {
			b.Fatalf("campaign ended %q", status)
		}
		wall := time.Since(start)
		critical := 2 + maxCalls + 2 // registry, packages, negotiation, re-quote, booking
		walls = append(walls, float64(wall.Milliseconds()))
		ratios = append(ratios, float64(wall)/float64(time.Duration(critical)*latency))
	}
	b.ReportMetric(mean(walls), "wall-ms")
	b.ReportMetric(mean(ratios), "x-critical-path")
	// CPU of the whole process (pipeline, NATS server and sandbox sellers)
	// per campaign.
	b.ReportMetric(float64((cpuTime()-cpu0).Milliseconds())/float64(b.N), "cpu-ms/campaign")
	b.ReportMetric((allocMB()-mb0)/float64(b.N), "alloc-MB/campaign")
}

func mean(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return math.Round(s/float64(len(xs))*100) / 100
}

// BenchmarkKitsMessagingFloor replays the messages of one 1,000-seller
// discovery + kits campaign through the embedded JetStream server with no
// dealflow code: the same SellerFound and PackageFound bytes (headers and
// data, copied from a real campaign's stream), the discoverer's 1,000
// SellerFound published asynchronously, a durable pull consumer with the
// kitfetcher's settings, and per SellerFound its PackageFound published
// asynchronously, their acknowledgements awaited, then the ack. No HTTP,
// no JSON, no CloudEvents. Its allocation and CPU per campaign are what
// the messaging alone costs in one process, the floor under
// BenchmarkDiscoveryAndKitsSellersApart's figures.
func BenchmarkKitsMessagingFloor(b *testing.B) {
	const n, latency = 1000, 50 * time.Millisecond
	sf, pf := kitsMessages(b, n, latency)
	env := natstest.Start(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	js := env.Bus.JS
	cons, err := js.CreateOrUpdateConsumer(ctx, bus.StreamEvents, jetstream.ConsumerConfig{Durable: "floor", AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: time.Minute, MaxAckPending: 1000, FilterSubject: events.KindSellerFound.Filter()})
	if err != nil {
		b.Fatal(err)
	}
	var acked sync.WaitGroup
	sem := make(chan struct{}, n)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; acked.Done() }()
			id := m.Headers().Get(nats.MsgIdHdr) // "<campaign>.<seller index>"
			dot := strings.LastIndexByte(id, '.')
			i, _ := strconv.Atoi(id[dot+1:])
			futures := make([]jetstream.PubAckFuture, 0, len(pf[i]))
			for j, tmpl := range pf[i] {
				out := replayMsg(tmpl, events.KindPackageFound.SubjectFor(id[:dot]), fmt.Sprintf("%s.%d.%d", id[:dot], i, j))
				f, err := js.PublishMsgAsync(out)
				if err != nil {
					b.Error(err)
					return
				}
				futures = append(futures, f)
			}
			for _, f := range futures {
				select {
				case <-f.Ok():
				case err := <-f.Err():
					b.Error(err)
					return
				}
			}
			if err := m.Ack(); err != nil {
				b.Error(err)
			}
		}()
	}, jetstream.PullMaxMessages(2*n))
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Stop()
	var wall, cpu time.Duration
	var mb float64
	b.ResetTimer()
	for c := 0; c < b.N; c++ {
		campaign := fmt.Sprintf("floor-%d", c)
		mbC, cpuC, start := allocMB(), cpuTime(), time.Now()
		acked.Add(len(sf))
		futures := make([]jetstream.PubAckFuture, 0, len(sf))
		for i, tmpl := range sf {
			f, err := js.PublishMsgAsync(replayMsg(tmpl, events.KindSellerFound.SubjectFor(campaign), fmt.Sprintf("%s.%d", campaign, i)))
			if err != nil {
				b.Fatal(err)
			}
			futures = append(futures, f)
		}
		for _, f := range futures {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				b.Fatal(err)
			}
		}
		acked.Wait()
		wall, cpu, mb = wall+time.Since(start), cpu+cpuTime()-cpuC, mb+allocMB()-mbC
	}
	b.ReportMetric(float64(wall.Milliseconds())/float64(b.N), "wall-ms")
	b.ReportMetric(mb/float64(b.N), "alloc-MB/campaign")
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/campaign")
}

// replayMsg is tmpl on subject with its own Nats-Msg-Id.
func replayMsg(tmpl *nats.Msg, subject, id string) *nats.Msg {
	m := &nats.Msg{Subject: subject, Header: make(nats.Header, len(tmpl.Header)), Data: tmpl.Data}
	for k, v := range tmpl.Header {
		m.Header[k] = v
	}
	m.Header.Set(nats.MsgIdHdr, id)
	return m
}

// kitsMessages runs one discovery + kits campaign across n sandbox sellers
// and returns its SellerFound messages and, by the index of their seller
// among those, its PackageFound messages, as stored.
func kitsMessages(b *testing.B, n int, latency time.Duration) (sf []*nats.Msg, pf map[int][]*nats.Msg) {
	b.Helper()
	m := benchMarket(b, n, latency)
	cfg := config.Defaults()
	cfg.DataDir, cfg.RegistryURL, cfg.AllowPrivate, cfg.Stages, cfg.KitWorkers = b.TempDir(), m.RegistryURL, true, []string{"discoverer", "kitfetcher"}, n
	kits := newKitsCounter()
	a, err := app.Start(context.Background(), cfg, natstest.Logger(), app.Options{Credentials: m.Credentials(), WrapHandler: kits.wrap})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const id = "floor-source"
	req := events.CampaignRequested{CampaignID: id, Brief: events.Brief{Name: "bench", BudgetMicros: events.MustMicros(100000), StartDate: "2028-06-01", EndDate: "2028-06-30",
		Channels: []string{"ctv", "video", "display", "mobile"}}, Buyer: identity.BuyerIdentity{SeatID: "s", AgencyID: "a", AdvertiserID: "v"}, RequestedAt: time.Now()}
	e, _ := events.New(events.KindCampaignRequested, events.NewID(), "bench", id, req)
	if err := a.Bus.Publish(ctx, e); err != nil {
		b.Fatal(err)
	}
	if _, err := kits.awaitKits(ctx, a.Bus.JS, id, 0); err != nil {
		b.Fatal(err)
	}
	cons, err := a.Bus.JS.OrderedConsumer(ctx, bus.StreamEvents, jetstream.OrderedConsumerConfig{FilterSubjects: []string{
		events.KindSellerFound.SubjectFor(id), events.KindPackageFound.SubjectFor(id)}})
	if err != nil {
		b.Fatal(err)
	}
	st, err := a.Bus.JS.Stream(ctx, bus.StreamEvents)
	if err != nil {
		b.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(events.SubjectRoot+".*.*."+id))
	if err != nil {
		b.Fatal(err)
	}
	want := info.State.Subjects[events.KindSellerFound.SubjectFor(id)] + info.State.Subjects[events.KindPackageFound.SubjectFor(id)]
	index := map[string]int{}
	pf = map[int][]*nats.Msg{}
	var packages []*nats.Msg
	for got := uint64(0); got < want; got++ {
		msg, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
		if err != nil {
			b.Fatal(err)
		}
		c := &nats.Msg{Header: msg.Headers(), Data: msg.Data()}
		if msg.Headers().Get("ce-type") == events.KindSellerFound.Type {
			u, _ := leadingString(msg.Data(), `"seller":{"url":"`)
			index[u] = len(sf)
			sf = append(sf, c)
		} else {
			packages = append(packages, c)
		}
	}
	for _, p := range packages {
		u, _ := leadingString(p.Data, `"seller":{"url":"`)
		i, ok := index[u]
		if !ok {
			b.Fatalf("a PackageFound of no SellerFound's seller: %s", u)
		}
		pf[i] = append(pf[i], p)
	}
	if len(sf) != n || len(packages) == 0 {
		b.Fatalf("%d SellerFound (want %d), %d PackageFound", len(sf), n, len(packages))
	}
	return sf, pf
}

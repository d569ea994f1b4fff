package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.yaml.in/yaml/v4"

	"github.com/dealflow/dealflow/internal/api"
	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/checkfor"
	"github.com/dealflow/dealflow/internal/demo"
	"github.com/dealflow/dealflow/internal/loopport"
	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/internal/sandbox"
	"github.com/dealflow/dealflow/pkg/events"
)

// composeFile is the part of docker-compose.yml the process test reads.
type composeFile struct {
	Services map[string]struct {
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		Deploy      struct {
			Replicas int `yaml:"replicas"`
		} `yaml:"deploy"`
	} `yaml:"services"`
}

func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found")
		}
		dir = parent
	}
}

// buildBinary builds cmd/dealflow once into dir.
func buildBinary(t testing.TB, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "dealflow")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/dealflow")
	cmd.Dir = repoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// proc is one stage process of the real binary.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func (p *proc) logText() string { b, _ := os.ReadFile(p.log); return string(b) }

// startProc starts bin with args and env (and none of this process's
// DEALFLOW_* variables), its output in dir/name.log.
func startProc(t *testing.T, dir, name, bin string, args, env []string) *proc {
	t.Helper()
	p := &proc{name: name, log: filepath.Join(dir, name+".log"), done: make(chan struct{})}
	f, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, args...)
	var envv []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DEALFLOW_") {
			envv = append(envv, kv)
		}
	}
	p.cmd.Env, p.cmd.Stdout, p.cmd.Stderr = append(envv, env...), f, f
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); f.Close(); close(p.done) }()
	return p
}

// stopProcs asks each process to drain (SIGTERM), kills one still running
// after 20 s, and logs the last lines of each log when the test failed.
func stopProcs(t *testing.T, procs []*proc, lines int) {
	for _, p := range procs {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range procs {
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	if t.Failed() {
		for _, p := range procs {
			t.Logf("--- %s log:\n%s", p.name, tail(p.logText(), lines))
		}
	}
}

// waitLog waits until the process's log contains s.
func (p *proc) waitLog(t *testing.T, s string) {
	t.Helper()
	checkfor.Check(t, 60*time.Second, 50*time.Millisecond, func() error {
		if strings.Contains(p.logText(), s) {
			return nil
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited: %s", p.name, p.logText())
		default:
		}
		return fmt.Errorf("%s never logged %q: %s", p.name, s, p.logText())
	})
}

var composeDefault = regexp.MustCompile(`\$\{[A-Za-z_0-9]+:-([^}]*)\}`)

// TestStageProcessesShareTheWork runs the stages as separate OS processes of
// the real binary, with the commands and environment of docker-compose.yml
// (hosts and ports replaced) against a three-node cluster started from
// deploy/nats/cluster.conf, SIGKILLs a negotiator mid-negotiation and checks
// the other two finish its work with the same idempotency keys and the
// campaign books every deal once.
func TestStageProcessesShareTheWork(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs six processes: skipped under -short")
	}
	tmp := t.TempDir()
	bin := buildBinary(t, tmp)
	c := natstest.StartCluster(t)

	mcfg := sandbox.DefaultMarket()
	for i := range mcfg.Sellers {
		// Slow enough that a negotiation (quote + several rounds) is still
		// under way when the process running it is killed.
		mcfg.Sellers[i].Faults.Latency = 200 * time.Millisecond
	}
	m, err := sandbox.Start(context.Background(), mcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	creds := map[string]map[string]string{}
	for _, s := range m.Sellers {
		keys := map[string]string{}
		for tier, k := range s.Keys {
			if tier != "public" {
				keys[tier] = k
			}
		}
		creds[s.URL] = keys
	}
	credFile := filepath.Join(tmp, "credentials.json")
	b, _ := json.Marshal(map[string]any{"sellers": creds})
	if err := os.WriteFile(credFile, b, 0o600); err != nil {
		t.Fatal(err)
	}

	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var compose composeFile
	if err := yaml.Unmarshal(raw, &compose); err != nil {
		t.Fatal(err)
	}
	apiAddr, err := loopport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	replace := map[string]string{
		"DEALFLOW_NATS_URL":      c.URL(),
		"DEALFLOW_REGISTRY_URL":  m.RegistryURL,
		"DEALFLOW_KNOWN_SELLERS": "",
		"DEALFLOW_CREDENTIALS":   credFile,
		// Not in compose: the sandbox is on loopback, and the shopping
		// window must outlast a redelivery after AckWait (30 s).
		"DEALFLOW_ALLOW_PRIVATE":   "true",
		"DEALFLOW_SHOPPING_WINDOW": "100s",
		// Compose gives every container :9464 for /metrics; here the
		// processes share one host, so each takes a free port.
		"DEALFLOW_METRICS_ADDR": "127.0.0.1:0",
	}
	var mu sync.Mutex
	var procs []*proc
	start := func(service string, n int, extraEnv ...string) *proc {
		t.Helper()
		svc, ok := compose.Services[service]
		if !ok || len(svc.Command) == 0 {
			t.Fatalf("docker-compose.yml has no service %s", service)
		}
		args := append([]string(nil), svc.Command...)
		for i, a := range args {
			if i > 0 && args[i-1] == "--http" {
				args[i] = apiAddr
			} else {
				args[i] = a
			}
		}
		env := []string{}
		for k, v := range svc.Environment {
			if r, ok := replace[k]; ok {
				v = r
			}
			env = append(env, k+"="+composeDefault.ReplaceAllString(v, "$1"))
		}
		for k, v := range replace {
			if _, ok := svc.Environment[k]; !ok {
				env = append(env, k+"="+v)
			}
		}
		env = append(env, extraEnv...)
		p := startProc(t, tmp, fmt.Sprintf("%s-%d", service, n), bin, args, env)
		mu.Lock()
		procs = append(procs, p)
		mu.Unlock()
		return p
	}
	t.Cleanup(func() {
		stopProcs(t, procs, 40)
	})

	// The compose file scales the negotiator to three; the first starts
	// alone so that it certainly holds negotiations when it is killed.
	if r := compose.Services["negotiator"].Deploy.Replicas; r != 3 {
		t.Fatalf("compose negotiator replicas = %d, want 3", r)
	}
	debug := "DEALFLOW_LOG_LEVEL=debug" // the runner logs every handled event with num_delivered
	disc, kit, booker := start("discoverer", 1), start("kitfetcher", 1), start("booker", 1)
	neg1 := start("negotiator", 1, debug)
	for _, p := range []*proc{disc, kit, booker, neg1} {
		p.waitLog(t, "stage running")
	}
	base := "http://" + apiAddr
	checkfor.Check(t, 30*time.Second, 100*time.Millisecond, func() error {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return fmt.Errorf("bookings API at %s never ready: %w", base, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("bookings API at %s never ready: %s", base, resp.Status)
		}
		return nil
	})

	nc, err := nats.Connect(c.URL(), bus.ConnectOptions("observer", natstest.Logger())...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ob, err := bus.New(nc, bus.Config{Replicas: 3}, natstest.Logger())
	if err != nil {
		t.Fatal(err)
	}

	sample := demo.SampleCampaign("x", "adaptive")
	var unlisted []string
	for _, s := range m.Sellers {
		if !s.InRegistry {
			unlisted = append(unlisted, s.URL)
		}
	}
	body := map[string]any{"brief": api.BriefInputOf(sample.Brief), "auto_approve": true, "buyer": sample.Buyer, "sellers": unlisted,
		"negotiation": map[string]any{"strategy": "adaptive"}}
	code, out := httpJSON(t, "POST", base+"/bookings", body, nil)
	if code != 200 {
		t.Fatalf("submit: %d %v", code, out)
	}
	id, _ := out["job_id"].(string)

	var omu sync.Mutex
	packages, quotes := map[string]int{}, map[string]int{}
	res := demo.Result{CampaignID: id}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	followed := make(chan struct{})
	go func() {
		defer close(followed)
		_ = ob.Follow(ctx, id, func(e events.Event) bool {
			omu.Lock()
			defer omu.Unlock()
			p, _, _ := events.Payload(e)
			switch v := p.(type) {
			case *events.PackageFound:
				packages[v.Seller.URL+"|"+v.Package.ID]++
			case *events.QuoteReady:
				quotes[v.Seller.URL+"|"+v.Package.ID]++
			}
			return demo.Observe(e, &res, nil, nopWriter{})
		})
	}()

	// A negotiation has begun (a seller received a negotiation message):
	// start the other two replicas, then kill the first.
	checkfor.Until(t, 90*time.Second, "a negotiation message at a seller", func() bool { return negotiationPosts(m) > 0 })
	neg2, neg3 := start("negotiator", 2, debug), start("negotiator", 3, debug)
	neg2.waitLog(t, "stage running")
	neg3.waitLog(t, "stage running")
	// The follower reads the stream on its own connection and can trail
	// the pipeline on a loaded machine: a negotiation at a seller means a
	// PackageFound is stored, so wait until the follower has read one.
	checkfor.Until(t, 90*time.Second, "the follower to read a PackageFound", func() bool { omu.Lock(); defer omu.Unlock(); return len(packages) > 0 })
	omu.Lock()
	inFlight := len(packages) - len(quotes)
	omu.Unlock()
	if inFlight <= 0 {
		t.Fatalf("every package was quoted before the kill (%d packages): the test killed nothing mid-way", len(packages))
	}
	if err := neg1.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-neg1.done
	t.Logf("SIGKILLed %s with %d of %d packages unquoted", neg1.name, inFlight, len(packages))

	select {
	case <-followed:
	case <-ctx.Done():
		t.Fatal("campaign did not end")
	}
	if res.Status != events.StatusCompleted && res.Status != events.StatusPartial {
		t.Fatalf("campaign %s ended %q (failed %v)", id, res.Status, res.Failed)
	}
	job := waitStatus(t, base, id, nil, string(res.Status))
	t.Logf("job %s: %v", id, job["status"])

	// No event lost, none doubled: one QuoteReady per PackageFound.
	for k := range packages {
		if quotes[k] != 1 {
			t.Fatalf("package %s: %d QuoteReady, want 1", k, quotes[k])
		}
	}
	// The killed replica's work moved: a surviving replica handled a
	// redelivered event.
	moved := 0
	for _, p := range []*proc{neg2, neg3} {
		moved += redelivered(p.logText())
	}
	if moved == 0 {
		t.Fatal("no surviving negotiator handled a redelivered event: nothing moved from the killed process")
	}
	// Same idempotency keys: per quote, every distinct key sent is exactly
	// one round in the seller's history, and no negotiation was left open.
	resent := 0
	for _, s := range m.Sellers {
		keysByQuote := map[string]map[string]int{}
		for _, r := range s.Requests() {
			if r.Method != "POST" || !strings.HasSuffix(r.Path, "/api/v1/negotiations/messages") {
				continue
			}
			var msg struct {
				Key   string `json:"idempotency_key"`
				Quote string `json:"quote_id"`
			}
			_ = json.Unmarshal(r.Body, &msg)
			if keysByQuote[msg.Quote] == nil {
				keysByQuote[msg.Quote] = map[string]int{}
			}
			keysByQuote[msg.Quote][msg.Key]++
		}
		for q, keys := range keysByQuote {
			total, status := s.NegotiationRounds(q)
			if len(keys) != total || status == "active" {
				t.Fatalf("seller %s quote %s: %d distinct keys sent, seller recorded %d rounds (status %s)", s.Name, q, len(keys), total, status)
			}
			for _, n := range keys {
				if n > 1 {
					resent++
				}
			}
		}
	}
	// No deal twice.
	booked := sellerDeals(m)
	var sum events.Micros
	for _, d := range res.Deals {
		if booked[bookingID(d)] != 1 {
			t.Fatalf("deal %s booked %d times at the seller", bookingID(d), booked[bookingID(d)])
		}
		sum += d.SpendMicros
	}
	if len(booked) != len(res.Deals) || len(res.Deals) == 0 {
		t.Fatalf("sellers hold %d deals, campaign reports %d", len(booked), len(res.Deals))
	}
	if sum > sample.Brief.BudgetMicros {
		t.Fatalf("spend %s over budget %s", sum, sample.Brief.BudgetMicros)
	}
	t.Logf("%d packages, %d redelivered negotiations finished by the survivors, %d messages re-sent under their original key, %d deals", len(packages), moved, resent, len(res.Deals))
}

// redelivered counts the negotiator "handled" log lines of events
// delivered more than once.
func redelivered(log string) int {
	n := 0
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l struct {
			Stage     string `json:"stage"`
			Delivered int    `json:"num_delivered"`
			Message   string `json:"message"`
		}
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Stage == "negotiator" && l.Message == "handled" && l.Delivered > 1 {
			n++
		}
	}
	return n
}

func negotiationPosts(m *sandbox.Market) int {
	n := 0
	for _, s := range m.Sellers {
		n += s.NegotiationPosts()
	}
	return n
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestBenchWithNegotiatorProcesses runs `dealflow bench --negotiator-procs 2`
// of the real binary: its children are `dealflow run --stages negotiator`
// processes of the same binary, which must start, take the negotiations and
// be counted (their CPU and RSS) in the result. A broken child command line
// used to make the bench wait for ever for children that never reported.
func TestBenchWithNegotiatorProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs the bench with child processes: skipped under -short")
	}
	bin := buildBinary(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "bench", "--sellers", "6", "--latency", "5ms", "--campaigns", "2",
		"--negotiator-procs", "2", "--negotiator-workers", "4", "--hops", "200", "--timeout", "2m", "--json")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, tail(stderr.String(), 40))
	}
	var r struct {
		NegotiatorProcs    int     `json:"negotiator_procs"`
		CampaignsCompleted int     `json:"campaigns_completed"`
		Negotiations       int     `json:"negotiations"`
		NegotiationsPerS   float64 `json:"negotiations_per_s"`
		ChildCPUSeconds    float64 `json:"child_cpu_s"`
		ChildPeakRSSBytes  int64   `json:"child_peak_rss_bytes"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if r.NegotiatorProcs != 2 || r.CampaignsCompleted != 3 || r.Negotiations == 0 || r.NegotiationsPerS <= 0 {
		t.Fatalf("result %+v: want 2 negotiator processes, 3 campaigns completed, negotiations done", r)
	}
	if r.ChildCPUSeconds <= 0 || r.ChildPeakRSSBytes <= 0 {
		t.Fatalf("children not counted: cpu %v s, rss %d", r.ChildCPUSeconds, r.ChildPeakRSSBytes)
	}
}

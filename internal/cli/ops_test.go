package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/app"
	"github.com/dealflow/dealflow/internal/checkfor"
	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/internal/sandbox"
	"github.com/dealflow/dealflow/pkg/identity"
)

// deadURL is a NATS URL on a loopback port nothing listens on.
func deadURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "nats://" + addr
}

// TestClientsFailFastWithoutNATS: with nothing at the URL, campaign submit
// and campaign watch fail within seconds, naming the URL and the cause.
func TestClientsFailFastWithoutNATS(t *testing.T) {
	url := deadURL(t)
	brief := filepath.Join(t.TempDir(), "c.json")
	example, err := os.ReadFile(filepath.Join("..", "..", "examples", "campaign.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(brief, example, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"campaign", "submit", brief, "--nats", url, "--wait"},
		{"campaign", "watch", "cmp-001", "--nats", url},
	} {
		t.Run(args[1], func(t *testing.T) {
			var out, errb bytes.Buffer
			start := time.Now()
			code := Main(context.Background(), args, &out, &errb)
			if d := time.Since(start); d > 8*time.Second {
				t.Fatalf("took %v", d)
			}
			msg := errb.String()
			if code == 0 || !strings.Contains(msg, url) || !strings.Contains(msg, "cannot reach NATS") || !strings.Contains(msg, "refused") {
				t.Fatalf("exit %d, stderr %q", code, msg)
			}
		})
	}
}

// TestRunSandboxQuickStart: `run --sandbox --http` prints the NATS URL
// (4222, or a free port when that is taken), the API URL and the next
// commands, and those commands work as printed.
func TestRunSandboxQuickStart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole pipeline")
	}
	t.Setenv("DEALFLOW_NATS_PORT", "")
	os.Unsetenv("DEALFLOW_NATS_PORT")
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb natstest.LogBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"run", "--sandbox", "--http", "127.0.0.1:0", "--log-level", "warn"}, &out, &errb)
	}()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("run did not stop")
		}
	}()
	natsRe := regexp.MustCompile(`NATS: (nats://127\.0\.0\.1:\d+)`)
	apiRe := regexp.MustCompile(`API:  (http://127\.0\.0\.1:\d+)`)
	checkfor.Check(t, 30*time.Second, 50*time.Millisecond, func() error {
		if strings.Contains(out.String(), "nats sub") {
			return nil
		}
		select {
		case code := <-done:
			t.Fatalf("run exited %d: %s", code, errb.String())
		default:
		}
		return fmt.Errorf("no quick start on stdout: %q (stderr %q)", out.String(), errb.String())
	})
	s := out.String()
	nm, am := natsRe.FindStringSubmatch(s), apiRe.FindStringSubmatch(s)
	if nm == nil || am == nil {
		t.Fatalf("stdout %q", s)
	}
	natsURL, api := nm[1], am[1]
	for _, want := range []string{
		"dealflow campaign submit examples/campaign.json --nats " + natsURL + " --wait",
		"curl " + api + "/bookings",
		"nats sub 'dealflow.>' --server " + natsURL,
	} {
		if !strings.Contains(s, want) {
			t.Fatalf("stdout lacks %q:\n%s", want, s)
		}
	}
	var sout, serr bytes.Buffer
	if code := Main(context.Background(), []string{"campaign", "submit", filepath.Join("..", "..", "examples", "campaign.json"), "--nats", natsURL, "--wait"}, &sout, &serr); code != 0 {
		t.Fatalf("submit to the printed URL: exit %d: %s\n%s", code, serr.String(), sout.String())
	}
	id := regexp.MustCompile(`submitted campaign (\S+)`).FindStringSubmatch(sout.String())
	if id == nil {
		t.Fatalf("no campaign id in %q", sout.String())
	}
	resp, err := http.Get(api + "/bookings/" + id[1])
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var job struct {
		BookedLines []struct {
			Protocol string `json:"protocol"`
		} `json:"booked_lines"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&job) != nil {
		t.Fatalf("GET /bookings/%s: %d", id[1], resp.StatusCode)
	}
	// The quick start shops both protocol families, as the demo does.
	protocols := map[string]int{}
	for _, l := range job.BookedLines {
		protocols[l.Protocol]++
	}
	if protocols["adcp"] == 0 || protocols["iab-seller-agent"] == 0 {
		t.Fatalf("booked lines by protocol %v: want both families", protocols)
	}
}

// TestRunRefusesNothingToDo: a bare run names what is missing and exits
// non-zero at once.
func TestRunRefusesNothingToDo(t *testing.T) {
	for _, k := range []string{"DEALFLOW_NATS_URL", "DEALFLOW_NATS_PORT", "DEALFLOW_HTTP_ADDR", "DEALFLOW_REGISTRY_URL", "DEALFLOW_KNOWN_SELLERS", "DEALFLOW_SELLERS", "DEALFLOW_NATS_CONFIG"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	var out, errb bytes.Buffer
	code := Main(context.Background(), []string{"run"}, &out, &errb)
	msg := errb.String()
	if code == 0 {
		t.Fatal("a bare run exited 0")
	}
	for _, want := range []string{"nothing to do", "--sandbox", "--registry", "--known-sellers", "--sellers", "--http"} {
		if !strings.Contains(msg, want) {
			t.Fatalf("stderr %q lacks %q", msg, want)
		}
	}
}

// TestRunSandboxBadCredentials: a bad --credentials file is an error even
// with --sandbox.
func TestRunSandboxBadCredentials(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "creds.json")
	if err := os.WriteFile(bad, []byte(`{"sellers":{"http://x.example":{"seat":`), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := Main(context.Background(), []string{"run", "--sandbox", "--nats-port", "-1", "--credentials", bad}, &out, &errb)
	if code == 0 || !strings.Contains(errb.String(), bad) {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}

// TestSandboxCredentialsOut: `dealflow sandbox --port --seed
// --credentials-out` serves on the given ports and writes keys that
// `run --credentials` loads.
func TestSandboxCredentialsOut(t *testing.T) {
	file := filepath.Join(t.TempDir(), "creds.json")
	var last string
	for range 10 {
		port, err := sandbox.FreeBasePort(16)
		if err != nil {
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		var out, errb natstest.LogBuffer
		done := make(chan int, 1)
		go func() {
			done <- Main(ctx, []string{"sandbox", "--json", "--port", strconv.Itoa(port), "--seed", "abc", "--credentials-out", file}, &out, &errb)
		}()
		var code = -1
		for code < 0 && !strings.Contains(out.String(), "registry_url") {
			select {
			case code = <-done:
			case <-time.After(20 * time.Millisecond):
			}
		}
		if code >= 0 {
			cancel()
			last = errb.String()
			continue // some port of the range was taken
		}
		var sum sandbox.MarketSummary
		if err := json.Unmarshal([]byte(out.String()), &sum); err != nil {
			t.Fatal(err)
		}
		cancel()
		<-done
		if sum.RegistryURL != "http://127.0.0.1:"+strconv.Itoa(port) {
			t.Fatalf("registry %s, want port %d", sum.RegistryURL, port)
		}
		creds, err := app.LoadCredentials(file)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, s := range sum.Sellers {
			if k, ok := creds.Key(s.URL, identity.TierAgency); s.Keys["agency"] != "" {
				if !ok || k != s.Keys["agency"] {
					t.Fatalf("seller %s: agency key not in the credentials file", s.Name)
				}
				n++
			}
		}
		if n == 0 {
			t.Fatal("no seller has an agency key")
		}
		return
	}
	t.Fatalf("no free port range: %s", last)
}

// TestRunServesMetricsByDefault: a stage process without a bookings API
// still serves /metrics, on 127.0.0.1:9464 or, when that is taken (here: held
// by the test, or by another process), a free port, and says where.
func TestRunServesMetricsByDefault(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a stage process")
	}
	t.Setenv("DEALFLOW_METRICS_ADDR", "")
	os.Unsetenv("DEALFLOW_METRICS_ADDR")
	if ln, err := net.Listen("tcp", DefaultMetricsAddr); err == nil {
		defer ln.Close()
	}
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb natstest.LogBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"run", "--nats-port", "0", "--data-dir", t.TempDir(), "--stages", "negotiator", "--log-json"}, &out, &errb)
	}()
	defer func() {
		cancel()
		<-done
	}()
	re := regexp.MustCompile(`"addr":"(127\.0\.0\.1:\d+)","time":"[^"]*","message":"metrics listening"`)
	var m []string
	checkfor.Check(t, 30*time.Second, 50*time.Millisecond, func() error {
		if m = re.FindStringSubmatch(errb.String()); m != nil {
			return nil
		}
		select {
		case code := <-done:
			done <- code
			t.Fatalf("run exited %d: %s", code, errb.String())
		default:
		}
		return fmt.Errorf("no metrics address logged: %s", errb.String())
	})
	if m[1] == DefaultMetricsAddr {
		t.Fatalf("metrics on %s, which is taken", m[1])
	}
	resp, err := http.Get("http://" + m[1] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "dealflow_events_handled_total") && !strings.Contains(string(body), "go_goroutines") {
		t.Fatalf("GET /metrics: %d %.200s", resp.StatusCode, body)
	}
}

// TestQuickStartCurlSendsTheKey: with --api-key the printed curl sends the
// key (from the environment, never printed), so it works as written.
func TestQuickStartCurlSendsTheKey(t *testing.T) {
	var with, without bytes.Buffer
	printQuickStart(&with, "nats://127.0.0.1:4222", "127.0.0.1:8080", "", true)
	printQuickStart(&without, "nats://127.0.0.1:4222", "127.0.0.1:8080", "", false)
	if !strings.Contains(with.String(), `curl -H "X-API-Key: $DEALFLOW_API_KEY" http://127.0.0.1:8080/bookings`) {
		t.Fatalf("with a key:\n%s", with.String())
	}
	if !strings.Contains(without.String(), "curl http://127.0.0.1:8080/bookings") || strings.Contains(without.String(), "X-API-Key") {
		t.Fatalf("without a key:\n%s", without.String())
	}
}

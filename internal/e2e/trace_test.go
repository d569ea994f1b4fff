package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/checkfor"
	"github.com/dealflow/dealflow/internal/loopport"
)

// consoleSpan is the part of a span the console exporter (stdouttrace)
// prints that the test reads.
type consoleSpan struct {
	Name        string
	SpanContext struct{ TraceID, SpanID string }
	Parent      struct{ TraceID, SpanID string }
}

// TestOneTraceThroughTheAPI runs the real binary with
// OTEL_TRACES_EXPORTER=console, posts a campaign with a traceparent,
// approves it through the API (with no traceparent of its own), and reads
// the spans the process printed: the API's, every stage's and the booking's
// are all in the caller's one trace.
func TestOneTraceThroughTheAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs a whole campaign: skipped under -short")
	}
	tmp := t.TempDir()
	bin := buildBinary(t, tmp)
	api, err := loopport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	logf, err := os.Create(filepath.Join(tmp, "stderr.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, "run", "--sandbox", "--http", api, "--nats-port", "-1", "--log-level", "warn", "--data-dir", filepath.Join(tmp, "data"))
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DEALFLOW_") && !strings.HasPrefix(kv, "OTEL_") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "OTEL_TRACES_EXPORTER=console", "OTEL_BSP_SCHEDULE_DELAY=100", "DEALFLOW_METRICS_ADDR=127.0.0.1:0")
	cmd.Stdout, cmd.Stderr = &stdout, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	defer stop()
	base := "http://" + api
	checkfor.Until(t, 90*time.Second, "the bookings API", func() bool {
		code, _ := httpGetStatus(base + "/readyz")
		return code == 200
	})

	const callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	traceparent := "00-" + callerTrace + "-00f067aa0ba902b7-01"
	body := map[string]any{"brief": map[string]any{"name": "one trace", "budget": 30000, "start_date": "2028-06-04", "end_date": "2028-07-28",
		"channels": []string{"ctv", "video"}, "kpis": map[string]any{"max_cpm": 40}},
		"auto_approve": false, "buyer": map[string]any{"seat_id": "s-1", "agency_id": "a-1", "advertiser_id": "adv-1"}}
	code, out := httpJSON(t, "POST", base+"/bookings", body, map[string]string{"traceparent": traceparent})
	if code != 200 {
		t.Fatalf("POST /bookings: %d %v", code, out)
	}
	id := out["job_id"].(string)
	waitStatus(t, base, id, nil, "awaiting_approval")
	if code, out := httpJSON(t, "POST", base+"/bookings/"+id+"/approve-all", map[string]any{}, nil); code != 200 {
		t.Fatalf("approve: %d %v", code, out)
	}
	waitStatus(t, base, id, nil, "completed", "partial")
	stop() // flushes the spans

	var spans []consoleSpan
	sc := bufio.NewScanner(bytes.NewReader(stdout.Bytes()))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var s consoleSpan
		if err := json.Unmarshal(line, &s); err == nil && s.Name != "" {
			spans = append(spans, s)
		}
	}
	if len(spans) == 0 {
		t.Fatalf("no spans on stdout:\n%s", tail(stdout.String(), 20))
	}
	inTrace := map[string]int{}
	for _, s := range spans {
		if strings.EqualFold(s.SpanContext.TraceID, callerTrace) {
			inTrace[s.Name]++
		}
	}
	for _, want := range []string{"POST /bookings", "discoverer CampaignRequested", "kitfetcher SellerFound", "negotiator PackageFound",
		"booker-plan QuoteReady", "POST /bookings/{id}/approve", "booker-book PortfolioApproved", "booker-line LineApproved", "booker-plan DealBooked",
		"POST quote", "POST get_products"} {
		if inTrace[want] == 0 {
			t.Errorf("no %q span in the caller's trace (spans in it: %v)", want, inTrace)
		}
	}
	// Every stage span of the process belongs to that one campaign's
	// trace: nothing started a second one.
	for _, s := range spans {
		for _, stage := range []string{"discoverer ", "kitfetcher ", "negotiator ", "booker-", "notifier "} {
			if strings.HasPrefix(s.Name, stage) && !strings.EqualFold(s.SpanContext.TraceID, callerTrace) {
				t.Errorf("span %q is in trace %s, not the caller's %s", s.Name, s.SpanContext.TraceID, callerTrace)
			}
		}
	}
	t.Logf("%d spans, %d kinds in the caller's trace", len(spans), len(inTrace))
}

// httpGetStatus is the status of a GET (0 when it fails).
func httpGetStatus(url string) (int, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

package deploycheck

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/rs/zerolog"
	"go.yaml.in/yaml/v4"

	"github.com/dealflow/dealflow/internal/app"
	"github.com/dealflow/dealflow/internal/cli"
	"github.com/dealflow/dealflow/internal/config"
	"github.com/dealflow/dealflow/internal/demo"
	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/internal/sandbox"
	"github.com/dealflow/dealflow/pkg/events"
)

// prometheusConfig is the part of Prometheus's configuration the stack uses.
type prometheusConfig struct {
	Global struct {
		ScrapeInterval     string `yaml:"scrape_interval"`
		EvaluationInterval string `yaml:"evaluation_interval"`
	} `yaml:"global"`
	ScrapeConfigs []struct {
		JobName       string `yaml:"job_name"`
		MetricsPath   string `yaml:"metrics_path"`
		StaticConfigs []struct {
			Targets []string          `yaml:"targets"`
			Labels  map[string]string `yaml:"labels"`
		} `yaml:"static_configs"`
		DNSSDConfigs []struct {
			Names           []string `yaml:"names"`
			Type            string   `yaml:"type"`
			Port            int      `yaml:"port"`
			RefreshInterval string   `yaml:"refresh_interval"`
		} `yaml:"dns_sd_configs"`
		RelabelConfigs []struct {
			SourceLabels []string `yaml:"source_labels"`
			TargetLabel  string   `yaml:"target_label"`
		} `yaml:"relabel_configs"`
	} `yaml:"scrape_configs"`
}

func readYAML(t *testing.T, rel string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
}

// TestPrometheusScrapesEveryProcess: every dealflow process of the compose
// file is scraped on the port it serves /metrics on (DNS discovery, so every
// replica), every static target is a compose service listening there, and
// every NATS node is scraped through an exporter reading its monitoring port.
func TestPrometheusScrapesEveryProcess(t *testing.T) {
	var pc prometheusConfig
	readYAML(t, "deploy/prometheus/prometheus.yml", &pc)
	if _, err := model.ParseDuration(pc.Global.ScrapeInterval); err != nil {
		t.Fatalf("scrape_interval %q: %v", pc.Global.ScrapeInterval, err)
	}
	c := loadCompose(t)
	scraped := map[string][]string{} // service -> ports
	jobs := map[string]bool{}
	for _, sc := range pc.ScrapeConfigs {
		if sc.JobName == "" || jobs[sc.JobName] {
			t.Fatalf("job name %q empty or repeated", sc.JobName)
		}
		jobs[sc.JobName] = true
		if sc.MetricsPath != "" && sc.MetricsPath != "/metrics" {
			t.Fatalf("job %s: metrics_path %q", sc.JobName, sc.MetricsPath)
		}
		for _, d := range sc.DNSSDConfigs {
			if _, err := model.ParseDuration(d.RefreshInterval); d.Type != "A" || d.Port <= 0 || (d.RefreshInterval != "" && err != nil) {
				t.Fatalf("job %s: dns_sd %+v", sc.JobName, d)
			}
			for _, n := range d.Names {
				scraped[n] = append(scraped[n], strconv.Itoa(d.Port))
			}
		}
		for _, r := range sc.RelabelConfigs {
			if !model.LegacyValidation.IsValidLabelName(r.TargetLabel) || len(r.SourceLabels) == 0 {
				t.Fatalf("job %s: relabel %+v", sc.JobName, r)
			}
		}
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				host, port, err := net.SplitHostPort(target)
				if err != nil {
					t.Fatalf("job %s: target %q: %v", sc.JobName, target, err)
				}
				scraped[host] = append(scraped[host], port)
			}
		}
	}
	for name, ports := range scraped {
		if _, ok := c.Services[name]; !ok {
			t.Errorf("Prometheus scrapes %q, not a compose service", name)
			continue
		}
		if len(ports) != 1 {
			t.Errorf("%s scraped on ports %v, want one", name, ports)
		}
	}
	var nodes, exporters []string
	for name, s := range c.Services {
		switch {
		case len(s.Command) > 0 && s.Command[0] == "run":
			cfg := runConfig(t, name, s)
			want := addrPort(cfg.MetricsAddr)
			if cfg.HTTPAddr != "" {
				want = addrPort(cfg.HTTPAddr) // /metrics on the API address
			}
			if got := scraped[name]; len(got) != 1 || (got[0] != want && got[0] != addrPort(cfg.MetricsAddr)) {
				t.Errorf("%s serves /metrics on %q (API %q), Prometheus scrapes %v", name, cfg.MetricsAddr, cfg.HTTPAddr, got)
			}
		case strings.HasPrefix(s.Image, "nats:"):
			nodes = append(nodes, name)
		case strings.HasPrefix(s.Image, "natsio/prometheus-nats-exporter:"):
			exporters = append(exporters, name)
			port := "7777"
			if i := slices.Index(s.Command, "-p"); i >= 0 {
				port = s.Command[i+1]
			}
			if got := scraped[name]; len(got) != 1 || got[0] != port {
				t.Errorf("exporter %s listens on %s, scraped on %v", name, port, got)
			}
		}
	}
	// Each node's monitoring port (8222 in cluster.conf) has an exporter.
	for _, n := range nodes {
		found := false
		for _, e := range exporters {
			found = found || contains(c.Services[e].Command, "http://"+n+":8222")
		}
		if !found {
			t.Errorf("NATS node %s: no exporter reads http://%s:8222", n, n)
		}
	}
	if len(nodes) != 3 {
		t.Errorf("%d NATS nodes", len(nodes))
	}
}

type dashboard struct {
	UID    string `json:"uid"`
	Title  string `json:"title"`
	Panels []struct {
		Title      string `json:"title"`
		Type       string `json:"type"`
		Datasource *struct {
			UID string `json:"uid"`
		} `json:"datasource"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

// TestGrafanaProvisioning: the datasource and dashboard provider files
// parse, the dashboard's panels use that datasource, and the provider reads
// the directory compose mounts the dashboards into.
func TestGrafanaProvisioning(t *testing.T) {
	var ds struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name, UID, Type, Access, URL string
			IsDefault                    bool `yaml:"isDefault"`
			Editable                     bool `yaml:"editable"`
		} `yaml:"datasources"`
	}
	readYAML(t, "deploy/grafana/provisioning/datasources/prometheus.yml", &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" || ds.Datasources[0].URL != "http://prometheus:9090" {
		t.Fatalf("datasources %+v", ds.Datasources)
	}
	var dp struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Name, Folder, Type string
			DisableDeletion    bool `yaml:"disableDeletion"`
			AllowUIUpdates     bool `yaml:"allowUiUpdates"`
			Options            struct {
				Path                      string `yaml:"path"`
				FoldersFromFilesStructure bool   `yaml:"foldersFromFilesStructure"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, "deploy/grafana/provisioning/dashboards/dealflow.yml", &dp)
	if len(dp.Providers) != 1 || dp.Providers[0].Type != "file" {
		t.Fatalf("providers %+v", dp.Providers)
	}
	c := loadCompose(t)
	if !hasVolume(c.Services["grafana"], "./deploy/grafana/dashboards:"+dp.Providers[0].Options.Path) ||
		!hasVolume(c.Services["grafana"], "./deploy/grafana/provisioning:/etc/grafana/provisioning") {
		t.Fatalf("grafana volumes %v do not mount the provisioning and %s", c.Services["grafana"].Volumes, dp.Providers[0].Options.Path)
	}
	if !hasVolume(c.Services["prometheus"], "./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml") {
		t.Fatalf("prometheus volumes %v", c.Services["prometheus"].Volumes)
	}
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Fatal("dashboard without uid or title")
	}
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != ds.Datasources[0].UID || len(p.Targets) == 0 {
			t.Errorf("panel %q: datasource %+v, %d queries", p.Title, p.Datasource, len(p.Targets))
		}
	}
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "grafana", "dashboards", "dealflow.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// dealflowMetric finds the process's metric names in a PromQL expression
// (NATS exporter metrics, gnatsd_* and jetstream_*, are the exporter's).
var dealflowMetric = regexp.MustCompile(`\b(?:dealflow|go|process)_[a-zA-Z0-9_]*[a-zA-Z0-9]`)

// TestDashboardMetricsAreExported runs a campaign against the sandbox, the
// way the compose stack does (the sandbox command line from the compose
// file), scrapes the process, and checks every metric the dashboard queries
// is one it exports; the compose healthcheck commands pass against it.
func TestDashboardMetricsAreExported(t *testing.T) {
	c := loadCompose(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The compose sandbox command, on a free port and loopback, its
	// credentials file in a temporary directory.
	args := slices.Clone(c.Services["sandbox"].Command)
	creds := filepath.Join(t.TempDir(), "sandbox-credentials.json")
	var port int
	var out, errb natstest.LogBuffer
	done := make(chan int, 1)
	for range 10 {
		var err error
		if port, err = sandbox.FreeBasePort(16); err != nil {
			t.Fatal(err)
		}
		run := slices.Clone(args)
		for i := range run {
			switch run[i] {
			case "--port":
				run[i+1] = strconv.Itoa(port)
			case "--listen", "--advertise":
				run[i+1] = "127.0.0.1"
			case "--credentials-out":
				run[i+1] = creds
			}
		}
		go func() { done <- cli.Main(ctx, run, &out, &errb) }()
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(out.String(), "serving until interrupted") && time.Now().Before(deadline) && len(done) == 0 {
			time.Sleep(20 * time.Millisecond)
		}
		if strings.Contains(out.String(), "serving until interrupted") {
			break
		}
		if len(done) == 0 {
			t.Fatalf("sandbox %v did not start: %s", run, errb.String())
		}
		<-done // a port of the range was taken: another
		port = 0
	}
	if port == 0 {
		t.Fatalf("the compose sandbox command never started: %s", errb.String())
	}
	t.Cleanup(func() { cancel(); <-done })
	registry := "http://127.0.0.1:" + strconv.Itoa(port)

	// The booker's compose command (all stages here), pointed at it.
	cfg := config.Defaults()
	cfg.DataDir, cfg.RegistryURL, cfg.Credentials, cfg.AllowPrivate = t.TempDir(), registry, creds, true
	cfg.HTTPAddr, cfg.MetricsAddr, cfg.Window = "127.0.0.1:0", "127.0.0.1:0", 45*time.Second
	a, err := app.Start(context.Background(), cfg, zerolog.Nop(), app.Options{SweepEvery: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	req := demo.SampleCampaign("deploycheck", "adaptive")
	e, err := events.New(events.KindCampaignRequested, events.NewID(), "test", req.CampaignID, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Bus.Publish(ctx, e); err != nil {
		t.Fatal(err)
	}
	fctx, fcancel := context.WithTimeout(ctx, 90*time.Second)
	defer fcancel()
	res := demo.Result{CampaignID: req.CampaignID}
	_ = a.Bus.Follow(fctx, req.CampaignID, func(e events.Event) bool { return demo.Observe(e, &res, nil, &bytes.Buffer{}) })
	if res.Status != events.StatusCompleted || len(res.Deals) == 0 {
		t.Fatalf("campaign %s: %d deals", res.Status, len(res.Deals))
	}

	resp, err := http.Get("http://" + a.HTTPAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	exported := func(name string) bool {
		if _, ok := mfs[name]; ok {
			return true
		}
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok {
				if mf, ok := mfs[base]; ok && mf.GetType() == dto.MetricType_HISTOGRAM {
					return true
				}
			}
		}
		return false
	}
	n := 0
	for _, p := range loadDashboard(t).Panels {
		for _, q := range p.Targets {
			for _, name := range dealflowMetric.FindAllString(q.Expr, -1) {
				n++
				if !exported(name) {
					t.Errorf("panel %q queries %s, which the process does not export", p.Title, name)
				}
			}
		}
	}
	if n < 10 {
		t.Fatalf("only %d metric names found in the dashboard's queries", n)
	}

	// The compose healthcheck commands, against the same process.
	for _, name := range []string{"booker", "negotiator"} {
		h := c.Services[name].Healthcheck.Test
		u := h[3]
		for from, to := range map[string]string{"127.0.0.1:8080": a.HTTPAddr, "127.0.0.1:9464": a.MetricsAddr} {
			u = strings.Replace(u, from, to, 1)
		}
		var hout, herr bytes.Buffer
		if code := cli.Main(ctx, append(slices.Clone(h[2:3]), u), &hout, &herr); code != 0 {
			t.Errorf("%s healthcheck %s: exit %d: %s", name, u, code, herr.String())
		}
	}
	sbh := c.Services["sandbox"].Healthcheck.Test[3]
	sbh = strings.Replace(sbh, "127.0.0.1:9100", "127.0.0.1:"+strconv.Itoa(port), 1)
	var hout, herr bytes.Buffer
	if code := cli.Main(ctx, []string{"healthcheck", sbh}, &hout, &herr); code != 0 {
		t.Errorf("sandbox healthcheck %s: exit %d: %s", sbh, code, herr.String())
	}
}

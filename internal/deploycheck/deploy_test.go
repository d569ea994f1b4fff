// Package deploycheck validates the deployment files as far as can be done
// without Docker: the NATS cluster config parses with the embedded server's
// own parser, every stage in docker-compose.yml runs a command line the
// dealflow binary accepts and is probed where it serves /livez, Prometheus
// scrapes every process where it serves /metrics, and every metric the
// Grafana dashboard queries is one a real process exports.
package deploycheck

import (
	"flag"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"go.yaml.in/yaml/v4"

	"github.com/dealflow/dealflow/internal/config"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for !fileExists(filepath.Join(dir, "go.mod")) {
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found")
		}
		dir = parent
	}
	return dir
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func TestNATSClusterConfigParses(t *testing.T) {
	t.Setenv("SYS_PASSWORD", "test")
	opts, err := server.ProcessConfigFile(filepath.Join(repoRoot(t), "deploy", "nats", "cluster.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if !opts.JetStream || opts.StoreDir != "/data" {
		t.Fatalf("jetstream %v store %q", opts.JetStream, opts.StoreDir)
	}
	if opts.Cluster.Name != "dealflow" || len(opts.Routes) != 3 || opts.Cluster.Port != 6222 {
		t.Fatalf("cluster %q routes %d port %d", opts.Cluster.Name, len(opts.Routes), opts.Cluster.Port)
	}
	if opts.HTTPPort != 8222 || opts.LameDuckDuration.Seconds() != 30 {
		t.Fatalf("http %d lame duck %v", opts.HTTPPort, opts.LameDuckDuration)
	}
}

type service struct {
	Image       string            `yaml:"image"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Deploy      struct {
		Replicas int `yaml:"replicas"`
	} `yaml:"deploy"`
	Healthcheck struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
	Volumes  []string `yaml:"volumes"`
	Networks map[string]struct {
		IPv4Address string `yaml:"ipv4_address"`
	} `yaml:"networks"`
}

type compose struct {
	Services map[string]service `yaml:"services"`
	Volumes  map[string]any     `yaml:"volumes"`
}

// interpolation is compose's ${VAR:-default} (and ${VAR}); the test takes
// the defaults, as `docker compose up` does with nothing set.
var interpolation = regexp.MustCompile(`\$\{([A-Z0-9_]+)(?::?-([^}]*))?\}`)

func interpolate(v string) string {
	return interpolation.ReplaceAllString(v, "$2")
}

func loadCompose(t *testing.T) compose {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	for name, s := range c.Services {
		for i, a := range s.Command {
			s.Command[i] = interpolate(a)
		}
		for k, v := range s.Environment {
			s.Environment[k] = interpolate(v)
		}
		for i, a := range s.Healthcheck.Test {
			s.Healthcheck.Test[i] = interpolate(a)
		}
		c.Services[name] = s
	}
	return c
}

// runConfig is the configuration `dealflow run` would have with the
// service's command line and environment.
func runConfig(t *testing.T, name string, s service) config.Config {
	t.Helper()
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var cfg config.Config
	for k, v := range s.Environment {
		t.Setenv(k, v)
	}
	binder := config.Register(fs, &cfg)
	if err := fs.Parse(s.Command[1:]); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if err := binder.Finish(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return cfg
}

func TestComposeStagesRunValidCommands(t *testing.T) {
	c := loadCompose(t)
	for _, n := range []string{"n1", "n2", "n3"} {
		s, ok := c.Services[n]
		if !ok || !strings.HasPrefix(s.Image, "nats:2.15") || !contains(s.Command, "--server_name") {
			t.Fatalf("nats node %s: %+v", n, s)
		}
	}
	stages := map[string]bool{}
	for name, s := range c.Services {
		if len(s.Command) == 0 || s.Command[0] != "run" {
			continue
		}
		cfg := runConfig(t, name, s)
		if cfg.Replicas != 3 || !strings.Contains(cfg.NATSURL, "n3:4222") {
			t.Fatalf("%s: replicas %d nats %q", name, cfg.Replicas, cfg.NATSURL)
		}
		for _, st := range cfg.Stages {
			stages[st] = true
		}
		if name == "negotiator" && s.Deploy.Replicas != 3 {
			t.Fatalf("negotiator replicas = %d, want 3", s.Deploy.Replicas)
		}
		// Every stage process is probed on an address it serves /livez on.
		port := healthPort(t, name, s)
		if port != addrPort(cfg.MetricsAddr) && port != addrPort(cfg.HTTPAddr) {
			t.Fatalf("%s: healthcheck on port %s, serves --metrics-addr %q and --http %q", name, port, cfg.MetricsAddr, cfg.HTTPAddr)
		}
		if cfg.MetricsAddr == "" && cfg.HTTPAddr == "" {
			t.Fatalf("%s serves no /metrics", name)
		}
		// The sandbox's registry and credentials by default.
		if !strings.HasPrefix(cfg.RegistryURL, "http://sandbox:") || !strings.HasPrefix(cfg.Credentials, "/var/lib/dealflow/") ||
			!hasVolume(s, "dealflow-shared:/var/lib/dealflow") {
			t.Fatalf("%s: registry %q credentials %q volumes %v: not the sandbox's", name, cfg.RegistryURL, cfg.Credentials, s.Volumes)
		}
	}
	for _, st := range config.KnownStages {
		if !stages[st] {
			t.Fatalf("no compose service runs stage %s", st)
		}
	}
	sb, ok := c.Services["sandbox"]
	if !ok || len(sb.Command) == 0 || sb.Command[0] != "sandbox" || !hasVolume(sb, "dealflow-shared:/var/lib/dealflow") {
		t.Fatalf("sandbox service: %+v", sb)
	}
	if i := slices.Index(sb.Command, "--credentials-out"); i < 0 || !strings.HasPrefix(sb.Command[i+1], "/var/lib/dealflow/") {
		t.Fatalf("sandbox writes no credentials to the shared volume: %v", sb.Command)
	}
	healthPort(t, "sandbox", sb)
	// The address guard is on: each stage may reach the sandbox's fixed
	// address, and no other private, loopback, link-local or metadata one.
	sandboxAddr, err := netip.ParseAddr(sb.Networks["default"].IPv4Address)
	if err != nil {
		t.Fatalf("the sandbox has no fixed address on the default network: %v", sb.Networks)
	}
	for name, s := range c.Services {
		if len(s.Command) == 0 || s.Command[0] != "run" {
			continue
		}
		g := runConfig(t, name, s).Guard()
		if err := g.CheckAddr(sandboxAddr); err != nil {
			t.Fatalf("%s cannot reach the sandbox at %s: %v", name, sandboxAddr, err)
		}
		for _, a := range []string{"127.0.0.1", "172.28.0.2", "10.0.0.1", "192.168.1.1", "169.254.169.254", "fd00:ec2::254"} {
			if g.CheckAddr(netip.MustParseAddr(a)) == nil {
				t.Fatalf("%s: the address guard (%s) lets %s through", name, g, a)
			}
		}
	}
	for _, name := range []string{"prometheus", "grafana"} {
		if img := c.Services[name].Image; !regexp.MustCompile(`:v?\d+\.\d+\.\d+$`).MatchString(img) {
			t.Fatalf("%s image %q is not pinned to a version", name, img)
		}
	}
}

// healthPort checks the service's healthcheck is the binary's own probe and
// returns the port it probes.
func healthPort(t *testing.T, name string, s service) string {
	t.Helper()
	h := s.Healthcheck.Test
	if len(h) != 4 || h[0] != "CMD" || h[1] != "/dealflow" || h[2] != "healthcheck" {
		t.Fatalf("%s: healthcheck %v, want [CMD /dealflow healthcheck URL]", name, h)
	}
	u, err := url.Parse(h[3])
	if err != nil || u.Hostname() != "127.0.0.1" || u.Port() == "" {
		t.Fatalf("%s: healthcheck URL %q", name, h[3])
	}
	return u.Port()
}

func addrPort(addr string) string {
	if addr == "" {
		return ""
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	return port
}

func hasVolume(s service, prefix string) bool {
	for _, v := range s.Volumes {
		if strings.HasPrefix(v, prefix) {
			return true
		}
	}
	return false
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

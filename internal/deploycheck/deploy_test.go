// Package deploycheck validates the deployment files as far as can be done
// without Docker: the NATS cluster config parses with the embedded server's
// own parser, and every stage in docker-compose.yml runs a command line the
// dealflow binary accepts.
package deploycheck

import (
	"flag"
	"io"
	"os"
	"path/filepath"
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

type compose struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		Deploy      struct {
			Replicas int `yaml:"replicas"`
		} `yaml:"deploy"`
	} `yaml:"services"`
}

func TestComposeStagesRunValidCommands(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
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
		if cfg.Replicas != 3 || !strings.Contains(cfg.NATSURL, "n3:4222") {
			t.Fatalf("%s: replicas %d nats %q", name, cfg.Replicas, cfg.NATSURL)
		}
		for _, st := range cfg.Stages {
			stages[st] = true
		}
		if name == "negotiator" && s.Deploy.Replicas != 3 {
			t.Fatalf("negotiator replicas = %d, want 3", s.Deploy.Replicas)
		}
	}
	for _, st := range config.KnownStages {
		if !stages[st] {
			t.Fatalf("no compose service runs stage %s", st)
		}
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

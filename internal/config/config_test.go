package config

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaultsValidate(t *testing.T) {
	c := Defaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(c.Stages) != 7 || c.NATSPort != -1 || c.CacheTTL != 5*time.Minute || c.Strategy != "adaptive" {
		t.Fatalf("defaults %+v", c)
	}
}

func TestEnvAndFlags(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		args    []string
		check   func(c Config) bool
		wantErr string
	}{
		{"env", map[string]string{"DEALFLOW_STAGES": "negotiator", "DEALFLOW_NATS_URL": "nats://a:4222"}, nil,
			func(c Config) bool {
				return len(c.Stages) == 1 && c.Stages[0] == "negotiator" && c.NATSURL == "nats://a:4222"
			}, ""},
		{"flag beats env", map[string]string{"DEALFLOW_NEGOTIATOR_WORKERS": "5"}, []string{"--negotiator-workers", "7"},
			func(c Config) bool { return c.NegWorkers == 7 }, ""},
		{"bad stage", nil, []string{"--stages", "discoverer,bogus"}, nil, "unknown stage"},
		{"bad env duration", map[string]string{"DEALFLOW_CACHE_TTL": "soon"}, nil, nil, "DEALFLOW_CACHE_TTL"},
		{"bad kind", nil, []string{"--registry-kind", "ldap"}, nil, "registry-kind"},
		{"bad strategy", nil, []string{"--strategy", "greedy"}, nil, "strategy"},
		// A boolean is a bare switch: it must not swallow the next argument.
		{"bare allow-private", nil, []string{"--allow-private", "--stages", "negotiator"},
			func(c Config) bool { return c.AllowPrivate && len(c.Stages) == 1 && c.Stages[0] == "negotiator" }, ""},
		{"bare log-json then stages", nil, []string{"--log-json", "--stages", "booker", "--allow-private"},
			func(c Config) bool {
				return c.LogJSON && c.AllowPrivate && len(c.Stages) == 1 && c.Stages[0] == "booker"
			}, ""},
		{"explicit false beats env", map[string]string{"DEALFLOW_ALLOW_PRIVATE": "true"}, []string{"--allow-private=false"},
			func(c Config) bool { return !c.AllowPrivate }, ""},
		{"bool env fallback", map[string]string{"DEALFLOW_LOG_JSON": "1", "DEALFLOW_ALLOW_PRIVATE": "true"}, nil,
			func(c Config) bool { return c.LogJSON && c.AllowPrivate }, ""},
		// --allow-private also takes a list of CIDRs, as one argument or
		// two; bare or true stays loopback and private.
		{"allow-private list", nil, []string{"--allow-private", "127.0.0.0/8,10.0.0.0/8", "--stages", "booker"},
			func(c Config) bool {
				return !c.AllowPrivate && len(c.AllowPrefixes) == 2 && c.AllowPrefixes[1].String() == "10.0.0.0/8" &&
					len(c.Guard().Allowed()) == 2 && len(c.Stages) == 1
			}, ""},
		{"allow-private list with =", nil, []string{"--allow-private=::1"},
			func(c Config) bool { return len(c.AllowPrefixes) == 1 && c.AllowPrefixes[0].String() == "::1/128" }, ""},
		{"allow-private list env", map[string]string{"DEALFLOW_ALLOW_PRIVATE": "172.28.0.100"}, nil,
			func(c Config) bool {
				return len(c.AllowPrefixes) == 1 && c.AllowPrefixes[0].String() == "172.28.0.100/32"
			}, ""},
		{"bare allow-private is loopback and private", nil, []string{"--allow-private"},
			func(c Config) bool { return c.AllowPrivate && len(c.Guard().Allowed()) == 6 }, ""},
		{"allow-private never link-local", nil, []string{"--allow-private", "169.254.0.0/16"}, nil, "never allowed"},
		{"allow-private never metadata env", map[string]string{"DEALFLOW_ALLOW_PRIVATE": "10.0.0.0/8,fd00:ec2::254"}, nil, nil, "DEALFLOW_ALLOW_PRIVATE"},
		{"allow-private bad CIDR", nil, []string{"--allow-private=10.0.0.0/99"}, nil, "not a CIDR"},
		{"bad bool env", map[string]string{"DEALFLOW_LOG_JSON": "yes please"}, nil, nil, "DEALFLOW_LOG_JSON"},
		{"bad bool flag", nil, []string{"--log-json=maybe"}, nil, "log-json"},
		{"time scale in seconds", nil, []string{"--time-scale", "0.5", "--pacing-every", "6h", "--pacing-tolerance", "0.25"},
			func(c Config) bool {
				return c.TimeScale == 500*time.Millisecond && c.PacingEvery == 6*time.Hour && c.PacingTolerance == 0.25
			}, ""},
		{"time scale as a duration", map[string]string{"DEALFLOW_TIME_SCALE": "2s"}, nil,
			func(c Config) bool {
				return c.TimeScale == 2*time.Second && c.PacingEvery == time.Hour && c.PacingTolerance == 0.2
			}, ""},
		{"bad time scale", nil, []string{"--time-scale", "-1"}, nil, "time-scale"},
		{"readings too close", nil, []string{"--pacing-every", "10s"}, nil, "pacing-every"},
		{"no tolerance", nil, []string{"--pacing-tolerance", "0"}, nil, "pacing-tolerance"},
		{"bad tolerance", nil, []string{"--pacing-tolerance", "NaN"}, nil, "pacing-tolerance"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			var cfg Config
			b := Register(fs, &cfg)
			err := fs.Parse(JoinValues(c.args))
			if err == nil {
				err = b.Finish()
			}
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil || !c.check(cfg) {
				t.Fatalf("err %v cfg %+v", err, cfg)
			}
		})
	}
}

// TestEveryBooleanIsASwitch: each boolean option, given bare before another
// flag, is true and leaves the next flag to be parsed.
func TestEveryBooleanIsASwitch(t *testing.T) {
	n := 0
	for _, o := range Options {
		if !o.IsBool() {
			continue
		}
		n++
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var cfg Config
		b := Register(fs, &cfg)
		if err := fs.Parse([]string{"--" + o.Flag, "--stages", "kitfetcher", "extra"}); err != nil {
			t.Fatalf("--%s: %v", o.Flag, err)
		}
		if err := b.Finish(); err != nil {
			t.Fatal(err)
		}
		if len(cfg.Stages) != 1 || cfg.Stages[0] != "kitfetcher" || fs.NArg() != 1 {
			t.Fatalf("--%s swallowed an argument: stages %v args %v", o.Flag, cfg.Stages, fs.Args())
		}
	}
	if n < 2 {
		t.Fatalf("%d boolean options; want allow-private and log-json at least", n)
	}
}

// TestConfigurationDocumentsEveryOption keeps the options table in
// docs/configuration.md identical to the options the binary accepts.
func TestConfigurationDocumentsEveryOption(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), Markdown()) {
		t.Fatal("docs/configuration.md's options table differs from `dealflow config --reference`; paste its output into docs/configuration.md")
	}
}

// TestDSPSettings: the activator stage needs a DSP, a DSP is an http(s)
// URL or file:///dir signed with a key of 16 characters or more, and the
// attempt settings are bounded.
func TestDSPSettings(t *testing.T) {
	key := strings.Repeat("k", 16)
	cases := []struct {
		name    string
		edit    func(c *Config)
		wantErr string
	}{
		{"activator without a DSP", func(c *Config) { c.Stages = append(c.Stages, "activator") }, "--stages activator needs --dsp"},
		{"webhook", func(c *Config) {
			c.Stages, c.DSP, c.DSPSecret = []string{"activator"}, "https://dsp.example/activations", key
		}, ""},
		{"files", func(c *Config) {
			c.Stages, c.DSP, c.DSPSecret = []string{"activator"}, "file:///var/dealflow/activations", key
		}, ""},
		{"no secret", func(c *Config) { c.DSP = "https://dsp.example/a" }, "--dsp-secret"},
		{"short secret", func(c *Config) { c.DSP, c.DSPSecret = "https://dsp.example/a", "short" }, "--dsp-secret"},
		{"other scheme", func(c *Config) { c.DSP, c.DSPSecret = "ftp://dsp.example/a", key }, "neither"},
		{"no host", func(c *Config) { c.DSP, c.DSPSecret = "https:///a", key }, "neither"},
		{"remote file", func(c *Config) { c.DSP, c.DSPSecret = "file://host/dir", key }, "neither"},
		{"zero timeout", func(c *Config) { c.DSPTimeout = 0 }, "--dsp-timeout"},
		{"endless timeout", func(c *Config) { c.DSPTimeout = time.Hour }, "--dsp-timeout"},
		{"no attempts", func(c *Config) { c.DSPAttempts = 0 }, "--dsp-attempts"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Defaults()
			tc.edit(&c)
			err := c.Validate()
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// Package config declares every setting of the dealflow binary once: its
// flag, its environment variable, its default and its help text, so the help
// output, the README table and the validation cannot drift apart.
package config

import (
	"flag"
	"fmt"
	"math"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/rs/zerolog"

	"github.com/dealflow/dealflow/internal/flight"
	"github.com/dealflow/dealflow/pkg/sellerclient"
)

// Config is the effective configuration of one dealflow process.
type Config struct {
	NATSURL      string
	DataDir      string
	NATSPort     int
	NATSConfig   string
	Replicas     int
	Stages       []string
	HTTPAddr     string
	APIKey       string
	RegistryURL  string
	RegistryKind string
	RegistryTok  string
	KnownSellers string
	Sellers      []string
	Credentials  string
	Buyer        string
	// AllowPrivate (a bare --allow-private, or "true") allows loopback and
	// private addresses (sellerclient.PrivatePrefixes); AllowPrefixes is an
	// explicit list (--allow-private 127.0.0.0/8,10.0.0.0/8). Link-local and
	// metadata addresses are refused whatever either says (Guard).
	AllowPrivate  bool
	AllowPrefixes []netip.Prefix
	CacheTTL      time.Duration
	CatalogTTL    time.Duration
	KitWorkers    int
	NegWorkers    int
	SellerTO      time.Duration
	NegTO         time.Duration
	Window        time.Duration
	// BookingHorizon, ReconcileEvery and BookCallTO shape the booking of
	// one line (services/booker): how long an unknown outcome is retried
	// before it is reported unresolved, how often it is then reconciled,
	// and the deadline of one booking call.
	BookingHorizon time.Duration
	ReconcileEvery time.Duration
	BookCallTO     time.Duration
	// TimeScale, PacingEvery and PacingTolerance shape the following of
	// booked lines (services/pacer): the flight clock (0 real time, else
	// how long one flight day lasts), the flight time between two
	// readings of a line, and how far its pacing index may stray from 1.
	TimeScale       time.Duration
	PacingEvery     time.Duration
	PacingTolerance float64
	Strategy        string
	LogLevel        string
	LogJSON         bool
	MetricsAddr     string
	Pprof           bool
	NATSMonitor     int
	// StreamMaxBytes, StreamMaxAge, DLQMaxBytes and BucketMaxBytes are
	// the JetStream limits (internal/bus Config).
	StreamMaxBytes int64
	StreamMaxAge   time.Duration
	DLQMaxBytes    int64
	BucketMaxBytes int64
	// DSP, DSPSecret, DSPTimeout and DSPAttempts shape the activator
	// (services/activator): where activations go (an http(s) URL, signed
	// POSTs; file:///dir, signed files), their HMAC key, one attempt's
	// deadline and how many attempts a deal gets.
	DSP         string
	DSPSecret   string
	DSPTimeout  time.Duration
	DSPAttempts int
	// DealPushTokens is the file of the tokens sellers push deals to the
	// bookings API's buyer deal endpoint with; DealStatusTokenRequired
	// makes GET /deals/{deal_id}/status need one too.
	DealPushTokens          string
	DealStatusTokenRequired bool
}

// Option is one setting.
type Option struct {
	Flag    string
	Env     string
	Default string
	Usage   string
	set     setter
}

// setter parses one option's value into the Config.
type setter struct {
	fn func(c *Config, v string) error
	// isBool marks a switch: given bare (--log-json) it means true.
	isBool bool
}

// IsBool reports whether the option is a boolean switch: given bare
// (--allow-private) it means true, and --allow-private=false turns it off.
func (o Option) IsBool() bool { return o.set.isBool }

func (o Option) apply(c *Config, v string) error { return o.set.fn(c, v) }

func str(p func(*Config) *string) setter {
	return setter{fn: func(c *Config, v string) error { *p(c) = v; return nil }}
}

// list parses a comma-separated list, dropping empty items.
func list(p func(*Config) *[]string) setter {
	return setter{fn: func(c *Config, v string) error {
		*p(c) = nil
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				*p(c) = append(*p(c), s)
			}
		}
		return nil
	}}
}

func integer(p func(*Config) *int) setter {
	return setter{fn: func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("not an integer: %q", v)
		}
		*p(c) = n
		return nil
	}}
}

func duration(p func(*Config) *time.Duration) setter {
	return setter{fn: func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("not a duration: %q", v)
		}
		*p(c) = d
		return nil
	}}
}

// size parses a byte size: a number of bytes, or with a unit (256MiB,
// 1GiB, 500MB, 2 GB).
func size(p func(*Config) *int64) setter {
	return setter{fn: func(c *Config, v string) error {
		n, err := humanize.ParseBytes(v)
		if err != nil || n > math.MaxInt64 {
			return fmt.Errorf("not a size: %q (e.g. 1GiB, 256MiB, 1073741824)", v)
		}
		*p(c) = int64(n)
		return nil
	}}
}

func float(p func(*Config) *float64) setter {
	return setter{fn: func(c *Config, v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("not a number: %q", v)
		}
		*p(c) = f
		return nil
	}}
}

// timeScale parses --time-scale: seconds per flight day, or a duration.
func timeScale(p func(*Config) *time.Duration) setter {
	return setter{fn: func(c *Config, v string) error {
		d, err := flight.ParseScale(v)
		if err != nil {
			return err
		}
		*p(c) = d
		return nil
	}}
}

func boolean(p func(*Config) *bool) setter {
	return setter{isBool: true, fn: func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("not a boolean: %q", v)
		}
		*p(c) = b
		return nil
	}}
}

// allowList parses --allow-private: a switch (bare or true: loopback and
// private) that also takes a list of CIDRs.
func allowList() setter {
	return setter{isBool: true, fn: func(c *Config, v string) error {
		p, err := sellerclient.ParseAllowList(v)
		if err != nil {
			return err
		}
		c.AllowPrivate, c.AllowPrefixes = false, nil
		if b, berr := strconv.ParseBool(strings.TrimSpace(v)); berr == nil {
			c.AllowPrivate = b
			return nil
		}
		c.AllowPrefixes = p
		return nil
	}}
}

// Guard is the address guard of every connection to a seller, registry or
// webhook: --allow-private's prefixes besides public addresses.
func (c Config) Guard() sellerclient.Guard {
	return sellerclient.GuardFor(c.AllowPrivate, c.AllowPrefixes)
}

// valueSwitches are the switches that also take a value (--allow-private
// 10.0.0.0/8); JoinValues joins a separate value to them.
var valueSwitches = map[string]bool{"allow-private": true}

// JoinValues returns args with "--allow-private LIST" written as
// "--allow-private=LIST" when LIST is an address list (it starts with a
// digit, or holds ':' or '/'), so the switch keeps working bare before
// another flag and also takes a separate value. Parse a FlagSet of Register
// with fs.Parse(config.JoinValues(args)).
func JoinValues(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		out = append(out, a)
		if a == "--" {
			return append(out, args[i+1:]...)
		}
		name := strings.TrimLeft(a, "-")
		if !strings.HasPrefix(a, "-") || strings.Contains(name, "=") || !valueSwitches[name] || i+1 >= len(args) {
			continue
		}
		if v := args[i+1]; v != "" && (v[0] >= '0' && v[0] <= '9' || strings.ContainsAny(v, ":/")) {
			out[len(out)-1] = a + "=" + v
			i++
		}
	}
	return out
}

// Options lists every setting, in help order.
var Options = []Option{
	{"nats", "DEALFLOW_NATS_URL", "", "NATS URL(s) of an external cluster, comma-separated; empty starts an embedded server", str(func(c *Config) *string { return &c.NATSURL })},
	{"data-dir", "DEALFLOW_DATA_DIR", "", "embedded server's JetStream store, locked by one process at a time; empty uses a temporary directory", str(func(c *Config) *string { return &c.DataDir })},
	{"nats-port", "DEALFLOW_NATS_PORT", "-1", "embedded server's client port: -1 in-process only, 0 random, else the port (run --sandbox without it: 4222, or a free port when taken)", integer(func(c *Config) *int { return &c.NATSPort })},
	{"nats-config", "DEALFLOW_NATS_CONFIG", "", "nats-server config file for the embedded server (same syntax as a cluster node)", str(func(c *Config) *string { return &c.NATSConfig })},
	{"replicas", "DEALFLOW_REPLICAS", "1", "stream and KV replicas (3 in a cluster)", integer(func(c *Config) *int { return &c.Replicas })},
	{"stages", "DEALFLOW_STAGES", "discoverer,kitfetcher,negotiator,booker,notifier,pacer,reallocator", "stages this process runs, comma-separated", list(func(c *Config) *[]string { return &c.Stages })},
	{"http", "DEALFLOW_HTTP_ADDR", "", "address of the bookings API (e.g. 127.0.0.1:8080); empty disables it", str(func(c *Config) *string { return &c.HTTPAddr })},
	{"api-key", "DEALFLOW_API_KEY", "", "when set, the bookings API requires this X-API-Key (never forwarded to sellers)", str(func(c *Config) *string { return &c.APIKey })},
	{"registry", "DEALFLOW_REGISTRY_URL", "", "agent registry URL; empty uses only the known sellers", str(func(c *Config) *string { return &c.RegistryURL })},
	{"registry-kind", "DEALFLOW_REGISTRY_KIND", "simple", "registry API: simple (/agents, /verify), aamp (/api/agents with a bearer token) or aao (AgenticAdvertising.Org /api/registry/agents: AdCP sales agents, compliance feeds trust)", str(func(c *Config) *string { return &c.RegistryKind })},
	{"registry-token", "DEALFLOW_REGISTRY_TOKEN", "", "bearer token for the AAMP registry", str(func(c *Config) *string { return &c.RegistryTok })},
	{"known-sellers", "DEALFLOW_KNOWN_SELLERS", "", "JSON file of known sellers [{url,name,trust,capabilities,protocol,mcp_endpoint}] (protocol iab-seller-agent, the default, or adcp), used besides the registry and when it is down", str(func(c *Config) *string { return &c.KnownSellers })},
	{"sellers", "DEALFLOW_SELLERS", "", "known seller URLs, comma-separated, besides the file; their trust is asked of the registry (unknown without one)", list(func(c *Config) *[]string { return &c.Sellers })},
	{"credentials", "DEALFLOW_CREDENTIALS", "", "JSON file of seller API keys per tier {\"sellers\":{url:{seat,agency,advertiser}}} (AdCP sellers: bearer_token, account, brand); also read from DEALFLOW_SELLER_KEYS", str(func(c *Config) *string { return &c.Credentials })},
	{"buyer", "DEALFLOW_BUYER", "", "JSON file with the buyer's identity {seat_id,agency_id,advertiser_id,...}, used when a campaign carries none", str(func(c *Config) *string { return &c.Buyer })},
	{"allow-private", "DEALFLOW_ALLOW_PRIVATE", "false", "non-public addresses seller, registry and webhook URLs may reach: a comma-separated list of CIDRs (127.0.0.0/8,10.0.0.0/8), or bare/true for loopback and private (127.0.0.0/8, ::1, 10/8, 172.16/12, 192.168/16, fc00::/7); link-local and metadata addresses (169.254.0.0/16, fe80::/10, fd00:ec2::254) are refused even so", allowList()},
	{"cache-ttl", "DEALFLOW_CACHE_TTL", "5m", "registry cache TTL (stale entries still serve when the registry fails)", duration(func(c *Config) *time.Duration { return &c.CacheTTL })},
	{"catalog-ttl", "DEALFLOW_CATALOG_TTL", "5m", "how long the kitfetcher reuses a seller's product catalog (GET /products, read without credentials) across campaigns; 0 reads it for every campaign", duration(func(c *Config) *time.Duration { return &c.CatalogTTL })},
	{"kit-workers", "DEALFLOW_KIT_WORKERS", "32", "sellers whose media kits one replica fetches at once", integer(func(c *Config) *int { return &c.KitWorkers })},
	{"negotiator-workers", "DEALFLOW_NEGOTIATOR_WORKERS", "64", "negotiations one replica runs at once", integer(func(c *Config) *int { return &c.NegWorkers })},
	{"seller-timeout", "DEALFLOW_SELLER_TIMEOUT", "15s", "deadline for one seller's media kit", duration(func(c *Config) *time.Duration { return &c.SellerTO })},
	{"negotiation-timeout", "DEALFLOW_NEGOTIATION_TIMEOUT", "60s", "deadline for one package's quote and negotiation", duration(func(c *Config) *time.Duration { return &c.NegTO })},
	{"shopping-window", "DEALFLOW_SHOPPING_WINDOW", "2m", "time after a request when the booker optimises with the quotes it has", duration(func(c *Config) *time.Duration { return &c.Window })},
	{"booking-horizon", "DEALFLOW_BOOKING_HORIZON", "3m", "how long a line whose booking outcome is unknown (timeouts, dropped answers, 5xx) is retried with the same idempotency key before it is reported unresolved (BookingFailed outcome_unknown, its spend kept reserved) and reconciled with the seller", duration(func(c *Config) *time.Duration { return &c.BookingHorizon })},
	{"reconcile-every", "DEALFLOW_RECONCILE_EVERY", "30s", "first interval at which an unresolved line is checked with its seller; it grows with the time unresolved, up to 10m, for 24h", duration(func(c *Config) *time.Duration { return &c.ReconcileEvery })},
	{"booking-call-timeout", "DEALFLOW_BOOKING_CALL_TIMEOUT", "30s", "deadline of one booking call to a seller (a timed-out booking's outcome is unknown and retried)", duration(func(c *Config) *time.Duration { return &c.BookCallTO })},
	{"time-scale", "DEALFLOW_TIME_SCALE", "0", "flight clock of booked lines: 0 follows flights in real time by their dates; N (seconds, or a duration such as 500ms) plays one flight day in N from the booking, for demos and tests; the pacer and the sandbox sellers serving its flights (run --sandbox, dealflow sandbox) must use the same value", timeScale(func(c *Config) *time.Duration { return &c.TimeScale })},
	{"pacing-every", "DEALFLOW_PACING_EVERY", "1h", "flight time between two delivery readings of a booked line (its schedule's slots; the last reading is at the flight's end); on an accelerated clock readings are at least 100ms apart", duration(func(c *Config) *time.Duration { return &c.PacingEvery })},
	{"pacing-tolerance", "DEALFLOW_PACING_TOLERANCE", "0.2", "how far a line's pacing index (spend to date / what its plan expects by then) may stray from 1 before a PacingDeviation: 0.2 flags below 0.8 and above 1.2", float(func(c *Config) *float64 { return &c.PacingTolerance })},
	{"strategy", "DEALFLOW_STRATEGY", "adaptive", "negotiation strategy for campaigns that name none: threshold, adaptive or competitive", str(func(c *Config) *string { return &c.Strategy })},
	{"log-level", "DEALFLOW_LOG_LEVEL", "info", "log level: debug, info, warn, error", str(func(c *Config) *string { return &c.LogLevel })},
	{"log-json", "DEALFLOW_LOG_JSON", "false", "log JSON lines instead of console text", boolean(func(c *Config) *bool { return &c.LogJSON })},
	{"metrics-addr", "DEALFLOW_METRICS_ADDR", "", "address serving Prometheus /metrics, /livez and /readyz; 'dealflow run' without --http defaults to 127.0.0.1:9464 (a free port if taken); empty disables it", str(func(c *Config) *string { return &c.MetricsAddr })},
	{"pprof", "DEALFLOW_PPROF", "false", "also serve /debug/pprof/* on the metrics address (the bookings API address when it serves /metrics)", boolean(func(c *Config) *bool { return &c.Pprof })},
	{"stream-max-bytes", "DEALFLOW_STREAM_MAX_BYTES", "1GiB", "size of the event stream (per replica); it never deletes an event a stage has not processed: above 60% full the oldest processed events are purged, at 80% new campaigns are refused (503 with Retry-After), and a publish to a full stream is refused and retried; set the same on every process", size(func(c *Config) *int64 { return &c.StreamMaxBytes })},
	{"stream-max-age", "DEALFLOW_STREAM_MAX_AGE", "168h", "how long processed events stay in the event stream (replay, audit, campaign watch); an event a stage has not processed stays whatever its age", duration(func(c *Config) *time.Duration { return &c.StreamMaxAge })},
	{"dlq-max-bytes", "DEALFLOW_DLQ_MAX_BYTES", "256MiB", "size of the dead-letter stream (its oldest dead letters make room; they are kept 30 days)", size(func(c *Config) *int64 { return &c.DLQMaxBytes })},
	{"bucket-max-bytes", "DEALFLOW_BUCKET_MAX_BYTES", "256MiB", "size of each KV bucket (campaign records, quotes, negotiations, booking ledger, webhooks); a full bucket refuses writes, which are retried, and at 80% new campaigns are refused (503 with Retry-After)", size(func(c *Config) *int64 { return &c.BucketMaxBytes })},
	{"nats-monitor-port", "DEALFLOW_NATS_MONITOR_PORT", "0", "embedded server's HTTP monitoring port (/varz, /jsz, /healthz for nats-server tooling and exporters); 0 disables it", integer(func(c *Config) *int { return &c.NATSMonitor })},
	{"dsp", "DEALFLOW_DSP", "", "where the activator stage sets deals up: an http(s) URL (each activation POSTed, HMAC-signed, with the deal's Idempotency-Key) or file:///dir (a signed JSON file per deal); the activator stage needs one", str(func(c *Config) *string { return &c.DSP })},
	{"dsp-secret", "DEALFLOW_DSP_SECRET", "", "HMAC-SHA256 key signing each activation (X-Dealflow-Signature, as the notifier's webhooks), at least 16 characters", str(func(c *Config) *string { return &c.DSPSecret })},
	{"dsp-timeout", "DEALFLOW_DSP_TIMEOUT", "10s", "deadline of one activation attempt (a timed-out attempt is retried with the same idempotency key)", duration(func(c *Config) *time.Duration { return &c.DSPTimeout })},
	{"dsp-attempts", "DEALFLOW_DSP_ATTEMPTS", "8", "attempts a deal's activation gets (retryable failures: 5xx, timeouts, refused connections) before it is reported failed for good", integer(func(c *Config) *int { return &c.DSPAttempts })},
	{"deal-push-tokens", "DEALFLOW_DEAL_PUSH_TOKENS", "", "JSON file {\"sellers\":{url:token}} of the bearer token each seller pushes deals to the bookings API's POST /deals with (IAB Deals API buyer side); without it pushes are refused", str(func(c *Config) *string { return &c.DealPushTokens })},
	{"deal-status-token-required", "DEALFLOW_DEAL_STATUS_TOKEN_REQUIRED", "false", "GET /deals/{deal_id}/status answers only a seller presenting its push token (the seller-agent v2.4.2 asks without one, so the default answers it; a token that is sent must be right)", boolean(func(c *Config) *bool { return &c.DealStatusTokenRequired })},
}

// Defaults returns the configuration with every default applied.
func Defaults() Config {
	var c Config
	for _, o := range Options {
		if err := o.apply(&c, o.Default); err != nil {
			panic("config: bad default for " + o.Flag + ": " + err.Error())
		}
	}
	return c
}

// Register adds the options named in only (all when empty) to fs, applying
// environment variables over defaults and flags over both. Call Finish after
// fs.Parse to surface env parse errors.
func Register(fs *flag.FlagSet, c *Config, only ...string) *Binder {
	*c = Defaults()
	want := map[string]bool{}
	b := &Binder{c: c, only: want, source: map[string]setting{}}
	for _, n := range only {
		want[n] = true
	}
	for _, o := range Options {
		if len(want) > 0 && !want[o.Flag] {
			continue
		}
		if v, ok := os.LookupEnv(o.Env); ok {
			if err := o.apply(c, v); err != nil {
				b.errs = append(b.errs, fmt.Errorf("%s: %w", o.Env, err))
			}
			b.source[o.Flag] = setting{value: v, from: "env " + o.Env}
		}
		usage := o.Usage + " (env " + o.Env + ", default " + quote(o.Default) + ")"
		set := func(v string) error {
			if err := o.apply(c, v); err != nil {
				return err
			}
			b.source[o.Flag] = setting{value: v, from: "flag --" + o.Flag}
			return nil
		}
		if o.IsBool() {
			// A switch works bare (--allow-private); registered with
			// fs.Func it would swallow the next argument as its value.
			fs.BoolFunc(o.Flag, usage, set)
		} else {
			fs.Func(o.Flag, usage, set)
		}
	}
	return b
}

// Binder carries environment errors found while registering, and where
// each setting's value came from.
type Binder struct {
	c      *Config
	errs   []error
	only   map[string]bool
	source map[string]setting
}

// setting is a value as given and where it was given.
type setting struct{ value, from string }

// Setting is one option's effective value and its source.
type Setting struct {
	Flag, Env, Value string
	// Source is "default", "env NAME" or "flag --name"; a flag wins over
	// the environment, which wins over the default.
	Source string
}

// secret options are shown as set or not, never by value.
var secret = map[string]bool{"api-key": true, "registry-token": true, "dsp-secret": true}

// Effective lists every registered option with its effective value and
// source, secrets masked.
func (b *Binder) Effective() []Setting {
	var out []Setting
	for _, o := range Options {
		if len(b.only) > 0 && !b.only[o.Flag] {
			continue
		}
		st := Setting{Flag: o.Flag, Env: o.Env, Value: o.Default, Source: "default"}
		if v, ok := b.source[o.Flag]; ok {
			st.Value, st.Source = v.value, v.from
		}
		if secret[o.Flag] && st.Value != "" {
			st.Value = "(set)"
		}
		out = append(out, st)
	}
	return out
}

// Finish validates the configuration.
func (b *Binder) Finish() error {
	if len(b.errs) > 0 {
		return b.errs[0]
	}
	return b.c.Validate()
}

func quote(s string) string {
	if s == "" {
		return `""`
	}
	return s
}

// KnownStages are the stage names --stages accepts.
var KnownStages = []string{"discoverer", "kitfetcher", "negotiator", "booker", "notifier", "activator", "pacer", "reallocator"}

// Validate checks values that flags cannot.
func (c Config) Validate() error {
	for _, s := range c.Stages {
		ok := false
		for _, k := range KnownStages {
			ok = ok || s == k
		}
		if !ok {
			return fmt.Errorf("--stages: unknown stage %q (want %s)", s, strings.Join(KnownStages, ","))
		}
	}
	switch c.RegistryKind {
	case "simple", "aamp", "aao":
	default:
		return fmt.Errorf("--registry-kind: %q is not simple, aamp or aao", c.RegistryKind)
	}
	switch c.Strategy {
	case "threshold", "adaptive", "competitive":
	default:
		return fmt.Errorf("--strategy: %q is not threshold, adaptive or competitive", c.Strategy)
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		return fmt.Errorf("--replicas: %d is not between 1 and 5", c.Replicas)
	}
	if c.KitWorkers < 1 || c.NegWorkers < 1 {
		return fmt.Errorf("worker counts must be at least 1")
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"booking-horizon", c.BookingHorizon}, {"reconcile-every", c.ReconcileEvery}, {"booking-call-timeout", c.BookCallTO}} {
		if d.v <= 0 {
			return fmt.Errorf("--%s: %s must be positive", d.flag, d.v)
		}
	}
	if c.PacingEvery < time.Minute {
		return fmt.Errorf("--pacing-every: %s is shorter than a minute of flight time", c.PacingEvery)
	}
	if c.PacingTolerance <= 0 || c.PacingTolerance > 1 {
		return fmt.Errorf("--pacing-tolerance: %v is not above 0 and at most 1", c.PacingTolerance)
	}
	if c.BookingHorizon < c.BookCallTO {
		return fmt.Errorf("--booking-horizon: %s is shorter than one booking call (--booking-call-timeout %s)", c.BookingHorizon, c.BookCallTO)
	}
	for _, l := range []struct {
		flag string
		v    int64
	}{{"stream-max-bytes", c.StreamMaxBytes}, {"dlq-max-bytes", c.DLQMaxBytes}, {"bucket-max-bytes", c.BucketMaxBytes}} {
		if l.v < 64<<10 {
			return fmt.Errorf("--%s: %d bytes is below the least size, 64KiB", l.flag, l.v)
		}
	}
	if c.StreamMaxAge < time.Minute {
		return fmt.Errorf("--stream-max-age: %s is shorter than a minute", c.StreamMaxAge)
	}
	if c.NATSMonitor < 0 || c.NATSMonitor > 65535 {
		return fmt.Errorf("--nats-monitor-port: %d is not a port (0 disables it)", c.NATSMonitor)
	}
	if err := c.validateDSP(); err != nil {
		return err
	}
	if lvl, err := zerolog.ParseLevel(strings.ToLower(c.LogLevel)); err != nil || (lvl == zerolog.NoLevel && c.LogLevel != "") {
		return fmt.Errorf("--log-level: %q is not trace, debug, info, warn, error, fatal, panic or disabled", c.LogLevel)
	}
	return nil
}

// validateDSP checks the activator's settings: the activator stage needs
// a DSP, and a DSP a secret to sign with.
func (c Config) validateDSP() error {
	if c.DSPTimeout <= 0 || c.DSPTimeout > 2*time.Minute {
		// One attempt must end well inside the handler's bound (5 min).
		return fmt.Errorf("--dsp-timeout: %s must be positive and at most 2m", c.DSPTimeout)
	}
	if c.DSPAttempts < 1 || c.DSPAttempts > 100 {
		return fmt.Errorf("--dsp-attempts: %d is not between 1 and 100", c.DSPAttempts)
	}
	if c.DSP == "" {
		if c.Has("activator") {
			return fmt.Errorf("--stages activator needs --dsp (an http(s) URL or file:///dir)")
		}
		return nil
	}
	u, err := url.Parse(c.DSP)
	switch {
	case err != nil:
		return fmt.Errorf("--dsp: %w", err)
	case (u.Scheme == "http" || u.Scheme == "https") && u.Host != "":
	case u.Scheme == "file" && u.Path != "" && (u.Host == "" || u.Host == "localhost"):
	default:
		return fmt.Errorf("--dsp: %q is neither an http(s) URL nor file:///dir", c.DSP)
	}
	if len(c.DSPSecret) < 16 {
		return fmt.Errorf("--dsp-secret: give an HMAC key of at least 16 characters to sign activations with")
	}
	return nil
}

// Has reports whether the process runs stage s.
func (c Config) Has(s string) bool {
	for _, x := range c.Stages {
		if x == s {
			return true
		}
	}
	return false
}

// Markdown renders the options as a README table.
func Markdown() string {
	var b strings.Builder
	b.WriteString("| flag | environment | default | meaning |\n|---|---|---|---|\n")
	for _, o := range Options {
		def := "(none)"
		if o.Default != "" {
			def = "`" + o.Default + "`"
		}
		fmt.Fprintf(&b, "| `--%s` | `%s` | %s | %s |\n", o.Flag, o.Env, def, o.Usage)
	}
	return b.String()
}

// Package cli implements the dealflow subcommands.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	neturl "net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/dealflow/dealflow/internal/app"
	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/campaign"
	"github.com/dealflow/dealflow/internal/config"
	"github.com/dealflow/dealflow/internal/demo"
	"github.com/dealflow/dealflow/internal/sandbox"
	_ "github.com/dealflow/dealflow/internal/sandbox/adcp" // the sandbox market's AdCP sales agents
	"github.com/dealflow/dealflow/internal/telemetry"
	"github.com/dealflow/dealflow/pkg/events"
)

const usage = `dealflow: buyer-side multi-seller discovery, negotiation and booking over NATS JetStream.

Usage:
  dealflow demo [--json] [--strategy threshold|adaptive|competitive] [--data-dir DIR] [--cluster 3 [--kill-leader]] [--metrics-addr ADDR]
      Embedded NATS, sandbox registry and sellers, all stages, one sample campaign; prints the booked deals.
      --cluster 3 runs it on a 3-node in-process cluster; --kill-leader kills the stream leader mid-campaign.
  dealflow bench [--sellers N --latency D --campaigns M --negotiator-procs P --negotiator-workers W --cluster 1|3] [--json]
      Measure this machine: pipeline against a sandbox market, CPU, RSS, stream bytes, raw JetStream baseline.
  dealflow run [flags] [--sandbox]
      Run stages long-lived (all by default; --stages negotiator for a scaled replica; --nats URL for a cluster).
  dealflow campaign submit FILE [--wait] [--nats URL]
      Publish a CampaignRequested from a JSON brief file; --wait follows it to completion.
  dealflow campaign watch ID [--nats URL]
      Replay and follow one campaign's events until it ends.
  dealflow sandbox [--json] [--market FILE | --sellers N [--latency D]] [--port P [--listen HOST] [--advertise HOST]] [--seed S] [--credentials-out FILE]
      Serve the sandbox registry and sellers on loopback until interrupted.
  dealflow sellers  [--registry URL] [--caps ctv,video] [--json] [--sandbox]
  dealflow packages [--registry URL] [--caps ctv,video] [--json] [--sandbox]
      Browse sellers and compare packages without booking anything.
  dealflow healthcheck URL
      GET URL (e.g. http://127.0.0.1:9464/livez); exit 0 on a 2xx answer, else 1 (container healthchecks).
  dealflow config [--reference] [FLAGS]
      Print the effective settings (flags over DEALFLOW_* environment over defaults) and where each comes
      from; --reference prints every setting's documentation as a Markdown table.
  dealflow version
      Print the module version, VCS revision and Go version.

Run 'dealflow COMMAND -h' for a command's flags.
`

// Main runs one subcommand and returns the exit status.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "demo":
		err = cmdDemo(ctx, args[1:], stdout, stderr)
	case "run":
		err = cmdRun(ctx, args[1:], stdout, stderr)
	case "bench":
		err = cmdBench(ctx, args[1:], stdout, stderr)
	case "campaign":
		err = cmdCampaign(ctx, args[1:], stdout, stderr)
	case "sandbox":
		err = cmdSandbox(ctx, args[1:], stdout, stderr)
	case "sellers":
		err = cmdBrowse(ctx, args[1:], stdout, stderr, false)
	case "packages":
		err = cmdBrowse(ctx, args[1:], stdout, stderr, true)
	case "healthcheck":
		err = cmdHealthcheck(ctx, args[1:], stdout, stderr)
	case "config":
		err = cmdConfig(args[1:], stdout, stderr)
	case "version", "--version", "-version":
		if err = strayArgs(args[1:]); err == nil {
			printVersion(stdout)
		}
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "dealflow: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		var ee exitError
		if errors.As(err, &ee) {
			return int(ee)
		}
		fmt.Fprintf(stderr, "dealflow %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

// exitError is a silent non-zero exit status.
type exitError int

// Error implements error.
func (e exitError) Error() string { return fmt.Sprintf("exit %d", int(e)) }

// logger builds the process logger (telemetry.NewLogger: no colour unless w
// is a terminal, millisecond timestamps). Levels are validated where they
// are parsed (config.Validate, the demo's flags), so an error here cannot
// happen; info is the safe fallback.
func logger(level string, jsonOut bool, w io.Writer) zerolog.Logger {
	l, err := telemetry.NewLogger(level, jsonOut, w)
	if err != nil {
		l, _ = telemetry.NewLogger("info", jsonOut, w)
	}
	return l
}

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	jsonOut := fs.Bool("json", false, "print one JSON object instead of the report")
	strategy := fs.String("strategy", "adaptive", "negotiation strategy: threshold, adaptive or competitive")
	dataDir := fs.String("data-dir", "", "JetStream store directory (default: a temporary directory)")
	market := fs.String("market", "", "sandbox market JSON file (default: the built-in market)")
	logLevel := fs.String("log-level", "warn", "log level for the pipeline's own logs")
	timeout := fs.Duration("timeout", 3*time.Minute, "give up after this long")
	nodes := fs.Int("cluster", 0, "run on an in-process JetStream cluster of this many nodes (3) from deploy/nats/cluster.conf, R3 storage")
	killLeader := fs.Bool("kill-leader", false, "with --cluster, kill the event stream's leader node after the first negotiation")
	metricsAddr := fs.String("metrics-addr", "", "serve Prometheus /metrics on this address while the demo runs (default off)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if _, err := telemetry.NewLogger(*logLevel, false, io.Discard); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	if *killLeader && *nodes < 3 {
		return fmt.Errorf("--kill-leader needs --cluster 3 (a quorum must survive)")
	}
	o := demo.Options{JSON: *jsonOut, Strategy: *strategy, DataDir: *dataDir, Timeout: *timeout, Log: logger(*logLevel, false, stderr),
		Cluster: *nodes, KillLeader: *killLeader, MetricsAddr: *metricsAddr}
	if *market != "" {
		m, err := sandbox.LoadMarket(*market)
		if err != nil {
			return err
		}
		o.Market = &m
	}
	progress := stderr
	if !*jsonOut {
		progress = stdout
	}
	res, err := demo.Run(ctx, o, stdout, progress)
	if err != nil {
		return err
	}
	if !res.Status.Succeeded() {
		fmt.Fprintf(stderr, "campaign ended %q\n", res.Status)
		return exitError(1)
	}
	return nil
}

// noArgs refuses arguments left after the flags. Flag parsing stops at the
// first one, so "--allow-private true" (boolean flags take no separate
// value) would otherwise drop every flag after it without a word.
func noArgs(fs *flag.FlagSet) error { return strayArgs(fs.Args()) }

// strayArgs is noArgs for the arguments left once a command took the
// positional ones it expects.
func strayArgs(left []string) error {
	if len(left) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unexpected argument %q", left[0])
	if a := left[0]; a == "true" || a == "false" {
		msg += fmt.Sprintf(" (boolean flags take no separate value: write --flag or --flag=%s)", a)
	}
	if len(left) > 1 {
		msg += fmt.Sprintf("; the flags after it were not read: %s", strings.Join(left[1:], " "))
	}
	return errors.New(msg)
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config.Config
	binder := config.Register(fs, &cfg)
	withSandbox := fs.Bool("sandbox", false, "also serve the built-in sandbox market and use it as the registry and credentials")
	if err := fs.Parse(config.JoinValues(args)); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if err := binder.Finish(); err != nil {
		return err
	}
	if err := nothingToDo(cfg, *withSandbox); err != nil {
		return err
	}
	if *withSandbox && natsPortUnset(fs) {
		cfg.NATSPort = quickStartPort()
	}
	opts := app.Options{}
	if cfg.HTTPAddr == "" && flagUnset(fs, "metrics-addr", "DEALFLOW_METRICS_ADDR") {
		// Every long-running process serves /metrics: with no bookings API
		// to serve it on, on 127.0.0.1:9464 (the conventional exporter
		// port), or a free port when another process has that one (decided
		// when listening, so processes starting together cannot race).
		cfg.MetricsAddr = DefaultMetricsAddr
		opts.MetricsFallback = true
	}
	log := logger(cfg.LogLevel, cfg.LogJSON, stderr)
	if *withSandbox {
		// A bad --credentials file is an error here too, not silently
		// replaced by the sandbox's keys.
		creds, err := app.LoadCredentials(cfg.Credentials)
		if err != nil {
			return err
		}
		m, err := sandbox.Start(ctx, sandbox.DefaultMarket())
		if err != nil {
			return err
		}
		defer m.Close()
		cfg.RegistryURL, cfg.AllowPrivate = m.RegistryURL, true
		opts.Credentials = withSandboxKeys(creds, m)
		if cfg.Buyer == "" {
			buyer := demo.SampleCampaign("x", "").Buyer
			opts.Buyer = &buyer
		}
		log.Info().Str("registry", m.RegistryURL).Int("sellers", len(m.Sellers)+len(m.ADCPSellers)).
			Int("iab_sellers", len(m.Sellers)).Int("adcp_sellers", len(m.ADCPSellers)).Msg("sandbox market serving")
	}
	a, err := app.Start(ctx, cfg, log, opts)
	if err != nil {
		return err
	}
	log.Info().Str("stages", a.StagesString()).Bool("embedded", a.Server != nil).Msg("dealflow running")
	natsURL := cfg.NATSURL
	if a.Server != nil && (cfg.NATSPort >= 0 || cfg.NATSConfig != "") {
		natsURL = a.Server.ClientURL()
		log.Info().Str("nats", natsURL).Msg("embedded NATS listening")
	}
	printQuickStart(stdout, natsURL, a.HTTPAddr, a.MetricsAddr, cfg.APIKey != "")
	<-ctx.Done()
	log.Info().Msg("shutting down")
	a.Stop()
	return a.Err()
}

func cmdCampaign(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "watch" {
		return cmdWatch(ctx, args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "submit" {
		return fmt.Errorf("usage: dealflow campaign submit FILE [--wait] [--nats URL] | dealflow campaign watch ID [--nats URL]")
	}
	fs := flag.NewFlagSet("campaign submit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	natsURL := fs.String("nats", envOr("DEALFLOW_NATS_URL", nats.DefaultURL), "NATS URL")
	wait := fs.Bool("wait", false, "follow the campaign until it completes")
	timeout := fs.Duration("timeout", 10*time.Minute, "with --wait, give up after this long")
	// Accept the file before or after the flags.
	rest := args[1:]
	var file string
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		file, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return err
	}
	left := fs.Args()
	if file == "" && len(left) > 0 {
		file, left = left[0], left[1:]
	}
	if err := strayArgs(left); err != nil {
		return err
	}
	if file == "" {
		return fmt.Errorf("usage: dealflow campaign submit FILE [--wait] [--nats URL]")
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	req, err := ParseBrief(b)
	if err != nil {
		return err
	}
	ctx, bb, closeBus, err := connectBus(ctx, *natsURL, stderr)
	if err != nil {
		return err
	}
	defer closeBus()
	// The same path as POST /bookings: one id rule, one duplicate check,
	// one job record, then the CampaignRequested.
	store, err := campaign.Open(ctx, bb)
	if err != nil {
		return fmt.Errorf("campaign store at %s (is the pipeline provisioned?): %w", *natsURL, err)
	}
	c, err := store.Submit(ctx, bb, req, time.Now().UTC())
	if err != nil {
		return fmt.Errorf("submit campaign %s: %w", req.CampaignID, err)
	}
	fmt.Fprintf(stdout, "submitted campaign %s (status %s)\n", c.ID, c.Status)
	if !*wait {
		return nil
	}
	res, err := followReport(ctx, bb, req.CampaignID, *timeout, stdout)
	if err != nil {
		return err
	}
	if !res.Status.Succeeded() {
		return exitError(1)
	}
	return nil
}

// cmdWatch follows one campaign's events from the start until it ends.
func cmdWatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("campaign watch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	natsURL := fs.String("nats", envOr("DEALFLOW_NATS_URL", nats.DefaultURL), "NATS URL")
	timeout := fs.Duration("timeout", 24*time.Hour, "give up after this long")
	appear := fs.Duration("appear-within", 3*time.Second, "how long a campaign with no record and no events may take to appear before watch gives up on it")
	var id string
	rest := args
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		id, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return err
	}
	left := fs.Args()
	if id == "" && len(left) > 0 {
		id, left = left[0], left[1:]
	}
	if err := strayArgs(left); err != nil {
		return err
	}
	if err := events.ValidateCampaignID(id); err != nil {
		return fmt.Errorf("usage: dealflow campaign watch ID [--nats URL]: %w", err)
	}
	ctx, bb, closeBus, err := connectBus(ctx, *natsURL, stderr)
	if err != nil {
		return err
	}
	defer closeBus()
	if err := awaitCampaign(ctx, bb, id, *appear, *natsURL); err != nil {
		return err
	}
	res, err := followReport(ctx, bb, id, *timeout, stdout)
	if err != nil {
		return err
	}
	if !res.Status.Succeeded() {
		return exitError(1)
	}
	return nil
}

// awaitCampaign returns once the campaign has a record or an event, and an
// error naming it when neither appears within d: watching an id nobody
// submitted would otherwise wait silently for ever.
func awaitCampaign(ctx context.Context, bb *bus.Bus, id string, d time.Duration, natsURL string) error {
	store, err := campaign.Open(ctx, bb)
	if err != nil {
		return fmt.Errorf("campaign store at %s (is the pipeline provisioned?): %w", natsURL, err)
	}
	deadline := time.Now().Add(d)
	for {
		if _, err := store.Get(ctx, id); err == nil {
			return nil
		} else if !errors.Is(err, campaign.ErrNotFound) {
			return err
		}
		if n, err := bb.CampaignEvents(ctx, id); err != nil {
			return err
		} else if n > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("campaign %s not found at %s: no record and no events within %s (submit it first, or check the id)", id, natsURL, d)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// cliConnectTimeout bounds a command-line client's connection attempt.
const cliConnectTimeout = 2500 * time.Millisecond

// connectBus connects a command-line client to the pipeline's NATS. Unlike
// a long-running stage it does not wait for a broker that is not there: the
// first connection must succeed within cliConnectTimeout, and a connection
// lost later is retried for a few seconds only, then the command fails.
//
// The returned context ends, with the cause, when the connection is lost for
// good.
func connectBus(ctx context.Context, url string, stderr io.Writer) (context.Context, *bus.Bus, func(), error) {
	log := logger("warn", false, stderr)
	cctx, cancel := context.WithCancelCause(ctx)
	opts := append(bus.ConnectOptions("dealflow-cli", log),
		nats.RetryOnFailedConnect(false), nats.Timeout(cliConnectTimeout), nats.MaxReconnects(10),
		nats.ClosedHandler(func(*nats.Conn) { cancel(fmt.Errorf("lost the connection to NATS at %s", url)) }))
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		cancel(nil)
		return nil, nil, nil, fmt.Errorf("cannot reach NATS at %s (is `dealflow run` up, and is this its URL? pass --nats or DEALFLOW_NATS_URL): %w%s", url, err, dialCause(url))
	}
	bb, err := bus.New(nc, bus.Config{}, log)
	if err != nil {
		nc.Close()
		cancel(nil)
		return nil, nil, nil, err
	}
	return cctx, bb, func() { nc.Close(); cancel(nil) }, nil
}

// dialCause says why the first server of a NATS URL list cannot be reached
// over TCP (nats.go reports only "no servers available"), or nothing.
func dialCause(urls string) string {
	first, _, _ := strings.Cut(urls, ",")
	u, err := neturl.Parse(strings.TrimSpace(first))
	if err != nil || u.Host == "" {
		return ""
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "4222")
	}
	c, err := net.DialTimeout("tcp", host, cliConnectTimeout)
	if err != nil {
		return " (" + err.Error() + ")"
	}
	_ = c.Close()
	return ""
}

// followReport prints a campaign's progress from its first event until it
// ends (or timeout), then the report.
func followReport(ctx context.Context, bb *bus.Bus, id string, timeout time.Duration, stdout io.Writer) (demo.Result, error) {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res := demo.Result{CampaignID: id}
	names := map[string]string{}
	if err := bb.Follow(wctx, id, func(e events.Event) bool { return demo.Observe(e, &res, names, stdout) }); err != nil && res.Status == "" {
		if cause := context.Cause(wctx); cause != nil {
			err = cause
		}
		return res, fmt.Errorf("campaign %s: %w", id, err)
	}
	demo.PrintReport(stdout, res)
	return res, nil
}

// ParseBrief reads a campaign file: either a full CampaignRequested payload
// (amounts in *_micros) or the bookings API's body ({"brief":{...},
// "auto_approve":...}, amounts in dollars, converted once like the API does).
// A missing campaign_id is generated; the request is validated.
func ParseBrief(b []byte) (events.CampaignRequested, error) {
	var req events.CampaignRequested
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var br app.BookingRequest
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&br); err != nil {
			return req, fmt.Errorf("campaign file: %w", err)
		}
		if br.CampaignID == "" {
			br.CampaignID = campaign.NewID()
		}
		req, err = br.ToCampaign(time.Now().UTC())
		if err != nil {
			return req, fmt.Errorf("campaign file: %w", err)
		}
		return req, nil
	}
	if req.CampaignID == "" {
		req.CampaignID = campaign.NewID()
	}
	if req.RequestedAt.IsZero() {
		req.RequestedAt = time.Now().UTC()
	}
	if err := req.ValidateAt(time.Now()); err != nil {
		return req, fmt.Errorf("campaign file: %w", err)
	}
	return req, nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func cmdSandbox(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sandbox", flag.ContinueOnError)
	fs.SetOutput(stderr)
	jsonOut := fs.Bool("json", false, "print one JSON line with the URLs and keys once everything listens")
	file := fs.String("market", "", "market JSON file (default: the built-in market)")
	n := fs.Int("sellers", 0, "serve N generated sellers (varied prices and trust) instead of the built-in market")
	latency := fs.Duration("latency", 0, "with --sellers, added latency per seller and registry response (the registry is one more round trip away, as in dealflow bench)")
	port := fs.Int("port", 0, "the registry's port on 127.0.0.1; the sellers listen on the ports that follow (default: random ports)")
	seed := fs.String("seed", "", "mint the sellers' API keys from this seed: the same seed gives the same keys on every start")
	credsOut := fs.String("credentials-out", "", "write the sellers' keys to `FILE`, in the format 'dealflow run --credentials' reads")
	listen := fs.String("listen", "", "with --port, listen on this host instead of 127.0.0.1 (0.0.0.0 in a container)")
	advertise := fs.String("advertise", "", "with --port, the host name in the sellers' URLs (the registry's answers and --credentials-out) instead of 127.0.0.1")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if *port < 0 || *port > 65535 {
		return fmt.Errorf("--port: %d is not a port", *port)
	}
	if (*listen != "" || *advertise != "") && *port == 0 {
		return errors.New("--listen and --advertise need --port")
	}
	cfg := sandbox.DefaultMarket()
	if *n > 0 {
		cfg = sandbox.GenerateMarket(*n, *latency)
		cfg.Registry.Faults.Latency = *latency
	} else if *file != "" {
		var err error
		if cfg, err = sandbox.LoadMarket(*file); err != nil {
			return err
		}
	}
	m, err := sandbox.Start(ctx, cfg, sandbox.WithBasePort(*port), sandbox.WithSeed(*seed), sandbox.WithHost(*listen, *advertise))
	if err != nil {
		return err
	}
	defer m.Close()
	if *credsOut != "" {
		if err := os.WriteFile(*credsOut, m.CredentialsFile(), 0o600); err != nil {
			return fmt.Errorf("--credentials-out: %w", err)
		}
	}
	sum := m.Summary()
	if *jsonOut {
		b, _ := json.Marshal(sum)
		fmt.Fprintln(stdout, string(b))
	} else {
		fmt.Fprintf(stdout, "registry: %s (AAMP token %s)\n", sum.RegistryURL, sum.AAMPToken)
		for _, s := range sum.Sellers {
			fmt.Fprintf(stdout, "seller %-20s %-32s %-16s trust %-10s in registry %-5v down %-5v\n", s.Name, s.URL, s.Protocol, s.Trust, s.InRegistry, s.Down)
			if s.MCPEndpoint != "" {
				fmt.Fprintf(stdout, "    %-10s %s (account %s, brand %s)\n", "mcp", s.MCPEndpoint, s.Account, s.Brand)
			}
			for _, t := range []string{"seat", "agency", "advertiser", "bearer_token"} {
				if k := s.Keys[t]; k != "" {
					fmt.Fprintf(stdout, "    %-10s %s\n", t, k)
				}
			}
		}
		fmt.Fprintln(stdout, "serving until interrupted")
	}
	<-ctx.Done()
	return nil
}

// cmdConfig prints the settings a `run` with the same flags and
// environment would use, and where each value comes from.
func cmdConfig(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	reference := fs.Bool("reference", false, "print every setting's documentation (flag, environment variable, default, meaning) as a Markdown table")
	var cfg config.Config
	binder := config.Register(fs, &cfg)
	if err := fs.Parse(config.JoinValues(args)); err != nil {
		return err
	}
	if err := strayArgs(fs.Args()); err != nil {
		return err
	}
	if *reference {
		fmt.Fprint(stdout, config.Markdown())
		return nil
	}
	err := binder.Finish()
	tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "SETTING\tVALUE\tSOURCE")
	for _, st := range binder.Effective() {
		v := st.Value
		if v == "" {
			v = `""`
		}
		fmt.Fprintf(tw, "--%s\t%s\t%s\n", st.Flag, v, st.Source)
	}
	_ = tw.Flush()
	if err != nil {
		return fmt.Errorf("these settings would not start: %w", err)
	}
	return nil
}

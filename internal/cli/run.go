package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"

	"github.com/dealflow/dealflow/internal/app"
	"github.com/dealflow/dealflow/internal/config"
	"github.com/dealflow/dealflow/internal/demo"
	"github.com/dealflow/dealflow/internal/sandbox"
	"github.com/dealflow/dealflow/pkg/identity"
	"github.com/dealflow/dealflow/services/activator"
)

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
		// Its sellers deliver booked lines on the pacer's flight clock.
		m, err := sandbox.Start(ctx, sandbox.DefaultMarket(), sandbox.WithTimeScale(cfg.TimeScale))
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
		if cfg.DSP == "" && flagUnset(fs, "stages", "DEALFLOW_STAGES") {
			// The sandbox's DSP, so booked deals are activated too.
			dsp, err := startSandboxDSP(&cfg)
			if err != nil {
				return err
			}
			defer func() { _ = dsp.Close() }()
			log.Info().Str("dsp", dsp.URL).Msg("sandbox DSP serving; the activator sets booked deals up in it")
		}
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

// QuickStartNATSPort is the embedded NATS port `run --sandbox` tries first
// (the NATS default, so `--nats` can often be left out), falling back to a
// free port when it is taken.
const QuickStartNATSPort = 4222

// errNothingToDo is a `dealflow run` that could do no work.
var errNothingToDo = errors.New("nothing to do: no sellers (--sandbox, --registry, --known-sellers or --sellers), " +
	"no bookings API (--http) and no NATS another process can reach (--nats URL or --nats-port); " +
	"try `dealflow run --sandbox --http 127.0.0.1:8080`")

// nothingToDo refuses a run with no sellers to shop, no API to submit
// through and an in-process NATS nobody else can reach: such a process
// could never receive or serve a campaign.
func nothingToDo(cfg config.Config, withSandbox bool) error {
	sellers := withSandbox || cfg.RegistryURL != "" || cfg.KnownSellers != "" || len(cfg.Sellers) > 0
	reachable := cfg.NATSURL != "" || cfg.NATSPort >= 0 || cfg.NATSConfig != ""
	if !sellers && cfg.HTTPAddr == "" && !reachable {
		return errNothingToDo
	}
	return nil
}

// natsPortUnset reports whether neither --nats-port nor DEALFLOW_NATS_PORT
// was given.
func natsPortUnset(fs *flag.FlagSet) bool { return flagUnset(fs, "nats-port", "DEALFLOW_NATS_PORT") }

// flagUnset reports whether neither the flag nor its environment variable
// was given.
func flagUnset(fs *flag.FlagSet, name, env string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	_, inEnv := os.LookupEnv(env)
	return !set && !inEnv
}

// DefaultMetricsAddr is where `dealflow run` without --http serves
// /metrics unless --metrics-addr says otherwise.
const DefaultMetricsAddr = "127.0.0.1:9464"

// quickStartPort is QuickStartNATSPort when it is free on loopback, else 0
// (a random free port).
func quickStartPort() int {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", QuickStartNATSPort))
	if err != nil {
		return 0
	}
	_ = ln.Close()
	return QuickStartNATSPort
}

// withSandboxKeys adds the sandbox sellers' keys to creds (loaded from
// --credentials and DEALFLOW_SELLER_KEYS) wherever creds has no key of its
// own for that seller and tier: the IAB sellers' keys per tier, and the
// AdCP sales agents' bearer token, account and brand, so the quick start
// shops both protocol families as the demo does.
func withSandboxKeys(creds *identity.Credentials, m *sandbox.Market) *identity.Credentials {
	for _, s := range m.ADCPSellers {
		if _, ok := creds.ADCP(s.URL, identity.TierAgency); !ok {
			creds.SetADCP(s.URL, s.Token, s.AccountID, s.BrandDomain)
		}
	}
	for _, s := range m.Sellers {
		for tier, key := range s.Keys {
			t, err := identity.ParseTier(tier)
			if err != nil || t == identity.TierPublic {
				continue
			}
			if _, ok := creds.Key(s.URL, t); !ok {
				creds.Set(s.URL, t, key)
			}
		}
	}
	return creds
}

// printQuickStart prints, on stdout, where the pipeline can be reached and
// the next commands to try. With an API key the curl sends it from the
// environment, never printing the key itself.
func printQuickStart(w io.Writer, natsURL, apiAddr, metricsAddr string, apiKey bool) {
	if natsURL == "" && apiAddr == "" {
		return
	}
	fmt.Fprintln(w, "dealflow is running.")
	if natsURL != "" {
		fmt.Fprintf(w, "  NATS: %s\n", natsURL)
	}
	api := ""
	if apiAddr != "" {
		api = "http://" + apiAddr
		fmt.Fprintf(w, "  API:  %s\n", api)
	}
	if metricsAddr != "" {
		fmt.Fprintf(w, "  Metrics: http://%s/metrics\n", metricsAddr)
	}
	fmt.Fprintln(w, "Next, in another terminal:")
	if natsURL != "" {
		fmt.Fprintf(w, "  dealflow campaign submit examples/campaign.json --nats %s --wait\n", natsURL)
	}
	switch {
	case api != "" && apiKey:
		fmt.Fprintf(w, "  curl -H \"X-API-Key: $DEALFLOW_API_KEY\" %s/bookings   # the key given with --api-key\n", api)
	case api != "":
		fmt.Fprintf(w, "  curl %s/bookings\n", api)
	}
	if natsURL != "" {
		fmt.Fprintf(w, "  nats sub 'dealflow.>' --server %s\n", natsURL)
	}
}

// startSandboxDSP serves a sandbox DSP with a fresh secret and points the
// activator at it (adding the activator to the stages).
func startSandboxDSP(cfg *config.Config) (*sandbox.DSP, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	secret := hex.EncodeToString(b[:])
	dsp, err := sandbox.StartDSP(secret)
	if err != nil {
		return nil, err
	}
	cfg.DSP, cfg.DSPSecret = dsp.URL, secret
	if !cfg.Has(activator.Stage) {
		cfg.Stages = append(cfg.Stages, activator.Stage)
	}
	return dsp, nil
}

package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/demo"
	"github.com/dealflow/dealflow/internal/flight"
	"github.com/dealflow/dealflow/internal/sandbox"
	"github.com/dealflow/dealflow/internal/telemetry"
	"github.com/dealflow/dealflow/pkg/events"
)

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
	flightRun := fs.Bool("flight", false, "after the booking, follow the lines for their whole flight on an accelerated clock: delivery against plan, pacing deviations")
	scale := fs.String("time-scale", "0.5", "with --flight, how long one flight day lasts (seconds, or a duration such as 200ms)")
	every := fs.Duration("pacing-every", 12*time.Hour, "with --flight, the flight time between two delivery readings of a line")
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
	day, err := flight.ParseScale(*scale)
	if err != nil || (*flightRun && day <= 0) {
		return fmt.Errorf("--time-scale %q: want how long one flight day lasts, above 0 (e.g. 0.5 or 200ms)", *scale)
	}
	if *every < time.Minute {
		return fmt.Errorf("--pacing-every: %s is shorter than a minute of flight time", *every)
	}
	o := demo.Options{JSON: *jsonOut, Strategy: *strategy, DataDir: *dataDir, Timeout: *timeout, Log: logger(*logLevel, false, stderr),
		Cluster: *nodes, KillLeader: *killLeader, MetricsAddr: *metricsAddr}
	if *flightRun {
		o.Flight, o.TimeScale, o.PacingEvery = true, day, *every
	}
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

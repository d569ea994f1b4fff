package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/dealflow/dealflow/internal/bench"
)

// cmdBench measures this machine: the flags shape the run, internal/bench
// does the measuring, and the figures are printed as a table or JSON.
func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f bench.Options
	var timeout time.Duration
	var jsonOut bool
	fs.IntVar(&f.Sellers, "sellers", 20, "generated sandbox sellers (as with 'dealflow sandbox --sellers N')")
	fs.DurationVar(&f.Latency, "latency", 20*time.Millisecond, "added latency of every seller and registry response")
	fs.IntVar(&f.Campaigns, "campaigns", 5, "campaigns submitted at once in the throughput phase (after one solo campaign)")
	fs.IntVar(&f.NegotiatorProcs, "negotiator-procs", 0, "run the negotiator in this many child processes of this binary (0: in this process)")
	fs.IntVar(&f.NegotiatorWorkers, "negotiator-workers", 64, "negotiations each negotiator runs at once")
	fs.IntVar(&f.Nodes, "cluster", 1, "JetStream nodes: 1 (embedded server) or 3 (in-process cluster from deploy/nats/cluster.conf, R3)")
	fs.IntVar(&f.Hops, "hops", 2000, "events for the stage-hop and raw JetStream baselines")
	fs.DurationVar(&timeout, "timeout", 10*time.Minute, "give up after this long")
	fs.BoolVar(&jsonOut, "json", false, "print one JSON object instead of the table")
	fs.StringVar(&f.LogLevel, "log-level", "error", "log level of the pipeline")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if f.Nodes != 1 && f.Nodes != 3 {
		return fmt.Errorf("--cluster must be 1 or 3")
	}
	if f.Sellers <= 0 || f.Campaigns <= 0 || f.NegotiatorProcs < 0 || f.NegotiatorWorkers <= 0 || f.Hops <= 0 || f.Latency <= 0 {
		return fmt.Errorf("--sellers, --campaigns, --negotiator-workers, --hops and --latency must be positive, --negotiator-procs not negative")
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res, err := bench.Run(ctx, f, logger(f.LogLevel, false, stderr))
	if err != nil {
		return err
	}
	if jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	printBench(stdout, res)
	return nil
}

func printBench(w io.Writer, r bench.Result) {
	fmt.Fprintf(w, "dealflow bench: %d sellers at %s latency, 1 solo + %d concurrent campaigns, negotiator %s, %d JetStream node(s)\n\n",
		r.Sellers, time.Duration(r.LatencyMS*1e6), r.Campaigns, negotiatorWhere(r), r.ClusterNodes)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(name, value, meaning string) { fmt.Fprintf(tw, "%s\t%s\t%s\n", name, value, meaning) }
	row("FIGURE", "VALUE", "MEANING")
	row("campaigns completed", fmt.Sprintf("%d of %d", r.CampaignsDone, r.Campaigns+1), fmt.Sprintf("%d packages, %d negotiations", r.Packages, r.Negotiations))
	row("discovery + kits", fmt.Sprintf("%.2f x latency", r.KitsXLatency), fmt.Sprintf("%.0f ms, solo campaign (ideal 2: registry, then every seller at once)", r.KitsMS))
	row("campaign end to end", fmt.Sprintf("%.2f x critical path", r.CampaignXCriticalPath), fmt.Sprintf("%.0f ms over a %.0f ms critical path (sequential seller calls x latency)", r.CampaignMS, r.CriticalPathMS))
	row("negotiations", fmt.Sprintf("%.1f /s", r.NegotiationsPerS), "concurrent campaigns, until the last QuoteReady")
	row("events", fmt.Sprintf("%.1f /s", r.EventsPerS), fmt.Sprintf("stored on the stream; %.1f per campaign", r.EventsPerCampaign))
	row("CPU", fmt.Sprintf("%.3f s/campaign", r.CPUSPerCampaign), fmt.Sprintf("%.2f s this process (pipeline, NATS, sandbox) + %.2f s children", r.CPUSeconds, r.ChildCPUSeconds))
	row("stream bytes", fmt.Sprintf("%.0f B/campaign", r.StreamBytesPerCampaign), "DEALFLOW stream State.Bytes delta")
	row("peak RSS", fmt.Sprintf("%.1f MiB", float64(r.PeakRSSBytes)/(1<<20)), fmt.Sprintf("this process; largest child %.1f MiB", float64(r.ChildPeakRSSBytes)/(1<<20)))
	row("stage hop", fmt.Sprintf("%.0f hops/s", r.HopsPerS), "publish, consume, no-op handler, publish output, ack (16 workers)")
	row("raw JetStream hop", fmt.Sprintf("%.0f hops/s", r.RawHopsPerS), "the same hop in plain nats.go jetstream")
	row("hop vs raw", fmt.Sprintf("%.2f", r.HopVsRaw), "dealflow's hop throughput over the raw baseline's")
	tw.Flush()
	fmt.Fprintln(w, "\nEverything shares this machine's cores: the figures include the sandbox sellers and the NATS server(s).")
}

func negotiatorWhere(r bench.Result) string {
	if r.NegotiatorProcs == 0 {
		return fmt.Sprintf("in-process (%d workers)", r.NegotiatorWorkers)
	}
	return fmt.Sprintf("in %d child processes (%d workers each)", r.NegotiatorProcs, r.NegotiatorWorkers)
}

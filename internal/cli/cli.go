// Package cli implements the dealflow subcommands.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	neturl "net/url"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/dealflow/dealflow/internal/bus"
	_ "github.com/dealflow/dealflow/internal/sandbox/adcp" // the sandbox market's AdCP sales agents
	"github.com/dealflow/dealflow/internal/telemetry"
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

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

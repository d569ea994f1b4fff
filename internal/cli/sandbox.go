package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/dealflow/dealflow/internal/flight"
	"github.com/dealflow/dealflow/internal/sandbox"
)

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
	scale := fs.String("time-scale", "0", "flight clock of booked lines: 0 delivers in real time by the flights' dates; N (seconds, or a duration such as 500ms) delivers one flight day in N from the booking (give the pacer the same --time-scale)")
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
	day, err := flight.ParseScale(*scale)
	if err != nil {
		return fmt.Errorf("--time-scale: %w", err)
	}
	cfg := sandbox.DefaultMarket()
	if *n > 0 {
		cfg = sandbox.GenerateMarket(*n, *latency)
		cfg.Registry.Faults.Latency = *latency
	} else if *file != "" {
		if cfg, err = sandbox.LoadMarket(*file); err != nil {
			return err
		}
	}
	m, err := sandbox.Start(ctx, cfg, sandbox.WithBasePort(*port), sandbox.WithSeed(*seed), sandbox.WithHost(*listen, *advertise), sandbox.WithTimeScale(day))
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
		if day > 0 {
			fmt.Fprintf(stdout, "flight clock: one flight day every %s from each booking\n", day)
		}
		fmt.Fprintln(stdout, "serving until interrupted")
	}
	<-ctx.Done()
	return nil
}

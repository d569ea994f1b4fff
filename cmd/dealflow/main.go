// Command dealflow is the buyer-side pipeline for agentic programmatic-direct
// advertising: discovery, media kits, negotiation and booking over NATS
// JetStream, in one binary. Run `dealflow help` for the subcommands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/dealflow/dealflow/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

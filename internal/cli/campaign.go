package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/dealflow/dealflow/internal/api"
	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/campaign"
	"github.com/dealflow/dealflow/pkg/events"
)

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

// ParseBrief reads a campaign file: either a full CampaignRequested payload
// (amounts in *_micros) or the bookings API's body ({"brief":{...},
// "auto_approve":...}, amounts in dollars, converted once like the API does).
// A missing campaign_id is generated; the request is validated.
func ParseBrief(b []byte) (events.CampaignRequested, error) {
	var req events.CampaignRequested
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var br api.BookingRequest
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

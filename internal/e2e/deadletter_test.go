package e2e

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/app"
	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/config"
	"github.com/dealflow/dealflow/internal/demo"
	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/internal/sandbox"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/services/negotiator"
)

// TestDeadLetteredPackageResolvesItsCampaign makes the negotiator fail one
// PackageFound permanently. The dead letter resolves that package at once
// (a SellerSkipped with code dead_lettered and its package id), so the
// booker plans when everything else is in, not when the shopping window
// (an hour here) runs out, and the job lists the package and the reason.
func TestDeadLetteredPackageResolvesItsCampaign(t *testing.T) {
	ctx := context.Background()
	m, err := sandbox.Start(ctx, sandbox.DefaultMarket())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	cfg := config.Defaults()
	cfg.DataDir, cfg.NATSPort, cfg.RegistryURL, cfg.AllowPrivate, cfg.Window = t.TempDir(), 0, m.RegistryURL, true, time.Hour
	var victim atomic.Value // the package id failed on purpose
	a, err := app.Start(ctx, cfg, natstest.Logger(), app.Options{Credentials: m.Credentials(), SweepEvery: 200 * time.Millisecond,
		WrapHandler: func(stage string, h bus.Handler) bus.Handler {
			if stage != negotiator.Stage {
				return h
			}
			return func(ctx context.Context, in events.Event, p any) ([]events.Event, error) {
				if pf, ok := p.(*events.PackageFound); ok && victim.CompareAndSwap(nil, pf.Package.ID) {
					return nil, bus.Permanent(errors.New("injected: cannot negotiate this package"))
				}
				return h(ctx, in, p)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	req := demo.SampleCampaign("dl-package", "adaptive")
	req.ShoppingWindowSec = 3600
	if _, err := a.Campaigns.Submit(ctx, a.Bus, req, time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	fctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	var plan *events.PortfolioProposed
	var skip *events.SellerSkipped
	res := demo.Result{CampaignID: req.CampaignID}
	if err := a.Bus.Follow(fctx, req.CampaignID, func(e events.Event) bool {
		switch e.Type() {
		case events.KindPortfolioProposed.Type:
			p, _ := events.PayloadOf[events.PortfolioProposed](e, events.KindPortfolioProposed)
			plan = &p
		case events.KindSellerSkipped.Type:
			s, _ := events.PayloadOf[events.SellerSkipped](e, events.KindSellerSkipped)
			if s.Code == events.SkipDeadLettered {
				skip = &s
			}
		}
		return demo.Observe(e, &res, nil, io.Discard)
	}); err != nil && res.Status == "" {
		t.Fatalf("campaign did not finish: %v", err)
	}
	pkg, _ := victim.Load().(string)
	if pkg == "" || skip == nil || skip.PackageID != pkg || !strings.Contains(skip.Reason, "injected") {
		t.Fatalf("dead-lettered package %q, skip %+v", pkg, skip)
	}
	if plan == nil {
		t.Fatal("no portfolio proposed")
	}
	for _, n := range plan.Notes {
		if strings.Contains(n, "shopping deadline passed") {
			t.Fatalf("planned by the deadline, not by resolution: %v", plan.Notes)
		}
	}
	excluded := false
	for _, x := range plan.Excluded {
		excluded = excluded || (x.PackageID == pkg && strings.Contains(x.Reason, "dead_lettered"))
	}
	if !excluded || !res.Status.Succeeded() {
		t.Fatalf("status %s; package %s excluded with the reason: %v (%v)", res.Status, pkg, excluded, plan.Excluded)
	}
	c, err := a.Campaigns.Get(ctx, req.CampaignID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(c.Errors, "\n"), "injected: cannot negotiate this package") {
		t.Fatalf("job errors %v do not name the dead letter", c.Errors)
	}
}

package e2e

import (
	"context"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/app"
	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/config"
	"github.com/dealflow/dealflow/internal/demo"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/services/negotiator"
)

// TestHandlerThatNeverReturnsIsDeadLettered: one package's negotiation
// never returns and ignores its context. At the negotiator's hard limit
// the handling is abandoned, retried once, then dead-lettered with the
// reason, so its campaign completes without it; another campaign shopping
// meanwhile completes as usual.
func TestHandlerThatNeverReturnsIsDeadLettered(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ctx := context.Background()
	var victim atomic.Value // campaign|seller|package held forever
	var stuck atomic.Int32
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	a := startStackWith(t, func(c *config.Config) { c.Window = time.Hour }, func(_ config.Config, o *app.Options) {
		o.StageTuning = func(sc *bus.StageConfig) {
			if sc.Name == negotiator.Stage {
				sc.HandlerTimeout, sc.HandlerGrace = time.Second, 500*time.Millisecond
			}
		}
		o.WrapHandler = func(stage string, h bus.Handler) bus.Handler {
			if stage != negotiator.Stage {
				return h
			}
			return func(ctx context.Context, in events.Event, p any) ([]events.Event, error) {
				if pf, ok := p.(*events.PackageFound); ok && pf.CampaignID == "hang-victim" {
					key := pf.CampaignID + "|" + pf.Seller.URL + "|" + pf.Package.ID // package ids repeat across sellers (AdCP products)
					victim.CompareAndSwap(nil, key)
					if victim.Load() == key {
						stuck.Add(1)
						<-release // runs for ever, deaf to ctx
					}
				}
				return h(ctx, in, p)
			}
		}
	}).app
	results := make(chan demo.Result, 2)
	for _, id := range []string{"hang-victim", "hang-bystander"} {
		req := demo.SampleCampaign(id, "adaptive")
		req.ShoppingWindowSec = 3600 // planned when every package is resolved, not at a deadline
		if _, err := a.Campaigns.Submit(ctx, a.Bus, req, time.Now().UTC()); err != nil {
			t.Fatal(err)
		}
		go func() {
			fctx, cancel := context.WithTimeout(ctx, 90*time.Second)
			defer cancel()
			res := demo.Result{CampaignID: id}
			_ = a.Bus.Follow(fctx, id, func(e events.Event) bool { return demo.Observe(e, &res, nil, io.Discard) })
			results <- res
		}()
	}
	for range 2 {
		res := <-results
		if !res.Status.Succeeded() {
			t.Fatalf("campaign %s ended %q", res.CampaignID, res.Status)
		}
	}
	if n := stuck.Load(); n != 2 {
		t.Fatalf("the stuck package was handled %d times, want 2 (retried once)", n)
	}
	c, err := a.Campaigns.Get(ctx, "hang-victim")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(c.Errors, "\n"), "hard limit") {
		t.Fatalf("job errors %v do not name the hard limit", c.Errors)
	}
}

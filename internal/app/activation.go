package app

import (
	"context"
	"fmt"
	"net/url"
	"os"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/config"
	"github.com/dealflow/dealflow/services/activator"
)

// NewDSP is the activator's DSP port as --dsp names it: an http(s) URL is
// the signed webhook (through the address guard: --allow-private for a DSP
// on a private network), file:///dir the signed files, the folder created
// if missing.
func NewDSP(cfg config.Config) (activator.DSP, error) {
	u, err := url.Parse(cfg.DSP)
	if err != nil {
		return nil, fmt.Errorf("--dsp: %w", err)
	}
	switch u.Scheme {
	case "http", "https":
		return activator.NewWebhook(cfg.DSP, cfg.DSPSecret, cfg.Guard(), cfg.DSPTimeout), nil
	case "file":
		if err := os.MkdirAll(u.Path, 0o755); err != nil {
			return nil, fmt.Errorf("--dsp: %w", err)
		}
		return &activator.Files{Dir: u.Path, Secret: cfg.DSPSecret}, nil
	}
	return nil, fmt.Errorf("--dsp: %q is neither an http(s) URL nor file:///dir", cfg.DSP)
}

// openSeats opens the buyer seat records for the activator and the
// bookings API's deal endpoint.
func (a *App) openSeats(ctx context.Context) error {
	if !a.Config.Has(activator.Stage) && a.Config.HTTPAddr == "" {
		return nil
	}
	seats, err := activator.OpenSeats(ctx, a.Bus)
	if err != nil {
		return err
	}
	a.Seats = seats
	return nil
}

// activatorStage is the activator's service and consumer.
func (a *App) activatorStage(o Options) (*activator.Service, bus.StageConfig, error) {
	dsp := o.DSP
	if dsp == nil {
		var err error
		if dsp, err = NewDSP(a.Config); err != nil {
			return nil, bus.StageConfig{}, err
		}
	}
	sc := activator.StageConfig()
	if o.StageTuning != nil {
		o.StageTuning(&sc)
		sc.MaxDeliver = -1 // it bounds its own attempts; never dead-lettered
	}
	svc := &activator.Service{Seats: a.Seats, DSP: dsp, Attempts: a.Config.DSPAttempts, Timeout: a.Config.DSPTimeout, Backoff: sc.Backoff,
		Log: a.Log.With().Str("stage", activator.Stage).Logger(), Metrics: a.Metrics}
	return svc, sc, nil
}

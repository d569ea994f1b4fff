package e2e

import (
	"context"
	"fmt"
	"io"
	"sort"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/app"
	"github.com/dealflow/dealflow/internal/checkfor"
	"github.com/dealflow/dealflow/internal/config"
	"github.com/dealflow/dealflow/internal/demo"
	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/internal/sandbox"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/sellerclient"
	"github.com/dealflow/dealflow/services/pacer"
	"github.com/dealflow/dealflow/services/reallocator"
)

// TestDeliveryOverAnAcceleratedFlight books the demo campaign on a market
// whose lines misbehave in every way a seller can, plays the whole flight
// on the accelerated clock, and checks from the event stream:
//   - every booked line is followed to its final snapshot, its snapshots
//     numbered 0..n-1, each once, n what the line's record counted;
//   - Metro Mobile's under-delivering line is caught (PacingDeviation
//     under), Harbor Sports' over-delivering one too (over), and
//     Brightline's, whose seller stops reporting half way, is reported
//     not_reporting; no deviation is reported of a line on plan;
//   - what the final snapshot of the IAB line says is what its seller
//     delivered.
func TestDeliveryOverAnAcceleratedFlight(t *testing.T) {
	if testing.Short() {
		t.Skip("books a campaign and plays its flight: skipped under -short")
	}
	// The pacer's view of delivery nobody acts on: no reallocator (its
	// reactions to these deviations are TestReallocationOverAFlight's).
	var stages []string
	for _, s := range config.Defaults().Stages {
		if s != reallocator.Stage {
			stages = append(stages, s)
		}
	}
	a, m, req, res := flightCampaign(t, "flight-e2e", stages, map[string]func(*sandbox.DeliveryConfig){
		"Brightline AdCP":    func(d *sandbox.DeliveryConfig) { d.StopsReportingAt = 0.5 },
		"Harbor Sports AdCP": func(d *sandbox.DeliveryConfig) { d.Pace = 1.5 },
	})
	ctx := context.Background()
	snaps := map[string][]events.DeliveryReported{}
	for _, e := range storedEvents(t, a.Bus, events.KindDeliveryReported.SubjectFor(req.CampaignID)) {
		p, err := events.PayloadOf[events.DeliveryReported](e, events.KindDeliveryReported)
		if err != nil {
			t.Fatal(err)
		}
		if e.ID() != pacer.SnapshotID(p.CampaignID, p.LineKey, p.Seq) {
			t.Fatalf("snapshot %s/%d has id %s", p.LineKey, p.Seq, e.ID())
		}
		snaps[p.LineKey] = append(snaps[p.LineKey], p)
	}
	devs := map[string]map[events.Deviation]int{}
	for _, e := range storedEvents(t, a.Bus, events.KindPacingDeviation.SubjectFor(req.CampaignID)) {
		p, _ := events.PayloadOf[events.PacingDeviation](e, events.KindPacingDeviation)
		if devs[p.LineKey] == nil {
			devs[p.LineKey] = map[events.Deviation]int{}
		}
		devs[p.LineKey][p.Direction]++
	}
	for _, d := range res.Deals {
		l, _, _ := a.Pacer.Lines.Get(ctx, pacer.LineID(req.CampaignID, d.LineKey))
		ss := snaps[d.LineKey]
		sort.Slice(ss, func(i, j int) bool { return ss[i].Seq < ss[j].Seq })
		if len(ss) != l.NextSeq || len(ss) < 3 {
			t.Fatalf("%s: %d snapshots in the stream, the line's record counted %d", d.SellerName, len(ss), l.NextSeq)
		}
		for i, s := range ss {
			if s.Seq != i || s.Final != (i == len(ss)-1) {
				t.Fatalf("%s: snapshot %d has seq %d, final %v (of %d)", d.SellerName, i, s.Seq, s.Final, len(ss))
			}
		}
		last := ss[len(ss)-1]
		got := devs[d.LineKey]
		switch d.SellerName {
		case "Metro Mobile":
			if got[events.DeviationUnder] == 0 || last.Status != events.PacingUnder || last.PacingIndex > 0.6 {
				t.Errorf("Metro Mobile: deviations %v, final %+v", got, last)
			}
			held, ok := m.Seller("Metro Mobile").Delivered(d.DealID, time.Now())
			if !ok || held.Share != 1 || last.Impressions != held.Impressions {
				t.Errorf("Metro Mobile's final snapshot says %d impressions, the seller delivered %+v", last.Impressions, held)
			}
		case "Harbor Sports AdCP":
			if got[events.DeviationOver] == 0 || last.Status != events.PacingOver || last.SpendMicros <= last.PlannedSpendMicros {
				t.Errorf("Harbor Sports: deviations %v, final %+v", got, last)
			}
		case "Brightline AdCP":
			if got[events.DeviationNotReporting] == 0 || last.Status != events.PacingNotReporting || last.MissedReadings < pacer.NotReportingAfter {
				t.Errorf("Brightline: deviations %v, final %+v", got, last)
			}
		default:
			if len(got) != 0 {
				t.Errorf("%s on plan deviated: %v", d.SellerName, got)
			}
		}
	}
}

// flightCampaign books the sample campaign on the default market (Metro
// Mobile under-delivers its rewarded video) with the AdCP agents' delivery
// set by adcp (by agent name), in a process running stages, and plays its
// flight until every line's final snapshot.
func flightCampaign(t *testing.T, id string, stages []string, adcp map[string]func(*sandbox.DeliveryConfig)) (*app.App, *sandbox.Market, events.CampaignRequested, demo.Result) {
	t.Helper()
	const day = 150 * time.Millisecond
	mcfg := sandbox.DefaultMarket()
	for i := range mcfg.ADCPSellers {
		if f := adcp[mcfg.ADCPSellers[i].Name]; f != nil {
			f(&mcfg.ADCPSellers[i].Delivery)
		}
	}
	ctx := context.Background()
	m, err := sandbox.Start(ctx, mcfg, sandbox.WithTimeScale(day))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	cfg := config.Defaults()
	cfg.DataDir, cfg.NATSPort, cfg.RegistryURL, cfg.AllowPrivate, cfg.Window = t.TempDir(), 0, m.RegistryURL, true, 45*time.Second
	cfg.TimeScale, cfg.PacingEvery, cfg.Stages = day, 12*time.Hour, stages
	a, err := app.Start(ctx, cfg, natstest.Logger(), app.Options{Credentials: m.Credentials(), SweepEvery: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	req := demo.SampleCampaign(id, "adaptive")
	(&stack{market: m, app: a}).submit(t, req)
	names := map[string]string{}
	for _, x := range m.Sellers {
		u, _ := sellerclient.CanonicalURL(x.URL)
		names[u] = x.Name
	}
	for _, x := range m.ADCPSellers {
		u, _ := sellerclient.CanonicalURL(x.URL)
		names[u] = x.Name
	}
	fctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	res := demo.Result{CampaignID: req.CampaignID}
	if err := a.Bus.Follow(fctx, req.CampaignID, func(e events.Event) bool { return demo.Observe(e, &res, names, io.Discard) }); err != nil && res.Status == "" {
		t.Fatalf("campaign did not finish: %v", err)
	}
	if res.Status != events.StatusCompleted || len(res.Deals) < 3 {
		t.Fatalf("campaign %s with %d deals", res.Status, len(res.Deals))
	}
	checkfor.Check(t, 3*time.Minute, 200*time.Millisecond, func() error {
		for _, d := range res.Deals {
			l, ok, err := a.Pacer.Lines.Get(ctx, pacer.LineID(req.CampaignID, d.LineKey))
			if err != nil || !ok || !l.Done {
				return fmt.Errorf("line %s of %s not done (%v %v)", d.LineKey, d.SellerName, ok, err)
			}
		}
		return nil
	})
	return a, m, req, res
}

// TestReallocationOverAFlight plays a flight with the reallocator running
// (a default stage): Metro Mobile's unspendable budget moves to the line on
// plan whose seller has room under the brief's per-seller cap (Harbor
// Sports; Brightline's line is booked at the cap) and Brightline's
// over-delivering line is paused at its seller — and resumed once its plan
// has caught up — each by an auto-approved revision applied by the
// booker; each revision is proposed and ended once,
// each change applied once, the committed spend never above the budget, no
// seller taken past the cap.
func TestReallocationOverAFlight(t *testing.T) {
	if testing.Short() {
		t.Skip("books a campaign and plays its flight: skipped under -short")
	}
	a, _, req, res := flightCampaign(t, "realloc-e2e", config.Defaults().Stages, map[string]func(*sandbox.DeliveryConfig){
		"Brightline AdCP": func(d *sandbox.DeliveryConfig) { d.Pace = 1.5 },
	})
	checkReallocations(t, a.Bus, req.CampaignID, req.Brief.BudgetMicros)
	rec, _, err := a.Reallocations.Get(context.Background(), req.CampaignID)
	if err != nil {
		t.Fatal(err)
	}
	lines := map[string]string{}
	for _, d := range res.Deals {
		lines[d.LineKey] = d.SellerName
	}
	var moved, paused bool
	resumes, last := 0, map[string]events.LineAction{} // Brightline's line: the last pause or resume applied
	for _, v := range rec.Revisions {
		p := v.Proposal
		t.Logf("revision %d (%s, %s by %s): %s", v.Revision, v.Status, p.Direction, v.DecidedBy, p.Reason)
		for _, c := range v.Changes {
			if c.Outcome != "changed" {
				t.Logf("  change %s %s of %s: %s %s %s", c.ChangeID, c.Action, c.LineKey, c.Outcome, c.Code, c.Reason)
			}
		}
		if v.DecidedBy != "auto" {
			t.Errorf("revision %d decided by %q, the campaign is auto-approved", v.Revision, v.DecidedBy)
		}
		switch {
		case lines[p.LineKey] == "Metro Mobile" && p.Direction == events.DeviationUnder:
			moved = v.Status == reallocator.StatusApplied && len(p.Moves) > 0
			for _, m := range p.Moves {
				if m.ToQuote == nil && lines[m.ToLineKey] != "Harbor Sports AdCP" {
					t.Errorf("budget went to %s, not to the line on plan below its seller's cap: %+v", lines[m.ToLineKey], m)
				}
			}
		case lines[p.LineKey] == "Brightline AdCP" && p.Direction == events.DeviationOver:
			ok := v.Status == reallocator.StatusApplied && len(p.Pauses) == 1 && len(v.Changes) == 1 && v.Changes[0].Action == events.LinePause
			paused = paused || ok
			if ok {
				last[p.LineKey] = events.LinePause
			}
		case len(p.Resumes) > 0:
			// A resume follows a pause of the same line by an earlier
			// revision, once the line's plan caught up, and commits nothing.
			r := p.Resumes[0]
			by := rec.Revision(r.PausedByRevision)
			if len(p.Resumes) != 1 || r.LineKey != p.LineKey || by == nil || by.Revision >= v.Revision || len(by.Proposal.Pauses) != 1 ||
				by.Proposal.Pauses[0].LineKey != r.LineKey || p.CommittedAfterMicros != p.CommittedBeforeMicros || len(p.Moves) != 0 {
				t.Errorf("revision %d resumes %+v (paused by %+v)", v.Revision, p.Resumes, by)
			}
			if v.Status == reallocator.StatusApplied && len(v.Changes) == 1 && v.Changes[0].Action == events.LineResume {
				resumes++
				last[p.LineKey] = events.LineResume
			}
		}
	}
	if !moved || !paused {
		t.Fatalf("Metro Mobile's budget moved %v, Brightline paused %v", moved, paused)
	}
	t.Logf("Brightline's line resumed %d times", resumes)
	bySeller := map[string]events.Micros{}
	for key, name := range lines {
		// Paused for its pace, the line is resumed once its plan catches up
		// (and may be paused again): its state is the last of them.
		if want := events.LineStatePaused; name == "Brightline AdCP" && last[key] == events.LineResume {
			if rec.Lines[key].State != events.LineStateLive {
				t.Errorf("Brightline's line, last resumed, is %q", rec.Lines[key].State)
			}
		} else if name == "Brightline AdCP" && rec.Lines[key].State != want {
			t.Errorf("Brightline's line, last paused, is %q", rec.Lines[key].State)
		}
		bySeller[name] += rec.Lines[key].Budget
	}
	for name, b := range bySeller {
		if b > req.Brief.PerSellerCapMicros {
			t.Errorf("%s's lines hold %s, past the per-seller cap of %s", name, b, req.Brief.PerSellerCapMicros)
		}
	}
	// A move to a remaining quote that was applied booked a new line of
	// that quote's package for at most what moved (plus what later
	// revisions moved to it, as a line on plan), followed by the pacer to
	// its final snapshot like any line.
	for _, v := range rec.Revisions {
		for _, mo := range v.Moves {
			if mo.ToQuote == nil || mo.Outcome != "applied" {
				continue
			}
			var later events.Micros
			for _, w := range rec.Revisions[v.Revision:] {
				for _, m := range w.Moves {
					if m.ToLineKey == mo.ToLineKey && m.Outcome == "applied" {
						later += m.AmountMicros
					}
				}
			}
			t.Logf("revision %d booked the remaining quote %s as line %s for %s (later given %s)", v.Revision, mo.ToQuote.PackageID, mo.ToLineKey,
				mo.AmountMicros, later)
			if l := rec.Lines[mo.ToLineKey]; mo.ToLineKey == "" || l == nil || l.Budget <= 0 || l.Budget > mo.AmountMicros+later || l.PackageID != mo.ToQuote.PackageID {
				t.Fatalf("the new line of %+v: %+v", mo, l)
			}
			checkfor.Check(t, 2*time.Minute, 200*time.Millisecond, func() error {
				l, ok, err := a.Pacer.Lines.Get(context.Background(), pacer.LineID(req.CampaignID, mo.ToLineKey))
				if err != nil || !ok || !l.Done {
					return fmt.Errorf("new line %s not followed to its end (%v %v)", mo.ToLineKey, ok, err)
				}
				return nil
			})
		}
	}
}

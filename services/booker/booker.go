// Package booker is the last stage. It keeps a projection of every campaign
// (discovery results, skips, quotes) in a KV bucket; when every seller is
// resolved, or the shopping deadline passes, it optimises the portfolio once
// and proposes it (PortfolioProposed). After approval (automatic when the
// campaign asked for it, otherwise through the bookings API) it books every
// approved deal exactly once through the booking ledger and emits
// DealBooked, BookingFailed and CampaignCompleted.
package booker

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/portfolio"
	"github.com/dealflow/dealflow/pkg/events"
)

// Stage names: the booker runs two durable consumers.
const (
	StagePlan = events.StageBooker + "-plan"
	StageBook = events.StageBooker + "-book"
)

// PlanSubjects are the inputs of the planning consumer.
func PlanSubjects() []string {
	return []string{events.KindCampaignRequested.Filter(), events.KindCampaignRejected.Filter(), events.KindDiscoveryCompleted.Filter(),
		events.KindSellerSkipped.Filter(), events.KindQuoteReady.Filter()}
}

// BookSubjects are the inputs of the booking consumer.
func BookSubjects() []string { return []string{events.KindPortfolioApproved.Filter()} }

// Service holds the booker's state stores and dependencies.
type Service struct {
	Campaigns jetstream.KeyValue
	// Quotes is the campaign-quotes bucket (bus.BucketCampaignQuotes).
	Quotes  jetstream.KeyValue
	Ledger  jetstream.KeyValue
	Booker  *Booker
	Weights portfolio.Weights
	// ShoppingWindow is the default time from request to optimisation when
	// not every seller has answered (default 2 min).
	ShoppingWindow time.Duration
	// MaxRevisions bounds automatic re-plans after failed bookings (default 3).
	MaxRevisions int
	// BookConcurrency bounds simultaneous seller bookings (default 8).
	BookConcurrency int
	Log             zerolog.Logger
	Now             func() time.Time
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now().UTC()
}

func (s *Service) window() time.Duration {
	if s.ShoppingWindow > 0 {
		return s.ShoppingWindow
	}
	return 2 * time.Minute
}

// proposalEvents builds the deterministic PortfolioProposed (and, for
// auto-approved campaigns, PortfolioApproved) of a plan revision.
func proposalEvents(c *Campaign) ([]events.Event, error) {
	p := c.Plan
	rev := fmt.Sprint(p.Revision)
	prop, err := events.New(events.KindPortfolioProposed, events.ChildID(c.ID, events.StageBooker, "proposed-"+rev), events.StageBooker, c.ID, p)
	if err != nil {
		return nil, err
	}
	out := []events.Event{prop}
	if len(p.Lines) == 0 {
		// Nothing to approve or book: the campaign ends here, and says so.
		done, err := completionEvent(c)
		if err != nil {
			return nil, err
		}
		return append(out, done), nil
	}
	if p.AutoApprove {
		appr, err := events.New(events.KindPortfolioApproved, events.ChildID(c.ID, events.StageBooker, "approved-"+rev), events.StageBooker, c.ID,
			events.PortfolioApproved{CampaignID: c.ID, ApprovedBy: "auto", Revision: p.Revision, Lines: p.Lines})
		if err != nil {
			return nil, err
		}
		out = append(out, appr)
	}
	return out, nil
}

// completionEvent is the campaign's deterministic CampaignCompleted.
func completionEvent(c *Campaign) (events.Event, error) {
	return events.New(events.KindCampaignCompleted, events.ChildID(c.ID, events.StageBooker, "completed"), events.StageBooker, c.ID, Summary(c))
}

// Summary is the CampaignCompleted payload for a campaign's current state.
func Summary(c *Campaign) events.CampaignCompleted {
	sum := events.CampaignCompleted{CampaignID: c.ID, Deals: append([]events.DealBooked{}, c.Deals...), Failed: c.Failures}
	if c.Request != nil {
		sum.BudgetMicros = c.Request.Brief.BudgetMicros
	}
	for _, d := range c.Deals {
		sum.TotalSpendMicros += d.SpendMicros
	}
	for _, s := range c.Skipped {
		sum.SkippedSellers = append(sum.SkippedSellers, events.SkippedSeller{SellerURL: s.SellerURL, Reason: s.Code + ": " + s.Reason})
	}
	switch {
	case len(c.Deals) == 0:
		sum.Status = "empty"
	case len(c.Failures) > 0:
		sum.Status = "partial"
	default:
		sum.Status = "completed"
	}
	return sum
}

// HandlePlan folds discovery and negotiation events into the projection and
// proposes the portfolio once every seller is resolved.
func (s *Service) HandlePlan(ctx context.Context, in events.Event) ([]events.Event, error) {
	if err := events.ValidateCampaignID(in.Subject()); err != nil {
		return nil, err
	}
	if in.Type() == events.KindQuoteReady.Type {
		q, err := events.PayloadOf[events.QuoteReady](in, events.KindQuoteReady)
		if err != nil {
			return nil, err
		}
		// Stored before the projection counts it, so a counted quote is
		// always loadable.
		if err := SaveQuote(ctx, s.Quotes, q); err != nil {
			return nil, err
		}
	}
	now := s.now()
	c, err := bus.Update(ctx, s.Campaigns, in.Subject(), func(c *Campaign, _ bool) (bool, error) {
		return c.apply(in, now, s.window())
	})
	if err != nil {
		return nil, err
	}
	// Checked even when the event was applied before: a replica may have
	// died between applying it and planning.
	if c.Plan == nil && c.Ready() && !c.Terminal() {
		if err := LoadQuotes(ctx, s.Quotes, &c); err != nil {
			return nil, err
		}
		quotes := c.Quotes
		if c, err = bus.Update(ctx, s.Campaigns, in.Subject(), func(cc *Campaign, _ bool) (bool, error) {
			if cc.Plan != nil || !cc.Ready() || cc.Terminal() {
				return false, nil
			}
			cc.Quotes = quotes
			if err := s.plan(cc, now); err != nil {
				return false, err
			}
			cc.PlannedBy = in.ID()
			return true, nil
		}); err != nil {
			return nil, err
		}
	}
	if c.Plan != nil && c.PlannedBy == in.ID() {
		return proposalEvents(&c)
	}
	return nil, nil
}

// plan optimises revision 1 and moves the job forward.
func (s *Service) plan(c *Campaign, now time.Time) error {
	p, err := BuildPlan(c, s.Weights, c.Request.Brief.BudgetMicros, 1, nil)
	if err != nil {
		return err
	}
	FitBudget(p, c.Request.Brief.BudgetMicros)
	c.Plan = p
	c.UpdatedAt = now
	switch {
	case len(p.Lines) == 0:
		c.Status = StatusCompleted
		c.Errors = append(c.Errors, "no bookable quotes: nothing to book")
	case p.AutoApprove:
		c.Status = StatusBooking
	default:
		c.Status = StatusAwaitingApproval
	}
	c.updateProgress()
	return nil
}

// FitBudget makes the plan's booked amount (events.CostMicros per line:
// impressions x CPM micros / 1000, rounded up) fit the budget, trimming the
// lowest-scored lines should it be over (a safety net: the optimiser already
// fits in micros), and sets every line's spend and the total from micros.
func FitBudget(p *events.PortfolioProposed, budget events.Micros) {
	var total events.Micros
	for i := range p.Lines {
		l := &p.Lines[i]
		l.SpendMicros = events.CostMicros(l.Impressions, l.CPMMicros)
		total += l.SpendMicros
	}
	for i := len(p.Lines) - 1; i >= 0 && total > budget; i-- {
		l := &p.Lines[i]
		if l.CPMMicros <= 0 {
			continue
		}
		excess := total - budget
		// ceil(excess x 1000 / cpm) impressions cost at least the excess.
		cut := impressionsCosting(excess, l.CPMMicros)
		before := l.SpendMicros
		l.Impressions = max(0, l.Impressions-cut)
		l.SpendMicros = events.CostMicros(l.Impressions, l.CPMMicros)
		total += l.SpendMicros - before
	}
	kept := p.Lines[:0]
	p.TotalSpendMicros = 0
	for _, l := range p.Lines {
		if l.Impressions > 0 {
			kept = append(kept, l)
			p.TotalSpendMicros += l.SpendMicros
		}
	}
	p.Lines = kept
}

// impressionsCosting is the fewest impressions at cpm that cost at least
// amount: ceil(amount x 1000 / cpm), exact, saturated to MaxInt64.
func impressionsCosting(amount, cpm events.Micros) int64 {
	n := new(big.Int).Mul(big.NewInt(int64(amount)), big.NewInt(1000))
	n.Add(n, big.NewInt(int64(cpm)-1))
	n.Quo(n, big.NewInt(int64(cpm)))
	if !n.IsInt64() {
		return math.MaxInt64
	}
	return n.Int64()
}

// Sweep proposes the portfolio of campaigns whose shopping deadline passed
// before every seller answered, and republishes deadline proposals whose
// publication did not complete. It looks at every campaign; RunSweeper
// looks only at the open ones it learns of from a KV watch. The
// revision-checked write makes exactly one booker replica plan.
func (s *Service) Sweep(ctx context.Context, publish func(context.Context, events.Event) error) error {
	keys, err := s.Campaigns.ListKeys(ctx)
	if err != nil {
		if bus.IsNotFound(err) || err == jetstream.ErrNoKeysFound {
			return nil
		}
		return err
	}
	var ids []string
	for k := range keys.Keys() {
		ids = append(ids, k)
	}
	return s.sweep(ctx, ids, publish)
}

// sweepState is the part of a projection the sweeper watches.
type sweepState struct {
	Status        string          `json:"status"`
	Deadline      time.Time       `json:"deadline"`
	Request       json.RawMessage `json:"request"`
	Plan          json.RawMessage `json:"plan"`
	PlannedBy     string          `json:"planned_by"`
	PlanPublished bool            `json:"plan_published"`
}

// pending reports whether the sweeper may have work for this campaign.
func (w sweepState) pending() bool {
	if w.Status == StatusCompleted || w.Status == StatusFailed || w.Deadline.IsZero() {
		return false
	}
	hasPlan := len(w.Plan) > 0 && string(w.Plan) != "null"
	return (!hasPlan && len(w.Request) > 0) || (hasPlan && w.PlannedBy == "deadline" && !w.PlanPublished)
}

func (s *Service) sweep(ctx context.Context, ids []string, publish func(context.Context, events.Event) error) error {
	now := s.now()
	for _, key := range ids {
		var c Campaign
		if _, found, err := bus.GetJSON(ctx, s.Campaigns, key, &c); err != nil || !found {
			continue
		}
		due := c.Plan == nil && c.Request != nil && !c.Terminal() && !c.Deadline.IsZero() && now.After(c.Deadline)
		unpublished := c.Plan != nil && c.PlannedBy == "deadline" && !c.PlanPublished
		if !due && !unpublished {
			continue
		}
		if due {
			if err := LoadQuotes(ctx, s.Quotes, &c); err != nil {
				return err
			}
			quotes := c.Quotes
			var err error
			c, err = bus.Update(ctx, s.Campaigns, key, func(c *Campaign, _ bool) (bool, error) {
				if c.Plan != nil || c.Terminal() {
					return false, nil
				}
				c.Quotes = quotes
				done, total := c.Resolved()
				if err := s.plan(c, now); err != nil {
					return false, err
				}
				c.Plan.Notes = append(c.Plan.Notes, fmt.Sprintf("shopping deadline passed with %d of %d sellers resolved; planned with the quotes received", done, total))
				c.PlannedBy = "deadline"
				return true, nil
			})
			if err != nil || c.PlannedBy != "deadline" {
				continue
			}
		}
		evs, err := proposalEvents(&c)
		if err != nil {
			return err
		}
		ok := true
		for _, e := range evs {
			if err := publish(ctx, e); err != nil {
				s.Log.Warn().Err(err).Str("campaign_id", c.ID).Msg("publishing deadline proposal failed; will retry")
				ok = false
				break
			}
		}
		if ok {
			_, _ = bus.Update(ctx, s.Campaigns, key, func(c *Campaign, _ bool) (bool, error) {
				c.PlanPublished = true
				return true, nil
			})
		}
	}
	return nil
}

// RunSweeper sweeps every interval until ctx ends. A KV watch keeps the set
// of open campaigns (and their deadlines) up to date, so a sweep touches
// only campaigns that are due, however long the history.
func (s *Service) RunSweeper(ctx context.Context, every time.Duration, publish func(context.Context, events.Event) error) {
	t := time.NewTicker(every)
	defer t.Stop()
	var updates <-chan jetstream.KeyValueEntry
	if w, err := s.Campaigns.WatchAll(ctx); err == nil {
		defer func() { _ = w.Stop() }()
		updates = w.Updates()
	} else {
		s.Log.Warn().Err(err).Msg("campaign watch failed; sweeping every campaign")
	}
	open := map[string]time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-updates:
			if !ok {
				updates = nil
				continue
			}
			if e == nil { // end of the initial values
				continue
			}
			var st sweepState
			if e.Operation() != jetstream.KeyValuePut || json.Unmarshal(e.Value(), &st) != nil || !st.pending() {
				delete(open, e.Key())
				continue
			}
			open[e.Key()] = st.Deadline
		case <-t.C:
			var err error
			if updates == nil && len(open) == 0 {
				err = s.Sweep(ctx, publish)
			} else {
				now := s.now()
				var due []string
				for id, d := range open {
					if now.After(d) {
						due = append(due, id)
					}
				}
				err = s.sweep(ctx, due, publish)
			}
			if err != nil && ctx.Err() == nil {
				s.Log.Warn().Err(err).Msg("sweep")
			}
		}
	}
}

// HandleBook books an approved portfolio: every line exactly once, in
// parallel across sellers, then the campaign's summary, or a re-plan of the
// budget freed by failures when the campaign is auto-approved.
func (s *Service) HandleBook(ctx context.Context, in events.Event) ([]events.Event, error) {
	appr, err := events.PayloadOf[events.PortfolioApproved](in, events.KindPortfolioApproved)
	if err != nil {
		return nil, err
	}
	var c Campaign
	if _, found, err := bus.GetJSON(ctx, s.Campaigns, in.Subject(), &c); err != nil {
		return nil, err
	} else if !found || c.Request == nil {
		return nil, bus.Permanent(fmt.Errorf("booker: approval for unknown campaign %s", in.Subject()))
	}
	if err := LoadQuotes(ctx, s.Quotes, &c); err != nil {
		return nil, err
	}
	if c.Plan == nil || appr.Revision != c.Plan.Revision {
		return nil, bus.Permanent(fmt.Errorf("booker: approval of revision %d, current plan is %v", appr.Revision, planRevision(c.Plan)))
	}
	if err := checkApproval(c.Plan, appr); err != nil {
		return nil, bus.Permanent(err)
	}
	if _, err := bus.Update(ctx, s.Campaigns, c.ID, func(cc *Campaign, _ bool) (bool, error) {
		if cc.Status == StatusBooking && cc.Approved != nil && cc.Approved.Revision == appr.Revision {
			return false, nil
		}
		cc.Approved, cc.Status = &appr, StatusBooking
		cc.updateProgress()
		return true, nil
	}); err != nil {
		return nil, err
	}

	type result struct {
		deal *events.DealBooked
		fail *events.BookingFailed
		err  error
	}
	results := make([]result, len(appr.Lines))
	conc := s.BookConcurrency
	if conc <= 0 {
		conc = 8
	}
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	for i, l := range appr.Lines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			d, f, err := s.Booker.BookLine(ctx, s.Ledger, &c, l)
			results[i] = result{d, f, err}
		}()
	}
	wg.Wait()
	for _, r := range results {
		if r.err != nil {
			return nil, fmt.Errorf("booker: outcome unknown, retrying with the same idempotency keys: %w", r.err)
		}
	}

	var out []events.Event
	var deals []events.DealBooked
	var fails []events.BookingFailed
	for i, r := range results {
		key := "line:" + LineKey(appr.Lines[i])
		if r.deal != nil {
			deals = append(deals, *r.deal)
			e, err := events.Derive(in, events.KindDealBooked, events.StageBooker, key, *r.deal)
			if err != nil {
				return nil, err
			}
			out = append(out, e)
			if r.deal.CPMMismatch {
				s.Log.Error().Str("campaign_id", c.ID).Str("seller", r.deal.SellerURL).Str("deal_id", r.deal.DealID).
					Int64("booked_cpm_micros", int64(r.deal.CPMMicros)).Int64("agreed_cpm_micros", int64(r.deal.AgreedCPMMicros)).Msg("ALARM: booked CPM differs from agreed CPM")
			}
		} else {
			fails = append(fails, *r.fail)
			e, err := events.Derive(in, events.KindBookingFailed, events.StageBooker, key, *r.fail)
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		}
	}

	var next *events.PortfolioProposed
	c2, err := bus.Update(ctx, s.Campaigns, c.ID, func(cc *Campaign, _ bool) (bool, error) {
		cc.Quotes = c.Quotes // loaded above; the re-plan needs them
		if cc.Plan != nil && cc.Plan.Revision > appr.Revision {
			next = cc.Plan // already re-planned by an earlier delivery
			return false, nil
		}
		mergeOutcomes(cc, deals, fails)
		if len(fails) > 0 && cc.Request.AutoApprove && appr.Revision < s.maxRevisions() {
			p, err := s.replan(cc, appr.Revision+1)
			if err != nil {
				return false, err
			}
			if p != nil {
				cc.Plan, next = p, p
				cc.updateProgress()
				return true, nil
			}
		}
		cc.Status = StatusCompleted
		if len(cc.Deals) == 0 && len(cc.Failures) > 0 {
			cc.Status = StatusFailed
		}
		cc.updateProgress()
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	if next != nil {
		more, err := proposalEvents(&c2)
		if err != nil {
			return nil, err
		}
		return append(out, more...), nil
	}
	done, err := completionEvent(&c2)
	if err != nil {
		return nil, err
	}
	return append(out, done), nil
}

func (s *Service) maxRevisions() int {
	if s.MaxRevisions > 0 {
		return s.MaxRevisions
	}
	return 3
}

// replan spends the budget freed by failed bookings on the next best quotes,
// excluding every quote already booked or failed.
func (s *Service) replan(c *Campaign, revision int) (*events.PortfolioProposed, error) {
	exclude := map[string]string{}
	var spent events.Micros
	for _, d := range c.Deals {
		exclude[QuoteKey(d.SellerURL, d.PackageID)] = "already booked in an earlier revision"
		spent += d.SpendMicros
	}
	for _, f := range c.Failures {
		exclude[QuoteKey(f.SellerURL, f.PackageID)] = "booking failed: " + f.Code
	}
	remaining := c.Request.Brief.BudgetMicros - spent
	if remaining <= 0 {
		return nil, nil
	}
	p, err := BuildPlan(c, s.Weights, remaining, revision, exclude)
	if err != nil {
		return nil, err
	}
	FitBudget(p, remaining)
	if len(p.Lines) == 0 {
		return nil, nil
	}
	p.Notes = append(p.Notes, fmt.Sprintf("re-plan after %d failed bookings: %s of budget left", len(c.Failures), remaining))
	return p, nil
}

func mergeOutcomes(c *Campaign, deals []events.DealBooked, fails []events.BookingFailed) {
	for _, d := range deals {
		if d.CPMMismatch {
			msg := fmt.Sprintf("CPM mismatch on deal %s (%s %s): booked %s, agreed %s", d.DealID, d.SellerURL, d.PackageID, d.CPMMicros.Cents(), d.AgreedCPMMicros.Cents())
			if !containsString(c.Errors, msg) {
				c.Errors = append(c.Errors, msg)
			}
		}
	}
	have := map[string]bool{}
	for _, d := range c.Deals {
		have["d"+d.SellerURL+"|"+d.PackageID+"|"+d.QuoteID] = true
	}
	for _, f := range c.Failures {
		have["f"+f.SellerURL+"|"+f.PackageID+"|"+f.QuoteID] = true
	}
	for _, d := range deals {
		if k := "d" + d.SellerURL + "|" + d.PackageID + "|" + d.QuoteID; !have[k] {
			c.Deals = append(c.Deals, d)
		}
	}
	for _, f := range fails {
		if k := "f" + f.SellerURL + "|" + f.PackageID + "|" + f.QuoteID; !have[k] {
			c.Failures = append(c.Failures, f)
		}
	}
	sort.SliceStable(c.Deals, func(i, j int) bool { return c.Deals[i].SellerURL < c.Deals[j].SellerURL })
}

func planRevision(p *events.PortfolioProposed) any {
	if p == nil {
		return "none"
	}
	return p.Revision
}

// checkApproval accepts only lines of the proposed plan, unchanged: an
// approval cannot add deals, raise spend or change prices.
func checkApproval(p *events.PortfolioProposed, a events.PortfolioApproved) error {
	planned := map[string]events.PlanLine{}
	for _, l := range p.Lines {
		planned[LineKey(l)] = l
	}
	for _, l := range a.Lines {
		pl, ok := planned[LineKey(l)]
		if !ok {
			return fmt.Errorf("booker: approved line %s/%s is not in plan revision %d", l.SellerURL, l.PackageID, p.Revision)
		}
		if pl.Impressions != l.Impressions || pl.CPMMicros != l.CPMMicros || pl.SpendMicros != l.SpendMicros {
			return fmt.Errorf("booker: approved line %s/%s differs from the plan", l.SellerURL, l.PackageID)
		}
	}
	return nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

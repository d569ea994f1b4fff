package booker

import (
	"sort"
	"time"

	"github.com/dealflow/dealflow/pkg/events"
)

// Job statuses, as the bookings API reports them.
const (
	StatusPending          = "pending"
	StatusRunning          = "running"
	StatusAwaitingApproval = "awaiting_approval"
	StatusBooking          = "booking"
	StatusCompleted        = "completed"
	StatusFailed           = "failed"
)

// Campaign is the booker's projection of one campaign, kept in the campaigns
// KV bucket and updated with revision checks. It is also the bookings API's
// job record, so jobs survive restarts.
type Campaign struct {
	ID        string    `json:"id"`
	Status    string    `json:"status"`
	Progress  float64   `json:"progress"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Deadline is when the booker optimises with the quotes it has.
	Deadline time.Time `json:"deadline"`

	Request *events.CampaignRequested `json:"request,omitempty"`

	DiscoveryDone bool                   `json:"discovery_done"`
	Sources       []events.SourceStatus  `json:"sources,omitempty"`
	Expected      []string               `json:"expected_sellers,omitempty"`
	Skipped       []events.SellerSkipped `json:"skipped,omitempty"`
	// PackagesTotal is each seller's number of fitting packages.
	PackagesTotal map[string]int `json:"packages_total,omitempty"`
	// Quotes are keyed by QuoteKey(seller, package). They live in their own
	// KV bucket (see LoadQuotes), not in the projection; the projection
	// keeps which packages are quoted and how many per seller.
	Quotes     map[string]events.QuoteReady `json:"-"`
	QuoteKeys  map[string]bool              `json:"quote_keys,omitempty"`
	QuoteCount map[string]int               `json:"quote_count,omitempty"`
	// LateQuotes arrived after the plan: recorded (the first 50, and the
	// count), not lost.
	LateQuotes []events.QuoteReady `json:"late_quotes,omitempty"`
	LateCount  int                 `json:"late_count,omitempty"`

	Plan          *events.PortfolioProposed `json:"plan,omitempty"`
	PlannedBy     string                    `json:"planned_by,omitempty"`
	PlanPublished bool                      `json:"plan_published,omitempty"`
	Approved      *events.PortfolioApproved `json:"approved,omitempty"`

	Deals    []events.DealBooked    `json:"deals,omitempty"`
	Failures []events.BookingFailed `json:"failures,omitempty"`
	Errors   []string               `json:"errors,omitempty"`

	// Seen holds the ids of events already applied, so a redelivered event
	// changes nothing.
	Seen map[string]bool `json:"seen,omitempty"`
}

// QuoteKey identifies a package of a seller within a campaign.
func QuoteKey(sellerURL, packageID string) string { return sellerURL + "|" + packageID }

// Terminal reports whether the campaign is finished.
func (c *Campaign) Terminal() bool { return c.Status == StatusCompleted || c.Status == StatusFailed }

// markSeen records an event id; false means it was applied before.
func (c *Campaign) markSeen(id string) bool {
	if c.Seen == nil {
		c.Seen = map[string]bool{}
	}
	if c.Seen[id] {
		return false
	}
	c.Seen[id] = true
	return true
}

func (c *Campaign) skippedSeller(url string) bool {
	for _, s := range c.Skipped {
		if s.SellerURL == url {
			return true
		}
	}
	return false
}

// Resolved counts the expected sellers that are done: skipped, or with a
// QuoteReady for every fitting package.
func (c *Campaign) Resolved() (done, total int) {
	perSeller := c.QuoteCount
	for _, u := range c.Expected {
		if c.skippedSeller(u) {
			done++
			continue
		}
		if n, ok := c.PackagesTotal[u]; ok && perSeller[u] >= n {
			done++
		}
	}
	return done, len(c.Expected)
}

// Ready reports whether every seller is resolved, so the booker can optimise.
func (c *Campaign) Ready() bool {
	if !c.DiscoveryDone || c.Request == nil {
		return false
	}
	done, total := c.Resolved()
	return done == total
}

// updateProgress follows the reference's milestones: 0.1 running, up to 0.8
// while quotes come in, 0.9 awaiting approval, 1.0 done.
func (c *Campaign) updateProgress() {
	switch c.Status {
	case StatusRunning:
		p := 0.1
		if c.DiscoveryDone {
			p = 0.2
			if done, total := c.Resolved(); total > 0 {
				p += 0.6 * float64(done) / float64(total)
			}
		}
		c.Progress = p
	case StatusAwaitingApproval:
		c.Progress = 0.9
	case StatusBooking:
		c.Progress = 0.95
	case StatusCompleted, StatusFailed:
		c.Progress = 1
	}
}

// SortedQuotes returns the quotes in a stable order.
func (c *Campaign) SortedQuotes() []events.QuoteReady {
	out := make([]events.QuoteReady, 0, len(c.Quotes))
	for _, q := range c.Quotes {
		out = append(out, q)
	}
	sort.Slice(out, func(i, j int) bool {
		return QuoteKey(out[i].Seller.URL, out[i].Package.ID) < QuoteKey(out[j].Seller.URL, out[j].Package.ID)
	})
	return out
}

// apply folds one input event into the projection. It returns false when
// the event was already applied.
func (c *Campaign) apply(in events.Event, now time.Time, defaultWindow time.Duration) (bool, error) {
	if !c.markSeen(in.ID()) {
		return false, nil
	}
	c.ID = in.Subject()
	if c.CreatedAt.IsZero() {
		c.CreatedAt = now
	}
	if c.Status == "" {
		c.Status = StatusPending
	}
	c.UpdatedAt = now
	switch in.Type() {
	case events.KindCampaignRequested.Type:
		req, err := events.PayloadOf[events.CampaignRequested](in, events.KindCampaignRequested)
		if err != nil {
			return false, err
		}
		if c.Request == nil {
			c.Request = &req // the bookings API may have stored it already
		}
		if c.Deadline.IsZero() {
			if c.Status == StatusPending {
				c.Status = StatusRunning
			}
			w := defaultWindow
			if req.ShoppingWindowSec > 0 {
				w = time.Duration(req.ShoppingWindowSec) * time.Second
			}
			c.Deadline = now.Add(w)
		}
	case events.KindCampaignRejected.Type:
		rej, err := events.PayloadOf[events.CampaignRejected](in, events.KindCampaignRejected)
		if err != nil {
			return false, err
		}
		c.Errors = append(c.Errors, rejectionText(rej))
		if !c.Terminal() {
			c.Status = StatusFailed
		}
	case events.KindDiscoveryCompleted.Type:
		d, err := events.PayloadOf[events.DiscoveryCompleted](in, events.KindDiscoveryCompleted)
		if err != nil {
			return false, err
		}
		c.DiscoveryDone = true
		c.Expected = d.Sellers
		c.Sources = d.Sources
	case events.KindSellerSkipped.Type:
		s, err := events.PayloadOf[events.SellerSkipped](in, events.KindSellerSkipped)
		if err != nil {
			return false, err
		}
		if !c.skippedSeller(s.SellerURL) {
			c.Skipped = append(c.Skipped, s)
		}
	case events.KindQuoteReady.Type:
		q, err := events.PayloadOf[events.QuoteReady](in, events.KindQuoteReady)
		if err != nil {
			return false, err
		}
		if c.Plan != nil {
			c.LateCount++
			if len(c.LateQuotes) < 50 {
				c.LateQuotes = append(c.LateQuotes, q)
			}
			break
		}
		if c.QuoteKeys == nil {
			c.QuoteKeys, c.QuoteCount, c.PackagesTotal = map[string]bool{}, map[string]int{}, map[string]int{}
		}
		if key := QuoteKey(q.Seller.URL, q.Package.ID); !c.QuoteKeys[key] {
			c.QuoteKeys[key] = true
			c.QuoteCount[q.Seller.URL]++
		}
		c.PackagesTotal[q.Seller.URL] = q.PackagesTotal
	}
	c.updateProgress()
	return true, nil
}

func rejectionText(r events.CampaignRejected) string {
	if r.Field != "" {
		return "rejected: " + r.Field + " " + r.Reason
	}
	return "rejected: " + r.Reason
}

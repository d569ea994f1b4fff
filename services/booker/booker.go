// Package booker is the last stage. It runs three durable consumers over
// the campaign state machine (internal/campaign):
//
//   - plan (plan.go): folds discovery and negotiation events into the
//     campaign record and, when every seller is resolved or the shopping
//     deadline passed, optimises the portfolio once and proposes it; it
//     also folds each line's booking outcome and finishes the campaign (or
//     re-plans the freed budget) once every approved line has one;
//   - book (book.go): takes up an approval and fans it out into one
//     LineApproved per line;
//   - line (line.go): books one line per delivery through the booking
//     ledger (ledger.go), exactly once, and publishes its DealBooked or
//     BookingFailed the moment it is known; a line whose outcome is unknown
//     is retried with the same idempotency key, reported unresolved at the
//     booking horizon and then reconciled with the seller (reconcile.go).
//
// Its sweeper (sweeper.go) publishes the events a campaign is due: the
// shopping deadline, a request whose publication failed, and an approval
// not taken up.
package booker

import (
	"time"

	"github.com/rs/zerolog"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/campaign"
	"github.com/dealflow/dealflow/internal/portfolio"
	"github.com/dealflow/dealflow/pkg/events"
)

// Stage names: the booker runs three durable consumers.
const (
	StagePlan = events.StageBooker + "-plan"
	StageBook = events.StageBooker + "-book"
	StageLine = events.StageBooker + "-line"
)

// PlanSubjects are the inputs of the planning consumer.
func PlanSubjects() []string {
	return []string{events.KindCampaignRequested.Filter(), events.KindCampaignRejected.Filter(), events.KindDiscoveryCompleted.Filter(),
		events.KindSellerSkipped.Filter(), events.KindQuoteReady.Filter(), events.KindShoppingDeadlinePassed.Filter(),
		events.KindDealBooked.Filter(), events.KindBookingFailed.Filter()}
}

// BookSubjects are the inputs of the booking consumer.
func BookSubjects() []string { return []string{events.KindPortfolioApproved.Filter()} }

// LineSubjects are the inputs of the line consumer.
func LineSubjects() []string { return []string{events.KindLineApproved.Filter()} }

// Service holds the booker's stores and dependencies.
type Service struct {
	Campaigns *campaign.Store
	Ledger    *bus.Store[Ledger]
	Booker    *Booker
	Weights   portfolio.Weights
	// ShoppingWindow is the default time from request to optimisation when
	// not every seller has answered (default 2 min).
	ShoppingWindow time.Duration
	// MaxRevisions bounds automatic re-plans after failed bookings (default 3).
	MaxRevisions int
	// ApprovalRetry is how often the sweeper publishes a new copy of an
	// approval the book consumer has not taken up (default
	// campaign.ApprovalRetryEvery).
	ApprovalRetry time.Duration
	// BookingHorizon bounds how long a line's outcome may stay unknown
	// (retried with the same idempotency key) before it is reported
	// unresolved (default 3 min).
	BookingHorizon time.Duration
	// ReconcileEvery is the first interval at which an unresolved line is
	// checked with its seller (default 30s); it grows to a tenth of the
	// time the line has been unresolved, at most 10 min.
	ReconcileEvery time.Duration
	// ReconcileFor bounds how long an unresolved line is checked (default
	// 24h); after that it stays unresolved for a person to settle.
	ReconcileFor time.Duration
	Log          zerolog.Logger
	Now          func() time.Time
	// Metrics, when set, counts booked deals and spend.
	Metrics DealObserver
}

// DealObserver records booked deals and line outcomes (the metrics
// registry implements it).
type DealObserver interface {
	ObserveDealBooked(protocol events.Protocol, dealType string, spend events.Micros)
	// ObserveLineOutcome counts a line's outcome once it is known:
	// booked, failed, unresolved, reconciled_booked, reconciled_not_booked.
	ObserveLineOutcome(outcome string)
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

func (s *Service) maxRevisions() int {
	if s.MaxRevisions > 0 {
		return s.MaxRevisions
	}
	return 3
}

func (s *Service) horizon() time.Duration {
	if s.BookingHorizon > 0 {
		return s.BookingHorizon
	}
	return 3 * time.Minute
}

// reconcileAfter is the delay before the next check of a line unresolved
// for this long.
func (s *Service) reconcileAfter(unresolvedFor time.Duration) time.Duration {
	first := s.ReconcileEvery
	if first <= 0 {
		first = 30 * time.Second
	}
	return min(max(first, unresolvedFor/10), max(first, 10*time.Minute))
}

func (s *Service) reconcileFor() time.Duration {
	if s.ReconcileFor > 0 {
		return s.ReconcileFor
	}
	return 24 * time.Hour
}

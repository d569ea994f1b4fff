// Package booker is the last stage. It runs two durable consumers over the
// campaign state machine (internal/campaign):
//
//   - plan (plan.go): folds discovery and negotiation events into the
//     campaign record and, when every seller is resolved or the shopping
//     deadline passed, optimises the portfolio once and proposes it;
//   - book (book.go): books every approved line exactly once through the
//     booking ledger (ledger.go) and records the outcome, re-planning the
//     freed budget for auto-approved campaigns.
//
// Its sweeper (sweeper.go) publishes the events a campaign is due: the
// shopping deadline, and a request or approval whose publication failed.
package booker

import (
	"time"

	"github.com/rs/zerolog"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/campaign"
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
		events.KindSellerSkipped.Filter(), events.KindQuoteReady.Filter(), events.KindShoppingDeadlinePassed.Filter()}
}

// BookSubjects are the inputs of the booking consumer.
func BookSubjects() []string { return []string{events.KindPortfolioApproved.Filter()} }

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
	// BookConcurrency bounds simultaneous seller bookings (default 8).
	BookConcurrency int
	Log             zerolog.Logger
	Now             func() time.Time
	// Metrics, when set, counts booked deals and spend.
	Metrics DealObserver
}

// DealObserver records booked deals (the metrics registry implements it).
type DealObserver interface {
	ObserveDealBooked(dealType string, spend events.Micros)
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

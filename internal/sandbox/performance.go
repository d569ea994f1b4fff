package sandbox

import (
	"math"
	"net/http"
	"time"

	"github.com/dealflow/dealflow/internal/flight"
	"github.com/dealflow/dealflow/internal/sandbox/engine"
)

// placeholderAvailable is the real seller's impressions_available when it
// has no ad server to ask, used for a deal booked without impressions.
const placeholderAvailable = 1_000_000

// dealDelivery is what a booked deal delivers over its flight.
type dealDelivery struct {
	flight   FlightWindow
	ok       bool  // the deal's terms name a usable flight
	goal     int64 // booked impressions
	cpm      float64
	delivery Delivery
	// set is a delivery set at runtime (SetDelivery) instead of the
	// configured one.
	set bool
	// course is the deal's delivery after a bulk cancel (changes.go).
	course Course
}

// newDelivery is the delivery of a deal booked now from quote q: its
// flight from the quote's terms, the seller's configured delivery for the
// product. Called with s.mu held.
func (s *Seller) newDelivery(q *quoteRecord, now time.Time) dealDelivery {
	d := dealDelivery{flight: FlightWindow{Booked: now}, cpm: q.FinalCPM, delivery: s.cfg.Delivery.For(q.ProductID), goal: placeholderAvailable}
	if q.Impressions != nil && *q.Impressions > 0 {
		d.goal = *q.Impressions
	}
	if w, err := flight.Days(q.FlightStart, q.FlightEnd); err == nil {
		d.flight.Window, d.ok = w, true
	}
	return d
}

// SetDelivery changes how one booked deal delivers from now on (the same
// curve, another pace or fault), for tests that fault a single line. It
// reports whether the seller holds the deal.
func (s *Seller) SetDelivery(dealID string, d Delivery) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.deals[dealID]
	if rec == nil {
		return false
	}
	rec.delivery.delivery, rec.delivery.set = d, true
	return true
}

// DealDelivery is what a booked deal has delivered, for tests to compare
// with what the buyer reports.
type DealDelivery struct {
	DealID      string
	Impressions int64
	Goal        int64
	// FlightNow is the deal's flight clock now.
	FlightNow time.Time
	Share     float64
}

// Delivered reports what a booked deal has delivered at wall time now.
func (s *Seller) Delivered(dealID string, now time.Time) (DealDelivery, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.deals[dealID]
	if rec == nil {
		return DealDelivery{}, false
	}
	at := rec.delivery.flight.Now(s.clock, now)
	share := rec.delivery.flight.Window.Elapsed(at)
	return DealDelivery{DealID: dealID, Impressions: rec.delivery.served(share, dealID), Goal: rec.delivery.goal, FlightNow: at, Share: share}, true
}

func (d dealDelivery) served(share float64, seed string) int64 {
	if !d.ok {
		return 0
	}
	return int64(math.Floor(d.course.Delivered(d.delivery, float64(d.goal), share, seed)))
}

// handleDealPerformance is GET /api/v1/deals/{id}/performance, the real
// seller's delivery stats (the shape its DealPerformanceResponse has),
// with numbers: what the deal delivered by now on the market's flight
// clock. The real seller answers placeholders (0 served, "not_started")
// unless an ad server is configured.
func (s *Seller) handleDealPerformance(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	rec := s.deals[id]
	var d dealDelivery
	if rec != nil {
		d = rec.delivery
	}
	s.mu.Unlock()
	if rec == nil {
		writeDetail(w, http.StatusNotFound, errorObj("deal_not_found", "Deal '"+id+"' not found."))
		return
	}
	at := d.flight.Now(s.clock, s.now().UTC())
	share := d.flight.Window.Elapsed(at)
	if d.ok && !d.delivery.Reporting(share) {
		writeDetail(w, http.StatusServiceUnavailable, errorObj("reporting_unavailable", "Delivery reporting is unavailable for deal '"+id+"'."))
		return
	}
	served := d.served(share, id)
	fill, avg := 0.0, 0.0
	if d.goal > 0 {
		fill = engine.PyRound(float64(served)/float64(d.goal)*100, 1)
	}
	if served > 0 {
		avg = engine.PyRound(d.cpm, 2)
	}
	pacing := "not_started"
	switch {
	case served == 0:
	case float64(served) < 0.9*float64(d.goal)*share:
		pacing = "behind"
	default:
		pacing = "on_track"
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"deal_id": id, "impressions_available": d.goal, "impressions_served": served, "fill_rate": pyFloat(fill),
		"win_rate": pyFloat(0), "avg_cpm_actual": pyFloat(avg), "delivery_pacing": pacing, "last_updated": isoZ(at),
	})
}

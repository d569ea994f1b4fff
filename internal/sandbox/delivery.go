package sandbox

import (
	"fmt"
	"hash/fnv"
	"math"
	"time"

	"github.com/dealflow/dealflow/internal/flight"
)

// Delivery shapes how a sandbox seller delivers a booked line over its
// flight, and the faults of that delivery. The zero value delivers on plan.
// Durations in JSON are not used: shares are of the flight.
type Delivery struct {
	// Pace multiplies the plan: 1 (or 0, the default) delivers on plan,
	// 0.5 delivers half of what is due at every point of the flight
	// (under-delivery), 1.5 half again as much (over-delivery).
	Pace float64 `json:"pace,omitempty"`
	// Cap is the most a line delivers, as a multiple of its booked goal
	// (default the larger of 1 and Pace): an over-delivering line keeps
	// delivering past its goal up to it.
	Cap float64 `json:"cap,omitempty"`
	// NeverStarts delivers nothing at all (the report says not_started).
	NeverStarts bool `json:"never_starts,omitempty"`
	// StopsReportingAt makes delivery reports fail (503, or the AdCP
	// SERVICE_UNAVAILABLE error) from this share of the flight on, 0 < x
	// <= 1: a seller that stops reporting. 0 reports throughout.
	StopsReportingAt float64 `json:"stops_reporting_at,omitempty"`
}

// DeliveryConfig is a seller's delivery: the Delivery of all its lines, and
// per product a Delivery of the lines booking that product instead.
type DeliveryConfig struct {
	Delivery
	Products map[string]Delivery `json:"products,omitempty"`
}

// For is the delivery of a line booking productID.
func (c DeliveryConfig) For(productID string) Delivery {
	if d, ok := c.Products[productID]; ok {
		return d
	}
	return c.Delivery
}

func (d Delivery) validate() error {
	switch {
	case d.Pace < 0 || math.IsNaN(d.Pace) || d.Pace > 100:
		return fmt.Errorf("delivery pace %v must be between 0 and 100", d.Pace)
	case d.Cap < 0 || math.IsNaN(d.Cap) || d.Cap > 100:
		return fmt.Errorf("delivery cap %v must be between 0 and 100", d.Cap)
	case d.StopsReportingAt < 0 || d.StopsReportingAt > 1 || math.IsNaN(d.StopsReportingAt):
		return fmt.Errorf("stops_reporting_at %v must be a share of the flight, 0 to 1", d.StopsReportingAt)
	}
	return nil
}

func (c DeliveryConfig) validate() error {
	if err := c.Delivery.validate(); err != nil {
		return err
	}
	for id, d := range c.Products {
		if err := d.validate(); err != nil {
			return fmt.Errorf("product %s: %w", id, err)
		}
	}
	return nil
}

// wiggle is how far a line's delivery strays from even pacing, as a share
// of what is due: a seeded curve, so an on-plan line is not a straight
// line but never strays beyond a pacer's tolerance either.
const wiggle = 0.08

// Share is the share of its goal a line of this delivery has delivered
// when share of its flight has elapsed (0 to 1): Pace times an even pace
// with a seeded wiggle (never decreasing, 0 at the start, exactly Pace at
// the end), capped at Cap. seed names the line (its deal or media buy id),
// so every reading of it lies on one curve.
func (d Delivery) Share(share float64, seed string) float64 {
	if d.NeverStarts || share <= 0 {
		return 0
	}
	share = min(share, 1)
	pace := d.Pace
	if pace == 0 {
		pace = 1
	}
	capAt := d.Cap
	if capAt == 0 {
		capAt = max(1, pace)
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(seed))
	sum := h.Sum64()
	n := float64(2 + sum%4)                                     // 2 to 5 waves over the flight
	phi := float64(sum>>8%6283) / 1000                          // 0 to 2π
	w := 2 * math.Pi * n                                        // f(s) = s + a(sin(ws+φ) - sin φ)/w:
	f := share + wiggle*(math.Sin(w*share+phi)-math.Sin(phi))/w // f' = 1 + a cos(...) > 0, f(1) = 1
	return min(pace*max(f, 0), capAt)
}

// Reporting reports whether the seller still reports delivery when share
// of the flight has elapsed.
func (d Delivery) Reporting(share float64) bool {
	return d.StopsReportingAt == 0 || share < d.StopsReportingAt
}

// FlightWindow is the flight of a booked line for delivery: its window,
// and the wall time its accelerated clock starts from (when it was booked).
type FlightWindow struct {
	Window flight.Window
	Booked time.Time
}

// Now is the line's flight time on clock at wall time now.
func (f FlightWindow) Now(clock flight.Clock, now time.Time) time.Time {
	return clock.Now(f.Window, f.Booked, now)
}

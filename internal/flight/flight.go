// Package flight is a booked line's flight in time: its window, from the
// booking's first and last days, and the clock it is followed on, real or
// accelerated (--time-scale: one flight day in a few seconds), which the
// pacer and the sandbox sellers share so that a whole flight plays in a
// demo or a test.
package flight

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// DateLayout is the layout of a flight's days (YYYY-MM-DD).
const DateLayout = "2006-01-02"

// Window is a flight: from the start of its first day to the end of its
// last day, in UTC (End is excluded).
type Window struct {
	Start, End time.Time
}

// ErrWindow is a flight that cannot be followed: a day that does not
// parse, or a last day before the first.
var ErrWindow = errors.New("flight: bad window")

// Days is the window of a flight running from first to last, both
// included (YYYY-MM-DD, UTC).
func Days(first, last string) (Window, error) {
	s, err := time.Parse(DateLayout, first)
	if err != nil {
		return Window{}, fmt.Errorf("%w: first day %q is not YYYY-MM-DD", ErrWindow, first)
	}
	e, err := time.Parse(DateLayout, last)
	if err != nil {
		return Window{}, fmt.Errorf("%w: last day %q is not YYYY-MM-DD", ErrWindow, last)
	}
	if e.Before(s) {
		return Window{}, fmt.Errorf("%w: last day %s is before the first, %s", ErrWindow, last, first)
	}
	return Window{Start: s, End: e.AddDate(0, 0, 1)}, nil
}

// Length is how long the flight lasts.
func (w Window) Length() time.Duration { return w.End.Sub(w.Start) }

// Elapsed is the share of the flight elapsed at t: 0 before it starts, 1
// once it has ended.
func (w Window) Elapsed(t time.Time) float64 {
	switch {
	case !t.After(w.Start):
		return 0
	case !t.Before(w.End):
		return 1
	}
	return float64(t.Sub(w.Start)) / float64(w.Length())
}

// Clock tells a line's flight time from the wall clock. The zero Clock is
// real time. An accelerated clock (Day > 0) plays one flight day in Day of
// wall time, starting the flight when the line was booked (its anchor):
// the flight's own dates may lie weeks ahead, and the accelerated flight
// begins at once.
type Clock struct {
	// Day is how long one flight day lasts on the wall clock; 0 is real
	// time.
	Day time.Duration
}

// Accelerated reports whether the clock runs faster than real time.
func (c Clock) Accelerated() bool { return c.Day > 0 }

// speed is flight time per wall time.
func (c Clock) speed() float64 { return float64(24*time.Hour) / float64(c.Day) }

// Now is the flight time of a line of window w booked at anchor (wall
// clock), at wall time now.
func (c Clock) Now(w Window, anchor, now time.Time) time.Time {
	if !c.Accelerated() {
		return now
	}
	return w.Start.Add(scale(now.Sub(anchor), c.speed()))
}

// Wall is the wall time at which the line's flight clock reads t; the
// inverse of Now.
func (c Clock) Wall(w Window, anchor, t time.Time) time.Time {
	if !c.Accelerated() {
		return t
	}
	return anchor.Add(scale(t.Sub(w.Start), 1/c.speed()))
}

// WallDuration is how long d of flight time lasts on the wall clock.
func (c Clock) WallDuration(d time.Duration) time.Duration {
	if !c.Accelerated() {
		return d
	}
	return scale(d, 1/c.speed())
}

func scale(d time.Duration, f float64) time.Duration {
	v := float64(d) * f
	if v >= math.MaxInt64 {
		return time.Duration(math.MaxInt64)
	}
	if v <= math.MinInt64 {
		return time.Duration(math.MinInt64)
	}
	return time.Duration(v)
}

// ParseScale reads a --time-scale value: how long one flight day lasts, as
// a number of seconds ("2", "0.5") or a duration ("500ms", "1m"); "0" (or
// empty) is real time.
func ParseScale(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f < 0 || math.IsNaN(f) || math.IsInf(f, 0) || f > 86400 {
			return 0, fmt.Errorf("time scale %q: want 0 (real time) or up to 86400 seconds per flight day", s)
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 || d > 24*time.Hour {
		return 0, fmt.Errorf("time scale %q: want seconds per flight day (2, 0.5) or a duration (500ms), 0 for real time", s)
	}
	return d, nil
}

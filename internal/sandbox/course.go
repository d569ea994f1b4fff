package sandbox

// Course is a booked line's delivery after changes the buyer made at the
// seller mid-flight (pause, resume, cancel, a new budget): delivery is
// piecewise, each change starting a new piece from what was delivered at
// that moment. Amounts are in the line's own unit (impressions for an IAB
// deal, spend for an AdCP package). The zero Course is an unchanged line,
// which delivers Goal x Delivery.Share, exactly as before changes existed.
type Course struct {
	// Changed is set by the first change.
	Changed bool
	// Base is what the line had delivered at Since, the flight share of
	// the last change; Goal is its goal from then on.
	Base, Since, Goal float64
	Paused, Cancelled bool
}

// Delivered is what a line of delivery d, with goal (its booked goal,
// before any change), seed and course c, has delivered at share of its
// flight. A paused or cancelled line keeps what it had delivered; after a
// change a running line delivers the rest of its (new) goal over the rest
// of its flight, on the same curve, so a faulty line stays faulty.
func (c Course) Delivered(d Delivery, goal, share float64, seed string) float64 {
	if !c.Changed {
		return goal * d.Share(share, seed)
	}
	if c.Paused || c.Cancelled || share <= c.Since {
		return c.Base
	}
	rest := c.Goal - c.Base
	f0, f := d.Share(c.Since, seed), d.Share(share, seed)
	if rest <= 0 || f0 >= 1 || f <= f0 {
		return c.Base
	}
	return c.Base + rest*(f-f0)/(1-f0)
}

// change starts a new piece at share: what was delivered until now is
// kept, then fn changes the course.
func (c *Course) change(d Delivery, goal, share float64, seed string, fn func(*Course)) {
	base := c.Delivered(d, goal, share, seed)
	if !c.Changed {
		c.Changed, c.Goal = true, goal
	}
	c.Base, c.Since = base, max(share, c.Since)
	fn(c)
}

// Pause stops delivery at share until Resume.
func (c *Course) Pause(d Delivery, goal, share float64, seed string) {
	c.change(d, goal, share, seed, func(c *Course) { c.Paused = true })
}

// Resume lets a paused line deliver again from share.
func (c *Course) Resume(d Delivery, goal, share float64, seed string) {
	c.change(d, goal, share, seed, func(c *Course) { c.Paused = false })
}

// Cancel stops delivery at share for good.
func (c *Course) Cancel(d Delivery, goal, share float64, seed string) {
	c.change(d, goal, share, seed, func(c *Course) { c.Cancelled = true })
}

// SetGoal gives the line a new goal from share on: the rest of it is
// delivered over the rest of the flight (nothing more if it is already met).
func (c *Course) SetGoal(d Delivery, goal, share float64, seed string, newGoal float64) {
	c.change(d, goal, share, seed, func(c *Course) { c.Goal = newGoal })
}

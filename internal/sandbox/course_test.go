package sandbox

import (
	"math"
	"testing"
)

func TestCourse(t *testing.T) {
	t.Parallel()
	d := Delivery{}
	const goal, seed = 1000.0, "line-1"
	var c Course
	if got, want := c.Delivered(d, goal, 0.5, seed), goal*d.Share(0.5, seed); got != want {
		t.Fatalf("unchanged: %v, want %v", got, want)
	}
	c.Pause(d, goal, 0.3, seed)
	at30 := goal * d.Share(0.3, seed)
	if got := c.Delivered(d, goal, 0.6, seed); got != at30 {
		t.Fatalf("paused at 0.3: delivered %v at 0.6, want %v (frozen)", got, at30)
	}
	c.Resume(d, goal, 0.6, seed)
	if got := c.Delivered(d, goal, 0.6, seed); got != at30 {
		t.Fatalf("resumed: %v at the resume, want %v", got, at30)
	}
	if got := c.Delivered(d, goal, 1, seed); math.Abs(got-goal) > 1e-9 {
		t.Fatalf("resumed line delivers its goal by the end: %v", got)
	}
	c.SetGoal(d, goal, 0.8, seed, 1500)
	mid := c.Delivered(d, goal, 0.8, seed)
	if got := c.Delivered(d, goal, 1, seed); math.Abs(got-1500) > 1e-9 {
		t.Fatalf("a raised goal is delivered by the end: %v", got)
	}
	c.SetGoal(d, goal, 0.8, seed, mid/2)
	if got := c.Delivered(d, goal, 1, seed); got != mid {
		t.Fatalf("a goal below what was delivered delivers nothing more: %v, want %v", got, mid)
	}
	var x Course
	x.Cancel(d, goal, 0.5, seed)
	if got, want := x.Delivered(d, goal, 1, seed), goal*d.Share(0.5, seed); got != want {
		t.Fatalf("cancelled at 0.5: %v at the end, want %v", got, want)
	}
	var under Course
	slow := Delivery{Pace: 0.5}
	under.SetGoal(slow, goal, 0.5, seed, 2000)
	if got := under.Delivered(slow, goal, 1, seed); got >= 2000 || got <= goal*slow.Share(0.5, seed) {
		t.Fatalf("an under-delivering line stays under after a new goal: %v", got)
	}
}

package flight

import (
	"testing"
	"time"
)

func TestDaysAndElapsed(t *testing.T) {
	t.Parallel()
	w, err := Days("2028-06-01", "2028-06-10")
	if err != nil {
		t.Fatal(err)
	}
	if w.Length() != 10*24*time.Hour {
		t.Fatalf("length %s, want 10 days (the last day included)", w.Length())
	}
	for _, c := range []struct {
		at   time.Time
		want float64
	}{
		{w.Start.Add(-time.Hour), 0}, {w.Start, 0}, {w.Start.Add(24 * time.Hour), 0.1},
		{w.Start.Add(5 * 24 * time.Hour), 0.5}, {w.End, 1}, {w.End.Add(time.Hour), 1},
	} {
		if got := w.Elapsed(c.at); got != c.want {
			t.Errorf("elapsed at %s = %v, want %v", c.at, got, c.want)
		}
	}
	for _, bad := range [][2]string{{"2028-06-10", "2028-06-01"}, {"June 1", "2028-06-01"}, {"2028-06-01", ""}} {
		if _, err := Days(bad[0], bad[1]); err == nil {
			t.Errorf("Days(%q, %q) accepted", bad[0], bad[1])
		}
	}
	if w, err := Days("2028-06-01", "2028-06-01"); err != nil || w.Length() != 24*time.Hour {
		t.Errorf("a one-day flight: %v %v", w, err)
	}
}

func TestClock(t *testing.T) {
	t.Parallel()
	w, _ := Days("2028-06-01", "2028-06-30")
	anchor := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	real := Clock{}
	if now := anchor.Add(time.Hour); real.Now(w, anchor, now) != now || real.Wall(w, anchor, now) != now {
		t.Fatal("the zero clock is not real time")
	}
	fast := Clock{Day: 2 * time.Second}
	if got := fast.Now(w, anchor, anchor); !got.Equal(w.Start) {
		t.Fatalf("at the anchor the flight clock reads %s, want the flight start %s", got, w.Start)
	}
	if got := fast.Now(w, anchor, anchor.Add(3*time.Second)); !got.Equal(w.Start.Add(36 * time.Hour)) {
		t.Fatalf("3s after the anchor: %s, want a day and a half in", got)
	}
	at := w.Start.Add(10*24*time.Hour + 6*time.Hour)
	if back := fast.Now(w, anchor, fast.Wall(w, anchor, at)); back.Sub(at).Abs() > time.Microsecond {
		t.Fatalf("Wall is not Now's inverse: %s -> %s", at, back)
	}
	if d := fast.WallDuration(6 * time.Hour); d != 500*time.Millisecond {
		t.Fatalf("6h of flight on a 2s day lasts %s", d)
	}
}

func TestParseScale(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{"": 0, "0": 0, "2": 2 * time.Second, "0.5": 500 * time.Millisecond, "500ms": 500 * time.Millisecond, "1m": time.Minute} {
		if got, err := ParseScale(in); err != nil || got != want {
			t.Errorf("ParseScale(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"-1", "fast", "NaN", "48h", "100000"} {
		if _, err := ParseScale(bad); err == nil {
			t.Errorf("ParseScale(%q) accepted", bad)
		}
	}
}

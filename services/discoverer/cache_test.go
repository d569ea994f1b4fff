package discoverer

import (
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (f *fakeClock) now() time.Time          { return f.t }
func (f *fakeClock) advance(d time.Duration) { f.t = f.t.Add(d) }

func TestCache(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	steps := []struct {
		name      string
		do        func(c *Cache)
		key       string
		wantFresh bool
		wantStale bool
	}{
		{"miss", func(c *Cache) {}, "k", false, false},
		{"put then hit", func(c *Cache) { c.Put("k", 1) }, "k", true, true},
		{"exactly at ttl still fresh", func(c *Cache) { clk.advance(5 * time.Second) }, "k", true, true},
		{"past ttl stale only", func(c *Cache) { clk.advance(time.Nanosecond) }, "k", false, true},
		{"put refreshes", func(c *Cache) { c.Put("k", 2) }, "k", true, true},
		{"invalidate", func(c *Cache) { c.Invalidate("k") }, "k", false, false},
		{"clear", func(c *Cache) { c.Put("a", 1); c.Put("b", 2); c.Clear() }, "a", false, false},
	}
	c := NewCache(5*time.Second, clk.now)
	for _, s := range steps {
		s.do(c)
		_, fresh := c.Get(s.key)
		_, _, stale := c.GetStale(s.key)
		if fresh != s.wantFresh || stale != s.wantStale {
			t.Fatalf("%s: fresh=%v stale=%v, want %v %v", s.name, fresh, stale, s.wantFresh, s.wantStale)
		}
	}
}

func TestDiscoverKey(t *testing.T) {
	cases := []struct {
		caps []string
		want string
	}{
		{nil, "discover:"},
		{[]string{}, "discover:"},
		{[]string{"display", "ctv"}, "discover:ctv,display"},
		{[]string{"CTV", " display", "ctv"}, "discover:ctv,display"},
	}
	for _, c := range cases {
		if got := DiscoverKey("", c.caps); got != c.want {
			t.Errorf("DiscoverKey(%v) = %q, want %q", c.caps, got, c.want)
		}
	}
	if DiscoverKey("http://r", []string{"ctv"}) == DiscoverKey("http://q", []string{"ctv"}) {
		t.Fatal("different registries share a key")
	}
}

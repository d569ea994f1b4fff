package loopport

import (
	"net"
	"strconv"
	"testing"
)

// A picked port lies below the ephemeral range and can be bound.
func TestFreeIsBelowTheEphemeralRangeAndBindable(t *testing.T) {
	top := ephemeralStart()
	seen := map[int]bool{}
	for range 20 {
		p, err := Free()
		if err != nil {
			t.Fatal(err)
		}
		if p < lowest || p >= top {
			t.Fatalf("port %d outside [%d, %d)", p, lowest, top)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Fatalf("port %d: %v", p, err)
		}
		_ = ln.Close()
		seen[p] = true
	}
	if len(seen) < 10 {
		t.Fatalf("20 picks gave only %d distinct ports", len(seen))
	}
}

// A port in use is never handed out.
func TestFreeSkipsABoundPort(t *testing.T) {
	held := map[int]net.Listener{}
	for range 50 {
		p, err := Free()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := held[p]; ok {
			t.Fatalf("port %d handed out while bound", p)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Fatal(err)
		}
		held[p] = ln
	}
	for _, ln := range held {
		_ = ln.Close()
	}
}

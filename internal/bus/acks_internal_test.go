package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/dealflow/dealflow/internal/checkfor"
)

// TestAckWaitFailsPastItsBound: a handling whose acknowledgements do not
// all come (lost with the connection) fails with DeadlineExceeded once
// its bound has passed, and not before; a wait that completes in time is
// left alone; the sweeping goroutine stops when no wait is left.
func TestAckWaitFailsPastItsBound(t *testing.T) {
	t.Parallel()
	r := newAckRouter()
	r.wait, r.sweepEvery = 200*time.Millisecond, 10*time.Millisecond

	lost := []*nats.Msg{{Subject: "a"}, {Subject: "b"}}
	start := time.Now()
	w := r.expect(lost)
	r.resolve(lost[0], nil) // one of two acknowledged
	acked := []*nats.Msg{{Subject: "c"}}
	ok := r.expect(acked)
	r.resolve(acked[0], nil)

	select {
	case <-ok.done:
		if ok.err != nil {
			t.Fatalf("a wait acknowledged in time failed: %v", ok.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a wait acknowledged in time never completed")
	}
	select {
	case <-w.done:
	case <-time.After(5 * time.Second):
		t.Fatal("a wait missing an acknowledgement never failed")
	}
	if took := time.Since(start); took < r.wait {
		t.Fatalf("failed after %v, before its bound of %v", took, r.wait)
	}
	if !errors.Is(w.err, context.DeadlineExceeded) || !strings.Contains(w.err.Error(), "publish 2 events") {
		t.Fatalf("err = %v, want the 2 events' DeadlineExceeded", w.err)
	}
	r.resolve(lost[1], nil) // a late acknowledgement changes nothing
	if !errors.Is(w.err, context.DeadlineExceeded) {
		t.Fatalf("err after a late ack = %v", w.err)
	}
	checkfor.Check(t, 5*time.Second, 10*time.Millisecond, func() error {
		r.mu.Lock()
		defer r.mu.Unlock()
		if len(r.waits) != 0 || r.sweeping {
			return fmt.Errorf("%d waits left, sweeping %v", len(r.waits), r.sweeping)
		}
		return nil
	})
}

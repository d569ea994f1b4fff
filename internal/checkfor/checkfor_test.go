package checkfor

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// recorder is a testing.TB that records a Fatalf instead of stopping the
// test, so the failure path can be checked.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	panic(r)
}

func run(t *testing.T, f func(tb testing.TB)) (failed string) {
	r := &recorder{TB: t}
	defer func() {
		if v := recover(); v != nil && v != any(r) {
			panic(v)
		}
		failed = r.failed
	}()
	f(r)
	return ""
}

func TestCheckReturnsOnceTheCheckPasses(t *testing.T) {
	var n atomic.Int32
	msg := run(t, func(tb testing.TB) {
		Check(tb, 5*time.Second, time.Millisecond, func() error {
			if n.Add(1) < 3 {
				return errors.New("not yet")
			}
			return nil
		})
	})
	if msg != "" || n.Load() != 3 {
		t.Fatalf("failed %q after %d calls, want a pass on the third", msg, n.Load())
	}
}

func TestCheckFailsWithTheLastError(t *testing.T) {
	var n atomic.Int32
	msg := run(t, func(tb testing.TB) {
		Check(tb, 30*time.Millisecond, 5*time.Millisecond, func() error { return fmt.Errorf("still %d", n.Add(1)) })
	})
	if want := fmt.Sprintf("still %d", n.Load()); !strings.Contains(msg, want) || n.Load() < 2 {
		t.Fatalf("failure %q after %d calls, want the last error %q", msg, n.Load(), want)
	}
}

func TestUntilNamesWhatWasAwaited(t *testing.T) {
	msg := run(t, func(tb testing.TB) { Until(tb, 20*time.Millisecond, "the moon", func() bool { return false }) })
	if !strings.Contains(msg, "timed out waiting for the moon") {
		t.Fatalf("failure %q does not name what was awaited", msg)
	}
	if msg := run(t, func(tb testing.TB) { Until(tb, time.Second, "now", func() bool { return true }) }); msg != "" {
		t.Fatalf("a condition that holds failed: %q", msg)
	}
}

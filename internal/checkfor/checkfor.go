// Package checkfor is the one way tests wait for something asynchronous to
// happen: poll a check until it passes or a deadline passes, then fail with
// the check's last complaint, as nats-server's checkFor does. Waiting by
// polling a real condition, never by sleeping a guessed duration, keeps tests
// both fast on an idle machine and right on a loaded one.
package checkfor

import (
	"errors"
	"testing"
	"time"
)

// Check calls f every interval until it returns nil, and fails t with f's
// last error if it has not by total. f runs at least once.
func Check(t testing.TB, total, interval time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", total, err)
		}
		time.Sleep(interval)
	}
}

// Until is Check for a condition that has nothing to say but whether it
// holds: the failure names what was awaited.
func Until(t testing.TB, total time.Duration, what string, cond func() bool) {
	t.Helper()
	Check(t, total, 10*time.Millisecond, func() error {
		if cond() {
			return nil
		}
		return errors.New("timed out waiting for " + what)
	})
}

package bus

import (
	"context"
	"errors"
	"testing"
)

// LeaderStore opens bucket as a Store whose reads go to the stream leader
// even on one node, so tests exercise the leader read there too.
func LeaderStore[T any](ctx context.Context, b *Bus, bucket string) (*Store[T], error) {
	s, err := OpenStore[T](ctx, b, bucket)
	if err != nil {
		return nil, err
	}
	s.rs.latest = leaderReader(b.NC, bucket)
	return s, nil
}

// A decision made on a stale read without writing is confirmed with the
// leader, and made again on the leader's value when that is newer.
func TestUpdateConfirmsDecisionsWithTheLeader(t *testing.T) {
	type rec struct{ N int }
	errStale := errors.New("stale")
	fast := func(context.Context, string) (entry, bool, error) {
		return entry{value: []byte(`{"N":1}`), rev: 1}, true, nil
	}
	latest := func(context.Context, string) (entry, bool, error) {
		return entry{value: []byte(`{"N":2}`), rev: 2}, true, nil
	}
	var seen []int
	fn := func(v *rec, _ bool, _ []byte) ([]byte, error) {
		seen = append(seen, v.N)
		if v.N < 2 {
			return nil, errStale // "approved revision 2, current 1"
		}
		return nil, nil // nothing to change
	}
	v, rev, err := updateEncoded(t.Context(), nil, readers{fast: fast, latest: latest}, "k", fn)
	if err != nil || v.N != 2 || rev != 2 || len(seen) != 2 {
		t.Fatalf("got %+v rev %d err %v after decisions on %v; want the leader's N=2, decided twice", v, rev, err, seen)
	}
	// Without a leader reader the fast read is authoritative.
	seen = nil
	if _, _, err := updateEncoded(t.Context(), nil, readers{fast: fast}, "k", fn); !errors.Is(err, errStale) || len(seen) != 1 {
		t.Fatalf("direct store: %v after %v", err, seen)
	}
	// A confirmed decision stands without a second run.
	seen = nil
	if _, _, err := updateEncoded(t.Context(), nil, readers{fast: latest, latest: latest}, "k", fn); err != nil || len(seen) != 1 {
		t.Fatalf("confirmed decision: %v after %v", err, seen)
	}
	// A leader that cannot be asked leaves the decision unmade: a store error.
	down := func(context.Context, string) (entry, bool, error) { return entry{}, false, ErrStore }
	if _, _, err := updateEncoded(t.Context(), nil, readers{fast: fast, latest: down}, "k", fn); !errors.Is(err, ErrStore) {
		t.Fatalf("leader down: %v, want ErrStore", err)
	}
}

package bus_test

import (
	"context"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/pkg/events"
)

// TestFollowFromResumesAfterSequence: FollowFrom passes each event's stream
// sequence, and resuming after one of them yields exactly the later events
// of that campaign (another campaign's events interleaved are not seen).
func TestFollowFromResumesAfterSequence(t *testing.T) {
	b := natstest.Start(t).Connect(t, "follow")
	var ids []string
	for i := range 4 {
		ids = append(ids, natstest.PublishRequest(t, b, "cmp-a").ID())
		if i%2 == 0 {
			natstest.PublishRequest(t, b, "cmp-b")
		}
	}
	collect := func(after uint64, n int) ([]uint64, []string) {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		var seqs []uint64
		var got []string
		err := b.FollowFrom(ctx, "cmp-a", after, func(seq uint64, e events.Event) bool {
			seqs, got = append(seqs, seq), append(got, e.ID())
			return len(got) < n
		})
		if err != nil {
			t.Fatal(err)
		}
		return seqs, got
	}
	seqs, got := collect(0, 4)
	for i := range ids {
		if got[i] != ids[i] || (i > 0 && seqs[i] <= seqs[i-1]) {
			t.Fatalf("follow from start: %v %v, want %v in increasing sequence", got, seqs, ids)
		}
	}
	_, rest := collect(seqs[1], 2)
	if rest[0] != ids[2] || rest[1] != ids[3] {
		t.Fatalf("resume after %d: %v, want %v", seqs[1], rest, ids[2:])
	}
}

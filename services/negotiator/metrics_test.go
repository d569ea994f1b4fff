package negotiator_test

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/internal/sandbox"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/identity"
)

type negObs struct {
	mu  sync.Mutex
	got []string
}

func (o *negObs) ObserveNegotiation(strategy, outcome string, rounds int, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if d <= 0 {
		outcome += " without duration"
	}
	o.got = append(o.got, strategy+"/"+outcome+"/"+strconv.Itoa(rounds))
}

// TestMetricsObserveEachNegotiationOnce: a finished negotiation is reported
// once with its strategy, outcome and rounds; a redelivery replaying the
// journaled result is not reported again.
func TestMetricsObserveEachNegotiationOnce(t *testing.T) {
	env := natstest.Start(t)
	m := startMarket(t, 0)
	svc := service(t, env, nil, m)
	obs := &negObs{}
	svc.Metrics = obs
	in := packageFound("metered", m.Sellers[0], "pkg-51a00003", sandbox.ProductPreRollVideo, identity.TierAgency, "adaptive", 24.3, 20)
	q := quoteReady(t, mustHandle(t, svc, in))
	_ = mustHandle(t, svc, in)
	fixed := packageFound("metered-public", m.Sellers[0], "pkg-51a00003", sandbox.ProductPreRollVideo, identity.TierPublic, "adaptive", 27, 20)
	_ = mustHandle(t, svc, fixed)
	want := []string{"adaptive/" + events.OutcomeAccepted + "/" + strconv.Itoa(len(q.Rounds)), "/" + events.OutcomeFixedPrice + "/0"}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if len(obs.got) != len(want) || obs.got[0] != want[0] || obs.got[1] != want[1] {
		t.Fatalf("observed %q, want %q", obs.got, want)
	}
}

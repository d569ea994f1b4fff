package negotiator_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/checkfor"
	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/internal/sandbox"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/identity"
	"github.com/dealflow/dealflow/pkg/sellerclient"
	"github.com/dealflow/dealflow/services/negotiator"
)

func startMarket(t *testing.T, latency time.Duration) *sandbox.Market {
	t.Helper()
	cfg := sandbox.MarketConfig{Sellers: []sandbox.SellerConfig{sandbox.DefaultMarket().Sellers[0]}} // StreamMax CTV
	cfg.Sellers[0].Faults.Latency = latency
	m, err := sandbox.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func service(t *testing.T, env *natstest.Env, b *bus.Bus, m *sandbox.Market) *negotiator.Service {
	t.Helper()
	if b == nil {
		b = env.Bus
	}
	sessions, err := bus.OpenStore[negotiator.Session](t.Context(), b, bus.BucketNegotiations)
	if err != nil {
		t.Fatal(err)
	}
	quotes, err := bus.OpenStore[negotiator.Competing](t.Context(), b, bus.BucketQuotes)
	if err != nil {
		t.Fatal(err)
	}
	return &negotiator.Service{Client: sellerclient.New(sellerclient.Config{AllowPrivate: true, RetryBase: time.Millisecond}), Credentials: m.Credentials(),
		Sessions: sessions, Quotes: quotes, Timeout: 20 * time.Second, Log: natstest.Logger()}
}

func packageFound(campaign string, seller *sandbox.Seller, pkgID, product string, tier identity.Tier, strategy string, list, floor float64) events.Event {
	u, _ := sellerclient.CanonicalURL(seller.URL)
	pf := events.PackageFound{CampaignID: campaign, Seller: events.Seller{URL: u, Name: seller.Name, Trust: identity.TrustPreferred, Source: "registry"},
		Disclosure:    events.Disclosure{Tier: tier, Recommended: tier, Cap: tier},
		Package:       events.Package{ID: pkgID, ProductID: product, AdFormats: []string{"video"}, ExactPriceMicros: events.MustMicros(list), FloorPriceMicros: events.MustMicros(floor), Negotiable: tier.CanNegotiate()},
		PackagesTotal: 1,
		Brief:         events.Brief{Name: "n", BudgetMicros: events.MustMicros(20000), StartDate: "2028-06-01", EndDate: "2028-06-30", KPIs: events.KPIs{TargetCPMMicros: 15_000_000, MaxCPMMicros: 26_000_000}}.ForShopping(),
		Negotiation:   events.NegotiationPolicy{Strategy: strategy}}
	e := must(events.New(events.KindPackageFound, events.ChildID(campaign, "test", pkgID+string(tier)), "test", campaign, pf))
	return e
}

func quoteReady(t *testing.T, out []events.Event) events.QuoteReady {
	t.Helper()
	if len(out) != 1 {
		t.Fatalf("%d outputs, want one QuoteReady", len(out))
	}
	q, err := events.PayloadOf[events.QuoteReady](out[0], events.KindQuoteReady)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func TestNegotiationPerTier(t *testing.T) {
	env := natstest.Start(t)
	m := startMarket(t, 0)
	svc := service(t, env, nil, m)
	s := m.Sellers[0]
	cases := []struct {
		tier     identity.Tier
		strategy string
		outcome  string
		list     float64
	}{
		{identity.TierPublic, "adaptive", events.OutcomeFixedPrice, 27},
		{identity.TierSeat, "adaptive", events.OutcomeFixedPrice, 25.65},
		{identity.TierAgency, "threshold", events.OutcomeAccepted, 24.3},
		{identity.TierAgency, "adaptive", events.OutcomeAccepted, 24.3},
		{identity.TierAdvertiser, "competitive", events.OutcomeAccepted, 22.95},
	}
	for i, c := range cases {
		t.Run(string(c.tier)+"/"+c.strategy, func(t *testing.T) {
			campaign := fmt.Sprintf("tier-%d", i)
			q := quoteReady(t, mustHandle(t, svc, packageFound(campaign, s, "pkg-51a00003", sandbox.ProductPreRollVideo, c.tier, c.strategy, c.list, 20)))
			if q.Outcome != c.outcome || q.Tier != c.tier || q.QuoteID == "" || q.QuoteExpiresAt == nil {
				t.Fatalf("outcome %s tier %s quote %q: %+v", q.Outcome, q.Tier, q.QuoteID, q)
			}
			if q.ListCPMMicros <= 0 {
				t.Fatalf("list CPM %d micros", q.ListCPMMicros)
			}
			total, status := s.NegotiationRounds(q.QuoteID)
			if c.outcome == events.OutcomeFixedPrice {
				if len(q.Rounds) != 0 || total != 0 || q.FinalCPMMicros != q.ListCPMMicros {
					t.Fatalf("fixed price negotiated: rounds %d seller rounds %d final %s list %s", len(q.Rounds), total, q.FinalCPMMicros, q.ListCPMMicros)
				}
				return
			}
			if q.FinalCPMMicros >= q.ListCPMMicros || q.FinalCPMMicros > 26_000_000 || q.FinalCPMMicros < 20_000_000 {
				t.Fatalf("final %s, list %s: must be below the list, within max 26 and not below the floor 20", q.FinalCPMMicros.Cents(), q.ListCPMMicros.Cents())
			}
			if status != "accepted" || total < len(q.Rounds) {
				t.Fatalf("seller says %s with %d rounds, buyer recorded %d", status, total, len(q.Rounds))
			}
		})
	}
}

func mustHandle(t *testing.T, svc *negotiator.Service, in events.Event) []events.Event {
	t.Helper()
	pf, err := events.PayloadOf[events.PackageFound](in, events.KindPackageFound)
	if err != nil {
		t.Fatal(err)
	}
	out, err := svc.Handle(context.Background(), in, &pf)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRedeliveryReplaysTheResult(t *testing.T) {
	env := natstest.Start(t)
	m := startMarket(t, 0)
	svc := service(t, env, nil, m)
	in := packageFound("replay", m.Sellers[0], "pkg-51a00003", sandbox.ProductPreRollVideo, identity.TierAgency, "adaptive", 24.3, 20)
	a := mustHandle(t, svc, in)
	before := len(m.Sellers[0].Requests())
	b := mustHandle(t, svc, in)
	if a[0].ID() != b[0].ID() || string(a[0].Data()) != string(b[0].Data()) {
		t.Fatal("redelivery produced a different QuoteReady")
	}
	if after := len(m.Sellers[0].Requests()); after != before {
		t.Fatalf("redelivery sent %d more seller requests", after-before)
	}
}

func TestSellerFailureMidNegotiationIsAnErrorOutcome(t *testing.T) {
	env := natstest.Start(t)
	cases := []struct {
		name   string
		faults sandbox.Faults
		reason string
	}{
		{"5xx", sandbox.Faults{ErrorRate: 1}, "503"},
		{"stall", sandbox.Faults{Latency: 3 * time.Second}, "deadline"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := startMarket(t, 0)
			svc := service(t, env, nil, m)
			svc.Timeout = 1500 * time.Millisecond
			s := m.Sellers[0]
			// Let the quote through, then break the negotiation messages.
			svc.Client = sellerclient.New(sellerclient.Config{AllowPrivate: true, RetryBase: time.Millisecond, HTTPClient: &http.Client{Transport: breakAfterQuote{s: s, f: c.faults}}})
			q := quoteReady(t, mustHandle(t, svc, packageFound("fail-"+c.name, s, "pkg-51a00003", sandbox.ProductPreRollVideo, identity.TierAgency, "adaptive", 24.3, 20)))
			if q.Outcome != events.OutcomeError || !strings.Contains(strings.ToLower(q.Reason), c.reason) || q.QuoteID == "" {
				t.Fatalf("outcome %s reason %q", q.Outcome, q.Reason)
			}
		})
	}
}

// breakAfterQuote applies faults to the seller once its first quote is made.
type breakAfterQuote struct {
	s *sandbox.Seller
	f sandbox.Faults
}

func (b breakAfterQuote) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil && strings.HasSuffix(r.URL.Path, "/api/v1/quotes") {
		_ = b.s.SetFaults(b.f)
	}
	return resp, err
}

// TestReplicaKilledMidNegotiation runs three negotiator replicas on one
// durable consumer and kills one (its connection dies) while negotiations
// are in flight: every package still ends with exactly one QuoteReady and
// the seller never sees a round twice under different keys.
func TestReplicaKilledMidNegotiation(t *testing.T) {
	if testing.Short() {
		t.Skip("long end-to-end test; run without -short")
	}
	env := natstest.Start(t)
	m := startMarket(t, 60*time.Millisecond)
	s := m.Sellers[0]
	const packages = 6
	cfg := bus.StageConfig{Name: negotiator.Stage, Subjects: negotiator.Subjects(), Workers: packages, AckWait: 700 * time.Millisecond,
		MaxDeliver: 10, RetryBase: 50 * time.Millisecond, DrainTimeout: 50 * time.Millisecond}
	type replica struct {
		b      *bus.Bus
		cancel context.CancelFunc
		done   chan struct{}
	}
	var mu sync.Mutex
	handledBy := map[string]map[int]bool{}
	active := map[int]int{} // negotiations in flight per replica
	start := func(i int) replica {
		b := env.Connect(t, fmt.Sprintf("neg-%d", i))
		svc := service(t, env, b, m)
		ctx, cancel := context.WithCancel(context.Background())
		r := replica{b: b, cancel: cancel, done: make(chan struct{})}
		go func() {
			defer close(r.done)
			_ = b.Run(ctx, cfg, func(ctx context.Context, in events.Event, p any) ([]events.Event, error) {
				mu.Lock()
				if handledBy[in.ID()] == nil {
					handledBy[in.ID()] = map[int]bool{}
				}
				handledBy[in.ID()][i] = true
				active[i]++
				mu.Unlock()
				defer func() { mu.Lock(); active[i]--; mu.Unlock() }()
				return bus.Typed(svc.Handle)(ctx, in, p)
			})
		}()
		return r
	}
	replicas := []replica{start(0), start(1), start(2)}
	var ids []string
	for i := 0; i < packages; i++ {
		// Packages of the same seller, each negotiated separately.
		pkg := fmt.Sprintf("pkg-51a0000%d", 1+i%3)
		e := packageFound(fmt.Sprintf("kill-%d", i), s, pkg, sandbox.ProductPreRollVideo, identity.TierAgency, "adaptive", 24.3, 20)
		ids = append(ids, e.ID())
		if err := env.Bus.Publish(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	// Kill a replica that is in the middle of negotiating.
	victim := -1
	deadline := time.Now().Add(20 * time.Second)
	for victim < 0 && time.Now().Before(deadline) {
		if s.NegotiationPosts() >= 2 {
			mu.Lock()
			for i := range replicas {
				if active[i] > 0 {
					victim = i
					break
				}
			}
			mu.Unlock()
		}
		if victim < 0 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	if victim < 0 {
		t.Fatal("no replica was ever mid-negotiation")
	}
	replicas[victim].b.NC.Close()
	replicas[victim].cancel()
	<-replicas[victim].done

	checkfor.Until(t, 60*time.Second, "every package resolved", func() bool {
		n := 0
		for i := 0; i < packages; i++ {
			n += int(env.SubjectCount(t, events.KindQuoteReady.SubjectFor(fmt.Sprintf("kill-%d", i))))
		}
		return n >= packages
	})
	time.Sleep(cfg.AckWait * 2) // let any straggling redelivery publish (it must be de-duplicated)
	for i := 0; i < packages; i++ {
		if n := env.SubjectCount(t, events.KindQuoteReady.SubjectFor(fmt.Sprintf("kill-%d", i))); n != 1 {
			t.Fatalf("package %d: %d QuoteReady events, want exactly 1", i, n)
		}
	}
	// No round twice under a new key: per quote, every distinct key the
	// seller saw is one round in its history.
	keysByQuote := map[string]map[string]bool{}
	for _, r := range s.Requests() {
		if r.Method != "POST" || !strings.HasSuffix(r.Path, "/api/v1/negotiations/messages") {
			continue
		}
		var msg struct {
			Key    string `json:"idempotency_key"`
			Quote  string `json:"quote_id"`
			Action string `json:"action"`
		}
		_ = json.Unmarshal(r.Body, &msg)
		if keysByQuote[msg.Quote] == nil {
			keysByQuote[msg.Quote] = map[string]bool{}
		}
		keysByQuote[msg.Quote][msg.Key] = true
	}
	if len(keysByQuote) != packages {
		t.Fatalf("negotiated %d quotes, want %d", len(keysByQuote), packages)
	}
	for q, keys := range keysByQuote {
		total, status := s.NegotiationRounds(q)
		if len(keys) != total || status == "active" {
			t.Fatalf("quote %s: %d distinct keys sent, seller recorded %d rounds (status %s)", q, len(keys), total, status)
		}
	}
	mu.Lock()
	moved := 0
	for _, id := range ids {
		if !handledBy[id][victim] {
			continue
		}
		for i := range replicas {
			if i != victim && handledBy[id][i] {
				moved++
				break
			}
		}
	}
	mu.Unlock()
	if moved == 0 {
		t.Fatal("no negotiation moved from the killed replica to another: the test did not kill anything mid-way")
	}
	for i, r := range replicas {
		if i != victim {
			r.cancel()
			<-r.done
		}
	}
}

package kitfetcher

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dealflow/dealflow/internal/sandbox"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/identity"
	"github.com/dealflow/dealflow/pkg/sellerclient"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestCatalogCacheTTLAndFailures(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)}
	c := NewCatalogCache(time.Minute, 0, clk.now)
	var calls atomic.Int32
	fail := false
	fetch := func(context.Context) (Catalog, error) {
		n := calls.Add(1)
		if fail {
			return nil, errors.New("seller down")
		}
		return Catalog{"p": {InventoryType: "video", FloorMicros: events.Micros(1_000_000 * int64(n))}}, nil
	}
	ctx := context.Background()
	steps := []struct {
		name      string
		advance   time.Duration
		fail      bool
		wantCalls int32
		wantErr   bool
		wantFloor int64 // in whole dollars, = the fetch that produced it
	}{
		{"miss fetches", 0, false, 1, false, 1},
		{"hit within the TTL", 30 * time.Second, false, 1, false, 1},
		{"hit exactly at the TTL", 30 * time.Second, false, 1, false, 1},
		{"expired: fetched again", time.Second, false, 2, false, 2},
		{"expired and failing: the error, not the stale catalog", 2 * time.Minute, true, 3, true, 0},
		{"failure not cached", 0, true, 4, true, 0},
		{"recovers", 0, false, 5, false, 5},
	}
	var before int32
	for _, s := range steps {
		clk.add(s.advance)
		fail = s.fail
		// Fresh holds exactly what Get would answer without fetching.
		if _, fresh := c.Fresh("http://seller"); fresh != (s.wantCalls == before) {
			t.Fatalf("%s: Fresh says %v before Get", s.name, fresh)
		}
		cat, err := c.Get(ctx, "http://seller", fetch)
		if got := calls.Load(); got != s.wantCalls {
			t.Fatalf("%s: %d fetches, want %d", s.name, got, s.wantCalls)
		}
		if (err != nil) != s.wantErr {
			t.Fatalf("%s: err %v, want error %v", s.name, err, s.wantErr)
		}
		if !s.wantErr && int64(cat["p"].FloorMicros) != s.wantFloor*1_000_000 {
			t.Fatalf("%s: floor %d, want the catalog of fetch %d", s.name, cat["p"].FloorMicros, s.wantFloor)
		}
		if fc, fresh := c.Fresh("http://seller"); fresh == s.wantErr || fresh && fc["p"].FloorMicros != cat["p"].FloorMicros {
			t.Fatalf("%s: Fresh after Get: %v, %v", s.name, fc, fresh)
		}
		before = s.wantCalls
	}
}

// TestCatalogCacheOneFetchForConcurrentMisses runs in a synctest bubble:
// synctest.Wait returns once every caller is blocked (on the one fetch or on
// waiting for it), so the fetch is released only after all of them have
// reached the cache, without sleeping and hoping.
func TestCatalogCacheOneFetchForConcurrentMisses(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		c := NewCatalogCache(time.Minute, 0, nil)
		var calls atomic.Int32
		release := make(chan struct{})
		fetch := func(context.Context) (Catalog, error) {
			calls.Add(1)
			<-release
			return Catalog{"p": {InventoryType: "ctv"}}, nil
		}
		const n = 20
		var wg sync.WaitGroup
		got := make([]Catalog, n)
		for i := range n {
			wg.Go(func() { got[i], _ = c.Get(context.Background(), "http://seller", fetch) })
		}
		synctest.Wait() // every caller is in the cache, one of them fetching
		close(release)
		wg.Wait()
		if calls.Load() != 1 {
			t.Fatalf("%d fetches for %d concurrent callers, want 1", calls.Load(), n)
		}
		for i, cat := range got {
			if cat["p"].InventoryType != "ctv" {
				t.Fatalf("caller %d got %v", i, cat)
			}
		}
	})
}

func TestCatalogCacheWaiterHonoursItsContext(t *testing.T) {
	t.Parallel()
	c := NewCatalogCache(time.Minute, 0, nil)
	release := make(chan struct{})
	defer close(release)
	started := make(chan struct{})
	go func() {
		_, _ = c.Get(context.Background(), "http://slow", func(context.Context) (Catalog, error) {
			close(started)
			<-release
			return Catalog{}, nil
		})
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := c.Get(ctx, "http://slow", func(context.Context) (Catalog, error) {
		t.Error("a second fetch started while the first was in flight")
		return nil, nil
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the waiter's deadline", err)
	}
}

func TestCatalogCacheBounded(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)}
	c := NewCatalogCache(time.Hour, 2, clk.now)
	fetch := func(context.Context) (Catalog, error) { return Catalog{}, nil }
	for _, u := range []string{"http://a", "http://b", "http://c"} {
		clk.add(time.Second)
		if _, err := c.Get(context.Background(), u, fetch); err != nil {
			t.Fatal(err)
		}
	}
	if c.Len() != 2 {
		t.Fatalf("%d catalogs held, want at most 2", c.Len())
	}
	// The oldest (a) went; b and c are still hits.
	var refetched []string
	for _, u := range []string{"http://b", "http://c", "http://a"} {
		_, _ = c.Get(context.Background(), u, func(context.Context) (Catalog, error) {
			refetched = append(refetched, u)
			return Catalog{}, nil
		})
	}
	if len(refetched) != 1 || refetched[0] != "http://a" {
		t.Fatalf("refetched %v, want only the evicted http://a", refetched)
	}
}

// TestCatalogSharedBetweenCampaigns: with a cache, a second campaign
// shopping the same seller reads its catalog from the cache (one GET
// /products at the seller) and resolves the same product floors.
func TestCatalogSharedBetweenCampaigns(t *testing.T) {
	m := market(t, map[string]sandbox.Faults{"Seat Seller": {}})
	s := m.Seller("Seat Seller")
	s.ResetRequests()
	svc := &Service{Client: sellerclient.New(sellerclient.Config{AllowPrivate: true}), Credentials: credsFor(m),
		SellerTimeout: 5 * time.Second, Catalogs: NewCatalogCache(time.Minute, 0, nil)}
	var floors [2][]int64
	for i := range 2 {
		out, err := handle(svc, sellerFound(s.URL, identity.TierSeat, videoBrief))
		if err != nil || len(out) == 0 {
			t.Fatalf("campaign %d: %v, %d events", i, err, len(out))
		}
		for _, e := range out {
			pf := must(events.PayloadOf[events.PackageFound](e, events.KindPackageFound))
			floors[i] = append(floors[i], int64(pf.Package.ProductFloorCPMMicros))
		}
	}
	products := 0
	for _, r := range s.Requests() {
		if r.Path == "/products" {
			products++
		}
	}
	if products != 1 {
		t.Fatalf("%d catalog reads for two campaigns, want 1", products)
	}
	if len(floors[0]) == 0 || floors[0][0] <= 0 || len(floors[0]) != len(floors[1]) || floors[0][0] != floors[1][0] {
		t.Fatalf("product floors %v then %v: want the same positive floors", floors[0], floors[1])
	}
}

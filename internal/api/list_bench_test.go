package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dealflow/dealflow/internal/app"
	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/campaign"
	"github.com/dealflow/dealflow/internal/config"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/identity"
)

// benchStatuses is the status mix of the seeded campaigns (most ended).
var benchStatuses = []events.CampaignStatus{
	events.StatusCompleted, events.StatusCompleted, events.StatusCompleted, events.StatusCompleted, events.StatusCompleted,
	events.StatusCompleted, events.StatusPartial, events.StatusFailed, events.StatusShopping, events.StatusAwaitingApproval,
}

// seedCampaigns records n campaigns through a campaign store of their
// own (another process, for the API's index, which loads them through its
// watch): requests like the demo's, in the statuses of benchStatuses, a
// tenth with two deals.
func seedCampaigns(tb testing.TB, b *bus.Bus, n int) []string {
	tb.Helper()
	ctx := context.Background()
	store, err := campaign.Open(ctx, b)
	if err != nil {
		tb.Fatal(err)
	}
	defer store.Close()
	ids := make([]string, n)
	at := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	next := make(chan int, n)
	for i := range n {
		ids[i] = fmt.Sprintf("cmp-bench%07d", i)
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				id := ids[i]
				if _, _, err := store.Transition(ctx, id, func(c *campaign.Campaign, _ bool) ([]events.Event, error) {
					*c = *campaign.New(benchRequest(id), at.Add(time.Duration(i)*time.Second))
					c.Status = benchStatuses[i%len(benchStatuses)]
					if i%10 == 0 {
						for k := range 2 {
							c.Deals = append(c.Deals, events.DealBooked{CampaignID: id, SellerURL: "https://seller.example", PackageID: fmt.Sprint("p", k),
								DealID: fmt.Sprint("d", i, k), SpendMicros: 1_000_000_000, Impressions: 50_000, CPMMicros: 20_000_000})
						}
					}
					return nil, nil
				}); err != nil {
					tb.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return ids
}

// benchRequest is a campaign request like the demo's.
func benchRequest(id string) events.CampaignRequested {
	return events.CampaignRequested{
		CampaignID: id,
		Brief: events.Brief{
			Name: "Spring launch - CTV and video", Objectives: []string{"awareness", "reach"}, BudgetMicros: 50_000_000_000, Currency: "USD",
			StartDate: "2027-02-01", EndDate: "2027-03-01", TargetAudience: map[string]any{"age": "25-54", "geo": "US"},
			KPIs:     events.KPIs{TargetCPMMicros: 18_000_000, MaxCPMMicros: 32_000_000},
			Channels: []string{"ctv", "video"}, Geo: []string{"US"}, PerSellerCapMicros: 20_000_000_000, DealType: "PD",
		},
		Buyer: identity.BuyerIdentity{SeatID: "ttd-seat-123", SeatName: "Demo Seat", DSPPlatform: "ttd", AgencyID: "omnicom-456",
			AgencyName: "Demo Agency", AdvertiserID: "acme-789", AdvertiserName: "Acme Soda", AdvertiserIndustry: "CPG"},
		AutoApprove: true,
		Negotiation: events.NegotiationPolicy{Strategy: "adaptive"},
	}
}

// benchCampaigns is DEALFLOW_BENCH_CAMPAIGNS, default 100,000.
func benchCampaigns(tb testing.TB) int {
	if v := os.Getenv("DEALFLOW_BENCH_CAMPAIGNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			tb.Fatalf("DEALFLOW_BENCH_CAMPAIGNS=%q", v)
		}
		return n
	}
	return 100_000
}

// BenchmarkListBookings measures GET /bookings on one node with 100,000
// campaigns (DEALFLOW_BENCH_CAMPAIGNS) and 100 concurrent clients, each
// asking for a page (limit 20 or 100) at a random offset, with or without
// a status filter, over real HTTP on 127.0.0.1; and single-campaign reads
// (GET /bookings/{id}) made while the 100 clients list. It reports the
// latency percentiles and how long the API's index took to load the
// campaigns through its watch.
func BenchmarkListBookings(b *testing.B) {
	n := benchCampaigns(b)
	cfg := config.Defaults()
	cfg.Stages, cfg.NATSPort, cfg.DataDir, cfg.HTTPAddr = nil, 0, b.TempDir(), "127.0.0.1:0"
	a, err := app.Start(context.Background(), cfg, zerolog.Nop(), app.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(a.Stop)
	seedStart := time.Now()
	ids := seedCampaigns(b, a.Bus, n)
	seeded := time.Since(seedStart)
	base := "http://" + a.HTTPAddr
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 200}, Timeout: 30 * time.Second}
	get := func(url string) (time.Duration, error) {
		start := time.Now()
		resp, err := client.Get(url)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("GET %s: %d", url, resp.StatusCode)
		}
		return time.Since(start), nil
	}
	loadStart := time.Now()
	for {
		resp, err := client.Get(base + "/bookings?limit=1")
		if err != nil {
			b.Fatal(err)
		}
		var page struct{ Total int }
		_ = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if page.Total == n {
			break
		}
		if time.Since(loadStart) > 2*time.Minute {
			b.Fatalf("the index holds %d of %d campaigns after 2 minutes", page.Total, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	caughtUp := time.Since(loadStart)
	// A fresh index (a process starting now) replays every record.
	fresh, err := campaign.Open(context.Background(), a.Bus)
	if err != nil {
		b.Fatal(err)
	}
	loadStart = time.Now()
	if p, err := fresh.List(context.Background(), campaign.ListQuery{Limit: 1}); err != nil || p.Total != n {
		b.Fatalf("a fresh index lists %d of %d: %v", p.Total, n, err)
	}
	loaded := time.Since(loadStart)
	fresh.Close()
	b.Logf("%d campaigns seeded in %s; the API's index listed the last %s later; a fresh index loads them in %s",
		n, seeded.Round(time.Millisecond), caughtUp.Round(time.Millisecond), loaded.Round(time.Millisecond))

	const clients = 100
	listURL := func(r *rand.Rand) string {
		limit := 20
		if r.IntN(4) == 0 {
			limit = 100
		}
		if r.IntN(2) == 0 {
			st := benchStatuses[r.IntN(len(benchStatuses))]
			return fmt.Sprintf("%s/bookings?status=%s&limit=%d&offset=%d", base, st, limit, r.IntN(n/len(benchStatuses)+1))
		}
		return fmt.Sprintf("%s/bookings?limit=%d&offset=%d", base, limit, r.IntN(n))
	}
	// run spreads b.N requests over workers and returns the latencies.
	run := func(b *testing.B, workers int, url func(r *rand.Rand) string) []time.Duration {
		var (
			mu   sync.Mutex
			lat  = make([]time.Duration, 0, b.N)
			wg   sync.WaitGroup
			next = make(chan struct{}, b.N)
		)
		for range b.N {
			next <- struct{}{}
		}
		close(next)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(w), 1))
				for range next {
					d, err := get(url(r))
					if err != nil {
						b.Error(err)
						return
					}
					mu.Lock()
					lat = append(lat, d)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		return lat
	}
	report := func(b *testing.B, lat []time.Duration) {
		slices.Sort(lat)
		if len(lat) == 0 {
			return
		}
		pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
		b.ReportMetric(pct(0.5), "p50-ms")
		b.ReportMetric(pct(0.99), "p99-ms")
		b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
		b.ReportMetric(loaded.Seconds(), "index-load-s")
		b.ReportMetric(0, "ns/op")
	}
	b.Run(fmt.Sprintf("list/campaigns=%d/clients=%d", n, clients), func(b *testing.B) {
		start := time.Now()
		lat := run(b, clients, listURL)
		b.ReportMetric(float64(len(lat))/time.Since(start).Seconds(), "req/s")
		report(b, lat)
	})
	b.Run(fmt.Sprintf("get/campaigns=%d/clients=4", n), func(b *testing.B) {
		report(b, run(b, 4, func(r *rand.Rand) string { return base + "/bookings/" + ids[r.IntN(len(ids))] }))
	})
	b.Run(fmt.Sprintf("get-while-listing/campaigns=%d/clients=%d", n, clients), func(b *testing.B) {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for w := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(w), 2))
				for ctx.Err() == nil {
					if _, err := get(listURL(r)); err != nil && ctx.Err() == nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		lat := run(b, 4, func(r *rand.Rand) string { return base + "/bookings/" + ids[r.IntN(len(ids))] })
		cancel()
		wg.Wait()
		report(b, lat)
	})
}

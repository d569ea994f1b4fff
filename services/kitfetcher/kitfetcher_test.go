package kitfetcher

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/internal/sandbox"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/identity"
	"github.com/dealflow/dealflow/pkg/sellerclient"
)

// market runs copies of one default seller under new names with faults.
func market(t *testing.T, faults map[string]sandbox.Faults) *sandbox.Market {
	t.Helper()
	base := sandbox.DefaultMarket().Sellers[1] // Northwind Video: video + display packages
	cfg := sandbox.MarketConfig{}
	for name, f := range faults {
		s := base
		s.Name, s.Faults = name, f
		cfg.Sellers = append(cfg.Sellers, s)
	}
	m, err := sandbox.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func credsFor(m *sandbox.Market) *identity.Credentials {
	c := must(identity.ParseCredentials([]byte(`{}`)))
	for _, s := range m.Sellers {
		for tier, k := range s.Keys {
			t := must(identity.ParseTier(tier))
			c.Set(s.URL, t, k)
		}
	}
	return c
}

func sellerFound(url string, tier identity.Tier, brief events.Brief) events.Event {
	full := identity.BuyerIdentity{SeatID: "seat-1", SeatName: "Seat", AgencyID: "agency-1", AgencyName: "Agency", AdvertiserID: "adv-1", AdvertiserName: "Adv"}
	sf := events.SellerFound{CampaignID: "c1", Seller: events.Seller{URL: url, Trust: identity.TrustVerified, Source: "registry"},
		Disclosure: events.Disclosure{Tier: tier, Recommended: tier, Cap: tier}, Brief: brief.ForShopping(), Buyer: identity.BuildIdentity(full, tier)}
	e := must(events.New(events.KindSellerFound, "sf-"+url, "test", "c1", sf))
	return e
}

var videoBrief = events.Brief{Name: "v", BudgetMicros: events.MustMicros(10000), StartDate: "2028-06-01", EndDate: "2028-06-30", Channels: []string{"video"}}

func TestSellerFailuresSkipWithReasonOthersArrive(t *testing.T) {
	m := market(t, map[string]sandbox.Faults{
		"Good":      {},
		"Down":      {Down: true},
		"Slow":      {Latency: 5 * time.Second},
		"Garbage":   {Garbage: true},
		"Truncated": {Truncated: true},
		"Oversized": {Oversized: true},
		"Flaky":     {ErrorRate: 1},
	})
	var logs natstest.LogBuffer
	svc := &Service{Client: sellerclient.New(sellerclient.Config{AllowPrivate: true, RetryBase: time.Millisecond}), Credentials: credsFor(m),
		SellerTimeout: 700 * time.Millisecond, Log: zerolog.New(&logs)}
	want := map[string]string{"Good": "", "Down": "unreachable", "Slow": "timeout", "Garbage": "bad_response", "Truncated": "bad_response",
		"Oversized": "oversized_response", "Flaky": "unreachable"}
	var mu sync.Mutex
	got := map[string][]events.Event{}
	var wg sync.WaitGroup
	for _, s := range m.Sellers {
		wg.Add(1)
		go func() { // the stage's worker pool fetches sellers concurrently
			defer wg.Done()
			out, err := handle(svc, sellerFound(s.URL, identity.TierAgency, videoBrief))
			if err != nil {
				t.Errorf("%s: handler error %v (a seller failure must be a skip)", s.Name, err)
			}
			mu.Lock()
			got[s.Name] = out
			mu.Unlock()
		}()
	}
	wg.Wait()
	for name, code := range want {
		out := got[name]
		if code == "" {
			if len(out) != 1 || out[0].Type() != events.KindPackageFound.Type {
				t.Fatalf("%s: %d events, want its one video package", name, len(out))
			}
			pf, _ := events.PayloadOf[events.PackageFound](out[0], events.KindPackageFound)
			if pf.Package.ExactPriceMicros != 19_800_000 || pf.Package.FloorPriceMicros != 16_000_000 || !pf.Package.Negotiable || pf.Package.ProductID == "" || pf.PackagesTotal != 1 {
				t.Fatalf("%s: package %+v", name, pf.Package)
			}
			continue
		}
		if len(out) != 1 {
			t.Fatalf("%s: %d events", name, len(out))
		}
		sk, err := events.PayloadOf[events.SellerSkipped](out[0], events.KindSellerSkipped)
		if err != nil || sk.Code != code || sk.Reason == "" || sk.Stage != Stage {
			t.Fatalf("%s: skip %+v (%v), want code %s with a reason", name, sk, err, code)
		}
	}
	// The log tells the same story: a WARN per skipped seller with its code,
	// an info line for the seller fetched, each with campaign_id and seller.
	urls := map[string]string{}
	for _, s := range m.Sellers {
		urls[s.URL] = s.Name
	}
	seen := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var e map[string]any
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		name := urls[fmt.Sprint(e["seller"])]
		if e["campaign_id"] != "c1" || name == "" {
			t.Fatalf("line without campaign_id or seller: %s", l)
		}
		code := want[name]
		switch {
		case code == "" && (e["level"] != "info" || e["message"] != "media kit fetched" || e["packages"] != float64(1)):
			t.Fatalf("%s: %s", name, l)
		case code != "" && (e["level"] != "warn" || e["message"] != "seller skipped" || e["code"] != code):
			t.Fatalf("%s: %s, want a warning with code %s", name, l, code)
		}
		seen[name] = true
	}
	if len(seen) != len(want) {
		t.Fatalf("log lines for %v, want every seller\n%s", seen, logs.String())
	}
}

func TestDisclosureNeverExceedsTier(t *testing.T) {
	m := market(t, map[string]sandbox.Faults{"Seat Seller": {}, "Public Seller": {}})
	svc := &Service{Client: sellerclient.New(sellerclient.Config{AllowPrivate: true}), Credentials: credsFor(m), SellerTimeout: 5 * time.Second}
	cases := []struct {
		seller string
		tier   identity.Tier
		brief  events.Brief
	}{
		{"Seat Seller", identity.TierSeat, videoBrief},
		{"Public Seller", identity.TierPublic, videoBrief},
	}
	withKeywords := videoBrief
	withKeywords.Keywords = []string{"news"}
	cases = append(cases, struct {
		seller string
		tier   identity.Tier
		brief  events.Brief
	}{"Seat Seller", identity.TierSeat, withKeywords})
	for _, c := range cases {
		s := m.Seller(c.seller)
		s.ResetRequests()
		out, err := handle(svc, sellerFound(s.URL, c.tier, c.brief))
		if err != nil || len(out) == 0 {
			t.Fatalf("%s: %v %d", c.seller, err, len(out))
		}
		reqs := s.Requests()
		if len(reqs) == 0 {
			t.Fatalf("%s: no requests recorded", c.seller)
		}
		for _, r := range reqs {
			key := r.Header.Get("X-Api-Key") + r.Header.Get("Authorization")
			switch c.tier {
			case identity.TierPublic:
				if key != "" {
					t.Fatalf("public seller got a credential: %q", key)
				}
			case identity.TierSeat:
				if r.Path == "/products" {
					// The catalog (for the product's floor and deal types) is
					// an unauthenticated read: no credential at all.
					if key != "" {
						t.Fatalf("catalog read carried a credential: %q", key)
					}
					continue
				}
				if key != s.Keys["seat"] {
					t.Fatalf("seat seller got key %q, want the seat key", key)
				}
			}
			blob := strings.ToLower(r.Path + "?" + r.RawQuery + " " + string(r.Body))
			for _, leak := range []string{"agency-1", "adv-1", "agency_id", "advertiser_id", s.Keys["agency"], s.Keys["advertiser"]} {
				if strings.Contains(blob, strings.ToLower(leak)) {
					t.Fatalf("%s (%s) received %q in %s", c.seller, c.tier, leak, blob)
				}
			}
		}
	}
}

func TestFit(t *testing.T) {
	p := func(id string, formats []string, devices []int, geo, tags []string, price float64) sellerclient.Package {
		return sellerclient.Package{PackageID: id, AdFormats: formats, DeviceTypes: devices, GeoTargets: geo, Tags: tags, ExactPrice: &price}
	}
	pkgs := []sellerclient.Package{
		p("ctv-us", []string{"ctv", "video"}, []int{3}, []string{"US"}, []string{"sports"}, 30),
		p("video-ny", []string{"Video"}, []int{1, 2}, []string{"US-NY"}, []string{"news"}, 20),
		p("display", []string{"display"}, []int{2}, []string{"US"}, nil, 10),
		p("video-uk", []string{"video"}, nil, []string{"GB"}, nil, 15),
		p("ctv-us", []string{"ctv"}, nil, nil, nil, 1),
	}
	cases := []struct {
		name  string
		brief events.Brief
		want  []string
	}{
		{"channels", events.Brief{Channels: []string{"video"}}, []string{"video-uk", "video-ny", "ctv-us"}},
		{"formats beat channels", events.Brief{Channels: []string{"video"}, AdFormats: []string{"display"}}, []string{"display"}},
		{"devices", events.Brief{Channels: []string{"video", "ctv"}, DeviceTypes: []int{3}}, []string{"video-uk", "ctv-us"}},
		{"geo prefix both ways", events.Brief{Channels: []string{"video"}, Geo: []string{"US"}}, []string{"video-ny", "ctv-us"}},
		{"geo state", events.Brief{Channels: []string{"video"}, Geo: []string{"us-ny"}}, []string{"video-ny", "ctv-us"}},
		{"tags", events.Brief{Channels: []string{"video"}, Tags: []string{"SPORTS"}}, []string{"ctv-us"}},
		{"nothing", events.Brief{Channels: []string{"audio"}}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, p := range Fit(pkgs, c.brief.ForShopping()) {
				got = append(got, p.ID)
			}
			if strings.Join(got, ",") != strings.Join(c.want, ",") {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
}

// handle calls svc.Handle as the stage runner does: with in's payload.
func handle(svc *Service, in events.Event) ([]events.Event, error) {
	sf, err := events.PayloadOf[events.SellerFound](in, events.KindSellerFound)
	if err != nil {
		return nil, err
	}
	return svc.Handle(context.Background(), in, &sf)
}

// TestNoFittingPackagesReasonDoesNotCopyTheBrief: the skip of a seller
// with no fitting package counts the brief's lists, never copies them: the
// reason is in every such seller's event and in the campaign record (a
// 45 KB geo list copied into each pushed the record past 1 MiB).
func TestNoFittingPackagesReasonDoesNotCopyTheBrief(t *testing.T) {
	m := market(t, map[string]sandbox.Faults{"Good": {}})
	svc := &Service{Client: sellerclient.New(sellerclient.Config{AllowPrivate: true, RetryBase: time.Millisecond}), Credentials: credsFor(m),
		SellerTimeout: 5 * time.Second, Log: zerolog.Nop()}
	brief := videoBrief
	for i := range events.MaxGeo {
		brief.Geo = append(brief.Geo, fmt.Sprintf("ZZ-%04d-%s", i, strings.Repeat("g", 40)))
	}
	out, err := handle(svc, sellerFound(m.Sellers[0].URL, identity.TierAgency, brief))
	if err != nil || len(out) != 1 {
		t.Fatalf("%v %d events", err, len(out))
	}
	sk, err := events.PayloadOf[events.SellerSkipped](out[0], events.KindSellerSkipped)
	if err != nil || sk.Code != "no_fitting_packages" {
		t.Fatalf("%v %+v", err, sk)
	}
	if len(sk.Reason) > events.MaxReasonLen || strings.Contains(sk.Reason, "ZZ-") || !strings.Contains(sk.Reason, "500 geo targets") {
		t.Fatalf("reason of %d bytes: %.200q", len(sk.Reason), sk.Reason)
	}
}

package discoverer

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/identity"
	"github.com/dealflow/dealflow/pkg/sellerclient"
)

// fakeDir is a scripted registry.
type fakeDir struct {
	sellers []events.Seller
	err     error
	trust   map[string]identity.Trust
	calls   int
}

func (f *fakeDir) Discover(ctx context.Context, reg sellerclient.Registry, caps []string) ([]events.Seller, error) {
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	var out []events.Seller
	for _, s := range f.sellers {
		if matchesCaps(s.Capabilities, caps) {
			out = append(out, s)
		}
	}
	return out, nil
}

func (f *fakeDir) Verify(ctx context.Context, reg sellerclient.Registry, url string) (identity.Trust, bool, error) {
	if f.err != nil {
		return identity.TrustUnknown, false, f.err
	}
	t, ok := f.trust[url]
	if !ok {
		return identity.TrustUnknown, false, nil
	}
	return t, true, nil
}

func campaign(id string) events.Event {
	req := events.CampaignRequested{CampaignID: id, Brief: events.Brief{Name: "c", BudgetMicros: events.MustMicros(50000), StartDate: "2028-06-01", EndDate: "2028-06-30",
		Channels: []string{"ctv"}}, Buyer: identity.BuyerIdentity{SeatID: "s", SeatName: "S", AgencyID: "a", AdvertiserID: "adv"}, RequestedAt: time.Now()}
	e := must(events.New(events.KindCampaignRequested, "in-"+id, "test", id, req))
	return e
}

func service(dir *fakeDir, known []KnownSeller, creds *identity.Credentials) *Service {
	if creds == nil {
		creds = must(identity.ParseCredentials([]byte(`{"default":{"seat":"k1","agency":"k2","advertiser":"k3"}}`)))
	}
	return &Service{
		Finder: &Finder{Dir: dir, Registries: []sellerclient.Registry{{URL: "http://registry.test", Kind: sellerclient.RegistrySimple}}, Known: known,
			Cache: NewCache(time.Minute, nil), Timeout: time.Second, Log: zerolog.Nop()},
		Strategy: identity.DefaultStrategy(), Caps: identity.DefaultCaps(), Credentials: creds, Resolve: fakeDNS(nil),
	}
}

// fakeDNS answers host lookups without DNS: names in alias resolve to
// their address, other names to an address of their own (10.x.y.z from a
// hash of the name), and names ending in ".nxdomain" do not resolve.
func fakeDNS(alias map[string]string) Resolver {
	return func(_ context.Context, host string) ([]netip.Addr, error) {
		if a, ok := alias[host]; ok {
			return []netip.Addr{netip.MustParseAddr(a)}, nil
		}
		if strings.HasSuffix(host, ".nxdomain") {
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		}
		h := fnv.New32a()
		_, _ = h.Write([]byte(host))
		v := h.Sum32()
		return []netip.Addr{netip.AddrFrom4([4]byte{10, byte(v >> 16), byte(v >> 8), byte(v)})}, nil
	}
}

type summary struct {
	found   map[string]events.SellerFound
	skipped map[string]events.SellerSkipped
	done    events.DiscoveryCompleted
	rejects []events.CampaignRejected
}

// handle calls s.Handle as the stage runner does: with in's payload.
func handle(s *Service, in events.Event) ([]events.Event, error) {
	req, err := events.PayloadOf[events.CampaignRequested](in, events.KindCampaignRequested)
	if err != nil {
		return nil, err
	}
	return s.Handle(context.Background(), in, &req)
}

func run(t *testing.T, s *Service, in events.Event) summary {
	t.Helper()
	out, err := handle(s, in)
	if err != nil {
		t.Fatal(err)
	}
	sum := summary{found: map[string]events.SellerFound{}, skipped: map[string]events.SellerSkipped{}}
	ids := map[string]bool{}
	for _, e := range out {
		if ids[e.ID()] {
			t.Fatalf("duplicate output id %s", e.ID())
		}
		ids[e.ID()] = true
		p, _, err := events.Payload(e)
		if err != nil {
			t.Fatal(err)
		}
		switch v := p.(type) {
		case *events.SellerFound:
			sum.found[v.Seller.URL] = *v
		case *events.SellerSkipped:
			sum.skipped[v.SellerURL] = *v
		case *events.DiscoveryCompleted:
			sum.done = *v
		case *events.CampaignRejected:
			sum.rejects = append(sum.rejects, *v)
		}
	}
	return sum
}

func TestHandleTrustAndDisclosure(t *testing.T) {
	dir := &fakeDir{sellers: []events.Seller{
		{URL: "http://pref.test", Trust: identity.TrustPreferred, Capabilities: []string{"ctv"}},
		{URL: "http://ver.test/", Trust: identity.TrustVerified, Capabilities: []string{"CTV", "video"}},
		{URL: "http://reg.test", Trust: identity.TrustRegistered, Capabilities: []string{"ctv"}},
		{URL: "http://blocked.test", Trust: identity.TrustBlocked, Capabilities: []string{"ctv"}},
		{URL: "http://unknown.test", Trust: identity.TrustUnknown, Capabilities: []string{"ctv"}},
		{URL: "http://display.test", Trust: identity.TrustPreferred, Capabilities: []string{"display"}},
		{URL: "HTTP://VER.TEST", Trust: identity.TrustVerified, Capabilities: []string{"ctv"}},
	}}
	sum := run(t, service(dir, nil, nil), campaign("c1"))
	want := map[string]identity.Tier{"http://pref.test": identity.TierAdvertiser, "http://ver.test": identity.TierAgency, "http://reg.test": identity.TierSeat}
	if len(sum.found) != len(want) {
		t.Fatalf("found %v", keys(sum.found))
	}
	for u, tier := range want {
		f, ok := sum.found[u]
		if !ok || f.Disclosure.Tier != tier {
			t.Fatalf("%s: found=%v tier=%s, want %s", u, ok, f.Disclosure.Tier, tier)
		}
		if f.Buyer.SellerTier() != tier && !(tier == identity.TierAdvertiser && f.Buyer.AdvertiserID != "") {
			t.Fatalf("%s: masked identity %+v does not match tier %s", u, f.Buyer, tier)
		}
		if tier.Rank() < identity.TierAgency.Rank() && (f.Buyer.AgencyID != "" || f.Buyer.AdvertiserID != "") {
			t.Fatalf("%s: identity above the cap travels on: %+v", u, f.Buyer)
		}
	}
	if sk := sum.skipped["http://blocked.test"]; sk.Code != "blocked" {
		t.Fatalf("blocked: %+v", sk)
	}
	if sk := sum.skipped["http://unknown.test"]; sk.Code != "untrusted" || !strings.Contains(sk.Reason, "allow_unknown_sellers") {
		t.Fatalf("unknown: %+v", sk)
	}
	if _, ok := sum.found["http://display.test"]; ok {
		t.Fatal("capability filter let a display-only seller through")
	}
	if len(sum.done.Sellers) != 3 || sum.done.Skipped != 2 {
		t.Fatalf("completed %+v", sum.done)
	}
}

func TestHandleUnknownOptInSeesPublicOnly(t *testing.T) {
	dir := &fakeDir{sellers: []events.Seller{{URL: "http://unknown.test", Trust: identity.TrustUnknown}}}
	in := campaign("c2")
	req := must(events.PayloadOf[events.CampaignRequested](in, events.KindCampaignRequested))
	req.AllowUnknownSellers = true
	in = must(events.New(events.KindCampaignRequested, "in-c2", "test", "c2", req))
	sum := run(t, service(dir, nil, nil), in)
	f, ok := sum.found["http://unknown.test"]
	if !ok || f.Disclosure.Tier != identity.TierPublic || !f.Buyer.IsZero() {
		t.Fatalf("unknown opt-in: %+v", f)
	}
}

func TestHandleTierLimitedByCredentials(t *testing.T) {
	creds := must(identity.ParseCredentials([]byte(`{"sellers":{"http://pref.test":{"seat":"k1"}}}`)))
	dir := &fakeDir{sellers: []events.Seller{{URL: "http://pref.test", Trust: identity.TrustPreferred}}}
	sum := run(t, service(dir, nil, creds), campaign("c3"))
	if f := sum.found["http://pref.test"]; f.Disclosure.Tier != identity.TierSeat || f.Disclosure.Recommended != identity.TierAdvertiser {
		t.Fatalf("disclosure %+v, want seat (only credential) recommended advertiser", f.Disclosure)
	}
}

func TestRegistryDownFallsBack(t *testing.T) {
	dir := &fakeDir{sellers: []events.Seller{{URL: "http://pref.test", Trust: identity.TrustPreferred}}}
	known := []KnownSeller{{URL: "http://known.test", Trust: identity.TrustVerified, Capabilities: []string{"ctv"}}}
	s := service(dir, known, nil)
	clk := &fakeClock{t: time.Unix(0, 0)}
	s.Finder.Cache = NewCache(time.Minute, clk.now)

	first := run(t, s, campaign("c4"))
	// One listing for the campaign's channels, one of every blocked seller.
	if len(first.found) != 2 || dir.calls != 2 {
		t.Fatalf("first: found %v calls %d", keys(first.found), dir.calls)
	}
	run(t, s, campaign("c5"))
	if dir.calls != 2 {
		t.Fatalf("second discovery within TTL called the registry (%d calls)", dir.calls)
	}
	clk.advance(2 * time.Minute)
	dir.err = errors.New("connection refused")
	stale := run(t, s, campaign("c6"))
	if f, ok := stale.found["http://pref.test"]; !ok || f.Seller.Source != "registry-stale" {
		t.Fatalf("stale fallback: %+v", stale.found)
	}
	if src := stale.done.Sources[0]; src.OK || !strings.Contains(src.Detail, "last answer") {
		t.Fatalf("source status %+v", src)
	}
	s.Finder.Cache.Clear()
	down := run(t, s, campaign("c7"))
	if len(down.found) != 1 || down.found["http://known.test"].Seller.Source != "known" {
		t.Fatalf("known fallback: %v", keys(down.found))
	}
	if !strings.Contains(down.done.Sources[1].Detail, "fallback") {
		t.Fatalf("sources %+v", down.done.Sources)
	}
}

func TestHandleRejectsInvalidBrief(t *testing.T) {
	req := events.CampaignRequested{CampaignID: "c8", Brief: events.Brief{Name: "c", BudgetMicros: events.MustMicros(10), StartDate: "2028-07-01", EndDate: "2028-06-01"}}
	in := must(events.New(events.KindCampaignRequested, "in-c8", "test", "c8", req))
	sum := run(t, service(&fakeDir{}, nil, nil), in)
	if len(sum.rejects) != 1 || sum.rejects[0].Field != "brief.end_date" || len(sum.found) != 0 {
		t.Fatalf("rejects %+v", sum.rejects)
	}
}

func TestHandleIsDeterministic(t *testing.T) {
	dir := &fakeDir{sellers: []events.Seller{{URL: "http://pref.test", Trust: identity.TrustPreferred}}}
	s := service(dir, nil, nil)
	a := must(handle(s, campaign("c9")))
	b := must(handle(s, campaign("c9")))
	if len(a) != len(b) {
		t.Fatal("different output counts")
	}
	for i := range a {
		if a[i].ID() != b[i].ID() {
			t.Fatalf("output %d id differs on redelivery: %s vs %s", i, a[i].ID(), b[i].ID())
		}
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestBlockedFollowsTheSeller(t *testing.T) {
	dir := &fakeDir{sellers: []events.Seller{
		{URL: "http://blocked.test", Name: "Bad", AgentID: "ag-1", Trust: identity.TrustBlocked, Capabilities: []string{"ctv"}},
		{URL: "http://mirror.test", AgentID: "ag-1", Trust: identity.TrustVerified, Capabilities: []string{"ctv"}},
		{URL: "http://good.test", AgentID: "ag-2", Trust: identity.TrustVerified, Capabilities: []string{"ctv"}},
	}, trust: map[string]identity.Trust{"http://blocked.test": identity.TrustBlocked}}
	known := []KnownSeller{{URL: "HTTP://Blocked.Test.:80/", Trust: identity.TrustPreferred}}
	in := campaign("c9")
	req, _ := events.PayloadOf[events.CampaignRequested](in, events.KindCampaignRequested)
	req.AllowUnknownSellers = true
	req.Sellers = []string{"http://blocked.test/other", "ftp://blocked.test", "http://elsewhere.test"}
	in, _ = events.New(events.KindCampaignRequested, "in-c9", "test", "c9", req)
	sum := run(t, service(dir, known, nil), in)
	for url, want := range map[string]string{"http://blocked.test": "blocked", "http://mirror.test": "blocked",
		"http://blocked.test/other": "blocked", "ftp://blocked.test": "invalid_url"} {
		sk, ok := sum.skipped[url]
		if !ok || sk.Code != want {
			t.Errorf("%s: skipped %+v, want code %s", url, sk, want)
		}
		if want == "blocked" && (sk.Trust != identity.TrustBlocked || !strings.Contains(sk.Reason, "blocked")) {
			t.Errorf("%s: %+v", url, sk)
		}
	}
	if r := sum.skipped["http://mirror.test"].Reason; !strings.Contains(r, `"Bad"`) || !strings.Contains(r, "ag-1") {
		t.Errorf("mirror reason %q does not name the blocked seller", r)
	}
	if r := sum.skipped["http://blocked.test/other"].Reason; !strings.Contains(r, `"Bad"`) {
		t.Errorf("same-origin reason %q does not name the blocked seller", r)
	}
	if _, ok := sum.found["http://good.test"]; !ok {
		t.Error("good seller lost")
	}
	if _, ok := sum.found["http://elsewhere.test"]; !ok {
		t.Error("unknown opt-in seller on another origin lost")
	}
	if len(sum.found) != 2 {
		t.Errorf("found %v", keys(sum.found))
	}
}

// TestTooManySellersRejectsTheCampaign: a brief matching more sellers than
// one DiscoveryCompleted can list is rejected at once, naming the count and
// the field to change, instead of failing the size check on every retry.
func TestTooManySellersRejectsTheCampaign(t *testing.T) {
	for _, c := range []struct {
		sellers int
		reject  bool
	}{{1000, false}, {8000, true}} {
		dir := &fakeDir{trust: map[string]identity.Trust{}}
		for i := range c.sellers {
			u := fmt.Sprintf("http://seller-%05d.sellers.example", i)
			dir.sellers = append(dir.sellers, events.Seller{URL: u, Trust: identity.TrustVerified, Capabilities: []string{"ctv"}})
		}
		sum := run(t, service(dir, nil, nil), campaign(fmt.Sprintf("cmp-many-%d", c.sellers)))
		if !c.reject {
			if len(sum.rejects) != 0 || len(sum.found) != c.sellers || len(sum.done.Sellers) != c.sellers {
				t.Fatalf("%d sellers: %d found, %d listed, rejects %+v", c.sellers, len(sum.found), len(sum.done.Sellers), sum.rejects)
			}
			continue
		}
		if len(sum.rejects) != 1 || len(sum.found) != 0 || len(sum.done.Sellers) != 0 {
			t.Fatalf("%d sellers: rejects %+v, %d found", c.sellers, sum.rejects, len(sum.found))
		}
		r := sum.rejects[0]
		if r.Field != "brief.channels" || !strings.Contains(r.Reason, "8000 sellers match the brief") {
			t.Fatalf("rejection %+v", r)
		}
	}
}

// TestOneSellerUnderManyNamesIsShoppedOnce: a seller named several ways in
// one campaign (the unspecified and IPv6 spellings of its address, host
// names resolving to it) is one seller: found once, under the registry's
// name when it has one, the other names skipped as duplicates, so it cannot
// be booked once per name. Registered sellers sharing an address (a
// platform, a CDN) stay apart: the registry tells them apart.
func TestOneSellerUnderManyNamesIsShoppedOnce(t *testing.T) {
	dir := &fakeDir{sellers: []events.Seller{
		{URL: "http://127.0.0.1:9001", Name: "Known", AgentID: "ag-1", Trust: identity.TrustVerified, Capabilities: []string{"ctv"}},
		{URL: "https://cdn.test/a", AgentID: "ag-a", Trust: identity.TrustVerified, Capabilities: []string{"ctv"}},
		{URL: "https://cdn2.test/b", AgentID: "ag-b", Trust: identity.TrustVerified, Capabilities: []string{"ctv"}},
	}}
	s := service(dir, nil, nil)
	s.Resolve = fakeDNS(map[string]string{"alias.test": "127.0.0.1", "alias2.test": "::1", "other.test": "10.9.9.9", "other-alias.test": "10.9.9.9",
		"cdn.test": "10.1.1.1", "cdn2.test": "10.1.1.1"})
	in := campaign("c-names")
	req := must(events.PayloadOf[events.CampaignRequested](in, events.KindCampaignRequested))
	req.AllowUnknownSellers = true
	req.Sellers = []string{"http://0.0.0.0:9001", "http://[::]:9001", "http://alias.test:9001", "http://alias2.test:9001/",
		"http://other.test:8080", "http://other-alias.test:8080/x", "http://10.9.9.9:8080"}
	in = must(events.New(events.KindCampaignRequested, "in-c-names", "test", "c-names", req))
	sum := run(t, s, in)
	want := []string{"http://127.0.0.1:9001", "https://cdn.test/a", "https://cdn2.test/b", "http://other.test:8080"}
	if len(sum.found) != len(want) {
		t.Fatalf("found %v, want %v", keys(sum.found), want)
	}
	for _, u := range want {
		if _, ok := sum.found[u]; !ok {
			t.Fatalf("found %v, want %v", keys(sum.found), want)
		}
	}
	for _, u := range []string{"http://[::1]:9001", "http://alias.test:9001", "http://alias2.test:9001", "http://other-alias.test:8080/x", "http://10.9.9.9:8080"} {
		if sk := sum.skipped[u]; sk.Code != "duplicate" {
			t.Errorf("%s: %+v, want skipped as a duplicate", u, sk)
		}
	}
	if r := sum.skipped["http://alias.test:9001"].Reason; !strings.Contains(r, `"Known"`) || !strings.Contains(r, "127.0.0.1 port 9001") {
		t.Errorf("duplicate reason %q does not name the seller and the address", r)
	}
}

// TestUnresolvableUnknownSellerIsNotContacted: an unknown seller whose
// host does not resolve cannot be compared with the blocked sellers' addresses.
func TestUnresolvableUnknownSellerIsNotContacted(t *testing.T) {
	s := service(&fakeDir{}, nil, nil)
	in := campaign("c-nx")
	req := must(events.PayloadOf[events.CampaignRequested](in, events.KindCampaignRequested))
	req.AllowUnknownSellers = true
	req.Sellers = []string{"http://seller.nxdomain"}
	in = must(events.New(events.KindCampaignRequested, "in-c-nx", "test", "c-nx", req))
	sum := run(t, s, in)
	if sk := sum.skipped["http://seller.nxdomain"]; sk.Code != "unreachable" || len(sum.found) != 0 {
		t.Fatalf("%+v found %v", sk, keys(sum.found))
	}
}

// TestBlockedSellerOfAnotherChannelStaysBlocked: a fresh name for the
// address of a blocked seller the registry lists for other channels only
// is that seller, and so is a registry record declaring its name.
func TestBlockedSellerOfAnotherChannelStaysBlocked(t *testing.T) {
	dir := &fakeDir{sellers: []events.Seller{
		{URL: "https://bad.test", Name: "Bad", Trust: identity.TrustBlocked, Capabilities: []string{"display"}},
		{URL: "https://renamed.test", Name: " BAD ", AgentID: "ag-new", Trust: identity.TrustVerified, Capabilities: []string{"ctv"}},
	}}
	s := service(dir, nil, nil)
	s.Resolve = fakeDNS(map[string]string{"bad.test": "10.6.6.6", "fresh.test": "10.6.6.6"})
	in := campaign("c-fresh") // ctv
	req := must(events.PayloadOf[events.CampaignRequested](in, events.KindCampaignRequested))
	req.AllowUnknownSellers = true
	req.Sellers = []string{"https://fresh.test/"}
	in = must(events.New(events.KindCampaignRequested, "in-c-fresh", "test", "c-fresh", req))
	sum := run(t, s, in)
	if sk := sum.skipped["https://fresh.test"]; sk.Code != "blocked" || !strings.Contains(sk.Reason, `"Bad"`) || len(sum.found) != 0 {
		t.Fatalf("%+v found %v", sk, keys(sum.found))
	}
	if sk := sum.skipped["https://renamed.test"]; sk.Code != "blocked" || !strings.Contains(sk.Reason, "name") {
		t.Fatalf("renamed: %+v", sk)
	}
}

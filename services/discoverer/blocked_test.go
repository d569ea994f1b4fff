package discoverer_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dealflow/dealflow/internal/sandbox"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/identity"
	"github.com/dealflow/dealflow/pkg/sellerclient"
	"github.com/dealflow/dealflow/services/discoverer"
	"github.com/dealflow/dealflow/services/kitfetcher"
)

// aliasNames are host names that resolve to the loopback address in these
// tests, without DNS: two names of the blocked seller and a fresh one.
var aliasNames = map[string]bool{"shady-a.test": true, "shady-b.test": true, "fresh-name.example": true}

// aliasResolver is the discoverer's resolver for aliasNames.
func aliasResolver(_ context.Context, host string) ([]netip.Addr, error) {
	if aliasNames[host] {
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// aliasClient is a seller client whose connections reach 127.0.0.1 for
// aliasNames and for [::1] (as a dual-stack seller would answer), so a
// request under any of those names would be counted at the sandbox seller.
func aliasClient() *sellerclient.Client {
	d := sellerclient.PrivateGuard().Dialer()
	tr := sellerclient.PrivateGuard().Transport()
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err == nil && (aliasNames[host] || host == "::1") {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
		return d.DialContext(ctx, "tcp4", addr)
	}
	return sellerclient.New(sellerclient.Config{AllowPrivate: true, HTTPClient: &http.Client{Transport: tr}})
}

// TestBlockedSellerNeverContactedUnderAnySpelling is the attack: the
// campaign names the blocked sandbox seller under another spelling of its
// URL, or a host name that resolves to its address (two of its names and a
// fresh one), and opts in to unknown sellers. Discovery must skip it as
// blocked, and neither discovery nor the media-kit fetch of every seller
// found may send it a single request (counted at the sandbox seller; the
// client reaches it under every name used).
func TestBlockedSellerNeverContactedUnderAnySpelling(t *testing.T) {
	ctx := context.Background()
	m, err := sandbox.Start(ctx, sandbox.DefaultMarket())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	shady := m.Seller("Shady Reseller")
	if shady == nil {
		t.Fatal("the default market has no Shady Reseller")
	}
	origin, err := sellerclient.Origin(shady.URL)
	if err != nil {
		t.Fatal(err)
	}
	port := shady.URL[strings.LastIndexByte(shady.URL, ':')+1:]
	aliases := []string{
		shady.URL,
		"http://localhost:" + port,
		"http://LOCALHOST:" + port + "/",
		"http://localhost.:" + port,
		"http://[::ffff:127.0.0.1]:" + port,
		"http://127.0.0.1:0" + port,
		"http://127.0.0.1:" + port + "/.",
		"http://127.0.0.1:" + port + "/api/..",
		"HTTP://127.0.0.1:" + port + "/%2e/",
		"http://localhost:" + port + "/another/path", // same origin, a path the registry does not know
		"http://0.0.0.0:" + port,                     // the unspecified address reaches the local host
		"http://[::]:" + port,
		"http://[::1]:" + port,
		"http://shady-a.test:" + port, // two host names of its address
		"http://shady-b.test:" + port + "/",
		"http://fresh-name.example:" + port, // a fresh name for its address
	}
	client := aliasClient()
	creds := m.Credentials()
	kit := &kitfetcher.Service{Client: client, Credentials: creds, SellerTimeout: 5 * time.Second}
	full := identity.BuyerIdentity{SeatID: "s", SeatName: "S", AgencyID: "a", AgencyName: "A", AdvertiserID: "adv", AdvertiserName: "Adv"}

	for _, channels := range [][]string{{"ctv"}, {"display"}} { // Shady is listed for ctv, not for display
		for _, allow := range []bool{false, true} {
			for i, alias := range aliases {
				name := fmt.Sprintf("%s/allow=%v/%d", channels[0], allow, i)
				t.Run(name, func(t *testing.T) {
					svc := &discoverer.Service{
						Finder: &discoverer.Finder{Dir: discoverer.ClientDirectory{C: client},
							Registries: []sellerclient.Registry{{URL: m.RegistryURL, Kind: sellerclient.RegistrySimple}},
							Cache:      discoverer.NewCache(time.Minute, nil), Timeout: 5 * time.Second, Log: zerolog.Nop()},
						Strategy: identity.DefaultStrategy(), Caps: identity.DefaultCaps(), Credentials: creds, Resolve: aliasResolver,
					}
					canon, err := sellerclient.CanonicalURL(alias)
					if err != nil {
						t.Fatal(err)
					}
					isShady := func(u string) bool {
						o, _ := sellerclient.Origin(u)
						return o == origin || u == canon
					}
					req := events.CampaignRequested{CampaignID: "c-" + strings.ReplaceAll(name, "/", "-"), AllowUnknownSellers: allow, Sellers: []string{alias},
						Brief: events.Brief{Name: "n", BudgetMicros: events.MustMicros(50000), StartDate: "2028-06-01", EndDate: "2028-06-30", Channels: channels}, Buyer: full}
					res, err := svc.Discover(ctx, req)
					if err != nil {
						t.Fatal(err)
					}
					for _, f := range res.Found {
						if isShady(f.Seller.URL) {
							t.Fatalf("blocked seller found as %s (trust %s)", f.Seller.URL, f.Seller.Trust)
						}
						_, _ = kit.Fetch(ctx, f) // shop every seller found, as the kitfetcher stage would
					}
					blocked := false
					for _, sk := range res.Skipped {
						if isShady(sk.SellerURL) {
							if sk.Code != "blocked" || sk.Trust != identity.TrustBlocked {
								t.Errorf("skip of %s: code %q trust %q (%s), want blocked", sk.SellerURL, sk.Code, sk.Trust, sk.Reason)
							}
							blocked = true
						}
					}
					if !blocked {
						t.Errorf("no SellerSkipped blocked for %s; skipped %+v", alias, res.Skipped)
					}
					if n := shady.RequestCount(); n != 0 {
						t.Fatalf("the blocked seller received %d requests: %+v", n, shady.Requests())
					}
				})
			}
		}
	}
	if len(m.Registry.Requests()) == 0 {
		t.Fatal("the registry was never asked: the test did not exercise discovery")
	}
}

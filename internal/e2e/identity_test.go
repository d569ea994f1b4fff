package e2e

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/dealflow/dealflow/internal/app"
	"github.com/dealflow/dealflow/internal/config"
	"github.com/dealflow/dealflow/internal/demo"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/sellerclient"
)

// aliasHosts are host names of the loopback address in this test: the
// discoverer resolves them, and the seller clients dial them, without DNS.
var aliasHosts = map[string]bool{"seller-a.test": true, "seller-b.test": true}

// TestOneSellerNamedManyWaysIsBookedWithinItsCap: a campaign names a
// seller the registry does not know (shopped at public prices) under its
// own URL, two host names that resolve to its
// address (and that the seller clients would reach it under), the
// unspecified 0.0.0.0 and localhost., opting in to unknown sellers. It is
// shopped once, and what the seller itself holds booked for the campaign
// stays within the per-seller cap (the attack booked one package three
// times, at more than twice the cap).
func TestOneSellerNamedManyWaysIsBookedWithinItsCap(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	s := startStackWith(t, nil, func(cfg config.Config, o *app.Options) {
		dialer := cfg.Guard().Dialer()
		o.Resolve = func(_ context.Context, host string) ([]netip.Addr, error) {
			if aliasHosts[host] {
				return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
			}
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		}
		o.SellerDial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			if host, port, err := net.SplitHostPort(addr); err == nil && aliasHosts[host] {
				addr = net.JoinHostPort("127.0.0.1", port)
			}
			return dialer.DialContext(ctx, network, addr)
		}
	})
	var target string
	for _, sel := range s.market.Sellers {
		if sel.InRegistry && sel.Trust != "blocked" && !sel.Faults().Down {
			target = sel.URL
			break
		}
	}
	if target == "" {
		t.Fatal("no registry seller in the default market")
	}
	seller := s.market.Seller(sellerName(s, target))
	port := target[strings.LastIndexByte(target, ':')+1:]
	req := demo.SampleCampaign("e2e-names", "adaptive")
	req.AllowUnknownSellers = true
	req.Brief.PerSellerCapMicros = events.MustMicros(4_000)
	req.Sellers = []string{target, "http://seller-a.test:" + port, "http://seller-b.test:" + port + "/", "http://0.0.0.0:" + port, "http://localhost.:" + port + "/"}
	s.submit(t, req)
	res := s.follow(t, req.CampaignID)
	if res.Status != "completed" {
		t.Fatalf("status %q, failed %v", res.Status, res.Failed)
	}
	canon, _ := sellerclient.CanonicalURL(target)
	var reported events.Micros
	for _, d := range res.Deals {
		if d.SellerURL != canon && (strings.HasSuffix(d.SellerURL, ":"+port) || strings.Contains(d.SellerURL, ".test")) {
			t.Fatalf("the seller was booked under another name %s: %+v", d.SellerURL, d)
		}
		if d.SellerURL == canon {
			reported += d.SpendMicros
		}
	}
	var held events.Micros
	n := 0
	for _, d := range seller.Deals() {
		if !strings.Contains(d.Notes, req.CampaignID) {
			continue
		}
		n++
		held += events.CostMicros(d.Impressions, events.Micros(d.FinalMicros))
	}
	if n == 0 {
		t.Fatalf("the seller booked nothing: the test did not exercise the cap (deals %+v)", res.Deals)
	}
	if held > req.Brief.PerSellerCapMicros || reported > req.Brief.PerSellerCapMicros {
		t.Fatalf("the seller holds %s over %d deals (reported %s), cap %s", held, n, reported, req.Brief.PerSellerCapMicros)
	}
	for _, alias := range []string{"http://seller-a.test:" + port, "http://seller-b.test:" + port} {
		dup := false
		for _, sk := range res.SkippedSellers {
			dup = dup || sk.SellerURL == alias && strings.HasPrefix(sk.Reason, "duplicate")
		}
		if !dup {
			t.Fatalf("%s not skipped as a duplicate: %+v", alias, res.SkippedSellers)
		}
	}
}

// sellerName is the configured name of the sandbox seller at url.
func sellerName(s *stack, url string) string {
	for _, sel := range s.market.Sellers {
		if sel.URL == url {
			return sel.Name
		}
	}
	return ""
}

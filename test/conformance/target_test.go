package conformance

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/contracts"
	"github.com/dealflow/dealflow/internal/sandbox"
	"github.com/dealflow/dealflow/pkg/identity"
	"github.com/dealflow/dealflow/pkg/sellerclient"
)

// Environment variables selecting a real seller (see doc.go).
const (
	envURL            = "SELLER_URL"
	envSeatKey        = "SELLER_SEAT_KEY"
	envAgencyKey      = "SELLER_AGENCY_KEY"
	envAdvertiserKey  = "SELLER_ADVERTISER_KEY"
	envP1             = "SELLER_P1_PACKAGE_ID"
	envRevokedKey     = "SELLER_REVOKED_KEY"
	envAdvertiserOnly = "SELLER_ADVERTISER_ONLY_KEY"
)

// Sandbox fixture names and ids.
const (
	fixtureSellerName = "Conformance Fixture Seller"
	emptySellerName   = "Conformance Empty Seller"
	oddKeysSellerName = "Conformance Advertiser-Only Seller"
	clockedSellerName = "Conformance Clocked Seller"
	sandboxP1         = "pkg-5b0a7f01"
	// sandboxRevokedKey is configured as revoked on the fixture seller.
	sandboxRevokedKey = "ask_live_conformanceRevokedKey0000000000000000000"
	// p1Product is the product P1 is built on (doc.go tells a real seller's
	// operator to use the same).
	p1Product = "prod-53e78a97"
)

// suiteUA is the User-Agent of the suite's standard client; clients with
// rewriting transports (case 44) use another one so the final check can tell
// their requests apart.
const (
	suiteUA     = "dealflow-conformance/1"
	rewriteUA   = "dealflow-conformance-rewrite/1"
	caseTimeout = 20 * time.Second
)

// keyed is a seller URL with an API key valid there.
type keyed struct {
	url string
	key string
}

// target is the seller the suite runs against, chosen in TestMain.
type target struct {
	real bool
	url  string // the §8 fixture seller
	keys map[identity.Tier]string
	p1   string

	// Optional capabilities; empty means not available on this target.
	emptyURL       string // a seller with an empty media kit (sandbox only)
	revokedKey     string // a revoked key on url
	advertiserOnly keyed  // a key whose identity is {advertiser_id} only

	market *sandbox.Market
	rec    *recordingTransport // real mode: what the client sent

	mu      sync.Mutex
	sellers []*sandbox.Seller // sandbox mode: every seller whose requests are validated
}

// suite and client are set by TestMain; every case uses them.
var (
	suite  *target
	client *sellerclient.Client
	runID  string
)

// TestMain picks the target (SELLER_URL, else a sandbox started here) and
// builds the suite's client before any case runs.
func TestMain(m *testing.M) {
	runID = randomHex(8)
	ctx, cancel := context.WithCancel(context.Background())
	var err error
	if os.Getenv(envURL) != "" {
		suite, err = realTarget()
	} else {
		suite, err = sandboxTarget(ctx)
	}
	if err != nil {
		cancel()
		fmt.Fprintln(os.Stderr, "conformance:", err)
		os.Exit(2)
	}
	if suite.real {
		client = sellerclient.New(sellerclient.Config{AllowPrivate: true, UserAgent: suiteUA,
			HTTPClient: &http.Client{Transport: suite.rec}})
		fmt.Fprintf(os.Stderr, "conformance: target real seller %s (run %s)\n", suite.url, runID)
	} else {
		client = sellerclient.New(sellerclient.Config{AllowPrivate: true, UserAgent: suiteUA})
	}
	code := m.Run()
	if suite.market != nil {
		_ = suite.market.Close()
	}
	cancel()
	os.Exit(code)
}

// fixtureSellerConfig is the §8 fixture: keys for seat{seat-1},
// agency{seat-1, agency-1}, advertiser{seat-1, agency-1, adv-1}; package P1
// base 35 floor 28, featured, tags [premium, sports], ad_formats [video],
// standard segments [3, 4], contextual [IAB17-1]; the default catalog.
func fixtureSellerConfig(name string) sandbox.SellerConfig {
	return sandbox.SellerConfig{
		Name: name, Trust: "approved", Capabilities: []string{"video", "ctv"}, InRegistry: true,
		Keys: map[string]identity.BuyerIdentity{
			"seat":       {SeatID: "seat-1"},
			"agency":     {SeatID: "seat-1", AgencyID: "agency-1"},
			"advertiser": {SeatID: "seat-1", AgencyID: "agency-1", AdvertiserID: "adv-1"},
		},
		RevokedKeys: []string{sandboxRevokedKey},
		Packages: []sandbox.PackageConfig{{
			ID: sandboxP1, Name: "Premium Sports Video", Description: "Live sports highlights",
			ProductIDs: []string{p1Product}, AdFormats: []string{"video"},
			BasePrice: 35, FloorPrice: 28, Featured: true, Tags: []string{"premium", "sports"},
			StandardSegments: []string{"3", "4"}, ContextualSegments: []string{"IAB17-1"},
		}},
	}
}

// sandboxTarget starts the fixture seller plus the helper sellers.
func sandboxTarget(ctx context.Context) (*target, error) {
	cfg := sandbox.MarketConfig{Sellers: []sandbox.SellerConfig{
		fixtureSellerConfig(fixtureSellerName),
		{Name: emptySellerName, Trust: "registered", InRegistry: true},
		{Name: oddKeysSellerName, Trust: "registered", InRegistry: true,
			Keys: map[string]identity.BuyerIdentity{"advertiser": {AdvertiserID: "adv-1"}}},
	}}
	m, err := sandbox.Start(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("start sandbox: %w", err)
	}
	fx, empty, odd := m.Seller(fixtureSellerName), m.Seller(emptySellerName), m.Seller(oddKeysSellerName)
	if fx == nil || empty == nil || odd == nil {
		_ = m.Close()
		return nil, errors.New("sandbox did not start the configured sellers")
	}
	return &target{
		url: fx.URL, p1: sandboxP1,
		keys: map[identity.Tier]string{
			identity.TierSeat:       fx.Keys["seat"],
			identity.TierAgency:     fx.Keys["agency"],
			identity.TierAdvertiser: fx.Keys["advertiser"],
		},
		emptyURL:       empty.URL,
		revokedKey:     sandboxRevokedKey,
		advertiserOnly: keyed{url: odd.URL, key: odd.Keys["advertiser"]},
		market:         m,
		sellers:        []*sandbox.Seller{fx, empty, odd},
	}, nil
}

// realTarget reads the real seller's coordinates from the environment.
func realTarget() (*target, error) {
	t := &target{real: true, url: strings.TrimRight(os.Getenv(envURL), "/"), p1: os.Getenv(envP1),
		keys: map[identity.Tier]string{
			identity.TierSeat:       os.Getenv(envSeatKey),
			identity.TierAgency:     os.Getenv(envAgencyKey),
			identity.TierAdvertiser: os.Getenv(envAdvertiserKey),
		},
		revokedKey: os.Getenv(envRevokedKey),
	}
	var missing []string
	for _, name := range []string{envSeatKey, envAgencyKey, envAdvertiserKey, envP1} {
		if os.Getenv(name) == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s is set but %s are not (see test/conformance/doc.go)", envURL, strings.Join(missing, ", "))
	}
	if k := os.Getenv(envAdvertiserOnly); k != "" {
		t.advertiserOnly = keyed{url: t.url, key: k}
	}
	u, err := url.Parse(t.url)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", envURL, err)
	}
	t.rec = &recordingTransport{base: newBaseTransport(), basePath: strings.TrimRight(u.Path, "/")}
	return t, nil
}

// track adds sandbox sellers started by a case to the body validation.
func (tg *target) track(ss ...*sandbox.Seller) {
	tg.mu.Lock()
	tg.sellers = append(tg.sellers, ss...)
	tg.mu.Unlock()
}

// transport is the base transport for clients with custom transports: the
// recorder against a real seller (so their bodies are validated too).
func (tg *target) transport() http.RoundTripper {
	if tg.rec != nil {
		return tg.rec
	}
	return newBaseTransport()
}

// sentRequest is one request the suite sent, from either source.
type sentRequest struct {
	Method      string
	Path        string // relative to the seller base URL
	ContentType string
	UserAgent   string
	Body        []byte
}

// sent returns every request sent during the suite: the sandbox sellers' logs,
// or the recording transport's.
func (tg *target) sent() []sentRequest {
	if tg.rec != nil {
		return tg.rec.list()
	}
	tg.mu.Lock()
	sellers := append([]*sandbox.Seller(nil), tg.sellers...)
	tg.mu.Unlock()
	var out []sentRequest
	for _, s := range sellers {
		for _, r := range s.Requests() {
			out = append(out, sentRequest{Method: r.Method, Path: r.Path, ContentType: r.Header.Get("Content-Type"),
				UserAgent: r.Header.Get("User-Agent"), Body: r.Body})
		}
	}
	return out
}

// notApplicable reports a case (or part) that needs what only the sandbox
// offers. It returns true, after logging why, only against a real seller; in
// sandbox mode it returns false so the case always runs and asserts.
func notApplicable(t *testing.T, available bool, why string) bool {
	t.Helper()
	if !suite.real {
		if !available {
			t.Fatalf("sandbox target lacks %s", why)
		}
		return false
	}
	if available {
		return false
	}
	t.Logf("NOT APPLICABLE against the real seller %s: needs %s", suite.url, why)
	return true
}

// newBaseTransport is a plain transport for the suite's custom clients (no
// proxy: the target is a known seller).
func newBaseTransport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	return tr
}

// recordingTransport records every request it forwards (real-seller mode).
type recordingTransport struct {
	base     http.RoundTripper
	basePath string

	mu   sync.Mutex
	reqs []sentRequest
}

// RoundTrip records the request (body via GetBody, leaving req untouched).
func (rt *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.GetBody != nil {
		if rc, err := req.GetBody(); err == nil {
			body, _ = io.ReadAll(rc)
			_ = rc.Close()
		}
	}
	rt.mu.Lock()
	rt.reqs = append(rt.reqs, sentRequest{Method: req.Method, Path: strings.TrimPrefix(req.URL.Path, rt.basePath),
		ContentType: req.Header.Get("Content-Type"), UserAgent: req.Header.Get("User-Agent"), Body: body})
	rt.mu.Unlock()
	return rt.base.RoundTrip(req)
}

func (rt *recordingTransport) list() []sentRequest {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return append([]sentRequest(nil), rt.reqs...)
}

// contentTypeRewriter sends every request body with another Content-Type,
// which the client itself never does (case 44).
type contentTypeRewriter struct {
	contentType string
	base        http.RoundTripper
}

// RoundTrip rewrites Content-Type on a clone of req.
func (c contentTypeRewriter) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body == nil {
		return c.base.RoundTrip(req)
	}
	r := req.Clone(req.Context())
	r.Header.Set("Content-Type", c.contentType)
	return c.base.RoundTrip(r)
}

// responseCapture keeps the status and headers of the last response, which
// the client does not expose (case 13's WWW-Authenticate).
type responseCapture struct {
	base http.RoundTripper

	mu     sync.Mutex
	status int
	header http.Header
}

// RoundTrip forwards req and records the response head.
func (c *responseCapture) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(req)
	if err == nil {
		c.mu.Lock()
		c.status, c.header = resp.StatusCode, resp.Header.Clone()
		c.mu.Unlock()
	}
	return resp, err
}

func (c *responseCapture) last() (int, http.Header) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status, c.header
}

// clientWith builds a client that sends through rt.
func clientWith(ua string, rt http.RoundTripper) *sellerclient.Client {
	return sellerclient.New(sellerclient.Config{AllowPrivate: true, UserAgent: ua, HTTPClient: &http.Client{Transport: rt}})
}

// fakeClock is an adjustable clock for the sandbox seller of the expiry case.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// contractsDir is the repository's contracts folder (internal/contracts).
func contractsDir() (string, error) { return contracts.Dir() }

func randomHex(n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

// bodySnippet shortens a body for failure messages.
func bodySnippet(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}

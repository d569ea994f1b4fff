// Package sandbox runs sandbox sellers and an agent registry that speak exactly
// the IAB Tech Lab seller-agent HTTP contract (shared/spec/seller-protocol.md)
// on 127.0.0.1, for the demo, tests and benchmarks.
//
// Each seller serves the real seller's default 13-product catalog (with
// per-seller price overrides), a configurable media kit, tiered pricing,
// quotes, the §4 negotiation engine and deal booking, with the seller's
// status codes, error body shapes, idempotency and id formats. Fault knobs
// (down, latency, 5xx rate, garbage, truncated, oversized, slow body) make
// failure paths testable, and every request is recorded so a test can check
// what a buyer revealed to which seller.
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dealflow/dealflow/internal/flight"
)

var discardLog = log.New(io.Discard, "", 0)

// Option configures Start.
type Option func(*options)

type options struct {
	noLog    bool
	shared   bool
	count    int
	latency  time.Duration
	now      func() time.Time
	basePort int
	seed     string
	// listenHost and advertise: see WithHost.
	listenHost string
	advertise  string
	// timeScale: see WithTimeScale.
	timeScale time.Duration
}

// WithBasePort serves the registry on 127.0.0.1:port and the sellers, in
// configuration order, on the ports that follow (port+1, port+2, ...), so
// their URLs, and a credentials file keyed by them, survive a restart. Zero
// keeps random ports. It applies to separate listeners only.
func WithBasePort(port int) Option { return func(o *options) { o.basePort = port } }

// WithHost, with WithBasePort, listens on listenHost (e.g. 0.0.0.0 in a
// container) instead of 127.0.0.1 and puts advertise (e.g. the container's
// DNS name) in the registry's and the credentials' seller URLs, so
// pipelines in other containers can reach the sellers. Empty values keep
// 127.0.0.1.
func WithHost(listenHost, advertise string) Option {
	return func(o *options) { o.listenHost, o.advertise = listenHost, advertise }
}

// WithSeed mints the sellers' API keys (those the configuration does not fix)
// and the AAMP token from seed, the seller name and the tier: the same seed
// gives the same keys on every start, another seed other keys.
func WithSeed(seed string) Option { return func(o *options) { o.seed = seed } }

// WithSharedListener serves every seller (and the registry) from one
// listener under path prefixes: sellers at http://127.0.0.1:PORT/s/<slug>,
// the registry at http://127.0.0.1:PORT/registry. Benchmarks use it to run
// a thousand sellers without a thousand ports.
func WithSharedListener() Option { return func(o *options) { o.shared = true } }

// WithSellerCount replaces the configured sellers with GenerateMarket(n, latency).
func WithSellerCount(n int, latency time.Duration) Option {
	return func(o *options) { o.count, o.latency = n, latency }
}

// WithoutRequestLog stops sellers and the registry from recording requests
// (Requests then returns nothing), so long benchmarks do not grow memory.
func WithoutRequestLog() Option { return func(o *options) { o.noLog = true } }

// WithTimeScale accelerates the flights of booked lines: one flight day
// lasts day of wall time, from the moment a line is booked, so a seller
// delivers a whole flight in seconds (--time-scale). Zero delivers in real
// time, by the flight's own dates.
func WithTimeScale(day time.Duration) Option { return func(o *options) { o.timeScale = day } }

// WithClock sets the sellers' clock (quote and deal expiry, timestamps), so a
// test can move time past a quote's 24 h TTL.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// Market is a running sandbox market.
type Market struct {
	// RegistryURL is the registry base URL.
	RegistryURL string
	// AAMPToken is the bearer token for the registry's AAMP API.
	AAMPToken string
	// Sellers are the running sellers in configuration order.
	Sellers []*Seller
	// Registry is the running registry (request log, faults).
	Registry *Registry
	// ADCPSellers are the running AdCP sales agents (empty unless
	// internal/sandbox/adcp is linked in).
	ADCPSellers []*ADCPSeller

	shared    *listenerServer
	closeOnce sync.Once
	stop      chan struct{}
}

// Start runs the market's registry and sellers on 127.0.0.1 random ports and
// returns once they accept connections. A seller whose faults say Down gets a
// URL whose port refuses connections. The market closes when ctx is done or
// Close is called.
func Start(ctx context.Context, cfg MarketConfig, opts ...Option) (*Market, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sandbox: start: %w", err)
	}
	o := options{now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	if o.count > 0 {
		cfg.Sellers = GenerateMarket(o.count, o.latency).Sellers
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.seed != "" {
		cfg = seeded(cfg, o.seed)
	}
	m := &Market{stop: make(chan struct{})}
	for _, sc := range cfg.Sellers {
		s := newSeller(sc, o.now)
		s.rec.off = o.noLog
		s.clock = flight.Clock{Day: o.timeScale}
		m.Sellers = append(m.Sellers, s)
	}
	token := cfg.Registry.AAMPToken
	if token == "" {
		token = "aamp_sandbox_" + shortHash(fmt.Sprint(len(cfg.Sellers), sellerNames(cfg)), 32)
	}
	m.AAMPToken = token
	m.Registry = newRegistry(m.Sellers, token, cfg.Registry.Faults, o.now)
	m.Registry.rec.off = o.noLog

	if err := m.startADCP(cfg, o); err != nil {
		m.Close()
		return nil, err
	}
	m.Registry.adcp = m.ADCPSellers
	var err error
	if o.shared {
		err = m.startShared(cfg)
	} else {
		err = m.startSeparate(cfg, o.basePort, o.listenHost, o.advertise)
	}
	if err != nil {
		m.Close()
		return nil, err
	}
	go func() {
		select {
		case <-ctx.Done():
			m.Close()
		case <-m.stop:
		}
	}()
	return m, nil
}

func sellerNames(cfg MarketConfig) string {
	names := make([]string, len(cfg.Sellers))
	for i, s := range cfg.Sellers {
		names[i] = s.Name
	}
	return strings.Join(names, "\x00")
}

// seeded returns cfg with every API key it does not fix, and the AAMP token
// if unset, minted from seed (the caller's slices and maps are not changed).
func seeded(cfg MarketConfig, seed string) MarketConfig {
	sellers := make([]SellerConfig, len(cfg.Sellers))
	for i, sc := range cfg.Sellers {
		keys := make(map[string]string, 3)
		for k, v := range sc.APIKeys {
			keys[k] = v
		}
		for _, tier := range []string{"seat", "agency", "advertiser"} {
			if keys[tier] == "" {
				keys[tier] = mintKey(seed+"/"+sc.Name, tier)
			}
		}
		sc.APIKeys = keys
		sellers[i] = sc
	}
	cfg.Sellers = sellers
	if cfg.Registry.AAMPToken == "" {
		cfg.Registry.AAMPToken = "aamp_sandbox_" + shortHash(seed+"/"+sellerNames(cfg), 32)
	}
	return cfg
}

// startSeparate gives the registry and every seller a listener of its own:
// on random ports, or from basePort on (registry first, then the sellers).
func (m *Market) startSeparate(cfg MarketConfig, basePort int, listenHost, advertise string) error {
	port := func(i int) int {
		if basePort <= 0 {
			return 0
		}
		return basePort + i
	}
	for i, s := range m.Sellers {
		s.handler = s.stallGate(frontHandler("", &s.rec, s.faults, s.now, s.routes()))
		s.own = &listenerServer{handler: s.handler}
		ln, addr, err := listenOrReserve(s.cfg.Faults.Down, port(i+1), listenHost, advertise)
		if err != nil {
			return fmt.Errorf("sandbox: seller %q: %w", s.Name, err)
		}
		s.own.addr = addr
		s.URL = "http://" + addr
		if ln != nil {
			s.own.serve(ln)
		}
	}
	g := m.Registry
	g.handler = frontHandler("", &g.rec, g.faults, time.Now, g.routes())
	g.own = &listenerServer{handler: g.handler}
	ln, addr, err := listenOrReserve(cfg.Registry.Faults.Down, port(0), listenHost, advertise)
	if err != nil {
		return fmt.Errorf("sandbox: registry: %w", err)
	}
	g.own.addr = addr
	g.URL = "http://" + addr
	m.RegistryURL = g.URL
	if ln != nil {
		g.own.serve(ln)
	}
	return nil
}

// startShared serves everything from one listener under path prefixes;
// sellers down at start get a refusing port of their own instead.
func (m *Market) startShared(cfg MarketConfig) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("sandbox: shared listener: %w", err)
	}
	base := "http://" + ln.Addr().String()
	bySlug := make(map[string]http.Handler, len(m.Sellers))
	for _, s := range m.Sellers {
		prefix := "/s/" + s.slug
		s.handler = s.stallGate(frontHandler(prefix, &s.rec, s.faults, s.now, s.routes()))
		if s.cfg.Faults.Down {
			addr, err := reserveAddr()
			if err != nil {
				_ = ln.Close()
				return fmt.Errorf("sandbox: seller %q: %w", s.Name, err)
			}
			s.own = &listenerServer{handler: s.handler, addr: addr}
			s.URL = "http://" + addr + prefix
			continue
		}
		s.shared = true
		s.URL = base + prefix
		bySlug[s.slug] = s.handler
	}
	g := m.Registry
	g.handler = frontHandler("/registry", &g.rec, g.faults, time.Now, g.routes())
	g.URL = base + "/registry"
	m.RegistryURL = g.URL
	if cfg.Registry.Faults.Down {
		addr, err := reserveAddr()
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("sandbox: registry: %w", err)
		}
		g.own = &listenerServer{handler: g.handler, addr: addr}
		g.URL = "http://" + addr + "/registry"
		m.RegistryURL = g.URL
	}
	regHandler := g.handler
	regShared := g.own == nil
	top := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if regShared && (p == "/registry" || strings.HasPrefix(p, "/registry/")) {
			regHandler.ServeHTTP(w, r)
			return
		}
		if rest, ok := strings.CutPrefix(p, "/s/"); ok {
			slug, _, _ := strings.Cut(rest, "/")
			if h := bySlug[slug]; h != nil {
				h.ServeHTTP(w, r)
				return
			}
		}
		writeDetail(w, http.StatusNotFound, "Not Found")
	})
	m.shared = &listenerServer{handler: top, addr: ln.Addr().String()}
	m.shared.serve(ln)
	return nil
}

// listenOrReserve listens on a random port, or for a down component only
// reserves one (released, so connections are refused). A port > 0 is used
// as given (a down component then just does not listen on it), on
// listenHost and under the advertise host name when they are set.
func listenOrReserve(down bool, port int, listenHost, advertise string) (net.Listener, string, error) {
	if port > 0 {
		if listenHost == "" {
			listenHost = "127.0.0.1"
		}
		if advertise == "" {
			advertise = "127.0.0.1"
		}
		addr := net.JoinHostPort(advertise, strconv.Itoa(port))
		if down {
			return nil, addr, nil
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(listenHost, strconv.Itoa(port)))
		if err != nil {
			return nil, "", err
		}
		return ln, addr, nil
	}
	if down {
		addr, err := reserveAddr()
		return nil, addr, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	return ln, ln.Addr().String(), nil
}

// Seller returns the seller with the given name, or nil.
func (m *Market) Seller(name string) *Seller {
	for _, s := range m.Sellers {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Close stops every listener and closes open connections. It is idempotent.
func (m *Market) Close() error {
	m.closeOnce.Do(func() {
		close(m.stop)
		for _, s := range m.Sellers {
			if s.own != nil {
				s.own.shutdown()
			}
		}
		if m.Registry != nil && m.Registry.own != nil {
			m.Registry.own.shutdown()
		}
		if m.shared != nil {
			m.shared.shutdown()
		}
		m.closeADCP()
	})
	return nil
}

// MarketSummary is the JSON summary of a running market (for the CLI).
type MarketSummary struct {
	RegistryURL string          `json:"registry_url"`
	AAMPToken   string          `json:"aamp_token"`
	Sellers     []SellerSummary `json:"sellers"`
}

// SellerSummary describes one seller in a MarketSummary.
type SellerSummary struct {
	Name         string            `json:"name"`
	URL          string            `json:"url"`
	Protocol     string            `json:"protocol"`
	MCPEndpoint  string            `json:"mcp_endpoint,omitempty"`
	Trust        string            `json:"trust"`
	Capabilities []string          `json:"capabilities"`
	InRegistry   bool              `json:"in_registry"`
	Down         bool              `json:"down"`
	Keys         map[string]string `json:"keys"`
	// AdCP: the account and brand the bearer token (keys.bearer_token) names.
	Account string `json:"account,omitempty"`
	Brand   string `json:"brand,omitempty"`
}

// Summary describes the market: registry URL, AAMP token, and per seller its
// URL, trust and API keys per tier.
func (m *Market) Summary() MarketSummary {
	out := MarketSummary{RegistryURL: m.RegistryURL, AAMPToken: m.AAMPToken, Sellers: []SellerSummary{}}
	for _, s := range m.Sellers {
		keys := make(map[string]string, len(s.Keys))
		for k, v := range s.Keys {
			keys[k] = v
		}
		out.Sellers = append(out.Sellers, SellerSummary{Name: s.Name, URL: s.URL, Protocol: "iab-seller-agent", Trust: s.Trust,
			Capabilities: nonNil(s.Capabilities), InRegistry: s.InRegistry, Down: s.Faults().Down, Keys: keys})
	}
	for _, s := range m.ADCPSellers {
		out.Sellers = append(out.Sellers, SellerSummary{Name: s.Name, URL: s.URL, Protocol: "adcp", MCPEndpoint: s.MCPEndpoint, Trust: s.Trust,
			Capabilities: nonNil(s.Capabilities), InRegistry: s.InRegistry, Keys: map[string]string{"bearer_token": s.Token},
			Account: s.AccountID, Brand: s.BrandDomain})
	}
	return out
}

// errClosed is returned when bringing a component up after Close.
var errClosed = errors.New("sandbox: market closed")

// FreeBasePort finds a base port whose next n ports are all free now, for
// WithBasePort. It looks below Linux's ephemeral range (32768 and up), where
// a busy machine's outgoing connections cannot hold ports of the range; a
// port can still be taken between this check and the listen, so callers
// retry a failed Start a few times.
func FreeBasePort(n int) (int, error) {
	for range 50 {
		base := 20000 + rand.IntN(12000-n)
		free := true
		for p := base; p < base+n && free; p++ {
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				free = false
				continue
			}
			_ = ln.Close()
		}
		if free {
			return base, nil
		}
	}
	return 0, fmt.Errorf("sandbox: no %d free ports in a row below 32000", n)
}

package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/checkfor"
	"github.com/dealflow/dealflow/internal/sandbox/engine"
	"github.com/dealflow/dealflow/pkg/identity"
)

func TestLoadMarket(t *testing.T) {
	dir := t.TempDir()
	good := `{
  "registry": {"aamp_token": "tok-123"},
  "sellers": [
    {"name": "Alpha Video", "trust": "verified", "capabilities": ["video"],
     "products": [{"id": "prod-15ba2543", "base_cpm": 30, "floor_cpm": 21}],
     "packages": [{"id": "pkg-aaaaaaaa", "name": "Alpha Pre-Roll", "product_ids": ["prod-15ba2543"], "ad_formats": ["video"], "featured": true}],
     "keys": {"agency": {"seat_id": "s-9", "agency_id": "ag-9"}},
     "faults": {"latency": "25ms", "jitter": "5ms", "error_rate": 0.1, "slow_body": "1s"}},
    {"name": "Beta Hidden", "trust": "unknown", "capabilities": ["display"], "in_registry": false}
  ]
}`
	path := filepath.Join(dir, "market.json")
	if err := os.WriteFile(path, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadMarket(path)
	if err != nil {
		t.Fatal(err)
	}
	a, b := cfg.Sellers[0], cfg.Sellers[1]
	if !a.InRegistry || b.InRegistry {
		t.Errorf("in_registry defaults: %v %v", a.InRegistry, b.InRegistry)
	}
	if a.Faults != (Faults{Latency: 25 * time.Millisecond, Jitter: 5 * time.Millisecond, ErrorRate: 0.1, SlowBody: time.Second}) {
		t.Errorf("faults = %+v", a.Faults)
	}
	if a.Keys["agency"] != (identity.BuyerIdentity{SeatID: "s-9", AgencyID: "ag-9"}) {
		t.Errorf("keys = %+v", a.Keys)
	}
	m, err := Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.AAMPToken != "tok-123" {
		t.Errorf("token %q", m.AAMPToken)
	}
	s := m.Seller("Alpha Video")
	if s.Trust != "approved" || len(s.Keys) != 1 || s.Keys["agency"] != mintKey("Alpha Video", "agency") {
		t.Errorf("seller trust %q keys %v", s.Trust, s.Keys)
	}
	if got := s.Faults(); got != a.Faults {
		t.Errorf("running faults %+v", got)
	}
	if err := s.SetFaults(Faults{}); err != nil {
		t.Fatal(err)
	}
	// Package price follows its product's per-seller base/floor.
	r := call(t, "GET", s.URL+"/packages/pkg-aaaaaaaa", nil, key(s, "agency")...)
	wantEq(t, "exact", num(t, get(t, r.body, "exact_price")), 27.0)
	wantEq(t, "floor", num(t, get(t, r.body, "floor_price")), 21.0)

	bad := map[string]string{
		"trust":    `{"sellers":[{"name":"x","trust":"friendly"}]}`,
		"duration": `{"sellers":[{"name":"x","trust":"approved","faults":{"latency":"fast"}}]}`,
		"unknown":  `{"sellers":[{"name":"x","trust":"approved","colour":"red"}]}`,
		"dup":      `{"sellers":[{"name":"x","trust":"approved"},{"name":"x","trust":"approved"}]}`,
		"slug":     `{"sellers":[{"name":"A B","trust":"approved"},{"name":"a-b","trust":"approved"}]}`,
		"tier":     `{"sellers":[{"name":"x","trust":"approved","keys":{"public":{}}}]}`,
		"rate":     `{"sellers":[{"name":"x","trust":"approved","faults":{"error_rate":1.5}}]}`,
		"noname":   `{"sellers":[{"name":"!!!","trust":"approved"}]}`,
	}
	for name, body := range bad {
		p := filepath.Join(dir, name+".json")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadMarket(p); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err = %v, want ErrConfig", name, err)
		}
	}
	if _, err := LoadMarket(filepath.Join(dir, "missing.json")); err == nil || errors.Is(err, ErrConfig) {
		t.Errorf("missing file: err = %v", err)
	}
}

func TestFaultsJSONRoundTrip(t *testing.T) {
	f := Faults{Latency: 1500 * time.Millisecond, Jitter: time.Millisecond, Down: true, ErrorRate: 0.25, Garbage: true,
		Truncated: true, Oversized: true, SlowBody: 2 * time.Second}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"latency":"1.5s"`) {
		t.Errorf("json %s", b)
	}
	var back Faults
	if err := json.Unmarshal(b, &back); err != nil || back != f {
		t.Errorf("round trip = %+v, %v", back, err)
	}
	if err := json.Unmarshal([]byte(`{"latency":2000000}`), &back); err != nil || back.Latency != 2*time.Millisecond {
		t.Errorf("nanoseconds: %+v %v", back, err)
	}
}

func TestDefaultMarket(t *testing.T) {
	cfg := DefaultMarket()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	m, err := Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	sum := m.Summary()
	raw, err := json.Marshal(sum)
	if err != nil {
		t.Fatal(err)
	}
	var generic map[string]any
	if err := json.Unmarshal(raw, &generic); err != nil {
		t.Fatal(err)
	}
	if generic["registry_url"] != m.RegistryURL || len(generic["sellers"].([]any)) != 7 {
		t.Fatalf("summary %s", raw)
	}
	first := generic["sellers"].([]any)[0].(map[string]any)
	keys := first["keys"].(map[string]any)
	if first["name"] != "StreamMax CTV" || first["trust"] != "preferred" || keys["seat"] == nil || keys["agency"] == nil || keys["advertiser"] == nil {
		t.Errorf("summary seller %v", first)
	}

	// Every healthy seller serves its packages at its own price level, and each
	// package's base/floor equal its main product's.
	levels := map[string]float64{}
	for _, s := range m.Sellers {
		if s.Faults().Down {
			continue
		}
		r := call(t, "GET", s.URL+"/media-kit", nil)
		wantStatus(t, r, 200)
		if n := integer(t, get(t, r.body, "total_packages")); n == 0 {
			t.Errorf("%s has no packages", s.Name)
		}
		for _, pc := range s.cfg.Packages {
			prod := s.productByID[pc.ProductIDs[0]]
			pk := s.packageByID(pc.ID)
			if pk == nil || pk.Base != prod.base() || pk.Floor != prod.floor() {
				t.Errorf("%s %s: package %v vs product %v/%v", s.Name, pc.ID, pk, prod.base(), prod.floor())
			}
			if pc.ProductIDs[0] == videoProduct {
				levels[s.Name] = prod.base()
			}
		}
	}
	if len(levels) < 4 || levels["StreamMax CTV"] == levels["Northwind Video"] {
		t.Errorf("video price levels do not vary: %v", levels)
	}
	// Quotes on the per-seller product price exactly like the real engine.
	s := m.Seller("Northwind Video")
	qid := quoteFor(t, s, key(s, "advertiser"), map[string]any{"product_id": videoProduct, "deal_type": "PD"})
	r := call(t, "GET", s.URL+"/api/v1/quotes/"+qid, nil)
	want := engine.Micros(engine.Price(22, identity.TierAdvertiser, 0).FinalPrice)
	wantEq(t, "northwind advertiser video", integer(t, get(t, r.body, "quote", "pricing", "final_cpm", "amount_micros")), want)
}

func TestGenerateMarket(t *testing.T) {
	cfg := GenerateMarket(12, 5*time.Millisecond)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Sellers) != 12 {
		t.Fatalf("sellers = %d", len(cfg.Sellers))
	}
	bases := map[float64]bool{}
	for i, s := range cfg.Sellers {
		if !s.InRegistry || s.Faults.Latency != 5*time.Millisecond || len(s.Packages) == 0 {
			t.Errorf("seller %d = %+v", i, s)
		}
		for _, p := range s.Products {
			if p.FloorCPM >= p.BaseCPM || p.FloorCPM <= 0 {
				t.Errorf("seller %d product %s base %v floor %v", i, p.ID, p.BaseCPM, p.FloorCPM)
			}
		}
		bases[s.Products[0].BaseCPM] = true
	}
	if len(bases) < 6 {
		t.Errorf("only %d distinct prices", len(bases))
	}
}

func TestMarketCloseAndContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	m, err := Start(ctx, fixtureConfig())
	if err != nil {
		t.Fatal(err)
	}
	s := m.Seller(fixtureSeller)
	wantStatus(t, call(t, "GET", s.URL+"/health", nil), 200)
	cancel()
	checkfor.Check(t, 2*time.Second, 10*time.Millisecond, func() error {
		res, err := rawGet(t, s.URL+"/health")
		if err != nil {
			return nil
		}
		res.Body.Close()
		return errors.New("market still serving after ctx cancel")
	})
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := s.SetFaults(Faults{}); err == nil {
		t.Error("SetFaults after Close brought the seller back")
	}
	if m.Seller("nobody") != nil {
		t.Error("Seller(unknown) != nil")
	}
	done, stop := context.WithCancel(context.Background())
	stop()
	if _, err := Start(done, fixtureConfig()); err == nil {
		t.Error("Start with a done context succeeded")
	}
}

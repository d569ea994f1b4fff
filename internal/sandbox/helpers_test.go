package sandbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dealflow/dealflow/pkg/identity"
)

const (
	fixtureSeller = "Fixture Seller"
	emptySeller   = "Empty Seller"
	oddKeysSeller = "Odd Keys Seller"
	p1            = "pkg-00000001"
	p2            = "pkg-00000002"
	videoProduct  = ProductPreRollVideo
	ctvProduct    = ProductCTVPremium
)

// fixtureConfig is the §8 fixture: a fresh seller with keys for seat, agency
// and advertiser and package P1 (base 35, floor 28, featured, tags
// [premium, sports], ad_formats [video], std segs [3,4], ctx segs [IAB17-1]).
func fixtureConfig() MarketConfig {
	return MarketConfig{Sellers: []SellerConfig{
		{
			Name: fixtureSeller, Trust: "approved", Capabilities: []string{"video", "ctv"}, InRegistry: true,
			RevokedKeys: []string{"ask_live_revoked_key_000000000000000000000000000"},
			Packages: []PackageConfig{
				{ID: p1, Name: "Premium Sports Video", Description: "Live sports highlights", ProductIDs: []string{ctvProduct},
					AdFormats: []string{"video"}, DeviceTypes: []int{3}, Tags: []string{"premium", "sports"}, Featured: true,
					BasePrice: 35, FloorPrice: 28, GeoTargets: []string{"US"},
					StandardSegments: []string{"3", "4"}, ContextualSegments: []string{"IAB17-1"}},
				{ID: p2, Name: "Homepage Banner", Description: "Display takeover", ProductIDs: []string{ProductPremiumDisplay},
					AdFormats: []string{"display"}, DeviceTypes: []int{2}, Tags: []string{"homepage"}},
			},
		},
		{Name: emptySeller, Trust: "registered", Capabilities: []string{"display"}, InRegistry: true},
		{Name: oddKeysSeller, Trust: "registered", Capabilities: []string{"video"}, InRegistry: false,
			Keys: map[string]identity.BuyerIdentity{"advertiser": {AdvertiserID: "adv-9"}}},
	}}
}

// fakeClock is an adjustable clock for expiry tests.
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

func startFixture(t *testing.T, opts ...Option) *Market {
	t.Helper()
	m, err := Start(t.Context(), fixtureConfig(), opts...)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// resp is a decoded HTTP response.
type resp struct {
	status int
	header http.Header
	raw    []byte
	body   any
}

// client is a plain net/http client with a short timeout.
var client = &http.Client{Timeout: 10 * time.Second}

// call sends a request. body may be nil, a string (sent raw) or any value
// (sent as JSON). hdr sets headers ("Content-Type" defaults to JSON).
func call(t *testing.T, method, url string, body any, hdr ...string) resp {
	t.Helper()
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
		ct = "application/json"
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(buf)
		ct = "application/json"
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read: %v", method, url, err)
	}
	out := resp{status: res.StatusCode, header: res.Header, raw: raw}
	if len(raw) > 0 && strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&out.body); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, url, raw, err)
		}
	}
	return out
}

func key(s *Seller, tier string) []string { return []string{"X-Api-Key", s.Keys[tier]} }

// get walks a decoded JSON value by keys and indexes.
func get(t *testing.T, v any, path ...any) any {
	t.Helper()
	cur := v
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := cur.(map[string]any)
			if !ok {
				t.Fatalf("path %v: %T is not an object (at %q)", path, cur, k)
			}
			cur, ok = m[k]
			if !ok {
				t.Fatalf("path %v: missing key %q in %v", path, k, m)
			}
		case int:
			a, ok := cur.([]any)
			if !ok || k >= len(a) {
				t.Fatalf("path %v: cannot index %d into %v", path, k, cur)
			}
			cur = a[k]
		}
	}
	return cur
}

func has(v any, k string) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	_, ok = m[k]
	return ok
}

func num(t *testing.T, v any) float64 {
	t.Helper()
	n, ok := v.(json.Number)
	if !ok {
		t.Fatalf("%v (%T) is not a number", v, v)
	}
	f, err := n.Float64()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func integer(t *testing.T, v any) int64 {
	t.Helper()
	n, ok := v.(json.Number)
	if !ok {
		t.Fatalf("%v (%T) is not a number", v, v)
	}
	i, err := n.Int64()
	if err != nil {
		t.Fatalf("%v is not an integer: %v", v, err)
	}
	return i
}

func wantStatus(t *testing.T, r resp, code int) {
	t.Helper()
	if r.status != code {
		t.Fatalf("status %d, want %d; body %s", r.status, code, r.raw)
	}
}

func wantEq(t *testing.T, what string, got, want any) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

var idemSeq struct {
	mu sync.Mutex
	n  int
}

// newKey returns a fresh idempotency key.
func newKey() string {
	idemSeq.mu.Lock()
	defer idemSeq.mu.Unlock()
	idemSeq.n++
	return fmt.Sprintf("idem-%d", idemSeq.n)
}

func micros(m int64) map[string]any { return map[string]any{"amount_micros": m, "currency": "USD"} }

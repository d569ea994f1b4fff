package sandbox

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Contract cases from seller-protocol.md §8, against a sandbox seller over HTTP.

func TestCase01AgentCard(t *testing.T) {
	m := startFixture(t)
	s := m.Seller(fixtureSeller)
	for _, path := range []string{"/.well-known/agent.json", "/.well-known/agent-card.json"} {
		r := call(t, "GET", s.URL+path, nil)
		wantStatus(t, r, 200)
		wantEq(t, "protocols", get(t, r.body, "capabilities", "protocols"), []any{"opendirect21"})
		wantEq(t, "schemes", get(t, r.body, "authentication", "schemes"), []any{"api_key", "bearer"})
		wantEq(t, "deal types", get(t, r.body, "supported_deal_types"), []any{"pg", "pmp", "preferred_deal", "private_auction"})
		wantEq(t, "schema_version", get(t, r.body, "audience_capabilities", "schema_version"), "1")
		wantEq(t, "url", get(t, r.body, "url"), s.URL)
		wantEq(t, "name", get(t, r.body, "name"), fixtureSeller)
		wantEq(t, "inventory_types", get(t, r.body, "inventory_types"), []any{"ctv", "display", "dooh", "linear_tv", "mobile_app", "native", "video"})
		if has(r.body, "seller_id") {
			t.Error("card must not carry seller_id")
		}
	}
	r := call(t, "GET", s.URL+"/", nil)
	wantEq(t, "root", r.body, map[string]any{"name": "Ad Seller System API", "version": "2.4.2", "docs": "/docs"})
	r = call(t, "GET", s.URL+"/health", nil)
	wantEq(t, "health", get(t, r.body, "status"), "healthy")
	r = call(t, "GET", s.URL+"/no/such/route", nil)
	wantStatus(t, r, 404)
	wantEq(t, "404 detail", get(t, r.body, "detail"), "Not Found")
	r = call(t, "DELETE", s.URL+"/health", nil)
	wantStatus(t, r, 405)
}

// TestProductPagesAreTheSellersRendering: pages assembled from the
// products' pre-rendered JSON are byte for byte what rendering the page as
// one JSON object gives (keys in order, numbers and escaping alike).
func TestProductPagesAreTheSellersRendering(t *testing.T) {
	m := startFixture(t)
	s := m.Seller(fixtureSeller)
	for _, pg := range [][2]int64{{50, 0}, {3, 0}, {2, 5}, {500, 0}, {1, 12}, {5, 13}, {10, 400}} {
		r := call(t, "GET", fmt.Sprintf("%s/products?limit=%d&offset=%d", s.URL, pg[0], pg[1]), nil)
		wantStatus(t, r, 200)
		total := len(s.products)
		start := min(int(pg[1]), total)
		end := min(start+int(pg[0]), total)
		page := []map[string]any{}
		for _, p := range s.products[start:end] {
			page = append(page, s.productWire(p))
		}
		want, err := encodeJSON(map[string]any{"products": page, "total_count": total, "limit": pg[0], "offset": pg[1]})
		if err != nil {
			t.Fatal(err)
		}
		if string(r.raw) != string(want) {
			t.Errorf("limit %d offset %d:\n got %s\nwant %s", pg[0], pg[1], r.raw, want)
		}
	}
}

func TestCases02to04Products(t *testing.T) {
	m := startFixture(t)
	s := m.Seller(fixtureSeller)
	r := call(t, "GET", s.URL+"/products?limit=3", nil)
	wantStatus(t, r, 200)
	wantEq(t, "total_count", get(t, r.body, "total_count"), 13)
	wantEq(t, "limit", get(t, r.body, "limit"), 3)
	wantEq(t, "offset", get(t, r.body, "offset"), 0)
	if n := len(get(t, r.body, "products").([]any)); n != 3 {
		t.Errorf("products = %d, want 3", n)
	}
	wantEq(t, "first id", get(t, r.body, "products", 0, "product_id"), "prod-91ddc363")
	wantEq(t, "first base", integer(t, get(t, r.body, "products", 0, "base_price", "amount_micros")), 15_000_000)
	wantEq(t, "floor in ext", num(t, get(t, r.body, "products", 0, "ext", "floor_cpm")), 10.0)

	r = call(t, "GET", s.URL+"/products?limit=0", nil)
	wantStatus(t, r, 422)
	wantEq(t, "loc", get(t, r.body, "detail", 0, "loc"), []any{"query", "limit"})

	r = call(t, "GET", s.URL+"/products/prod-nope", nil)
	wantStatus(t, r, 404)
	wantEq(t, "detail", get(t, r.body, "detail"), "Product not found")

	r = call(t, "GET", s.URL+"/products/"+videoProduct, nil)
	wantStatus(t, r, 200)
	wantEq(t, "name", get(t, r.body, "name"), "Pre-Roll Video")
	wantEq(t, "ad_formats", get(t, r.body, "ad_formats"), []any{"video"})
	wantEq(t, "deal types", get(t, r.body, "ext", "deal_types"), []any{"PG", "PD"})
	wantEq(t, "min impressions", get(t, r.body, "ext", "minimum_impressions"), 10000)
}

func TestCase05EmptyMediaKit(t *testing.T) {
	m := startFixture(t)
	r := call(t, "GET", m.Seller(emptySeller).URL+"/media-kit", nil)
	wantStatus(t, r, 200)
	wantEq(t, "media kit", r.body, map[string]any{"total_packages": 0, "featured_count": 0, "featured": []any{}, "all_packages": []any{}})
}

func TestCase06PublicPackageView(t *testing.T) {
	m := startFixture(t)
	s := m.Seller(fixtureSeller)
	r := call(t, "GET", s.URL+"/media-kit/packages/"+p1, nil)
	wantStatus(t, r, 200)
	wantEq(t, "price_range", get(t, r.body, "price_range"), "$28-$42 CPM")
	if has(r.body, "exact_price") || has(r.body, "placements") || has(r.body, "floor_price") {
		t.Errorf("public view leaks authenticated fields: %s", r.raw)
	}
	wantEq(t, "supports_standard", get(t, r.body, "audience_capabilities", "supports_standard"), true)
	wantEq(t, "supports_contextual", get(t, r.body, "audience_capabilities", "supports_contextual"), true)
	if has(get(t, r.body, "audience_capabilities"), "standard_segment_ids") {
		t.Error("public view leaks segment ids")
	}
	r = call(t, "GET", s.URL+"/media-kit/packages/pkg-nope", nil)
	wantStatus(t, r, 404)
	wantEq(t, "detail", get(t, r.body, "detail"), "Package not found")

	r = call(t, "GET", s.URL+"/media-kit", nil)
	wantEq(t, "total", get(t, r.body, "total_packages"), 2)
	wantEq(t, "featured", get(t, r.body, "featured_count"), 1)
	wantEq(t, "featured id", get(t, r.body, "featured", 0, "package_id"), p1)
}

func TestCases07to10AuthenticatedPackageViews(t *testing.T) {
	m := startFixture(t)
	s := m.Seller(fixtureSeller)
	tests := []struct {
		name        string
		query       string
		hdr         []string
		exact       float64
		rangeStr    string
		negotiation bool
		volume      bool
	}{
		{"07 seat key", "", key(s, "seat"), 33.25, "$33 CPM", false, false},
		{"08 agency key", "", key(s, "agency"), 31.5, "$32 CPM", true, true},
		{"08 advertiser key", "", key(s, "advertiser"), 29.75, "$30 CPM", true, true},
		{"08 bearer agency key", "", []string{"Authorization", "Bearer " + s.Keys["agency"]}, 31.5, "$32 CPM", true, true},
		{"09 unverified claim", "?buyer_tier=agency&agency_id=a", nil, 31.5, "$32 CPM", true, true},
		{"10 claim without ids", "?buyer_tier=advertiser", nil, 35.0, "$28-$42 CPM", false, false},
		{"key wins over query", "?buyer_tier=advertiser&agency_id=x&advertiser_id=y", key(s, "seat"), 33.25, "$33 CPM", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, "GET", s.URL+"/packages/"+p1+tc.query, nil, tc.hdr...)
			wantStatus(t, r, 200)
			wantEq(t, "exact_price", num(t, get(t, r.body, "exact_price")), tc.exact)
			wantEq(t, "price_range", get(t, r.body, "price_range"), tc.rangeStr)
			wantEq(t, "floor_price", num(t, get(t, r.body, "floor_price")), 28.0)
			wantEq(t, "negotiation_enabled", get(t, r.body, "negotiation_enabled"), tc.negotiation)
			wantEq(t, "volume_discounts_available", get(t, r.body, "volume_discounts_available"), tc.volume)
			wantEq(t, "placement", get(t, r.body, "placements", 0, "product_id"), ctvProduct)
			wantEq(t, "segments", get(t, r.body, "audience_capabilities", "standard_segment_ids"), []any{"3", "4"})
		})
	}
	// Anonymous and buyer_tier=public get the public view.
	r := call(t, "GET", s.URL+"/packages/"+p1, nil)
	if has(r.body, "exact_price") {
		t.Error("anonymous GET /packages/{id} returned the authenticated view")
	}
	r = call(t, "GET", s.URL+"/packages", nil, key(s, "agency")...)
	wantEq(t, "list exact", num(t, get(t, r.body, "packages", 0, "exact_price")), 31.5)
	// exact_price is a JSON float even when whole.
	r = call(t, "GET", s.URL+"/packages/"+p1+"?buyer_tier=advertiser", nil)
	if !strings.Contains(string(r.raw), `"exact_price":35.0`) {
		t.Errorf("exact_price not rendered as a float: %s", r.raw)
	}
}

func TestCase11Search(t *testing.T) {
	m := startFixture(t)
	s := m.Seller(fixtureSeller)
	r := call(t, "POST", s.URL+"/media-kit/search", map[string]any{"query": "sports video"})
	wantStatus(t, r, 200)
	results := get(t, r.body, "results").([]any)
	if len(results) != 1 {
		t.Fatalf("results = %d, want 1 (%s)", len(results), r.raw)
	}
	wantEq(t, "first", get(t, results[0], "package_id"), p1)
	if has(results[0], "exact_price") {
		t.Error("anonymous search returned an authenticated view")
	}
	// Featured ×1.5 ranks P1 over P2 for a query both match.
	r = call(t, "POST", s.URL+"/media-kit/search", map[string]any{"query": "homepage premium"})
	wantEq(t, "ranked", get(t, r.body, "results", 0, "package_id"), p1)
	wantEq(t, "ranked second", get(t, r.body, "results", 1, "package_id"), p2)
	// Authenticated view with a key or a non-public claim.
	r = call(t, "POST", s.URL+"/media-kit/search", map[string]any{"query": "sports"}, key(s, "agency")...)
	wantEq(t, "agency exact", num(t, get(t, r.body, "results", 0, "exact_price")), 31.5)
	r = call(t, "POST", s.URL+"/media-kit/search", map[string]any{"query": "sports", "buyer_tier": "agency", "agency_id": "a"})
	wantEq(t, "claimed exact", num(t, get(t, r.body, "results", 0, "exact_price")), 31.5)
	// Segment ids are in the corpus; the audience filter restricts.
	r = call(t, "POST", s.URL+"/media-kit/search", map[string]any{"query": "iab17-1"})
	wantEq(t, "segment search", get(t, r.body, "results", 0, "package_id"), p1)
	r = call(t, "POST", s.URL+"/media-kit/search", map[string]any{"query": "premium homepage",
		"audience_filter": map[string]any{"audience_type": "contextual", "audience_id": "IAB17-1"}})
	wantEq(t, "filtered", len(get(t, r.body, "results").([]any)), 1)
	r = call(t, "POST", s.URL+"/media-kit/search", map[string]any{})
	wantStatus(t, r, 422)
	wantEq(t, "missing query", get(t, r.body, "detail", 0, "loc"), []any{"body", "query"})
}

func TestCase12MediaKitFilters(t *testing.T) {
	m := startFixture(t)
	s := m.Seller(fixtureSeller)
	tests := []struct {
		query  string
		status int
		detail string
		ids    []string
	}{
		{"?layer=bogus", 400, "Invalid layer: bogus", nil},
		{"?audience_id=3", 400, "audience_id requires audience_type to disambiguate corpus.", nil},
		{"?audience_type=foo", 400, "Invalid audience_type: 'foo'. Must be one of ['agentic', 'contextual', 'standard'].", nil},
		{"?audience_type=standard&audience_id=3", 200, "", []string{p1}},
		{"?audience_type=standard&audience_id=9", 200, "", []string{}},
		{"?audience_type=standard&audience_taxonomy_version=9.9", 200, "", []string{}},
		{"?audience_type=contextual", 200, "", []string{p1}},
		{"?featured_only=true", 200, "", []string{p1}},
		{"?layer=curated", 200, "", []string{p1, p2}},
		{"?layer=synced", 200, "", []string{}},
		{"", 200, "", []string{p1, p2}},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			r := call(t, "GET", s.URL+"/media-kit/packages"+tc.query, nil)
			wantStatus(t, r, tc.status)
			if tc.status != 200 {
				wantEq(t, "detail", get(t, r.body, "detail"), tc.detail)
				return
			}
			var ids []string
			for _, p := range get(t, r.body, "packages").([]any) {
				ids = append(ids, get(t, p, "package_id").(string))
			}
			wantEq(t, "ids", ids, tc.ids)
		})
	}
	r := call(t, "GET", s.URL+"/media-kit/packages?featured_only=maybe", nil)
	wantStatus(t, r, 422)
	r = call(t, "GET", s.URL+"/packages?layer=bogus", nil)
	wantStatus(t, r, 400)
}

func TestCase13InvalidAndRevokedKeys(t *testing.T) {
	m := startFixture(t)
	s := m.Seller(fixtureSeller)
	quote := map[string]any{"idempotency_key": "k", "product_id": videoProduct, "deal_type": "PD"}
	for _, tc := range []struct {
		method, path string
		body         any
	}{
		{"GET", "/packages", nil},
		{"GET", "/packages/" + p1, nil},
		{"POST", "/api/v1/quotes", quote},
		{"POST", "/media-kit/search", map[string]any{"query": "x"}},
		{"POST", "/api/v1/deals", map[string]any{"idempotency_key": "k", "quote_id": "qt-x"}},
		{"POST", "/api/v1/negotiations/messages", map[string]any{"idempotency_key": "k", "action": "accept", "quote_id": "qt-x"}},
	} {
		r := call(t, tc.method, s.URL+tc.path, tc.body, "X-Api-Key", "ask_live_bogus")
		wantStatus(t, r, 401)
		wantEq(t, tc.path+" detail", get(t, r.body, "detail"), "Invalid API key")
		wantEq(t, tc.path+" WWW-Authenticate", r.header.Get("WWW-Authenticate"), "Bearer")
	}
	r := call(t, "POST", s.URL+"/api/v1/quotes", quote, "Authorization", "bearer ask_live_bogus")
	wantStatus(t, r, 401)
	r = call(t, "GET", s.URL+"/packages", nil, "X-Api-Key", "ask_live_revoked_key_000000000000000000000000000")
	wantStatus(t, r, 401)
	if d := get(t, r.body, "detail").(string); !regexp.MustCompile(`^API key key-[0-9a-f]{8} has been revoked$`).MatchString(d) {
		t.Errorf("revoked detail = %q", d)
	}
	// Other schemes are anonymous; no-auth endpoints ignore keys entirely.
	r = call(t, "GET", s.URL+"/packages/"+p1, nil, "Authorization", "Token ask_live_bogus")
	wantStatus(t, r, 200)
	r = call(t, "GET", s.URL+"/media-kit", nil, "X-Api-Key", "ask_live_bogus")
	wantStatus(t, r, 200)
	// Key format.
	for tier, k := range s.Keys {
		if !regexp.MustCompile(`^ask_live_[A-Za-z0-9_-]{43}$`).MatchString(k) {
			t.Errorf("%s key %q has the wrong format", tier, k)
		}
	}
}

func TestCase14OperatorPackageCreate(t *testing.T) {
	m := startFixture(t)
	s := m.Seller(emptySeller)
	body := map[string]any{"name": "New CTV", "product_ids": []string{ctvProduct}, "base_price": 35.0, "floor_price": 28.0,
		"tags": []string{"ctv"}, "is_featured": true}
	r := call(t, "POST", s.URL+"/packages", body)
	wantStatus(t, r, 401)
	wantEq(t, "anon detail", get(t, r.body, "detail"), "Authentication required")
	r = call(t, "POST", s.URL+"/packages", body, key(s, "agency")...)
	wantStatus(t, r, 403)
	wantEq(t, "buyer detail", get(t, r.body, "detail"), "Operator credential required")
	r = call(t, "POST", s.URL+"/packages", body, "X-Api-Key", s.OperatorKey)
	wantStatus(t, r, 200)
	id := get(t, r.body, "package_id").(string)
	if !regexp.MustCompile(`^pkg-[0-9a-f]{8}$`).MatchString(id) {
		t.Errorf("package id %q", id)
	}
	wantEq(t, "layer", get(t, r.body, "layer"), "curated")
	r = call(t, "GET", s.URL+"/media-kit", nil)
	wantEq(t, "total", get(t, r.body, "total_packages"), 1)
	wantEq(t, "range", get(t, r.body, "all_packages", 0, "price_range"), "$28-$42 CPM")
	r = call(t, "POST", s.URL+"/packages", map[string]any{"name": "x", "product_ids": []string{"prod-nope"}, "base_price": 1, "floor_price": 1},
		"X-Api-Key", s.OperatorKey)
	wantStatus(t, r, 422)
	wantEq(t, "unresolvable", get(t, r.body, "detail", "error"), "unresolvable_product_ids")
}

var quoteIDRe = regexp.MustCompile(`^qt-[0-9a-f]{12}$`)

func TestCases15and16QuoteAndIdempotency(t *testing.T) {
	m := startFixture(t)
	s := m.Seller(fixtureSeller)
	body := map[string]any{"idempotency_key": "k1", "product_id": videoProduct, "deal_type": "PD"}
	r := call(t, "POST", s.URL+"/api/v1/quotes", body)
	wantStatus(t, r, 200)
	q := get(t, r.body, "quote")
	id := get(t, q, "quote_id").(string)
	if !quoteIDRe.MatchString(id) {
		t.Errorf("quote_id %q", id)
	}
	wantEq(t, "status", get(t, q, "status"), "available")
	wantEq(t, "buyer_tier", get(t, q, "buyer_tier"), "public")
	wantEq(t, "base", integer(t, get(t, q, "pricing", "base_cpm", "amount_micros")), 25_000_000)
	wantEq(t, "final", integer(t, get(t, q, "pricing", "final_cpm", "amount_micros")), 25_000_000)
	wantEq(t, "tier pct", num(t, get(t, q, "pricing", "tier_discount_pct")), 0.0)
	wantEq(t, "guaranteed", get(t, q, "terms", "guaranteed"), false)
	wantEq(t, "media_type", get(t, q, "media_type"), "digital")
	wantEq(t, "seller_id", get(t, q, "seller_id"), "seller-premium-pub-001")
	created, err1 := time.Parse(time.RFC3339Nano, get(t, q, "created_at").(string))
	expires, err2 := time.Parse(time.RFC3339Nano, get(t, q, "expires_at").(string))
	if err1 != nil || err2 != nil || expires.Sub(created) != 24*time.Hour {
		t.Errorf("expires-created = %v (%v %v)", expires.Sub(created), err1, err2)
	}
	if !strings.HasSuffix(get(t, q, "created_at").(string), "Z") {
		t.Error("created_at lacks Z")
	}
	if !strings.Contains(string(r.raw), `"tier_discount_pct":0.0`) {
		t.Errorf("tier_discount_pct not a float: %s", r.raw)
	}

	// 16: replay → same quote, reordered fields still the same body.
	r2 := call(t, "POST", s.URL+"/api/v1/quotes", `{"deal_type":"PD","product_id":"`+videoProduct+`","idempotency_key":"k1","unknown_field":1}`)
	wantStatus(t, r2, 200)
	wantEq(t, "replayed id", get(t, r2.body, "quote", "quote_id"), id)
	body["deal_type"] = "PA"
	r3 := call(t, "POST", s.URL+"/api/v1/quotes", body)
	wantStatus(t, r3, 409)
	wantEq(t, "conflict", get(t, r3.body, "detail", "error"), "idempotency_conflict")
	wantEq(t, "unsupported", get(t, r3.body, "detail", "unsupported"), []any{})

	// Scoped per buyer: the same key from a keyed buyer is a different record.
	r4 := call(t, "POST", s.URL+"/api/v1/quotes", body, key(s, "seat")...)
	wantStatus(t, r4, 200)
	if get(t, r4.body, "quote", "quote_id") == id {
		t.Error("idempotency key leaked across buyers")
	}
	// Only successes are stored: a failure can be retried with its key.
	bad := map[string]any{"idempotency_key": "k2", "product_id": "prod-nope", "deal_type": "PD"}
	wantStatus(t, call(t, "POST", s.URL+"/api/v1/quotes", bad), 404)
	bad["product_id"] = videoProduct
	wantStatus(t, call(t, "POST", s.URL+"/api/v1/quotes", bad), 200)
}

func TestCase17QuoteValidation(t *testing.T) {
	m := startFixture(t)
	s := m.Seller(fixtureSeller)
	r := call(t, "POST", s.URL+"/api/v1/quotes", map[string]any{"product_id": videoProduct, "deal_type": "PD"})
	wantStatus(t, r, 422)
	wantEq(t, "loc", get(t, r.body, "detail", 0, "loc"), []any{"body", "idempotency_key"})
	wantEq(t, "type", get(t, r.body, "detail", 0, "type"), "missing")
	r = call(t, "POST", s.URL+"/api/v1/quotes", map[string]any{"idempotency_key": "k", "product_id": videoProduct, "deal_type": "preferred_deal"})
	wantStatus(t, r, 422)
	wantEq(t, "type", get(t, r.body, "detail", 0, "type"), "enum")
	wantEq(t, "msg", get(t, r.body, "detail", 0, "msg"), "Input should be 'PG', 'PD' or 'PA'")
	r = call(t, "POST", s.URL+"/api/v1/quotes", map[string]any{"idempotency_key": "", "product_id": videoProduct, "deal_type": "PD"})
	wantStatus(t, r, 422)
	wantEq(t, "type", get(t, r.body, "detail", 0, "type"), "string_too_short")
	r = call(t, "POST", s.URL+"/api/v1/quotes", `{"idempotency_key": "k",`)
	wantStatus(t, r, 422)
	wantEq(t, "type", get(t, r.body, "detail", 0, "type"), "json_invalid")
	r = call(t, "POST", s.URL+"/api/v1/quotes", map[string]any{"idempotency_key": "k", "product_id": videoProduct, "deal_type": "PD", "impressions": -1})
	wantStatus(t, r, 422)
	wantEq(t, "type", get(t, r.body, "detail", 0, "type"), "greater_than_equal")
}

func TestCase18QuoteBusinessErrors(t *testing.T) {
	m := startFixture(t)
	s := m.Seller(fixtureSeller)
	tests := []struct {
		name   string
		body   map[string]any
		status int
		code   string
	}{
		{"PG without impressions", map[string]any{"product_id": videoProduct, "deal_type": "PG"}, 400, "pg_requires_impressions"},
		{"below minimum", map[string]any{"product_id": videoProduct, "deal_type": "PD", "impressions": 500}, 400, "below_minimum_impressions"},
		{"unknown product", map[string]any{"product_id": "prod-nope", "deal_type": "PD"}, 404, "product_not_found"},
		{"linear tv", map[string]any{"product_id": videoProduct, "deal_type": "PD", "media_type": "linear_tv", "linear_tv": map[string]any{"target_demo": "A18-49"}}, 400, "unsupported_capability"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.body["idempotency_key"] = newKey()
			r := call(t, "POST", s.URL+"/api/v1/quotes", tc.body)
			wantStatus(t, r, tc.status)
			wantEq(t, "error", get(t, r.body, "detail", "error"), tc.code)
		})
	}
	r := call(t, "POST", s.URL+"/api/v1/quotes", map[string]any{"idempotency_key": newKey(), "product_id": ProductDOOHTimesSquare, "deal_type": "PD"})
	wantStatus(t, r, 422)
	if d, ok := get(t, r.body, "detail").(string); !ok || !strings.Contains(d, "has no base_cpm or floor_cpm") {
		t.Errorf("unpriced detail = %v", get(t, r.body, "detail"))
	}
	r = call(t, "POST", s.URL+"/api/v1/quotes", map[string]any{"idempotency_key": newKey(), "product_id": videoProduct, "deal_type": "PD", "linear_tv": map[string]any{"target_demo": "A18-49"}})
	wantStatus(t, r, 422)
	wantEq(t, "validator loc", get(t, r.body, "detail", 0, "loc"), []any{"body"})
}

func TestCase21StrictMoney(t *testing.T) {
	m := startFixture(t)
	s := m.Seller(fixtureSeller)
	base := `{"idempotency_key":"k","product_id":"` + videoProduct + `","deal_type":"PD","target_cpm":`
	tests := []struct {
		target string
		typ    string
		loc    []any
	}{
		{`20.0`, "model_attributes_type", []any{"body", "target_cpm"}},
		{`{"amount_micros":20000000.0}`, "int_type", []any{"body", "target_cpm", "amount_micros"}},
		{`{"amount_micros":"20000000"}`, "int_type", []any{"body", "target_cpm", "amount_micros"}},
		{`{"amount_micros":20000000,"currency":"eur"}`, "string_pattern_mismatch", []any{"body", "target_cpm", "currency"}},
		{`{"currency":"USD"}`, "missing", []any{"body", "target_cpm", "amount_micros"}},
	}
	for _, tc := range tests {
		t.Run(tc.target, func(t *testing.T) {
			r := call(t, "POST", s.URL+"/api/v1/quotes", base+tc.target+"}")
			wantStatus(t, r, 422)
			wantEq(t, "type", get(t, r.body, "detail", 0, "type"), tc.typ)
			wantEq(t, "loc", get(t, r.body, "detail", 0, "loc"), tc.loc)
		})
	}
	r := call(t, "POST", s.URL+"/api/v1/quotes", base+`{"amount_micros":20000000}}`)
	wantStatus(t, r, 200)
}

func TestCases22to25QuotePricing(t *testing.T) {
	m := startFixture(t)
	s := m.Seller(fixtureSeller)
	odd := m.Seller(oddKeysSeller)
	tests := []struct {
		name      string
		url       string
		hdr       []string
		body      map[string]any
		final     int64
		tierPct   float64
		volPct    float64
		tier      string
		available *bool
	}{
		{"22 seat PG 6M", s.URL, key(s, "seat"), map[string]any{"product_id": videoProduct, "deal_type": "PG", "impressions": 6_000_000}, 23_750_000, 5.0, 0.0, "seat", nil},
		{"22 agency PG 6M", s.URL, key(s, "agency"), map[string]any{"product_id": videoProduct, "deal_type": "PG", "impressions": 6_000_000}, 21_380_000, 10.0, 5.0, "agency", nil},
		{"22 advertiser PG 6M", s.URL, key(s, "advertiser"), map[string]any{"product_id": videoProduct, "deal_type": "PG", "impressions": 6_000_000}, 20_190_000, 15.0, 5.0, "advertiser", nil},
		{"22 advertiser_id-only key", odd.URL, key(odd, "advertiser"), map[string]any{"product_id": videoProduct, "deal_type": "PG", "impressions": 6_000_000}, 25_000_000, 0.0, 0.0, "public", nil},
		{"23 anon body identity floored", s.URL, nil, map[string]any{"product_id": videoProduct, "deal_type": "PD",
			"buyer_identity": map[string]any{"agency_id": "agency-1", "advertiser_id": "adv-1"}}, 25_000_000, 0.0, 0.0, "public", nil},
		{"24 advertiser CTV PG 60M", s.URL, key(s, "advertiser"), map[string]any{"product_id": ctvProduct, "deal_type": "PG", "impressions": 60_000_000}, 23_800_000, 15.0, 20.0, "advertiser", new(false)},
		{"25 anon target above floor", s.URL, nil, map[string]any{"product_id": videoProduct, "deal_type": "PD", "target_cpm": micros(19_000_000)}, 19_000_000, 0, 0, "public", new(true)},
		{"25 anon target below floor", s.URL, nil, map[string]any{"product_id": videoProduct, "deal_type": "PD", "target_cpm": micros(17_000_000)}, 25_000_000, 0, 0, "public", nil},
		{"25 advertiser target above price", s.URL, key(s, "advertiser"), map[string]any{"product_id": videoProduct, "deal_type": "PD", "target_cpm": micros(30_000_000)}, 30_000_000, 15.0, 0, "advertiser", nil},
		{"unknown agent_url downgrades a key", s.URL, key(s, "agency"), map[string]any{"product_id": videoProduct, "deal_type": "PD", "agent_url": "http://127.0.0.1:1/unknown"}, 25_000_000, 0, 0, "public", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.body["idempotency_key"] = newKey()
			r := call(t, "POST", tc.url+"/api/v1/quotes", tc.body, tc.hdr...)
			wantStatus(t, r, 200)
			q := get(t, r.body, "quote")
			wantEq(t, "final", integer(t, get(t, q, "pricing", "final_cpm", "amount_micros")), tc.final)
			wantEq(t, "tier pct", num(t, get(t, q, "pricing", "tier_discount_pct")), tc.tierPct)
			wantEq(t, "volume pct", num(t, get(t, q, "pricing", "volume_discount_pct")), tc.volPct)
			wantEq(t, "tier", get(t, q, "buyer_tier"), tc.tier)
			if tc.available != nil {
				wantEq(t, "inventory_available", get(t, q, "availability", "inventory_available"), *tc.available)
			}
		})
	}
}

func TestCase27QuoteNotFoundAndExpiry(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 11, 25, 18, 55, 22, 955953000, time.UTC)}
	m := startFixture(t, WithClock(clk.now))
	s := m.Seller(fixtureSeller)
	r := call(t, "GET", s.URL+"/api/v1/quotes/qt-nope", nil)
	wantStatus(t, r, 404)
	wantEq(t, "error", get(t, r.body, "detail", "error"), "quote_not_found")
	r = call(t, "POST", s.URL+"/api/v1/quotes", map[string]any{"idempotency_key": newKey(), "product_id": videoProduct, "deal_type": "PD"})
	wantStatus(t, r, 200)
	wantEq(t, "created_at", get(t, r.body, "quote", "created_at"), "2026-11-25T18:55:22.955953Z")
	id := get(t, r.body, "quote", "quote_id").(string)
	clk.advance(24*time.Hour - time.Second)
	wantStatus(t, call(t, "GET", s.URL+"/api/v1/quotes/"+id, nil), 200)
	clk.advance(2 * time.Second)
	r = call(t, "GET", s.URL+"/api/v1/quotes/"+id, nil)
	wantStatus(t, r, 410)
	wantEq(t, "error", get(t, r.body, "detail", "error"), "quote_expired")
	r = call(t, "POST", s.URL+"/api/v1/deals", map[string]any{"idempotency_key": newKey(), "quote_id": id})
	wantStatus(t, r, 410)
}

var dealIDRe = regexp.MustCompile(`^DEMO-[0-9A-F]{12}$`)

func quoteFor(t *testing.T, s *Seller, hdr []string, body map[string]any) string {
	t.Helper()
	body["idempotency_key"] = newKey()
	r := call(t, "POST", s.URL+"/api/v1/quotes", body, hdr...)
	wantStatus(t, r, 200)
	return get(t, r.body, "quote", "quote_id").(string)
}

func TestCases28to30Booking(t *testing.T) {
	m := startFixture(t)
	s := m.Seller(fixtureSeller)
	qid := quoteFor(t, s, key(s, "agency"), map[string]any{"product_id": videoProduct, "deal_type": "PD"})
	book := map[string]any{"idempotency_key": "book-1", "quote_id": qid, "notes": "first"}
	r := call(t, "POST", s.URL+"/api/v1/deals", book, key(s, "agency")...)
	wantStatus(t, r, 200)
	d := get(t, r.body, "deal")
	dealID := get(t, d, "deal_id").(string)
	if !dealIDRe.MatchString(dealID) {
		t.Errorf("deal_id %q", dealID)
	}
	wantEq(t, "status", get(t, d, "status"), "proposed")
	wantEq(t, "at", get(t, d, "openrtb_params", "at"), 1)
	wantEq(t, "bidfloor", get(t, d, "openrtb_params", "bidfloor"), get(t, d, "pricing", "final_cpm"))
	wantEq(t, "final", integer(t, get(t, d, "pricing", "final_cpm", "amount_micros")), 22_500_000)
	for _, k := range []string{"ttd", "dv360", "xandr"} {
		if !strings.Contains(get(t, d, "activation_instructions", k).(string), dealID) {
			t.Errorf("activation %s lacks the deal id", k)
		}
	}
	exp, err := time.Parse(time.RFC3339Nano, get(t, d, "expires_at").(string))
	if err != nil || time.Until(exp) < 30*24*time.Hour-time.Minute || time.Until(exp) > 30*24*time.Hour+time.Minute {
		t.Errorf("expires_at %v not ≈ now+30d (%v)", exp, err)
	}
	wantEq(t, "snapshot", get(t, r.body, "audience_plan_snapshot"), nil)
	wantEq(t, "buyer_tier", get(t, d, "buyer_tier"), "agency")

	// 29: replay, conflict, rebook.
	r2 := call(t, "POST", s.URL+"/api/v1/deals", book, key(s, "agency")...)
	wantStatus(t, r2, 200)
	wantEq(t, "replay deal", get(t, r2.body, "deal", "deal_id"), dealID)
	book["notes"] = "second"
	r3 := call(t, "POST", s.URL+"/api/v1/deals", book, key(s, "agency")...)
	wantStatus(t, r3, 409)
	wantEq(t, "conflict", get(t, r3.body, "detail", "error"), "idempotency_conflict")
	r4 := call(t, "POST", s.URL+"/api/v1/deals", map[string]any{"idempotency_key": "book-2", "quote_id": qid}, key(s, "agency")...)
	wantStatus(t, r4, 409)
	wantEq(t, "rebook", get(t, r4.body, "detail", "error"), "quote_already_booked")
	wantEq(t, "rebook msg", get(t, r4.body, "detail", "message"), "Quote status is 'booked', expected 'available'.")

	// 30: reads.
	r5 := call(t, "GET", s.URL+"/api/v1/quotes/"+qid, nil)
	wantEq(t, "quote status", get(t, r5.body, "quote", "status"), "booked")
	wantEq(t, "quote deal", get(t, r5.body, "quote", "deal_id"), dealID)
	r6 := call(t, "GET", s.URL+"/api/v1/deals/"+dealID, nil)
	wantStatus(t, r6, 200)
	wantEq(t, "deal read", get(t, r6.body, "deal"), d)
	r7 := call(t, "GET", s.URL+"/api/v1/deals/DEMO-NOPE", nil)
	wantStatus(t, r7, 404)
	wantEq(t, "not found", get(t, r7.body, "detail", "error"), "deal_not_found")
	r8 := call(t, "POST", s.URL+"/api/v1/deals", map[string]any{"idempotency_key": "b3", "quote_id": "qt-nope"})
	wantStatus(t, r8, 404)
	wantEq(t, "unknown quote", get(t, r8.body, "detail", "error"), "quote_not_found")

	// PA → auction type 3.
	pa := quoteFor(t, s, nil, map[string]any{"product_id": videoProduct, "deal_type": "PA"})
	r9 := call(t, "POST", s.URL+"/api/v1/deals", map[string]any{"idempotency_key": "b4", "quote_id": pa})
	wantEq(t, "PA at", get(t, r9.body, "deal", "openrtb_params", "at"), 3)

	deals := s.Deals()
	if len(deals) != 2 || deals[0].DealID != dealID || deals[0].FinalMicros != 22_500_000 || deals[0].BuyerTier != "agency" || deals[1].DealType != "PA" {
		t.Errorf("Deals() = %+v", deals)
	}
}

// negotiate posts one negotiation message and returns the response.
func negotiate(t *testing.T, s *Seller, hdr []string, msg map[string]any) resp {
	t.Helper()
	if _, ok := msg["idempotency_key"]; !ok {
		msg["idempotency_key"] = newKey()
	}
	return call(t, "POST", s.URL+"/api/v1/negotiations/messages", msg, hdr...)
}

func TestCases31and32PublicVideoTraceAndReplay(t *testing.T) {
	m := startFixture(t)
	s := m.Seller(fixtureSeller)
	qid := quoteFor(t, s, nil, map[string]any{"product_id": videoProduct, "deal_type": "PD"})
	steps := []struct {
		offer     int64
		action    string
		seller    int64
		remaining int
		status    string
	}{
		{20_000_000, "counter", 24_250_000, 2, "active"},
		{21_000_000, "counter", 23_500_000, 1, "active"},
		{22_000_000, "final_offer", 23_000_000, 0, "active"},
		{23_000_000, "accept", 23_000_000, 0, "accepted"},
	}
	var negID string
	for i, st := range steps {
		key := newKey()
		msg := map[string]any{"idempotency_key": key, "action": "counter", "quote_id": qid, "buyer_price": micros(st.offer)}
		r := negotiate(t, s, nil, msg)
		wantStatus(t, r, 200)
		wantEq(t, "action", get(t, r.body, "round", "action"), st.action)
		wantEq(t, "seller", integer(t, get(t, r.body, "round", "seller_price", "amount_micros")), st.seller)
		wantEq(t, "round", get(t, r.body, "round", "round_number"), i+1)
		wantEq(t, "remaining", get(t, r.body, "rounds_remaining"), st.remaining)
		wantEq(t, "status", get(t, r.body, "status"), st.status)
		negID = get(t, r.body, "negotiation_id").(string)
		if i == 0 {
			// 32: replay the same message → identical round, no new round.
			again := negotiate(t, s, nil, msg)
			wantEq(t, "replay", string(again.raw), string(r.raw))
			h := call(t, "GET", s.URL+"/proposals/"+qid+"/negotiation", nil)
			wantEq(t, "total_rounds", get(t, h.body, "total_rounds"), 1)
			msg2 := map[string]any{"idempotency_key": key, "action": "counter", "quote_id": qid, "buyer_price": micros(20_000_001)}
			wantStatus(t, negotiate(t, s, nil, msg2), 409)
		}
	}
	if !regexp.MustCompile(`^neg-[0-9a-f]{8}$`).MatchString(negID) {
		t.Errorf("negotiation_id %q", negID)
	}
	h := call(t, "GET", s.URL+"/proposals/"+qid+"/negotiation", nil)
	wantStatus(t, h, 200)
	wantEq(t, "strategy", get(t, h.body, "strategy"), "aggressive")
	wantEq(t, "floor leaked", num(t, get(t, h.body, "floor_price")), 18.0)
	wantEq(t, "status", get(t, h.body, "status"), "accepted")
	wantEq(t, "max_rounds", get(t, h.body, "max_rounds"), 3)
	wantEq(t, "round 3 concession", num(t, get(t, h.body, "rounds", 2, "cumulative_concession_pct")), 0.08)
	if get(t, h.body, "completed_at") == nil {
		t.Error("completed_at not set")
	}
	// 33: counter after accepted.
	r := negotiate(t, s, nil, map[string]any{"action": "counter", "quote_id": qid, "buyer_price": micros(22_000_000)})
	wantStatus(t, r, 400)
	wantEq(t, "detail", get(t, r.body, "detail"), "Negotiation is accepted, cannot counter")
	// 31: booking strikes the negotiated price.
	b := call(t, "POST", s.URL+"/api/v1/deals", map[string]any{"idempotency_key": newKey(), "quote_id": qid})
	wantStatus(t, b, 200)
	wantEq(t, "final", integer(t, get(t, b.body, "deal", "pricing", "final_cpm", "amount_micros")), 23_000_000)
	wantEq(t, "bidfloor", integer(t, get(t, b.body, "deal", "openrtb_params", "bidfloor", "amount_micros")), 23_000_000)
	rat := get(t, b.body, "deal", "pricing", "rationale").(string)
	if !strings.HasSuffix(rat, "Negotiated to $23.00 CPM ("+negID+")") {
		t.Errorf("rationale %q", rat)
	}
	if d := s.Deals(); len(d) != 1 || !d[0].Negotiated || d[0].NegotiationID != negID || d[0].FinalMicros != 23_000_000 {
		t.Errorf("Deals() = %+v", d)
	}
}

func TestCase34NegotiationValidation(t *testing.T) {
	m := startFixture(t)
	s := m.Seller(fixtureSeller)
	tests := []struct {
		name string
		body any
		msg  string
	}{
		{"counter without price", map[string]any{"idempotency_key": "k", "action": "counter", "quote_id": "qt-x"}, "Value error, action 'counter' requires buyer_price"},
		{"final_offer without price", map[string]any{"idempotency_key": "k", "action": "final_offer", "quote_id": "qt-x"}, "Value error, action 'final_offer' requires buyer_price"},
		{"reject with price", map[string]any{"idempotency_key": "k", "action": "reject", "quote_id": "qt-x", "buyer_price": micros(1)}, "Value error, action 'reject' must not carry buyer_price"},
		{"no ids", map[string]any{"idempotency_key": "k", "action": "accept"}, "Value error, NegotiationMessage requires negotiation_id, proposal_id, or quote_id"},
		{"legacy price", map[string]any{"price": 20.0}, "Field required"},
		{"float micros", map[string]any{"idempotency_key": "k", "action": "counter", "quote_id": "qt-x", "buyer_price": map[string]any{"amount_micros": 20000000.5}}, "Input should be a valid integer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, "POST", s.URL+"/api/v1/negotiations/messages", tc.body)
			wantStatus(t, r, 422)
			wantEq(t, "msg", get(t, r.body, "detail", 0, "msg"), tc.msg)
		})
	}
}

func TestCase35ContinuationKeys(t *testing.T) {
	m := startFixture(t)
	s := m.Seller(fixtureSeller)
	qid := quoteFor(t, s, nil, map[string]any{"product_id": videoProduct, "deal_type": "PD"})
	r := negotiate(t, s, nil, map[string]any{"action": "counter", "quote_id": qid, "buyer_price": micros(20_000_000)})
	wantStatus(t, r, 200)
	negID := get(t, r.body, "negotiation_id").(string)
	for _, body := range []map[string]any{
		{"action": "counter", "negotiation_id": negID, "buyer_price": micros(21_000_000)},
		{"action": "counter", "negotiation_id": negID, "quote_id": qid, "buyer_price": micros(21_000_000)},
	} {
		r := negotiate(t, s, nil, body)
		wantStatus(t, r, 404)
		wantEq(t, "detail", get(t, r.body, "detail"), "Proposal not found")
	}
	r = negotiate(t, s, nil, map[string]any{"action": "counter", "proposal_id": qid, "negotiation_id": negID, "buyer_price": micros(21_000_000)})
	wantStatus(t, r, 200)
	wantEq(t, "round", get(t, r.body, "round", "round_number"), 2)
	wantEq(t, "same negotiation", get(t, r.body, "negotiation_id"), negID)
}

func TestCases36to40Negotiations(t *testing.T) {
	m := startFixture(t)
	s := m.Seller(fixtureSeller)
	type step struct {
		action   string // buyer action
		offer    int64  // 0 = no price
		seller   int64
		sAction  string
		status   string
		contains string
	}
	tests := []struct {
		name    string
		hdr     []string
		product string
		steps   []step
		booked  int64 // expected final_cpm after booking (0 = skip)
	}{
		{"36 agency video below floor", key(s, "agency"), videoProduct, []step{
			{"counter", 15_000_000, 18_000_000, "counter", "active", "below our floor"},
			{"counter", 19_000_000, 19_000_000, "accept", "accepted", "Deal accepted."},
		}, 19_000_000},
		{"37 counter then buyer accept", nil, videoProduct, []step{
			{"counter", 20_000_000, 24_250_000, "counter", "active", "aggressive strategy, round 1/3"},
			{"accept", 20_000_000, 24_250_000, "accept", "accepted", "Buyer accepted at $24.25 CPM."},
		}, 24_250_000},
		{"38 zero offer", nil, videoProduct, []step{
			{"counter", 0, 25_000_000, "reject", "rejected", "is not a valid offer"},
		}, 25_000_000},
		{"39 above base", nil, videoProduct, []step{
			{"counter", 26_000_000, 26_000_000, "accept", "accepted", ""},
		}, 26_000_000},
		{"40 seat CTV", key(s, "seat"), ctvProduct, []step{
			{"counter", 29_000_000, 31_920_000, "counter", "active", ""},
			{"counter", 29_000_000, 30_750_000, "counter", "active", ""},
			{"final_offer", 29_500_000, 30_250_000, "counter", "active", ""},
			{"counter", 29_500_000, 29_500_000, "accept", "accepted", "Buyer price is acceptable within concession limits."},
		}, 0},
		{"buyer reject", key(s, "agency"), videoProduct, []step{
			{"counter", 20_000_000, 21_380_000, "counter", "active", "collaborative strategy, round 1/5"},
			{"reject", 0, 21_380_000, "reject", "rejected", "Buyer declined (walk-away)."},
		}, 22_500_000}, // a rejected negotiation books at the quoted price
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := map[string]any{"product_id": tc.product, "deal_type": "PG", "impressions": 1_000_000}
			qid := quoteFor(t, s, tc.hdr, body)
			for i, st := range tc.steps {
				msg := map[string]any{"action": st.action, "quote_id": qid}
				if st.action != "reject" {
					msg["buyer_price"] = micros(st.offer)
				}
				r := negotiate(t, s, tc.hdr, msg)
				wantStatus(t, r, 200)
				wantEq(t, "round", get(t, r.body, "round", "round_number"), i+1)
				wantEq(t, "seller action", get(t, r.body, "round", "action"), st.sAction)
				wantEq(t, "seller price", integer(t, get(t, r.body, "round", "seller_price", "amount_micros")), st.seller)
				wantEq(t, "status", get(t, r.body, "status"), st.status)
				if st.contains != "" && !strings.Contains(get(t, r.body, "round", "rationale").(string), st.contains) {
					t.Errorf("round %d rationale %q lacks %q", i+1, get(t, r.body, "round", "rationale"), st.contains)
				}
			}
			if tc.booked != 0 {
				b := call(t, "POST", s.URL+"/api/v1/deals", map[string]any{"idempotency_key": newKey(), "quote_id": qid}, tc.hdr...)
				wantStatus(t, b, 200)
				wantEq(t, "booked final", integer(t, get(t, b.body, "deal", "pricing", "final_cpm", "amount_micros")), tc.booked)
			}
		})
	}
	// 38: accept without any negotiation.
	qid := quoteFor(t, s, nil, map[string]any{"product_id": videoProduct, "deal_type": "PD"})
	r := negotiate(t, s, nil, map[string]any{"action": "accept", "quote_id": qid})
	wantStatus(t, r, 404)
	wantEq(t, "detail", get(t, r.body, "detail"), "No negotiation found for this proposal")
	r = call(t, "GET", s.URL+"/proposals/"+qid+"/negotiation", nil)
	wantStatus(t, r, 404)
	// Reject on a terminal negotiation answers "rejected" but changes nothing.
	negotiate(t, s, nil, map[string]any{"action": "counter", "quote_id": qid, "buyer_price": micros(26_000_000)})
	r = negotiate(t, s, nil, map[string]any{"action": "reject", "quote_id": qid})
	wantEq(t, "misleading status", get(t, r.body, "status"), "rejected")
	h := call(t, "GET", s.URL+"/proposals/"+qid+"/negotiation", nil)
	wantEq(t, "stored status", get(t, h.body, "status"), "accepted")
	wantEq(t, "rounds", get(t, h.body, "total_rounds"), 1)
}

func TestCase44ContentTypes(t *testing.T) {
	m := startFixture(t)
	s := m.Seller(fixtureSeller)
	body := `{"idempotency_key":"ct-1","product_id":"` + videoProduct + `","deal_type":"PD"}`
	tests := []struct {
		ct     string
		status int
	}{
		{"text/plain", 422},
		{"application/x-www-form-urlencoded", 422},
		{"application/vnd.iab.agentic-audiences+json; v=1", 200},
		{"application/json; charset=utf-8", 200},
	}
	for _, tc := range tests {
		t.Run(tc.ct, func(t *testing.T) {
			r := call(t, "POST", s.URL+"/api/v1/quotes", body, "Content-Type", tc.ct)
			wantStatus(t, r, tc.status)
			if tc.status == 422 {
				wantEq(t, "loc", get(t, r.body, "detail", 0, "loc"), []any{"body"})
			}
		})
	}
	r := call(t, "POST", s.URL+"/api/v1/quotes", nil, "Content-Type", "application/json")
	wantStatus(t, r, 422)
	wantEq(t, "empty body", get(t, r.body, "detail", 0, "type"), "missing")
}

func TestPricingEndpoint(t *testing.T) {
	// Case 43 over HTTP, plus the keyless floor.
	m := startFixture(t)
	s := m.Seller(fixtureSeller)
	r := call(t, "POST", s.URL+"/pricing", map[string]any{"product_id": ctvProduct, "volume": 20_000_000}, key(s, "agency")...)
	wantStatus(t, r, 200)
	wantEq(t, "final", num(t, get(t, r.body, "final_price")), 26.77)
	wantEq(t, "tier", num(t, get(t, r.body, "tier_discount")), 0.1)
	wantEq(t, "volume", num(t, get(t, r.body, "volume_discount")), 0.15)
	r = call(t, "POST", s.URL+"/pricing", map[string]any{"product_id": ctvProduct, "volume": 20_000_000, "buyer_tier": "agency", "agency_id": "a"})
	wantEq(t, "anon final", num(t, get(t, r.body, "final_price")), 35.0)
	r = call(t, "POST", s.URL+"/pricing", map[string]any{"product_id": "prod-nope"})
	wantStatus(t, r, 404)
}

func TestRequestsRecordWhatTheBuyerRevealed(t *testing.T) {
	m := startFixture(t)
	s := m.Seller(fixtureSeller)
	s.ResetRequests()
	call(t, "GET", s.URL+"/packages/"+p1+"?buyer_tier=agency&agency_id=agency-1", nil, key(s, "agency")...)
	call(t, "POST", s.URL+"/api/v1/quotes", map[string]any{"idempotency_key": "r1", "product_id": videoProduct, "deal_type": "PD",
		"buyer_identity": map[string]any{"seat_id": "seat-1"}})
	reqs := s.Requests()
	if len(reqs) != 2 {
		t.Fatalf("requests = %d, want 2", len(reqs))
	}
	if reqs[0].Method != "GET" || reqs[0].Path != "/packages/"+p1 || reqs[0].Query.Get("agency_id") != "agency-1" ||
		reqs[0].Header.Get("X-Api-Key") != s.Keys["agency"] || reqs[0].Time.IsZero() {
		t.Errorf("first request = %+v", reqs[0])
	}
	if reqs[1].Path != "/api/v1/quotes" || !strings.Contains(string(reqs[1].Body), `"seat_id":"seat-1"`) {
		t.Errorf("second request = %s %s", reqs[1].Path, reqs[1].Body)
	}
	s.ResetRequests()
	if len(s.Requests()) != 0 {
		t.Error("ResetRequests kept requests")
	}
}

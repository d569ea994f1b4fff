package sellerclient

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"reflect"
	"testing"

	"github.com/dealflow/dealflow/pkg/market"
)

func TestMediaKit(t *testing.T) {
	t.Parallel()
	srv := newFake(t, routes(map[string]reply{"GET /media-kit": {body: mediaKitBody}}))
	mk, err := testClient().MediaKit(context.Background(), srv.URL+"/")
	if err != nil {
		t.Fatal(err)
	}
	r := srv.last(t)
	if r.Method != "GET" || r.Path != "/media-kit" || len(r.Query) != 0 || len(r.Body) != 0 || r.Header.Get("X-Api-Key") != "" {
		t.Fatalf("request %+v", r)
	}
	if mk.TotalPackages != 2 || mk.FeaturedCount != 1 || len(mk.Featured) != 1 || len(mk.AllPackages) != 2 || mk.SellerName != "" {
		t.Fatalf("media kit %+v", mk)
	}
	p := mk.AllPackages[0]
	if p.PackageID != "pkg-1a2b3c4d" || p.PriceRange != "$28-$42 CPM" || p.Authenticated || p.ExactPrice != nil ||
		!p.IsFeatured || p.Cattax != 2 || !reflect.DeepEqual(p.DeviceTypes, []int{2, 3}) || !reflect.DeepEqual(p.Tags, []string{"premium", "sports"}) {
		t.Fatalf("package %+v", p)
	}
	var aud struct {
		SupportsStandard bool `json:"supports_standard"`
	}
	if err := json.Unmarshal(p.AudienceCapabilities, &aud); err != nil || !aud.SupportsStandard {
		t.Fatalf("audience summary %s", p.AudienceCapabilities)
	}
	if q := mk.AllPackages[1]; q.Description != "" || q.AudienceCapabilities != nil || q.RateType != "cpm" {
		t.Fatalf("second package %+v", q)
	}
}

func TestParseMediaKitFallbacks(t *testing.T) {
	t.Parallel()
	cases := []struct {
		body            string
		total, featured int
		all             int
	}{
		{`{"total_packages":0,"featured_count":0,"featured":[],"all_packages":[]}`, 0, 0, 0},
		{`{"all_packages":[{"package_id":"a"},{"package_id":"b"},{"package_id":"c"}]}`, 3, 0, 3},
		{`{}`, 0, 0, 0},
		{`{"featured":[{"package_id":"a","is_featured":true}],"all_packages":[{"package_id":"a","is_featured":true}]}`, 1, 1, 1},
		{`{"total_packages":"5","all_packages":null}`, 5, 0, 0},
		// IAB MediaKit primitive shape.
		{`{"media_kit_id":"mk-1","name":"Kit","packages":[{"package_id":"a","is_featured":true},{"package_id":"b"}]}`, 2, 1, 2},
	}
	for _, c := range cases {
		mk, err := parseMediaKit(bodyOf([]byte(c.body)))
		if err != nil || mk.TotalPackages != c.total || mk.FeaturedCount != c.featured || len(mk.AllPackages) != c.all || mk.Featured == nil || mk.AllPackages == nil {
			t.Errorf("%s: %+v %v", c.body, mk, err)
		}
	}
	for _, bad := range []string{`[]`, `"x"`, `{"all_packages":{}}`, `{"total_packages":1.5}`, `{"all_packages":[{"device_types":["x"]}]}`} {
		if _, err := parseMediaKit(bodyOf([]byte(bad))); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func TestListPackages(t *testing.T) {
	t.Parallel()
	srv := newFake(t, routes(map[string]reply{"GET /media-kit/packages": {body: `{"packages":[` + publicPackageBody + `]}`}}))
	c := testClient()
	ctx := context.Background()
	cases := []struct {
		opts ListOptions
		want url.Values
	}{
		{ListOptions{}, url.Values{}},
		{ListOptions{Layer: "curated", FeaturedOnly: true}, url.Values{"layer": {"curated"}, "featured_only": {"true"}}},
		{ListOptions{AudienceType: "standard", AudienceID: "3", AudienceTaxonomyVersion: "1.1"},
			url.Values{"audience_type": {"standard"}, "audience_id": {"3"}, "audience_taxonomy_version": {"1.1"}}},
	}
	for _, cs := range cases {
		pkgs, err := c.ListPackages(ctx, srv.URL, cs.opts)
		if err != nil {
			t.Fatal(err)
		}
		r := srv.last(t)
		if r.Path != "/media-kit/packages" || !reflect.DeepEqual(r.Query, cs.want) {
			t.Errorf("%+v: query %v, want %v", cs.opts, r.Query, cs.want)
		}
		if len(pkgs) != 1 || pkgs[0].PackageID != "pkg-1a2b3c4d" || pkgs[0].PriceRange != "$28-$42 CPM" {
			t.Errorf("packages %+v", pkgs)
		}
	}
	n := len(srv.requests())
	if _, err := c.ListPackages(ctx, srv.URL, ListOptions{AudienceID: "3"}); !errors.Is(err, ErrValidation) {
		t.Fatalf("audience_id without type: %v", err)
	}
	if len(srv.requests()) != n {
		t.Fatal("invalid list was sent")
	}
	// Seller-side 400 for a bad layer.
	bad := newFake(t, func(int, recorded) reply { return reply{status: 400, body: `{"detail":"Invalid layer: bogus"}`} })
	_, err := c.ListPackages(ctx, bad.URL, ListOptions{Layer: "bogus"})
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrValidation) || e.Message != "Invalid layer: bogus" {
		t.Fatalf("bad layer: %v", err)
	}
	// Empty and missing lists are empty, not nil.
	empty := newFake(t, routes(map[string]reply{"GET /media-kit/packages": {body: `{}`}}))
	pkgs, err := c.ListPackages(ctx, empty.URL, ListOptions{})
	if err != nil || pkgs == nil || len(pkgs) != 0 {
		t.Fatalf("empty: %v %v", pkgs, err)
	}
}

func TestPublicPackage(t *testing.T) {
	t.Parallel()
	srv := newFake(t, func(_ int, r recorded) reply {
		if r.Path == "/media-kit/packages/pkg-1a2b3c4d" {
			return reply{body: publicPackageBody}
		}
		return reply{status: 404, body: `{"detail":"Package not found"}`}
	})
	c := testClient()
	p, err := c.PublicPackage(context.Background(), srv.URL, "pkg-1a2b3c4d")
	if err != nil || p.Name != "Sports Video Premium" || p.Authenticated || p.PriceRange != "$28-$42 CPM" {
		t.Fatalf("%+v %v", p, err)
	}
	if r := srv.last(t); r.Method != "GET" || len(r.Query) != 0 || r.Header.Get("X-Api-Key") != "" {
		t.Fatalf("request %+v", r)
	}
	_, err = c.PublicPackage(context.Background(), srv.URL, "a/b c")
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	if r := srv.last(t); r.Raw != "/media-kit/packages/a%2Fb%20c" {
		t.Fatalf("id not escaped: %q", r.Raw)
	}
}

func TestSearchPackages(t *testing.T) {
	t.Parallel()
	srv := newFake(t, routes(map[string]reply{"POST /media-kit/search": {body: `{"results":[` + agencyPackageBody + `]}`}}))
	c := testClient()
	ctx := context.Background()
	cases := []struct {
		req  SearchRequest
		auth Auth
		body string
	}{
		{SearchRequest{Query: "sports video"}, Auth{}, `{"query":"sports video"}`},
		{SearchRequest{Query: "sports", BuyerTier: market.TierAgency, AgencyID: "agency-1"}, Auth{APIKey: "ask_live_a"},
			`{"query":"sports","buyer_tier":"agency","agency_id":"agency-1"}`},
		{SearchRequest{Query: "x", BuyerTier: market.TierAdvertiser, AgencyID: "a", AdvertiserID: "adv",
			AudienceFilter: &AudienceFilter{AudienceType: "standard", AudienceID: "3", TaxonomyVersion: "1.1"}}, Auth{},
			`{"query":"x","buyer_tier":"advertiser","agency_id":"a","advertiser_id":"adv","audience_filter":{"audience_type":"standard","audience_id":"3","taxonomy_version":"1.1"}}`},
		{SearchRequest{Query: "", AudienceFilter: &AudienceFilter{}}, Auth{}, `{"query":""}`},
	}
	for _, cs := range cases {
		pkgs, err := c.SearchPackages(ctx, srv.URL, cs.auth, cs.req)
		if err != nil {
			t.Fatal(err)
		}
		r := srv.last(t)
		if r.Method != "POST" || r.Path != "/media-kit/search" || r.Header.Get("Content-Type") != "application/json" ||
			string(r.Body) != cs.body || r.Header.Get("X-Api-Key") != cs.auth.APIKey {
			t.Errorf("request %s %s %q key %q", r.Method, r.Path, r.Body, r.Header.Get("X-Api-Key"))
		}
		if len(pkgs) != 1 || !pkgs[0].Authenticated || *pkgs[0].ExactPrice != 31.5 || !pkgs[0].NegotiationEnabled || pkgs[0].Description != "" {
			t.Errorf("results %+v", pkgs)
		}
	}
	n := len(srv.requests())
	for _, bad := range []SearchRequest{{Query: "x", BuyerTier: "god"}, {Query: "x", AudienceFilter: &AudienceFilter{AudienceID: "3"}}} {
		if _, err := c.SearchPackages(ctx, srv.URL, Auth{}, bad); !errors.Is(err, ErrValidation) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
	if len(srv.requests()) != n {
		t.Fatal("invalid search was sent")
	}
}

func TestAuthenticatedPackages(t *testing.T) {
	t.Parallel()
	srv := newFake(t, func(_ int, r recorded) reply {
		switch r.Path {
		case "/packages":
			return reply{body: `{"packages":[` + seatPackageBody + `,` + publicPackageBody + `]}`}
		case "/packages/pkg-1a2b3c4d":
			return reply{body: seatPackageBody}
		}
		return reply{status: 404, body: `{"detail":"Package not found"}`}
	})
	c := testClient()
	ctx := context.Background()
	pkgs, err := c.Packages(ctx, srv.URL, Auth{APIKey: "ask_live_seat"}, TierClaim{})
	if err != nil || len(pkgs) != 2 || !pkgs[0].Authenticated || pkgs[1].Authenticated {
		t.Fatalf("%+v %v", pkgs, err)
	}
	if r := srv.last(t); r.Path != "/packages" || len(r.Query) != 0 || r.Header.Get("X-Api-Key") != "ask_live_seat" {
		t.Fatalf("request %+v", r)
	}

	p, err := c.Package(ctx, srv.URL, "pkg-1a2b3c4d", Auth{}, TierClaim{Tier: market.TierAgency, AgencyID: "a"})
	if err != nil {
		t.Fatal(err)
	}
	r := srv.last(t)
	if r.Path != "/packages/pkg-1a2b3c4d" || !reflect.DeepEqual(r.Query, url.Values{"buyer_tier": {"agency"}, "agency_id": {"a"}}) {
		t.Fatalf("query %v", r.Query)
	}
	want := Package{
		PackageID: "pkg-1a2b3c4d", Name: "Sports Video Premium", Description: "Premium sports video",
		AdFormats: []string{"video"}, DeviceTypes: []int{2, 3}, Cat: []string{"IAB17"}, Cattax: 2, GeoTargets: []string{"US"},
		Tags: []string{"premium", "sports"}, PriceRange: "$33 CPM", RateType: "cpm", IsFeatured: true,
		ExactPrice: ptr(33.25), FloorPrice: ptr(28.0), Currency: "USD",
		Placements: []Placement{
			{ProductID: "prod-15ba2543", ProductName: "Pre-Roll Video", AdFormats: []string{"video"}, DeviceTypes: []int{2, 3}, Weight: 1.0},
			{ProductID: "prod-53e78a97", ProductName: "CTV Premium Streaming", AdFormats: []string{"ctv"}, DeviceTypes: []int{3}, Weight: 1.0},
		},
		Authenticated: true,
	}
	got := *p
	got.AudienceCapabilities = nil
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("package\n got %+v\nwant %+v", got, want)
	}
	if lo, hi, ok := ParsePriceRange(p.PriceRange); !ok || lo != 33 || hi != 33 {
		t.Fatalf("price range %v %v %v", lo, hi, ok)
	}
	if _, err := c.Package(ctx, srv.URL, "pkg-1a2b3c4d", Auth{}, TierClaim{Tier: "root"}); !errors.Is(err, ErrValidation) {
		t.Fatalf("bad tier: %v", err)
	}
	if _, err := c.Package(ctx, srv.URL, "pkg-nope", Auth{}, TierClaim{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
}

func TestPackageAuthenticatedDetection(t *testing.T) {
	t.Parallel()
	cases := []struct {
		body   string
		auth   bool
		cattax int
		cur    string
	}{
		{`{"package_id":"p","exact_price":null}`, true, 2, "USD"},
		{`{"package_id":"p"}`, false, 2, ""},
		{`{"package_id":"p","cattax":"3"}`, false, 3, ""},
		{`{"package_id":"p","cattax":7,"exact_price":35.0,"currency":"EUR"}`, true, 7, "EUR"},
	}
	for _, c := range cases {
		p, err := parsePackage(bodyOf([]byte(c.body)))
		if err != nil || p.Authenticated != c.auth || p.Cattax != c.cattax || p.Currency != c.cur {
			t.Errorf("%s: %+v %v", c.body, p, err)
		}
	}
	for _, bad := range []string{`[]`, `{"cattax":"x"}`, `{"exact_price":"35"}`, `{"placements":{}}`} {
		if _, err := parsePackage(bodyOf([]byte(bad))); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func TestParsePriceRange(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in      string
		lo, hi  float64
		wantErr bool
	}{
		{"$28-$42 CPM", 28, 42, false},
		{"$33 CPM", 33, 33, false},
		{"$32 CPM", 32, 32, false},
		{"$28 - $42 CPM", 28, 42, false},
		{"$28.50-$42.75 CPM", 28.5, 42.75, false},
		{"$1,200-$1,500 CPM", 1200, 1500, false},
		{"28-42", 28, 42, false},
		{" $6-$10 cpm ", 6, 10, false},
		{"$0 CPM", 0, 0, false},
		{"", 0, 0, true},
		{"CPM", 0, 0, true},
		{"$42-$28 CPM", 0, 0, true},
		{"$-5 CPM", 0, 0, true},
		{"$1-$2-$3 CPM", 0, 0, true},
		{"$NaN CPM", 0, 0, true},
		{"$Inf CPM", 0, 0, true},
		{"$1e3 CPM", 0, 0, true},
		{"$ CPM", 0, 0, true},
		{"price on request", 0, 0, true},
	}
	for _, c := range cases {
		lo, hi, ok := ParsePriceRange(c.in)
		if ok == c.wantErr || lo != c.lo || hi != c.hi {
			t.Errorf("ParsePriceRange(%q) = %v, %v, %v", c.in, lo, hi, ok)
		}
	}
}

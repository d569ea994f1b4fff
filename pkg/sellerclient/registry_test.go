package sellerclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/dealflow/dealflow/pkg/market"
)

const simpleAgentsBody = `{"agents":[
 {"agent_id":"seller-a","name":"Seller A","url":"HTTP://Seller-A.example.com/","protocols":["a2a","opendirect21"],
  "capabilities":[{"name":"ctv","description":"CTV","tags":["video"]},{"name":"display","description":"","tags":[]}],"trust_level":"verified"},
 {"agent_id":"seller-b","name":"Seller B","url":"https://seller-b.example.com","protocols":[],"capabilities":[{"name":"Display","description":"d"}],"trust_level":"approved"},
 {"agent_id":"seller-c","name":"Seller C","url":"https://seller-c.example.com","capabilities":[{"name":"audio","description":""}]},
 {"agent_id":"broken","name":"Broken","url":"ftp://x"},
 {"name":"No ID","url":"https://x.example.com"},
 "not an object",
 {"agent_id":"bad-caps","name":"Bad","url":"https://bad.example.com","capabilities":{"protocols":[]}},
 {"agent_id":"seller-a2","name":"Seller A again","url":"http://seller-a.example.com","capabilities":["ctv"],"trust_level":"preferred"}
]}`

const aampAgentsBody = `{"success":true,"data":{"agents":[
 {"id":1,"agent_name":"Acme Seller","primary_domain":"acme.example.com","type":"remote","endpoint_url":"https://seller.acme.example.com",
  "repository_url":null,"protocol_type":"a2a","capabilities":["ctv","display"],"iab_capabilities":["video","ctv"],"iab_subcategories":null,
  "endorsements":null,"industry_roles":["seller"],"verification_status":"active","domain_verified":true,"gpp_verified":false,
  "endpoint_health_verified":true,"iab_member":true,"created_at":"2026-01-01T00:00:00Z"},
 {"id":2,"agent_name":"Beta","primary_domain":"beta.example.com","type":"remote","endpoint_url":"https://beta.example.com/agent/",
  "protocol_type":null,"capabilities":["display"],"iab_capabilities":null,"industry_roles":null,"verification_status":"pending"},
 {"id":3,"agent_name":"Buyer Co","endpoint_url":"https://buyer.example.com","capabilities":["display"],"industry_roles":["buyer"],"verification_status":"active"},
 {"id":4,"agent_name":"Local","type":"local","endpoint_url":null,"repository_url":"https://github.com/x/y","capabilities":["display"]},
 {"id":5,"agent_name":"Bad caps","endpoint_url":"https://bad.example.com","capabilities":"display"},
 {"id":"agent-6","agent_name":"Gamma","endpoint_url":"https://gamma.example.com","capabilities":[],"industry_roles":["Seller","buyer"],"verification_status":"ACTIVE"}
],"count":6,"isAdmin":false}}`

func TestDiscoverSellersSimple(t *testing.T) {
	t.Parallel()
	srv := newFake(t, routes(map[string]reply{"GET /registry/agents": {body: simpleAgentsBody}}))
	c := testClient()
	reg := Registry{URL: srv.URL + "/registry/"}
	d, err := c.DiscoverSellers(context.Background(), reg, []string{"CTV", " display ", ""})
	if err != nil {
		t.Fatal(err)
	}
	r := srv.last(t)
	if r.Method != "GET" || r.Path != "/registry/agents" || !reflect.DeepEqual(r.Query, url.Values{"agent_type": {"seller"}, "capabilities": {"CTV,display"}}) ||
		r.Header.Get("Authorization") != "" {
		t.Fatalf("request %s %v %v", r.Path, r.Query, r.Header)
	}
	want := []SellerRecord{
		{AgentID: "seller-a", Name: "Seller A", URL: "http://seller-a.example.com", Protocols: []string{"a2a", "opendirect21"},
			Capabilities: []string{"ctv", "display"}, Trust: market.TrustVerified, Protocol: market.ProtocolIAB},
		{AgentID: "seller-b", Name: "Seller B", URL: "https://seller-b.example.com", Protocols: []string{}, Capabilities: []string{"Display"}, Trust: market.TrustVerified, Protocol: market.ProtocolIAB},
	}
	if !reflect.DeepEqual(d.Sellers, want) {
		t.Fatalf("sellers\n got %+v\nwant %+v", d.Sellers, want)
	}
	reasons := map[string]string{}
	for _, s := range d.Skipped {
		reasons[fmt.Sprintf("%d:%s", s.Index, s.AgentID)] = s.Reason
	}
	wantSkipped := map[string]string{"3:broken": "invalid url", "4:": "missing agent_id", "5:": "record is not a JSON object",
		"6:": "malformed record", "7:seller-a2": "duplicate url"}
	if len(reasons) != len(wantSkipped) {
		t.Fatalf("skipped %+v", d.Skipped)
	}
	for k, prefix := range wantSkipped {
		if !strings.HasPrefix(reasons[k], prefix) {
			t.Errorf("skipped %s: %q, want prefix %q", k, reasons[k], prefix)
		}
	}
	if d.Pages != 1 || d.Truncated {
		t.Fatalf("pages %d truncated %v", d.Pages, d.Truncated)
	}

	// No filter: no capabilities param, every valid record.
	d, err = c.DiscoverSellers(context.Background(), Registry{URL: srv.URL + "/registry", Kind: RegistrySimple, Token: "t"}, nil)
	if err != nil || len(d.Sellers) != 3 || d.Sellers[2].Trust != market.TrustUnknown {
		t.Fatalf("%+v %v", d, err)
	}
	if r := srv.last(t); r.Query.Has("capabilities") || r.Header.Get("Authorization") != "Bearer t" {
		t.Fatalf("request %v %v", r.Query, r.Header)
	}
	// Client-side filter also applies when the registry ignores the param.
	d, _ = c.DiscoverSellers(context.Background(), reg, []string{"AUDIO"})
	if len(d.Sellers) != 1 || d.Sellers[0].AgentID != "seller-c" {
		t.Fatalf("audio: %+v", d.Sellers)
	}
}

func TestDiscoverSellersAAMP(t *testing.T) {
	t.Parallel()
	srv := newFake(t, func(_ int, r recorded) reply {
		if r.Header.Get("Authorization") != "Bearer jwt-1" {
			return reply{status: 401, body: `{"success":false,"error":"Unauthorized"}`}
		}
		if r.Path == "/api/agents" {
			return reply{body: aampAgentsBody}
		}
		return reply{status: 404, body: `{"success":false,"error":"Not found"}`}
	})
	c := testClient()
	reg := Registry{URL: srv.URL, Kind: RegistryAAMP, Token: "jwt-1"}
	d, err := c.DiscoverSellers(context.Background(), reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := srv.last(t); r.Path != "/api/agents" || len(r.Query) != 0 {
		t.Fatalf("request %+v", r)
	}
	want := []SellerRecord{
		{AgentID: "1", Name: "Acme Seller", URL: "https://seller.acme.example.com", Protocols: []string{"a2a"},
			Capabilities: []string{"ctv", "display", "video"}, Trust: market.TrustVerified, Protocol: market.ProtocolIAB},
		{AgentID: "2", Name: "Beta", URL: "https://beta.example.com/agent", Protocols: []string{}, Capabilities: []string{"display"}, Trust: market.TrustRegistered, Protocol: market.ProtocolIAB},
		{AgentID: "agent-6", Name: "Gamma", URL: "https://gamma.example.com", Protocols: []string{}, Capabilities: []string{}, Trust: market.TrustVerified, Protocol: market.ProtocolIAB},
	}
	if !reflect.DeepEqual(d.Sellers, want) {
		t.Fatalf("sellers\n got %+v\nwant %+v", d.Sellers, want)
	}
	if len(d.Skipped) != 2 || d.Skipped[0].AgentID != "4" || d.Skipped[0].Reason != "missing endpoint_url" ||
		d.Skipped[1].AgentID != "" || !strings.HasPrefix(d.Skipped[1].Reason, "malformed record") {
		t.Fatalf("skipped %+v", d.Skipped)
	}
	for caps, ids := range map[string][]string{"CTV": {"1"}, "audio": nil, "Display,video": {"1", "2"}} {
		d, err := c.DiscoverSellers(context.Background(), reg, strings.Split(caps, ","))
		var got []string
		for _, s := range d.Sellers {
			got = append(got, s.AgentID)
		}
		if err != nil || !reflect.DeepEqual(got, ids) {
			t.Errorf("filter %s: %v %v", caps, got, err)
		}
	}
	_, err = c.DiscoverSellers(context.Background(), Registry{URL: srv.URL, Kind: RegistryAAMP}, nil)
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("no token: %v", err)
	}
	if _, err := c.DiscoverSellers(context.Background(), Registry{URL: srv.URL, Kind: "ldap"}, nil); !errors.Is(err, ErrValidation) {
		t.Fatalf("bad kind: %v", err)
	}
	if _, err := New(Config{}).DiscoverSellers(context.Background(), reg, nil); !errors.Is(err, ErrInvalidURL) {
		t.Fatalf("private registry: %v", err)
	}
}

func TestDiscoverSellersAAMPEnvelopeErrors(t *testing.T) {
	t.Parallel()
	for body, want := range map[string]error{
		`{"success":false,"error":"boom"}`:     ErrBadResponse,
		`{"success":true}`:                     ErrBadResponse,
		`{"success":true,"data":{"agents":7}}`: ErrBadResponse,
		`[]`:                                   ErrBadResponse,
	} {
		srv := newFake(t, func(int, recorded) reply { return reply{body: body} })
		_, err := testClient().DiscoverSellers(context.Background(), Registry{URL: srv.URL, Kind: RegistryAAMP, Token: "x"}, nil)
		if !errors.Is(err, want) {
			t.Errorf("%s: %v", body, err)
		}
	}
	// data as a bare array and missing agents are tolerated.
	for body, n := range map[string]int{
		`{"success":true,"data":[{"id":1,"agent_name":"A","endpoint_url":"https://a.example.com"}]}`: 1,
		`{"success":true,"data":{"count":0}}`:                                                        0,
	} {
		srv := newFake(t, func(int, recorded) reply { return reply{body: body} })
		d, err := testClient().DiscoverSellers(context.Background(), Registry{URL: srv.URL, Kind: RegistryAAMP, Token: "x"}, nil)
		if err != nil || len(d.Sellers) != n {
			t.Errorf("%s: %+v %v", body, d, err)
		}
	}
}

func agentJSON(i int) string {
	return fmt.Sprintf(`{"agent_id":"s%d","name":"S%d","url":"https://s%d.example.com","capabilities":["ctv"],"trust_level":"registered"}`, i, i, i)
}

func TestDiscoverPagination(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := testClient()

	t.Run("next link", func(t *testing.T) {
		srv := newFake(t, func(_ int, r recorded) reply {
			switch r.Query.Get("cursor") {
			case "":
				return reply{body: `{"agents":[` + agentJSON(1) + `],"next":"/agents?agent_type=seller&cursor=2"}`}
			case "2":
				return reply{body: `{"agents":[` + agentJSON(2) + `,` + agentJSON(1) + `],"next":null}`}
			}
			return reply{status: 500, body: "no"}
		})
		d, err := c.DiscoverSellers(ctx, Registry{URL: srv.URL}, []string{"ctv"})
		if err != nil || len(d.Sellers) != 2 || d.Pages != 2 || len(d.Skipped) != 1 || d.Skipped[0].Page != 2 || d.Skipped[0].Index != 1 {
			t.Fatalf("%+v %v", d, err)
		}
	})
	t.Run("page and total_pages", func(t *testing.T) {
		srv := newFake(t, func(_ int, r recorded) reply {
			p := r.Query.Get("page")
			if p == "" {
				p = "1"
			}
			if r.Query.Get("agent_type") != "seller" || r.Query.Get("capabilities") != "ctv" {
				return reply{status: 400, body: `{"detail":"lost query"}`}
			}
			var n int
			fmt.Sscan(p, &n)
			return reply{body: fmt.Sprintf(`{"agents":[%s],"page":%d,"total_pages":3}`, agentJSON(n), n)}
		})
		d, err := c.DiscoverSellers(ctx, Registry{URL: srv.URL}, []string{"ctv"})
		if err != nil || len(d.Sellers) != 3 || d.Sellers[2].AgentID != "s3" || d.Pages != 3 || len(srv.requests()) != 3 {
			t.Fatalf("%+v %v", d, err)
		}
	})
	t.Run("aamp data.next", func(t *testing.T) {
		var base string
		srv := newFake(t, func(_ int, r recorded) reply {
			if r.Query.Get("offset") == "" {
				return reply{body: `{"success":true,"data":{"agents":[{"id":1,"agent_name":"A","endpoint_url":"https://a.example.com"}],"count":2,"next":"` + base + `/api/agents?offset=1"}}`}
			}
			return reply{body: `{"success":true,"data":{"agents":[{"id":2,"agent_name":"B","endpoint_url":"https://b.example.com"}],"count":2,"next":null}}`}
		})
		base = srv.URL
		d, err := c.DiscoverSellers(ctx, Registry{URL: srv.URL, Kind: RegistryAAMP, Token: "t"}, nil)
		if err != nil || len(d.Sellers) != 2 || d.Sellers[1].AgentID != "2" {
			t.Fatalf("%+v %v", d, err)
		}
		for _, r := range srv.requests() {
			if r.Header.Get("Authorization") != "Bearer t" {
				t.Fatal("token not sent on every page")
			}
		}
	})
	t.Run("self loop stops", func(t *testing.T) {
		srv := newFake(t, func(int, recorded) reply {
			return reply{body: `{"agents":[` + agentJSON(1) + `],"next":"?agent_type=seller"}`}
		})
		d, err := c.DiscoverSellers(ctx, Registry{URL: srv.URL}, nil)
		if err != nil || len(d.Sellers) != 1 || len(srv.requests()) != 1 {
			t.Fatalf("%+v %v requests %d", d, err, len(srv.requests()))
		}
	})
	t.Run("bounded to 100 pages", func(t *testing.T) {
		srv := newFake(t, func(n int, _ recorded) reply {
			return reply{body: fmt.Sprintf(`{"agents":[%s],"next":"/agents?cursor=%d"}`, agentJSON(n), n+1)}
		})
		d, err := c.DiscoverSellers(ctx, Registry{URL: srv.URL}, nil)
		if err != nil || len(srv.requests()) != 100 || d.Pages != 100 || !d.Truncated || len(d.Sellers) != 100 {
			t.Fatalf("pages %d truncated %v sellers %d requests %d err %v", d.Pages, d.Truncated, len(d.Sellers), len(srv.requests()), err)
		}
	})
	t.Run("cross-host next refused, partial result kept", func(t *testing.T) {
		srv := newFake(t, func(int, recorded) reply {
			return reply{body: `{"agents":[` + agentJSON(1) + `],"next":"https://evil.example.com/agents?page=2"}`}
		})
		d, err := c.DiscoverSellers(ctx, Registry{URL: srv.URL, Token: "secret"}, nil)
		if !errors.Is(err, ErrBadResponse) || len(d.Sellers) != 1 || len(srv.requests()) != 1 {
			t.Fatalf("%+v %v", d, err)
		}
	})
	t.Run("later page fails", func(t *testing.T) {
		srv := newFake(t, func(n int, _ recorded) reply {
			if n == 0 {
				return reply{body: `{"agents":[` + agentJSON(1) + `],"page":1,"total_pages":2}`}
			}
			return reply{status: 500, body: errPlain500}
		})
		d, err := c.DiscoverSellers(ctx, Registry{URL: srv.URL}, nil)
		if !errors.Is(err, ErrUnavailable) || len(d.Sellers) != 1 {
			t.Fatalf("%+v %v", d, err)
		}
	})
}

func TestVerifyAgentSimple(t *testing.T) {
	t.Parallel()
	srv := newFake(t, func(_ int, r recorded) reply {
		switch r.Query.Get("agent_url") {
		case "https://seller.example.com":
			return reply{body: `{"is_registered":true,"trust_level":"verified","registry_id":"aamp-xyz789"}`}
		case "https://approved.example.com":
			return reply{body: `{"is_registered":true,"trust_level":"approved","registry_id":null}`}
		case "https://iab.example.com":
			return reply{body: `{"agent_id":"agent-seller-1","agent_url":"https://iab.example.com","registry_id":"iab_aamp","trust_status":"approved","verified_at":"2026-07-01T12:00:00Z"}`}
		case "https://down.example.com":
			return reply{status: 500, body: errPlain500}
		}
		return reply{status: 404, body: `{"detail":"Agent not found"}`}
	})
	c := testClient()
	cases := []struct {
		in   string
		want TrustInfo
	}{
		{"HTTPS://Seller.Example.com/", TrustInfo{"https://seller.example.com", true, market.TrustVerified, "aamp-xyz789"}},
		{"https://approved.example.com", TrustInfo{"https://approved.example.com", true, market.TrustVerified, ""}},
		{"https://iab.example.com", TrustInfo{"https://iab.example.com", true, market.TrustVerified, "iab_aamp"}},
		{"https://stranger.example.com", TrustInfo{"https://stranger.example.com", false, market.TrustUnknown, ""}},
	}
	for _, cs := range cases {
		got, err := c.VerifyAgent(context.Background(), Registry{URL: srv.URL}, cs.in)
		if err != nil || got != cs.want {
			t.Errorf("%s: %+v %v", cs.in, got, err)
		}
		if r := srv.last(t); r.Path != "/verify" {
			t.Errorf("path %s", r.Path)
		}
	}
	if _, err := c.VerifyAgent(context.Background(), Registry{URL: srv.URL}, "https://down.example.com"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("down: %v", err)
	}
	if _, err := c.VerifyAgent(context.Background(), Registry{URL: srv.URL}, "not a url"); !errors.Is(err, ErrInvalidURL) {
		t.Fatalf("bad url: %v", err)
	}
}

func TestVerifyAgentAAMP(t *testing.T) {
	t.Parallel()
	srv := newFake(t, routes(map[string]reply{"GET /api/agents": {body: aampAgentsBody}}))
	c := testClient()
	reg := Registry{URL: srv.URL, Kind: RegistryAAMP, Token: "jwt"}
	cases := []struct {
		in   string
		want TrustInfo
	}{
		{"https://seller.acme.example.com/", TrustInfo{"https://seller.acme.example.com", true, market.TrustVerified, "1"}},
		{" HTTPS://SELLER.ACME.EXAMPLE.COM ", TrustInfo{"https://seller.acme.example.com", true, market.TrustVerified, "1"}},
		{"https://beta.example.com/agent", TrustInfo{"https://beta.example.com/agent", true, market.TrustRegistered, "2"}},
		// Verification is not limited to sellers.
		{"https://buyer.example.com", TrustInfo{"https://buyer.example.com", true, market.TrustVerified, "3"}},
		{"https://unknown.example.com", TrustInfo{"https://unknown.example.com", false, market.TrustUnknown, ""}},
	}
	for _, cs := range cases {
		got, err := c.VerifyAgent(context.Background(), reg, cs.in)
		if err != nil || got != cs.want {
			t.Errorf("%s: %+v %v", cs.in, got, err)
		}
	}
	if r := srv.last(t); r.Header.Get("Authorization") != "Bearer jwt" {
		t.Fatal("token not sent")
	}
}

// TestDiscoverSellersAAO reads the AgenticAdvertising.Org registry: every
// record is an AdCP sales agent with its MCP endpoint; compliance feeds
// trust; a2a-only agents are skipped as malformed for dealflow.
func TestDiscoverSellersAAO(t *testing.T) {
	var gotQuery string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/registry/agents" {
			http.NotFound(w, r)
			return
		}
		gotQuery = r.URL.RawQuery
		_, _ = w.Write([]byte(`{"agents":[
 {"url":"https://sales.streamco.example","name":"StreamCo","type":"sales","protocol":"mcp","mcp_endpoint":"https://sales.streamco.example/mcp",
  "health":{"status":"healthy"},"capabilities":{"channels":["ctv","olv"]},"compliance":{"status":"passing"},"publisher_domains":["streamco.example"]},
 {"url":"https://bad.example","name":"Bad","type":"sales","protocol":"mcp","compliance":"failing","capabilities":["display"]},
 {"url":"https://a2a.example","name":"A2A only","type":"sales","protocol":"a2a"},
 {"url":"https://creative.example","name":"Creative","type":"creative","protocol":"mcp"}]}`))
	}))
	defer srv.Close()
	c := New(Config{AllowPrivate: true})
	d, err := c.DiscoverSellers(context.Background(), Registry{URL: srv.URL, Kind: RegistryAAO}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if gotQuery != "capabilities=true&compliance=true&type=sales" {
		t.Fatalf("query %q", gotQuery)
	}
	if len(d.Sellers) != 2 || len(d.Skipped) != 1 {
		t.Fatalf("sellers %+v skipped %+v", d.Sellers, d.Skipped)
	}
	s := d.Sellers[0]
	if s.Protocol != market.ProtocolADCP || s.MCPEndpoint != "https://sales.streamco.example/mcp" || s.Trust != market.TrustVerified ||
		s.Compliance != "passing" || !reflect.DeepEqual(s.Capabilities, []string{"ctv", "olv"}) {
		t.Fatalf("streamco %+v", s)
	}
	if b := d.Sellers[1]; b.Compliance != "failing" || b.Trust != market.TrustRegistered || b.Protocol != market.ProtocolADCP {
		t.Fatalf("bad %+v", b)
	}
	ti, err := c.VerifyAgent(context.Background(), Registry{URL: srv.URL, Kind: RegistryAAO}, "https://sales.streamco.example/")
	if err != nil || !ti.IsRegistered || ti.Trust != market.TrustVerified {
		t.Fatalf("verify %+v %v", ti, err)
	}
}

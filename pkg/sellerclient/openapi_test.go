package sellerclient

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"github.com/dealflow/dealflow/pkg/market"
)

var (
	openapiOnce sync.Once
	openapiDoc  *openapi3.T
	openapiErr  error
)

// sellerOpenAPI loads the seller-agent's OpenAPI 3.1 document once. kin-openapi
// loads it (3.1 keywords such as "type":"null" inside anyOf are supported).
func sellerOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	openapiOnce.Do(func() {
		l := openapi3.NewLoader()
		openapiDoc, openapiErr = l.LoadFromFile(filepath.Join(contractsDir(t), "seller-agent", "openapi.json"))
	})
	if openapiErr != nil {
		t.Fatalf("load openapi: %v", openapiErr)
	}
	return openapiDoc
}

// validateAgainstOpenAPI validates one recorded request (method, path,
// headers, body) against the operation the document declares for it.
func validateAgainstOpenAPI(t *testing.T, r recorded) error {
	t.Helper()
	doc := sellerOpenAPI(t)
	pi := doc.Paths.Find(r.Path)
	if pi == nil {
		t.Fatalf("path %s not in the OpenAPI document", r.Path)
	}
	op := pi.GetOperation(r.Method)
	if op == nil {
		t.Fatalf("%s %s not in the OpenAPI document", r.Method, r.Path)
	}
	req, err := http.NewRequest(r.Method, "http://seller.example"+r.Raw, bytes.NewReader(r.Body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = r.Header.Clone()
	in := &openapi3filter.RequestValidationInput{
		Request: req,
		Route:   &routers.Route{Spec: doc, Path: r.Path, PathItem: pi, Method: r.Method, Operation: op},
		Options: &openapi3filter.Options{MultiError: true},
	}
	return openapi3filter.ValidateRequest(context.Background(), in)
}

func TestRequestBodiesConformToOpenAPI(t *testing.T) {
	t.Parallel()
	srv := newFake(t, func(_ int, r recorded) reply {
		switch r.Path {
		case "/api/v1/quotes":
			return reply{body: quoteBody}
		case "/api/v1/deals":
			return reply{body: dealBody}
		case "/api/v1/negotiations/messages":
			return reply{body: negotiationBody}
		case "/media-kit/search":
			return reply{body: `{"results":[]}`}
		}
		return reply{status: 404, body: `{"detail":"Not Found"}`}
	})
	c := testClient()
	ctx := context.Background()
	key := Auth{APIKey: "ask_live_x"}
	full := market.BuyerIdentity{SeatID: "s", SeatName: "n", DSPPlatform: "ttd", AgencyID: "a", AgencyName: "an",
		AgencyHoldingCompany: "h", AdvertiserID: "adv", AdvertiserName: "A", AdvertiserIndustry: "cpg"}
	calls := []func() error{
		func() error { _, err := c.CreateQuote(ctx, srv.URL, Auth{}, quoteReq("q1")); return err },
		func() error {
			_, err := c.CreateQuote(ctx, srv.URL, key, QuoteRequest{IdempotencyKey: "q2", ProductID: "prod-53e78a97", DealType: DealPG,
				Impressions: ptr(int64(20000000)), FlightStart: "2026-11-25", FlightEnd: "2026-12-25", TargetCPM: ptr(USD(29.625)),
				BuyerIdentity: &full, AgentURL: "https://buyer.example.com", RateCardID: "rc-1", MediaType: MediaCTV,
				AudiencePlan:   json.RawMessage(`{"plan_id":"ap-1","primary":{"id":"3"}}`),
				ConsentContext: json.RawMessage(`{"applicable_regimes":["GDPR"],"gpp_section_ids":[2],"gdpr_applies":true,"diligence_status":"passed","verified_at":"2026-07-01T12:00:00Z"}`)})
			return err
		},
		func() error {
			_, err := c.CreateQuote(ctx, srv.URL, Auth{APIKey: "k", Bearer: true}, QuoteRequest{IdempotencyKey: "q3", ProductID: "prod-889e2b7d", DealType: DealPG,
				MediaType: MediaLinearTV, LinearTV: json.RawMessage(`{"target_demo":"A18-49","dayparts":["primetime"],"target_cpp":{"amount_micros":450000000,"currency":"USD"}}`)})
			return err
		},
		func() error {
			_, err := c.BookDeal(ctx, srv.URL, key, DealBookingRequest{IdempotencyKey: "b1", QuoteID: "qt-0123456789ab"})
			return err
		},
		func() error {
			_, err := c.BookDeal(ctx, srv.URL, Auth{}, DealBookingRequest{IdempotencyKey: "b2", QuoteID: "qt-0123456789ab", BuyerIdentity: &full,
				Notes: "n", AudiencePlan: json.RawMessage(`{"plan_id":"ap"}`), ConsentContext: json.RawMessage(`{"us_privacy":"1YNN"}`)})
			return err
		},
		func() error {
			_, err := c.Negotiate(ctx, srv.URL, key, NegotiationMessage{IdempotencyKey: "n1", Action: ActionCounter, QuoteID: "qt-0123456789ab", BuyerPrice: ptr(USD(20))})
			return err
		},
		func() error {
			_, err := c.Negotiate(ctx, srv.URL, key, NegotiationMessage{IdempotencyKey: "n2", Action: ActionFinalOffer, ProposalID: "qt-0123456789ab",
				NegotiationID: "neg-1a2b3c4d", RoundNumber: 3, BuyerPrice: ptr(USD(22)), BuyerIdentity: &market.BuyerIdentity{AgencyID: "a"}, Rationale: "r"})
			return err
		},
		func() error {
			_, err := c.Negotiate(ctx, srv.URL, Auth{}, NegotiationMessage{IdempotencyKey: "n3", Action: ActionAccept, QuoteID: "qt-0123456789ab"})
			return err
		},
		func() error {
			_, err := c.Negotiate(ctx, srv.URL, Auth{}, NegotiationMessage{IdempotencyKey: "n4", Action: ActionReject, QuoteID: "qt-0123456789ab", Rationale: "walk"})
			return err
		},
		func() error {
			_, err := c.SearchPackages(ctx, srv.URL, Auth{}, SearchRequest{Query: "sports video"})
			return err
		},
		func() error {
			_, err := c.SearchPackages(ctx, srv.URL, key, SearchRequest{Query: "sports", BuyerTier: market.TierAdvertiser, AgencyID: "a",
				AdvertiserID: "adv", AudienceFilter: &AudienceFilter{AudienceType: "standard", AudienceID: "3", TaxonomyVersion: "1.1"}})
			return err
		},
	}
	for i, call := range calls {
		if err := call(); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	reqs := srv.requests()
	if len(reqs) != len(calls) {
		t.Fatalf("%d requests for %d calls", len(reqs), len(calls))
	}
	for _, r := range reqs {
		if err := validateAgainstOpenAPI(t, r); err != nil {
			t.Errorf("%s %s body %s:\n%v", r.Method, r.Path, r.Body, err)
		}
	}

	// Negative controls: the validator does catch what the seller 422s, so a
	// pass above means something.
	bad := []recorded{
		{Method: "POST", Path: "/api/v1/quotes", Body: []byte(`{"idempotency_key":"k","product_id":"p","deal_type":"PD","target_cpm":{"amount_micros":20.5,"currency":"USD"}}`)},
		{Method: "POST", Path: "/api/v1/quotes", Body: []byte(`{"idempotency_key":"k","product_id":"p","deal_type":"preferred_deal"}`)},
		{Method: "POST", Path: "/api/v1/quotes", Body: []byte(`{"product_id":"p","deal_type":"PD"}`)},
		{Method: "POST", Path: "/api/v1/quotes", Body: []byte(`{"idempotency_key":"k","product_id":"p","deal_type":"PD","target_cpm":{"amount_micros":1,"currency":"usd"}}`)},
		{Method: "POST", Path: "/api/v1/deals", Body: []byte(`{"idempotency_key":"","quote_id":"q"}`)},
		{Method: "POST", Path: "/api/v1/negotiations/messages", Body: []byte(`{"idempotency_key":"k","action":"haggle","quote_id":"q"}`)},
		{Method: "POST", Path: "/api/v1/negotiations/messages", Body: []byte(`{"price":20.0}`)},
		{Method: "POST", Path: "/media-kit/search", Body: []byte(`{"buyer_tier":"agency"}`)},
	}
	for _, r := range bad {
		r.Raw = r.Path
		r.Header = http.Header{"Content-Type": {"application/json"}}
		if err := validateAgainstOpenAPI(t, r); err == nil {
			t.Errorf("negative control accepted: %s", r.Body)
		} else if !strings.Contains(err.Error(), "request body has an error") {
			t.Errorf("negative control failed for another reason: %v", err)
		}
	}
}

package sellerclient

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/dealflow/dealflow/pkg/market"
)

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func TestCreateQuote(t *testing.T) {
	t.Parallel()
	srv := newFake(t, routes(map[string]reply{"POST /api/v1/quotes": {body: quoteBody}}))
	c := testClient()
	ctx := context.Background()
	cases := []struct {
		name string
		req  QuoteRequest
		auth Auth
		body string
	}{
		{"minimal anonymous", QuoteRequest{IdempotencyKey: "k1", ProductID: "prod-15ba2543", DealType: DealPD}, Auth{},
			`{"idempotency_key":"k1","product_id":"prod-15ba2543","deal_type":"PD"}`},
		{"full keyed", QuoteRequest{
			IdempotencyKey: "k2", ProductID: "prod-15ba2543", DealType: DealPG, Impressions: ptr(int64(6000000)),
			FlightStart: "2026-11-25", FlightEnd: "2026-12-25", TargetCPM: ptr(USD(20.0)),
			BuyerIdentity: &market.BuyerIdentity{SeatID: "seat-1", AgencyID: "agency-1"},
			AgentURL:      "https://buyer.example.com", MediaType: MediaCTV,
			ConsentContext: json.RawMessage(`{"applicable_regimes":["GDPR"]}`),
		}, Auth{APIKey: "ask_live_agency", Bearer: true},
			`{"idempotency_key":"k2","product_id":"prod-15ba2543","deal_type":"PG","impressions":6000000,"flight_start":"2026-11-25",` +
				`"flight_end":"2026-12-25","target_cpm":{"amount_micros":20000000,"currency":"USD"},"buyer_identity":{"seat_id":"seat-1","agency_id":"agency-1"},` +
				`"agent_url":"https://buyer.example.com","media_type":"ctv","consent_context":{"applicable_regimes":["GDPR"]}}`},
		{"empty optionals dropped", QuoteRequest{IdempotencyKey: "k3", ProductID: "p", DealType: DealPA,
			BuyerIdentity: &market.BuyerIdentity{}, AudiencePlan: json.RawMessage(`null`), Impressions: ptr(int64(0))}, Auth{},
			`{"idempotency_key":"k3","product_id":"p","deal_type":"PA","impressions":0}`},
	}
	for _, cs := range cases {
		t.Run(cs.name, func(t *testing.T) {
			q, err := c.CreateQuote(ctx, srv.URL, cs.auth, cs.req)
			if err != nil {
				t.Fatal(err)
			}
			r := srv.last(t)
			if r.Method != "POST" || r.Path != "/api/v1/quotes" || len(r.Query) != 0 || r.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("request %s %s %v", r.Method, r.Path, r.Header)
			}
			if string(r.Body) != cs.body {
				t.Fatalf("body\n got %s\nwant %s", r.Body, cs.body)
			}
			if cs.auth.Bearer && r.Header.Get("Authorization") != "Bearer "+cs.auth.APIKey {
				t.Fatalf("bearer %q", r.Header.Get("Authorization"))
			}
			checkQuote(t, q)
		})
	}
}

// checkQuote asserts every field of the parsed quoteBody.
func checkQuote(t *testing.T, q *Quote) {
	t.Helper()
	want := &Quote{
		QuoteID: "qt-0123456789ab", Status: QuoteAvailable, DealType: DealPG,
		Product: ProductRef{ProductID: "prod-15ba2543", Name: "Pre-Roll Video", InventoryType: "video"},
		Pricing: QuotePricing{PricingType: "fixed", BaseCPM: &Money{25000000, "USD"}, TierDiscountPct: 10.0, VolumeDiscountPct: 5.0,
			FinalCPM: &Money{21380000, "USD"}, PricingModel: "cpm",
			Rationale: "Base price: $25.00 CPM | Agency tier: -10% | Volume discount: -5.0% | Final price: $21.38 CPM | (Total savings: 14.5%)"},
		Terms:        QuoteTerms{Impressions: ptr(int64(6000000)), FlightStart: "2026-11-25", FlightEnd: "2026-12-25", Guaranteed: true},
		Availability: &QuoteAvailability{InventoryAvailable: true},
		BuyerTier:    market.TierAgency,
		ExpiresAt:    mustTime(t, "2026-11-26T18:55:22.955953Z"),
		SellerID:     "seller-premium-pub-001",
		CreatedAt:    mustTime(t, "2026-11-25T18:55:22.955953Z"),
		MediaType:    MediaDigital,
	}
	if !reflect.DeepEqual(q, want) {
		t.Fatalf("quote\n got %+v\nwant %+v", q, want)
	}
	if q.ExpiresAt.Sub(q.CreatedAt) != 24*time.Hour || q.Pricing.FinalCPM.Dollars() != 21.38 {
		t.Fatal("derived values")
	}
}

func TestCreateQuoteValidationBeforeHTTP(t *testing.T) {
	t.Parallel()
	srv := newFake(t, routes(map[string]reply{"POST /api/v1/quotes": {body: quoteBody}}))
	c := testClient()
	ok := quoteReq("k")
	mod := func(f func(*QuoteRequest)) QuoteRequest { r := ok; f(&r); return r }
	cases := map[string]QuoteRequest{
		"no key":              mod(func(r *QuoteRequest) { r.IdempotencyKey = "" }),
		"no product":          mod(func(r *QuoteRequest) { r.ProductID = " " }),
		"legacy deal type":    mod(func(r *QuoteRequest) { r.DealType = "preferred_deal" }),
		"bad media type":      mod(func(r *QuoteRequest) { r.MediaType = "radio" }),
		"negative imps":       mod(func(r *QuoteRequest) { r.Impressions = ptr(int64(-1)) }),
		"bad date":            mod(func(r *QuoteRequest) { r.FlightStart = "2026/11/25" }),
		"reversed flight":     mod(func(r *QuoteRequest) { r.FlightStart, r.FlightEnd = "2026-12-25", "2026-11-25" }),
		"lowercase currency":  mod(func(r *QuoteRequest) { r.TargetCPM = &Money{1, "eur"} }),
		"linear tv no params": mod(func(r *QuoteRequest) { r.MediaType = MediaLinearTV }),
		"params no linear tv": mod(func(r *QuoteRequest) { r.LinearTV = json.RawMessage(`{"target_demo":"A18-49"}`) }),
		"plan not object":     mod(func(r *QuoteRequest) { r.AudiencePlan = json.RawMessage(`[1]`) }),
		"consent invalid":     mod(func(r *QuoteRequest) { r.ConsentContext = json.RawMessage(`{`) }),
	}
	for name, req := range cases {
		_, err := c.CreateQuote(context.Background(), srv.URL, Auth{}, req)
		var e *Error
		if !errors.As(err, &e) || !errors.Is(err, ErrValidation) || e.Status != 0 || e.Code != "client_validation" || e.Op != "CreateQuote" {
			t.Errorf("%s: %v", name, err)
		}
	}
	if n := len(srv.requests()); n != 0 {
		t.Fatalf("%d invalid requests were sent", n)
	}
	if _, err := c.CreateQuote(context.Background(), "ftp://x", Auth{}, ok); !errors.Is(err, ErrInvalidURL) {
		t.Fatalf("bad url: %v", err)
	}
}

func TestGetQuote(t *testing.T) {
	t.Parallel()
	srv := newFake(t, func(_ int, r recorded) reply {
		switch r.Path {
		case "/api/v1/quotes/qt-0123456789ab":
			return reply{body: quoteBody}
		case "/api/v1/quotes/qt-expired":
			return reply{status: 410, body: errObjectBody}
		}
		return reply{status: 404, body: `{"detail":{"error":"quote_not_found","message":"Quote 'qt-nope' not found."}}`}
	})
	c := testClient()
	q, err := c.GetQuote(context.Background(), srv.URL, "qt-0123456789ab")
	if err != nil {
		t.Fatal(err)
	}
	checkQuote(t, q)
	if r := srv.last(t); r.Method != "GET" || len(r.Body) != 0 || r.Header.Get("Content-Type") != "" {
		t.Fatalf("request %+v", r)
	}
	if _, err := c.GetQuote(context.Background(), srv.URL, "qt-nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	if _, err := c.GetQuote(context.Background(), srv.URL, "qt-expired"); !errors.Is(err, ErrQuoteExpired) {
		t.Fatalf("expired: %v", err)
	}
	if _, err := c.GetQuote(context.Background(), srv.URL, ".."); !errors.Is(err, ErrValidation) {
		t.Fatalf("dotdot: %v", err)
	}
}

func TestNegotiate(t *testing.T) {
	t.Parallel()
	srv := newFake(t, routes(map[string]reply{"POST /api/v1/negotiations/messages": {body: negotiationBody}}))
	c := testClient()
	cases := []struct {
		name string
		msg  NegotiationMessage
		body string
	}{
		{"quote-led counter", NegotiationMessage{IdempotencyKey: "n1", Action: ActionCounter, QuoteID: "qt-0123456789ab", BuyerPrice: ptr(USD(20))},
			`{"idempotency_key":"n1","action":"counter","quote_id":"qt-0123456789ab","buyer_price":{"amount_micros":20000000,"currency":"USD"},"rationale":""}`},
		{"proposal continuation", NegotiationMessage{IdempotencyKey: "n2", Action: ActionFinalOffer, ProposalID: "qt-0123456789ab", NegotiationID: "neg-1a2b3c4d",
			RoundNumber: 2, BuyerPrice: ptr(USD(21)), Rationale: "last try"},
			`{"idempotency_key":"n2","action":"final_offer","negotiation_id":"neg-1a2b3c4d","proposal_id":"qt-0123456789ab","round_number":2,"buyer_price":{"amount_micros":21000000,"currency":"USD"},"rationale":"last try"}`},
		{"accept without price", NegotiationMessage{IdempotencyKey: "n3", Action: ActionAccept, QuoteID: "qt-0123456789ab"},
			`{"idempotency_key":"n3","action":"accept","quote_id":"qt-0123456789ab","rationale":""}`},
		{"reject omits price", NegotiationMessage{IdempotencyKey: "n4", Action: ActionReject, QuoteID: "qt-0123456789ab", BuyerIdentity: &market.BuyerIdentity{}},
			`{"idempotency_key":"n4","action":"reject","quote_id":"qt-0123456789ab","rationale":""}`},
	}
	for _, cs := range cases {
		got, err := c.Negotiate(context.Background(), srv.URL, Auth{APIKey: "ask_live_agency"}, cs.msg)
		if err != nil {
			t.Fatalf("%s: %v", cs.name, err)
		}
		r := srv.last(t)
		if r.Method != "POST" || r.Path != "/api/v1/negotiations/messages" || string(r.Body) != cs.body || r.Header.Get("X-Api-Key") != "ask_live_agency" {
			t.Fatalf("%s: body\n got %s\nwant %s", cs.name, r.Body, cs.body)
		}
		want := &NegotiationRound{NegotiationID: "neg-1a2b3c4d", Status: NegotiationActive, RoundsRemaining: ptr(2), Round: Round{
			RoundNumber: 1, BuyerPrice: Money{20000000, "USD"}, SellerPrice: Money{24250000, "USD"}, Action: ActionCounter,
			ConcessionPct: 0.030000000000000027, CumulativeConcessionPct: 0.030000000000000027,
			Rationale: "Counter at $24.25 CPM (aggressive strategy, round 1/3).", Timestamp: mustTime(t, "2026-11-25T18:55:22.955953Z")}}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: round\n got %+v\nwant %+v", cs.name, got, want)
		}
	}
	n := len(srv.requests())
	bad := map[string]NegotiationMessage{
		"no key":                    {Action: ActionCounter, QuoteID: "q", BuyerPrice: ptr(USD(1))},
		"bad action":                {IdempotencyKey: "k", Action: "haggle", QuoteID: "q"},
		"no ids":                    {IdempotencyKey: "k", Action: ActionAccept},
		"negotiation_id alone":      {IdempotencyKey: "k", Action: ActionAccept, NegotiationID: "neg-1"},
		"negotiation_id with quote": {IdempotencyKey: "k", Action: ActionCounter, NegotiationID: "neg-1", QuoteID: "q", BuyerPrice: ptr(USD(1))},
		"counter without price":     {IdempotencyKey: "k", Action: ActionCounter, QuoteID: "q"},
		"final_offer without price": {IdempotencyKey: "k", Action: ActionFinalOffer, QuoteID: "q"},
		"reject with price":         {IdempotencyKey: "k", Action: ActionReject, QuoteID: "q", BuyerPrice: ptr(USD(20))},
		"bad currency":              {IdempotencyKey: "k", Action: ActionCounter, QuoteID: "q", BuyerPrice: &Money{1, "usd"}},
		"negative round":            {IdempotencyKey: "k", Action: ActionAccept, QuoteID: "q", RoundNumber: -1},
	}
	for name, m := range bad {
		if _, err := c.Negotiate(context.Background(), srv.URL, Auth{}, m); !errors.Is(err, ErrValidation) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if len(srv.requests()) != n {
		t.Fatal("invalid negotiation message was sent")
	}
	// Seller says the negotiation is closed.
	closed := newFake(t, func(int, recorded) reply {
		return reply{status: 400, body: `{"detail":"Negotiation is accepted, cannot counter"}`}
	})
	_, err := c.Negotiate(context.Background(), closed.URL, Auth{}, cases[0].msg)
	if !errors.Is(err, ErrNegotiationClosed) {
		t.Fatalf("closed: %v", err)
	}
}

func TestBookDealAndGetDeal(t *testing.T) {
	t.Parallel()
	srv := newFake(t, func(_ int, r recorded) reply {
		switch r.Method + " " + r.Path {
		case "POST /api/v1/deals", "GET /api/v1/deals/DEMO-7CE8BB4B565B":
			return reply{body: dealBody}
		case "GET /api/v1/deals/DEMO-NOPE":
			return reply{status: 404, body: `{"detail":{"error":"deal_not_found","message":"Deal 'DEMO-NOPE' not found."}}`}
		}
		return reply{status: 409, body: `{"detail":{"error":"quote_already_booked","message":"Quote status is 'booked', expected 'available'."}}`}
	})
	c := testClient()
	ctx := context.Background()
	b, err := c.BookDeal(ctx, srv.URL, Auth{APIKey: "ask_live_agency"}, DealBookingRequest{
		IdempotencyKey: "bk-1", QuoteID: "qt-0123456789ab", Notes: "campaign c-1",
		BuyerIdentity: &market.BuyerIdentity{AgencyID: "agency-1"}, ConsentContext: json.RawMessage(" null "),
	})
	if err != nil {
		t.Fatal(err)
	}
	r := srv.last(t)
	wantBody := `{"idempotency_key":"bk-1","quote_id":"qt-0123456789ab","buyer_identity":{"agency_id":"agency-1"},"notes":"campaign c-1"}`
	if r.Method != "POST" || r.Path != "/api/v1/deals" || string(r.Body) != wantBody || r.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("request %s %s\n got %s\nwant %s", r.Method, r.Path, r.Body, wantBody)
	}
	checkDeal(t, b)

	g, err := c.GetDeal(ctx, srv.URL, "DEMO-7CE8BB4B565B")
	if err != nil {
		t.Fatal(err)
	}
	checkDeal(t, g)
	if r := srv.last(t); r.Method != "GET" || r.Header.Get("X-Api-Key") != "" {
		t.Fatalf("GetDeal request %+v", r)
	}
	if _, err := c.GetDeal(ctx, srv.URL, "DEMO-NOPE"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing deal: %v", err)
	}
	if _, err := c.BookDeal(ctx, srv.URL+"/other", Auth{}, DealBookingRequest{IdempotencyKey: "bk-2", QuoteID: "qt-0123456789ab"}); !errors.Is(err, ErrAlreadyBooked) {
		t.Fatalf("already booked: %v", err)
	}
	n := len(srv.requests())
	for name, req := range map[string]DealBookingRequest{
		"no key":     {QuoteID: "q"},
		"no quote":   {IdempotencyKey: "k"},
		"plan array": {IdempotencyKey: "k", QuoteID: "q", AudiencePlan: json.RawMessage(`[]`)},
	} {
		if _, err := c.BookDeal(ctx, srv.URL, Auth{}, req); !errors.Is(err, ErrValidation) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if len(srv.requests()) != n {
		t.Fatal("invalid booking was sent")
	}
}

// checkDeal asserts every field of the parsed dealBody.
func checkDeal(t *testing.T, b *DealBooking) {
	t.Helper()
	exp := mustTime(t, "2026-12-25T19:01:02.123456Z")
	want := &DealBooking{Deal: Deal{
		DealID: "DEMO-7CE8BB4B565B", DealType: DealPG, Status: DealProposed, QuoteID: "qt-0123456789ab",
		Product: ProductRef{ProductID: "prod-15ba2543", Name: "Pre-Roll Video", InventoryType: "video"},
		Pricing: QuotePricing{PricingType: "fixed", BaseCPM: &Money{25000000, "USD"}, TierDiscountPct: 10.0, VolumeDiscountPct: 5.0,
			FinalCPM: &Money{21380000, "USD"}, PricingModel: "cpm",
			Rationale: "Base price: $25.00 CPM | Agency tier: -10% | Volume discount: -5.0% | Final price: $21.38 CPM | (Total savings: 14.5%)"},
		Terms:     QuoteTerms{Impressions: ptr(int64(6000000)), FlightStart: "2026-11-25", FlightEnd: "2026-12-25", Guaranteed: true},
		BuyerTier: market.TierAgency, ExpiresAt: &exp,
		ActivationInstructions: map[string]string{
			"ttd":   "In The Trade Desk, create a new PMP deal with Deal ID: DEMO-7CE8BB4B565B",
			"dv360": "In DV360, add deal DEMO-7CE8BB4B565B under Inventory > My Inventory > Deals",
			"xandr": "In Xandr, navigate to Deals and enter Deal ID: DEMO-7CE8BB4B565B",
		},
		OpenRTBParams: &OpenRTBParams{ID: "DEMO-7CE8BB4B565B", BidFloor: Money{21380000, "USD"}, At: 1, WSeat: []string{}, WADomain: []string{}},
		MediaType:     MediaDigital,
		CreatedAt:     mustTime(t, "2026-11-25T19:01:02.123456Z"),
	}}
	if !reflect.DeepEqual(b, want) {
		t.Fatalf("deal\n got %+v\nwant %+v", b, want)
	}
	if b.Deal.OpenRTBParams.BidFloor != *b.Deal.Pricing.FinalCPM {
		t.Fatal("bidfloor != final_cpm")
	}
}

func TestParseV1Defaults(t *testing.T) {
	t.Parallel()
	q, err := parseQuote([]byte(`{"quote":{"quote_id":"qt-1","deal_type":"PA","product":{"product_id":"p","name":"n"},"pricing":{},"terms":{},
		"availability":{},"created_at":"2026-01-02T03:04:05.123456","expires_at":null}}`))
	if err != nil {
		t.Fatal(err)
	}
	if q.Status != QuoteAvailable || q.BuyerTier != market.TierPublic || q.MediaType != MediaDigital || !q.Availability.InventoryAvailable ||
		q.Pricing.FinalCPM != nil || !q.ExpiresAt.IsZero() || q.CreatedAt != time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC) {
		t.Fatalf("defaults %+v", q)
	}
	// A bare (unwrapped) quote is accepted too.
	if q, err := parseQuote([]byte(`{"quote_id":"qt-2"}`)); err != nil || q.QuoteID != "qt-2" {
		t.Fatalf("bare quote: %v %v", q, err)
	}
	b, err := parseDealBooking([]byte(`{"deal":{"deal_id":"D","openrtb_params":{"id":"D","bidfloor":{"amount_micros":5}}},"audience_plan_snapshot":{"plan_id":"ap"}}`))
	if err != nil || b.Deal.OpenRTBParams.At != 3 || b.Deal.OpenRTBParams.BidFloor.Currency != "USD" || b.Deal.Status != DealProposed ||
		b.Deal.ExpiresAt != nil || string(b.AudiencePlanSnapshot) != `{"plan_id":"ap"}` || b.AudienceMatchSummary != nil {
		t.Fatalf("deal defaults %+v %v", b, err)
	}
	n, err := parseNegotiation([]byte(`{"negotiation_id":"neg-1","status":"accepted","round":{"round_number":4,"buyer_price":{"amount_micros":23000000},
		"seller_price":{"amount_micros":23000000},"action":"accept","timestamp":"2026-11-25T18:55:22"},"rounds_remaining":null}`))
	if err != nil || n.RoundsRemaining != nil || n.Round.Action != ActionAccept || n.Round.SellerPrice.AmountMicros != 23000000 || n.Round.Timestamp.IsZero() {
		t.Fatalf("negotiation %+v %v", n, err)
	}
	for _, bad := range []string{`{"status":"active","round":{}}`, `{"negotiation_id":"n","status":"active"}`, `{"negotiation_id":"n","round":{}}`,
		`{"negotiation_id":"n","status":"active","round":{"buyer_price":{"amount_micros":1.5}}}`} {
		if _, err := parseNegotiation([]byte(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
	for _, bad := range []string{`{"deal":null}`, `{"deal":{"status":"proposed"}}`, `{"deal":[]}`} {
		if _, err := parseDealBooking([]byte(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

// TestSchemaDefaultsSurviveNull: a schema default holds when the key is
// absent or null, and an explicit value replaces it.
func TestSchemaDefaultsSurviveNull(t *testing.T) {
	for body, want := range map[string]bool{`{}`: true, `{"inventory_available":null}`: true, `{"inventory_available":false}`: false} {
		var a QuoteAvailability
		if err := a.UnmarshalJSON([]byte(body)); err != nil || a.InventoryAvailable != want {
			t.Errorf("%s: inventory_available %v (%v), want %v", body, a.InventoryAvailable, err, want)
		}
	}
	for body, want := range map[string]int{`{"id":"d"}`: 3, `{"id":"d","at":null}`: 3, `{"id":"d","at":1}`: 1} {
		var o OpenRTBParams
		if err := o.UnmarshalJSON([]byte(body)); err != nil || o.At != want || o.ID != "d" {
			t.Errorf("%s: %+v (%v), want at %d", body, o, err, want)
		}
	}
}

package sellerclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/dealflow/dealflow/pkg/market"
)

// DealType is the v1 deal type. The legacy long names ("preferred_deal") are
// a 422 on the v1 surfaces.
type DealType string

// Deal types.
const (
	DealPG DealType = "PG" // programmatic guaranteed
	DealPD DealType = "PD" // preferred deal
	DealPA DealType = "PA" // private auction
)

// Valid reports whether d is a v1 deal type.
func (d DealType) Valid() bool { return d == DealPG || d == DealPD || d == DealPA }

// MediaType is the v1 media discriminator.
type MediaType string

// Media types. The reference seller refuses linear_tv with 400
// unsupported_capability.
const (
	MediaDigital  MediaType = "digital"
	MediaCTV      MediaType = "ctv"
	MediaLinearTV MediaType = "linear_tv"
)

// Valid reports whether m is a v1 media type.
func (m MediaType) Valid() bool { return m == MediaDigital || m == MediaCTV || m == MediaLinearTV }

// NegotiationAction is a move in a negotiation round. In a request it is the
// buyer's move; in a NegotiationRound response it is the SELLER's move.
type NegotiationAction string

// Negotiation actions.
const (
	ActionCounter    NegotiationAction = "counter"
	ActionFinalOffer NegotiationAction = "final_offer"
	ActionAccept     NegotiationAction = "accept"
	ActionReject     NegotiationAction = "reject"
)

// Valid reports whether a is a known action.
func (a NegotiationAction) Valid() bool {
	switch a {
	case ActionCounter, ActionFinalOffer, ActionAccept, ActionReject:
		return true
	}
	return false
}

// Status values the seller emits on v1 surfaces (strings, so unknown future
// values still decode).
const (
	QuoteAvailable = "available"
	QuoteBooked    = "booked"
	QuoteExpired   = "expired"
	QuoteDeclined  = "declined"

	DealProposed = "proposed"
	DealExpired  = "expired"

	NegotiationActive   = "active"
	NegotiationAccepted = "accepted"
	NegotiationRejected = "rejected"
	NegotiationExpired  = "expired"
)

// QuoteRequest is the body of POST /api/v1/quotes (OpenAPI QuoteRequest).
// IdempotencyKey is required: persist it before the call and reuse it when
// retrying the same intent, so a replay returns the same quote.
type QuoteRequest struct {
	IdempotencyKey string                `json:"idempotency_key"`
	ProductID      string                `json:"product_id"`
	DealType       DealType              `json:"deal_type"`
	Impressions    *int64                `json:"impressions,omitempty"`
	FlightStart    string                `json:"flight_start,omitempty"` // YYYY-MM-DD
	FlightEnd      string                `json:"flight_end,omitempty"`   // YYYY-MM-DD
	TargetCPM      *Money                `json:"target_cpm,omitempty"`
	BuyerIdentity  *market.BuyerIdentity `json:"buyer_identity,omitempty"`
	// AgentURL makes the seller verify the buyer in its registry; an unknown
	// agent caps the tier at public even with a key.
	AgentURL       string          `json:"agent_url,omitempty"`
	RateCardID     string          `json:"rate_card_id,omitempty"`
	MediaType      MediaType       `json:"media_type,omitempty"` // seller default digital
	LinearTV       json.RawMessage `json:"linear_tv,omitempty"`  // LinearTVParams; only with media_type linear_tv
	AudiencePlan   json.RawMessage `json:"audience_plan,omitempty"`
	ConsentContext json.RawMessage `json:"consent_context,omitempty"`
}

// DealBookingRequest is the body of POST /api/v1/deals (OpenAPI
// DealBookingRequest). The seller books at the quote's stored tier and price
// (or the accepted negotiation's last seller price), not at anything sent here.
type DealBookingRequest struct {
	IdempotencyKey string                `json:"idempotency_key"`
	QuoteID        string                `json:"quote_id"`
	BuyerIdentity  *market.BuyerIdentity `json:"buyer_identity,omitempty"`
	Notes          string                `json:"notes,omitempty"`
	AudiencePlan   json.RawMessage       `json:"audience_plan,omitempty"`
	ConsentContext json.RawMessage       `json:"consent_context,omitempty"`
}

// NegotiationMessage is the body of POST /api/v1/negotiations/messages
// (OpenAPI NegotiationMessage). The seller keys the negotiation by
// proposal_id, else negotiation_id, else quote_id, and looks that key up as a
// proposal or quote id: so send QuoteID (quote-led) or ProposalID, and
// NegotiationID only together with ProposalID. The client enforces this.
type NegotiationMessage struct {
	IdempotencyKey string            `json:"idempotency_key"`
	Action         NegotiationAction `json:"action"`
	NegotiationID  string            `json:"negotiation_id,omitempty"`
	ProposalID     string            `json:"proposal_id,omitempty"`
	QuoteID        string            `json:"quote_id,omitempty"`
	// RoundNumber is advisory (the seller ignores it); 0 is not sent.
	RoundNumber int `json:"round_number,omitempty"`
	// BuyerPrice is required for counter and final_offer, optional for
	// accept and must be nil for reject.
	BuyerPrice    *Money                `json:"buyer_price,omitempty"`
	BuyerIdentity *market.BuyerIdentity `json:"buyer_identity,omitempty"`
	Rationale     string                `json:"rationale"`
}

// ProductRef identifies the quoted product.
type ProductRef struct {
	ProductID     string `json:"product_id"`
	Name          string `json:"name"`
	InventoryType string `json:"inventory_type,omitempty"`
}

// QuotePricing is a quote's or deal's price. Percent fields are percents
// (10.0 = 10%). CPM amounts are nil for unpriced/on_request or CPP-priced
// (linear TV) quotes; never invent them.
type QuotePricing struct {
	PricingType       string  `json:"pricing_type"`
	BaseCPM           *Money  `json:"base_cpm"`
	TierDiscountPct   float64 `json:"tier_discount_pct"`
	VolumeDiscountPct float64 `json:"volume_discount_pct"`
	FinalCPM          *Money  `json:"final_cpm"`
	PricingModel      string  `json:"pricing_model"`
	Rationale         string  `json:"rationale"`
	BaseCPP           *Money  `json:"base_cpp"`
	FinalCPP          *Money  `json:"final_cpp"`
}

// QuoteTerms are the quoted delivery terms. Dates are YYYY-MM-DD.
type QuoteTerms struct {
	Impressions    *int64 `json:"impressions"`
	FlightStart    string `json:"flight_start,omitempty"`
	FlightEnd      string `json:"flight_end,omitempty"`
	Guaranteed     bool   `json:"guaranteed"`
	GRPs           *int64 `json:"grps"`
	GuaranteedGRPs *int64 `json:"guaranteed_grps"`
	TargetDemo     string `json:"target_demo,omitempty"`
}

// QuoteAvailability says whether the requested volume is available.
type QuoteAvailability struct {
	// InventoryAvailable defaults to true when the key is absent (schema default).
	InventoryAvailable bool     `json:"inventory_available"`
	EstimatedFillRate  *float64 `json:"estimated_fill_rate"`
	CompetingDemand    string   `json:"competing_demand,omitempty"`
}

// UnmarshalJSON applies the schema default inventory_available=true (when
// the key is absent or null).
func (a *QuoteAvailability) UnmarshalJSON(b []byte) error {
	type alias QuoteAvailability
	var v struct {
		alias
		InventoryAvailable *bool `json:"inventory_available"`
	}
	if err := jsonv2.Unmarshal(b, &v); err != nil {
		return err
	}
	*a = QuoteAvailability(v.alias)
	a.InventoryAvailable = v.InventoryAvailable == nil || *v.InventoryAvailable
	return nil
}

// Quote is the v1 Quote (inside the {"quote": ...} envelope).
type Quote struct {
	QuoteID        string             `json:"quote_id"`
	Status         string             `json:"status"`
	DealType       DealType           `json:"deal_type"`
	Product        ProductRef         `json:"product"`
	Pricing        QuotePricing       `json:"pricing"`
	Terms          QuoteTerms         `json:"terms"`
	Availability   *QuoteAvailability `json:"availability"`
	BuyerTier      market.Tier        `json:"buyer_tier"`
	RateCardID     string             `json:"rate_card_id,omitempty"`
	ExpiresAt      time.Time          `json:"expires_at"`
	SellerID       string             `json:"seller_id,omitempty"`
	CreatedAt      time.Time          `json:"created_at"`
	DealID         string             `json:"deal_id,omitempty"`
	MediaType      MediaType          `json:"media_type"`
	LinearTV       json.RawMessage    `json:"linear_tv,omitempty"`
	ConsentContext json.RawMessage    `json:"consent_context,omitempty"`
}

// UnmarshalJSON parses timestamps leniently and applies schema defaults.
func (q *Quote) UnmarshalJSON(b []byte) error {
	type alias Quote
	aux := struct {
		*alias
		ExpiresAt flexTime `json:"expires_at"`
		CreatedAt flexTime `json:"created_at"`
	}{alias: (*alias)(q)}
	if err := jsonv2.Unmarshal(b, &aux); err != nil {
		return err
	}
	q.ExpiresAt, q.CreatedAt = time.Time(aux.ExpiresAt), time.Time(aux.CreatedAt)
	if q.Status == "" {
		q.Status = QuoteAvailable
	}
	if q.BuyerTier == "" {
		q.BuyerTier = market.TierPublic
	}
	if q.MediaType == "" {
		q.MediaType = MediaDigital
	}
	q.LinearTV, q.ConsentContext = nullToNil(q.LinearTV), nullToNil(q.ConsentContext)
	return nil
}

// MarshalJSON writes zero timestamps as null.
func (q Quote) MarshalJSON() ([]byte, error) {
	type alias Quote
	return json.Marshal(struct {
		alias
		ExpiresAt *time.Time `json:"expires_at"`
		CreatedAt *time.Time `json:"created_at"`
	}{alias(q), timePtr(q.ExpiresAt), timePtr(q.CreatedAt)})
}

// OpenRTBParams are the deal's bid-stream parameters. BidFloor equals the
// deal's final CPM; At is 1 (first price) for PG/PD and 3 for PA on the
// reference seller, default 3 when absent.
type OpenRTBParams struct {
	ID       string   `json:"id"`
	BidFloor Money    `json:"bidfloor"`
	At       int      `json:"at"`
	WSeat    []string `json:"wseat"`
	WADomain []string `json:"wadomain"`
}

// UnmarshalJSON applies the schema default at=3 (when the key is absent or
// null).
func (o *OpenRTBParams) UnmarshalJSON(b []byte) error {
	type alias OpenRTBParams
	var v struct {
		alias
		At *int `json:"at"`
	}
	if err := jsonv2.Unmarshal(b, &v); err != nil {
		return err
	}
	*o = OpenRTBParams(v.alias)
	o.At = 3
	if v.At != nil {
		o.At = *v.At
	}
	return nil
}

// Deal is the v1 Deal (inside the {"deal": ...} envelope).
type Deal struct {
	DealID                 string            `json:"deal_id"`
	DealType               DealType          `json:"deal_type"`
	Status                 string            `json:"status"`
	QuoteID                string            `json:"quote_id,omitempty"`
	RateCardID             string            `json:"rate_card_id,omitempty"`
	Product                ProductRef        `json:"product"`
	Pricing                QuotePricing      `json:"pricing"`
	Terms                  QuoteTerms        `json:"terms"`
	BuyerTier              market.Tier       `json:"buyer_tier"`
	SellerID               string            `json:"seller_id,omitempty"`
	ExpiresAt              *time.Time        `json:"expires_at"`
	ActivationInstructions map[string]string `json:"activation_instructions"`
	OpenRTBParams          *OpenRTBParams    `json:"openrtb_params"`
	MediaType              MediaType         `json:"media_type"`
	LinearTV               json.RawMessage   `json:"linear_tv,omitempty"`
	CreatedAt              time.Time         `json:"created_at"`
	ConsentContext         json.RawMessage   `json:"consent_context,omitempty"`
	SupplyChain            json.RawMessage   `json:"supply_chain,omitempty"`
}

// UnmarshalJSON parses timestamps leniently and applies schema defaults.
func (d *Deal) UnmarshalJSON(b []byte) error {
	type alias Deal
	aux := struct {
		*alias
		ExpiresAt *flexTime `json:"expires_at"`
		CreatedAt flexTime  `json:"created_at"`
	}{alias: (*alias)(d)}
	if err := jsonv2.Unmarshal(b, &aux); err != nil {
		return err
	}
	d.ExpiresAt = nil
	if aux.ExpiresAt != nil && !time.Time(*aux.ExpiresAt).IsZero() {
		t := time.Time(*aux.ExpiresAt)
		d.ExpiresAt = &t
	}
	d.CreatedAt = time.Time(aux.CreatedAt)
	if d.Status == "" {
		d.Status = DealProposed
	}
	if d.BuyerTier == "" {
		d.BuyerTier = market.TierPublic
	}
	if d.MediaType == "" {
		d.MediaType = MediaDigital
	}
	if d.ActivationInstructions == nil {
		d.ActivationInstructions = map[string]string{}
	}
	d.LinearTV, d.ConsentContext, d.SupplyChain = nullToNil(d.LinearTV), nullToNil(d.ConsentContext), nullToNil(d.SupplyChain)
	return nil
}

// MarshalJSON writes a zero created_at as null.
func (d Deal) MarshalJSON() ([]byte, error) {
	type alias Deal
	return json.Marshal(struct {
		alias
		CreatedAt *time.Time `json:"created_at"`
	}{alias(d), timePtr(d.CreatedAt)})
}

// DealBooking is the DealBookingResponse envelope of POST /api/v1/deals and
// GET /api/v1/deals/{id}. The audience fields are null for plain bookings.
type DealBooking struct {
	Deal                 Deal            `json:"deal"`
	AudiencePlanSnapshot json.RawMessage `json:"audience_plan_snapshot"`
	AudienceMatchSummary json.RawMessage `json:"audience_match_summary"`
}

// Round is one negotiation round. Action is the seller's move; prices are
// Money; concession fields are 0–1 fractions (raw floats from the seller).
type Round struct {
	RoundNumber             int               `json:"round_number"`
	BuyerPrice              Money             `json:"buyer_price"`
	SellerPrice             Money             `json:"seller_price"`
	Action                  NegotiationAction `json:"action"`
	ConcessionPct           float64           `json:"concession_pct"`
	CumulativeConcessionPct float64           `json:"cumulative_concession_pct"`
	Rationale               string            `json:"rationale"`
	Timestamp               time.Time         `json:"timestamp"`
}

// UnmarshalJSON parses the timestamp leniently.
func (r *Round) UnmarshalJSON(b []byte) error {
	type alias Round
	aux := struct {
		*alias
		Timestamp flexTime `json:"timestamp"`
	}{alias: (*alias)(r)}
	if err := jsonv2.Unmarshal(b, &aux); err != nil {
		return err
	}
	r.Timestamp = time.Time(aux.Timestamp)
	return nil
}

// MarshalJSON writes a zero timestamp as null.
func (r Round) MarshalJSON() ([]byte, error) {
	type alias Round
	return json.Marshal(struct {
		alias
		Timestamp *time.Time `json:"timestamp"`
	}{alias(r), timePtr(r.Timestamp)})
}

// NegotiationRound is the NegotiationRoundResponse: the seller's answer to one
// NegotiationMessage. RoundsRemaining is nil when the seller does not disclose
// it; it is 0 on answers to buyer accept/reject.
type NegotiationRound struct {
	NegotiationID   string `json:"negotiation_id"`
	Status          string `json:"status"`
	Round           Round  `json:"round"`
	RoundsRemaining *int   `json:"rounds_remaining"`
}

// CreateQuote posts POST {seller}/api/v1/quotes and returns the quote from
// the {"quote": ...} envelope (HTTP 200 on the reference seller).
func (c *Client) CreateQuote(ctx context.Context, sellerURL string, auth Auth, req QuoteRequest) (*Quote, error) {
	return post(ctx, c, "CreateQuote", sellerURL, "/api/v1/quotes", auth, &req, req.normalize, parseQuote)
}

// GetQuote fetches GET {seller}/api/v1/quotes/{id} (no auth). The reference
// seller re-emits media_type as "digital" here whatever was quoted.
func (c *Client) GetQuote(ctx context.Context, sellerURL, id string) (*Quote, error) {
	return getByID(ctx, c, "GetQuote", sellerURL, "/api/v1/quotes/", id, parseQuote)
}

// Negotiate posts POST {seller}/api/v1/negotiations/messages.
func (c *Client) Negotiate(ctx context.Context, sellerURL string, auth Auth, msg NegotiationMessage) (*NegotiationRound, error) {
	return post(ctx, c, "Negotiate", sellerURL, "/api/v1/negotiations/messages", auth, &msg, msg.normalize, parseNegotiation)
}

// BookDeal posts POST {seller}/api/v1/deals. Compare the booked
// Deal.Pricing.FinalCPM with the agreed price: the seller books at the quote's
// price unless a negotiation on that quote reached accepted.
func (c *Client) BookDeal(ctx context.Context, sellerURL string, auth Auth, req DealBookingRequest) (*DealBooking, error) {
	return post(ctx, c, "BookDeal", sellerURL, "/api/v1/deals", auth, &req, req.normalize, parseDealBooking)
}

// GetDeal fetches GET {seller}/api/v1/deals/{id} (no auth; same envelope as
// booking).
func (c *Client) GetDeal(ctx context.Context, sellerURL, id string) (*DealBooking, error) {
	return getByID(ctx, c, "GetDeal", sellerURL, "/api/v1/deals/", id, parseDealBooking)
}

// post validates the seller URL and the request (normalize runs on the
// value body points to, before anything is sent), POSTs it and parses the
// answer.
func post[T any](ctx context.Context, c *Client, op, sellerURL, path string, auth Auth, body any, normalize func() error, parse func([]byte) (*T, error)) (*T, error) {
	base, err := c.sellerURL(op, sellerURL)
	if err != nil {
		return nil, err
	}
	if err := normalize(); err != nil {
		return nil, validationError(op, base, err.Error())
	}
	var out *T
	err = c.postJSON(ctx, op, joinURL(base, path, nil), auth, body, func(b []byte) (err error) {
		out, err = parse(b)
		return err
	})
	return out, err
}

// getByID GETs prefix+{escaped id} without credentials and parses it.
func getByID[T any](ctx context.Context, c *Client, op, sellerURL, prefix, id string, parse func([]byte) (*T, error)) (*T, error) {
	base, err := c.sellerURL(op, sellerURL)
	if err != nil {
		return nil, err
	}
	seg, err := escapeID(op, id)
	if err != nil {
		return nil, err
	}
	var out *T
	err = c.getJSON(ctx, op, joinURL(base, prefix+seg, nil), Auth{}, func(b []byte) (err error) {
		out, err = parse(b)
		return err
	})
	return out, err
}

// normalize validates a QuoteRequest and drops empty optionals.
func (r *QuoteRequest) normalize() error {
	if r.IdempotencyKey == "" {
		return errors.New("idempotency_key is required")
	}
	if strings.TrimSpace(r.ProductID) == "" {
		return errors.New("product_id is required")
	}
	if !r.DealType.Valid() {
		return fmt.Errorf("deal_type %q must be PG, PD or PA", r.DealType)
	}
	if r.MediaType != "" && !r.MediaType.Valid() {
		return fmt.Errorf("media_type %q must be digital, ctv or linear_tv", r.MediaType)
	}
	if r.Impressions != nil && *r.Impressions < 0 {
		return errors.New("impressions must not be negative")
	}
	for name, d := range map[string]string{"flight_start": r.FlightStart, "flight_end": r.FlightEnd} {
		if d != "" {
			if _, err := time.Parse(time.DateOnly, d); err != nil {
				return fmt.Errorf("%s %q must be YYYY-MM-DD", name, d)
			}
		}
	}
	if r.FlightStart != "" && r.FlightEnd != "" && r.FlightEnd < r.FlightStart {
		return errors.New("flight_end is before flight_start")
	}
	if r.TargetCPM != nil {
		if err := r.TargetCPM.validate("target_cpm"); err != nil {
			return err
		}
	}
	var err error
	if r.LinearTV, err = objectOrNil("linear_tv", r.LinearTV); err != nil {
		return err
	}
	if r.AudiencePlan, err = objectOrNil("audience_plan", r.AudiencePlan); err != nil {
		return err
	}
	if r.ConsentContext, err = objectOrNil("consent_context", r.ConsentContext); err != nil {
		return err
	}
	if r.MediaType == MediaLinearTV && r.LinearTV == nil {
		return errors.New("media_type linear_tv requires linear_tv params")
	}
	if r.MediaType != MediaLinearTV && r.LinearTV != nil {
		return errors.New("linear_tv params require media_type linear_tv")
	}
	if r.BuyerIdentity != nil && r.BuyerIdentity.IsZero() {
		r.BuyerIdentity = nil
	}
	return nil
}

// normalize validates a DealBookingRequest and drops empty optionals.
func (r *DealBookingRequest) normalize() error {
	if r.IdempotencyKey == "" {
		return errors.New("idempotency_key is required")
	}
	if strings.TrimSpace(r.QuoteID) == "" {
		return errors.New("quote_id is required")
	}
	var err error
	if r.AudiencePlan, err = objectOrNil("audience_plan", r.AudiencePlan); err != nil {
		return err
	}
	if r.ConsentContext, err = objectOrNil("consent_context", r.ConsentContext); err != nil {
		return err
	}
	if r.BuyerIdentity != nil && r.BuyerIdentity.IsZero() {
		r.BuyerIdentity = nil
	}
	return nil
}

// normalize validates a NegotiationMessage against the schema's model rules
// and the seller's key-precedence quirk.
func (m *NegotiationMessage) normalize() error {
	if m.IdempotencyKey == "" {
		return errors.New("idempotency_key is required")
	}
	if !m.Action.Valid() {
		return fmt.Errorf("action %q must be counter, final_offer, accept or reject", m.Action)
	}
	switch m.Action {
	case ActionCounter, ActionFinalOffer:
		if m.BuyerPrice == nil {
			return fmt.Errorf("action %q requires buyer_price", m.Action)
		}
	case ActionReject:
		if m.BuyerPrice != nil {
			return errors.New("reject must not carry buyer_price")
		}
	}
	if m.BuyerPrice != nil {
		if err := m.BuyerPrice.validate("buyer_price"); err != nil {
			return err
		}
	}
	if m.QuoteID == "" && m.ProposalID == "" && m.NegotiationID == "" {
		return errors.New("one of quote_id, proposal_id or negotiation_id is required")
	}
	if m.NegotiationID != "" && m.ProposalID == "" {
		return errors.New("negotiation_id without proposal_id is looked up as a proposal and fails (404 Proposal not found); send quote_id, or proposal_id with negotiation_id")
	}
	if m.RoundNumber < 0 {
		return errors.New("round_number must be >= 1 when set")
	}
	if m.BuyerIdentity != nil && m.BuyerIdentity.IsZero() {
		m.BuyerIdentity = nil
	}
	return nil
}

// objectOrNil checks an open-object slot: absent/null is dropped, anything
// else must be a JSON object.
func objectOrNil(name string, raw json.RawMessage) (json.RawMessage, error) {
	if isNull(raw) {
		return nil, nil
	}
	t := trimSpace(raw)
	var obj map[string]json.RawMessage
	if t[0] != '{' || json.Unmarshal(t, &obj) != nil {
		return nil, fmt.Errorf("%s must be a JSON object", name)
	}
	return t, nil
}

// parseQuote decodes the {"quote": Quote} envelope (a bare Quote is accepted).
func parseQuote(b []byte) (*Quote, error) {
	var env struct {
		Quote   *Quote          `json:"quote"`
		QuoteID json.RawMessage `json:"quote_id"`
	}
	if err := decodeObject(b, &env); err != nil {
		return nil, fmt.Errorf("quote: %w", err)
	}
	q := env.Quote
	if q == nil && env.QuoteID != nil {
		q = new(Quote)
		if err := jsonv2.Unmarshal(trimSpace(b), q); err != nil {
			return nil, fmt.Errorf("quote: %w", err)
		}
	}
	if q == nil {
		return nil, errors.New(`quote: no "quote" object`)
	}
	if q.QuoteID == "" {
		return nil, errors.New("quote: missing quote_id")
	}
	return q, nil
}

// parseDealBooking decodes the DealBookingResponse envelope.
func parseDealBooking(b []byte) (*DealBooking, error) {
	var env struct {
		Deal                 *Deal           `json:"deal"`
		AudiencePlanSnapshot json.RawMessage `json:"audience_plan_snapshot"`
		AudienceMatchSummary json.RawMessage `json:"audience_match_summary"`
	}
	if err := decodeObject(b, &env); err != nil {
		return nil, fmt.Errorf("deal: %w", err)
	}
	if env.Deal == nil {
		return nil, errors.New(`deal: no "deal" object`)
	}
	if env.Deal.DealID == "" {
		return nil, errors.New("deal: missing deal_id")
	}
	return &DealBooking{Deal: *env.Deal, AudiencePlanSnapshot: nullToNil(env.AudiencePlanSnapshot), AudienceMatchSummary: nullToNil(env.AudienceMatchSummary)}, nil
}

// parseNegotiation decodes a NegotiationRoundResponse.
func parseNegotiation(b []byte) (*NegotiationRound, error) {
	var w struct {
		NegotiationRound
		Round *Round `json:"round"`
	}
	if err := decodeObject(b, &w); err != nil {
		return nil, fmt.Errorf("negotiation: %w", err)
	}
	if w.NegotiationID == "" {
		return nil, errors.New("negotiation: missing negotiation_id")
	}
	if w.Round == nil {
		return nil, errors.New("negotiation: missing round")
	}
	if w.Status == "" {
		return nil, errors.New("negotiation: missing status")
	}
	out := w.NegotiationRound
	out.Round = *w.Round
	return &out, nil
}

// nullToNil drops a raw JSON null so omitempty works and callers test len().
func nullToNil(r json.RawMessage) json.RawMessage {
	if isNull(r) {
		return nil
	}
	return r
}

// timePtr returns nil for the zero time.
func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

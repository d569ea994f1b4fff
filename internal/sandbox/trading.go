package sandbox

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dealflow/dealflow/internal/sandbox/engine"
)

const (
	quoteTTL = 24 * time.Hour
	dealTTL  = 30 * 24 * time.Hour
)

// quoteRecord is a stored quote (§2.4). Prices are float dollars.
type quoteRecord struct {
	ID                 string
	Status             string
	DealType           string
	ProductID          string
	ProductName        string
	InventoryType      string
	BaseCPM            float64
	TierPct, VolumePct float64
	FinalCPM           float64
	Rationale          string
	Impressions        *int64
	FlightStart        string
	FlightEnd          string
	InventoryAvailable bool
	BuyerTier          string
	CreatedAt          time.Time
	ExpiresAt          time.Time
	DealID             *string
}

type wireProductRef struct {
	ProductID     string  `json:"product_id"`
	Name          string  `json:"name"`
	InventoryType *string `json:"inventory_type"`
}

type wirePricing struct {
	PricingType       string  `json:"pricing_type"`
	BaseCPM           *money  `json:"base_cpm"`
	TierDiscountPct   pyFloat `json:"tier_discount_pct"`
	VolumeDiscountPct pyFloat `json:"volume_discount_pct"`
	FinalCPM          *money  `json:"final_cpm"`
	PricingModel      string  `json:"pricing_model"`
	Rationale         string  `json:"rationale"`
	BaseCPP           *money  `json:"base_cpp"`
	FinalCPP          *money  `json:"final_cpp"`
}

type wireTerms struct {
	Impressions    *int64  `json:"impressions"`
	FlightStart    string  `json:"flight_start"`
	FlightEnd      string  `json:"flight_end"`
	Guaranteed     bool    `json:"guaranteed"`
	Grps           *int    `json:"grps"`
	GuaranteedGrps *int    `json:"guaranteed_grps"`
	TargetDemo     *string `json:"target_demo"`
}

type wireAvailability struct {
	InventoryAvailable bool     `json:"inventory_available"`
	EstimatedFillRate  *float64 `json:"estimated_fill_rate"`
	CompetingDemand    *string  `json:"competing_demand"`
}

type wireQuote struct {
	QuoteID        string            `json:"quote_id"`
	Status         string            `json:"status"`
	DealType       string            `json:"deal_type"`
	Product        wireProductRef    `json:"product"`
	Pricing        wirePricing       `json:"pricing"`
	Terms          wireTerms         `json:"terms"`
	Availability   *wireAvailability `json:"availability"`
	BuyerTier      string            `json:"buyer_tier"`
	RateCardID     *string           `json:"rate_card_id"`
	ExpiresAt      string            `json:"expires_at"`
	SellerID       string            `json:"seller_id"`
	CreatedAt      string            `json:"created_at"`
	DealID         *string           `json:"deal_id"`
	MediaType      string            `json:"media_type"`
	LinearTV       any               `json:"linear_tv"`
	ConsentContext any               `json:"consent_context"`
}

func (q *quoteRecord) pricing() wirePricing {
	return wirePricing{PricingType: "fixed", BaseCPM: usd(q.BaseCPM), TierDiscountPct: pyFloat(q.TierPct),
		VolumeDiscountPct: pyFloat(q.VolumePct), FinalCPM: usd(q.FinalCPM), PricingModel: "cpm", Rationale: q.Rationale}
}

func (q *quoteRecord) terms() wireTerms {
	return wireTerms{Impressions: q.Impressions, FlightStart: q.FlightStart, FlightEnd: q.FlightEnd, Guaranteed: q.DealType == "PG"}
}

func (q *quoteRecord) productRef() wireProductRef {
	return wireProductRef{ProductID: q.ProductID, Name: q.ProductName, InventoryType: strPtrOrNil(q.InventoryType)}
}

func (q *quoteRecord) wire(orgID, mediaType string) wireQuote {
	return wireQuote{QuoteID: q.ID, Status: q.Status, DealType: q.DealType, Product: q.productRef(),
		Pricing: q.pricing(), Terms: q.terms(),
		Availability: &wireAvailability{InventoryAvailable: q.InventoryAvailable},
		BuyerTier:    q.BuyerTier, ExpiresAt: isoZ(q.ExpiresAt), SellerID: orgID, CreatedAt: isoZ(q.CreatedAt),
		DealID: q.DealID, MediaType: mediaType}
}

// quoteRequest is the normalised QuoteRequest (field order = model order);
// it is also what the idempotency hash covers.
type quoteRequest struct {
	ProductID      string         `json:"product_id"`
	DealType       string         `json:"deal_type"`
	Impressions    *int64         `json:"impressions"`
	FlightStart    *string        `json:"flight_start"`
	FlightEnd      *string        `json:"flight_end"`
	TargetCPM      *wireMoney     `json:"target_cpm"`
	BuyerIdentity  *wireIdentity  `json:"buyer_identity"`
	AgentURL       *string        `json:"agent_url"`
	RateCardID     *string        `json:"rate_card_id"`
	MediaType      string         `json:"media_type"`
	LinearTV       map[string]any `json:"linear_tv"`
	AudiencePlan   map[string]any `json:"audience_plan"`
	ConsentContext map[string]any `json:"consent_context"`
}

// expired reports lazy expiry; the caller holds s.mu.
func (s *Seller) quoteExpired(q *quoteRecord) bool {
	if s.now().After(q.ExpiresAt) {
		q.Status = "expired"
		return true
	}
	return false
}

func writeQuoteNotFound(w http.ResponseWriter, id string) {
	writeDetail(w, http.StatusNotFound, errorObj("quote_not_found", "Quote '"+id+"' not found."))
}

func writeQuoteExpired(w http.ResponseWriter) {
	writeDetail(w, http.StatusGone, errorObj("quote_expired", "Quote has expired. Request a new quote."))
}

// handleCreateQuote is POST /api/v1/quotes (§2.4).
func (s *Seller) handleCreateQuote(w http.ResponseWriter, r *http.Request) {
	var v validator
	obj, key, ok := s.keyedPost(w, r, &v)
	if !ok {
		return
	}
	var req quoteRequest
	var idemKey *string
	if obj != nil {
		body := []any{"body"}
		idemKey = v.str(obj, body, "idempotency_key", true, 1)
		req.ProductID = deref(v.str(obj, body, "product_id", true, 0))
		req.DealType = deref(v.enum(obj, body, "deal_type", true, []string{"PG", "PD", "PA"}))
		zero := int64(0)
		req.Impressions = v.laxInt(obj, body, "impressions", &zero)
		req.FlightStart = v.date(obj, body, "flight_start")
		req.FlightEnd = v.date(obj, body, "flight_end")
		req.TargetCPM = v.money(obj, body, "target_cpm")
		req.BuyerIdentity = v.buyerIdentity(obj, body, "buyer_identity")
		req.AgentURL = v.str(obj, body, "agent_url", false, 0)
		req.RateCardID = v.str(obj, body, "rate_card_id", false, 0)
		req.MediaType = "digital"
		if mt := v.enum(obj, body, "media_type", false, []string{"digital", "ctv", "linear_tv"}); mt != nil {
			req.MediaType = *mt
		}
		req.LinearTV = v.object(obj, body, "linear_tv")
		req.AudiencePlan = v.object(obj, body, "audience_plan")
		req.ConsentContext = v.object(obj, body, "consent_context")
		if v.ok() {
			switch {
			case req.MediaType == "linear_tv" && req.LinearTV == nil:
				v.valueError(obj, "linear_tv parameters are required when media_type is 'linear_tv'")
			case req.MediaType != "linear_tv" && req.LinearTV != nil:
				v.valueError(obj, "linear_tv parameters are only allowed when media_type is 'linear_tv'")
			}
		}
	}
	if !v.ok() {
		writeValidation(w, v.errs)
		return
	}
	// (1) unsupported media, structurally.
	if req.MediaType == "linear_tv" {
		writeDetail(w, http.StatusBadRequest, envelopeErr("unsupported_capability",
			"Seller does not support media_type 'linear_tv'.",
			[]map[string]any{{"capability": "linear_tv", "path": "media_type", "reason": ""}}))
		return
	}
	// (2) verified context.
	bodyIdent := req.BuyerIdentity.toIdentity()
	ctx, ok := s.verifiedCtx(w, key, bodyIdent, deref(req.AgentURL))
	if !ok {
		return
	}
	// (3) idempotency.
	hash := hashPayload(req)
	ikey := "quote:" + ctx.pricingKey() + ":" + *idemKey
	s.mu.Lock()
	defer s.mu.Unlock()
	if prior, found := s.idem[ikey]; found {
		if prior.hash != hash {
			writeDetail(w, http.StatusConflict, envelopeErr("idempotency_conflict",
				"idempotency_key '"+*idemKey+"' was already used for a different quote request.", nil))
			return
		}
		q := s.quotes[prior.quoteID]
		if q == nil {
			writeQuoteNotFound(w, prior.quoteID)
			return
		}
		if s.quoteExpired(q) {
			writeQuoteExpired(w)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"quote": q.wire(s.orgID, req.MediaType)})
		return
	}
	// (4) PG needs impressions.
	if req.DealType == "PG" && (req.Impressions == nil || *req.Impressions == 0) {
		writeDetail(w, http.StatusBadRequest, errorObj("pg_requires_impressions", "Programmatic Guaranteed deals require an impressions count."))
		return
	}
	// (5) product.
	p := s.productByID[req.ProductID]
	if p == nil {
		writeDetail(w, http.StatusNotFound, errorObj("product_not_found", "Product '"+req.ProductID+"' not found in catalog."))
		return
	}
	// (6) minimum impressions.
	if req.Impressions != nil && *req.Impressions != 0 && *req.Impressions < p.MinimumImpressions {
		writeDetail(w, http.StatusBadRequest, errorObj("below_minimum_impressions",
			"Minimum impressions for this product: "+strconv.FormatInt(p.MinimumImpressions, 10)+"."))
		return
	}
	// (7) unpriced.
	if !p.priced() {
		writeDetail(w, http.StatusUnprocessableEntity, "Product '"+p.ID+"' has no base_cpm or floor_cpm; pricing is on request and cannot be quoted.")
		return
	}
	requested := p.MinimumImpressions
	if req.Impressions != nil {
		requested = *req.Impressions
	}
	available := requested
	if p.MaxImpressions != nil && *p.MaxImpressions < available {
		available = *p.MaxImpressions
	}
	// (8) price.
	tier := ctx.tier()
	volume := int64(0)
	if req.Impressions != nil {
		volume = *req.Impressions
	}
	price := engine.Price(p.base(), tier, volume)
	final := price.FinalPrice
	// (9) target_cpm honoured when acceptable, even above the computed price.
	if req.TargetCPM != nil {
		target := engine.Dollars(req.TargetCPM.AmountMicros)
		if engine.IsPriceAcceptable(target, p.floor(), tier) {
			final = target
		}
	}
	now := s.now().UTC()
	q := &quoteRecord{
		ID: "qt-" + randHex(12), Status: "available", DealType: req.DealType,
		ProductID: p.ID, ProductName: p.Name, InventoryType: p.InventoryType,
		BaseCPM: price.BasePrice, TierPct: price.TierDiscountPct(), VolumePct: price.VolumeDiscountPct(),
		FinalCPM: final, Rationale: price.Rationale, Impressions: req.Impressions,
		FlightStart: now.Format("2006-01-02"), FlightEnd: now.Add(30 * 24 * time.Hour).Format("2006-01-02"),
		InventoryAvailable: available >= max(0, requested), BuyerTier: string(tier),
		CreatedAt: now, ExpiresAt: now.Add(quoteTTL),
	}
	if req.FlightStart != nil {
		q.FlightStart = *req.FlightStart
	}
	if req.FlightEnd != nil {
		q.FlightEnd = *req.FlightEnd
	}
	s.quotes[q.ID] = q
	s.idem[ikey] = idemEntry{hash: hash, quoteID: q.ID}
	writeJSON(w, http.StatusOK, map[string]any{"quote": q.wire(s.orgID, req.MediaType)})
}

// handleGetQuote is GET /api/v1/quotes/{id} (media_type re-emitted as digital).
func (s *Seller) handleGetQuote(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.quotes[id]
	if q == nil {
		writeQuoteNotFound(w, id)
		return
	}
	if s.quoteExpired(q) {
		writeQuoteExpired(w)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"quote": q.wire(s.orgID, "digital")})
}

// dealRecord is a booked deal.
type dealRecord struct {
	wire      map[string]any
	status    string
	expiresAt time.Time
	snapshot  map[string]any // audience_plan_snapshot (nil unless a plan was sent)
	match     map[string]any // audience_match_summary
	summary   Deal
	// delivery is how the deal delivers over its flight (performance.go).
	delivery dealDelivery
}

// envelope is the DealBookingResponse with the deal's current status.
func (d *dealRecord) envelope() map[string]any {
	deal := make(map[string]any, len(d.wire))
	for k, v := range d.wire {
		deal[k] = v
	}
	deal["status"] = d.status
	var snap, match any
	if d.snapshot != nil {
		snap, match = d.snapshot, d.match
	}
	return map[string]any{"deal": deal, "audience_plan_snapshot": snap, "audience_match_summary": match}
}

// dealRequest is the normalised DealBookingRequest (hash payload).
type dealRequest struct {
	QuoteID        string         `json:"quote_id"`
	BuyerIdentity  *wireIdentity  `json:"buyer_identity"`
	Notes          *string        `json:"notes"`
	AudiencePlan   map[string]any `json:"audience_plan"`
	ConsentContext map[string]any `json:"consent_context"`
}

// handleBookDeal is POST /api/v1/deals (§2.5).
func (s *Seller) handleBookDeal(w http.ResponseWriter, r *http.Request) {
	var v validator
	obj, key, ok := s.keyedPost(w, r, &v)
	if !ok {
		return
	}
	var req dealRequest
	var idemKey *string
	if obj != nil {
		body := []any{"body"}
		idemKey = v.str(obj, body, "idempotency_key", true, 1)
		req.QuoteID = deref(v.str(obj, body, "quote_id", true, 0))
		req.BuyerIdentity = v.buyerIdentity(obj, body, "buyer_identity")
		req.Notes = v.str(obj, body, "notes", false, 0)
		req.AudiencePlan = v.object(obj, body, "audience_plan")
		req.ConsentContext = v.object(obj, body, "consent_context")
	}
	if !v.ok() {
		writeValidation(w, v.errs)
		return
	}
	scope := scopeOf(req.BuyerIdentity.toIdentity())
	if key != nil {
		scope = scopeOf(key.identity)
	}
	hash := hashPayload(req)
	ikey := "deal:" + scope + ":" + *idemKey
	s.mu.Lock()
	defer s.mu.Unlock()
	if prior, found := s.idem[ikey]; found {
		if prior.hash != hash {
			writeDetail(w, http.StatusConflict, envelopeErr("idempotency_conflict",
				"idempotency_key '"+*idemKey+"' was already used for a different deal booking request.", nil))
			return
		}
		writeRaw(w, prior.status, prior.body)
		return
	}
	q := s.quotes[req.QuoteID]
	if q == nil {
		writeQuoteNotFound(w, req.QuoteID)
		return
	}
	if s.quoteExpired(q) {
		writeQuoteExpired(w)
		return
	}
	if q.Status != "available" {
		writeDetail(w, http.StatusConflict, errorObj("quote_already_booked", "Quote status is '"+q.Status+"', expected 'available'."))
		return
	}
	negotiated, negID := false, ""
	if n := s.negotiations[req.QuoteID]; n != nil && n.n.Status == engine.StatusAccepted && len(n.n.Rounds) > 0 {
		agreed := n.n.Rounds[len(n.n.Rounds)-1].SellerPrice
		q.FinalCPM = agreed
		q.Rationale = strings.Trim(q.Rationale+" | Negotiated to $"+engine.Fmt2(agreed)+" CPM ("+n.id+")", " |")
		negotiated, negID = true, n.id
	}
	now := s.now().UTC()
	dealID := "DEMO-" + strings.ToUpper(randHex(12))
	at := 1
	if q.DealType == "PA" {
		at = 3
	}
	wire := map[string]any{
		"deal_id": dealID, "deal_type": q.DealType, "status": "proposed", "quote_id": q.ID, "rate_card_id": nil,
		"product": q.productRef(), "pricing": q.pricing(), "terms": q.terms(), "buyer_tier": q.BuyerTier,
		"seller_id": nil, "expires_at": isoZ(now.Add(dealTTL)),
		"activation_instructions": map[string]string{
			"ttd":   "In The Trade Desk, create a new PMP deal with Deal ID: " + dealID,
			"dv360": "In DV360, add deal " + dealID + " under Inventory > My Inventory > Deals",
			"xandr": "In Xandr, navigate to Deals and enter Deal ID: " + dealID,
		},
		"openrtb_params": map[string]any{"id": dealID, "bidfloor": usd(q.FinalCPM), "at": at, "wseat": []string{}, "wadomain": []string{}},
		"media_type":     "digital", "linear_tv": nil, "created_at": isoZ(now), "consent_context": nil, "supply_chain": nil,
	}
	rec := &dealRecord{wire: wire, status: "proposed", expiresAt: now.Add(dealTTL)}
	if req.AudiencePlan != nil {
		rec.snapshot = req.AudiencePlan
		rec.match = audienceMatchSummary(req.AudiencePlan)
	}
	imps := int64(0)
	if q.Impressions != nil {
		imps = *q.Impressions
	}
	rec.summary = Deal{DealID: dealID, QuoteID: q.ID, ProductID: q.ProductID, DealType: q.DealType, BuyerTier: q.BuyerTier,
		Impressions: imps, FinalCPM: q.FinalCPM, FinalMicros: engine.Micros(q.FinalCPM), Negotiated: negotiated,
		NegotiationID: negID, Notes: deref(req.Notes), CreatedAt: now}
	rec.delivery = s.newDelivery(q, now)
	q.Status = "booked"
	q.DealID = &dealID
	s.deals[dealID] = rec
	s.dealOrder = append(s.dealOrder, dealID)
	out := rec.envelope()
	bodyBytes := mustJSON(out)
	s.idem[ikey] = idemEntry{hash: hash, status: http.StatusOK, body: bodyBytes}
	writeRaw(w, http.StatusOK, bodyBytes)
}

// audienceMatchSummary is the seller's deterministic mock match summary.
func audienceMatchSummary(plan map[string]any) map[string]any {
	entry := func(ref any) map[string]any {
		m, _ := ref.(map[string]any)
		idf, _ := m["identifier"].(string)
		sum := shortHash(idf, 8)
		n, _ := strconv.ParseUint(sum, 16, 64)
		score := float64(n) / float64(0xFFFFFFFF)
		label := "NONE"
		switch {
		case score >= 0.85:
			label = "STRONG"
		case score >= 0.65:
			label = "MODERATE"
		case score >= 0.4:
			label = "WEAK"
		}
		return map[string]any{"match": label, "score": pyFloat(engine.PyRound(score, 4))}
	}
	list := func(k string) []any {
		arr, _ := plan[k].([]any)
		out := []any{}
		for _, e := range arr {
			out = append(out, entry(e))
		}
		return out
	}
	return map[string]any{"primary": entry(plan["primary"]), "constraints": list("constraints"),
		"extensions": list("extensions"), "exclusions": list("exclusions")}
}

// handleGetDeal is GET /api/v1/deals/{id} (lazy expiry of proposed deals).
func (s *Seller) handleGetDeal(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.deals[id]
	if d == nil {
		writeDetail(w, http.StatusNotFound, errorObj("deal_not_found", "Deal '"+id+"' not found."))
		return
	}
	if d.status == "proposed" && s.now().After(d.expiresAt) {
		d.status = "expired"
	}
	writeJSON(w, http.StatusOK, d.envelope())
}

func mustJSON(v any) []byte {
	var sb strings.Builder
	enc := json.NewEncoder(&sb)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return []byte(`{"detail":"encoding error"}`)
	}
	return []byte(strings.TrimRight(sb.String(), "\n"))
}

func writeRaw(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func itoa(n int) string { return strconv.Itoa(n) }

package sandbox

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dealflow/dealflow/internal/flight"
	"github.com/dealflow/dealflow/internal/sandbox/engine"
	"github.com/dealflow/dealflow/pkg/identity"
)

// Seller is one running sandbox seller speaking the seller-agent contract.
type Seller struct {
	// Name is the configured seller name.
	Name string
	// URL is the seller's base URL (no trailing slash).
	URL string
	// Trust is the registry trust in the seller vocabulary
	// (preferred|approved|registered|unknown|blocked).
	Trust string
	// Capabilities are the registry capabilities.
	Capabilities []string
	// InRegistry reports whether the registry lists the seller.
	InRegistry bool
	// Keys maps tier (seat|agency|advertiser) to the buyer API key for it.
	Keys map[string]string
	// OperatorKey is an operator credential (POST /packages).
	OperatorKey string

	slug  string
	cfg   SellerConfig
	now   func() time.Time
	orgID string
	// clock is the flight clock its deals deliver on (WithTimeScale).
	clock flight.Clock

	rec    recorder
	faults *faulter
	// changed is closed (and replaced) whenever the faults change: a
	// booking held by a booking fault waits on it.
	changedMu sync.Mutex
	changed   chan struct{}
	// stalled: a booking fault made the seller stop answering, until the
	// faults change.
	stalled atomic.Bool
	handler http.Handler // front handler (records, faults, routes)
	own     *listenerServer
	shared  bool // served on the market's shared listener

	keys map[string]*apiKey // immutable after construction

	mu           sync.Mutex
	products     []*product
	productByID  map[string]*product
	packages     []*pkgRecord
	quotes       map[string]*quoteRecord
	deals        map[string]*dealRecord
	dealOrder    []string
	negotiations map[string]*negRecord // keyed by subject (proposal/quote) id
	idem         map[string]idemEntry
	// productJSON is each product's JSON, rendered once: the catalog never
	// changes after construction, and rendering it per request made the
	// sandbox, not the buyer, the largest cost of a 1,000-seller benchmark
	// (a real seller's serving cost is not the buyer's).
	productJSON [][]byte
}

// Deal is a deal the seller booked, for tests and the demo to inspect.
type Deal struct {
	DealID        string
	QuoteID       string
	ProductID     string
	DealType      string
	BuyerTier     string
	Impressions   int64 // 0 when the quote had none
	FinalCPM      float64
	FinalMicros   int64
	Negotiated    bool
	NegotiationID string
	// Notes are the booking request's notes (dealflow names the campaign
	// there), so a test can tell whose deal it is from the seller's side.
	Notes     string
	CreatedAt time.Time
	// Status is the deal's status now (proposed; cancelled after a bulk
	// cancel).
	Status string
}

type idemEntry struct {
	hash    string
	quoteID string // quotes replay the current quote
	status  int
	body    []byte
}

// newSeller builds a seller's state from its config.
func newSeller(cfg SellerConfig, now func() time.Time) *Seller {
	trust, _ := sellerTrust(cfg.Trust)
	s := &Seller{
		Name: cfg.Name, Trust: trust, Capabilities: append([]string(nil), cfg.Capabilities...), InRegistry: cfg.InRegistry,
		slug: slugify(cfg.Name), cfg: cfg, now: now, orgID: cfg.OrganizationID,
		faults:       newFaulter(cfg.Name, cfg.Faults),
		Keys:         map[string]string{},
		keys:         map[string]*apiKey{},
		quotes:       map[string]*quoteRecord{},
		deals:        map[string]*dealRecord{},
		negotiations: map[string]*negRecord{},
		idem:         map[string]idemEntry{},
	}
	if s.orgID == "" {
		s.orgID = defaultOrganizationID
	}
	idents := cfg.Keys
	if idents == nil {
		idents = fixtureIdentities()
	}
	for tier, id := range idents {
		t, err := identity.ParseTier(tier)
		if err != nil || t == identity.TierPublic {
			continue
		}
		k := cfg.APIKeys[string(t)]
		if k == "" {
			k = mintKey(cfg.Name, string(t))
		}
		s.Keys[string(t)] = k
		s.keys[k] = &apiKey{id: keyID(k), role: "buyer", identity: id}
	}
	s.OperatorKey = mintKey(cfg.Name, "operator")
	s.keys[s.OperatorKey] = &apiKey{id: keyID(s.OperatorKey), role: "operator"}
	for _, k := range cfg.RevokedKeys {
		if rec, ok := s.keys[k]; ok {
			rec.revoked = true
		} else {
			s.keys[k] = &apiKey{id: keyID(k), role: "buyer", revoked: true}
		}
	}
	s.products = buildCatalog(cfg.Products)
	s.productByID = map[string]*product{}
	for _, p := range s.products {
		s.productByID[p.ID] = p
		b, _ := encodeJSON(s.productWire(p)) // nil (unencodable): GET /products answers 500
		s.productJSON = append(s.productJSON, b)
	}
	for _, pc := range cfg.Packages {
		s.packages = append(s.packages, s.packageFromConfig(pc))
	}
	return s
}

// routes registers the seller-agent surface.
func (s *Seller) routes() *router {
	rt := &router{}
	rt.handle(http.MethodGet, "/", s.handleRoot)
	rt.handle(http.MethodGet, "/health", s.handleHealth)
	rt.handle(http.MethodGet, "/.well-known/agent.json", s.handleAgentCard)
	rt.handle(http.MethodGet, "/.well-known/agent-card.json", s.handleAgentCard)
	rt.handle(http.MethodGet, "/products", s.handleProducts)
	rt.handle(http.MethodGet, "/products/{id}", s.handleProduct)
	rt.handle(http.MethodPost, "/pricing", s.handlePricing)
	rt.handle(http.MethodGet, "/media-kit", s.handleMediaKit)
	rt.handle(http.MethodGet, "/media-kit/packages", s.handleMediaKitPackages)
	rt.handle(http.MethodGet, "/media-kit/packages/{id}", s.handleMediaKitPackage)
	rt.handle(http.MethodPost, "/media-kit/search", s.handleMediaKitSearch)
	rt.handle(http.MethodGet, "/packages", s.handlePackages)
	rt.handle(http.MethodPost, "/packages", s.handleCreatePackage)
	rt.handle(http.MethodGet, "/packages/{id}", s.handlePackage)
	rt.handle(http.MethodPost, "/api/v1/quotes", s.handleCreateQuote)
	rt.handle(http.MethodGet, "/api/v1/quotes/{id}", s.handleGetQuote)
	rt.handle(http.MethodPost, "/api/v1/negotiations/messages", s.handleNegotiationMessage)
	rt.handle(http.MethodGet, "/proposals/{id}/negotiation", s.handleNegotiationHistory)
	rt.handle(http.MethodPost, "/api/v1/deals", s.bookingFaults(s.handleBookDeal))
	rt.handle(http.MethodPost, "/api/v1/deals/push", s.handlePushDeal)
	rt.handle(http.MethodPost, "/api/v1/deals/bulk", s.handleBulkDeals)
	rt.handle(http.MethodGet, "/api/v1/deals/{id}", s.handleGetDeal)
	rt.handle(http.MethodGet, "/api/v1/deals/{id}/buyer-status", s.handleBuyerStatus)
	rt.handle(http.MethodGet, "/api/v1/deals/{id}/performance", s.handleDealPerformance)
	return rt
}

// Requests returns every request the seller received, in order.
func (s *Seller) Requests() []Request { return s.rec.list() }

// NegotiationPosts is the number of negotiation messages the seller
// received (POST …/api/v1/negotiations/messages), for tests that wait for a
// negotiation to be under way.
func (s *Seller) NegotiationPosts() int {
	n := 0
	for _, r := range s.Requests() {
		if strings.HasSuffix(r.Path, "/api/v1/negotiations/messages") {
			n++
		}
	}
	return n
}

// ResetRequests forgets the recorded requests and zeroes RequestCount.
func (s *Seller) ResetRequests() { s.rec.reset() }

// RequestCount is the number of requests the seller received (every path,
// faulted or not), counted even WithoutRequestLog: a test can assert that a
// buyer never contacted a seller at all.
func (s *Seller) RequestCount() int64 { return s.rec.n.Load() }

// Faults returns the seller's current fault knobs.
func (s *Seller) Faults() Faults { return s.faults.get() }

// SetFaults changes the fault knobs at runtime. Turning Down on closes the
// seller's own listener (connections refused); turning it off listens again
// on the same port. A seller on the shared listener instead closes each
// connection while down. The error reports a port lost while down.
func (s *Seller) SetFaults(f Faults) error {
	if err := f.validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	s.faults.set(f)
	s.stalled.Store(false)
	s.changedMu.Lock()
	if s.changed != nil {
		close(s.changed)
	}
	s.changed = make(chan struct{})
	s.changedMu.Unlock()
	if s.own == nil {
		return nil
	}
	if f.Down {
		s.own.down()
		return nil
	}
	if err := s.own.up(); err != nil {
		return fmt.Errorf("sandbox: seller %q back up: %w", s.Name, err)
	}
	return nil
}

// faultsChanged is closed the next time the faults change.
func (s *Seller) faultsChanged() <-chan struct{} {
	s.changedMu.Lock()
	defer s.changedMu.Unlock()
	if s.changed == nil {
		s.changed = make(chan struct{})
	}
	return s.changed
}

// bookingFaults applies Faults.Booking to deal bookings.
func (s *Seller) bookingFaults(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		fz := s.faults
		fz.mu.Lock()
		f := fz.f
		hit := f.Booking != BookingOK && (f.BookingRate == 0 || fz.rng.Float64() < f.BookingRate)
		fz.mu.Unlock()
		if !hit {
			next(w, r)
			return
		}
		switch f.Booking {
		case BookingUnavailable:
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("Service Unavailable"))
		case BookingHang:
			s.stalled.Store(true)
			if s.hold(r) {
				next(w, r) // released while the client still waits: book now
			}
		case BookingThenHang:
			cw := &captureWriter{header: http.Header{}, status: http.StatusOK}
			next(cw, r) // booked: the answer is what gets lost
			s.stalled.Store(true)
			if s.hold(r) {
				for k, v := range cw.header {
					w.Header()[k] = v
				}
				w.WriteHeader(cw.status)
				_, _ = w.Write(cw.buf.Bytes())
			}
		}
	}
}

// hold waits until the faults change or the client is gone; it reports
// whether the client is still there.
func (s *Seller) hold(r *http.Request) bool {
	select {
	case <-s.faultsChanged():
		return r.Context().Err() == nil
	case <-r.Context().Done():
		return false
	}
}

// stallGate holds every request while a booking fault has stalled the
// seller. A request whose client left meanwhile is dropped, never served
// late: the body is read first, since the server notices a client that
// hangs up only once the body is consumed.
func (s *Seller) stallGate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.stalled.Load() {
			body, _ := io.ReadAll(io.LimitReader(r.Body, maxRecordedBody))
			_ = r.Body.Close()
			r.Body = io.NopCloser(bytes.NewReader(body))
			if !s.hold(r) || r.Context().Err() != nil {
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// Deals returns the deals booked so far, in booking order.
func (s *Seller) Deals() []Deal {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Deal, 0, len(s.dealOrder))
	for _, id := range s.dealOrder {
		d := s.deals[id].summary
		d.Status = s.deals[id].status
		out = append(out, d)
	}
	return out
}

// Products returns the seller's catalog product ids in catalog order.
func (s *Seller) Products() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, len(s.products))
	for i, p := range s.products {
		ids[i] = p.ID
	}
	return ids
}

// Packages returns the seller's package ids in media-kit order.
func (s *Seller) Packages() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, len(s.packages))
	for i, p := range s.packages {
		ids[i] = p.ID
	}
	return ids
}

// handleRoot answers GET / like the seller.
func (s *Seller) handleRoot(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"name": "Ad Seller System API", "version": "2.4.2", "docs": "/docs"})
}

func (s *Seller) handleHealth(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"status": "healthy"})
}

// inventoryTypes is the sorted set of catalog inventory types.
func (s *Seller) inventoryTypes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := map[string]bool{}
	for _, p := range s.products {
		set[p.InventoryType] = true
	}
	out := make([]string, 0, len(set))
	for t := range set {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// handleAgentCard serves the A2A card (§2.1), named and located per seller.
func (s *Seller) handleAgentCard(w http.ResponseWriter, _ *http.Request) {
	skill := func(id, name, desc string, tags ...string) map[string]any {
		return map[string]any{"id": id, "name": name, "description": desc, "tags": tags}
	}
	card := map[string]any{
		"name":        s.Name,
		"description": "IAB OpenDirect 2.1 compliant seller agent for programmatic advertising. Supports product discovery, tiered pricing, proposal evaluation, multi-round negotiation, and deal execution.",
		"url":         s.URL,
		"version":     "2.4.2",
		"provider":    map[string]any{"name": s.Name, "url": s.URL, "description": nil},
		"capabilities": map[string]any{
			"protocols": []string{"opendirect21"}, "streaming": false, "push_notifications": false,
		},
		"skills": []any{
			skill("discovery", "Inventory Discovery", "Search and browse available inventory, media kits, and packages", "inventory", "search", "media-kit"),
			skill("pricing", "Tiered Pricing", "Get pricing based on buyer identity with volume discounts", "pricing", "cpm", "negotiation"),
			skill("proposals", "Proposal Evaluation", "Submit and evaluate advertising proposals", "proposals", "evaluation", "counter-offers"),
			skill("negotiation", "Multi-Round Negotiation", "Engage in automated price negotiation with strategy-based responses", "negotiation", "deals"),
			skill("deals", "Deal Execution", "Generate OpenRTB-compatible deal IDs for DSP activation", "deals", "openrtb", "execution"),
		},
		"authentication":       map[string]any{"schemes": []string{"api_key", "bearer"}, "credentials_url": nil},
		"inventory_types":      s.inventoryTypes(),
		"supported_deal_types": []string{"pg", "pmp", "preferred_deal", "private_auction"},
		"contact":              nil,
		"tos_url":              nil,
		"audience_capabilities": map[string]any{
			"schema_version":               "1",
			"standard_taxonomy_versions":   []string{"1.1"},
			"contextual_taxonomy_versions": []string{"3.1"},
			"agentic":                      map[string]any{"supported": false},
			"supports_constraints":         true,
			"supports_extensions":          false,
			"supports_exclusions":          false,
			"max_refs_per_role":            map[string]any{"primary": 1, "constraints": 3, "extensions": 0, "exclusions": 0},
			"taxonomy_lock_hashes": map[string]any{
				"audience": "sha256:" + shortHash("iab-audience-taxonomy-1.1", 64),
				"content":  "sha256:" + shortHash("iab-content-taxonomy-3.1", 64),
			},
		},
	}
	writeJSON(w, http.StatusOK, card)
}

// productWire renders a Product (§2.2).
func (s *Seller) productWire(p *product) map[string]any {
	var base *money
	if p.BaseCPM != nil {
		base = usd(*p.BaseCPM)
	}
	var floor any
	if p.FloorCPM != nil {
		floor = pyFloat(*p.FloorCPM)
	}
	var avail any
	if p.MaxImpressions != nil {
		avail = *p.MaxImpressions
	}
	var aud, content any
	if p.AudienceTargeting != nil {
		aud = p.AudienceTargeting
	}
	if p.ContentTargeting != nil {
		content = p.ContentTargeting
	}
	return map[string]any{
		"product_id": p.ID, "seller_organization_id": s.orgID, "name": p.Name, "description": strPtrOrNil(p.Description),
		"base_price": base, "pricing_type": "fixed", "pricing_model": "cpm", "delivery_type": "Guaranteed", "domain": nil,
		"ad_formats": []string{p.InventoryType}, "audience_targeting": aud, "ad_product_targeting": nil,
		"content_targeting": content, "available_impressions": avail, "commercial_terms": nil,
		"ext": map[string]any{"inventory_type": p.InventoryType, "floor_cpm": floor, "minimum_impressions": p.MinimumImpressions,
			"deal_types": nonNil(p.DealTypes), "audience_capabilities": []string{}},
	}
}

// handleProducts is GET /products?limit=1..500&offset>=0.
func (s *Seller) handleProducts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var v validator
	limit := queryInt(&v, q.Get("limit"), q.Has("limit"), "limit", 50, 1, 500)
	offset := queryInt(&v, q.Get("offset"), q.Has("offset"), "offset", 0, 0, -1)
	if !v.ok() {
		writeValidation(w, v.errs)
		return
	}
	// The page as the seller renders it (keys in order, no HTML escaping),
	// assembled from the products' JSON.
	total := len(s.productJSON)
	start := min(int(offset), total)
	end := min(start+int(limit), total)
	n := 64
	for _, p := range s.productJSON[start:end] {
		n += len(p) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, `{"limit":`...)
	b = strconv.AppendInt(b, limit, 10)
	b = append(b, `,"offset":`...)
	b = strconv.AppendInt(b, offset, 10)
	b = append(b, `,"products":[`...)
	for i, p := range s.productJSON[start:end] {
		if p == nil {
			writeBody(w, http.StatusInternalServerError, nil)
			return
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, p...)
	}
	b = append(b, `],"total_count":`...)
	b = strconv.AppendInt(b, int64(total), 10)
	b = append(b, '}')
	writeBody(w, http.StatusOK, b)
}

// queryInt validates an integer query parameter with bounds (le < 0: none).
func queryInt(v *validator, raw string, present bool, name string, def, ge, le int64) int64 {
	if !present {
		return def
	}
	l := []any{"query", name}
	n, err := parseQueryInt(raw)
	if err != nil {
		v.add("int_parsing", l, "Input should be a valid integer, unable to parse string as an integer", raw, nil)
		return def
	}
	if n < ge {
		v.add("greater_than_equal", l, fmt.Sprintf("Input should be greater than or equal to %d", ge), raw, map[string]any{"ge": ge})
		return def
	}
	if le >= 0 && n > le {
		v.add("less_than_equal", l, fmt.Sprintf("Input should be less than or equal to %d", le), raw, map[string]any{"le": le})
		return def
	}
	return n
}

func parseQueryInt(raw string) (int64, error) {
	var n int64
	_, err := fmt.Sscanf(strings.TrimSpace(raw), "%d", &n)
	if err != nil || fmt.Sprint(n) != strings.TrimLeft(strings.TrimSpace(raw), "+") {
		return 0, fmt.Errorf("not an integer: %q", raw)
	}
	return n, nil
}

// handleProduct is GET /products/{id}.
func (s *Seller) handleProduct(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	p := s.productByID[r.PathValue("id")]
	var out map[string]any
	if p != nil {
		out = s.productWire(p)
	}
	s.mu.Unlock()
	if out == nil {
		writeDetail(w, http.StatusNotFound, "Product not found")
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// handlePricing is the legacy POST /pricing (float dollars, fractions).
func (s *Seller) handlePricing(w http.ResponseWriter, r *http.Request) {
	var v validator
	obj, key, ok := s.keyedPost(w, r, &v)
	if !ok {
		return
	}
	var productID, tier, agencyID, advertiserID, agentURL *string
	var volume *int64
	if obj != nil {
		productID = v.str(obj, []any{"body"}, "product_id", true, 0)
		tier = v.str(obj, []any{"body"}, "buyer_tier", false, 0)
		agencyID = v.str(obj, []any{"body"}, "agency_id", false, 0)
		advertiserID = v.str(obj, []any{"body"}, "advertiser_id", false, 0)
		volume = v.laxInt(obj, []any{"body"}, "volume", nil)
		agentURL = v.str(obj, []any{"body"}, "agent_url", false, 0)
	}
	if !v.ok() {
		writeValidation(w, v.errs)
		return
	}
	claimed := identity.BuyerIdentity{AgencyID: deref(agencyID), AdvertiserID: deref(advertiserID)}
	ctx, ok := s.verifiedCtxWithClaim(w, key, claimed, deref(tier), deref(agentURL))
	if !ok {
		return
	}
	s.mu.Lock()
	p := s.productByID[*productID]
	s.mu.Unlock()
	if p == nil {
		writeDetail(w, http.StatusNotFound, "Product not found")
		return
	}
	vol := int64(0)
	if volume != nil {
		vol = *volume
	}
	res := engine.Price(p.base(), ctx.tier(), vol)
	writeJSON(w, http.StatusOK, map[string]any{
		"product_id": p.ID, "base_price": pyFloat(res.BasePrice), "final_price": pyFloat(res.FinalPrice), "currency": "USD",
		"tier_discount": pyFloat(res.TierDiscount), "volume_discount": pyFloat(res.VolumeDiscount), "rationale": res.Rationale,
	})
}

// verifiedCtxWithClaim is verifiedCtx for endpoints that carry an explicit
// buyer_tier claim rather than a BuyerIdentity object.
func (s *Seller) verifiedCtxWithClaim(w http.ResponseWriter, key *apiKey, claimed identity.BuyerIdentity, tier, agentURL string) (buyerCtx, bool) {
	ctx, ok := s.verifiedCtx(w, key, claimed, agentURL)
	if !ok {
		return ctx, false
	}
	if key == nil {
		t, err := identity.ParseTier(tier)
		ctx.authenticated = err == nil && t != identity.TierPublic
	}
	return ctx, true
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// readBody returns the request body (already buffered by the front handler).
// keyedPost reads a JSON POST body and the optional API key as the seller's
// routes do: a body problem is a 422 before any key check, a bad key a 401.
// ok is false when the response has already been written.
func (s *Seller) keyedPost(w http.ResponseWriter, r *http.Request, v *validator) (obj map[string]any, key *apiKey, ok bool) {
	b, jerr := parseBody(r, readBody(r))
	if jerr != nil {
		writeValidation(w, jerr)
		return nil, nil, false
	}
	if key, ok = s.authOptional(w, r); !ok {
		return nil, nil, false
	}
	obj, _ = b.object(v)
	return obj, key, true
}

func readBody(r *http.Request) []byte {
	if r.Body == nil {
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(r.Body, maxRecordedBody))
	return b
}

package sandbox

import (
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dealflow/dealflow/internal/sandbox/engine"
	"github.com/dealflow/dealflow/pkg/identity"
)

// pkgRecord is a media-kit package (§2.3).
type pkgRecord struct {
	ID          string
	Name        string
	Description *string
	Layer       string
	Status      string
	Placements  []placement
	Cat         []string
	Cattax      int
	Standard    []string
	Contextual  []string
	DeviceTypes []int
	AdFormats   []string
	GeoTargets  []string
	Base, Floor float64
	Tags        []string
	Featured    bool
	Seasonal    *string
	CreatedAt   time.Time

	// rendered holds the encoded views by tier ("" for the public view). A
	// record never changes once it is listed and its views depend only on
	// the tier, so each is encoded once: the sandbox answers a wide fetch
	// (a benchmark's 1,000 sellers) without re-encoding maps per request.
	renderMu sync.Mutex
	rendered map[identity.Tier][]byte
}

// viewJSON is the encoded public view (auth false) or authenticated view for
// ctx's tier.
func (p *pkgRecord) viewJSON(auth bool, ctx buyerCtx) []byte {
	var tier identity.Tier
	if auth {
		tier = ctx.tier()
	}
	p.renderMu.Lock()
	defer p.renderMu.Unlock()
	if b, ok := p.rendered[tier]; ok {
		return b
	}
	var v map[string]any
	if auth {
		v = p.authView(ctx)
	} else {
		v = p.publicView()
	}
	b, err := encodeJSON(v)
	if err != nil {
		return nil
	}
	if p.rendered == nil {
		p.rendered = map[identity.Tier][]byte{}
	}
	p.rendered[tier] = b
	return b
}

// writePackageList writes {"packages":[...]} from encoded views, as
// encodeJSON would render the same list of maps.
func writePackageList(w http.ResponseWriter, views [][]byte) {
	n := len(`{"packages":[]}`) + len(views)
	for _, v := range views {
		if v == nil {
			writeBody(w, http.StatusOK, nil)
			return
		}
		n += len(v)
	}
	b := make([]byte, 0, n)
	b = append(b, `{"packages":[`...)
	for i, v := range views {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, v...)
	}
	b = append(b, "]}"...)
	writeBody(w, http.StatusOK, b)
}

type placement struct {
	ProductID   string   `json:"product_id"`
	ProductName string   `json:"product_name"`
	AdFormats   []string `json:"ad_formats"`
	DeviceTypes []int    `json:"device_types"`
	Weight      pyFloat  `json:"weight"`
}

// defaultAdFormats / defaultDeviceTypes are the seller's inventory-type
// classifications used when a package declares none.
func defaultAdFormats(inv string) []string {
	switch inv {
	case "video", "ctv":
		return []string{"video"}
	case "mobile_app":
		return []string{"banner", "video"}
	case "native":
		return []string{"native"}
	case "audio":
		return []string{"audio"}
	}
	return []string{"banner"}
}

func defaultDeviceTypes(inv string) []int {
	switch inv {
	case "ctv":
		return []int{3, 7}
	case "mobile_app":
		return []int{4, 5}
	case "audio":
		return []int{2, 4, 5, 6}
	}
	return []int{2, 4, 5}
}

// packageFromConfig resolves a PackageConfig against the seller's catalog.
func (s *Seller) packageFromConfig(pc PackageConfig) *pkgRecord {
	id := pc.ID
	if id == "" {
		id = "pkg-" + shortHash(s.Name+"/"+pc.Name, 8)
	}
	layer := pc.Layer
	if layer == "" {
		layer = "curated"
	}
	cattax := pc.Cattax
	if cattax == 0 {
		cattax = 2
	}
	p := &pkgRecord{ID: id, Name: pc.Name, Description: strPtrOrNil(pc.Description), Layer: layer, Status: "active",
		Cat: nonNil(pc.Cat), Cattax: cattax, Standard: nonNil(pc.StandardSegments), Contextual: nonNil(pc.ContextualSegments),
		DeviceTypes: nonNil(pc.DeviceTypes), AdFormats: nonNil(pc.AdFormats), GeoTargets: nonNil(pc.GeoTargets),
		Base: pc.BasePrice, Floor: pc.FloorPrice, Tags: nonNil(pc.Tags), Featured: pc.Featured, CreatedAt: s.now()}
	var main *product
	for _, pid := range pc.ProductIDs {
		prod := s.productByID[pid]
		if prod == nil {
			continue
		}
		if main == nil {
			main = prod
		}
		p.Placements = append(p.Placements, s.placementFor(prod, pc.AdFormats, pc.DeviceTypes))
	}
	p.Placements = nonNil(p.Placements)
	if main != nil {
		if p.Base == 0 {
			p.Base = main.base()
		}
		if p.Floor == 0 {
			p.Floor = main.floor()
		}
	}
	return p
}

func (s *Seller) placementFor(prod *product, formats []string, devices []int) placement {
	if len(formats) == 0 {
		formats = defaultAdFormats(prod.InventoryType)
	}
	if len(devices) == 0 {
		devices = defaultDeviceTypes(prod.InventoryType)
	}
	return placement{ProductID: prod.ID, ProductName: prod.Name, AdFormats: formats, DeviceTypes: devices, Weight: 1}
}

// publicView is PublicPackageView.
func (p *pkgRecord) publicView() map[string]any {
	return map[string]any{
		"package_id": p.ID, "name": p.Name, "description": p.Description, "ad_formats": p.AdFormats,
		"device_types": p.DeviceTypes, "cat": p.Cat, "cattax": p.Cattax,
		"audience_capabilities": map[string]any{
			"standard_taxonomy_version": "1.1", "contextual_taxonomy_version": "3.1",
			"supports_standard": len(p.Standard) > 0, "supports_contextual": len(p.Contextual) > 0,
			"supports_agentic": false, "agentic_spec_version": nil,
		},
		"geo_targets": p.GeoTargets, "tags": p.Tags, "price_range": engine.PriceRange(p.Base),
		"rate_type": "cpm", "is_featured": p.Featured,
	}
}

// authView is AuthenticatedPackageView for a buyer context.
func (p *pkgRecord) authView(ctx buyerCtx) map[string]any {
	tier := ctx.tier()
	tc := engine.TierConfigFor(tier)
	d := engine.DisplayFor(p.Base, tier)
	exact := d.Price
	if !d.Exact {
		exact = engine.Round2(float64(p.Base * float64(1-tc.TierDiscount)))
	}
	v := p.publicView()
	v["audience_capabilities"] = map[string]any{
		"standard_segment_ids": p.Standard, "standard_taxonomy_version": "1.1",
		"contextual_segment_ids": p.Contextual, "contextual_taxonomy_version": "3.1",
		"agentic_capabilities": nil,
	}
	v["price_range"] = d.Display
	v["exact_price"] = pyFloat(exact)
	v["floor_price"] = pyFloat(p.Floor)
	v["currency"] = "USD"
	v["placements"] = p.Placements
	v["negotiation_enabled"] = tc.NegotiationEnabled
	v["volume_discounts_available"] = tc.VolumeDiscountsEnabled
	return v
}

// audienceFilter is the media kit's audience filter triple.
type audienceFilter struct {
	typ, id, version *string
}

func (f *audienceFilter) matches(p *pkgRecord) bool {
	if f == nil {
		return true
	}
	if f.typ == nil {
		return false
	}
	var segs []string
	var ver string
	switch *f.typ {
	case "standard":
		segs, ver = p.Standard, "1.1"
	case "contextual":
		segs, ver = p.Contextual, "3.1"
	default: // agentic: no sandbox package declares agentic capabilities
		return false
	}
	if f.version != nil && *f.version != ver {
		return false
	}
	if f.id == nil {
		return len(segs) > 0
	}
	for _, s := range segs {
		if s == *f.id {
			return true
		}
	}
	return false
}

// buildAudienceFilter validates the triple like the seller (400 string details).
func buildAudienceFilter(w http.ResponseWriter, typ, id, version *string) (*audienceFilter, bool) {
	if typ == nil && id == nil && version == nil {
		return nil, true
	}
	if typ != nil {
		switch *typ {
		case "standard", "contextual", "agentic":
		default:
			writeDetail(w, http.StatusBadRequest, "Invalid audience_type: "+pyRepr(*typ)+". Must be one of ['agentic', 'contextual', 'standard'].")
			return nil, false
		}
	}
	if id != nil && typ == nil {
		writeDetail(w, http.StatusBadRequest, "audience_id requires audience_type to disambiguate corpus.")
		return nil, false
	}
	return &audienceFilter{typ: typ, id: id, version: version}, true
}

// pyRepr quotes a string like Python's repr for simple strings.
func pyRepr(s string) string {
	if strings.Contains(s, "'") && !strings.Contains(s, `"`) {
		return `"` + s + `"`
	}
	return "'" + strings.ReplaceAll(s, "'", `\'`) + "'"
}

func queryPtr(r *http.Request, name string) *string {
	q := r.URL.Query()
	if !q.Has(name) {
		return nil
	}
	v := q.Get(name)
	return &v
}

// validLayer checks the layer query parameter (400 "Invalid layer: x").
func validLayer(w http.ResponseWriter, layer string) bool {
	switch layer {
	case "", "synced", "curated", "dynamic":
		return true
	}
	writeDetail(w, http.StatusBadRequest, "Invalid layer: "+layer)
	return false
}

// activePackages lists active packages filtered by layer and audience.
func (s *Seller) activePackages(layer string, f *audienceFilter) []*pkgRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*pkgRecord
	for _, p := range s.packages {
		if p.Status != "active" || (layer != "" && p.Layer != layer) || !f.matches(p) {
			continue
		}
		out = append(out, p)
	}
	return out
}

// handleMediaKit is GET /media-kit (no auth).
func (s *Seller) handleMediaKit(w http.ResponseWriter, _ *http.Request) {
	all := []map[string]any{}
	featured := []map[string]any{}
	for _, p := range s.activePackages("", nil) {
		v := p.publicView()
		all = append(all, v)
		if p.Featured {
			featured = append(featured, v)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"total_packages": len(all), "featured_count": len(featured),
		"featured": featured, "all_packages": all})
}

// handleMediaKitPackages is GET /media-kit/packages (no auth).
func (s *Seller) handleMediaKitPackages(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	featuredOnly := false
	if q.Has("featured_only") {
		b, ok := parseQueryBool(q.Get("featured_only"))
		if !ok {
			writeValidation(w, []verr{{Type: "bool_parsing", Loc: []any{"query", "featured_only"},
				Msg: "Input should be a valid boolean, unable to interpret input", Input: q.Get("featured_only")}})
			return
		}
		featuredOnly = b
	}
	layer := q.Get("layer")
	if !validLayer(w, layer) {
		return
	}
	f, ok := buildAudienceFilter(w, queryPtr(r, "audience_type"), queryPtr(r, "audience_id"), queryPtr(r, "audience_taxonomy_version"))
	if !ok {
		return
	}
	var out [][]byte
	for _, p := range s.activePackages(layer, f) {
		if featuredOnly && !p.Featured {
			continue
		}
		out = append(out, p.viewJSON(false, buyerCtx{}))
	}
	writePackageList(w, out)
}

// parseQueryBool accepts pydantic's boolean strings.
func parseQueryBool(s string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "true", "t", "yes", "y", "on":
		return true, true
	case "0", "false", "f", "no", "n", "off":
		return false, true
	}
	return false, false
}

// packageByID finds an active package.
func (s *Seller) packageByID(id string) *pkgRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.packages {
		if p.ID == id && p.Status == "active" {
			return p
		}
	}
	return nil
}

// handleMediaKitPackage is GET /media-kit/packages/{id} (public view, no auth).
func (s *Seller) handleMediaKitPackage(w http.ResponseWriter, r *http.Request) {
	p := s.packageByID(r.PathValue("id"))
	if p == nil {
		writeDetail(w, http.StatusNotFound, "Package not found")
		return
	}
	writeJSON(w, http.StatusOK, p.publicView())
}

// viewCtx decides the view for GET /packages*: public iff no key and
// buyer_tier == "public" exactly; else the unverified context.
func viewCtx(key *apiKey, r *http.Request) (buyerCtx, bool) {
	q := r.URL.Query()
	tier := "public"
	if q.Has("buyer_tier") {
		tier = q.Get("buyer_tier")
	}
	if key == nil && tier == "public" {
		return buyerCtx{}, false
	}
	claimed := identity.BuyerIdentity{AgencyID: q.Get("agency_id"), AdvertiserID: q.Get("advertiser_id")}
	return unverifiedCtx(key, tier, claimed), true
}

// handlePackages is GET /packages (optional key; query claims trusted).
func (s *Seller) handlePackages(w http.ResponseWriter, r *http.Request) {
	key, ok := s.authOptional(w, r)
	if !ok {
		return
	}
	layer := r.URL.Query().Get("layer")
	if !validLayer(w, layer) {
		return
	}
	f, ok := buildAudienceFilter(w, queryPtr(r, "audience_type"), queryPtr(r, "audience_id"), queryPtr(r, "audience_taxonomy_version"))
	if !ok {
		return
	}
	ctx, auth := viewCtx(key, r)
	var out [][]byte
	for _, p := range s.activePackages(layer, f) {
		out = append(out, p.viewJSON(auth, ctx))
	}
	writePackageList(w, out)
}

// handlePackage is GET /packages/{id}.
func (s *Seller) handlePackage(w http.ResponseWriter, r *http.Request) {
	key, ok := s.authOptional(w, r)
	if !ok {
		return
	}
	p := s.packageByID(r.PathValue("id"))
	if p == nil {
		writeDetail(w, http.StatusNotFound, "Package not found")
		return
	}
	ctx, auth := viewCtx(key, r)
	writeBody(w, http.StatusOK, p.viewJSON(auth, ctx))
}

// handleMediaKitSearch is POST /media-kit/search (§2.3 scoring).
func (s *Seller) handleMediaKitSearch(w http.ResponseWriter, r *http.Request) {
	var v validator
	obj, key, ok := s.keyedPost(w, r, &v)
	if !ok {
		return
	}
	var query, tier, agencyID, advertiserID *string
	var af map[string]any
	var afLoc []any
	var afType, afID, afVer *string
	if obj != nil {
		body := []any{"body"}
		query = v.str(obj, body, "query", true, 0)
		tier = v.str(obj, body, "buyer_tier", false, 0)
		agencyID = v.str(obj, body, "agency_id", false, 0)
		advertiserID = v.str(obj, body, "advertiser_id", false, 0)
		af, afLoc = v.model(obj, body, "audience_filter")
		if af != nil {
			afType = v.str(af, afLoc, "audience_type", false, 0)
			afID = v.str(af, afLoc, "audience_id", false, 0)
			afVer = v.str(af, afLoc, "taxonomy_version", false, 0)
		}
	}
	if !v.ok() {
		writeValidation(w, v.errs)
		return
	}
	claimedTier := "public"
	if tier != nil {
		claimedTier = *tier
	}
	var ctx *buyerCtx
	if key != nil || claimedTier != "public" {
		c := unverifiedCtx(key, claimedTier, identity.BuyerIdentity{AgencyID: deref(agencyID), AdvertiserID: deref(advertiserID)})
		ctx = &c
	}
	var f *audienceFilter
	if af != nil {
		if f, ok = buildAudienceFilter(w, afType, afID, afVer); !ok {
			return
		}
	}
	tokens := map[string]bool{}
	for _, t := range strings.Fields(strings.ToLower(*query)) {
		tokens[t] = true
	}
	type scored struct {
		score float64
		p     *pkgRecord
	}
	var hits []scored
	for _, p := range s.activePackages("", f) {
		corpus := strings.Join([]string{
			strings.ToLower(p.Name), strings.ToLower(deref(p.Description)),
			strings.Join(lowerAll(p.Tags), " "), strings.Join(lowerAll(p.Cat), " "),
			strings.Join(p.AdFormats, " "),
			strings.Join(lowerAll(p.Standard), " "), strings.Join(lowerAll(p.Contextual), " "),
		}, " ")
		score := 0.0
		for t := range tokens {
			if strings.Contains(corpus, t) {
				score++
			}
		}
		if p.Featured && score > 0 {
			score *= 1.5
		}
		if score > 0 {
			hits = append(hits, scored{score, p})
		}
	}
	sort.SliceStable(hits, func(i, j int) bool { return hits[i].score > hits[j].score })
	authenticated := ctx != nil && ctx.tier() != identity.TierPublic
	out := []map[string]any{}
	for _, h := range hits {
		if authenticated {
			out = append(out, h.p.authView(*ctx))
		} else {
			out = append(out, h.p.publicView())
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": out})
}

// handleCreatePackage is the operator-only POST /packages (curated layer).
func (s *Seller) handleCreatePackage(w http.ResponseWriter, r *http.Request) {
	b, jerr := parseBody(r, readBody(r))
	if jerr != nil {
		writeValidation(w, jerr)
		return
	}
	if !s.authOperator(w, r) {
		return
	}
	var v validator
	obj, _ := b.object(&v)
	var pc PackageConfig
	if obj != nil {
		body := []any{"body"}
		pc.Name = deref(v.str(obj, body, "name", true, 0))
		pc.Description = deref(v.str(obj, body, "description", false, 0))
		pc.ProductIDs = v.stringList(obj, body, "product_ids")
		pc.Cat = v.stringList(obj, body, "cat")
		if c := v.laxInt(obj, body, "cattax", nil); c != nil {
			pc.Cattax = int(*c)
		}
		if caps := v.object(obj, body, "audience_capabilities"); caps != nil {
			pc.StandardSegments = stringsOf(caps["standard_segment_ids"])
			pc.ContextualSegments = stringsOf(caps["contextual_segment_ids"])
		} else {
			pc.StandardSegments = v.stringList(obj, body, "audience_segment_ids")
		}
		pc.DeviceTypes = v.intList(obj, body, "device_types")
		pc.AdFormats = v.stringList(obj, body, "ad_formats")
		pc.GeoTargets = v.stringList(obj, body, "geo_targets")
		if f := v.number(obj, body, "base_price", true); f != nil {
			pc.BasePrice = *f
		}
		if f := v.number(obj, body, "floor_price", true); f != nil {
			pc.FloorPrice = *f
		}
		pc.Tags = v.stringList(obj, body, "tags")
		if f := v.boolean(obj, body, "is_featured"); f != nil {
			pc.Featured = *f
		}
	}
	if !v.ok() {
		writeValidation(w, v.errs)
		return
	}
	s.mu.Lock()
	var unresolved []string
	for _, id := range pc.ProductIDs {
		if s.productByID[id] == nil {
			unresolved = append(unresolved, id)
		}
	}
	if len(pc.ProductIDs) > 0 && len(unresolved) == len(pc.ProductIDs) {
		s.mu.Unlock()
		writeDetail(w, http.StatusUnprocessableEntity, map[string]any{"error": "unresolvable_product_ids",
			"message": "None of the supplied product_ids could be resolved to known products: " + strings.Join(unresolved, ", ") +
				". Use ids from GET /products or products persisted via negotiation.", "unresolved_ids": unresolved})
		return
	}
	pc.ID = "pkg-" + randHex(8)
	base, floor := pc.BasePrice, pc.FloorPrice
	p := s.packageFromConfig(pc)
	p.Base, p.Floor = base, floor
	s.packages = append(s.packages, p)
	s.mu.Unlock()
	out := map[string]any{
		"package_id": p.ID, "name": p.Name, "description": p.Description, "layer": p.Layer, "status": p.Status,
		"placements": p.Placements, "cat": p.Cat, "cattax": p.Cattax,
		"audience_capabilities": map[string]any{"standard_segment_ids": p.Standard, "standard_taxonomy_version": "1.1",
			"contextual_segment_ids": p.Contextual, "contextual_taxonomy_version": "3.1", "agentic_capabilities": nil},
		"device_types": p.DeviceTypes, "ad_formats": p.AdFormats, "geo_targets": p.GeoTargets,
		"base_price": pyFloat(p.Base), "floor_price": pyFloat(p.Floor), "rate_type": "cpm", "currency": "USD",
		"tags": p.Tags, "is_featured": p.Featured, "seasonal_label": nil, "ad_server_source": nil,
		"created_at": isoNaive(p.CreatedAt), "updated_at": nil,
	}
	if len(unresolved) > 0 {
		out["unresolved_ids"] = unresolved
		out["warnings"] = []string{"Skipped " + itoa(len(unresolved)) + " unresolved product_id(s): " + strings.Join(unresolved, ", ") + "."}
	}
	writeJSON(w, http.StatusOK, out)
}

func stringsOf(x any) []string {
	arr, _ := x.([]any)
	out := []string{}
	for _, e := range arr {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

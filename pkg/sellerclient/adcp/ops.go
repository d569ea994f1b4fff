package adcp

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/sellerclient"
)

// GetCapabilities calls get_adcp_capabilities, cached per seller and token
// for Config.CapabilitiesTTL. Call it first on every seller, then check
// SkipReason.
func (c *Client) GetCapabilities(ctx context.Context, s Seller) (*Capabilities, error) {
	u, _ := sellerclient.CanonicalURL(s.URL)
	key := sellerKey(u, s.Token)
	now := c.cfg.Now()
	c.mu.Lock()
	if e, ok := c.caps[key]; ok && now.Sub(e.at) < c.cfg.CapabilitiesTTL {
		c.mu.Unlock()
		return e.caps, nil
	}
	c.mu.Unlock()
	var caps Capabilities
	err := c.run(ctx, "get_adcp_capabilities", s, func(ctx context.Context, sess *mcp.ClientSession, tr *tracker) error {
		raw, err := callTool(ctx, sess, tr, "get_adcp_capabilities", json.RawMessage(`{"protocols":["media_buy"]}`))
		if err != nil {
			return err
		}
		if err := json.Unmarshal(raw, &caps); err != nil {
			return badResponse("capabilities: "+err.Error(), err)
		}
		if len(caps.ADCP.MajorVersions) == 0 && len(caps.ADCP.SupportedVersions) == 0 {
			return badResponse("capabilities: adcp.major_versions missing", nil)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	caps.FetchedAt = now
	c.mu.Lock()
	c.caps[key] = capsEntry{caps: &caps, at: now}
	c.mu.Unlock()
	return &caps, nil
}

// ProductsQuery is a brief-mode get_products. Amounts are micros of Currency
// (default USD).
type ProductsQuery struct {
	Brief        string
	Channels     []string // AdCP channels: ctv, olv, display, ...
	FormatIDs    []FormatID
	DeliveryType string
	FixedPrice   *bool
	// BudgetMinMicros / BudgetMaxMicros fill filters.budget_range (0 = unset).
	BudgetMinMicros events.Micros
	BudgetMaxMicros events.Micros
	Currency        string
	StartDate       string // YYYY-MM-DD
	EndDate         string
	Countries       []string // ISO 3166-1 alpha-2
	// PageSize is pagination.max_results (default 50, at most 100);
	// MaxPages bounds the pages followed (default 20).
	PageSize int
	MaxPages int
}

// ChannelsFromBrief maps dealflow channel/format words to AdCP channels
// (ctv→ctv, video/olv→olv, display/banner/native→display, audio→streaming_audio,
// dooh→dooh); unknown words are dropped.
func ChannelsFromBrief(words ...string) []string {
	m := map[string]string{"ctv": "ctv", "video": "olv", "olv": "olv", "display": "display", "banner": "display",
		"native": "display", "audio": "streaming_audio", "dooh": "dooh", "podcast": "podcast"}
	var out []string
	seen := map[string]bool{}
	for _, w := range words {
		if ch, ok := m[strings.ToLower(strings.TrimSpace(w))]; ok && !seen[ch] {
			seen[ch] = true
			out = append(out, ch)
		}
	}
	return out
}

var countryRE = regexp.MustCompile(`^[A-Z]{2}$`)

// QueryFromBrief builds a brief-mode query from a dealflow brief: its name,
// objectives and keywords as the natural-language brief; channels and ad
// formats as AdCP channels; the budget as budget_range.max; the flight dates;
// two-letter geo codes as countries.
func QueryFromBrief(b events.Brief) ProductsQuery {
	parts := []string{b.Name}
	parts = append(parts, b.Objectives...)
	if len(b.Keywords) > 0 {
		parts = append(parts, "keywords: "+strings.Join(b.Keywords, ", "))
	}
	q := ProductsQuery{
		Brief:           strings.Join(parts, "; "),
		Channels:        ChannelsFromBrief(append(append([]string(nil), b.Channels...), b.AdFormats...)...),
		BudgetMaxMicros: b.BudgetMicros,
		Currency:        b.Currency,
		StartDate:       b.StartDate,
		EndDate:         b.EndDate,
	}
	for _, g := range b.Geo {
		if countryRE.MatchString(g) {
			q.Countries = append(q.Countries, g)
		}
	}
	return q
}

// QueryFromShoppingBrief is QueryFromBrief for the part of the brief the
// fan-out events carry (events.ShoppingBrief): keywords and channels as the
// natural-language brief, the budget one seller can get (the per-seller cap
// when lower) as budget_range.max, the flight dates and two-letter geo codes.
func QueryFromShoppingBrief(b events.ShoppingBrief) ProductsQuery {
	budget := b.BudgetMicros
	if c := b.PerSellerCapMicros; c > 0 && c < budget {
		budget = c
	}
	q := QueryFromBrief(events.Brief{BudgetMicros: budget, Currency: b.Currency, StartDate: b.StartDate, EndDate: b.EndDate,
		Channels: b.Channels, AdFormats: b.AdFormats, Geo: b.Geo, Keywords: b.Keywords})
	var words []string
	words = append(words, b.Channels...)
	words = append(words, b.AdFormats...)
	words = append(words, b.Keywords...)
	q.Brief = "advertising campaign"
	if len(words) > 0 {
		q.Brief += ": " + strings.Join(words, ", ")
	}
	return q
}

type productsRequest struct {
	BuyingMode string          `json:"buying_mode"`
	Brief      string          `json:"brief,omitempty"`
	Brand      *BrandRef       `json:"brand,omitempty"`
	Account    *AccountRef     `json:"account,omitempty"`
	Filters    *productFilters `json:"filters,omitempty"`
	Refine     []Refinement    `json:"refine,omitempty"`
	Pagination *pagination     `json:"pagination,omitempty"`
}

type productFilters struct {
	DeliveryType string       `json:"delivery_type,omitempty"`
	IsFixedPrice *bool        `json:"is_fixed_price,omitempty"`
	FormatIDs    []FormatID   `json:"format_ids,omitempty"`
	StartDate    string       `json:"start_date,omitempty"`
	EndDate      string       `json:"end_date,omitempty"`
	BudgetRange  *budgetRange `json:"budget_range,omitempty"`
	Countries    []string     `json:"countries,omitempty"`
	Channels     []string     `json:"channels,omitempty"`
}

type budgetRange struct {
	Min      json.Number `json:"min,omitempty"`
	Max      json.Number `json:"max,omitempty"`
	Currency string      `json:"currency"`
}

type pagination struct {
	MaxResults int    `json:"max_results,omitempty"`
	Cursor     string `json:"cursor,omitempty"`
}

// GetProducts runs get_products in brief mode and follows pagination. With
// a token it sends the seller's Account and Brand (prices may be
// account-specific: CacheScope "account"); without one it sends neither and
// the seller may answer products without prices.
func (c *Client) GetProducts(ctx context.Context, s Seller, q ProductsQuery) (*Products, error) {
	req := productsRequest{BuyingMode: "brief", Brief: q.Brief}
	c.identity(s, &req)
	f := productFilters{DeliveryType: q.DeliveryType, IsFixedPrice: q.FixedPrice, FormatIDs: q.FormatIDs,
		StartDate: q.StartDate, EndDate: q.EndDate, Countries: q.Countries, Channels: q.Channels}
	if q.BudgetMinMicros < 0 || q.BudgetMaxMicros < 0 {
		return nil, validationError("budget must not be negative")
	}
	if q.BudgetMinMicros > 0 || q.BudgetMaxMicros > 0 {
		f.BudgetRange = &budgetRange{Currency: currencyOr(q.Currency)}
		if q.BudgetMinMicros > 0 {
			f.BudgetRange.Min = decimal(q.BudgetMinMicros)
		}
		if q.BudgetMaxMicros > 0 {
			f.BudgetRange.Max = decimal(q.BudgetMaxMicros)
		}
	}
	for _, d := range []string{q.StartDate, q.EndDate} {
		if d != "" {
			if _, err := time.Parse(events.DateLayout, d); err != nil {
				return nil, validationError("dates must be YYYY-MM-DD")
			}
		}
	}
	if f.DeliveryType != "" || f.IsFixedPrice != nil || len(f.FormatIDs) > 0 || f.StartDate != "" || f.EndDate != "" ||
		f.BudgetRange != nil || len(f.Countries) > 0 || len(f.Channels) > 0 {
		req.Filters = &f
	}
	return c.products(ctx, s, req, q.PageSize, q.MaxPages)
}

// GetProductsAnyPricing is GetProducts asking for fixed and auction
// pricing alike. filters.is_fixed_price makes a seller return only the
// options of the type asked for, and a seller may answer an unfiltered
// query with its fixed options only (as the AdCP SDK's non-guaranteed
// example does), so when the answer has non-guaranteed products, no
// auction option and no proposals, the query is repeated with
// is_fixed_price false and the auction options are merged into the
// products (Notes says so). A failure of that second query keeps the first
// answer, noted.
func (c *Client) GetProductsAnyPricing(ctx context.Context, s Seller, q ProductsQuery) (*Products, error) {
	res, err := c.GetProducts(ctx, s, q)
	if err != nil || q.FixedPrice != nil || len(res.Proposals) > 0 {
		return res, err
	}
	nonGuaranteed := false
	for _, p := range res.Products {
		for _, o := range p.PricingOptions {
			if o.IsAuction() && o.Priced {
				return res, nil
			}
		}
		nonGuaranteed = nonGuaranteed || p.DeliveryType == "non_guaranteed"
	}
	if !nonGuaranteed {
		return res, nil
	}
	auction := false
	q.FixedPrice = &auction
	more, err := c.GetProducts(ctx, s, q)
	if err != nil {
		res.Notes = append(res.Notes, "auction pricing not asked for: get_products with is_fixed_price false failed: "+err.Error())
		return res, nil
	}
	byID := map[string]int{}
	for i, p := range res.Products {
		byID[p.ProductID] = i
	}
	added := 0
	for _, p := range more.Products {
		i, ok := byID[p.ProductID]
		if !ok {
			byID[p.ProductID] = len(res.Products)
			res.Products = append(res.Products, p)
			added += len(p.PricingOptions)
			continue
		}
		have := map[string]bool{}
		for _, o := range res.Products[i].PricingOptions {
			have[o.PricingOptionID] = true
		}
		for _, o := range p.PricingOptions {
			if !have[o.PricingOptionID] {
				res.Products[i].PricingOptions = append(res.Products[i].PricingOptions, o)
				added++
			}
		}
		if res.Products[i].Forecast == nil {
			res.Products[i].Forecast = p.Forecast
		}
	}
	res.Pages += more.Pages
	res.Notes = append(res.Notes, fmt.Sprintf("asked again with is_fixed_price false (the answer had non-guaranteed products and no auction option): %d auction options added", added))
	return res, nil
}

// Refine runs get_products in refine mode (proposal include/omit/finalize,
// product include/omit, free-text asks; AdCP 3.1 has no numeric counter-offer).
func (c *Client) Refine(ctx context.Context, s Seller, refine []Refinement) (*Products, error) {
	if len(refine) == 0 {
		return nil, validationError("refine needs at least one entry")
	}
	req := productsRequest{BuyingMode: "refine"}
	for _, r := range refine {
		r.Status, r.Notes = "", ""
		req.Refine = append(req.Refine, r)
	}
	c.identity(s, &req)
	return c.products(ctx, s, req, 0, 1)
}

// FinalizeProposal commits a draft proposal (refine action finalize) and
// returns it with its hold expiry.
func (c *Client) FinalizeProposal(ctx context.Context, s Seller, proposalID string) (*Proposal, error) {
	pr, _, err := c.FinalizeProposalWithProducts(ctx, s, proposalID)
	return pr, err
}

// FinalizeProposalWithProducts is FinalizeProposal that also returns the
// products the answer carried (possibly none), to price the committed
// proposal with (Proposal.Price).
func (c *Client) FinalizeProposalWithProducts(ctx context.Context, s Seller, proposalID string) (*Proposal, []Product, error) {
	res, err := c.Refine(ctx, s, []Refinement{{Scope: "proposal", ProposalID: proposalID, Action: "finalize"}})
	if err != nil {
		return nil, nil, err
	}
	for i := range res.Proposals {
		if res.Proposals[i].ProposalID == proposalID {
			return &res.Proposals[i], res.Products, nil
		}
	}
	e := badResponse("finalize: the seller did not return proposal "+proposalID, nil)
	e.Op, e.Seller = "get_products", s.URL
	return nil, nil, e
}

func (c *Client) identity(s Seller, req *productsRequest) {
	if s.Token == "" {
		return
	}
	req.Account = s.Account
	req.Brand = s.Brand
}

func currencyOr(c string) string {
	if c == "" {
		return "USD"
	}
	return c
}

func (c *Client) products(ctx context.Context, s Seller, req productsRequest, pageSize, maxPages int) (*Products, error) {
	if pageSize <= 0 {
		pageSize = DefaultPageSize
	}
	pageSize = min(pageSize, 100)
	if maxPages <= 0 {
		maxPages = DefaultMaxPages
	}
	out := &Products{}
	err := c.run(ctx, "get_products", s, func(ctx context.Context, sess *mcp.ClientSession, tr *tracker) error {
		*out = Products{}
		cursor := ""
		seen := map[string]bool{}
		for page := 1; ; page++ {
			r := req
			r.Pagination = &pagination{MaxResults: pageSize, Cursor: cursor}
			args, err := json.Marshal(r)
			if err != nil {
				return validationError("cannot encode request: " + err.Error())
			}
			raw, err := callTool(ctx, sess, tr, "get_products", args)
			if err != nil {
				return err
			}
			next, err := out.add(raw)
			if err != nil {
				return err
			}
			out.Pages = page
			if next == "" {
				return nil
			}
			if seen[next] {
				return badResponse("pagination cursor repeats", nil)
			}
			if page >= maxPages {
				out.Truncated = true
				return nil
			}
			seen[next] = true
			cursor = next
		}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

type wireProducts struct {
	Products    []json.RawMessage `json:"products"`
	Proposals   []wireProposal    `json:"proposals"`
	CacheScope  string            `json:"cache_scope"`
	Refinements []Refinement      `json:"refinement_applied"`
	Pagination  *struct {
		HasMore bool   `json:"has_more"`
		Cursor  string `json:"cursor"`
	} `json:"pagination"`
}

type wireProposal struct {
	ProposalID  string `json:"proposal_id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Status      string `json:"proposal_status"`
	ExpiresAt   string `json:"expires_at"`
	Guidance    *struct {
		Min      *float64 `json:"min"`
		Max      *float64 `json:"max"`
		Currency string   `json:"currency"`
	} `json:"total_budget_guidance"`
	Allocations []struct {
		ProductID       string  `json:"product_id"`
		Percentage      float64 `json:"allocation_percentage"`
		PricingOptionID string  `json:"pricing_option_id"`
	} `json:"allocations"`
}

type wireProduct struct {
	ProductID           string        `json:"product_id"`
	Name                string        `json:"name"`
	Description         string        `json:"description"`
	Channels            []string      `json:"channels"`
	DeliveryType        string        `json:"delivery_type"`
	FormatIDs           []FormatID    `json:"format_ids"`
	ExpiresAt           string        `json:"expires_at"`
	Forecast            *wireForecast `json:"forecast"`
	PublisherProperties []struct {
		PublisherDomain  string   `json:"publisher_domain"`
		PublisherDomains []string `json:"publisher_domains"`
	} `json:"publisher_properties"`
	PricingOptions []struct {
		ID            string   `json:"pricing_option_id"`
		Model         string   `json:"pricing_model"`
		Currency      string   `json:"currency"`
		FixedPrice    *float64 `json:"fixed_price"`
		FloorPrice    *float64 `json:"floor_price"`
		MaxBid        bool     `json:"max_bid"`
		MinSpend      *float64 `json:"min_spend_per_package"`
		PriceGuidance *struct {
			P25 *float64 `json:"p25"`
			P50 *float64 `json:"p50"`
			P75 *float64 `json:"p75"`
			P90 *float64 `json:"p90"`
		} `json:"price_guidance"`
	} `json:"pricing_options"`
}

type wireForecast struct {
	Unit     string `json:"forecast_range_unit"`
	Method   string `json:"method"`
	Currency string `json:"currency"`
	Points   []struct {
		Label   string   `json:"label"`
		Budget  *float64 `json:"budget"`
		Metrics struct {
			Impressions *struct {
				Low  float64 `json:"low"`
				Mid  float64 `json:"mid"`
				High float64 `json:"high"`
			} `json:"impressions"`
		} `json:"metrics"`
	} `json:"points"`
}

// decode converts the forecast's budgets to micros; a malformed amount
// drops the forecast (it is advisory), never the product.
func (w *wireForecast) decode() *Forecast {
	if w == nil || len(w.Points) == 0 {
		return nil
	}
	f := &Forecast{Unit: w.Unit, Method: w.Method, Currency: w.Currency}
	for _, p := range w.Points {
		fp := ForecastPoint{Label: p.Label}
		if p.Budget != nil {
			m, err := micros(p.Budget, "forecast budget")
			if err != nil {
				return nil
			}
			fp.BudgetMicros = m
		}
		if im := p.Metrics.Impressions; im != nil && im.Low >= 0 && im.Mid >= 0 && im.High >= 0 {
			fp.Impressions = ForecastRange{Low: int64(im.Low), Mid: int64(im.Mid), High: int64(im.High)}
		}
		f.Points = append(f.Points, fp)
	}
	return f
}

// add merges one page and returns the next cursor ("" when done).
func (p *Products) add(raw json.RawMessage) (string, error) {
	var w wireProducts
	if err := json.Unmarshal(raw, &w); err != nil {
		return "", badResponse("get_products: "+err.Error(), err)
	}
	if w.CacheScope != "" {
		p.CacheScope = w.CacheScope
	}
	p.Refinements = append(p.Refinements, w.Refinements...)
	for _, rp := range w.Products {
		prod, err := decodeProduct(rp)
		if err != nil {
			return "", err
		}
		p.Products = append(p.Products, prod)
	}
	for _, wp := range w.Proposals {
		pr := Proposal{ProposalID: wp.ProposalID, Name: wp.Name, Description: truncate(wp.Description, 500), Status: wp.Status, ExpiresAt: parseTime(wp.ExpiresAt)}
		if g := wp.Guidance; g != nil {
			var err error
			if pr.MinBudgetMicros, err = micros(g.Min, "total_budget_guidance.min"); err != nil {
				return "", err
			}
			if pr.MaxBudgetMicros, err = micros(g.Max, "total_budget_guidance.max"); err != nil {
				return "", err
			}
			pr.BudgetCurrency = g.Currency
		}
		for _, a := range wp.Allocations {
			pr.Allocations = append(pr.Allocations, Allocation(a))
		}
		p.Proposals = append(p.Proposals, pr)
	}
	if w.Pagination != nil && w.Pagination.HasMore {
		if w.Pagination.Cursor == "" {
			return "", badResponse("get_products: has_more without a cursor", nil)
		}
		return w.Pagination.Cursor, nil
	}
	return "", nil
}

func decodeProduct(raw json.RawMessage) (Product, error) {
	var w wireProduct
	if err := json.Unmarshal(raw, &w); err != nil {
		return Product{}, badResponse("product: "+err.Error(), err)
	}
	if w.ProductID == "" {
		return Product{}, badResponse("product without product_id", nil)
	}
	p := Product{ProductID: w.ProductID, Name: w.Name, Description: w.Description, Channels: w.Channels,
		DeliveryType: w.DeliveryType, FormatIDs: w.FormatIDs, ExpiresAt: parseTime(w.ExpiresAt), Forecast: w.Forecast.decode(),
		Raw: append(json.RawMessage(nil), raw...)}
	for _, pp := range w.PublisherProperties {
		if pp.PublisherDomain != "" {
			p.PublisherDomains = append(p.PublisherDomains, pp.PublisherDomain)
		}
		p.PublisherDomains = append(p.PublisherDomains, pp.PublisherDomains...)
	}
	field := "product " + w.ProductID
	for _, o := range w.PricingOptions {
		po := PricingOption{PricingOptionID: o.ID, PricingModel: o.Model, Currency: o.Currency, MaxBid: o.MaxBid}
		var err error
		if po.FixedPriceMicros, err = micros(o.FixedPrice, field+" fixed_price"); err != nil {
			return Product{}, err
		}
		po.Fixed = o.FixedPrice != nil
		if po.FloorPriceMicros, err = micros(o.FloorPrice, field+" floor_price"); err != nil {
			return Product{}, err
		}
		if po.MinSpendMicros, err = micros(o.MinSpend, field+" min_spend_per_package"); err != nil {
			return Product{}, err
		}
		if g := o.PriceGuidance; g != nil {
			var pg PriceGuidance
			for _, x := range []struct {
				src *float64
				dst *events.Micros
			}{{g.P25, &pg.P25}, {g.P50, &pg.P50}, {g.P75, &pg.P75}, {g.P90, &pg.P90}} {
				if *x.dst, err = micros(x.src, field+" price_guidance"); err != nil {
					return Product{}, err
				}
			}
			po.Guidance = &pg
		}
		po.Priced = o.FixedPrice != nil || o.FloorPrice != nil || o.PriceGuidance != nil
		p.PricingOptions = append(p.PricingOptions, po)
	}
	return p, nil
}

var idemKeyRE = regexp.MustCompile(`^[A-Za-z0-9_.:-]{16,255}$`)

// IdempotencyKey derives a stable create_media_buy key from the parts of a
// booking decision (campaign, seller, plan revision...): the same decision
// always gets the same key, so a retry after a crash replays.
func IdempotencyKey(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		_, _ = fmt.Fprintf(h, "%d:%s|", len(p), p)
	}
	return "dealflow." + hex.EncodeToString(h.Sum(nil))[:40]
}

// NewIdempotencyKey returns a random key.
func NewIdempotencyKey() string {
	b := make([]byte, 20)
	_, _ = rand.Read(b)
	return "dealflow." + hex.EncodeToString(b)
}

type buyRequest struct {
	IdempotencyKey string            `json:"idempotency_key"`
	Account        AccountRef        `json:"account"`
	Brand          BrandRef          `json:"brand"`
	ProposalID     string            `json:"proposal_id,omitempty"`
	TotalBudget    *totalBudget      `json:"total_budget,omitempty"`
	Packages       []wirePackage     `json:"packages,omitempty"`
	PONumber       string            `json:"po_number,omitempty"`
	StartTime      string            `json:"start_time"`
	EndTime        string            `json:"end_time"`
	Push           *wirePush         `json:"push_notification_config,omitempty"`
	Context        map[string]string `json:"context,omitempty"`
}

type totalBudget struct {
	Amount   json.Number `json:"amount"`
	Currency string      `json:"currency"`
}

type wirePackage struct {
	ProductID       string      `json:"product_id"`
	PricingOptionID string      `json:"pricing_option_id"`
	Budget          json.Number `json:"budget"`
	BidPrice        json.Number `json:"bid_price,omitempty"`
	Impressions     int64       `json:"impressions,omitempty"`
	Pacing          string      `json:"pacing,omitempty"`
}

type wirePush struct {
	URL            string    `json:"url"`
	OperationID    string    `json:"operation_id,omitempty"`
	Token          string    `json:"token,omitempty"`
	Authentication *wireAuth `json:"authentication,omitempty"`
}

type wireAuth struct {
	Schemes     []string `json:"schemes"`
	Credentials string   `json:"credentials"`
}

// encode validates r and builds the wire request.
func (r MediaBuyRequest) encode() (json.RawMessage, error) {
	if !idemKeyRE.MatchString(r.IdempotencyKey) {
		return nil, validationError("idempotency_key must be 16-255 characters of [A-Za-z0-9_.:-]")
	}
	if r.Account == (AccountRef{}) {
		return nil, validationError("account is required")
	}
	if r.Brand.Domain == "" {
		return nil, validationError("brand.domain is required")
	}
	if r.End.IsZero() || (!r.Start.IsZero() && !r.End.After(r.Start)) {
		return nil, validationError("end must be set and after start")
	}
	w := buyRequest{IdempotencyKey: r.IdempotencyKey, Account: r.Account, Brand: r.Brand, ProposalID: r.ProposalID,
		PONumber: r.PONumber, StartTime: "asap", EndTime: r.End.UTC().Format(time.RFC3339), Context: r.Context}
	if !r.Start.IsZero() {
		w.StartTime = r.Start.UTC().Format(time.RFC3339)
	}
	switch {
	case r.ProposalID != "":
		if r.TotalBudgetMicros <= 0 || len(r.Packages) > 0 {
			return nil, validationError("a proposal buy needs TotalBudgetMicros and no Packages")
		}
		tb := MinorUnitFloor(r.TotalBudgetMicros, r.Currency)
		if tb <= 0 {
			return nil, validationError("total budget rounds to nothing in the currency's minor unit")
		}
		w.TotalBudget = &totalBudget{Amount: decimal(tb), Currency: currencyOr(r.Currency)}
	case len(r.Packages) > 0:
		for i, p := range r.Packages {
			if p.ProductID == "" || p.PricingOptionID == "" || p.BudgetMicros <= 0 || p.BidPriceMicros < 0 || p.Impressions < 0 {
				return nil, validationError(fmt.Sprintf("packages[%d]: product, pricing option and a positive budget are required", i))
			}
			budget := MinorUnitFloor(p.BudgetMicros, r.Currency)
			if budget <= 0 {
				return nil, validationError(fmt.Sprintf("packages[%d]: budget rounds to nothing in the currency's minor unit", i))
			}
			wp := wirePackage{ProductID: p.ProductID, PricingOptionID: p.PricingOptionID, Budget: decimal(budget),
				Impressions: p.Impressions, Pacing: p.Pacing}
			if p.BidPriceMicros > 0 {
				// A bid is a price: exact in the currency's minor unit,
				// and never above the CPM the buyer decided on.
				wp.BidPrice = decimal(MinorUnitFloor(p.BidPriceMicros, r.Currency))
			}
			w.Packages = append(w.Packages, wp)
		}
	default:
		return nil, validationError("packages or a proposal id are required")
	}
	if p := r.Push; p != nil {
		w.Push = &wirePush{URL: p.URL, OperationID: p.OperationID, Token: string(p.Token)}
		if p.BearerCredentials != "" {
			w.Push.Authentication = &wireAuth{Schemes: []string{"Bearer"}, Credentials: string(p.BearerCredentials)}
		}
	}
	b, err := json.Marshal(w)
	if err != nil {
		return nil, validationError("cannot encode request: " + err.Error())
	}
	return b, nil
}

// CreateMediaBuy books packages (or a committed proposal). The answer is a
// completed buy (Booked), or Status "submitted" with a TaskID to poll
// (GetTaskStatus) or await on the push webhook. Seller refusals are *Error
// (e.g. BUDGET_TOO_LOW, PRODUCT_NOT_FOUND, IDEMPOTENCY_CONFLICT). The call is
// retried on transient failures with the same key and the same bytes, so a
// retry is a replay (Replayed) and never a second buy.
func (c *Client) CreateMediaBuy(ctx context.Context, s Seller, r MediaBuyRequest) (*MediaBuy, error) {
	args, err := r.encode()
	if err != nil {
		e := err.(*Error)
		e.Op, e.Seller = "create_media_buy", s.URL
		return nil, e
	}
	var out *MediaBuy
	err = c.run(ctx, "create_media_buy", s, func(ctx context.Context, sess *mcp.ClientSession, tr *tracker) error {
		raw, err := callTool(ctx, sess, tr, "create_media_buy", args)
		if err != nil {
			return err
		}
		out, err = decodeBuy(raw)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

type wireBuy struct {
	Status         string            `json:"status"`
	TaskID         string            `json:"task_id"`
	Message        string            `json:"message"`
	Replayed       bool              `json:"replayed"`
	MediaBuyID     string            `json:"media_buy_id"`
	MediaBuyStatus string            `json:"media_buy_status"`
	Revision       int               `json:"revision"`
	ConfirmedAt    *string           `json:"confirmed_at"`
	Currency       string            `json:"currency"`
	TotalBudget    *float64          `json:"total_budget"`
	StartTime      string            `json:"start_time"`
	EndTime        string            `json:"end_time"`
	Context        map[string]any    `json:"context"`
	Errors         []json.RawMessage `json:"errors"`
	Packages       []struct {
		PackageID       string   `json:"package_id"`
		ProductID       string   `json:"product_id"`
		PricingOptionID string   `json:"pricing_option_id"`
		Budget          *float64 `json:"budget"`
		BidPrice        *float64 `json:"bid_price"`
		Impressions     float64  `json:"impressions"`
		Paused          bool     `json:"paused"`
		Canceled        bool     `json:"canceled"`
	} `json:"packages"`
}

func decodeBuy(raw json.RawMessage) (*MediaBuy, error) {
	var w wireBuy
	if err := json.Unmarshal(raw, &w); err != nil {
		return nil, badResponse("media buy: "+err.Error(), err)
	}
	if len(w.Errors) > 0 && w.MediaBuyID == "" && w.Status != "submitted" {
		return nil, sellerError(w.Errors[0])
	}
	m := &MediaBuy{Status: w.Status, TaskID: w.TaskID, Message: truncate(w.Message, 2000), Replayed: w.Replayed,
		MediaBuyID: w.MediaBuyID, MediaBuyStatus: w.MediaBuyStatus, Revision: w.Revision, Currency: w.Currency,
		StartTime: parseTime(w.StartTime), EndTime: parseTime(w.EndTime)}
	for k, v := range w.Context {
		if s, ok := v.(string); ok {
			if m.Context == nil {
				m.Context = map[string]string{}
			}
			m.Context[k] = s
		}
	}
	if w.ConfirmedAt != nil {
		m.ConfirmedAt = parseTime(*w.ConfirmedAt)
	}
	if m.MediaBuyStatus == "" && w.MediaBuyID != "" {
		// get_media_buys carries the buy status in status.
		m.MediaBuyStatus = w.Status
	}
	var err error
	if m.TotalBudgetMicros, err = micros(w.TotalBudget, "total_budget"); err != nil {
		return nil, err
	}
	for _, p := range w.Packages {
		pk := Package{PackageID: p.PackageID, ProductID: p.ProductID, PricingOptionID: p.PricingOptionID, Impressions: int64(p.Impressions),
			Paused: p.Paused, Canceled: p.Canceled}
		if pk.BudgetMicros, err = micros(p.Budget, "packages.budget"); err != nil {
			return nil, err
		}
		if pk.BidPriceMicros, err = micros(p.BidPrice, "packages.bid_price"); err != nil {
			return nil, err
		}
		m.Packages = append(m.Packages, pk)
	}
	switch {
	case m.MediaBuyID != "":
	case m.Status == "submitted" || m.Status == "working" || m.Status == "input-required":
		if m.TaskID == "" {
			return nil, badResponse("an async answer without task_id", nil)
		}
	default:
		return nil, badResponse("media buy answer has neither media_buy_id nor a task", nil)
	}
	return m, nil
}

// pollingTools are the names implementations give the task-status tool.
var pollingTools = []string{"get_task_status", "tasks_get", "get_task", "tasks/get"}

// pollingTool probes tools/list once per seller for the task-status tool.
func (c *Client) pollingTool(ctx context.Context, key string, sess *mcp.ClientSession, tr *tracker) (string, error) {
	c.mu.Lock()
	name, ok := c.polls[key]
	c.mu.Unlock()
	if ok {
		return name, nil
	}
	have, err := listTools(ctx, sess, tr)
	if err != nil {
		return "", err
	}
	for _, n := range pollingTools {
		if have[n] {
			c.mu.Lock()
			c.polls[key] = n
			c.mu.Unlock()
			return n, nil
		}
	}
	return "", clientError("unsupported", "the seller lists no task-status tool ("+strings.Join(pollingTools, ", ")+")", sellerclient.ErrUnsupported)
}

// GetTaskStatus polls a task (include_result true), using the task-status
// tool the seller lists (get_task_status, tasks_get, ...).
func (c *Client) GetTaskStatus(ctx context.Context, s Seller, taskID string) (*TaskStatus, error) {
	if taskID == "" {
		return nil, validationError("task id is required")
	}
	u, _ := sellerclient.CanonicalURL(s.URL)
	key := sellerKey(u, s.Token)
	req := map[string]any{"task_id": taskID, "include_result": true}
	if s.Account != nil {
		// Tasks are account-scoped; a seller whose credential may use
		// several accounts needs to be told which.
		req["account"] = s.Account
	}
	args, _ := json.Marshal(req)
	var out *TaskStatus
	err := c.run(ctx, "get_task_status", s, func(ctx context.Context, sess *mcp.ClientSession, tr *tracker) error {
		tool, err := c.pollingTool(ctx, key, sess, tr)
		if err != nil {
			return err
		}
		raw, err := callTool(ctx, sess, tr, tool, args)
		if err != nil {
			return err
		}
		out, err = decodeTask(raw)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func decodeTask(raw json.RawMessage) (*TaskStatus, error) {
	var w struct {
		TaskID      string          `json:"task_id"`
		TaskType    string          `json:"task_type"`
		Status      string          `json:"status"`
		CreatedAt   string          `json:"created_at"`
		UpdatedAt   string          `json:"updated_at"`
		CompletedAt string          `json:"completed_at"`
		Error       json.RawMessage `json:"error"`
		Result      json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(raw, &w); err != nil {
		return nil, badResponse("task status: "+err.Error(), err)
	}
	if w.TaskID == "" || w.Status == "" {
		return nil, badResponse("task status without task_id or status", nil)
	}
	t := &TaskStatus{TaskID: w.TaskID, TaskType: w.TaskType, Status: w.Status, CreatedAt: parseTime(w.CreatedAt),
		UpdatedAt: parseTime(w.UpdatedAt), CompletedAt: parseTime(w.CompletedAt)}
	if len(w.Error) > 0 && string(w.Error) != "null" {
		t.Error = sellerError(w.Error)
	}
	if len(w.Result) > 0 && string(w.Result) != "null" && (w.TaskType == "create_media_buy" || w.TaskType == OpUpdateMediaBuy || w.TaskType == "") {
		var probe struct {
			MediaBuyID string `json:"media_buy_id"`
		}
		if json.Unmarshal(w.Result, &probe) == nil && probe.MediaBuyID != "" {
			m, err := decodeUpdate(w.Result)
			if err != nil {
				return nil, err
			}
			t.MediaBuy = m
		} else if t.Error == nil {
			var errs struct {
				Errors []json.RawMessage `json:"errors"`
			}
			if json.Unmarshal(w.Result, &errs) == nil && len(errs.Errors) > 0 {
				t.Error = sellerError(errs.Errors[0])
			}
		}
	}
	return t, nil
}

// GetMediaBuys reads buys (all of the account's when ids is empty) for
// reconciliation after an ambiguous outcome.
func (c *Client) GetMediaBuys(ctx context.Context, s Seller, ids ...string) ([]MediaBuy, error) {
	req := map[string]any{}
	if len(ids) > 0 {
		req["media_buy_ids"] = ids
	}
	return c.getMediaBuys(ctx, s, req)
}

// MediaBuyStatuses are every status a media buy can have
// (enums/media-buy-status.json).
var MediaBuyStatuses = []string{"pending_creatives", "pending_start", "active", "paused", "completed", "rejected", "canceled"}

// ListMediaBuys reads every media buy of the seller's account, whatever its
// status (without ids a seller would list only active ones). A buyer
// finds its own buys in it by the context it sent with create_media_buy,
// which sellers echo on read surfaces for exactly this reconciliation.
func (c *Client) ListMediaBuys(ctx context.Context, s Seller) ([]MediaBuy, error) {
	return c.getMediaBuys(ctx, s, map[string]any{"status_filter": MediaBuyStatuses})
}

func (c *Client) getMediaBuys(ctx context.Context, s Seller, req map[string]any) ([]MediaBuy, error) {
	if s.Account != nil {
		req["account"] = s.Account
	}
	args, _ := json.Marshal(req)
	var out []MediaBuy
	err := c.run(ctx, "get_media_buys", s, func(ctx context.Context, sess *mcp.ClientSession, tr *tracker) error {
		raw, err := callTool(ctx, sess, tr, "get_media_buys", args)
		if err != nil {
			return err
		}
		var w struct {
			MediaBuys []json.RawMessage `json:"media_buys"`
		}
		if err := json.Unmarshal(raw, &w); err != nil {
			return badResponse("get_media_buys: "+err.Error(), err)
		}
		out = out[:0]
		for _, b := range w.MediaBuys {
			m, err := decodeBuy(b)
			if err != nil {
				return err
			}
			m.Status = "completed"
			out = append(out, *m)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

package events

import (
	"time"
)

// KPIs are the brief's price targets, CPM in micros.
type KPIs struct {
	TargetCPMMicros Micros `json:"target_cpm_micros,omitempty" desc:"CPM the buyer opens negotiations at, in micros (1 USD = 1,000,000)."`
	MaxCPMMicros    Micros `json:"max_cpm_micros,omitempty" desc:"Highest CPM the buyer will pay, in micros."`
}

// Brief is what the buyer wants bought. Field names follow the reference
// buyer's bookings API, extended with what selection needs.
type Brief struct {
	Name               string             `json:"name" desc:"Campaign name, 1-100 characters."`
	Objectives         []string           `json:"objectives,omitempty"`
	BudgetMicros       Micros             `json:"budget_micros" desc:"Hard spend limit in micros of USD (1 USD = 1,000,000); the sum of booked deal costs (impressions x CPM micros / 1000, rounded up) never exceeds it."`
	Currency           string             `json:"currency,omitempty" desc:"ISO 4217 code; only USD is supported."`
	StartDate          string             `json:"start_date" desc:"Flight start, YYYY-MM-DD."`
	EndDate            string             `json:"end_date" desc:"Flight end, YYYY-MM-DD, not before start_date."`
	TargetAudience     map[string]any     `json:"target_audience,omitempty"`
	KPIs               KPIs               `json:"kpis,omitempty"`
	Channels           []string           `json:"channels,omitempty" desc:"Seller capabilities wanted (ctv, video, display, mobile, ...); any match."`
	AdFormats          []string           `json:"ad_formats,omitempty" desc:"Package ad formats that fit; empty = the channels."`
	DeviceTypes        []int              `json:"device_types,omitempty" desc:"OpenRTB device types that fit; empty = any."`
	Geo                []string           `json:"geo,omitempty" desc:"Geo targets that fit (prefix match, US matches US-NY); empty = any."`
	Keywords           []string           `json:"keywords,omitempty" desc:"Keywords for the sellers' package search."`
	Tags               []string           `json:"tags,omitempty" desc:"Package tags that fit (any match); empty = any."`
	Impressions        int64              `json:"impressions,omitempty" desc:"Impressions wanted per package quote; 0 = what the budget buys."`
	DealType           string             `json:"deal_type,omitempty" desc:"PG, PD or PA; default PD."`
	PerSellerCapMicros Micros             `json:"per_seller_cap_micros,omitempty" desc:"Most to spend with one seller, in micros; 0 = no cap."`
	FormatMix          map[string]float64 `json:"format_mix,omitempty" desc:"Minimum share of spend per format, e.g. {\"video\":0.3}."`
	MinSellers         int                `json:"min_sellers,omitempty" desc:"Fewest sellers to spread the budget over, when feasible."`
	Weights            *ValueWeights      `json:"weights,omitempty" desc:"How the optimiser values a quote; omitted = the guide's score."`
}

// ValueWeights weigh the guide's score: price headroom below PriceCeilingMicros,
// plus bonuses for video/CTV, display, negotiable and volume discounts.
type ValueWeights struct {
	Price              float64 `json:"price"`
	Video              float64 `json:"video"`
	Display            float64 `json:"display"`
	Negotiable         float64 `json:"negotiable"`
	Volume             float64 `json:"volume"`
	PriceCeilingMicros Micros  `json:"price_ceiling_micros" desc:"CPM in micros at and above which price adds nothing to the score."`
}

// NegotiationPolicy picks and parameterises the negotiation strategy.
type NegotiationPolicy struct {
	Strategy   string `json:"strategy,omitempty" desc:"threshold, adaptive or competitive; default adaptive."`
	StepMicros Micros `json:"step_micros,omitempty" desc:"Concession step, CPM in micros (threshold)."`
	MaxRounds  int    `json:"max_rounds,omitempty" desc:"Most offers the buyer makes."`
}

// CampaignRequested asks the pipeline to shop and book a campaign.
type CampaignRequested struct {
	CampaignID          string            `json:"campaign_id" desc:"Also the CloudEvents subject and the last subject token."`
	Brief               Brief             `json:"brief"`
	Buyer               BuyerIdentity     `json:"buyer" desc:"The buyer's full identity; each seller sees only what its trust allows."`
	AutoApprove         bool              `json:"auto_approve" desc:"Book without waiting for approval."`
	AllowUnknownSellers bool              `json:"allow_unknown_sellers,omitempty" desc:"Shop unknown-trust sellers too (public view only)."`
	Negotiation         NegotiationPolicy `json:"negotiation,omitempty"`
	Sellers             []string          `json:"sellers,omitempty" desc:"Extra seller URLs to consider besides the registry."`
	ShoppingWindowSec   int               `json:"shopping_window_seconds,omitempty" desc:"Seconds after which the booker optimises with the quotes it has."`
	Notify              *Notify           `json:"notify,omitempty" desc:"The campaign's webhook; its signing secret is never in an event."`
	RequestedAt         time.Time         `json:"requested_at"`
}

// Notify names the webhook that receives the campaign's status changes and
// booked deals. Only the URL is public; the signing secret lives in the
// dealflow_webhooks bucket, read by the notifier alone.
type Notify struct {
	URL string `json:"url" desc:"Canonical http(s) URL the notifier POSTs each status change and DealBooked to."`
}

// CampaignRejected says a campaign will not proceed.
type CampaignRejected struct {
	CampaignID string `json:"campaign_id"`
	Field      string `json:"field,omitempty" desc:"The offending brief field, when the brief is invalid."`
	Reason     string `json:"reason"`
}

// Seller identifies a seller agent and how it was found.
type Seller struct {
	URL          string   `json:"url" desc:"Normalised base URL of the seller agent."`
	Name         string   `json:"name,omitempty"`
	AgentID      string   `json:"agent_id,omitempty"`
	Trust        Trust    `json:"trust" desc:"preferred, verified, registered, unknown or blocked."`
	Source       string   `json:"source" desc:"registry, aamp, known, registry-stale (cached answer used while the registry failed) or campaign."`
	Capabilities []string `json:"capabilities,omitempty"`
	Protocol     Protocol `json:"protocol,omitempty" desc:"The API the seller speaks: iab-seller-agent (the IAB seller-agent API; also when absent) or adcp (an AdCP 3.1 sales agent over MCP)."`
	MCPEndpoint  string   `json:"mcp_endpoint,omitempty" desc:"AdCP: the sales agent's MCP (streamable HTTP) endpoint; empty means url."`
	Compliance   string   `json:"compliance,omitempty" desc:"AdCP: the registry's compliance status (passing, degraded or failing), when it reports one."`
}

// Endpoint is the URL to call: the MCP endpoint of an AdCP seller (when
// set), else URL.
func (s Seller) Endpoint() string {
	if s.Protocol.IsADCP() && s.MCPEndpoint != "" {
		return s.MCPEndpoint
	}
	return s.URL
}

// Disclosure records how much buyer identity a seller may see and why.
type Disclosure struct {
	Tier        Tier   `json:"tier" desc:"Tier revealed to this seller."`
	Recommended Tier   `json:"recommended" desc:"Tier the identity strategy recommended before the trust cap."`
	Cap         Tier   `json:"cap" desc:"Highest tier the seller's trust allows."`
	Reason      string `json:"reason"`
}

// SellerFound is one usable seller for a campaign.
type SellerFound struct {
	CampaignID  string            `json:"campaign_id"`
	Seller      Seller            `json:"seller"`
	Disclosure  Disclosure        `json:"disclosure"`
	Brief       ShoppingBrief     `json:"brief" desc:"What the kitfetcher and negotiator need from the brief (Brief.ForShopping), not the whole brief."`
	Negotiation NegotiationPolicy `json:"negotiation,omitempty"`
	Buyer       BuyerIdentity     `json:"buyer" desc:"Identity masked to the disclosure tier: nothing above it travels further."`
}

// Stage names used in SellerSkipped and dead letters.
const (
	StageDiscoverer = "discoverer"
	StageKitfetcher = "kitfetcher"
	StageNegotiator = "negotiator"
	StageBooker     = "booker"
)

// SellerSkipped records that one seller was left out, and why.
type SellerSkipped struct {
	CampaignID string   `json:"campaign_id"`
	SellerURL  string   `json:"seller_url"`
	SellerName string   `json:"seller_name,omitempty"`
	Protocol   Protocol `json:"protocol,omitempty" desc:"iab-seller-agent or adcp, when the stage knew it."`
	Trust      Trust    `json:"trust,omitempty"`
	Stage      string   `json:"stage" desc:"discoverer or kitfetcher; for code dead_lettered, the stage that dead-lettered the event."`
	Code       string   `json:"code" desc:"blocked, untrusted, duplicate, unreachable, timeout, bad_response, http_error, no_fitting_packages, non_compliant (the AAO registry reports compliance failing), signing_required (an AdCP seller requires RFC 9421 signatures), no_prices (public AdCP products without prices), dead_lettered (a SellerFound, PackageFound or QuoteReady of this seller was dead-lettered), ..."`
	Reason     string   `json:"reason"`
	PackageID  string   `json:"package_id,omitempty" desc:"Set when only this package is skipped: the rest of the seller's packages still count."`
	// PackagesTotal lets a package-level skip complete the seller's count
	// even when no QuoteReady of that seller ever arrives.
	PackagesTotal int `json:"packages_total,omitempty" desc:"With package_id: the seller's number of fitting packages (PackageFound.packages_total)."`
}

// SkipDeadLettered is SellerSkipped.Code when the bus dead-lettered one of
// the seller's events (SellerFound, PackageFound or QuoteReady).
const SkipDeadLettered = "dead_lettered"

// SourceStatus says how one discovery source answered.
type SourceStatus struct {
	Source string `json:"source"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// DiscoveryCompleted closes discovery for a campaign: the booker expects one
// resolution (packages or a skip) for each listed seller.
type DiscoveryCompleted struct {
	CampaignID string         `json:"campaign_id"`
	Sellers    []string       `json:"sellers" desc:"URLs of every seller a SellerFound was emitted for."`
	Skipped    int            `json:"skipped"`
	Sources    []SourceStatus `json:"sources"`
}

// Package is a seller's package as the buyer saw it.
type Package struct {
	ID               string   `json:"id"`
	Name             string   `json:"name,omitempty"`
	ProductID        string   `json:"product_id,omitempty" desc:"Seller product quoted for this package."`
	AdFormats        []string `json:"ad_formats,omitempty"`
	DeviceTypes      []int    `json:"device_types,omitempty"`
	GeoTargets       []string `json:"geo_targets,omitempty"`
	Tags             []string `json:"tags,omitempty"`
	PriceRange       string   `json:"price_range,omitempty"`
	PriceLowMicros   Micros   `json:"price_low_micros,omitempty" desc:"Low end of the public CPM range, in micros."`
	PriceHighMicros  Micros   `json:"price_high_micros,omitempty" desc:"High end of the public CPM range, in micros."`
	ExactPriceMicros Micros   `json:"exact_price_micros,omitempty" desc:"Exact CPM for the revealed tier, in micros; 0 when only a range is known."`
	FloorPriceMicros Micros   `json:"floor_price_micros,omitempty" desc:"The package's floor CPM (authenticated view), in micros, when shown."`
	// ProductFloorCPMMicros and ProductDealTypes come from the seller's
	// catalog entry for ProductID: the seller negotiates against the
	// product's floor_cpm, not the package's floor_price.
	ProductFloorCPMMicros Micros   `json:"product_floor_cpm_micros,omitempty" desc:"The product's ext.floor_cpm (the seller's negotiation floor), in micros; 0 when unknown."`
	ProductDealTypes      []string `json:"product_deal_types,omitempty" desc:"Deal types the product allows (ext.deal_types: PG, PD, PA); empty when unknown."`
	Currency              string   `json:"currency,omitempty"`
	Negotiable            bool     `json:"negotiable"`
	VolumeDiscounts       bool     `json:"volume_discounts"`
	AvailableImpressions  int64    `json:"available_impressions,omitempty"`
	// AdCP products: one Package per product and CPM pricing option.
	PricingOptionID     string         `json:"pricing_option_id,omitempty" desc:"AdCP: the product's pricing option this package stands for (id is product_id/pricing_option_id)."`
	PricingModel        string         `json:"pricing_model,omitempty" desc:"AdCP: fixed (exact_price_micros is the price) or auction (the buyer bids between floor_price_micros and its max)."`
	PriceGuidanceMicros *PriceGuidance `json:"auction_guidance,omitempty" desc:"AdCP auction: the seller's clearing-price percentiles, CPM in micros."`
	MinSpendMicros      Micros         `json:"min_spend_micros,omitempty" desc:"AdCP: min_spend_per_package, the smallest budget the seller accepts for one package, in micros (the minimum order)."`
	ProposalID          string         `json:"proposal_id,omitempty" desc:"AdCP: the committed proposal (100% this product at this pricing option, the final CPM held until quote_expires_at) that the booker buys with proposal_id + total_budget; absent when the package is bought as such."`
}

// Pricing models of an AdCP package.
const (
	PricingFixed   = "fixed"
	PricingAuction = "auction"
)

// PriceGuidance is an AdCP auction option's clearing-price percentiles, CPM
// in micros (0 = not sent).
type PriceGuidance struct {
	P25 Micros `json:"p25_micros,omitempty"`
	P50 Micros `json:"p50_micros,omitempty"`
	P75 Micros `json:"p75_micros,omitempty"`
	P90 Micros `json:"p90_micros,omitempty"`
}

// PackageFound is one package that fits the brief.
type PackageFound struct {
	CampaignID    string            `json:"campaign_id"`
	Seller        Seller            `json:"seller"`
	Disclosure    Disclosure        `json:"disclosure"`
	Package       Package           `json:"package"`
	PackageIndex  int               `json:"package_index" desc:"0-based index among this seller's fitting packages."`
	PackagesTotal int               `json:"packages_total" desc:"Fitting packages of this seller; the booker waits for as many QuoteReady."`
	Brief         ShoppingBrief     `json:"brief" desc:"What the negotiator needs from the brief (ShoppingBrief.ForNegotiation): budget, caps, CPM targets, volume, deal type and flight. The lists that fit packages (channels, formats, devices, geo, keywords, tags) were used by the kitfetcher and stay in SellerFound, not copied into every package."`
	Negotiation   NegotiationPolicy `json:"negotiation,omitempty"`
	Buyer         BuyerIdentity     `json:"buyer" desc:"Identity masked to the disclosure tier."`
}

// Outcomes of a negotiation, in QuoteReady.
const (
	OutcomeAccepted   = "accepted"
	OutcomeFixedPrice = "fixed_price"
	OutcomeWalkedAway = "walked_away"
	OutcomeRejected   = "rejected"
	OutcomeError      = "error"
)

// Round is one buyer offer and the seller's answer.
type Round struct {
	N                 int    `json:"n"`
	BuyerPriceMicros  Micros `json:"buyer_price_micros" desc:"The buyer's offer, CPM in micros."`
	SellerPriceMicros Micros `json:"seller_price_micros" desc:"The seller's answer, CPM in micros."`
	SellerAction      string `json:"seller_action"`
}

// QuoteReady is the negotiator's result for one package.
type QuoteReady struct {
	CampaignID           string     `json:"campaign_id"`
	Seller               Seller     `json:"seller"`
	Package              Package    `json:"package"`
	PackagesTotal        int        `json:"packages_total"`
	Tier                 Tier       `json:"tier"`
	Outcome              string     `json:"outcome" desc:"accepted, fixed_price, walked_away, rejected or error."`
	Reason               string     `json:"reason,omitempty"`
	Strategy             string     `json:"strategy,omitempty"`
	QuoteID              string     `json:"quote_id,omitempty"`
	QuoteExpiresAt       *time.Time `json:"quote_expires_at,omitempty"`
	NegotiationID        string     `json:"negotiation_id,omitempty"`
	DealType             string     `json:"deal_type,omitempty"`
	Impressions          int64      `json:"impressions,omitempty" desc:"Impressions in the quote."`
	ListCPMMicros        Micros     `json:"list_cpm_micros,omitempty" desc:"The seller's quoted CPM before negotiation, in micros."`
	FinalCPMMicros       Micros     `json:"final_cpm_micros,omitempty" desc:"The agreed (or fixed) CPM in micros; 0 when there is no deal to book."`
	MinImpressions       int64      `json:"min_impressions,omitempty"`
	AvailableImpressions int64      `json:"available_impressions,omitempty"`
	Rounds               []Round    `json:"rounds,omitempty"`
}

// PlanLine is one deal of a portfolio.
type PlanLine struct {
	QuoteID     string   `json:"quote_id"`
	SellerURL   string   `json:"seller_url"`
	SellerName  string   `json:"seller_name,omitempty"`
	Protocol    Protocol `json:"protocol,omitempty" desc:"iab-seller-agent (also when absent) or adcp: how the line is booked."`
	PackageID   string   `json:"package_id"`
	ProductID   string   `json:"product_id,omitempty"`
	DealType    string   `json:"deal_type,omitempty"`
	Formats     []string `json:"formats,omitempty"`
	Tier        Tier     `json:"tier,omitempty" desc:"Identity tier the quote was priced at; booking uses the same credential."`
	CPMMicros   Micros   `json:"cpm_micros" desc:"The quote's CPM in micros, exactly as quoted."`
	Impressions int64    `json:"impressions"`
	SpendMicros Micros   `json:"spend_micros" desc:"impressions x cpm_micros / 1000, rounded up to the micro: what the seller will book."`
	Score       float64  `json:"score,omitempty"`
	Reason      string   `json:"reason"`
}

// PlanExclusion says why a quote is not in the portfolio.
type PlanExclusion struct {
	QuoteID   string `json:"quote_id,omitempty"`
	SellerURL string `json:"seller_url"`
	PackageID string `json:"package_id,omitempty"`
	Reason    string `json:"reason"`
}

// PortfolioProposed is the booker's chosen portfolio, awaiting approval.
type PortfolioProposed struct {
	CampaignID       string          `json:"campaign_id"`
	BudgetMicros     Micros          `json:"budget_micros" desc:"Budget this plan had to fit, in micros."`
	TotalSpendMicros Micros          `json:"total_spend_micros" desc:"Sum of the lines' spend_micros; never above budget_micros."`
	TotalValue       float64         `json:"total_value" desc:"Optimiser score of the plan (unitless)."`
	Lines            []PlanLine      `json:"lines"`
	Excluded         []PlanExclusion `json:"excluded,omitempty" desc:"Quotes and sellers left out, each with the reason, most relevant first (bookable quotes the optimiser did not choose, then what could not be planned)."`
	ExcludedTotal    int             `json:"excluded_total,omitempty" desc:"How many exclusions there were, when more than excluded lists: a campaign with thousands of quotes keeps the event under the size limit by listing the first ones; notes then count the rest by kind."`
	Notes            []string        `json:"notes,omitempty"`
	AutoApprove      bool            `json:"auto_approve"`
	Revision         int             `json:"revision" desc:"1 for the first plan, higher after a re-plan."`
}

// PortfolioApproved approves some or all lines of a proposed portfolio.
type PortfolioApproved struct {
	CampaignID string     `json:"campaign_id"`
	ApprovedBy string     `json:"approved_by" desc:"auto, or the approving user/API key label."`
	Revision   int        `json:"revision"`
	Lines      []PlanLine `json:"lines"`
}

// LineApproved is one line of an approved portfolio, handed to the booker
// on its own so that a seller stalling on one line never holds back the
// others: each line books, retries and reports its outcome by itself.
type LineApproved struct {
	CampaignID   string   `json:"campaign_id"`
	PlanRevision int      `json:"plan_revision" desc:"The plan revision the line belongs to."`
	ApprovedBy   string   `json:"approved_by" desc:"auto, or the approving user/API key label."`
	LineKey      string   `json:"line_key" desc:"The line's key in the booking ledger (seller, package and quote): DealBooked and BookingFailed carry it too."`
	Lines        int      `json:"lines" desc:"How many lines the approval has: the campaign finishes when each has an outcome."`
	Line         PlanLine `json:"line"`
}

// DealBooked is a booked deal, ready for DSP activation and finance.
type DealBooked struct {
	CampaignID             string            `json:"campaign_id"`
	LineKey                string            `json:"line_key,omitempty" desc:"The approved line this deal books (LineApproved.line_key)."`
	PlanRevision           int               `json:"plan_revision,omitempty" desc:"The plan revision the line was approved in."`
	ChangeID               string            `json:"change_id,omitempty" desc:"Set when a line change booked this deal after the campaign's booking (an IAB budget change's additional deal, a line a reallocation added): the LineChangeRequested.change_id. Such a deal is not part of the booked portfolio (the campaign's deals and total spend); the line's budget and the ledger's committed spend include it."`
	Reconciled             bool              `json:"reconciled,omitempty" desc:"True when the deal was found by asking the seller (reconciliation), after the outcome of booking it was unknown."`
	SellerURL              string            `json:"seller_url"`
	SellerName             string            `json:"seller_name,omitempty"`
	Protocol               Protocol          `json:"protocol,omitempty" desc:"How downstream systems tell the two kinds apart: iab-seller-agent (also when absent) is a deal with a deal_id to activate in a DSP; adcp is a media buy inside the seller's ad server, identified by media_buy_id + seller_package_id + revision, with an empty deal_id and no activation instructions."`
	PackageID              string            `json:"package_id" desc:"dealflow's package id (AdCP: product_id/pricing_option_id)."`
	ProductID              string            `json:"product_id,omitempty"`
	QuoteID                string            `json:"quote_id"`
	DealID                 string            `json:"deal_id" desc:"The seller's deal id, used in the DSP; empty for an AdCP media buy."`
	MediaBuyID             string            `json:"media_buy_id,omitempty" desc:"AdCP: the seller's media_buy_id."`
	MCPEndpoint            string            `json:"mcp_endpoint,omitempty" desc:"AdCP: the sales agent's MCP endpoint the buy was made at, where its delivery is read; empty means seller_url."`
	SellerPackageID        string            `json:"seller_package_id,omitempty" desc:"AdCP: the seller's package_id of this line inside the media buy."`
	Revision               int               `json:"revision,omitempty" desc:"AdCP: the media buy's revision (1 at creation, raised by every change the seller accepts)."`
	MediaBuyStatus         string            `json:"media_buy_status,omitempty" desc:"AdCP: the media buy's status when booked (pending_creatives, pending_start, active, ...)."`
	PricingOptionID        string            `json:"pricing_option_id,omitempty" desc:"AdCP: the pricing option bought."`
	DealType               string            `json:"deal_type"`
	CPMMicros              Micros            `json:"cpm_micros" desc:"CPM the seller booked, in micros."`
	AgreedCPMMicros        Micros            `json:"agreed_cpm_micros" desc:"CPM the buyer agreed, in micros."`
	CPMMismatch            bool              `json:"cpm_mismatch" desc:"True when the booked CPM differs from the agreed CPM: an alarm."`
	Impressions            int64             `json:"impressions"`
	SpendMicros            Micros            `json:"spend_micros" desc:"Booked amount: impressions x cpm_micros / 1000, rounded up to the micro."`
	Currency               string            `json:"currency"`
	FlightStart            string            `json:"flight_start,omitempty"`
	FlightEnd              string            `json:"flight_end,omitempty"`
	Tier                   Tier              `json:"tier" desc:"Identity tier the deal was priced at."`
	ActivationInstructions map[string]string `json:"activation_instructions,omitempty"`
	BidFloorMicros         Micros            `json:"bid_floor_micros,omitempty" desc:"The deal's OpenRTB bid floor, CPM in micros."`
	AuctionType            int               `json:"auction_type,omitempty"`
	OpenRTB                *OpenRTBDeal      `json:"openrtb_params,omitempty" desc:"The seller's OpenRTB deal parameters (id, bid floor in micros, auction type, allowed seats and advertiser domains), what the activator sets up in the DSP."`
	BookedAt               time.Time         `json:"booked_at"`
}

// BookingFailed records one approved line that could not be booked, or,
// with Unresolved, one whose outcome is still unknown after the booking
// horizon.
type BookingFailed struct {
	CampaignID   string   `json:"campaign_id"`
	LineKey      string   `json:"line_key,omitempty" desc:"The approved line (LineApproved.line_key)."`
	PlanRevision int      `json:"plan_revision,omitempty" desc:"The plan revision the line was approved in."`
	SellerURL    string   `json:"seller_url"`
	Protocol     Protocol `json:"protocol,omitempty" desc:"iab-seller-agent (also when absent) or adcp."`
	PackageID    string   `json:"package_id"`
	QuoteID      string   `json:"quote_id,omitempty"`
	Code         string   `json:"code" desc:"Definite failures (nothing was booked): connection_refused, unreachable, quote_expired, already_booked, rejected (AdCP: the seller refused or rejected the buy), budget, credentials, ...; not_booked (the seller confirmed, after an unknown outcome, that it booked nothing). outcome_unknown (with unresolved): the request may have been booked and the seller could not tell within the booking horizon."`
	Unresolved   bool     `json:"unresolved,omitempty" desc:"True for code outcome_unknown: the line's spend stays reserved and a reconciler keeps asking the seller; a DealBooked (reconciled) or a BookingFailed with code not_booked follows."`
	TaskID       string   `json:"task_id,omitempty" desc:"AdCP: the seller's task of a submitted buy that ended rejected or failed."`
	Reason       string   `json:"reason"`
	SpendMicros  Micros   `json:"spend_micros" desc:"Spend of the line, in micros: freed by a definite failure, still reserved while unresolved."`
}

// SkippedSeller is a seller left out, in the campaign summary.
type SkippedSeller struct {
	SellerURL string `json:"seller_url"`
	Reason    string `json:"reason"`
}

// CampaignCompleted summarises a finished campaign.
type CampaignCompleted struct {
	CampaignID       string          `json:"campaign_id"`
	Status           CampaignStatus  `json:"status" desc:"How the campaign ended: completed (every approved line booked), partial (some booked, some failed; or some unresolved), empty (nothing bookable), failed (nothing booked, or it could not be planned) or rejected."`
	BudgetMicros     Micros          `json:"budget_micros" desc:"The campaign budget, in micros."`
	TotalSpendMicros Micros          `json:"total_spend_micros" desc:"Sum of the deals' spend_micros, exactly."`
	Deals            []DealBooked    `json:"deals"`
	Failed           []BookingFailed `json:"failed,omitempty"`
	Unresolved       []BookingFailed `json:"unresolved,omitempty" desc:"Lines whose outcome is unknown (code outcome_unknown): their spend stays reserved while a reconciler asks the seller."`
	SkippedSellers   []SkippedSeller `json:"skipped_sellers,omitempty"`
	SkippedTotal     int             `json:"skipped_total,omitempty" desc:"Set when skipped_sellers lists only the first skipped sellers, so the event stays within the event size limit: how many were skipped in all (each has its SellerSkipped event)."`
	DealsTotal       int             `json:"deals_total,omitempty" desc:"Set when deals lists only the first deals, so the event stays within the event size limit: how many were booked in all (each has its DealBooked event; total_spend_micros counts them all)."`
}

// Package adcp is a sandbox AdCP 3.1 sales agent: an MCP server (the
// modelcontextprotocol go-sdk) served over streamable HTTP by an
// httptest-able handler. It speaks get_adcp_capabilities, get_products
// (brief and refine modes, proposals and finalize), create_media_buy with
// its three answers (completed; submitted then completed or rejected after a
// delay; errors), the task-polling tool, get_media_buys,
// get_media_buy_delivery (booked buys deliver over their flights, on an
// accelerated clock if asked, with delivery faults), idempotent replay
// and IDEMPOTENCY_CONFLICT, push-notification webhooks, bearer-token auth and
// the IAB sandbox sellers' fault knobs (sandbox.Faults: latency, jitter,
// down, error_rate, garbage, truncated, oversized, slow_body).
package adcp

import (
	"net/http"
	"time"

	"github.com/dealflow/dealflow/internal/sandbox"
)

// Config configures one sandbox sales agent. The zero value is a working
// agent with the default catalog, no tokens (so only public, unpriced
// get_products) and immediate approval.
type Config struct {
	// Name is the agent's MCP implementation name (default "dealflow-sandbox-adcp").
	Name string `json:"name,omitempty"`
	// NoContextEcho leaves a buy's context out of get_media_buys, as AdCP
	// 3.0 sellers (the SDK's) do; 3.1 requires the echo.
	NoContextEcho bool `json:"no_context_echo,omitempty"`
	// Tokens maps a bearer token to the principal it authenticates. A request
	// without a token is public: capabilities and unpriced products only.
	Tokens map[string]Principal `json:"tokens,omitempty"`
	// Products replaces the default catalog (DefaultCatalog) when non-nil.
	Products []Product `json:"products,omitempty"`
	// Proposals enables proposals in brief mode and refine/finalize.
	Proposals bool `json:"proposals,omitempty"`
	// RefuseProposals lists products the agent will not put in a
	// proposal: a refine including one answers POLICY_VIOLATION.
	RefuseProposals []string `json:"refuse_proposals,omitempty"`
	// ProposalHold is how long a finalized proposal is held (default 1h).
	ProposalHold time.Duration `json:"-"`
	// MaxPageSize caps get_products pages (default 100).
	MaxPageSize int `json:"max_page_size,omitempty"`
	// ApprovalDelay is how long a buy that needs human approval stays
	// submitted before it is decided (default 200ms).
	ApprovalDelay time.Duration `json:"-"`
	// RejectSubmitted makes every submitted buy end rejected (TERMS_REJECTED)
	// instead of completed.
	RejectSubmitted bool `json:"reject_submitted,omitempty"`
	// PollingTool is the name of the task-status tool (default
	// "get_task_status"; real agents also use e.g. "tasks_get").
	PollingTool string `json:"polling_tool,omitempty"`
	// RequireSigningFor lists operations whose requests must be RFC 9421
	// signed (advertised in request_signing.required_for; the sandbox does
	// not verify signatures, it refuses such calls).
	RequireSigningFor []string `json:"require_signing_for,omitempty"`
	// ReplayTTL is the idempotency replay window (default 24h, at least 1h
	// as the schema requires).
	ReplayTTL time.Duration `json:"-"`
	// Faults are the IAB sandbox sellers' failure knobs.
	Faults sandbox.Faults `json:"faults"`
	// Delivery is how the agent's media buys deliver over their flights
	// (get_media_buy_delivery), per product a package books, with its
	// faults (sandbox.Delivery).
	Delivery sandbox.DeliveryConfig `json:"delivery,omitempty"`
	// TimeScale accelerates the buys' flights: one flight day lasts this
	// long from the buy's confirmation (sandbox.WithTimeScale); 0 is real
	// time.
	TimeScale time.Duration `json:"-"`
	// WebhookClient posts push notifications (default: 5s timeout client).
	WebhookClient *http.Client `json:"-"`
	// Now is the clock (default time.Now).
	Now func() time.Time `json:"-"`
}

// Principal is who a bearer token authenticates: the AdCP account and the
// brand its buys are for.
type Principal struct {
	AccountID   string `json:"account_id"`
	Operator    string `json:"operator,omitempty"`
	BrandDomain string `json:"brand_domain,omitempty"`
}

// Product is a catalog product with its CPM pricing options.
type Product struct {
	ID              string          `json:"product_id"`
	Name            string          `json:"name"`
	Description     string          `json:"description"`
	Channel         string          `json:"channel"` // ctv | olv | display
	DeliveryType    string          `json:"delivery_type"`
	PublisherDomain string          `json:"publisher_domain"`
	Formats         []string        `json:"formats"`
	Pricing         []PricingOption `json:"pricing"`
	// ManualApproval makes create_media_buy answer submitted for buys that
	// include this product.
	ManualApproval bool `json:"manual_approval,omitempty"`
}

// PricingOption is a CPM option in currency units (dollars), as on the
// AdCP wire: FixedPrice > 0 is a fixed price; otherwise an auction with
// FloorPrice and Guidance.
type PricingOption struct {
	ID         string         `json:"pricing_option_id"`
	Currency   string         `json:"currency"`
	FixedPrice float64        `json:"fixed_price,omitempty"`
	FloorPrice float64        `json:"floor_price,omitempty"`
	Guidance   *PriceGuidance `json:"price_guidance,omitempty"`
	MinSpend   float64        `json:"min_spend_per_package,omitempty"`
}

// PriceGuidance is the auction clearing-price percentiles.
type PriceGuidance struct {
	P25 float64 `json:"p25,omitempty"`
	P50 float64 `json:"p50,omitempty"`
	P75 float64 `json:"p75,omitempty"`
	P90 float64 `json:"p90,omitempty"`
}

// CreativeAgent is the agent_url of the sandbox's format ids.
const CreativeAgent = "https://creative.adcontextprotocol.org"

// DefaultCatalog is a small CTV / video / display catalog with fixed and
// auction CPM options and minimum spends.
func DefaultCatalog() []Product {
	return []Product{
		{ID: "ctv_prime_guaranteed", Name: "CTV Prime Time (guaranteed)", Description: "Premium connected-TV inventory, prime-time daypart, fixed CPM.",
			Channel: "ctv", DeliveryType: "guaranteed", PublisherDomain: "streamco.example", Formats: []string{"video_30s", "video_15s"},
			Pricing: []PricingOption{{ID: "ctv_prime_fixed_usd", Currency: "USD", FixedPrice: 42.5, MinSpend: 5000}}, ManualApproval: true},
		{ID: "ctv_run_of_network", Name: "CTV Run of Network", Description: "Connected-TV run of network, auction with a floor.",
			Channel: "ctv", DeliveryType: "non_guaranteed", PublisherDomain: "streamco.example", Formats: []string{"video_30s"},
			Pricing: []PricingOption{{ID: "ctv_ron_auction_usd", Currency: "USD", FloorPrice: 18, Guidance: &PriceGuidance{P25: 20, P50: 24, P75: 28, P90: 33}, MinSpend: 1000}}},
		{ID: "olv_sports_preroll", Name: "Sports Pre-roll Video", Description: "Online video pre-roll on sports sites, fixed or auction.",
			Channel: "olv", DeliveryType: "guaranteed", PublisherDomain: "sportsnet.example", Formats: []string{"video_15s"},
			Pricing: []PricingOption{
				{ID: "olv_sports_fixed_usd", Currency: "USD", FixedPrice: 22, MinSpend: 2000},
				{ID: "olv_sports_auction_usd", Currency: "USD", FloorPrice: 12, Guidance: &PriceGuidance{P25: 13.5, P50: 15, P75: 17.25, P90: 19}, MinSpend: 500},
			}},
		{ID: "display_news_300x250", Name: "News Medium Rectangle", Description: "300x250 display on news sites, auction.",
			Channel: "display", DeliveryType: "non_guaranteed", PublisherDomain: "dailynews.example", Formats: []string{"display_300x250"},
			Pricing: []PricingOption{{ID: "display_news_auction_usd", Currency: "USD", FloorPrice: 2.5, Guidance: &PriceGuidance{P25: 3, P50: 3.75, P75: 4.5, P90: 5.5}, MinSpend: 250}}},
		{ID: "display_homepage_takeover", Name: "Homepage Takeover", Description: "Fixed-price homepage takeover, 970x250 billboard.",
			Channel: "display", DeliveryType: "guaranteed", PublisherDomain: "dailynews.example", Formats: []string{"display_970x250"},
			Pricing: []PricingOption{{ID: "display_takeover_fixed_usd", Currency: "USD", FixedPrice: 12.75, MinSpend: 3000}}},
	}
}

package adcp

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"golang.org/x/text/currency"

	"github.com/dealflow/dealflow/pkg/events"
)

// AccountRef is core/account-ref.json: either AccountID, or Brand+Operator
// (natural key).
type AccountRef struct {
	AccountID string    `json:"account_id,omitempty"`
	Brand     *BrandRef `json:"brand,omitempty"`
	Operator  string    `json:"operator,omitempty"`
	Sandbox   bool      `json:"sandbox,omitempty"`
}

// BrandRef is core/brand-ref.json (the domain is required).
type BrandRef struct {
	Domain string `json:"domain"`
}

// FormatID is core/format-id.json.
type FormatID struct {
	AgentURL string `json:"agent_url"`
	ID       string `json:"id"`
}

// Capabilities is the part of get_adcp_capabilities the buyer uses.
type Capabilities struct {
	ADCP struct {
		MajorVersions     []int    `json:"major_versions"`
		SupportedVersions []string `json:"supported_versions,omitempty"`
		BuildVersion      string   `json:"build_version,omitempty"`
		Idempotency       struct {
			Supported        bool `json:"supported"`
			ReplayTTLSeconds int  `json:"replay_ttl_seconds,omitempty"`
		} `json:"idempotency"`
	} `json:"adcp"`
	SupportedProtocols []string `json:"supported_protocols"`
	Account            *struct {
		RequireOperatorAuth bool     `json:"require_operator_auth,omitempty"`
		SupportedBilling    []string `json:"supported_billing,omitempty"`
		Sandbox             bool     `json:"sandbox,omitempty"`
	} `json:"account,omitempty"`
	MediaBuy *struct {
		SupportedPricingModels []string `json:"supported_pricing_models,omitempty"`
		BuyingModes            []string `json:"buying_modes,omitempty"`
		SupportsProposals      bool     `json:"supports_proposals,omitempty"`
	} `json:"media_buy,omitempty"`
	RequestSigning *struct {
		Supported    bool     `json:"supported"`
		RequiredFor  []string `json:"required_for,omitempty"`
		SupportedFor []string `json:"supported_for,omitempty"`
	} `json:"request_signing,omitempty"`
	// FetchedAt is when the client fetched these capabilities.
	FetchedAt time.Time `json:"-"`
}

// Operations this client performs; RequiresSigning and SkipReason take them.
const (
	OpGetProducts    = "get_products"
	OpCreateMediaBuy = "create_media_buy"
	OpGetMediaBuys   = "get_media_buys"
	OpGetTaskStatus  = "get_task_status"
	// OpGetMediaBuyDelivery reads booked buys' delivery (the pacer).
	OpGetMediaBuyDelivery = "get_media_buy_delivery"
	// OpUpdateMediaBuy changes a booked buy (the booker's line changes).
	OpUpdateMediaBuy = "update_media_buy"
)

// RequiresSigning reports whether the seller requires RFC 9421 request
// signing for op (request_signing.required_for). This client cannot sign.
func RequiresSigning(caps *Capabilities, op string) bool {
	if caps == nil || caps.RequestSigning == nil {
		return false
	}
	for _, o := range caps.RequestSigning.RequiredFor {
		if o == op {
			return true
		}
	}
	return false
}

// SkipReason returns why a buyer that cannot sign must skip this seller for
// ops (by default every operation the client performs), or "".
func SkipReason(caps *Capabilities, ops ...string) string {
	if len(ops) == 0 {
		ops = []string{OpGetProducts, OpCreateMediaBuy, OpGetMediaBuys, OpGetTaskStatus}
	}
	for _, op := range ops {
		if RequiresSigning(caps, op) {
			return "seller requires RFC 9421 request signing for " + op + " (request_signing.required_for); dealflow does not sign requests"
		}
	}
	return ""
}

// SupportsBuyingMode reports whether get_products accepts mode ("brief" is
// the default when the seller does not say).
func (c *Capabilities) SupportsBuyingMode(mode string) bool {
	if c == nil || c.MediaBuy == nil || len(c.MediaBuy.BuyingModes) == 0 {
		return mode == "brief"
	}
	for _, m := range c.MediaBuy.BuyingModes {
		if m == mode {
			return true
		}
	}
	return false
}

// Product is core/product.json with money in micros.
type Product struct {
	ProductID      string
	Name           string
	Description    string
	Channels       []string
	DeliveryType   string // guaranteed | non_guaranteed
	FormatIDs      []FormatID
	PricingOptions []PricingOption
	// PublisherDomains are the publisher_domain(s) of publisher_properties.
	PublisherDomains []string
	ExpiresAt        time.Time // zero when the product does not expire
	// Forecast is the seller's delivery forecast for the query (nil when
	// it sent none).
	Forecast *Forecast
	// Raw is the product as the seller sent it.
	Raw json.RawMessage
}

// Forecast is core/delivery-forecast.json, the part the buyer reads:
// availability points (no budget: the inventory available) and spend-curve
// points (impressions a budget buys).
type Forecast struct {
	Unit     string // forecast_range_unit: spend (default) | availability | ...
	Method   string // estimate | modeled | guaranteed
	Currency string
	Points   []ForecastPoint
}

// ForecastPoint is one core/forecast-point.json with its budget in micros
// (0 for an availability point) and the impressions range.
type ForecastPoint struct {
	Label        string
	BudgetMicros events.Micros
	Impressions  ForecastRange
}

// ForecastRange is a low/mid/high forecast range (0 = not sent).
type ForecastRange struct {
	Low, Mid, High int64
}

// Likely is the range's mid, else its low, else its high.
func (r ForecastRange) Likely() int64 {
	switch {
	case r.Mid > 0:
		return r.Mid
	case r.Low > 0:
		return r.Low
	}
	return r.High
}

// Available is the inventory the forecast says is available: the
// impressions of its availability point (a point without a budget, or any
// point of an "availability" forecast), 0 when it has none. A spend curve
// says what a budget buys, not what is available.
func (f *Forecast) Available() int64 {
	if f == nil {
		return 0
	}
	var best int64
	for _, p := range f.Points {
		if p.BudgetMicros == 0 || f.Unit == "availability" {
			best = max(best, p.Impressions.Likely())
		}
	}
	return best
}

// ImpressionsFor is what the forecast's spend curve says budget buys: the
// impressions of the point with exactly that budget, else interpolated
// linearly between the nearest points around it (or scaled from the
// nearest point below). 0 when the curve has no budget points.
func (f *Forecast) ImpressionsFor(budget events.Micros) int64 {
	if f == nil || budget <= 0 {
		return 0
	}
	var lo, hi *ForecastPoint
	for i := range f.Points {
		p := &f.Points[i]
		if p.BudgetMicros <= 0 || p.Impressions.Likely() <= 0 {
			continue
		}
		if p.BudgetMicros <= budget && (lo == nil || p.BudgetMicros > lo.BudgetMicros) {
			lo = p
		}
		if p.BudgetMicros >= budget && (hi == nil || p.BudgetMicros < hi.BudgetMicros) {
			hi = p
		}
	}
	switch {
	case lo != nil && hi != nil && lo.BudgetMicros == hi.BudgetMicros:
		return lo.Impressions.Likely()
	case lo != nil && hi != nil:
		a, b := float64(lo.Impressions.Likely()), float64(hi.Impressions.Likely())
		f := float64(budget-lo.BudgetMicros) / float64(hi.BudgetMicros-lo.BudgetMicros)
		return int64(a + (b-a)*f)
	case lo != nil:
		return int64(float64(lo.Impressions.Likely()) * float64(budget) / float64(lo.BudgetMicros))
	case hi != nil:
		return int64(float64(hi.Impressions.Likely()) * float64(budget) / float64(hi.BudgetMicros))
	}
	return 0
}

// PricingOption is a pricing option with its amounts in micros of Currency.
// A fixed price has Fixed set (FixedPriceMicros); otherwise it is an auction
// with an optional floor and price guidance, and the buyer bids BidPrice
// between the floor and its ceiling. Priced is false when the seller sent
// no amount at all (the public tier).
type PricingOption struct {
	PricingOptionID  string
	PricingModel     string // cpm, vcpm, cpcv, ...
	Currency         string
	Fixed            bool
	FixedPriceMicros events.Micros
	FloorPriceMicros events.Micros // 0 when none
	Guidance         *PriceGuidance
	MinSpendMicros   events.Micros // min_spend_per_package; 0 when none
	MaxBid           bool
	Priced           bool
}

// IsAuction reports an auction option (no fixed price).
func (p PricingOption) IsAuction() bool { return !p.Fixed }

// PriceGuidance is the auction clearing-price percentiles in micros (0 = not sent).
type PriceGuidance struct {
	P25, P50, P75, P90 events.Micros
}

// Proposal is core/proposal.json.
type Proposal struct {
	ProposalID  string
	Name        string
	Description string
	Status      string // draft | committed; "" = ready to buy
	ExpiresAt   time.Time
	Allocations []Allocation
	// Budget guidance in micros of BudgetCurrency (0 = not sent).
	MinBudgetMicros, MaxBudgetMicros events.Micros
	BudgetCurrency                   string
}

// Allocation is core/product-allocation.json.
type Allocation struct {
	ProductID       string
	Percentage      float64
	PricingOptionID string
}

// Products is the result of GetProducts / Refine, every page merged.
type Products struct {
	Products   []Product
	Proposals  []Proposal
	CacheScope string // public | account
	// Refinements are refinement_applied entries (refine mode).
	Refinements []Refinement
	Pages       int
	// Truncated is set when the seller had more pages than MaxPages.
	Truncated bool
	// Notes say what else the client asked and why (GetProductsAnyPricing).
	Notes []string
}

// Refinement is one refine[] entry (request) or refinement_applied entry
// (response: Status applied|partial|unable, Notes).
type Refinement struct {
	Scope      string `json:"scope"` // request | product | proposal
	ProductID  string `json:"product_id,omitempty"`
	ProposalID string `json:"proposal_id,omitempty"`
	Action     string `json:"action,omitempty"` // include | omit | more_like_this | finalize
	Ask        string `json:"ask,omitempty"`
	Status     string `json:"status,omitempty"`
	Notes      string `json:"notes,omitempty"`
}

// MediaBuyRequest is a create_media_buy. IdempotencyKey is required
// (16-255 of [A-Za-z0-9_.:-]); use a key derived from the booking decision
// (IdempotencyKey) so a retry or a restart replays rather than double-books.
type MediaBuyRequest struct {
	IdempotencyKey string
	Account        AccountRef
	Brand          BrandRef
	Start          time.Time // zero = "asap"
	End            time.Time
	Packages       []PackageRequest
	// ProposalID buys a committed proposal with TotalBudgetMicros instead of Packages.
	ProposalID        string
	TotalBudgetMicros events.Micros
	Currency          string // of TotalBudgetMicros (default USD)
	PONumber          string
	Push              *PushConfig
	// Context is echoed by the seller on read surfaces (get_media_buys):
	// the buyer's own reference to find the buy again when the answer to
	// create_media_buy was lost.
	Context map[string]string
}

// PackageRequest is media-buy/package-request.json in micros.
type PackageRequest struct {
	ProductID       string
	PricingOptionID string
	BudgetMicros    events.Micros
	// BidPriceMicros is the CPM bid for auction options (0 = none).
	BidPriceMicros events.Micros
	Impressions    int64
	Pacing         string // even | asap | front_loaded
}

// PushConfig asks the seller to POST task updates (core/push-notification-config.json).
type PushConfig struct {
	URL         string
	OperationID string
	// Token is echoed in the payload (16+ characters).
	Token Secret
	// BearerCredentials, when set, is sent by the seller as
	// "Authorization: Bearer ..." on the webhook (32+ characters).
	BearerCredentials Secret
}

// MediaBuy is a create_media_buy answer or a get_media_buys entry. Status is
// the task status (completed, submitted, rejected, ...); MediaBuyID is empty
// until the buy is confirmed. An AdCP booking has no deal id: downstream
// systems keep (MediaBuyID, Packages[].PackageID, Revision).
type MediaBuy struct {
	Status            string
	TaskID            string
	Message           string
	MediaBuyID        string
	MediaBuyStatus    string // pending_creatives, pending_start, active, ...
	Revision          int
	ConfirmedAt       time.Time
	Currency          string
	TotalBudgetMicros events.Micros
	StartTime         time.Time
	EndTime           time.Time
	Packages          []Package
	Replayed          bool
	// Context is the context sent with create_media_buy, as the seller
	// echoes it (string values only).
	Context map[string]string
}

// Booked reports a confirmed buy (a media_buy_id was assigned).
func (m *MediaBuy) Booked() bool { return m != nil && m.MediaBuyID != "" }

// Package is a booked package (core/package.json) in micros.
type Package struct {
	PackageID       string
	ProductID       string
	PricingOptionID string
	BudgetMicros    events.Micros
	BidPriceMicros  events.Micros
	Impressions     int64
	// Paused and Canceled are the package's state (get_media_buys,
	// update_media_buy's affected packages).
	Paused, Canceled bool
}

// TaskStatus is get_task_status's answer.
type TaskStatus struct {
	TaskID      string
	TaskType    string
	Status      string // submitted, working, input-required, completed, canceled, failed, rejected, auth-required, unknown
	CreatedAt   time.Time
	UpdatedAt   time.Time
	CompletedAt time.Time
	// Error is the task's error (failed/rejected), if the seller sent one.
	Error *Error
	// MediaBuy is the create_media_buy result of a finished task, when asked for and sent.
	MediaBuy *MediaBuy
}

// Final reports a terminal task status.
func (t *TaskStatus) Final() bool {
	switch t.Status {
	case "completed", "canceled", "failed", "rejected":
		return true
	}
	return false
}

// MinorUnitFloor rounds an amount down to its currency's minor unit (ISO
// 4217 via golang.org/x/text/currency: cents for USD and EUR, whole yen for
// JPY, mills for KWD). AdCP money is a JSON number in the currency, and a
// seller books what it can bill: a budget of 59999.996 USD is refused or
// silently rounded, possibly up. Rounding down never exceeds the amount the
// buyer agreed to. An unknown currency is taken to have two decimals.
func MinorUnitFloor(m events.Micros, cur string) events.Micros {
	scale := 2
	if u, err := currency.ParseISO(currencyOr(cur)); err == nil {
		scale, _ = currency.Standard.Rounding(u)
	}
	if scale >= 6 || m <= 0 {
		return m
	}
	step := events.Micros(1)
	for range 6 - scale {
		step *= 10
	}
	return m - m%step
}

// decimal renders micros as an exact decimal JSON number ("12.5", "0.000001").
func decimal(m events.Micros) json.Number {
	neg := m < 0
	u := uint64(m)
	if neg {
		u = uint64(-m)
	}
	s := strconv.FormatUint(u/1_000_000, 10)
	if f := u % 1_000_000; f != 0 {
		fs := fmt.Sprintf("%06d", f)
		for fs[len(fs)-1] == '0' {
			fs = fs[:len(fs)-1]
		}
		s += "." + fs
	}
	if neg {
		s = "-" + s
	}
	return json.Number(s)
}

// micros converts a wire amount once; a missing amount is 0.
func micros(f *float64, field string) (events.Micros, error) {
	if f == nil {
		return 0, nil
	}
	m, err := events.MicrosFromDollars(*f)
	if err != nil {
		return 0, badResponse(field+": "+err.Error(), err)
	}
	if m < 0 {
		return 0, badResponse(field+": negative amount", nil)
	}
	return m, nil
}

func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

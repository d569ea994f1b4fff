package events

import (
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"
)

// SubjectRoot is the first token of every pipeline event subject.
const SubjectRoot = "dealflow"

// TypePrefix prefixes every CloudEvents type this project defines.
const TypePrefix = "com.dealflow."

// Kind describes one event type of the public contract.
type Kind struct {
	// Name is the Go and documentation name, e.g. "CampaignRequested".
	Name string
	// Type is the CloudEvents type, reverse-DNS and versioned.
	Type string
	// Subject is the NATS subject without the trailing campaign-id token.
	Subject string
	// Doc says what fact the event records.
	Doc string
	// payload returns a pointer to a zero payload, used to decode and to
	// generate the schema; typ is its type.
	payload func() any
	typ     reflect.Type
}

// SubjectFor returns the NATS subject of this kind for one campaign.
func (k Kind) SubjectFor(campaignID string) string { return k.Subject + "." + campaignID }

// Filter returns the NATS filter matching this kind for every campaign.
func (k Kind) Filter() string { return k.Subject + ".*" }

// SchemaFile is the schema's file name under pkg/events/schemas.
func (k Kind) SchemaFile() string { return strings.TrimPrefix(k.Type, TypePrefix) + ".json" }

// NewPayload returns a pointer to a zero value of the kind's payload type.
func (k Kind) NewPayload() any { return k.payload() }

func kind(name, noun, verb, doc string, payload func() any) Kind {
	return Kind{
		Name:    name,
		Type:    TypePrefix + noun + "." + verb + ".v1",
		Subject: SubjectRoot + "." + noun + "." + verb,
		Doc:     doc,
		payload: payload,
		typ:     reflect.TypeOf(payload()).Elem(),
	}
}

// The event kinds of the pipeline, in pipeline order.
var (
	KindCampaignRequested = kind("CampaignRequested", "campaign", "requested",
		"A buyer asked for a campaign to be shopped and booked.", func() any { return new(CampaignRequested) })
	KindCampaignRejected = kind("CampaignRejected", "campaign", "rejected",
		"A campaign request was refused (invalid brief) or its portfolio was rejected.", func() any { return new(CampaignRejected) })
	KindSellerFound = kind("SellerFound", "seller", "found",
		"The discoverer found a usable seller and decided what identity it may see.", func() any { return new(SellerFound) })
	KindSellerSkipped = kind("SellerSkipped", "seller", "skipped",
		"A seller was left out of the campaign, with the reason.", func() any { return new(SellerSkipped) })
	KindDiscoveryCompleted = kind("DiscoveryCompleted", "discovery", "completed",
		"The discoverer finished: which sellers were found, which sources answered.", func() any { return new(DiscoveryCompleted) })
	KindPackageFound = kind("PackageFound", "package", "found",
		"The kitfetcher found a package that fits the brief, with its price and terms.", func() any { return new(PackageFound) })
	KindQuoteReady = kind("QuoteReady", "quote", "ready",
		"The negotiator finished with one package: agreed price, fixed price, or why not.", func() any { return new(QuoteReady) })
	KindShoppingDeadlinePassed = kind("ShoppingDeadlinePassed", "campaign", "deadline",
		"The shopping window ended: the booker plans with the quotes it has.", func() any { return new(ShoppingDeadlinePassed) })
	KindPortfolioProposed = kind("PortfolioProposed", "portfolio", "proposed",
		"The booker chose the best portfolio within the budget and explained it.", func() any { return new(PortfolioProposed) })
	KindPortfolioApproved = kind("PortfolioApproved", "portfolio", "approved",
		"The portfolio (or a subset of it) was approved for booking.", func() any { return new(PortfolioApproved) })
	KindLineApproved = kind("LineApproved", "line", "approved",
		"One approved line of a portfolio, to be booked on its own: the approval fans out into one per line.", func() any { return new(LineApproved) })
	KindDealBooked = kind("DealBooked", "deal", "booked",
		"A deal was booked with a seller; carries the seller's deal id for activation.", func() any { return new(DealBooked) })
	KindBookingFailed = kind("BookingFailed", "booking", "failed",
		"Booking one approved line failed, with the reason; or its outcome is unknown (unresolved) after the booking horizon.", func() any { return new(BookingFailed) })
	KindCampaignCompleted = kind("CampaignCompleted", "campaign", "completed",
		"The campaign reached its end: what was booked and spent.", func() any { return new(CampaignCompleted) })
	KindDeliveryDue = kind("DeliveryDue", "delivery", "due",
		"The pacer's schedule: one booked line's delivery is due to be read (published by the pacer's sweeper).", func() any { return new(DeliveryDue) })
	KindDeliveryReported = kind("DeliveryReported", "delivery", "reported",
		"A snapshot of one booked line's delivery to date (impressions, spend) against its plan for that point of the flight.", func() any { return new(DeliveryReported) })
	KindPacingDeviation = kind("PacingDeviation", "pacing", "deviation",
		"A booked line delivers outside the pacing tolerance (under or over its plan to date), or its seller stopped reporting.", func() any { return new(PacingDeviation) })
)

// The kinds of activation and of the buyer side of the IAB Deals API
// (pkg/events/deals.go).
var (
	KindDealReceived = kind("DealReceived", "deal", "received",
		"A seller pushed deal terms to the buyer's deal endpoint (IAB Deals API); the deal waits for approval.", func() any { return new(DealReceived) })
	KindDealApproved = kind("DealApproved", "deal", "approved",
		"The buyer approved a pushed deal through the bookings API: it is to be activated.", func() any { return new(DealApproved) })
	KindDealRejected = kind("DealRejected", "deal", "rejected",
		"The buyer rejected a pushed deal through the bookings API.", func() any { return new(DealRejected) })
	KindDealActivated = kind("DealActivated", "deal", "activated",
		"A deal is set up in the DSP: its buyer seat status is ready_to_serve.", func() any { return new(DealActivated) })
	KindDealActivationFailed = kind("DealActivationFailed", "activation", "failed",
		"An attempt to activate a deal in the DSP failed: retried with the same idempotency key, or final.", func() any { return new(DealActivationFailed) })
)

// The kinds of line changes after the booking (pkg/events/changes.go).
var (
	KindLineChangeRequested = kind("LineChangeRequested", "line", "change_requested",
		"A change to one booked line is asked for (pause, resume, cancel, set_budget), by the bookings API or a reallocation.", func() any { return new(LineChangeRequested) })
	KindLineChanged = kind("LineChanged", "line", "changed",
		"The booker applied a line change at the seller: the line's budget before and after, the campaign's committed spend.", func() any { return new(LineChanged) })
	KindLineChangeFailed = kind("LineChangeFailed", "line", "change_failed",
		"A line change was not applied (over budget, unsupported, refused by the seller, unknown line), with the reason.", func() any { return new(LineChangeFailed) })
	KindLinePaused = kind("LinePaused", "line", "paused",
		"A booked line was paused at its seller.", func() any { return new(LinePaused) })
	KindLineResumed = kind("LineResumed", "line", "resumed",
		"A paused line was resumed at its seller.", func() any { return new(LineResumed) })
	KindDealCancelled = kind("DealCancelled", "deal", "cancelled",
		"A booked deal (IAB) or media-buy package (AdCP) was cancelled at its seller.", func() any { return new(DealCancelled) })
)

// The kinds of reallocation (pkg/events/reallocation.go).
var (
	KindReallocationProposed = kind("ReallocationProposed", "reallocation", "proposed",
		"The reallocator proposes to move budget from a line that cannot deliver it to lines that can, or to pause a line that overspends: a new revision with a reason per move.", func() any { return new(ReallocationProposed) })
	KindReallocationApproved = kind("ReallocationApproved", "reallocation", "approved",
		"A proposed reallocation was approved (automatically, as the brief asked, or through the bookings API): it is to be applied.", func() any { return new(ReallocationApproved) })
	KindReallocationRejected = kind("ReallocationRejected", "reallocation", "rejected",
		"The buyer rejected a proposed reallocation through the bookings API: nothing changes.", func() any { return new(ReallocationRejected) })
	KindReallocationApplied = kind("ReallocationApplied", "reallocation", "applied",
		"Every line change of an approved reallocation was applied at the sellers.", func() any { return new(ReallocationApplied) })
	KindReallocationFailed = kind("ReallocationFailed", "reallocation", "failed",
		"An approved reallocation was applied only in part or not at all, with each move's and change's outcome.", func() any { return new(ReallocationFailed) })
)

// Kinds lists every event kind of the contract.
var Kinds = []Kind{
	KindCampaignRequested, KindCampaignRejected, KindSellerFound, KindSellerSkipped,
	KindDiscoveryCompleted, KindPackageFound, KindQuoteReady, KindShoppingDeadlinePassed, KindPortfolioProposed,
	KindPortfolioApproved, KindLineApproved, KindDealBooked, KindBookingFailed, KindCampaignCompleted,
	KindDealReceived, KindDealApproved, KindDealRejected, KindDealActivated, KindDealActivationFailed,
	KindDeliveryDue, KindDeliveryReported, KindPacingDeviation,
	KindLineChangeRequested, KindLineChanged, KindLineChangeFailed, KindLinePaused, KindLineResumed, KindDealCancelled,
	KindReallocationProposed, KindReallocationApproved, KindReallocationRejected, KindReallocationApplied, KindReallocationFailed,
}

var kindByType = func() map[string]Kind {
	m := make(map[string]Kind, len(Kinds))
	for _, k := range Kinds {
		m[k.Type] = k
	}
	return m
}()

// KindOf returns the kind of a CloudEvents type.
func KindOf(ceType string) (Kind, bool) {
	k, ok := kindByType[ceType]
	return k, ok
}

// Types returns every CloudEvents type, sorted.
func Types() []string {
	out := make([]string, 0, len(Kinds))
	for _, k := range Kinds {
		out = append(out, k.Type)
	}
	sort.Strings(out)
	return out
}

var campaignIDRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidateCampaignID checks that id can be a NATS subject token and a KV key:
// 1 to 64 letters, digits, '-' or '_'.
func ValidateCampaignID(id string) error {
	if !campaignIDRe.MatchString(id) {
		return fmt.Errorf("%w: campaign id %q must be 1-64 characters of [A-Za-z0-9_-]", ErrInvalid, id)
	}
	return nil
}

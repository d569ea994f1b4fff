package events

import "time"

// After the booking: activating deals in a DSP, and the buyer side of the
// IAB Deals API v1.0 (sellers push deal terms to the buyer and ask for the
// deal's buyer seat status).

// SeatStatus is a deal's buyer seat status, the IAB Deals API v1.0
// lifecycle a seller reads at {buyer_url}/{deal_id}/status:
// pending → approved → ready_to_serve → active → complete, or rejected.
type SeatStatus string

// Buyer seat statuses, in lifecycle order.
const (
	// SeatPending: a seller pushed the deal; it waits for the buyer's approval.
	SeatPending SeatStatus = "pending"
	// SeatApproved: the buyer accepted the terms (by approving a pushed deal,
	// or by booking it); it is not yet set up in the DSP.
	SeatApproved SeatStatus = "approved"
	// SeatRejected: the buyer refused a pushed deal.
	SeatRejected SeatStatus = "rejected"
	// SeatReadyToServe: the deal is set up in the DSP (DealActivated); its
	// flight has not started.
	SeatReadyToServe SeatStatus = "ready_to_serve"
	// SeatActive: set up in the DSP and inside its flight.
	SeatActive SeatStatus = "active"
	// SeatComplete: its flight has ended.
	SeatComplete SeatStatus = "complete"
)

// SeatStatuses lists every buyer seat status; the schemas' enum comes from it.
var SeatStatuses = []SeatStatus{SeatPending, SeatApproved, SeatRejected, SeatReadyToServe, SeatActive, SeatComplete}

// EnumValues implements Enum.
func (SeatStatus) EnumValues() []string { return enumStrings(SeatStatuses) }

// Valid reports whether s is one of the statuses.
func (s SeatStatus) Valid() bool {
	for _, x := range SeatStatuses {
		if s == x {
			return true
		}
	}
	return false
}

// Origins of a deal the activator follows.
const (
	// OriginBooked: dealflow booked the deal (DealBooked); booking it was
	// the buyer's approval.
	OriginBooked = "booked"
	// OriginPushed: a seller pushed the deal to the buyer's deal endpoint;
	// it is activated only once approved through the bookings API.
	OriginPushed = "pushed"
)

// OpenRTBDeal is the deal as it appears in the bid stream (the OpenRTB
// Deal object a seller gives with the deal: openrtb_params), with its bid
// floor in micros.
type OpenRTBDeal struct {
	ID             string   `json:"id" desc:"The deal id bid requests carry (pmp.deals[].id)."`
	BidFloorMicros Micros   `json:"bidfloor_micros" desc:"bidfloor, CPM in micros."`
	Currency       string   `json:"currency,omitempty" desc:"bidfloorcur, ISO 4217 (USD)."`
	AuctionType    int      `json:"at,omitempty" desc:"OpenRTB auction type as the seller gave it (1 first price, 2 second price plus, 3 the floor is the agreed deal price)."`
	WSeat          []string `json:"wseat,omitempty" desc:"Buyer seats allowed to bid on the deal."`
	WADomain       []string `json:"wadomain,omitempty" desc:"Advertiser domains allowed to bid on the deal."`
}

// DealTerms are the terms of a deal as activated in the DSP: what a seller
// pushed (IAB Deals API deal object) or what dealflow booked.
type DealTerms struct {
	DealID                 string            `json:"deal_id" desc:"The seller's deal id, used in the DSP."`
	Name                   string            `json:"name,omitempty"`
	DealType               string            `json:"deal_type" desc:"PG, PD or PA."`
	SellerURL              string            `json:"seller_url" desc:"Canonical URL of the seller (for a pushed deal: the seller its token belongs to)."`
	SellerName             string            `json:"seller_name,omitempty"`
	SellerID               string            `json:"seller_id,omitempty" desc:"The seller's own organisation id, as it pushed it."`
	SellerDomain           string            `json:"seller_domain,omitempty" desc:"The seller's domain, as it pushed it."`
	FixedCPMMicros         Micros            `json:"fixed_cpm_micros,omitempty" desc:"PG and PD: the fixed CPM, in micros."`
	FloorCPMMicros         Micros            `json:"floor_cpm_micros,omitempty" desc:"PA: the floor CPM, in micros."`
	Currency               string            `json:"currency" desc:"ISO 4217; only USD."`
	Impressions            int64             `json:"impressions,omitempty"`
	FlightStart            string            `json:"flight_start,omitempty" desc:"YYYY-MM-DD."`
	FlightEnd              string            `json:"flight_end,omitempty" desc:"YYYY-MM-DD."`
	BuyerSeatIDs           []string          `json:"buyer_seat_ids,omitempty" desc:"DSP seats the deal is for (OpenRTB wseat)."`
	ActivationInstructions map[string]string `json:"activation_instructions,omitempty" desc:"The seller's instructions per DSP (ttd, dv360, xandr, ...)."`
	OpenRTB                *OpenRTBDeal      `json:"openrtb_params,omitempty"`
	Inventory              map[string]any    `json:"inventory,omitempty" desc:"The seller's product or package references, as pushed."`
	Curation               map[string]any    `json:"curation,omitempty" desc:"A curator overlay, as pushed."`
	SellerStatus           string            `json:"seller_status,omitempty" desc:"The seller's own status of the deal when pushed (pending, active, paused, archived)."`
}

// DealReceived records deal terms a seller pushed to the buyer's deal
// endpoint. A pushed deal belongs to no campaign: its events carry a
// campaign id of their own (deal-<hash of seller and deal id>), so
// dealflow.*.*.<that id> follows the deal.
type DealReceived struct {
	CampaignID string     `json:"campaign_id" desc:"The pushed deal's own subject id: deal-<hash>."`
	DealKey    string     `json:"deal_key" desc:"The deal's key in the buyer seat store (seller and deal id)."`
	Terms      DealTerms  `json:"terms"`
	Status     SeatStatus `json:"status" desc:"The buyer seat status the seller was answered: pending for a new deal or new terms; the current status for a deal already known."`
	ReceivedAt time.Time  `json:"received_at"`
}

// DealApproved approves a pushed deal for activation (through the bookings
// API): the activator sets it up in the DSP.
type DealApproved struct {
	CampaignID string    `json:"campaign_id"`
	DealKey    string    `json:"deal_key"`
	ApprovedBy string    `json:"approved_by" desc:"api, or the approving user."`
	Terms      DealTerms `json:"terms" desc:"The terms approved: exactly those the seller last pushed."`
	ApprovedAt time.Time `json:"approved_at"`
}

// DealRejected records that the buyer refused a pushed deal.
type DealRejected struct {
	CampaignID string    `json:"campaign_id"`
	DealKey    string    `json:"deal_key"`
	DealID     string    `json:"deal_id"`
	SellerURL  string    `json:"seller_url"`
	RejectedBy string    `json:"rejected_by"`
	Reason     string    `json:"reason"`
	RejectedAt time.Time `json:"rejected_at"`
}

// DealActivated says a deal is set up in the DSP: its buyer seat status is
// ready_to_serve (active once its flight starts).
type DealActivated struct {
	CampaignID     string     `json:"campaign_id"`
	DealKey        string     `json:"deal_key"`
	LineKey        string     `json:"line_key,omitempty" desc:"For a booked deal: its line (DealBooked.line_key)."`
	Origin         string     `json:"origin" desc:"booked (DealBooked) or pushed (a seller pushed it, the buyer approved it)."`
	DealID         string     `json:"deal_id"`
	SellerURL      string     `json:"seller_url"`
	DSP            string     `json:"dsp" desc:"Which activator set it up: webhook (a signed POST) or file (a signed file)."`
	DSPRef         string     `json:"dsp_ref,omitempty" desc:"The DSP's own reference for the activation, when it gave one."`
	IdempotencyKey string     `json:"idempotency_key" desc:"The key every attempt for this deal carried: one deal, one activation."`
	Attempts       int        `json:"attempts" desc:"Attempts it took, this one included."`
	SeatStatus     SeatStatus `json:"seat_status" desc:"The buyer seat status after activation: ready_to_serve."`
	ActivatedAt    time.Time  `json:"activated_at"`
}

// DealActivationFailed records a failed activation attempt: retryable (the
// activator tries again after a backoff) or final (the DSP refused the
// deal, or the attempts ran out).
type DealActivationFailed struct {
	CampaignID string `json:"campaign_id"`
	DealKey    string `json:"deal_key"`
	LineKey    string `json:"line_key,omitempty"`
	Origin     string `json:"origin"`
	DealID     string `json:"deal_id"`
	SellerURL  string `json:"seller_url"`
	DSP        string `json:"dsp"`
	Attempt    int    `json:"attempt" desc:"Which attempt failed, from 1."`
	Code       string `json:"code" desc:"refused (the DSP refused the deal), http_error, timeout, unreachable, io (file activator), gave_up (the attempts ran out)."`
	Reason     string `json:"reason"`
	Retryable  bool   `json:"retryable" desc:"True: another attempt follows after a backoff, with the same idempotency key. False: no more attempts; the deal stays approved and not ready to serve."`
}

// Validate checks the payload against the contract (its kind's schema); the
// error is a *FieldError naming the field.
func (d DealReceived) Validate() error {
	return join(checkCampaignID("", d.CampaignID), checkEnum("", "status", d.Status, SeatStatuses, false))
}

// Validate checks the payload against the contract (its kind's schema); the
// error is a *FieldError naming the field.
func (d DealApproved) Validate() error { return checkCampaignID("", d.CampaignID) }

// Validate checks the payload against the contract (its kind's schema); the
// error is a *FieldError naming the field.
func (d DealRejected) Validate() error { return checkCampaignID("", d.CampaignID) }

// Validate checks the payload against the contract (its kind's schema); the
// error is a *FieldError naming the field.
func (d DealActivated) Validate() error {
	return join(checkCampaignID("", d.CampaignID), checkEnum("", "seat_status", d.SeatStatus, SeatStatuses, false))
}

// Validate checks the payload against the contract (its kind's schema); the
// error is a *FieldError naming the field.
func (d DealActivationFailed) Validate() error { return checkCampaignID("", d.CampaignID) }

func (d DealReceived) campaign() string         { return d.CampaignID }
func (d DealApproved) campaign() string         { return d.CampaignID }
func (d DealRejected) campaign() string         { return d.CampaignID }
func (d DealActivated) campaign() string        { return d.CampaignID }
func (d DealActivationFailed) campaign() string { return d.CampaignID }

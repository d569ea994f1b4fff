package events

import "time"

// After the booking a line is followed for its flight: the pacer reads its
// delivery from the seller on a schedule (DeliveryDue), publishes each
// reading as a snapshot against the line's plan (DeliveryReported) and says
// when a line strays from its plan beyond the tolerance (PacingDeviation).
// A snapshot is identified by its line and its seq: seq counts a line's
// snapshots from 0 without a gap, and each (line_key, seq) is published
// once, under an id derived from them alone.

// PacingStatus is where a line's delivery stands against its plan at one
// snapshot.
type PacingStatus string

// Pacing statuses.
const (
	// PacingNotStarted: the flight had not begun at as_of; nothing is
	// expected yet.
	PacingNotStarted PacingStatus = "not_started"
	// PacingEarly: less than PacingJudgedFrom of the flight has elapsed,
	// too little for a ratio to mean anything.
	PacingEarly PacingStatus = "early"
	// PacingOnTrack: the pacing index is within the tolerance of 1.
	PacingOnTrack PacingStatus = "on_track"
	// PacingUnder: the line delivers below 1 - tolerance of its plan to
	// date (a line that never started is under, at 0).
	PacingUnder PacingStatus = "under"
	// PacingOver: the line delivers above 1 + tolerance of its plan to
	// date.
	PacingOver PacingStatus = "over"
	// PacingNotReporting: the seller's delivery could not be read for this
	// snapshot; its numbers are the last ones read.
	PacingNotReporting PacingStatus = "not_reporting"
	// PacingPaused: the line is paused at its seller (LinePaused): its
	// pace is not judged until it is resumed.
	PacingPaused PacingStatus = "paused"
	// PacingCancelled: the line was cancelled at its seller
	// (DealCancelled): this is its final snapshot, not judged.
	PacingCancelled PacingStatus = "cancelled"
)

// PacingStatuses lists every status; the schemas' enum comes from it.
var PacingStatuses = []PacingStatus{PacingNotStarted, PacingEarly, PacingOnTrack, PacingUnder, PacingOver, PacingNotReporting, PacingPaused, PacingCancelled}

// EnumValues implements Enum.
func (PacingStatus) EnumValues() []string { return enumStrings(PacingStatuses) }

// PacingJudgedFrom is the share of the flight before which a line's pace is
// not judged (status early): a few hours into a month-long flight, a
// seller's reporting delay alone makes any ratio meaningless.
const PacingJudgedFrom = 0.05

// Deviation is the direction of a PacingDeviation.
type Deviation string

// Deviation directions.
const (
	DeviationUnder        Deviation = "under"
	DeviationOver         Deviation = "over"
	DeviationNotReporting Deviation = "not_reporting"
)

// Deviations lists every direction; the schemas' enum comes from it.
var Deviations = []Deviation{DeviationUnder, DeviationOver, DeviationNotReporting}

// EnumValues implements Enum.
func (Deviation) EnumValues() []string { return enumStrings(Deviations) }

// DeviationOf is the deviation a snapshot's status is, if any.
func DeviationOf(s PacingStatus) (Deviation, bool) {
	switch s {
	case PacingUnder:
		return DeviationUnder, true
	case PacingOver:
		return DeviationOver, true
	case PacingNotReporting:
		return DeviationNotReporting, true
	}
	return "", false
}

// DeliveryDue is the pacer's schedule at work: one booked line's delivery
// is due to be read. The pacer's sweeper publishes it from the schedule it
// keeps in JetStream; the pacer's consumer reads the seller and publishes
// the snapshot.
type DeliveryDue struct {
	CampaignID string    `json:"campaign_id"`
	LineKey    string    `json:"line_key" desc:"The booked line (DealBooked.line_key)."`
	Seq        int       `json:"seq" desc:"The snapshot this reading makes (DeliveryReported.seq)."`
	Round      int       `json:"round,omitempty" desc:"0; 1, 2, ... when the sweeper published the due reading again because no pacer had taken it up."`
	DueAt      time.Time `json:"due_at" desc:"When the reading fell due (wall clock)."`
}

// DeliveryReported is one snapshot of a booked line's delivery: what the
// seller says was delivered and spent to date, against what the line's plan
// expects by then.
type DeliveryReported struct {
	CampaignID          string       `json:"campaign_id"`
	LineKey             string       `json:"line_key" desc:"The booked line (DealBooked.line_key); with seq it identifies the snapshot."`
	Seq                 int          `json:"seq" desc:"The line's snapshot number: 0, 1, 2, ... without a gap. Each (line_key, seq) is published once, under an id derived from them."`
	Final               bool         `json:"final,omitempty" desc:"The flight's last snapshot, read at or after its end: the line's schedule ends here."`
	SellerURL           string       `json:"seller_url"`
	SellerName          string       `json:"seller_name,omitempty"`
	Protocol            Protocol     `json:"protocol,omitempty" desc:"iab-seller-agent (also when absent): read with GET /api/v1/deals/{deal_id}/performance; adcp: read with get_media_buy_delivery."`
	PackageID           string       `json:"package_id"`
	DealID              string       `json:"deal_id,omitempty" desc:"IAB: the deal whose performance was read."`
	MediaBuyID          string       `json:"media_buy_id,omitempty" desc:"AdCP: the media buy whose delivery was read."`
	SellerPackageID     string       `json:"seller_package_id,omitempty" desc:"AdCP: the seller's package of this line inside the media buy."`
	FlightStart         string       `json:"flight_start" desc:"The flight's first day, YYYY-MM-DD (UTC)."`
	FlightEnd           string       `json:"flight_end" desc:"The flight's last day, YYYY-MM-DD (UTC), included."`
	DueAt               time.Time    `json:"due_at" desc:"The schedule slot this reading answers, on the line's flight clock (real time, or the accelerated clock of --time-scale)."`
	AsOf                time.Time    `json:"as_of" desc:"The flight-clock time the numbers are as of: the seller's report time when it gives a plausible one, else the reading's."`
	ReadAt              time.Time    `json:"read_at" desc:"Wall-clock time of the reading."`
	FlightElapsed       float64      `json:"flight_elapsed" desc:"Share of the flight elapsed at as_of, 0 to 1 (4 decimals)."`
	Impressions         int64        `json:"impressions" desc:"Impressions delivered to date, as the seller counts them."`
	SpendMicros         Micros       `json:"spend_micros" desc:"Spend to date, in micros: AdCP the seller's reported spend; IAB impressions x the seller's average CPM (the booked CPM when it reports none) / 1000, rounded up."`
	PlannedImpressions  int64        `json:"planned_impressions" desc:"The line's booked impressions for the whole flight (with its additional deals, or scaled to its budget after a set_budget)."`
	PlannedSpendMicros  Micros       `json:"planned_spend_micros" desc:"The line's budget for the whole flight: DealBooked.spend_micros, or its budget after a set_budget (LineChanged.budget_after_micros); an IAB line's additional deals included."`
	ExpectedImpressions int64        `json:"expected_impressions" desc:"What the plan expects delivered by as_of: planned_impressions x flight_elapsed (even pacing over the flight)."`
	ExpectedSpendMicros Micros       `json:"expected_spend_micros" desc:"planned_spend_micros x flight_elapsed."`
	PacingIndex         float64      `json:"pacing_index" desc:"spend_micros / expected_spend_micros (4 decimals): 1 on plan, below 1 behind, above 1 ahead; 0 while nothing is expected."`
	Status              PacingStatus `json:"status" desc:"not_started, early (under 5% of the flight elapsed: not judged), on_track, under or over (beyond the pacer's tolerance), not_reporting (the seller could not be read; the numbers are the last ones read), paused (the line is paused at its seller: not judged), cancelled (the line was cancelled: its final snapshot, not judged)."`
	SellerStatus        string       `json:"seller_status,omitempty" desc:"The seller's own word: IAB delivery_pacing (not_started, on_track, behind); AdCP the media buy's status (pending_start, active, completed, ...)."`
	Error               string       `json:"error,omitempty" desc:"With status not_reporting: why the seller could not be read."`
	MissedReadings      int          `json:"missed_readings,omitempty" desc:"How many readings of this line in a row have failed, this one included."`
}

// PacingDeviation says a booked line delivers outside the pacer's tolerance,
// or that its seller stopped reporting, with the numbers of the snapshot
// that showed it. It is published with each such snapshot; since_seq names
// the episode, so a consumer can act once per episode.
type PacingDeviation struct {
	CampaignID           string    `json:"campaign_id"`
	LineKey              string    `json:"line_key" desc:"The booked line (DealBooked.line_key)."`
	Seq                  int       `json:"seq" desc:"The snapshot (DeliveryReported.seq) that showed the deviation."`
	SinceSeq             int       `json:"since_seq" desc:"The first snapshot of this run of snapshots deviating in the same direction: (line_key, direction, since_seq) names one episode."`
	Direction            Deviation `json:"direction" desc:"under (delivering below 1 - tolerance of the plan to date, or not at all), over (above 1 + tolerance) or not_reporting (the seller failed two readings or more in a row)."`
	Final                bool      `json:"final,omitempty" desc:"Shown by the flight's last snapshot."`
	SellerURL            string    `json:"seller_url"`
	SellerName           string    `json:"seller_name,omitempty"`
	Protocol             Protocol  `json:"protocol,omitempty" desc:"iab-seller-agent (also when absent) or adcp."`
	PackageID            string    `json:"package_id"`
	DealID               string    `json:"deal_id,omitempty"`
	MediaBuyID           string    `json:"media_buy_id,omitempty"`
	SellerPackageID      string    `json:"seller_package_id,omitempty"`
	AsOf                 time.Time `json:"as_of" desc:"The flight-clock time the numbers are as of."`
	FlightElapsed        float64   `json:"flight_elapsed" desc:"Share of the flight elapsed at as_of, 0 to 1."`
	PacingIndex          float64   `json:"pacing_index" desc:"spend_micros / expected_spend_micros of the snapshot."`
	Tolerance            float64   `json:"tolerance" desc:"The pacer's tolerance (--pacing-tolerance): a line deviates below 1 - tolerance or above 1 + tolerance."`
	Impressions          int64     `json:"impressions"`
	ExpectedImpressions  int64     `json:"expected_impressions"`
	PlannedImpressions   int64     `json:"planned_impressions"`
	SpendMicros          Micros    `json:"spend_micros"`
	ExpectedSpendMicros  Micros    `json:"expected_spend_micros"`
	PlannedSpendMicros   Micros    `json:"planned_spend_micros"`
	ProjectedSpendMicros Micros    `json:"projected_spend_micros" desc:"Spend by the flight's end if the line keeps the pace it had so far: spend_micros / flight_elapsed, rounded down (the spend itself once the flight has ended)."`
	Reason               string    `json:"reason"`
}

func (d DeliveryDue) campaign() string      { return d.CampaignID }
func (d DeliveryReported) campaign() string { return d.CampaignID }
func (d PacingDeviation) campaign() string  { return d.CampaignID }

// Validate checks the payload against the contract (its kind's schema); the
// error is a *FieldError naming the field.
func (d DeliveryDue) Validate() error { return checkCampaignID("", d.CampaignID) }

// Validate checks the payload against the contract (its kind's schema); the
// error is a *FieldError naming the field.
func (d DeliveryReported) Validate() error {
	return join(checkCampaignID("", d.CampaignID),
		checkEnum("", "protocol", d.Protocol, Protocols, true),
		checkEnum("", "status", d.Status, PacingStatuses, false))
}

// Validate checks the payload against the contract (its kind's schema); the
// error is a *FieldError naming the field.
func (d PacingDeviation) Validate() error {
	return join(checkCampaignID("", d.CampaignID),
		checkEnum("", "direction", d.Direction, Deviations, false),
		checkEnum("", "protocol", d.Protocol, Protocols, true))
}

package api

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/dealflow/dealflow/internal/campaign"
	"github.com/dealflow/dealflow/pkg/events"
)

// DeliveryKinds are the events GET /bookings/{id}/delivery is assembled
// from: the booked lines, their snapshots and deviations, and the deals'
// activations.
var DeliveryKinds = []events.Kind{events.KindDealBooked, events.KindDeliveryReported, events.KindPacingDeviation,
	events.KindDealActivated, events.KindDealActivationFailed, events.KindCampaignCompleted}

// Delivery is the GET /bookings/{id}/delivery answer: each booked line
// followed over its flight, as the event stream tells it.
type Delivery struct {
	CampaignID string `json:"campaign_id"`
	// Completed: the campaign's booking ended (CampaignCompleted); Done:
	// completed and every booked line has had its final snapshot, so
	// nothing more will be reported.
	Completed            bool           `json:"completed"`
	Done                 bool           `json:"done"`
	PlannedSpendMicros   events.Micros  `json:"planned_spend_micros"`
	DeliveredSpendMicros events.Micros  `json:"delivered_spend_micros"`
	DeliveredImpressions int64          `json:"delivered_impressions"`
	Lines                []DeliveryLine `json:"lines"`
	Activations          []Activation   `json:"activations"`
	LastEventID          string         `json:"last_event_id,omitempty"`
	lineIndex            map[string]int
	activationIndex      map[string]int
	deviationSeen        map[string]bool
}

// DeliveryLine is one booked line: its deals, its snapshots (seq order)
// and its deviations, with the latest snapshot's numbers at the top.
type DeliveryLine struct {
	LineKey             string              `json:"line_key"`
	SellerURL           string              `json:"seller_url"`
	SellerName          string              `json:"seller_name,omitempty"`
	Protocol            events.Protocol     `json:"protocol"`
	PackageID           string              `json:"package_id"`
	DealIDs             []string            `json:"deal_ids"`
	MediaBuyID          string              `json:"media_buy_id,omitempty"`
	FlightStart         string              `json:"flight_start,omitempty"`
	FlightEnd           string              `json:"flight_end,omitempty"`
	PlannedImpressions  int64               `json:"planned_impressions"`
	PlannedSpendMicros  events.Micros       `json:"planned_spend_micros"`
	Status              string              `json:"status"`
	Final               bool                `json:"final"`
	Impressions         int64               `json:"impressions"`
	SpendMicros         events.Micros       `json:"spend_micros"`
	ExpectedSpendMicros events.Micros       `json:"expected_spend_micros"`
	PacingIndex         float64             `json:"pacing_index"`
	FlightElapsed       float64             `json:"flight_elapsed"`
	Snapshots           []DeliverySnapshot  `json:"snapshots"`
	Deviations          []DeliveryDeviation `json:"deviations"`
}

// DeliverySnapshot is one DeliveryReported of a line, reduced to what a
// chart and a table need.
type DeliverySnapshot struct {
	Seq                 int                 `json:"seq"`
	Final               bool                `json:"final"`
	AsOf                time.Time           `json:"as_of"`
	FlightElapsed       float64             `json:"flight_elapsed"`
	Impressions         int64               `json:"impressions"`
	ExpectedImpressions int64               `json:"expected_impressions"`
	SpendMicros         events.Micros       `json:"spend_micros"`
	ExpectedSpendMicros events.Micros       `json:"expected_spend_micros"`
	PacingIndex         float64             `json:"pacing_index"`
	Status              events.PacingStatus `json:"status"`
	SellerStatus        string              `json:"seller_status,omitempty"`
	Error               string              `json:"error,omitempty"`
}

// DeliveryDeviation is one PacingDeviation of a line.
type DeliveryDeviation struct {
	Seq                  int              `json:"seq"`
	SinceSeq             int              `json:"since_seq"`
	Direction            events.Deviation `json:"direction"`
	Final                bool             `json:"final"`
	AsOf                 time.Time        `json:"as_of"`
	FlightElapsed        float64          `json:"flight_elapsed"`
	PacingIndex          float64          `json:"pacing_index"`
	Tolerance            float64          `json:"tolerance"`
	SpendMicros          events.Micros    `json:"spend_micros"`
	ExpectedSpendMicros  events.Micros    `json:"expected_spend_micros"`
	ProjectedSpendMicros events.Micros    `json:"projected_spend_micros"`
	Reason               string           `json:"reason"`
}

// Activation is where one booked deal stands in the DSP: activated, or its
// latest failed attempt (retrying or final).
type Activation struct {
	DealKey   string    `json:"deal_key"`
	DealID    string    `json:"deal_id"`
	LineKey   string    `json:"line_key,omitempty"`
	SellerURL string    `json:"seller_url"`
	DSP       string    `json:"dsp"`
	Status    string    `json:"status"`
	DSPRef    string    `json:"dsp_ref,omitempty"`
	Attempts  int       `json:"attempts"`
	Code      string    `json:"code,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	At        time.Time `json:"at,omitzero"`
}

// NewDelivery is an empty view of a campaign's delivery.
func NewDelivery(campaignID string) *Delivery {
	return &Delivery{CampaignID: campaignID, Lines: []DeliveryLine{}, Activations: []Activation{},
		lineIndex: map[string]int{}, activationIndex: map[string]int{}, deviationSeen: map[string]bool{}}
}

func (d *Delivery) line(key string) *DeliveryLine {
	i, ok := d.lineIndex[key]
	if !ok {
		i = len(d.Lines)
		d.lineIndex[key] = i
		d.Lines = append(d.Lines, DeliveryLine{LineKey: key, Status: "scheduled", DealIDs: []string{}, Snapshots: []DeliverySnapshot{}, Deviations: []DeliveryDeviation{}})
	}
	return &d.Lines[i]
}

// Add folds one event into the view. Snapshots and deviations are kept
// once per (line, seq) and per (line, direction, seq) whatever the order
// or repetition of the events.
func (d *Delivery) Add(e events.Event) {
	p, _, err := events.Payload(e)
	if err != nil {
		return
	}
	switch p := p.(type) {
	case *events.DealBooked:
		l := d.line(campaign.DealLineKey(p))
		l.SellerURL, l.SellerName, l.PackageID = p.SellerURL, p.SellerName, p.PackageID
		l.Protocol = p.Protocol
		if l.Protocol == "" {
			l.Protocol = events.ProtocolIAB
		}
		if id := cmp.Or(p.DealID, p.MediaBuyID); id != "" && !slices.Contains(l.DealIDs, id) {
			l.DealIDs = append(l.DealIDs, id)
			if len(l.Snapshots) == 0 {
				l.PlannedImpressions += p.Impressions
				l.PlannedSpendMicros += p.SpendMicros
			}
		}
		l.MediaBuyID = cmp.Or(l.MediaBuyID, p.MediaBuyID)
		l.FlightStart, l.FlightEnd = cmp.Or(l.FlightStart, p.FlightStart), cmp.Or(l.FlightEnd, p.FlightEnd)
	case *events.DeliveryReported:
		l := d.line(p.LineKey)
		l.SellerURL, l.SellerName, l.PackageID = cmp.Or(l.SellerURL, p.SellerURL), cmp.Or(l.SellerName, p.SellerName), cmp.Or(l.PackageID, p.PackageID)
		l.Protocol = cmp.Or(l.Protocol, p.Protocol, events.ProtocolIAB)
		l.FlightStart, l.FlightEnd = cmp.Or(l.FlightStart, p.FlightStart), cmp.Or(l.FlightEnd, p.FlightEnd)
		s := DeliverySnapshot{Seq: p.Seq, Final: p.Final, AsOf: p.AsOf, FlightElapsed: p.FlightElapsed, Impressions: p.Impressions,
			ExpectedImpressions: p.ExpectedImpressions, SpendMicros: p.SpendMicros, ExpectedSpendMicros: p.ExpectedSpendMicros,
			PacingIndex: p.PacingIndex, Status: p.Status, SellerStatus: p.SellerStatus, Error: p.Error}
		i, found := slices.BinarySearchFunc(l.Snapshots, p.Seq, func(s DeliverySnapshot, seq int) int { return s.Seq - seq })
		if found {
			return
		}
		l.Snapshots = slices.Insert(l.Snapshots, i, s)
		if i == len(l.Snapshots)-1 {
			// The latest snapshot (the plan as the pacer knows it: it
			// follows a budget change the booking events may not show).
			l.Status, l.Final = string(p.Status), p.Final
			l.Impressions, l.SpendMicros, l.ExpectedSpendMicros = p.Impressions, p.SpendMicros, p.ExpectedSpendMicros
			l.PacingIndex, l.FlightElapsed = p.PacingIndex, p.FlightElapsed
			l.PlannedImpressions, l.PlannedSpendMicros = p.PlannedImpressions, p.PlannedSpendMicros
		}
	case *events.PacingDeviation:
		key := p.LineKey + "|" + string(p.Direction) + "|" + strconv.Itoa(p.Seq)
		if d.deviationSeen[key] {
			return
		}
		d.deviationSeen[key] = true
		l := d.line(p.LineKey)
		l.SellerURL, l.SellerName, l.PackageID = cmp.Or(l.SellerURL, p.SellerURL), cmp.Or(l.SellerName, p.SellerName), cmp.Or(l.PackageID, p.PackageID)
		dv := DeliveryDeviation{Seq: p.Seq, SinceSeq: p.SinceSeq, Direction: p.Direction, Final: p.Final, AsOf: p.AsOf, FlightElapsed: p.FlightElapsed,
			PacingIndex: p.PacingIndex, Tolerance: p.Tolerance, SpendMicros: p.SpendMicros, ExpectedSpendMicros: p.ExpectedSpendMicros,
			ProjectedSpendMicros: p.ProjectedSpendMicros, Reason: p.Reason}
		i, _ := slices.BinarySearchFunc(l.Deviations, p.Seq, func(x DeliveryDeviation, seq int) int { return x.Seq - seq })
		l.Deviations = slices.Insert(l.Deviations, i, dv)
	case *events.DealActivated:
		a := d.activation(p.DealKey)
		*a = Activation{DealKey: p.DealKey, DealID: p.DealID, LineKey: p.LineKey, SellerURL: p.SellerURL, DSP: p.DSP, Status: "activated",
			DSPRef: p.DSPRef, Attempts: p.Attempts, At: p.ActivatedAt}
	case *events.DealActivationFailed:
		a := d.activation(p.DealKey)
		if a.Status == "activated" {
			return // a late report of an attempt before the one that worked
		}
		status := "failed"
		if p.Retryable {
			status = "retrying"
		}
		*a = Activation{DealKey: p.DealKey, DealID: p.DealID, LineKey: p.LineKey, SellerURL: p.SellerURL, DSP: p.DSP, Status: status,
			Attempts: max(a.Attempts, p.Attempt), Code: p.Code, Reason: p.Reason, At: e.Time()}
	case *events.CampaignCompleted:
		d.Completed = true
	}
}

func (d *Delivery) activation(key string) *Activation {
	i, ok := d.activationIndex[key]
	if !ok {
		i = len(d.Activations)
		d.activationIndex[key] = i
		d.Activations = append(d.Activations, Activation{DealKey: key})
	}
	return &d.Activations[i]
}

// finish totals the lines and says whether the flight is over.
func (d *Delivery) finish() {
	d.PlannedSpendMicros, d.DeliveredSpendMicros, d.DeliveredImpressions = 0, 0, 0
	allFinal := true
	for _, l := range d.Lines {
		d.PlannedSpendMicros += l.PlannedSpendMicros
		d.DeliveredSpendMicros += l.SpendMicros
		d.DeliveredImpressions += l.Impressions
		allFinal = allFinal && l.Final
	}
	d.Done = d.Completed && allFinal
}

// delivery answers GET /bookings/{id}/delivery from the campaign's events
// in the stream at the time of the request.
func (a *server) delivery(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !validID(w, id) {
		return
	}
	ctx, cancel := storeContext(r)
	defer cancel()
	if _, err := a.campaigns.Get(ctx, id); err != nil {
		a.storeError(w, err)
		return
	}
	d := NewDelivery(id)
	var last uint64
	if err := a.pub.ReadCampaign(ctx, id, DeliveryKinds, func(seq uint64, e events.Event) bool {
		d.Add(e)
		last = seq
		return true
	}); err != nil {
		a.storeError(w, err)
		return
	}
	d.finish()
	if last > 0 {
		d.LastEventID = strconv.FormatUint(last, 10)
	}
	writeJSON(w, http.StatusOK, d)
}

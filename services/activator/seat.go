package activator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/pkg/events"
)

// Seat is one deal's record in the dealflow_deal_seats bucket: its buyer
// seat status (the IAB Deals API lifecycle a seller reads), the terms the
// buyer approved or is asked to approve, and its activation in the DSP.
// It is written only through the transitions below (Seats.Transition),
// by this stage and by the bookings API (a seller's push, the buyer's
// approval or rejection).
type Seat struct {
	Key string `json:"key"`
	// CampaignID is the subject of the deal's events: the booking
	// campaign, or deal-<hash> for a pushed deal (PushedCampaignID).
	CampaignID string `json:"campaign_id"`
	LineKey    string `json:"line_key,omitempty"`
	Origin     string `json:"origin"`
	// Status is the stored status: pending, approved, rejected or
	// ready_to_serve; active and complete follow from the flight
	// (StatusAt).
	Status events.SeatStatus `json:"status"`
	Terms  events.DealTerms  `json:"terms"`
	// TermsHash identifies the terms last pushed (or booked): an
	// approval names it, so terms a seller changes while a buyer
	// approves are never approved unseen.
	TermsHash  string     `json:"terms_hash"`
	Pushes     int        `json:"pushes,omitempty"`
	ReceivedAt time.Time  `json:"received_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
	DecidedBy  string     `json:"decided_by,omitempty"`
	DecidedAt  *time.Time `json:"decided_at,omitempty"`
	// ApprovedHash is the TermsHash that was approved (or booked).
	ApprovedHash string          `json:"approved_hash,omitempty"`
	Reason       string          `json:"reason,omitempty"`
	Activation   ActivationState `json:"activation"`
	History      []Step          `json:"history,omitempty"`
}

// ActivationState is a deal's activation: one idempotency key for every
// attempt, written before each attempt is sent.
type ActivationState struct {
	IdempotencyKey string     `json:"idempotency_key,omitempty"`
	Attempts       int        `json:"attempts,omitempty"`
	LastAttemptAt  *time.Time `json:"last_attempt_at,omitempty"`
	LastCode       string     `json:"last_code,omitempty"`
	LastError      string     `json:"last_error,omitempty"`
	// Final is set when no attempt follows: the DSP refused the deal, or
	// the attempts ran out.
	Final       bool       `json:"final,omitempty"`
	DSP         string     `json:"dsp,omitempty"`
	DSPRef      string     `json:"dsp_ref,omitempty"`
	ActivatedAt *time.Time `json:"activated_at,omitempty"`
	// EventID is the input event whose handling reached the outcome
	// (activated or final failure): its redelivery publishes the outcome
	// again under the same id, another input publishes nothing.
	EventID string `json:"event_id,omitempty"`
}

// Step is one change of a seat's status.
type Step struct {
	Status events.SeatStatus `json:"status"`
	At     time.Time         `json:"at"`
	By     string            `json:"by"`
	Note   string            `json:"note,omitempty"`
}

// maxHistory bounds a seat's history (a seller re-pushing a deal for ever
// must not grow its record without end).
const maxHistory = 50

func (s *Seat) step(st events.SeatStatus, by, note string, now time.Time) {
	if s.Status != st || len(s.History) == 0 || note != "" {
		s.History = append(s.History, Step{Status: st, At: now, By: by, Note: events.ShortReason(note)})
		if len(s.History) > maxHistory {
			s.History = slices.Delete(s.History, 1, len(s.History)-maxHistory+1)
		}
	}
	s.Status, s.UpdatedAt = st, now
}

// SeatKey is the key of a deal's record: a hash of its deal id, then of its
// seller's canonical URL, so one deal id of two sellers are two records and
// every record of a deal id is found with one key filter (Seats.Find).
func SeatKey(sellerURL, dealID string) string {
	return dealPrefix(dealID) + "." + hash16(sellerURL)
}

func dealPrefix(dealID string) string { return hash16(dealID) }

func hash16(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:8])
}

// PushedCampaignID is the subject of a pushed deal's events: a pushed deal
// belongs to no campaign, and its events follow it under its own id.
func PushedCampaignID(key string) string {
	d, s, _ := cut(key)
	return "deal-" + d + s
}

// IdempotencyKey is the key every activation attempt of the deal carries:
// one per deal (seller and deal id), whoever or whatever retries.
func IdempotencyKey(key string) string {
	d, s, _ := cut(key)
	return "dealflow-act-" + d + s
}

func cut(key string) (string, string, bool) {
	for i := 0; i < len(key); i++ {
		if key[i] == '.' {
			return key[:i], key[i+1:], true
		}
	}
	return key, "", false
}

// TermsHash identifies deal terms: equal hashes, equal terms.
func TermsHash(t events.DealTerms) string {
	b, _ := json.Marshal(t) // maps encode with sorted keys: stable
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:12])
}

// Errors of the transitions.
var (
	// ErrNotFound: no record of that deal.
	ErrNotFound = errors.New("activator: no such deal")
	// ErrState: the transition does not apply to the deal's status.
	ErrState = errors.New("activator: not allowed in this status")
)

// StateError is a refused transition: what was asked, of what status, why.
type StateError struct {
	Op     string
	Status events.SeatStatus
	Detail string
}

// Error implements error.
func (e *StateError) Error() string {
	return fmt.Sprintf("cannot %s a deal that is %s: %s", e.Op, e.Status, e.Detail)
}

// Is matches ErrState.
func (e *StateError) Is(target error) bool { return target == ErrState }

// StatusAt is the buyer seat status a seller is told at now: a deal set up
// in the DSP is ready_to_serve before its flight, active during it and
// complete after its last day (UTC). Without flight dates it stays
// ready_to_serve.
func (s Seat) StatusAt(now time.Time) events.SeatStatus {
	if s.Status != events.SeatReadyToServe {
		return s.Status
	}
	now = now.UTC()
	if end, err := time.Parse(time.DateOnly, s.Terms.FlightEnd); err == nil && !now.Before(end.AddDate(0, 0, 1)) {
		return events.SeatComplete
	}
	if start, err := time.Parse(time.DateOnly, s.Terms.FlightStart); err == nil && !now.Before(start) {
		return events.SeatActive
	}
	return events.SeatReadyToServe
}

// Receive records terms a seller pushed (by is the seller). It reports
// whether the record changed. A new deal, new terms for a pending deal,
// or new terms after a rejection (a new proposal) make it pending with
// those terms; the same terms again change nothing; other terms for a
// deal already approved are refused (a StateError): what the buyer
// approved, or booked, is not changed by a push.
func (s *Seat) Receive(exists bool, key string, t events.DealTerms, now time.Time) (bool, error) {
	h := TermsHash(t)
	if !exists {
		*s = Seat{Key: key, CampaignID: PushedCampaignID(key), Origin: events.OriginPushed, Terms: t, TermsHash: h, Pushes: 1, ReceivedAt: now}
		s.step(events.SeatPending, t.SellerURL, "pushed by the seller", now)
		return true, nil
	}
	switch s.Status {
	case events.SeatPending, events.SeatRejected:
		if h == s.TermsHash {
			return false, nil
		}
		s.Terms, s.TermsHash, s.Pushes, s.Reason, s.DecidedBy, s.DecidedAt = t, h, s.Pushes+1, "", "", nil
		s.step(events.SeatPending, t.SellerURL, "new terms pushed by the seller", now)
		return true, nil
	}
	if h == s.TermsHash {
		return false, nil
	}
	if f := materialDiff(s.Terms, t); f != "" {
		return false, &StateError{Op: "change", Status: s.Status, Detail: "the buyer approved it with another " + f + "; push a new deal id for new terms"}
	}
	return false, nil
}

// materialDiff names the first term that differs between what was approved
// and what is pushed, comparing only what both state.
func materialDiff(a, b events.DealTerms) string {
	switch {
	case a.DealType != "" && b.DealType != "" && a.DealType != b.DealType:
		return "deal_type"
	case a.FixedCPMMicros != 0 && b.FixedCPMMicros != 0 && a.FixedCPMMicros != b.FixedCPMMicros:
		return "fixed price"
	case a.FloorCPMMicros != 0 && b.FloorCPMMicros != 0 && a.FloorCPMMicros != b.FloorCPMMicros:
		return "floor price"
	case a.Impressions != 0 && b.Impressions != 0 && a.Impressions != b.Impressions:
		return "impressions"
	case a.FlightStart != "" && b.FlightStart != "" && a.FlightStart != b.FlightStart:
		return "flight_start"
	case a.FlightEnd != "" && b.FlightEnd != "" && a.FlightEnd != b.FlightEnd:
		return "flight_end"
	}
	return ""
}

// Approve approves the pending terms whose hash is termsHash (by: who).
// Approving what is already approved with those terms changes nothing and
// is no error, so an approval applied twice (by the API and by this stage)
// is one approval. Other terms, a rejected deal, or terms changed since
// the approval was asked are refused.
func (s *Seat) Approve(exists bool, termsHash, by string, now time.Time) (bool, error) {
	if !exists {
		return false, ErrNotFound
	}
	switch s.Status {
	case events.SeatPending:
		if termsHash != s.TermsHash {
			return false, &StateError{Op: "approve", Status: s.Status, Detail: "the seller pushed new terms since; review them and approve again"}
		}
		s.DecidedBy, s.DecidedAt, s.ApprovedHash = by, &now, termsHash
		s.step(events.SeatApproved, by, "", now)
		return true, nil
	case events.SeatApproved, events.SeatReadyToServe:
		if s.ApprovedHash == termsHash {
			return false, nil
		}
		return false, &StateError{Op: "approve", Status: s.Status, Detail: "it is already approved"}
	}
	return false, &StateError{Op: "approve", Status: s.Status, Detail: "it was rejected; the seller may push it again"}
}

// Reject refuses the pending deal (by: who, reason: why). Rejecting it
// again with the same terms changes nothing.
func (s *Seat) Reject(exists bool, by, reason string, now time.Time) (bool, error) {
	if !exists {
		return false, ErrNotFound
	}
	switch s.Status {
	case events.SeatPending:
		s.DecidedBy, s.DecidedAt, s.Reason = by, &now, events.ShortReason(reason)
		s.step(events.SeatRejected, by, reason, now)
		return true, nil
	case events.SeatRejected:
		return false, nil
	}
	return false, &StateError{Op: "reject", Status: s.Status, Detail: "it is already approved"}
}

// Book records a deal dealflow booked: booking it was the buyer's
// approval, so it is approved (also when the seller had pushed it first,
// or it had been rejected as a push); one already approved is left as it
// is.
func (s *Seat) Book(exists bool, key string, d *events.DealBooked, now time.Time) (bool, error) {
	t := TermsOfBooked(d)
	if exists && (s.Status == events.SeatApproved || s.Status == events.SeatReadyToServe) {
		return false, nil
	}
	if !exists {
		*s = Seat{Key: key, ReceivedAt: now}
	}
	h := TermsHash(t)
	s.CampaignID, s.LineKey, s.Origin, s.Terms, s.TermsHash = d.CampaignID, d.LineKey, events.OriginBooked, t, h
	s.DecidedBy, s.DecidedAt, s.ApprovedHash, s.Reason = "booking", &now, h, ""
	s.step(events.SeatApproved, "booking", "booked in campaign "+d.CampaignID, now)
	return true, nil
}

// TermsOfBooked are the terms of a booked IAB deal: its price as the deal
// type states it (fixed for PG and PD, the floor for PA), its flight,
// its seats and the seller's activation instructions and OpenRTB deal.
func TermsOfBooked(d *events.DealBooked) events.DealTerms {
	t := events.DealTerms{DealID: d.DealID, DealType: d.DealType, SellerURL: d.SellerURL, SellerName: d.SellerName, Currency: d.Currency,
		Impressions: d.Impressions, FlightStart: d.FlightStart, FlightEnd: d.FlightEnd, ActivationInstructions: d.ActivationInstructions, OpenRTB: d.OpenRTB}
	if t.Currency == "" {
		t.Currency = "USD"
	}
	if d.DealType == "PA" {
		t.FloorCPMMicros = d.CPMMicros
		if d.BidFloorMicros > 0 {
			t.FloorCPMMicros = d.BidFloorMicros
		}
	} else {
		t.FixedCPMMicros = d.CPMMicros
	}
	if d.OpenRTB != nil {
		t.BuyerSeatIDs = d.OpenRTB.WSeat
	}
	return t
}

// beginAttempt records an attempt before it is sent: the idempotency key
// (the deal's, the same for every attempt) and the attempt's number.
func (s *Seat) beginAttempt(now time.Time) (bool, error) {
	if s.Status != events.SeatApproved || s.Activation.Final {
		return false, &StateError{Op: "activate", Status: s.Status, Detail: "only an approved deal not given up on is activated"}
	}
	s.Activation.IdempotencyKey = IdempotencyKey(s.Key)
	s.Activation.Attempts++
	s.Activation.LastAttemptAt = &now
	s.UpdatedAt = now
	return true, nil
}

// activated records the DSP's receipt: the deal is ready to serve.
func (s *Seat) activated(dsp string, r Receipt, eventID string, now time.Time) (bool, error) {
	if s.Status == events.SeatReadyToServe {
		return false, nil
	}
	if s.Status != events.SeatApproved {
		return false, &StateError{Op: "record the activation of", Status: s.Status, Detail: "it is not approved"}
	}
	s.Activation.DSP, s.Activation.DSPRef, s.Activation.ActivatedAt, s.Activation.EventID = dsp, r.Ref, &now, eventID
	s.Activation.LastCode, s.Activation.LastError = "", ""
	note := "activated in the DSP"
	if r.Replayed {
		note += " (the DSP had it already: a retried attempt)"
	}
	s.step(events.SeatReadyToServe, "activator", note, now)
	return true, nil
}

// attemptFailed records a failed attempt; final when no attempt follows.
func (s *Seat) attemptFailed(dsp, code, reason string, final bool, eventID string, now time.Time) (bool, error) {
	s.Activation.DSP, s.Activation.LastCode, s.Activation.LastError = dsp, code, events.ShortReason(reason)
	if final {
		s.Activation.Final, s.Activation.EventID = true, eventID
		s.History = append(s.History, Step{Status: s.Status, At: now, By: "activator", Note: events.ShortReason("activation failed for good: " + reason)})
	}
	s.UpdatedAt = now
	return true, nil
}

// SeatStore is the typed KV store of the seats (bus.Store[Seat]).
type SeatStore interface {
	Get(ctx context.Context, key string) (Seat, bool, error)
	Update(ctx context.Context, key string, fn func(v *Seat, exists bool) (bool, error)) (Seat, error)
	Keys(ctx context.Context, filter string) ([]string, error)
}

// Seats is the seat records: the only way to read and write them.
type Seats struct{ store SeatStore }

// NewSeats wraps a store of seats.
func NewSeats(s SeatStore) *Seats { return &Seats{store: s} }

// OpenSeats opens the dealflow_deal_seats bucket (provisioned by the bus).
// Reads go to the bucket's stream leader: the status a seller is told and
// the decisions taken on a record follow the writes before them.
func OpenSeats(ctx context.Context, b *bus.Bus) (*Seats, error) {
	s, err := bus.OpenStore[Seat](ctx, b, bus.BucketDealSeats, bus.WithLeaderReads())
	if err != nil {
		return nil, err
	}
	return NewSeats(s), nil
}

// Transition applies fn to the record at key with a revision-checked write
// (fn may run again when another writer got there first) and returns the
// record as written, or as it stands when fn changed nothing.
func (s *Seats) Transition(ctx context.Context, key string, fn func(st *Seat, exists bool) (bool, error)) (Seat, error) {
	return s.store.Update(ctx, key, fn)
}

// Get reads one deal's record.
func (s *Seats) Get(ctx context.Context, key string) (Seat, bool, error) {
	return s.store.Get(ctx, key)
}

// Find returns the records of a deal id: one per seller that has a deal of
// that id (almost always one).
func (s *Seats) Find(ctx context.Context, dealID string) ([]Seat, error) {
	keys, err := s.store.Keys(ctx, dealPrefix(dealID)+".*")
	if err != nil {
		return nil, err
	}
	var out []Seat
	for _, k := range keys {
		v, found, err := s.store.Get(ctx, k)
		if err != nil {
			return nil, err
		}
		if found && v.Terms.DealID == dealID {
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// List returns every record, newest change first. It reads the whole
// bucket: fine for the deals of one buyer (thousands), not for millions.
func (s *Seats) List(ctx context.Context) ([]Seat, error) {
	keys, err := s.store.Keys(ctx, "")
	if err != nil {
		return nil, err
	}
	out := make([]Seat, 0, len(keys))
	for _, k := range keys {
		v, found, err := s.store.Get(ctx, k)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			continue
		}
		if found {
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].UpdatedAt.Equal(out[j].UpdatedAt) {
			return out[i].UpdatedAt.After(out[j].UpdatedAt)
		}
		return out[i].Key < out[j].Key
	})
	return out, nil
}

// Proposal names the terms a seller proposed last: their hash and how
// many changes the record has seen, so terms pushed again after others
// (A, B, A) are a new proposal.
func (s Seat) Proposal() string { return s.TermsHash + "-" + strconv.Itoa(s.Pushes) }

// EventID is the deterministic id of an event the bookings API publishes
// for a deal (what: received, approved, rejected), one per proposal
// (Seat.Proposal): a request retried after a failed publication
// re-publishes the same event, which JetStream de-duplicates.
func EventID(key, what, proposal string) string {
	return events.ChildID(key, "deals-api", what+"-"+proposal)
}

// attemptKey names the event of one attempt's failure.
func attemptKey(n int) string { return "failed-" + strconv.Itoa(n) }

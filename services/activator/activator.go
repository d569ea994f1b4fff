// Package activator is the stage that sets booked and approved deals up in
// the buyer's DSP, and the owner of each deal's buyer seat record (the IAB
// Deals API v1.0 lifecycle a seller reads at {buyer_url}/{deal_id}/status):
//
//	pending → approved → ready_to_serve → active → complete   (or rejected)
//
// A DealBooked of an IAB deal is approved by its booking; a deal a seller
// pushed (the bookings API's POST /deals) is pending until the buyer
// approves it through the API (DealApproved). Either way the stage hands
// the deal's terms — the seller's activation_instructions and
// openrtb_params — to the DSP port with the deal's one idempotency key,
// written to the seat record before each attempt, and publishes
// DealActivated (ready_to_serve) or DealActivationFailed: retryable
// failures (a 5xx, a timeout, a refused connection) are tried again after
// the runner's backoff with the same key (bus.Again: the schedule lives in
// JetStream), up to the configured attempts; a DSP refusing the deal is
// final. The status is active during the deal's flight and complete after
// it (Seat.StatusAt).
//
// An AdCP media buy is not activated: it runs inside the seller's ad
// server, there is no deal id for a DSP to target, and nothing on the
// buyer's side to set up. Its DealBooked is acknowledged with a log line
// saying so and counted as skipped.
package activator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/pkg/events"
)

// Stage is the stage and durable consumer name.
const Stage = "activator"

// Subjects are the stage's inputs: booked deals and approved pushed deals.
func Subjects() []string {
	return []string{events.KindDealBooked.Filter(), events.KindDealApproved.Filter()}
}

// Outcomes counted by Metrics.ObserveActivation.
const (
	OutcomeActivated = "activated" // set up in the DSP
	OutcomeReplayed  = "replayed"  // set up; the DSP had the key from an earlier attempt
	OutcomeRetried   = "retried"   // an attempt failed and another follows
	OutcomeRefused   = "refused"   // the DSP refused the deal: final
	OutcomeGaveUp    = "gave_up"   // the attempts ran out: final
	OutcomeSkipped   = "skipped"   // an AdCP media buy: nothing to activate
	OutcomeStale     = "stale"     // an approval the record no longer agrees with
	OutcomeDuplicate = "duplicate" // already activated (or given up on): nothing sent
)

// Metrics counts activations by outcome (telemetry.Metrics is one).
type Metrics interface {
	ObserveActivation(outcome string)
}

// Service is the activation stage.
type Service struct {
	Seats *Seats
	DSP   DSP
	// Attempts is how many attempts a deal gets before the activator gives
	// up on it (default 8).
	Attempts int
	// Timeout bounds one attempt (default 10s); its outcome is unknown
	// after it and the next attempt carries the same key.
	Timeout time.Duration
	// Backoff is the delay before attempt n+1 after n failed: the stage
	// consumer's (StageConfig().Backoff).
	Backoff func(n uint64) time.Duration
	Now     func() time.Time
	Log     zerolog.Logger
	Metrics Metrics
}

// StageConfig is the activator's consumer: never dead-lettered (a deal
// whose activation may have happened must not be dropped; the handler
// bounds its own attempts and asks to be called again with bus.Again),
// retries from 1s doubling to 2m.
func StageConfig() bus.StageConfig {
	return bus.StageConfig{Name: Stage, Subjects: Subjects(), Workers: 8, AckWait: 30 * time.Second,
		MaxDeliver: -1, RetryBase: time.Second, RetryMax: 2 * time.Minute}
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Service) observe(outcome string) {
	if s.Metrics != nil {
		s.Metrics.ObserveActivation(outcome)
	}
}

// Handle takes one DealBooked or DealApproved through the seat lifecycle
// and, when the deal is approved and not yet set up, one attempt to
// activate it.
func (s *Service) Handle(ctx context.Context, in events.Event, payload any) ([]events.Event, error) {
	now := s.now()
	switch p := payload.(type) {
	case *events.DealBooked:
		log := bus.CampaignLogger(ctx, s.Log, p.CampaignID).With().Str("seller", p.SellerURL).Str("deal_id", p.DealID).Logger()
		if p.Protocol.IsADCP() {
			s.observe(OutcomeSkipped)
			log.Info().Str("media_buy_id", p.MediaBuyID).
				Msg("AdCP media buy: nothing to activate in a DSP (it runs in the seller's ad server, without a deal id)")
			return nil, nil
		}
		if p.DealID == "" {
			return nil, bus.Permanent(fmt.Errorf("activator: IAB DealBooked %s has no deal id to activate", in.ID()))
		}
		key := SeatKey(p.SellerURL, p.DealID)
		seat, err := s.Seats.Transition(ctx, key, func(st *Seat, exists bool) (bool, error) { return st.Book(exists, key, p, now) })
		if err != nil {
			return nil, err
		}
		return s.activate(ctx, in, seat, log)
	case *events.DealApproved:
		log := bus.CampaignLogger(ctx, s.Log, p.CampaignID).With().Str("seller", p.Terms.SellerURL).Str("deal_id", p.Terms.DealID).Logger()
		hash := TermsHash(p.Terms)
		seat, err := s.Seats.Transition(ctx, p.DealKey, func(st *Seat, exists bool) (bool, error) {
			return st.Approve(exists, hash, p.ApprovedBy, now)
		})
		switch {
		case errors.Is(err, ErrState), errors.Is(err, ErrNotFound):
			// The API checked the record before publishing; a record that
			// disagrees now was changed in between (new terms pushed, a
			// rejection): the approval does not apply to it.
			s.observe(OutcomeStale)
			log.Warn().Err(err).Msg("approval no longer applies to the deal; not activated")
			return nil, nil
		case err != nil:
			return nil, err
		}
		return s.activate(ctx, in, seat, log)
	}
	return nil, bus.Permanent(fmt.Errorf("%w: activator: unexpected %s", events.ErrInvalid, in.Type()))
}

// activate makes one attempt for an approved deal, or re-publishes the
// outcome the same input already reached (a redelivery after a crash
// between the record's write and the publication).
func (s *Service) activate(ctx context.Context, in events.Event, seat Seat, log zerolog.Logger) ([]events.Event, error) {
	switch {
	case seat.Status == events.SeatReadyToServe:
		if seat.Activation.EventID != in.ID() {
			s.observe(OutcomeDuplicate)
			log.Debug().Msg("already activated; nothing sent")
			return nil, nil
		}
		e, err := s.activatedEvent(in, seat)
		return outs(e, err)
	case seat.Status != events.SeatApproved:
		return nil, nil
	case seat.Activation.Final:
		if seat.Activation.EventID != in.ID() {
			s.observe(OutcomeDuplicate)
			return nil, nil
		}
		e, err := s.failedEvent(in, seat, seat.Activation.Attempts, seat.Activation.LastCode, seat.Activation.LastError, true)
		return outs(e, err)
	}
	now := s.now()
	// The attempt and its key are recorded before the DSP is called: after
	// a crash the next attempt sends the same key, and the DSP answers
	// with the activation it may have made.
	seat, err := s.Seats.Transition(ctx, seat.Key, func(st *Seat, _ bool) (bool, error) { return st.beginAttempt(now) })
	if errors.Is(err, ErrState) {
		return s.activate(ctx, in, seat, log) // another handling got there first
	}
	if err != nil {
		return nil, err
	}
	n := seat.Activation.Attempts
	a := Activation{IdempotencyKey: seat.Activation.IdempotencyKey, DealKey: seat.Key, CampaignID: seat.CampaignID, LineKey: seat.LineKey,
		Origin: seat.Origin, Attempt: n, Deal: seat.Terms, RequestedAt: now}
	actx, cancel := context.WithTimeout(ctx, orDefault(s.Timeout, 10*time.Second))
	rec, derr := s.DSP.Activate(actx, a)
	cancel()
	log = log.With().Str("dsp", s.DSP.Name()).Int("attempt", n).Str("idempotency_key", a.IdempotencyKey).Logger()
	if derr == nil {
		done := s.now()
		seat, err = s.Seats.Transition(ctx, seat.Key, func(st *Seat, _ bool) (bool, error) {
			return st.activated(s.DSP.Name(), rec, in.ID(), done)
		})
		if err != nil {
			// Retried: the next attempt replays the same key.
			return nil, err
		}
		if rec.Replayed {
			s.observe(OutcomeReplayed)
		} else {
			s.observe(OutcomeActivated)
		}
		log.Info().Str("dsp_ref", rec.Ref).Bool("replayed", rec.Replayed).Msg("deal activated: ready to serve")
		if seat.Activation.EventID != in.ID() {
			return nil, nil // another handling recorded it first and publishes it
		}
		e, err := s.activatedEvent(in, seat)
		return outs(e, err)
	}
	de := asError(derr)
	max := s.Attempts
	if max <= 0 {
		max = 8
	}
	code, reason := de.Code, de.Reason
	final := !de.Retryable || n >= max
	if de.Retryable && n >= max {
		code, reason = CodeGaveUp, fmt.Sprintf("gave up after %d attempts; the last: %s: %s", n, de.Code, de.Reason)
	}
	seat, err = s.Seats.Transition(ctx, seat.Key, func(st *Seat, _ bool) (bool, error) {
		return st.attemptFailed(s.DSP.Name(), code, reason, final, in.ID(), s.now())
	})
	if err != nil {
		return nil, err
	}
	e, err := s.failedEvent(in, seat, n, code, reason, final)
	if err != nil {
		return nil, err
	}
	if final {
		if code == CodeGaveUp {
			s.observe(OutcomeGaveUp)
		} else {
			s.observe(OutcomeRefused)
		}
		log.Error().Str("code", code).Str("reason", reason).Msg("deal not activated: no further attempt (the seat stays approved, not ready to serve)")
		return []events.Event{e}, nil
	}
	s.observe(OutcomeRetried)
	d := time.Second << min(n-1, 7)
	if s.Backoff != nil {
		d = s.Backoff(uint64(n))
	}
	log.Warn().Str("code", code).Str("reason", reason).Dur("retry_in", d).Msg("activation attempt failed; retrying with the same key")
	return []events.Event{e}, bus.Again(d, "activation attempt "+fmt.Sprint(n)+" failed: "+code)
}

func (s *Service) activatedEvent(in events.Event, seat Seat) (events.Event, error) {
	at := s.now()
	if seat.Activation.ActivatedAt != nil {
		at = *seat.Activation.ActivatedAt
	}
	return events.Derive(in, events.KindDealActivated, Stage, "activated", &events.DealActivated{
		CampaignID: in.Subject(), DealKey: seat.Key, LineKey: seat.LineKey, Origin: seat.Origin, DealID: seat.Terms.DealID,
		SellerURL: seat.Terms.SellerURL, DSP: seat.Activation.DSP, DSPRef: seat.Activation.DSPRef, IdempotencyKey: seat.Activation.IdempotencyKey,
		Attempts: seat.Activation.Attempts, SeatStatus: events.SeatReadyToServe, ActivatedAt: at})
}

func (s *Service) failedEvent(in events.Event, seat Seat, n int, code, reason string, final bool) (events.Event, error) {
	key := attemptKey(n)
	if final {
		key = "failed-final"
	}
	return events.Derive(in, events.KindDealActivationFailed, Stage, key, &events.DealActivationFailed{
		CampaignID: in.Subject(), DealKey: seat.Key, LineKey: seat.LineKey, Origin: seat.Origin, DealID: seat.Terms.DealID,
		SellerURL: seat.Terms.SellerURL, DSP: s.DSP.Name(), Attempt: n, Code: code, Reason: events.ShortReason(reason), Retryable: !final})
}

func outs(e events.Event, err error) ([]events.Event, error) {
	if err != nil {
		return nil, err
	}
	return []events.Event{e}, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

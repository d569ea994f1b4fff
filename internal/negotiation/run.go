package negotiation

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// Counterparty carries the buyer's moves to the seller. For an Offer it sends
// a counter at m.Price and returns the seller's round; for Accept it sends an
// accept at the seller's current ask; for WalkAway it sends a reject (no
// price). round is the 1-based number of the seller response being asked for.
type Counterparty interface {
	Respond(ctx context.Context, m Move, round int) (Round, error)
}

// Outcome is how a negotiation ended.
type Outcome string

// Outcomes of Run.
const (
	OutcomeAccepted   Outcome = "accepted"    // agreement at Result.FinalPrice
	OutcomeWalkedAway Outcome = "walked_away" // the buyer ended it
	OutcomeRejected   Outcome = "rejected"    // the seller ended it
	OutcomeError      Outcome = "error"       // a strategy, seller or transport error
	OutcomeDeadline   Outcome = "deadline"    // the context or State.Deadline expired
)

// Result is the end of one negotiation. Rounds are the seller's responses to
// the buyer's counters (the replies to accept and reject messages are not
// rounds, as in the reference's rounds_count).
type Result struct {
	Outcome    Outcome
	FinalPrice float64 // the agreed CPM; 0 without agreement
	Rounds     []Round
	Reason     string
}

// maxLoopRounds bounds Run even for a strategy that never walks away against
// a seller that never accepts (the reference looped forever).
const maxLoopRounds = 100

// priceEpsilon is the tolerance when comparing a confirmed price to the ask.
const priceEpsilon = 0.005

// Run negotiates st with cp using s until agreement, a walk-away, a seller
// reject, an error or the deadline (ctx's or st.Deadline − st.Elapsed).
//
// The buyer's Offer goes out as a counter. A seller accept is agreement at
// the seller's price (unless above the buyer's max: then the buyer declines).
// When the strategy accepts, an accept message is sent and agreement is at
// the seller's last price. A seller reject ends with OutcomeRejected. After a
// seller final_offer, or once st.SellerMaxRounds responses were received, only
// Accept or WalkAway is allowed. Run never sends an offer above the max or at
// or above the seller's current ask: such a move ends with OutcomeError and
// ErrInvalidMove, nothing sent. A WalkAway sends a reject message when a
// negotiation exists. An Accept before any round agrees to the list price
// without a message (the caller books the quote as quoted).
//
// The error is nil for accepted, walked_away and rejected, and non-nil
// (matching Result.Reason) for error and deadline; the Result is complete
// either way.
func Run(ctx context.Context, s Strategy, st State, cp Counterparty) (Result, error) {
	if s == nil || cp == nil {
		err := fmt.Errorf("%w: nil strategy or counterparty", ErrInvalidParams)
		return Result{Outcome: OutcomeError, Reason: err.Error()}, err
	}
	start := time.Now()
	elapsed0 := st.Elapsed
	if st.Deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, st.Deadline-st.Elapsed)
		defer cancel()
	}
	maxPrice := st.Max // 0: unknown, not guarded
	if l, ok := s.(Limiter); ok {
		t, m := l.Limits()
		_, maxPrice = effectiveLimits(t, m, st)
	}
	rounds := append([]Round(nil), st.Rounds...)
	res := func(o Outcome, price float64, reason string) Result {
		return Result{Outcome: o, FinalPrice: price, Rounds: rounds, Reason: reason}
	}
	fail := func(o Outcome, err error) (Result, error) {
		return res(o, 0, err.Error()), err
	}
	deadline := func(err error) (Result, error) {
		return fail(OutcomeDeadline, fmt.Errorf("negotiation: deadline after %d rounds: %w", len(rounds), err))
	}
	for {
		if err := ctx.Err(); err != nil {
			return deadline(err)
		}
		st.Rounds = rounds
		st.Elapsed = elapsed0 + time.Since(start)
		ask := st.ListPrice
		lastAction := ""
		if n := len(rounds); n > 0 {
			ask, lastAction = rounds[n-1].SellerPrice, rounds[n-1].SellerAction
		}
		mv, err := s.Next(st)
		if err != nil {
			return fail(OutcomeError, fmt.Errorf("negotiation: %s strategy: %w", s.Name(), err))
		}
		switch mv.Kind {
		case WalkAway:
			reason := mv.Reason
			if len(rounds) > 0 {
				if _, err := cp.Respond(ctx, Move{Kind: WalkAway, Reason: mv.Reason}, len(rounds)+1); err != nil {
					reason += fmt.Sprintf(" (reject message failed: %v)", err)
				}
			}
			return res(OutcomeWalkedAway, 0, reason), nil

		case Accept:
			if len(rounds) == 0 {
				if ask <= 0 {
					return fail(OutcomeError, fmt.Errorf("%w: accept before any round without a list price", ErrInvalidMove))
				}
				if maxPrice > 0 && ask > maxPrice {
					return fail(OutcomeError, fmt.Errorf("%w: accept of list price %s above max %s", ErrInvalidMove, fmtPrice(ask), fmtPrice(maxPrice)))
				}
				return res(OutcomeAccepted, ask, mv.Reason), nil
			}
			if maxPrice > 0 && ask > maxPrice {
				return fail(OutcomeError, fmt.Errorf("%w: accept of %s above max %s", ErrInvalidMove, fmtPrice(ask), fmtPrice(maxPrice)))
			}
			r, err := cp.Respond(ctx, Move{Kind: Accept, Price: ask, Reason: mv.Reason}, len(rounds)+1)
			if err != nil {
				if ctx.Err() != nil {
					return deadline(err)
				}
				return fail(OutcomeError, fmt.Errorf("negotiation: accept at %s failed: %w", fmtPrice(ask), err))
			}
			if r.SellerAction == ActionReject {
				return res(OutcomeRejected, 0, "seller rejected our accept at "+fmtPrice(ask)), nil
			}
			if r.SellerPrice > 0 && math.Abs(r.SellerPrice-ask) > priceEpsilon {
				return fail(OutcomeError, fmt.Errorf("%w: accept confirmed at %s, expected %s", ErrSellerRound, fmtPrice(r.SellerPrice), fmtPrice(ask)))
			}
			return res(OutcomeAccepted, ask, mv.Reason), nil

		case Offer:
		default:
			return fail(OutcomeError, fmt.Errorf("%w: unknown move kind %v", ErrInvalidMove, mv.Kind))
		}

		// An offer: check the invariants before anything leaves the process.
		p := mv.Price
		switch {
		case !finite(p) || p <= 0:
			return fail(OutcomeError, fmt.Errorf("%w: offer %v is not a positive price", ErrInvalidMove, p))
		case maxPrice > 0 && p > maxPrice:
			return fail(OutcomeError, fmt.Errorf("%w: offer %s above max %s", ErrInvalidMove, fmtPrice(p), fmtPrice(maxPrice)))
		case ask > 0 && p >= ask:
			return fail(OutcomeError, fmt.Errorf("%w: offer %s at or above the seller's ask %s (accept instead)", ErrInvalidMove, fmtPrice(p), fmtPrice(ask)))
		case lastAction == ActionFinalOffer:
			return fail(OutcomeError, fmt.Errorf("%w: counter after the seller's final offer", ErrInvalidMove))
		case st.SellerMaxRounds > 0 && len(rounds) >= st.SellerMaxRounds:
			return fail(OutcomeError, fmt.Errorf("%w: counter beyond the seller's %d rounds", ErrInvalidMove, st.SellerMaxRounds))
		case len(rounds) >= maxLoopRounds:
			return fail(OutcomeError, fmt.Errorf("%w: %s strategy still countering after %d rounds", ErrInvalidMove, s.Name(), maxLoopRounds))
		}
		n := len(rounds) + 1
		r, err := cp.Respond(ctx, mv, n)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
				return deadline(err)
			}
			return fail(OutcomeError, fmt.Errorf("negotiation: counter %d at %s: %w", n, fmtPrice(p), err))
		}
		if r.N == 0 {
			r.N = n
		}
		if r.BuyerPrice == 0 {
			r.BuyerPrice = p
		}
		switch r.SellerAction {
		case ActionReject:
			rounds = append(rounds, r)
			return res(OutcomeRejected, 0, fmt.Sprintf("seller rejected our %s in round %d", fmtPrice(p), n)), nil
		case ActionAccept, ActionCounter, ActionFinalOffer:
		default:
			return fail(OutcomeError, fmt.Errorf("%w: round %d: seller action %q", ErrSellerRound, n, r.SellerAction))
		}
		if !finite(r.SellerPrice) || r.SellerPrice <= 0 {
			return fail(OutcomeError, fmt.Errorf("%w: round %d (%s)", ErrMissingSellerPrice, n, r.SellerAction))
		}
		rounds = append(rounds, r)
		if r.SellerAction == ActionAccept {
			if maxPrice > 0 && r.SellerPrice > maxPrice {
				// An "accept" at a price we never offered and cannot pay is
				// no agreement: decline it.
				reason := fmt.Sprintf("seller accepted at %s, above our max %s: declined", fmtPrice(r.SellerPrice), fmtPrice(maxPrice))
				if _, err := cp.Respond(ctx, Move{Kind: WalkAway, Reason: reason}, n+1); err != nil {
					reason += fmt.Sprintf(" (reject message failed: %v)", err)
				}
				return res(OutcomeWalkedAway, 0, reason), nil
			}
			return res(OutcomeAccepted, r.SellerPrice, fmt.Sprintf("seller accepted at %s in round %d", fmtPrice(r.SellerPrice), n)), nil
		}
	}
}

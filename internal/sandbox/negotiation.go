package sandbox

import (
	"errors"
	"net/http"
	"time"

	"github.com/dealflow/dealflow/internal/sandbox/engine"
)

// negRecord is a stored negotiation (NegotiationHistory) keyed by its subject.
type negRecord struct {
	id          string // neg-<8hex>
	proposalID  string // subject id (quote or proposal id)
	productID   string
	n           *engine.Negotiation
	times       []time.Time // per-round timestamps
	startedAt   time.Time
	completedAt *time.Time
}

// recorded notes the timestamp of the round just appended to nr.n.
func (nr *negRecord) recorded(now time.Time) {
	nr.times = append(nr.times, now)
	if nr.n.Status != engine.StatusActive && nr.completedAt == nil {
		t := now
		nr.completedAt = &t
	}
}

// negotiationMessage is the normalised NegotiationMessage (hash payload).
type negotiationMessage struct {
	Action        string        `json:"action"`
	NegotiationID *string       `json:"negotiation_id"`
	ProposalID    *string       `json:"proposal_id"`
	QuoteID       *string       `json:"quote_id"`
	RoundNumber   *int64        `json:"round_number"`
	BuyerPrice    *wireMoney    `json:"buyer_price"`
	BuyerIdentity *wireIdentity `json:"buyer_identity"`
	Rationale     string        `json:"rationale"`
}

type wireRound struct {
	RoundNumber             int     `json:"round_number"`
	BuyerPrice              *money  `json:"buyer_price"`
	SellerPrice             *money  `json:"seller_price"`
	Action                  string  `json:"action"`
	ConcessionPct           pyFloat `json:"concession_pct"`
	CumulativeConcessionPct pyFloat `json:"cumulative_concession_pct"`
	Rationale               string  `json:"rationale"`
	Timestamp               string  `json:"timestamp"`
}

type wireRoundResponse struct {
	NegotiationID   string    `json:"negotiation_id"`
	Status          string    `json:"status"`
	Round           wireRound `json:"round"`
	RoundsRemaining int       `json:"rounds_remaining"`
}

// handleNegotiationMessage is POST /api/v1/negotiations/messages (§2.6).
func (s *Seller) handleNegotiationMessage(w http.ResponseWriter, r *http.Request) {
	var v validator
	obj, key, ok := s.keyedPost(w, r, &v)
	if !ok {
		return
	}
	var m negotiationMessage
	var idemKey *string
	if obj != nil {
		body := []any{"body"}
		idemKey = v.str(obj, body, "idempotency_key", true, 1)
		m.Action = deref(v.enum(obj, body, "action", true, []string{"accept", "counter", "reject", "final_offer"}))
		m.NegotiationID = v.str(obj, body, "negotiation_id", false, 0)
		m.ProposalID = v.str(obj, body, "proposal_id", false, 0)
		m.QuoteID = v.str(obj, body, "quote_id", false, 0)
		one := int64(1)
		m.RoundNumber = v.laxInt(obj, body, "round_number", &one)
		m.BuyerPrice = v.money(obj, body, "buyer_price")
		m.BuyerIdentity = v.buyerIdentity(obj, body, "buyer_identity")
		if rat := v.str(obj, body, "rationale", false, 0); rat != nil {
			m.Rationale = *rat
		}
		if v.ok() {
			priced := m.Action == "counter" || m.Action == "final_offer"
			switch {
			case m.NegotiationID == nil && m.ProposalID == nil && m.QuoteID == nil:
				v.valueError(obj, "NegotiationMessage requires negotiation_id, proposal_id, or quote_id")
			case priced && m.BuyerPrice == nil:
				v.valueError(obj, "action '"+m.Action+"' requires buyer_price")
			case m.Action == "reject" && m.BuyerPrice != nil:
				v.valueError(obj, "action 'reject' must not carry buyer_price")
			}
		}
	}
	if !v.ok() {
		writeValidation(w, v.errs)
		return
	}
	// Tier from the key, else public (no agent_url on this message).
	ctx, _ := s.verifiedCtx(w, key, m.BuyerIdentity.toIdentity(), "")
	subject := firstNonEmpty(m.ProposalID, m.NegotiationID, m.QuoteID)
	var buyerPrice *float64
	if m.BuyerPrice != nil {
		bp := engine.Dollars(m.BuyerPrice.AmountMicros)
		buyerPrice = &bp
	}
	hash := hashPayload(m)
	ikey := "negotiation:" + ctx.pricingKey() + ":" + *idemKey

	s.mu.Lock()
	defer s.mu.Unlock()
	if prior, found := s.idem[ikey]; found {
		if prior.hash != hash {
			writeDetail(w, http.StatusConflict, envelopeErr("idempotency_conflict",
				"idempotency_key '"+*idemKey+"' was already used for a different negotiation message.", nil))
			return
		}
		writeRaw(w, prior.status, prior.body)
		return
	}
	now := s.now().UTC()
	var resp wireRoundResponse
	nr := s.negotiations[subject]
	if m.Action == "counter" || m.Action == "final_offer" {
		if nr != nil && !nr.n.Active() {
			writeDetail(w, http.StatusBadRequest, "Negotiation is "+nr.n.Status+", cannot counter")
			return
		}
		if nr == nil {
			q := s.quotes[subject]
			if q == nil {
				writeDetail(w, http.StatusNotFound, "Proposal not found")
				return
			}
			p := s.productByID[q.ProductID]
			if p == nil || !p.priced() {
				writeDetail(w, http.StatusNotFound, "Product not found")
				return
			}
			base := p.floor()
			if p.BaseCPM != nil {
				base = *p.BaseCPM
			}
			nr = &negRecord{id: "neg-" + randHex(8), proposalID: subject, productID: p.ID,
				n: engine.NewNegotiation(ctx.tier(), base, p.floor()), startedAt: now}
			s.negotiations[subject] = nr
		}
		round, err := nr.n.Counter(*buyerPrice)
		if errors.Is(err, engine.ErrNotActive) {
			writeDetail(w, http.StatusBadRequest, "Negotiation is "+nr.n.Status+", cannot counter")
			return
		}
		nr.recorded(now)
		resp = wireRoundResponse{NegotiationID: nr.id, Status: nr.n.Status, Round: roundWire(round, now),
			RoundsRemaining: nr.n.RoundsRemaining(round)}
	} else {
		if nr == nil {
			writeDetail(w, http.StatusNotFound, "No negotiation found for this proposal")
			return
		}
		var round engine.Round
		var changed bool
		if m.Action == "accept" {
			round, changed = nr.n.Accept(buyerPrice)
		} else {
			round, changed = nr.n.Reject()
		}
		if changed {
			nr.recorded(now)
		}
		status := engine.StatusAccepted
		if m.Action == "reject" {
			status = engine.StatusRejected
		}
		bp := round.BuyerPrice
		if buyerPrice != nil {
			bp = *buyerPrice
		}
		resp = wireRoundResponse{NegotiationID: nr.id, Status: status, RoundsRemaining: 0,
			Round: wireRound{RoundNumber: round.Number, BuyerPrice: usd(bp), SellerPrice: usd(round.SellerPrice),
				Action: m.Action, Rationale: round.Rationale, Timestamp: isoZ(now)}}
	}
	out := mustJSON(resp)
	s.idem[ikey] = idemEntry{hash: hash, status: http.StatusOK, body: out}
	writeRaw(w, http.StatusOK, out)
}

func roundWire(r engine.Round, ts time.Time) wireRound {
	return wireRound{RoundNumber: r.Number, BuyerPrice: usd(r.BuyerPrice), SellerPrice: usd(r.SellerPrice),
		Action: string(r.Action), ConcessionPct: pyFloat(r.ConcessionPct),
		CumulativeConcessionPct: pyFloat(r.CumulativeConcessionPct), Rationale: r.Rationale, Timestamp: isoZ(ts)}
}

// firstNonEmpty is Python's `a or b or c` over optional strings.
func firstNonEmpty(ps ...*string) string {
	for _, p := range ps {
		if p != nil && *p != "" {
			return *p
		}
	}
	return ""
}

// handleNegotiationHistory is GET /proposals/{id}/negotiation (no auth; it
// leaks the floor and strategy, as the real seller's does).
func (s *Seller) handleNegotiationHistory(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	defer s.mu.Unlock()
	nr := s.negotiations[id]
	if nr == nil {
		writeDetail(w, http.StatusNotFound, "No negotiation found for this proposal")
		return
	}
	rounds := make([]map[string]any, 0, len(nr.n.Rounds))
	for i, rd := range nr.n.Rounds {
		ts := nr.startedAt
		if i < len(nr.times) {
			ts = nr.times[i]
		}
		rounds = append(rounds, map[string]any{
			"round_number": rd.Number, "buyer_price": pyFloat(rd.BuyerPrice), "seller_price": pyFloat(rd.SellerPrice),
			"action": string(rd.Action), "concession_pct": pyFloat(rd.ConcessionPct),
			"cumulative_concession_pct": pyFloat(rd.CumulativeConcessionPct), "rationale": rd.Rationale,
			"timestamp": isoNaive(ts),
		})
	}
	var completed any
	if nr.completedAt != nil {
		completed = isoNaive(*nr.completedAt)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"negotiation_id": nr.id, "proposal_id": nr.proposalID, "product_id": nr.productID,
		"buyer_tier": string(nr.n.Tier), "strategy": string(nr.n.Strategy), "base_price": pyFloat(nr.n.Base),
		"floor_price": pyFloat(nr.n.Floor), "status": nr.n.Status, "total_rounds": len(nr.n.Rounds),
		"max_rounds": nr.n.Limits.MaxRounds, "rounds": rounds, "started_at": isoNaive(nr.startedAt),
		"completed_at": completed, "package_id": nil,
	})
}

// NegotiationRounds reports a quote's negotiation as the seller holds it:
// how many rounds it recorded and its status ("" when there was none). It
// is what GET /proposals/{id}/negotiation answers, for tests that check
// every buyer message became exactly one seller round.
func (s *Seller) NegotiationRounds(quoteID string) (total int, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	nr := s.negotiations[quoteID]
	if nr == nil {
		return 0, ""
	}
	return len(nr.n.Rounds), string(nr.n.Status)
}

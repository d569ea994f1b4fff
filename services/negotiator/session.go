package negotiator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/negotiation"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/sellerclient"
)

// Session is one package's negotiation journal in the negotiations KV
// bucket. Every seller message is recorded with its idempotency key before
// it is sent and with the seller's answer after, so a replica that dies
// mid-negotiation loses nothing: the next one replays the journal, re-sends
// an unanswered message with the same key (the seller answers the same) and
// never sends a round twice under a new key.
type Session struct {
	QuoteKey string                     `json:"quote_key"`
	QuoteReq *sellerclient.QuoteRequest `json:"quote_request,omitempty"`
	Quote    *QuoteSnapshot             `json:"quote,omitempty"`
	Messages []Message                  `json:"messages,omitempty"`
	Result   *events.QuoteReady         `json:"result,omitempty"`
	Updated  time.Time                  `json:"updated"`
}

// QuoteSnapshot is what the negotiation needs of the seller's quote.
type QuoteSnapshot struct {
	ID       string  `json:"id"`
	FinalCPM float64 `json:"final_cpm"` // dollars, for the strategies
	// FinalCPMMicros is the quoted CPM exactly as the seller sent it.
	FinalCPMMicros events.Micros `json:"final_cpm_micros"`
	Impressions    int64         `json:"impressions"`
	ExpiresAt      *time.Time    `json:"expires_at,omitempty"`
	Tier           string        `json:"tier"`
	Available      bool          `json:"available"`
}

// Message is one journaled negotiation message and, once answered, the
// seller's round.
type Message struct {
	Key      string                          `json:"key"`
	Body     sellerclient.NegotiationMessage `json:"body"`
	Answered bool                            `json:"answered"`
	Round    negotiation.Round               `json:"round"`
	Status   string                          `json:"status,omitempty"`
	NegID    string                          `json:"negotiation_id,omitempty"`
}

// SessionKey is the KV key of a package's session within a campaign.
func SessionKey(campaignID, sellerURL, packageID string) string {
	h := sha256.Sum256([]byte(sellerURL + "|" + packageID))
	return campaignID + "." + hex.EncodeToString(h[:12])
}

// journal reads and writes one session with revision checks.
type journal struct {
	store *bus.Store[Session]
	key   string
}

func (j journal) load(ctx context.Context) (Session, error) {
	s, _, err := j.store.Get(ctx, j.key)
	return s, err
}

func (j journal) update(ctx context.Context, fn func(s *Session) error) (Session, error) {
	return j.store.Update(ctx, j.key, func(s *Session, _ bool) (bool, error) {
		if err := fn(s); err != nil {
			return false, err
		}
		s.Updated = time.Now().UTC()
		return true, nil
	})
}

// appendMessage journals msg as message idx before it is sent. If another
// replica journaled a message there first (two replicas handling the same
// PackageFound), the error wraps bus.ErrConflict, which bus.IsTransient
// recognises: the handler fails, the event is redelivered and the retry
// replays the other replica's journal instead of sending a round of its own.
func (j journal) appendMessage(ctx context.Context, idx int, msg Message) error {
	_, err := j.update(ctx, func(s *Session) error {
		if len(s.Messages) != idx {
			return fmt.Errorf("%w: negotiator: journal of %s changed under us (%d messages, expected %d)", bus.ErrConflict, j.key, len(s.Messages), idx)
		}
		s.Messages = append(s.Messages, msg)
		return nil
	})
	return err
}

// counterparty sends the strategy's moves to the seller through the journal.
type counterparty struct {
	j       journal
	client  *sellerclient.Client
	url     string
	auth    sellerclient.Auth
	quoteID string
	n       int // messages handled in this run, the journal index
}

// Respond implements negotiation.Counterparty.
func (c *counterparty) Respond(ctx context.Context, m negotiation.Move, round int) (negotiation.Round, error) {
	idx := c.n
	c.n++
	s, err := c.j.load(ctx)
	if err != nil {
		return negotiation.Round{}, err
	}
	var msg Message
	if idx < len(s.Messages) {
		msg = s.Messages[idx] // replay: what was really sent
		if msg.Answered {
			return msg.Round, nil
		}
	} else {
		msg = Message{Key: events.NewID(), Body: c.body(m)}
		msg.Body.IdempotencyKey = msg.Key
		if err := c.j.appendMessage(ctx, idx, msg); err != nil {
			return negotiation.Round{}, err
		}
	}
	res, err := c.client.Negotiate(ctx, c.url, c.auth, msg.Body)
	if err != nil {
		return negotiation.Round{}, err
	}
	r := negotiation.Round{N: res.Round.RoundNumber, BuyerPrice: res.Round.BuyerPrice.Dollars(), SellerPrice: res.Round.SellerPrice.Dollars(),
		SellerAction: string(res.Round.Action)}
	if res.Round.SellerPrice.AmountMicros <= 0 && r.SellerAction != negotiation.ActionReject {
		return negotiation.Round{}, fmt.Errorf("%w: seller round %d has no price", negotiation.ErrMissingSellerPrice, r.N)
	}
	if _, err := c.j.update(ctx, func(s *Session) error {
		if idx < len(s.Messages) {
			s.Messages[idx].Answered, s.Messages[idx].Round = true, r
			s.Messages[idx].Status, s.Messages[idx].NegID = res.Status, res.NegotiationID
		}
		return nil
	}); err != nil {
		return negotiation.Round{}, err
	}
	return r, nil
}

func (c *counterparty) body(m negotiation.Move) sellerclient.NegotiationMessage {
	b := sellerclient.NegotiationMessage{QuoteID: c.quoteID, Rationale: m.Reason}
	switch m.Kind {
	case negotiation.WalkAway:
		b.Action = sellerclient.ActionReject
	case negotiation.Accept:
		b.Action = sellerclient.ActionAccept
		p := sellerclient.USD(m.Price)
		b.BuyerPrice = &p
	default:
		b.Action = sellerclient.ActionCounter
		p := sellerclient.USD(m.Price)
		b.BuyerPrice = &p
	}
	return b
}

package sellerclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"
)

// AgentCard is an A2A agent card as real sellers serve it at
// /.well-known/agent-card.json or /.well-known/agent.json. Unlike the
// reference buyer's model it has no required agent_id and its capabilities are
// an object; unknown fields are ignored.
type AgentCard struct {
	Name                 string               `json:"name"`
	Description          string               `json:"description,omitempty"`
	URL                  string               `json:"url,omitempty"`
	Version              string               `json:"version,omitempty"`
	Provider             *AgentProvider       `json:"provider,omitempty"`
	Capabilities         AgentCapabilities    `json:"capabilities"`
	Skills               []AgentSkill         `json:"skills,omitempty"`
	Authentication       *AgentAuthentication `json:"authentication,omitempty"`
	InventoryTypes       []string             `json:"inventory_types,omitempty"`
	SupportedDealTypes   []string             `json:"supported_deal_types,omitempty"`
	Contact              json.RawMessage      `json:"contact,omitempty"`
	TOSURL               string               `json:"tos_url,omitempty"`
	AudienceCapabilities json.RawMessage      `json:"audience_capabilities,omitempty"`

	// Present on IAB primitive cards and registry copies, absent on the
	// seller's self-served card. A self-served trust_status is only a claim.
	AgentID     string `json:"agent_id,omitempty"`
	AgentType   string `json:"agent_type,omitempty"`
	TrustStatus string `json:"trust_status,omitempty"`

	// CardURL is the URL the card was fetched from (not part of the card).
	CardURL string `json:"-"`
}

// AgentProvider is the organisation behind an agent.
type AgentProvider struct {
	Name        string `json:"name"`
	URL         string `json:"url,omitempty"`
	Description string `json:"description,omitempty"`
}

// AgentCapabilities is the A2A capabilities object. Cards in the reference
// buyer's older shape (a list of {name, description, tags}) are accepted too:
// their names land in Names.
type AgentCapabilities struct {
	Protocols         []string `json:"protocols"`
	Streaming         bool     `json:"streaming"`
	PushNotifications bool     `json:"push_notifications"`
	// Names holds capability names from a list-shaped "capabilities".
	Names []string `json:"-"`
}

// UnmarshalJSON accepts the A2A object or a legacy list.
func (a *AgentCapabilities) UnmarshalJSON(b []byte) error {
	t := trimSpace(b)
	if isNull(t) {
		return nil
	}
	if t[0] == '[' {
		var l stringList
		if err := jsonv2.Unmarshal(t, &l); err != nil {
			return err
		}
		a.Names = l
		return nil
	}
	type alias AgentCapabilities
	var v alias
	if err := jsonv2.Unmarshal(t, &v); err != nil {
		return err
	}
	*a = AgentCapabilities(v)
	return nil
}

// AgentSkill is one advertised skill (the seller's ids are fixed:
// discovery, pricing, proposals, negotiation, deals).
type AgentSkill struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Tags        []string `json:"tags,omitempty"`
}

// AgentAuthentication lists the auth schemes ("api_key", "bearer").
type AgentAuthentication struct {
	Schemes        []string `json:"schemes"`
	CredentialsURL string   `json:"credentials_url,omitempty"`
}

// Well-known card paths, tried in this order.
const (
	agentCardPath       = "/.well-known/agent-card.json"
	legacyAgentCardPath = "/.well-known/agent.json"
)

// AgentCard fetches a seller's card: GET /.well-known/agent-card.json (the
// current A2A path), falling back to /.well-known/agent.json (what the
// reference seller serves) when the first answers 404/405.
func (c *Client) AgentCard(ctx context.Context, sellerURL string) (*AgentCard, error) {
	const op = "AgentCard"
	base, err := c.sellerURL(op, sellerURL)
	if err != nil {
		return nil, err
	}
	var card *AgentCard
	fetch := func(path string) error {
		u := joinURL(base, path, nil)
		return c.getStream(ctx, op, u, Auth{}, func(r io.Reader) (err error) {
			card, err = parseAgentCard(r)
			if card != nil {
				card.CardURL = u
			}
			return err
		})
	}
	err = fetch(agentCardPath)
	if errors.Is(err, ErrNotFound) {
		err = fetch(legacyAgentCardPath)
	}
	if err != nil {
		return nil, err
	}
	return card, nil
}

// parseAgentCard decodes a card; it must be a JSON object with a name.
func parseAgentCard(r io.Reader) (*AgentCard, error) {
	var card AgentCard
	if err := readObject(r, &card); err != nil {
		return nil, fmt.Errorf("agent card: %w", err)
	}
	if strings.TrimSpace(card.Name) == "" {
		return nil, errors.New("agent card: missing name")
	}
	card.Contact = nullToNil(card.Contact)
	card.AudienceCapabilities = nullToNil(card.AudienceCapabilities)
	return &card, nil
}

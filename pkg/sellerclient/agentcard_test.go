package sellerclient

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

func TestAgentCardFallsBackToAgentJSON(t *testing.T) {
	t.Parallel()
	srv := newFake(t, routes(map[string]reply{"GET /.well-known/agent.json": {body: agentCardBody}}))
	card, err := testClient().AgentCard(context.Background(), srv.URL+"/")
	if err != nil {
		t.Fatal(err)
	}
	reqs := srv.requests()
	if len(reqs) != 2 || reqs[0].Path != "/.well-known/agent-card.json" || reqs[1].Path != "/.well-known/agent.json" {
		t.Fatalf("requests %+v", reqs)
	}
	if card.Name != "Ad Seller Agent" || card.URL != "http://localhost:8000" || card.Version != "2.4.2" ||
		card.Provider == nil || card.Provider.Name != "Default Publisher" || card.Provider.Description != "" ||
		!reflect.DeepEqual(card.Capabilities, AgentCapabilities{Protocols: []string{"opendirect21"}}) ||
		len(card.Skills) != 2 || card.Skills[1].ID != "negotiation" || !reflect.DeepEqual(card.Skills[1].Tags, []string{"pricing", "negotiation"}) ||
		card.Authentication == nil || !reflect.DeepEqual(card.Authentication.Schemes, []string{"api_key", "bearer"}) ||
		!reflect.DeepEqual(card.SupportedDealTypes, []string{"pg", "pmp", "preferred_deal", "private_auction"}) ||
		len(card.InventoryTypes) != 7 || card.Contact != nil || card.AgentID != "" || card.CardURL != srv.URL+"/.well-known/agent.json" {
		t.Fatalf("card %+v", card)
	}
	var aud struct {
		SchemaVersion string `json:"schema_version"`
	}
	if err := json.Unmarshal(card.AudienceCapabilities, &aud); err != nil || aud.SchemaVersion != "1" {
		t.Fatalf("audience capabilities %s", card.AudienceCapabilities)
	}
}

func TestAgentCardPrefersAgentCardJSON(t *testing.T) {
	t.Parallel()
	srv := newFake(t, routes(map[string]reply{
		"GET /.well-known/agent-card.json": {body: `{"name":"New Card","capabilities":{"streaming":true}}`},
		"GET /.well-known/agent.json":      {body: agentCardBody},
	}))
	card, err := testClient().AgentCard(context.Background(), srv.URL)
	if err != nil || card.Name != "New Card" || !card.Capabilities.Streaming || len(srv.requests()) != 1 {
		t.Fatalf("%+v %v", card, err)
	}
}

func TestAgentCardErrors(t *testing.T) {
	t.Parallel()
	// A 500 on the first path is not a reason to try the second.
	srv := newFake(t, func(int, recorded) reply { return reply{status: 500, body: errPlain500, ctype: "text/plain"} })
	if _, err := testClient().AgentCard(context.Background(), srv.URL); !errors.Is(err, ErrUnavailable) || len(srv.requests()) != 1 {
		t.Fatalf("500: %v (%d requests)", err, len(srv.requests()))
	}
	// Both missing.
	none := newFake(t, routes(nil))
	if _, err := testClient().AgentCard(context.Background(), none.URL); !errors.Is(err, ErrNotFound) || len(none.requests()) != 2 {
		t.Fatalf("404: %v", err)
	}
	for _, body := range []string{`{"description":"no name"}`, `[]`, `not json`, `{"name":"x","capabilities":7}`} {
		bad := newFake(t, routes(map[string]reply{"GET /.well-known/agent-card.json": {body: body}}))
		if _, err := testClient().AgentCard(context.Background(), bad.URL); !errors.Is(err, ErrBadResponse) {
			t.Errorf("%s: %v", body, err)
		}
	}
}

func TestParseAgentCardShapes(t *testing.T) {
	t.Parallel()
	// Reference-buyer shape: capabilities as a list, agent_id present.
	card, err := parseAgentCard(bodyOf([]byte(`{"agent_id":"seller-1","name":"S","url":"https://s.example.com","protocols":["a2a"],
		"capabilities":[{"name":"ctv","description":"","tags":[]},"display"],"trust_level":"verified","x_ext":{"a":1}}`)))
	if err != nil || card.AgentID != "seller-1" || !reflect.DeepEqual(card.Capabilities.Names, []string{"ctv", "display"}) {
		t.Fatalf("%+v %v", card, err)
	}
	// Nulls everywhere.
	card, err = parseAgentCard(bodyOf([]byte(`{"name":"S","description":null,"url":null,"provider":null,"capabilities":null,"skills":null,
		"authentication":null,"inventory_types":null,"supported_deal_types":null,"contact":null,"tos_url":null,"audience_capabilities":null}`)))
	if err != nil || card.Provider != nil || card.Authentication != nil || card.AudienceCapabilities != nil {
		t.Fatalf("%+v %v", card, err)
	}
}

package sandbox

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Registry is the sandbox agent registry. It serves both registry APIs from
// the market's configured sellers: the simple one (GET /agents, GET /verify;
// AdCP agents with protocol "adcp" and their mcp_endpoint), the AAMP one
// (GET /api/agents, bearer token; IAB sellers only) and the
// AgenticAdvertising.Org one (GET /api/registry/agents; AdCP agents only).
type Registry struct {
	// URL is the registry base URL (no trailing slash).
	URL string
	// AAMPToken is the bearer token GET /api/agents requires.
	AAMPToken string

	sellers   []*Seller // immutable after Start
	adcp      []*ADCPSeller
	createdAt time.Time
	rec       recorder
	faults    *faulter
	handler   http.Handler
	own       *listenerServer
}

func newRegistry(sellers []*Seller, token string, f Faults, now func() time.Time) *Registry {
	return &Registry{AAMPToken: token, sellers: sellers, createdAt: now().UTC(), faults: newFaulter("registry", f)}
}

func (g *Registry) routes() *router {
	rt := &router{}
	rt.handle(http.MethodGet, "/agents", g.handleAgents)
	rt.handle(http.MethodGet, "/verify", g.handleVerify)
	rt.handle(http.MethodGet, "/api/agents", g.handleAAMPAgents)
	rt.handle(http.MethodGet, "/api/agents/{id}", g.handleAAMPAgent)
	rt.handle(http.MethodGet, "/api/registry/agents", g.handleAAOAgents)
	return rt
}

// Requests returns every request the registry received, in order.
func (g *Registry) Requests() []Request { return g.rec.list() }

// ResetRequests forgets the recorded requests.
func (g *Registry) ResetRequests() { g.rec.reset() }

// SetFaults changes the registry's fault knobs at runtime (Down closes or
// reopens its own listener; on the shared listener it closes connections).
func (g *Registry) SetFaults(f Faults) error {
	if err := f.validate(); err != nil {
		return err
	}
	g.faults.set(f)
	if g.own == nil {
		return nil
	}
	if f.Down {
		g.own.down()
		return nil
	}
	return g.own.up()
}

// listed are the sellers the registry knows.
func (g *Registry) listed() []*Seller {
	var out []*Seller
	for _, s := range g.sellers {
		if s.InRegistry {
			out = append(out, s)
		}
	}
	return out
}

func agentID(s *Seller) string { return "agent-" + shortHash(s.Name, 8) }

func capabilityObjs(caps []string) []map[string]any {
	out := make([]map[string]any, 0, len(caps))
	for _, c := range caps {
		out = append(out, map[string]any{"name": c, "description": c + " inventory", "tags": []string{c}})
	}
	return out
}

// handleAgents is the simple API: GET /agents?agent_type=seller&capabilities=a,b
// (any match, case-insensitive).
func (g *Registry) handleAgents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	agents := []map[string]any{}
	if t := q.Get("agent_type"); t != "" && !strings.EqualFold(t, "seller") {
		writeJSON(w, http.StatusOK, map[string]any{"agents": agents})
		return
	}
	want := map[string]bool{}
	for _, c := range strings.Split(q.Get("capabilities"), ",") {
		if c = strings.ToLower(strings.TrimSpace(c)); c != "" {
			want[c] = true
		}
	}
	for _, s := range g.listed() {
		if len(want) > 0 && !anyCap(s.Capabilities, want) {
			continue
		}
		agents = append(agents, map[string]any{
			"agent_id": agentID(s), "name": s.Name, "url": s.URL, "protocols": []string{"a2a"},
			"capabilities": capabilityObjs(s.Capabilities), "trust_level": s.Trust,
		})
	}
	for _, s := range g.adcp {
		if !s.InRegistry || (len(want) > 0 && !anyCap(s.Capabilities, want)) {
			continue
		}
		agents = append(agents, map[string]any{
			"agent_id": "agent-" + shortHash(s.Name, 8), "name": s.Name, "url": s.URL, "protocols": []string{"adcp", "mcp"},
			"protocol": "adcp", "mcp_endpoint": s.MCPEndpoint, "capabilities": capabilityObjs(s.Capabilities), "trust_level": s.Trust,
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"agents": agents})
}

// handleAAOAgents is the AgenticAdvertising.Org listing,
// GET /api/registry/agents?type=sales&capabilities=true&compliance=true:
// the listed AdCP agents (never blocked ones), with their MCP endpoint,
// health, channels and compliance status.
func (g *Registry) handleAAOAgents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	agents := []map[string]any{}
	for _, s := range g.adcp {
		if !s.InRegistry || s.Trust == "blocked" {
			continue
		}
		if t := q.Get("type"); t != "" && t != "sales" {
			continue
		}
		a := map[string]any{"url": s.URL, "name": s.Name, "type": "sales", "protocol": "mcp", "mcp_endpoint": s.MCPEndpoint,
			"health": map[string]any{"status": "healthy"}, "publisher_domains": []string{s.slug + ".sandbox.dealflow.test"}}
		if q.Get("capabilities") == "true" {
			a["capabilities"] = map[string]any{"channels": nonNil(s.Capabilities), "supported_protocols": []string{"media_buy"}}
		}
		if q.Get("compliance") == "true" {
			a["compliance"] = map[string]any{"status": s.Compliance}
		}
		agents = append(agents, a)
	}
	writeJSON(w, http.StatusOK, map[string]any{"agents": agents})
}

func anyCap(caps []string, want map[string]bool) bool {
	for _, c := range caps {
		if want[strings.ToLower(c)] {
			return true
		}
	}
	return false
}

func normURL(u string) string { return strings.ToLower(strings.TrimRight(strings.TrimSpace(u), "/")) }

// handleVerify is GET /verify?agent_url= (404 for agents it does not list).
func (g *Registry) handleVerify(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !q.Has("agent_url") {
		writeValidation(w, []verr{{Type: "missing", Loc: []any{"query", "agent_url"}, Msg: "Field required"}})
		return
	}
	target := normURL(q.Get("agent_url"))
	for _, s := range g.listed() {
		if normURL(s.URL) == target {
			writeJSON(w, http.StatusOK, map[string]any{"agent_url": q.Get("agent_url"), "is_registered": true,
				"trust_level": s.Trust, "registry_id": agentID(s)})
			return
		}
	}
	for _, s := range g.adcp {
		if s.InRegistry && (normURL(s.URL) == target || normURL(s.MCPEndpoint) == target) {
			writeJSON(w, http.StatusOK, map[string]any{"agent_url": q.Get("agent_url"), "is_registered": true,
				"trust_level": s.Trust, "registry_id": "agent-" + shortHash(s.Name, 8)})
			return
		}
	}
	writeDetail(w, http.StatusNotFound, "Agent not found")
}

// aampAgents are the AAMP records: listed, non-blocked sellers; approved and
// preferred are "active", the rest "pending".
func (g *Registry) aampAgents() []map[string]any {
	out := []map[string]any{}
	for i, s := range g.sellers {
		if !s.InRegistry || s.Trust == "blocked" {
			continue
		}
		status := "pending"
		if s.Trust == "approved" || s.Trust == "preferred" {
			status = "active"
		}
		out = append(out, map[string]any{
			"id": i + 1, "agent_name": s.Name, "primary_domain": s.slug + ".sandbox.dealflow.test", "type": "remote",
			"endpoint_url": s.URL, "repository_url": nil, "protocol_type": "a2a", "capabilities": nonNil(s.Capabilities),
			"iab_capabilities": []string{}, "iab_subcategories": []string{}, "endorsements": []string{},
			"industry_roles": []string{"seller"}, "verification_status": status, "domain_verified": status == "active",
			"gpp_verified": false, "endpoint_health_verified": status == "active", "iab_member": false,
			"created_at": isoZ(g.createdAt),
		})
	}
	return out
}

// aampAuth checks the bearer token (401 otherwise, in the registry's shape).
func (g *Registry) aampAuth(w http.ResponseWriter, r *http.Request) bool {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if ok && strings.EqualFold(scheme, "bearer") && strings.TrimSpace(tok) == g.AAMPToken {
		return true
	}
	writeJSON(w, http.StatusUnauthorized, map[string]any{"success": false, "error": "Authentication required"})
	return false
}

// handleAAMPAgents is GET /api/agents (filters: protocol_type,
// verification_status, primary_domain, verified).
func (g *Registry) handleAAMPAgents(w http.ResponseWriter, r *http.Request) {
	if !g.aampAuth(w, r) {
		return
	}
	q := r.URL.Query()
	agents := []map[string]any{}
	for _, a := range g.aampAgents() {
		if v := q.Get("protocol_type"); v != "" && a["protocol_type"] != v {
			continue
		}
		if v := q.Get("verification_status"); v != "" && a["verification_status"] != v {
			continue
		}
		if v := q.Get("primary_domain"); v != "" && a["primary_domain"] != v {
			continue
		}
		if v := q.Get("verified"); v != "" {
			if want, ok := parseQueryBool(v); ok && (a["verification_status"] == "active") != want {
				continue
			}
		}
		agents = append(agents, a)
	}
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "data": map[string]any{"agents": agents, "count": len(agents), "isAdmin": false}})
}

// handleAAMPAgent is GET /api/agents/{id}.
func (g *Registry) handleAAMPAgent(w http.ResponseWriter, r *http.Request) {
	if !g.aampAuth(w, r) {
		return
	}
	id := r.PathValue("id")
	for _, a := range g.aampAgents() {
		if strconv.Itoa(a["id"].(int)) == id {
			writeJSON(w, http.StatusOK, map[string]any{"success": true, "data": a})
			return
		}
	}
	writeJSON(w, http.StatusNotFound, map[string]any{"success": false, "error": "Agent not found"})
}

package sandbox

import (
	"net/url"
	"sort"
	"testing"
)

func agentNames(t *testing.T, r resp) []string {
	t.Helper()
	var names []string
	for _, a := range get(t, r.body, "agents").([]any) {
		names = append(names, get(t, a, "name").(string))
	}
	sort.Strings(names)
	return names
}

func TestRegistrySimpleAPI(t *testing.T) {
	m, err := Start(t.Context(), DefaultMarket())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	tests := []struct {
		query string
		want  []string
	}{
		{"?agent_type=seller", []string{"Metro Mobile", "Northwind Video", "Offline Networks", "Pixel Display Co", "Shady Reseller", "StreamMax CTV"}},
		{"", []string{"Metro Mobile", "Northwind Video", "Offline Networks", "Pixel Display Co", "Shady Reseller", "StreamMax CTV"}},
		{"?agent_type=seller&capabilities=CTV", []string{"Offline Networks", "Shady Reseller", "StreamMax CTV"}},
		{"?agent_type=seller&capabilities=audio,Mobile", []string{"Metro Mobile", "Pixel Display Co"}},
		{"?agent_type=seller&capabilities=audio", nil},
		{"?agent_type=buyer", nil},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			r := call(t, "GET", m.RegistryURL+"/agents"+tc.query, nil)
			wantStatus(t, r, 200)
			wantEq(t, "agents", agentNames(t, r), tc.want)
		})
	}
	r := call(t, "GET", m.RegistryURL+"/agents?capabilities=ctv", nil)
	trust := map[string]string{}
	for _, a := range get(t, r.body, "agents").([]any) {
		trust[get(t, a, "name").(string)] = get(t, a, "trust_level").(string)
		wantEq(t, "protocols", get(t, a, "protocols"), []any{"a2a"})
		if id := get(t, a, "agent_id").(string); len(id) != len("agent-12345678") {
			t.Errorf("agent_id %q", id)
		}
		wantEq(t, "capability name", get(t, a, "capabilities", 0, "name") != "", true)
	}
	wantEq(t, "trust", trust, map[string]string{"StreamMax CTV": "preferred", "Shady Reseller": "blocked", "Offline Networks": "approved"})

	// /verify
	s := m.Seller("Northwind Video")
	r = call(t, "GET", m.RegistryURL+"/verify?agent_url="+url.QueryEscape(s.URL+"/"), nil)
	wantStatus(t, r, 200)
	wantEq(t, "is_registered", get(t, r.body, "is_registered"), true)
	wantEq(t, "trust_level", get(t, r.body, "trust_level"), "approved")
	wantEq(t, "registry_id", get(t, r.body, "registry_id"), agentID(s))
	r = call(t, "GET", m.RegistryURL+"/verify?agent_url="+url.QueryEscape(m.Seller("Unlisted Media").URL), nil)
	wantStatus(t, r, 404)
	r = call(t, "GET", m.RegistryURL+"/verify", nil)
	wantStatus(t, r, 422)

	// Requests are recorded.
	reqs := m.Registry.Requests()
	if len(reqs) != len(tests)+4 || reqs[0].Path != "/agents" || reqs[len(reqs)-1].Path != "/verify" {
		t.Errorf("registry requests = %d (%v)", len(reqs), reqs[0].Path)
	}
	m.Registry.ResetRequests()
	if len(m.Registry.Requests()) != 0 {
		t.Error("ResetRequests kept requests")
	}
}

func TestRegistryAAMPAPI(t *testing.T) {
	m, err := Start(t.Context(), DefaultMarket())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	for _, hdr := range [][]string{nil, {"Authorization", "Bearer wrong"}, {"X-Api-Key", m.AAMPToken}} {
		r := call(t, "GET", m.RegistryURL+"/api/agents", nil, hdr...)
		wantStatus(t, r, 401)
		wantEq(t, "success", get(t, r.body, "success"), false)
	}
	auth := []string{"Authorization", "Bearer " + m.AAMPToken}
	r := call(t, "GET", m.RegistryURL+"/api/agents", nil, auth...)
	wantStatus(t, r, 200)
	wantEq(t, "success", get(t, r.body, "success"), true)
	agents := get(t, r.body, "data", "agents").([]any)
	wantEq(t, "count", get(t, r.body, "data", "count"), len(agents))
	status := map[string]string{}
	for _, a := range agents {
		status[get(t, a, "agent_name").(string)] = get(t, a, "verification_status").(string)
		wantEq(t, "type", get(t, a, "type"), "remote")
		wantEq(t, "protocol_type", get(t, a, "protocol_type"), "a2a")
		wantEq(t, "roles", get(t, a, "industry_roles"), []any{"seller"})
		wantEq(t, "iab_capabilities", get(t, a, "iab_capabilities"), []any{})
	}
	// Blocked and unlisted sellers are absent; registered ones are pending.
	wantEq(t, "statuses", status, map[string]string{"StreamMax CTV": "active", "Northwind Video": "active",
		"Pixel Display Co": "pending", "Metro Mobile": "active", "Offline Networks": "active"})
	first := get(t, agents, 0)
	wantEq(t, "endpoint", get(t, first, "endpoint_url"), m.Seller("StreamMax CTV").URL)
	wantEq(t, "capabilities", get(t, first, "capabilities"), []any{"ctv", "video"})

	r = call(t, "GET", m.RegistryURL+"/api/agents?verification_status=pending", nil, auth...)
	wantEq(t, "pending count", get(t, r.body, "data", "count"), 1)
	r = call(t, "GET", m.RegistryURL+"/api/agents/1", nil, auth...)
	wantEq(t, "by id", get(t, r.body, "data", "agent_name"), "StreamMax CTV")
	r = call(t, "GET", m.RegistryURL+"/api/agents/999", nil, auth...)
	wantStatus(t, r, 404)
}

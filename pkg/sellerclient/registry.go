package sellerclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/dealflow/dealflow/pkg/market"
)

// RegistryKind selects the registry API dialect.
type RegistryKind string

// Registry dialects.
const (
	// RegistrySimple is the legacy trust registry: GET /agents, GET /verify.
	RegistrySimple RegistryKind = "simple"
	// RegistryAAMP is the IAB agent registry: GET /api/agents with a bearer JWT.
	RegistryAAMP RegistryKind = "aamp"
	// RegistryAAO is the AgenticAdvertising.Org registry of AdCP agents:
	// GET /api/registry/agents?type=sales&capabilities=true&compliance=true.
	// Every record is an AdCP sales agent; compliance feeds trust.
	RegistryAAO RegistryKind = "aao"
)

// ParseRegistryKind reads a --registry-kind value ("" is simple).
func ParseRegistryKind(s string) (RegistryKind, bool) {
	switch k := RegistryKind(strings.ToLower(strings.TrimSpace(s))); k {
	case "", RegistrySimple:
		return RegistrySimple, true
	case RegistryAAMP, RegistryAAO:
		return k, true
	}
	return "", false
}

// aaoAgentsPath is the AAO registry's listing (listAgents).
const aaoAgentsPath = "/api/registry/agents"

func aaoQuery() url.Values {
	return url.Values{"type": {"sales"}, "capabilities": {"true"}, "compliance": {"true"}}
}

// maxRegistryPages bounds pagination so a looping registry cannot hold a call.
const maxRegistryPages = 100

// Registry is one agent registry. Kind "" means simple. Token, when set, is
// sent as "Authorization: Bearer <token>" (required by AAMP).
type Registry struct {
	URL   string
	Kind  RegistryKind
	Token string
}

// SellerRecord is a discovered seller. URL is normalised (CanonicalURL), so it
// can key caches and dedup sellers across registries.
type SellerRecord struct {
	AgentID      string
	Name         string
	URL          string
	Protocols    []string
	Capabilities []string
	Trust        market.Trust
	// Protocol is the API the seller speaks (IAB seller-agent unless the
	// record says adcp/mcp, or comes from the AAO registry).
	Protocol market.Protocol
	// MCPEndpoint is an AdCP agent's MCP endpoint ("" = URL).
	MCPEndpoint string
	// Compliance is the AAO registry's compliance status (passing,
	// degraded, failing), "" when not reported.
	Compliance string
	// PublisherDomains are the AAO record's publisher_domains.
	PublisherDomains []string
}

// SkippedRecord is a malformed registry record that was left out; the rest of
// the listing is still used.
type SkippedRecord struct {
	Page    int    // 1-based page of the listing
	Index   int    // 0-based position in that page
	AgentID string // when it could be read
	Reason  string
}

// Discovery is the result of DiscoverSellers. Records filtered out by
// capability or role are not "skipped"; only malformed ones are.
type Discovery struct {
	Sellers []SellerRecord
	Skipped []SkippedRecord
	// Pages is the number of pages read; Truncated is set when the page bound
	// stopped pagination while the registry still offered a next page.
	Pages     int
	Truncated bool
}

// TrustInfo is what a registry says about one agent URL.
type TrustInfo struct {
	AgentURL     string
	IsRegistered bool
	Trust        market.Trust
	// RegistryID is the registry's id for the agent (AAMP: the agent id).
	RegistryID string
}

// DiscoverSellers lists the sellers of a registry that offer ANY of caps
// (case-insensitive; empty caps = all). The simple dialect is asked to filter
// server-side too; both dialects are filtered here so they behave the same.
// A malformed record is skipped (see Discovery.Skipped), duplicates by URL are
// dropped, and pagination (next link, page/total_pages, AAMP data.next) is
// followed up to 100 pages. If a later page fails, the records read so far are
// returned together with the error.
func (c *Client) DiscoverSellers(ctx context.Context, reg Registry, caps []string) (Discovery, error) {
	const op = "DiscoverSellers"
	base, kind, err := c.registryBase(op, reg)
	if err != nil {
		return Discovery{}, err
	}
	want := capFilter(caps)
	var first string
	switch kind {
	case RegistryAAMP:
		first = joinURL(base, "/api/agents", nil)
	case RegistryAAO:
		first = joinURL(base, aaoAgentsPath, aaoQuery())
	default:
		q := url.Values{"agent_type": {"seller"}}
		if names := capNames(caps); len(names) > 0 {
			q.Set("capabilities", strings.Join(names, ","))
		}
		first = joinURL(base, "/agents", q)
	}
	d := Discovery{Sellers: []SellerRecord{}}
	seen := map[string]bool{}
	err = c.paginate(ctx, op, reg, kind, first, &d, func(page, idx int, raw json.RawMessage) {
		rec, skip, reason := c.mapRecord(kind, raw, true)
		if reason != "" {
			d.Skipped = append(d.Skipped, SkippedRecord{Page: page, Index: idx, AgentID: rec.AgentID, Reason: reason})
			return
		}
		if skip || !matchesCaps(rec.Capabilities, want) {
			return
		}
		if seen[rec.URL] {
			d.Skipped = append(d.Skipped, SkippedRecord{Page: page, Index: idx, AgentID: rec.AgentID, Reason: "duplicate url " + rec.URL})
			return
		}
		seen[rec.URL] = true
		d.Sellers = append(d.Sellers, rec)
	})
	return d, err
}

// VerifyAgent asks a registry about one agent URL. Simple dialect: GET
// /verify?agent_url=... (404 means not registered, not an error). AAMP: the
// listing is searched for an agent whose normalised endpoint_url equals the
// normalised agentURL; RegistryID is that agent's id. Trust strings use the
// buyer's vocabulary (the seller's "approved" is verified).
func (c *Client) VerifyAgent(ctx context.Context, reg Registry, agentURL string) (TrustInfo, error) {
	const op = "VerifyAgent"
	target, err := CanonicalURL(agentURL)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.Op = op
		}
		return TrustInfo{}, err
	}
	base, kind, err := c.registryBase(op, reg)
	if err != nil {
		return TrustInfo{}, err
	}
	unknown := TrustInfo{AgentURL: target, Trust: market.TrustUnknown}
	if kind == RegistryAAMP || kind == RegistryAAO {
		listing := joinURL(base, "/api/agents", nil)
		if kind == RegistryAAO {
			listing = joinURL(base, aaoAgentsPath, aaoQuery())
		}
		var found *TrustInfo
		var d Discovery
		err := c.paginate(ctx, op, reg, kind, listing, &d, func(_, _ int, raw json.RawMessage) {
			if found != nil {
				return
			}
			rec, _, reason := c.mapRecord(kind, raw, false)
			if reason == "" && rec.URL == target {
				found = &TrustInfo{AgentURL: target, IsRegistered: true, Trust: rec.Trust, RegistryID: rec.AgentID}
			}
		})
		if found != nil {
			return *found, nil
		}
		if err != nil {
			return TrustInfo{}, err
		}
		return unknown, nil
	}
	var out TrustInfo
	err = c.do(ctx, call{op: op, method: "GET", url: joinURL(base, "/verify", url.Values{"agent_url": {target}}), bearer: reg.Token,
		stream: func(r io.Reader) (err error) {
			out, err = parseVerify(r, target)
			return err
		}})
	if errors.Is(err, ErrNotFound) {
		return unknown, nil
	}
	if err != nil {
		return TrustInfo{}, err
	}
	return out, nil
}

// registryBase validates the registry URL and kind.
func (c *Client) registryBase(op string, reg Registry) (string, RegistryKind, error) {
	kind := RegistryKind(strings.ToLower(string(reg.Kind)))
	if kind == "" {
		kind = RegistrySimple
	}
	if kind != RegistrySimple && kind != RegistryAAMP && kind != RegistryAAO {
		return "", "", validationError(op, reg.URL, fmt.Sprintf("unknown registry kind %q", reg.Kind))
	}
	base, err := c.checkTarget(reg.URL)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.Op = op
		}
		return "", "", err
	}
	return base, kind, nil
}

// paginate GETs first and follows next pages, calling each for every record.
func (c *Client) paginate(ctx context.Context, op string, reg Registry, kind RegistryKind, first string, d *Discovery,
	each func(page, idx int, raw json.RawMessage)) error {
	firstURL, _ := url.Parse(first)
	visited := map[string]bool{first: true}
	next := first
	for page := 1; ; page++ {
		if page > maxRegistryPages {
			d.Truncated = true
			return nil
		}
		var p registryPage
		err := c.do(ctx, call{op: op, method: "GET", url: next, bearer: reg.Token, stream: func(r io.Reader) (err error) {
			p, err = parseRegistryPage(kind, r)
			return err
		}})
		if err != nil {
			return err
		}
		d.Pages = page
		for i, raw := range p.records {
			each(page, i, raw)
		}
		nextURL, err := p.nextURL(firstURL, next)
		if err != nil {
			return badResponse(op, next, 200, err)
		}
		if nextURL == "" || visited[nextURL] {
			return nil
		}
		visited[nextURL] = true
		next = nextURL
	}
}

// registryPage is one decoded listing page.
type registryPage struct {
	records    []json.RawMessage
	next       string // next link, absolute or relative
	page       int
	totalPages int
}

// nextURL resolves the page's continuation: an explicit next link (same
// origin as the registry only, so the bearer token never leaves it), else
// page+1 when page < total_pages.
func (p registryPage) nextURL(first *url.URL, current string) (string, error) {
	if p.next != "" {
		cur, err := url.Parse(current)
		if err != nil {
			return "", err
		}
		ref, err := url.Parse(p.next)
		if err != nil {
			return "", fmt.Errorf("registry: bad next link %q", truncate(p.next, 200))
		}
		abs := cur.ResolveReference(ref)
		if !sameOrigin(abs, first) {
			return "", fmt.Errorf("registry: next link %q leaves the registry host", truncate(abs.Redacted(), 200))
		}
		return abs.String(), nil
	}
	if p.page > 0 && p.totalPages > p.page {
		u := *first
		q := u.Query()
		q.Set("page", strconv.Itoa(p.page+1))
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	return "", nil
}

// parseRegistryPage decodes a listing page of either dialect: simple
// {"agents":[...], "next"?, "page"?, "total_pages"?} and AAMP
// {"success":true,"data":{"agents":[...],"count":N,"next"?}}. Only the
// envelope must be well-formed; records are decoded one by one later.
func parseRegistryPage(kind RegistryKind, r io.Reader) (registryPage, error) {
	var top map[string]json.RawMessage
	if err := readObject(r, &top); err != nil {
		return registryPage{}, fmt.Errorf("registry listing: %w", err)
	}
	var p registryPage
	readPaging(&p, top)
	container := top
	if kind == RegistryAAMP || top["data"] != nil {
		if raw, ok := top["success"]; ok {
			var success bool
			if jsonv2.Unmarshal(raw, &success) == nil && !success {
				var msg string
				_ = jsonv2.Unmarshal(top["error"], &msg)
				return registryPage{}, fmt.Errorf("registry answered success=false: %s", truncate(msg, 200))
			}
		}
		if data, ok := top["data"]; ok && !isNull(data) {
			t := trimSpace(data)
			if t[0] == '[' {
				container = map[string]json.RawMessage{"agents": t}
			} else {
				var inner map[string]json.RawMessage
				if err := jsonv2.Unmarshal(t, &inner); err != nil {
					return registryPage{}, fmt.Errorf("registry listing data: %w", err)
				}
				container = inner
				readPaging(&p, inner)
			}
		} else if kind == RegistryAAMP {
			return registryPage{}, errors.New(`registry listing: no "data"`)
		}
	}
	if raw, ok := container["agents"]; ok && !isNull(raw) {
		if err := jsonv2.Unmarshal(raw, &p.records); err != nil {
			return registryPage{}, fmt.Errorf(`registry listing "agents": %w`, err)
		}
	}
	return p, nil
}

// readPaging picks up next/page/total_pages from an object, tolerating types.
func readPaging(p *registryPage, obj map[string]json.RawMessage) {
	for _, k := range []string{"next", "next_url", "next_page_url"} {
		var s string
		if jsonv2.Unmarshal(obj[k], &s) == nil && looksLikeLink(s) {
			p.next = s
			break
		}
	}
	var n flexInt
	if raw, ok := obj["page"]; ok && jsonv2.Unmarshal(raw, &n) == nil && n > 0 {
		p.page = int(n)
	}
	n = 0
	if raw, ok := obj["total_pages"]; ok && jsonv2.Unmarshal(raw, &n) == nil && n > 0 {
		p.totalPages = int(n)
	}
}

// looksLikeLink separates URL references from opaque cursors.
func looksLikeLink(s string) bool {
	s = strings.TrimSpace(s)
	return s != "" && (strings.Contains(s, "/") || strings.HasPrefix(s, "?"))
}

// simpleRecord is a record of the simple registry (the reference AgentCard).
type simpleRecord struct {
	AgentID      string     `json:"agent_id"`
	Name         string     `json:"name"`
	URL          string     `json:"url"`
	Protocols    stringList `json:"protocols"`
	Capabilities stringList `json:"capabilities"`
	TrustLevel   string     `json:"trust_level"`
	TrustStatus  string     `json:"trust_status"`
	// Protocol and MCPEndpoint mark an AdCP sales agent in the simple
	// registry (protocols may also list "adcp").
	Protocol    string `json:"protocol"`
	MCPEndpoint string `json:"mcp_endpoint"`
}

// aaoRecord is a record of the AgenticAdvertising.Org registry (listAgents).
type aaoRecord struct {
	URL              string          `json:"url"`
	Name             string          `json:"name"`
	Type             string          `json:"type"`
	Protocol         string          `json:"protocol"` // mcp | a2a (transport)
	MCPEndpoint      string          `json:"mcp_endpoint"`
	Health           json.RawMessage `json:"health"`
	Capabilities     json.RawMessage `json:"capabilities"`
	Compliance       json.RawMessage `json:"compliance"`
	PublisherDomains stringList      `json:"publisher_domains"`
	Verified         bool            `json:"verified"`
}

// statusOf reads a status that is either a string or an object with a
// "status" field.
func statusOf(raw json.RawMessage) string {
	t := trimSpace(raw)
	if isNull(t) {
		return ""
	}
	var s string
	if jsonv2.Unmarshal(t, &s) == nil {
		return strings.ToLower(strings.TrimSpace(s))
	}
	var o struct {
		Status string `json:"status"`
	}
	if jsonv2.Unmarshal(t, &o) == nil {
		return strings.ToLower(strings.TrimSpace(o.Status))
	}
	return ""
}

// aaoCapabilities reads capabilities as a list, or as an object's channels.
func aaoCapabilities(raw json.RawMessage) []string {
	t := trimSpace(raw)
	if isNull(t) {
		return nil
	}
	var l stringList
	if jsonv2.Unmarshal(t, &l) == nil {
		return l
	}
	var o struct {
		Channels stringList `json:"channels"`
		MediaBuy *struct {
			Channels stringList `json:"channels"`
		} `json:"media_buy"`
	}
	if jsonv2.Unmarshal(t, &o) == nil {
		out := []string(o.Channels)
		if o.MediaBuy != nil {
			out = append(out, o.MediaBuy.Channels...)
		}
		return out
	}
	return nil
}

// aampRecord is a record of the IAB agent registry.
type aampRecord struct {
	ID                 json.RawMessage `json:"id"`
	AgentName          string          `json:"agent_name"`
	EndpointURL        string          `json:"endpoint_url"`
	ProtocolType       string          `json:"protocol_type"`
	Capabilities       stringList      `json:"capabilities"`
	IABCapabilities    stringList      `json:"iab_capabilities"`
	IndustryRoles      stringList      `json:"industry_roles"`
	VerificationStatus string          `json:"verification_status"`
}

// mapRecord turns one raw record into a SellerRecord. reason is non-empty for
// a malformed record; skip is true for a well-formed record that is not a
// seller (AAMP industry_roles without "seller", when sellersOnly).
func (c *Client) mapRecord(kind RegistryKind, raw json.RawMessage, sellersOnly bool) (rec SellerRecord, skip bool, reason string) {
	t := trimSpace(raw)
	if len(t) == 0 || t[0] != '{' {
		return rec, false, "record is not a JSON object"
	}
	var rawURL string
	rec.Protocol = market.ProtocolIAB
	if kind == RegistryAAO {
		var a aaoRecord
		if err := jsonv2.Unmarshal(t, &a); err != nil {
			return rec, false, "malformed record: " + shortErr(err)
		}
		rec.Name, rawURL = a.Name, a.URL
		if strings.TrimSpace(rawURL) == "" {
			rawURL = a.MCPEndpoint
		}
		rec.AgentID = rawURL
		if strings.TrimSpace(rawURL) == "" {
			return rec, false, "missing url"
		}
		if a.Protocol != "" && !strings.EqualFold(a.Protocol, "mcp") {
			return rec, false, "agent speaks " + a.Protocol + " only; dealflow speaks AdCP over MCP"
		}
		rec.Protocol = market.ProtocolADCP
		if ep := strings.TrimSpace(a.MCPEndpoint); ep != "" {
			n, err := CanonicalURL(ep)
			if err != nil {
				return rec, false, "invalid mcp_endpoint: " + shortErr(err)
			}
			rec.MCPEndpoint = n
		}
		rec.Protocols = []string{"adcp", "mcp"}
		rec.Capabilities = dedup(aaoCapabilities(a.Capabilities))
		rec.PublisherDomains = dedup(a.PublisherDomains)
		rec.Compliance = statusOf(a.Compliance)
		switch {
		case rec.Compliance == "passing" || a.Verified:
			rec.Trust = market.TrustVerified
		default:
			rec.Trust = market.TrustRegistered
		}
		if sellersOnly && a.Type != "" && !strings.EqualFold(a.Type, "sales") {
			skip = true
		}
	} else if kind == RegistryAAMP {
		var a aampRecord
		if err := jsonv2.Unmarshal(t, &a); err != nil {
			return rec, false, "malformed record: " + shortErr(err)
		}
		rec.AgentID = idString(a.ID)
		if rec.AgentID == "" {
			rec.AgentID = a.AgentName
		}
		rec.Name = a.AgentName
		if rec.AgentID == "" {
			return rec, false, "missing id and agent_name"
		}
		rawURL = a.EndpointURL
		if strings.TrimSpace(rawURL) == "" {
			return rec, false, "missing endpoint_url"
		}
		if a.ProtocolType != "" {
			rec.Protocols = []string{a.ProtocolType}
		}
		rec.Capabilities = dedup(a.Capabilities, a.IABCapabilities)
		rec.Trust = market.TrustRegistered
		if strings.EqualFold(strings.TrimSpace(a.VerificationStatus), "active") {
			rec.Trust = market.TrustVerified
		}
		if sellersOnly && len(a.IndustryRoles) > 0 && !containsFold(a.IndustryRoles, "seller") {
			skip = true
		}
	} else {
		var s simpleRecord
		if err := jsonv2.Unmarshal(t, &s); err != nil {
			return rec, false, "malformed record: " + shortErr(err)
		}
		rec.AgentID, rec.Name, rawURL = s.AgentID, s.Name, s.URL
		switch {
		case rec.AgentID == "":
			return rec, false, "missing agent_id"
		case rec.Name == "":
			return rec, false, "missing name"
		case strings.TrimSpace(rawURL) == "":
			return rec, false, "missing url"
		}
		rec.Protocols = dedup(s.Protocols)
		rec.Capabilities = dedup(s.Capabilities)
		if p, ok := market.ParseProtocol(s.Protocol); ok && p.IsADCP() || containsFold(rec.Protocols, "adcp") {
			rec.Protocol = market.ProtocolADCP
		} else if !ok {
			return rec, false, "unknown protocol " + truncate(s.Protocol, 50)
		}
		if ep := strings.TrimSpace(s.MCPEndpoint); ep != "" {
			n, err := CanonicalURL(ep)
			if err != nil {
				return rec, false, "invalid mcp_endpoint: " + shortErr(err)
			}
			rec.MCPEndpoint = n
		}
		trust := s.TrustLevel
		if trust == "" {
			trust = s.TrustStatus
		}
		rec.Trust = market.ParseTrust(trust)
	}
	n, err := CanonicalURL(rawURL)
	if err != nil {
		return rec, false, "invalid url: " + shortErr(err)
	}
	if u, _ := url.Parse(n); u != nil && c.guard.checkHost(u.Hostname()) != nil {
		return rec, false, "private url refused: " + n
	}
	rec.URL = n
	if rec.Protocols == nil {
		rec.Protocols = []string{}
	}
	if rec.Capabilities == nil {
		rec.Capabilities = []string{}
	}
	return rec, skip, ""
}

// parseVerify decodes the simple registry's /verify answer. It also accepts the
// IAB AgentTrustVerification shape (trust_status, agent_id).
func parseVerify(r io.Reader, target string) (TrustInfo, error) {
	var v struct {
		IsRegistered *bool           `json:"is_registered"`
		TrustLevel   string          `json:"trust_level"`
		TrustStatus  string          `json:"trust_status"`
		RegistryID   json.RawMessage `json:"registry_id"`
		AgentID      json.RawMessage `json:"agent_id"`
	}
	if err := readObject(r, &v); err != nil {
		return TrustInfo{}, fmt.Errorf("verify: %w", err)
	}
	trust := v.TrustLevel
	if trust == "" {
		trust = v.TrustStatus
	}
	out := TrustInfo{AgentURL: target, Trust: market.ParseTrust(trust), RegistryID: idString(v.RegistryID)}
	if out.RegistryID == "" {
		out.RegistryID = idString(v.AgentID)
	}
	if v.IsRegistered != nil {
		out.IsRegistered = *v.IsRegistered
	} else {
		out.IsRegistered = out.Trust != market.TrustUnknown
	}
	return out, nil
}

// idString renders a JSON id (string or number) as a string; null is "".
func idString(raw json.RawMessage) string {
	t := trimSpace(raw)
	if isNull(t) {
		return ""
	}
	var s string
	if jsonv2.Unmarshal(t, &s) == nil {
		return strings.TrimSpace(s)
	}
	if v := jsontext.Value(t); v.Kind() == '0' && v.IsValid() {
		return string(t) // a number as written
	}
	return ""
}

// capFilter lowercases the wanted capabilities; nil means no filter.
func capFilter(caps []string) map[string]bool {
	names := capNames(caps)
	if len(names) == 0 {
		return nil
	}
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[strings.ToLower(n)] = true
	}
	return m
}

// capNames trims and drops empty capability names, keeping caller order.
func capNames(caps []string) []string {
	var out []string
	for _, c := range caps {
		if c = strings.TrimSpace(c); c != "" {
			out = append(out, c)
		}
	}
	return out
}

// matchesCaps is ANY-match, case-insensitive; a nil filter matches all.
func matchesCaps(have []string, want map[string]bool) bool {
	if want == nil {
		return true
	}
	for _, h := range have {
		if want[strings.ToLower(strings.TrimSpace(h))] {
			return true
		}
	}
	return false
}

// containsFold reports whether list holds s, case-insensitively.
func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(strings.TrimSpace(x), s) {
			return true
		}
	}
	return false
}

// shortErr keeps error text short for skip reasons.
func shortErr(err error) string { return truncate(err.Error(), 200) }

package sandbox

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// ADCPSellerConfig configures one sandbox AdCP 3.1 sales agent of the
// market. The agent itself is internal/sandbox/adcp, which registers itself
// with RegisterADCP when imported (this package cannot import it): a market
// started without it has no AdCP sellers.
type ADCPSellerConfig struct {
	Name string `json:"name"`
	// Trust is the registry trust (preferred|approved|verified|registered|unknown|blocked).
	Trust        string   `json:"trust"`
	Capabilities []string `json:"capabilities"`
	// Unlisted keeps the agent out of the registry.
	Unlisted bool `json:"unlisted,omitempty"`
	// Compliance is what the AAO registry reports (passing by default,
	// degraded or failing).
	Compliance string `json:"compliance,omitempty"`
	// ManualApproval makes every create_media_buy answer submitted, decided
	// after ApprovalDelay (default 300ms): approved, or rejected with
	// RejectSubmitted.
	ManualApproval  bool          `json:"manual_approval,omitempty"`
	ApprovalDelay   time.Duration `json:"-"`
	ApprovalDelayMS int           `json:"approval_delay_ms,omitempty"`
	RejectSubmitted bool          `json:"reject_submitted,omitempty"`
	// Proposals makes the agent offer proposals: get_products in refine
	// mode (a draft proposal for the included products), finalize, and
	// create_media_buy with proposal_id + total_budget.
	Proposals bool `json:"proposals,omitempty"`
	// RequireSigningFor lists operations that need RFC 9421 signatures.
	RequireSigningFor []string `json:"require_signing_for,omitempty"`
	// PriceFactor scales every price of the default catalog (fixed, floor,
	// guidance, minimum spend); 0 means 1.
	PriceFactor float64 `json:"price_factor,omitempty"`
	// Token is the buyer's bearer token (minted from the name when empty);
	// AccountID and BrandDomain are what it authenticates.
	Token       string `json:"token,omitempty"`
	AccountID   string `json:"account_id,omitempty"`
	BrandDomain string `json:"brand_domain,omitempty"`
	Faults      Faults `json:"faults"`
	// Delivery is how the agent delivers its media buys over their
	// flights (get_media_buy_delivery), per product its packages book.
	Delivery DeliveryConfig `json:"delivery,omitempty"`
	// TimeScale is the market's flight clock (WithTimeScale), set by the
	// market when it starts the agent.
	TimeScale time.Duration `json:"-"`
}

// ADCPAgent is a running sandbox sales agent (internal/sandbox/adcp.Agent).
type ADCPAgent interface {
	Handler() http.Handler
	Close()
}

var (
	adcpMu      sync.Mutex
	adcpFactory func(ADCPSellerConfig) ADCPAgent
)

// RegisterADCP installs the constructor of sandbox AdCP agents
// (internal/sandbox/adcp calls it from init).
func RegisterADCP(f func(ADCPSellerConfig) ADCPAgent) {
	adcpMu.Lock()
	defer adcpMu.Unlock()
	adcpFactory = f
}

func newADCPAgent(c ADCPSellerConfig) ADCPAgent {
	adcpMu.Lock()
	f := adcpFactory
	adcpMu.Unlock()
	if f == nil {
		return nil
	}
	return f(c)
}

// ADCPSeller is a running sandbox AdCP sales agent.
type ADCPSeller struct {
	Name string
	// URL is the agent's base URL (its identity); MCPEndpoint is URL/mcp.
	URL          string
	MCPEndpoint  string
	Trust        string
	Capabilities []string
	InRegistry   bool
	Compliance   string
	// Token, AccountID and BrandDomain are the buyer's credentials there.
	Token       string
	AccountID   string
	BrandDomain string
	// Agent is the running agent (type-assert to *adcp.Agent for Calls).
	Agent ADCPAgent

	slug string
	own  *listenerServer
}

// ADCPSeller returns the AdCP seller with the given name, or nil.
func (m *Market) ADCPSeller(name string) *ADCPSeller {
	for _, s := range m.ADCPSellers {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// startADCP starts the configured AdCP agents, each on a listener of its
// own (port from basePort after the registry and the IAB sellers, else
// random), serving MCP at /mcp.
func (m *Market) startADCP(cfg MarketConfig, o options) error {
	for i, c := range cfg.ADCPSellers {
		if c.Token == "" {
			c.Token = "adcp_sandbox_" + shortHash(o.seed+"/"+c.Name, 32)
		}
		if c.AccountID == "" {
			c.AccountID = "acct-" + slugify(c.Name)
		}
		if c.BrandDomain == "" {
			c.BrandDomain = "acme-soda.example"
		}
		if c.Compliance == "" {
			c.Compliance = "passing"
		}
		if c.ApprovalDelay <= 0 && c.ApprovalDelayMS > 0 {
			c.ApprovalDelay = time.Duration(c.ApprovalDelayMS) * time.Millisecond
		}
		if c.ManualApproval && c.ApprovalDelay <= 0 {
			c.ApprovalDelay = 300 * time.Millisecond
		}
		c.TimeScale = o.timeScale
		agent := newADCPAgent(c)
		if agent == nil {
			return nil // internal/sandbox/adcp is not linked in: no AdCP sellers
		}
		trust, _ := sellerTrust(c.Trust)
		s := &ADCPSeller{Name: c.Name, Trust: trust, Capabilities: nonNil(c.Capabilities), InRegistry: !c.Unlisted, Compliance: c.Compliance,
			Token: c.Token, AccountID: c.AccountID, BrandDomain: c.BrandDomain, Agent: agent, slug: slugify(c.Name)}
		mux := http.NewServeMux()
		mux.Handle("/mcp", agent.Handler())
		s.own = &listenerServer{handler: mux}
		port := 0
		if o.basePort > 0 {
			port = o.basePort + 1 + len(cfg.Sellers) + i
		}
		ln, addr, err := listenOrReserve(false, port, o.listenHost, o.advertise)
		if err != nil {
			agent.Close()
			return fmt.Errorf("sandbox: AdCP seller %q: %w", c.Name, err)
		}
		s.URL = "http://" + addr
		s.MCPEndpoint = s.URL + "/mcp"
		s.own.serve(ln)
		m.ADCPSellers = append(m.ADCPSellers, s)
	}
	return nil
}

func (m *Market) closeADCP() {
	for _, s := range m.ADCPSellers {
		s.own.shutdown()
		s.Agent.Close()
	}
}

func validateADCP(c MarketConfig, seen map[string]bool) error {
	for i, s := range c.ADCPSellers {
		if strings.TrimSpace(s.Name) == "" || slugify(s.Name) == "" {
			return fmt.Errorf("%w: AdCP seller %d has no usable name", ErrConfig, i)
		}
		if seen[s.Name] {
			return fmt.Errorf("%w: duplicate seller name %q", ErrConfig, s.Name)
		}
		seen[s.Name] = true
		if _, ok := sellerTrust(s.Trust); !ok {
			return fmt.Errorf("%w: AdCP seller %q: unknown trust %q", ErrConfig, s.Name, s.Trust)
		}
		switch s.Compliance {
		case "", "passing", "degraded", "failing":
		default:
			return fmt.Errorf("%w: AdCP seller %q: compliance %q is not passing, degraded or failing", ErrConfig, s.Name, s.Compliance)
		}
		if err := s.Faults.validate(); err != nil {
			return fmt.Errorf("%w: AdCP seller %q: %w", ErrConfig, s.Name, err)
		}
		if err := s.Delivery.validate(); err != nil {
			return fmt.Errorf("%w: AdCP seller %q: %w", ErrConfig, s.Name, err)
		}
	}
	return nil
}

// DefaultADCPSellers are the default market's two AdCP sales agents: one
// books at once and offers proposals (refine, finalize, buy by
// proposal_id), the other answers submitted and approves 300ms later.
func DefaultADCPSellers() []ADCPSellerConfig {
	return []ADCPSellerConfig{
		{Name: "Brightline AdCP", Trust: "approved", Capabilities: []string{"ctv", "video", "display"}, PriceFactor: 0.75, Proposals: true},
		{Name: "Harbor Sports AdCP", Trust: "approved", Capabilities: []string{"ctv", "video", "display"}, PriceFactor: 0.85,
			ManualApproval: true, ApprovalDelay: 300 * time.Millisecond},
	}
}

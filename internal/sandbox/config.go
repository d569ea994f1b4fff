package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/dealflow/dealflow/pkg/identity"
)

// ErrConfig marks an invalid market configuration.
var ErrConfig = errors.New("sandbox: invalid config")

// MarketConfig describes a sandbox market: a registry and its sellers.
type MarketConfig struct {
	Registry RegistryConfig `json:"registry"`
	Sellers  []SellerConfig `json:"sellers"`
	// ADCPSellers are AdCP 3.1 sales agents (internal/sandbox/adcp).
	ADCPSellers []ADCPSellerConfig `json:"adcp_sellers,omitempty"`
}

// RegistryConfig configures the sandbox agent registry.
type RegistryConfig struct {
	// AAMPToken is the bearer token the AAMP API (/api/agents) requires.
	// Empty means the sandbox mints a deterministic one.
	AAMPToken string `json:"aamp_token,omitempty"`
	// Faults apply to every registry response (e.g. Down for stale-if-error tests).
	Faults Faults `json:"faults"`
}

// SellerConfig configures one sandbox seller.
type SellerConfig struct {
	Name string `json:"name"`
	// Trust is the registry trust in the seller vocabulary:
	// preferred|approved|verified|registered|unknown|blocked ("verified" is
	// published as "approved", the seller-side word).
	Trust        string   `json:"trust"`
	Capabilities []string `json:"capabilities"`
	// InRegistry lists the seller in the registry. It defaults to true when
	// loaded from JSON; a Go literal must set it explicitly.
	InRegistry bool `json:"in_registry"`
	// OrganizationID is the quote's seller_id and the products'
	// seller_organization_id (default "seller-premium-pub-001", the real seller's).
	OrganizationID string `json:"organization_id,omitempty"`
	// Products override default-catalog products by ID (non-zero fields win)
	// or add new ones.
	Products []ProductConfig `json:"products,omitempty"`
	Packages []PackageConfig `json:"packages,omitempty"`
	// Keys maps a tier name (seat|agency|advertiser) to the identity its API
	// key carries. Nil means the §8 fixture identities
	// seat{seat-1}, agency{seat-1,agency-1}, advertiser{seat-1,agency-1,adv-1}.
	Keys map[string]identity.BuyerIdentity `json:"keys,omitempty"`
	// APIKeys optionally fixes the key string per tier; otherwise the sandbox
	// mints deterministic ask_live_ keys from the seller name and tier.
	APIKeys map[string]string `json:"api_keys,omitempty"`
	// RevokedKeys are key strings that answer 401 "API key key-… has been revoked".
	RevokedKeys []string `json:"revoked_keys,omitempty"`
	// AgentTrust is the seller's own view of buyer agent URLs (agent_url on
	// quotes/pricing): approved|preferred → advertiser ceiling, registered →
	// seat, blocked → 403; any other URL is unknown → public ceiling.
	AgentTrust map[string]string `json:"agent_trust,omitempty"`
	Faults     Faults            `json:"faults"`
	// Delivery is how the seller delivers its booked deals over their
	// flights (GET /api/v1/deals/{id}/performance), with its faults.
	Delivery DeliveryConfig `json:"delivery,omitempty"`
}

// UnmarshalJSON applies the JSON default in_registry=true.
func (s *SellerConfig) UnmarshalJSON(b []byte) error {
	type plain SellerConfig
	aux := struct {
		*plain
		InRegistry *bool `json:"in_registry"`
	}{plain: (*plain)(s)}
	if err := strictUnmarshal(b, &aux); err != nil {
		return err
	}
	s.InRegistry = aux.InRegistry == nil || *aux.InRegistry
	return nil
}

// ProductConfig defines or overrides a catalog product. Zero numeric fields
// keep the catalog value when overriding; a product with neither base nor
// floor CPM is unpriced (quotes answer 422, like the real seller's DOOH).
type ProductConfig struct {
	ID                 string   `json:"id"`
	Name               string   `json:"name,omitempty"`
	Description        string   `json:"description,omitempty"`
	InventoryType      string   `json:"inventory_type,omitempty"`
	BaseCPM            float64  `json:"base_cpm,omitempty"`
	FloorCPM           float64  `json:"floor_cpm,omitempty"`
	MaxImpressions     int64    `json:"max_impressions,omitempty"`
	MinimumImpressions int64    `json:"minimum_impressions,omitempty"`
	DealTypes          []string `json:"deal_types,omitempty"`
}

// PackageConfig defines a media-kit package. Zero BasePrice/FloorPrice take
// the first product's base/floor CPM. AvailableImpressions is informational
// (the seller's package views have no such field).
type PackageConfig struct {
	ID                   string   `json:"id,omitempty"`
	Name                 string   `json:"name"`
	Description          string   `json:"description,omitempty"`
	ProductIDs           []string `json:"product_ids"`
	AdFormats            []string `json:"ad_formats,omitempty"`
	DeviceTypes          []int    `json:"device_types,omitempty"`
	Cat                  []string `json:"cat,omitempty"`
	Cattax               int      `json:"cattax,omitempty"`
	GeoTargets           []string `json:"geo_targets,omitempty"`
	Tags                 []string `json:"tags,omitempty"`
	BasePrice            float64  `json:"base_price,omitempty"`
	FloorPrice           float64  `json:"floor_price,omitempty"`
	Featured             bool     `json:"featured,omitempty"`
	AvailableImpressions int64    `json:"available_impressions,omitempty"`
	// Layer is synced|curated|dynamic (default curated).
	Layer string `json:"layer,omitempty"`
	// StandardSegments / ContextualSegments are the audience capability
	// segment ids (IAB Audience 1.1 / Content 3.1).
	StandardSegments   []string `json:"standard_segments,omitempty"`
	ContextualSegments []string `json:"contextual_segments,omitempty"`
}

// Faults are failure knobs applied to every response of one seller (or the
// registry). Durations are Go duration strings in JSON ("150ms").
type Faults struct {
	Latency time.Duration // added before every response
	Jitter  time.Duration // plus a seeded random 0..Jitter
	// Down refuses connections (the listener is closed). In shared-listener
	// mode a seller taken down at runtime closes each connection instead.
	Down bool
	// ErrorRate answers 503 with this probability (seeded, deterministic).
	ErrorRate float64
	Garbage   bool // 200 with a non-JSON body
	Truncated bool // a valid prefix of the real body, then the connection is cut
	Oversized bool // a 200 body of more than 16 MiB
	// SlowBody sends headers at once, then dribbles the body over this long.
	SlowBody time.Duration
	// Booking misbehaves at deal booking (POST /api/v1/deals), after
	// discovery, media kits and negotiation went well: BookingHang makes
	// the seller stop answering (that request and every later one) without
	// booking, BookingThenHang books and then stops answering,
	// BookingUnavailable answers the booking 503. A held request waits
	// until the faults change (which ends the stall) or the client leaves.
	Booking BookingFault
	// BookingRate is the share of bookings the Booking fault hits
	// (seeded; 0 means every booking).
	BookingRate float64
}

// BookingFault is a misbehaviour at deal booking.
type BookingFault string

// Booking faults.
const (
	BookingOK          BookingFault = ""
	BookingHang        BookingFault = "hang"
	BookingThenHang    BookingFault = "book_then_hang"
	BookingUnavailable BookingFault = "unavailable"
)

type faultsJSON struct {
	Latency     jsonDuration `json:"latency,omitempty"`
	Jitter      jsonDuration `json:"jitter,omitempty"`
	Down        bool         `json:"down,omitempty"`
	ErrorRate   float64      `json:"error_rate,omitempty"`
	Garbage     bool         `json:"garbage,omitempty"`
	Truncated   bool         `json:"truncated,omitempty"`
	Oversized   bool         `json:"oversized,omitempty"`
	SlowBody    jsonDuration `json:"slow_body,omitempty"`
	Booking     BookingFault `json:"booking,omitempty"`
	BookingRate float64      `json:"booking_rate,omitempty"`
}

// MarshalJSON writes durations as Go duration strings.
func (f Faults) MarshalJSON() ([]byte, error) {
	return json.Marshal(faultsJSON{jsonDuration(f.Latency), jsonDuration(f.Jitter), f.Down, f.ErrorRate,
		f.Garbage, f.Truncated, f.Oversized, jsonDuration(f.SlowBody), f.Booking, f.BookingRate})
}

// UnmarshalJSON reads durations as Go duration strings (or nanoseconds).
func (f *Faults) UnmarshalJSON(b []byte) error {
	var j faultsJSON
	if err := strictUnmarshal(b, &j); err != nil {
		return err
	}
	*f = Faults{time.Duration(j.Latency), time.Duration(j.Jitter), j.Down, j.ErrorRate,
		j.Garbage, j.Truncated, j.Oversized, time.Duration(j.SlowBody), j.Booking, j.BookingRate}
	return nil
}

type jsonDuration time.Duration

func (d jsonDuration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

func (d *jsonDuration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: %w", s, err)
		}
		*d = jsonDuration(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("duration must be a string like \"150ms\": %w", err)
	}
	*d = jsonDuration(n)
	return nil
}

// strictUnmarshal rejects unknown fields, so a typo in a market file is an
// error rather than a silently ignored knob.
func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// LoadMarket reads a MarketConfig from a JSON file and validates it.
func LoadMarket(path string) (MarketConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return MarketConfig{}, fmt.Errorf("sandbox: read market config: %w", err)
	}
	var cfg MarketConfig
	if err := strictUnmarshal(b, &cfg); err != nil {
		return MarketConfig{}, fmt.Errorf("%w: %s: %w", ErrConfig, path, err)
	}
	if err := cfg.Validate(); err != nil {
		return MarketConfig{}, err
	}
	return cfg, nil
}

// Validate checks names, trust strings and fault values.
func (c MarketConfig) Validate() error {
	seen := map[string]bool{}
	slugs := map[string]string{}
	for i, s := range c.Sellers {
		if strings.TrimSpace(s.Name) == "" {
			return fmt.Errorf("%w: seller %d has no name", ErrConfig, i)
		}
		if seen[s.Name] {
			return fmt.Errorf("%w: duplicate seller name %q", ErrConfig, s.Name)
		}
		seen[s.Name] = true
		if slugify(s.Name) == "" {
			return fmt.Errorf("%w: seller name %q has no letters or digits for its URL slug", ErrConfig, s.Name)
		}
		if other, ok := slugs[slugify(s.Name)]; ok {
			return fmt.Errorf("%w: sellers %q and %q share the URL slug %q", ErrConfig, other, s.Name, slugify(s.Name))
		}
		slugs[slugify(s.Name)] = s.Name
		if _, ok := sellerTrust(s.Trust); !ok {
			return fmt.Errorf("%w: seller %q: unknown trust %q (want preferred|approved|verified|registered|unknown|blocked)", ErrConfig, s.Name, s.Trust)
		}
		for tier := range s.Keys {
			if t, err := identity.ParseTier(tier); err != nil || t == identity.TierPublic {
				return fmt.Errorf("%w: seller %q: key tier %q (want seat|agency|advertiser)", ErrConfig, s.Name, tier)
			}
		}
		if err := s.Faults.validate(); err != nil {
			return fmt.Errorf("%w: seller %q: %w", ErrConfig, s.Name, err)
		}
		if err := s.Delivery.validate(); err != nil {
			return fmt.Errorf("%w: seller %q: %w", ErrConfig, s.Name, err)
		}
		for _, p := range s.Packages {
			if strings.TrimSpace(p.Name) == "" {
				return fmt.Errorf("%w: seller %q: package without a name", ErrConfig, s.Name)
			}
			switch p.Layer {
			case "", "synced", "curated", "dynamic":
			default:
				return fmt.Errorf("%w: seller %q package %q: layer %q", ErrConfig, s.Name, p.Name, p.Layer)
			}
		}
	}
	if err := c.Registry.Faults.validate(); err != nil {
		return fmt.Errorf("%w: registry: %w", ErrConfig, err)
	}
	return validateADCP(c, seen)
}

func (f Faults) validate() error {
	if f.ErrorRate < 0 || f.ErrorRate > 1 {
		return fmt.Errorf("error_rate %v outside [0,1]", f.ErrorRate)
	}
	if f.Latency < 0 || f.Jitter < 0 || f.SlowBody < 0 {
		return errors.New("negative duration")
	}
	switch f.Booking {
	case BookingOK, BookingHang, BookingThenHang, BookingUnavailable:
	default:
		return fmt.Errorf("booking fault %q is not one of hang, book_then_hang, unavailable", f.Booking)
	}
	if f.BookingRate < 0 || f.BookingRate > 1 {
		return fmt.Errorf("booking_rate %v outside [0,1]", f.BookingRate)
	}
	return nil
}

// sellerTrust normalises a configured trust to the seller vocabulary
// (verified → approved; empty → unknown).
func sellerTrust(s string) (string, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "preferred":
		return "preferred", true
	case "approved", "verified":
		return "approved", true
	case "registered":
		return "registered", true
	case "", "unknown":
		return "unknown", true
	case "blocked":
		return "blocked", true
	}
	return "", false
}

// slugify turns a seller name into its URL path segment ("StreamMax CTV" → "streammax-ctv").
func slugify(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
			dash = false
		default:
			if !dash && b.Len() > 0 {
				b.WriteByte('-')
				dash = true
			}
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}

package discoverer

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/identity"
	"github.com/dealflow/dealflow/pkg/sellerclient"
)

// Directory is what discovery needs from agent registries. *sellerclient.Client
// satisfies it through ClientDirectory.
type Directory interface {
	// Discover lists the registry's sellers with any of caps (all when empty).
	Discover(ctx context.Context, reg sellerclient.Registry, caps []string) ([]events.Seller, error)
	// Verify returns a seller's trust level in the registry; registered is
	// false (and trust unknown) for a seller the registry does not know.
	Verify(ctx context.Context, reg sellerclient.Registry, url string) (trust identity.Trust, registered bool, err error)
}

// KnownSeller is a seller configured by the operator, used besides the
// registry and instead of it when no registry is set or the registry fails.
// Load it with app.LoadKnownSellers, which canonicalises URL and checks
// Trust; an empty Trust is asked of the registries.
type KnownSeller struct {
	URL          string         `json:"url"`
	Name         string         `json:"name,omitempty"`
	Trust        identity.Trust `json:"trust,omitempty"`
	Capabilities []string       `json:"capabilities,omitempty"`
	// Protocol is the API the seller speaks ("" = IAB seller-agent).
	Protocol events.Protocol `json:"protocol,omitempty"`
	// MCPEndpoint is an AdCP seller's MCP endpoint ("" = URL).
	MCPEndpoint string `json:"mcp_endpoint,omitempty"`
}

// Finder finds candidate sellers for a set of capabilities across the
// configured registries and known sellers, with the shared cache.
type Finder struct {
	Dir        Directory
	Registries []sellerclient.Registry
	Known      []KnownSeller
	Cache      *Cache
	Timeout    time.Duration
	Log        zerolog.Logger
}

// Found is the outcome of one discovery.
type Found struct {
	Sellers []events.Seller
	Sources []events.SourceStatus
	// failed marks the registries (by index) that did not answer: the
	// blocked list does not ask them again.
	failed map[int]bool
}

func sourceName(reg sellerclient.Registry) string {
	switch reg.Kind {
	case sellerclient.RegistryAAMP:
		return "aamp"
	case sellerclient.RegistryAAO:
		return "aao"
	}
	return "registry"
}

// Find asks every registry (fresh cache first, stale cache if the registry
// fails), then adds the known sellers. It never fails: a registry that is
// down, slow or answers garbage is reported in Sources and the rest go on.
func (f *Finder) Find(ctx context.Context, caps []string) Found {
	var out Found
	registryOK := false
	type regResult struct {
		sellers []events.Seller
		status  events.SourceStatus
		ok      bool
	}
	results := make([]regResult, len(f.Registries))
	var wg sync.WaitGroup
	for i, reg := range f.Registries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, st, ok := f.fromRegistry(ctx, reg, caps)
			results[i] = regResult{s, st, ok}
		}()
	}
	wg.Wait()
	for i, r := range results {
		out.Sellers = append(out.Sellers, r.sellers...)
		out.Sources = append(out.Sources, r.status)
		registryOK = registryOK || r.ok
		if !r.ok {
			if out.failed == nil {
				out.failed = map[int]bool{}
			}
			out.failed[i] = true
		}
	}
	if len(f.Known) > 0 {
		n := 0
		for _, k := range f.Known {
			if !matchesCaps(k.Capabilities, caps) {
				continue
			}
			trust := k.Trust
			if strings.TrimSpace(string(trust)) == "" {
				trust = f.verify(ctx, k.URL)
			} else {
				trust = identity.ParseTrust(string(trust)) // the registries' vocabulary: "approved" is verified
			}
			out.Sellers = append(out.Sellers, events.Seller{URL: k.URL, Name: k.Name, Trust: trust, Source: "known", Capabilities: k.Capabilities,
				Protocol: k.Protocol.Or(), MCPEndpoint: k.MCPEndpoint})
			n++
		}
		detail := fmt.Sprintf("%d configured sellers match", n)
		if !registryOK && len(f.Registries) > 0 {
			detail += " (used as fallback: no registry answered)"
		}
		out.Sources = append(out.Sources, events.SourceStatus{Source: "known", OK: true, Detail: detail})
	}
	return out
}

// timeout is the deadline of one registry call or host lookup (10s when
// unset).
func (f *Finder) timeout() time.Duration {
	if f.Timeout <= 0 {
		return 10 * time.Second
	}
	return f.Timeout
}

func (f *Finder) fromRegistry(ctx context.Context, reg sellerclient.Registry, caps []string) ([]events.Seller, events.SourceStatus, bool) {
	src := sourceName(reg)
	key := DiscoverKey(canonicalOr(reg.URL), caps)
	if v, ok := f.Cache.Get(key); ok {
		return v.([]events.Seller), events.SourceStatus{Source: src, OK: true, Detail: "cached answer from " + reg.URL}, true
	}
	cctx, cancel := context.WithTimeout(ctx, f.Timeout)
	defer cancel()
	sellers, err := f.Dir.Discover(cctx, reg, caps)
	if err == nil {
		for i := range sellers {
			sellers[i].Source = src
		}
		f.Cache.Put(key, sellers)
		return sellers, events.SourceStatus{Source: src, OK: true, Detail: fmt.Sprintf("%d sellers from %s", len(sellers), reg.URL)}, true
	}
	// The runner's logger in ctx carries the event's trace_id and span_id.
	log := zerolog.Ctx(ctx)
	if log.GetLevel() == zerolog.Disabled {
		log = &f.Log
	}
	log.Warn().Err(err).Str("registry", reg.URL).Msg("registry discovery failed")
	if v, age, ok := f.Cache.GetStale(key); ok {
		stale := append([]events.Seller(nil), v.([]events.Seller)...)
		for i := range stale {
			stale[i].Source = src + "-stale"
		}
		return stale, events.SourceStatus{Source: src, OK: false, Detail: fmt.Sprintf("%s failed (%v); using its last answer from %s ago", reg.URL, err, age.Round(time.Second))}, false
	}
	return nil, events.SourceStatus{Source: src, OK: false, Detail: fmt.Sprintf("%s failed: %v", reg.URL, err)}, false
}

// blocked lists the blocked sellers of every registry (all capabilities,
// through the same cache as Find; a registry that just failed in Find is
// not asked again, its last answer is used if any) and of the known
// sellers, with canonical URLs: what every candidate is compared with, so a
// seller blocked for other channels is blocked here too.
func (f *Finder) blocked(ctx context.Context, found Found) []events.Seller {
	var out []events.Seller
	add := func(s events.Seller) { // the blocked ones only: the lists are not copied
		if s.Trust != identity.TrustBlocked {
			return
		}
		if u, err := sellerclient.CanonicalURL(s.URL); err == nil {
			s.URL = u
			out = append(out, s)
		}
	}
	for i, reg := range f.Registries {
		var listed []events.Seller
		if found.failed[i] {
			if v, _, ok := f.Cache.GetStale(DiscoverKey(canonicalOr(reg.URL), nil)); ok {
				listed = v.([]events.Seller)
			}
		} else {
			listed, _, _ = f.fromRegistry(ctx, reg, nil)
		}
		for _, s := range listed {
			add(s)
		}
	}
	for _, k := range f.Known {
		add(events.Seller{URL: k.URL, Name: k.Name, Trust: identity.ParseTrust(string(k.Trust)), Source: "known"})
	}
	return out
}

// canonicalOr is raw's canonical form (sellerclient.CanonicalURL), or raw
// itself when it has none (the registry client then refuses it).
func canonicalOr(raw string) string {
	if c, err := sellerclient.CanonicalURL(raw); err == nil {
		return c
	}
	return raw
}

// verify asks the registries for a seller's trust, cached under
// card:<canonical url>. A seller no registry knows, that cannot be checked,
// or whose URL has no canonical form, is unknown.
func (f *Finder) verify(ctx context.Context, raw string) identity.Trust {
	url, err := sellerclient.CanonicalURL(raw)
	if err != nil {
		return identity.TrustUnknown
	}
	key := CardKey(url)
	if v, ok := f.Cache.Get(key); ok {
		return v.(identity.Trust)
	}
	for _, reg := range f.Registries {
		cctx, cancel := context.WithTimeout(ctx, f.Timeout)
		trust, registered, err := f.Dir.Verify(cctx, reg, url)
		cancel()
		if err != nil {
			if v, _, ok := f.Cache.GetStale(key); ok {
				return v.(identity.Trust)
			}
			continue
		}
		if registered {
			f.Cache.Put(key, trust)
			return trust
		}
	}
	if len(f.Registries) > 0 {
		f.Cache.Put(key, identity.TrustUnknown)
	}
	return identity.TrustUnknown
}

// matchesCaps is the any-match, case-insensitive capability filter; an empty
// filter matches everything, and so does a seller that declares nothing.
func matchesCaps(have, want []string) bool {
	if len(want) == 0 || len(have) == 0 {
		return true
	}
	for _, w := range want {
		for _, h := range have {
			if strings.EqualFold(strings.TrimSpace(w), strings.TrimSpace(h)) {
				return true
			}
		}
	}
	return false
}

// ClientDirectory adapts *sellerclient.Client to Directory.
type ClientDirectory struct{ C *sellerclient.Client }

// Discover implements Directory.
func (d ClientDirectory) Discover(ctx context.Context, reg sellerclient.Registry, caps []string) ([]events.Seller, error) {
	disc, err := d.C.DiscoverSellers(ctx, reg, caps)
	if err != nil {
		return nil, err
	}
	out := make([]events.Seller, 0, len(disc.Sellers))
	for _, s := range disc.Sellers {
		out = append(out, events.Seller{URL: s.URL, Name: s.Name, AgentID: s.AgentID, Trust: s.Trust, Capabilities: s.Capabilities,
			Protocol: s.Protocol.Or(), MCPEndpoint: s.MCPEndpoint, Compliance: s.Compliance})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].URL < out[j].URL })
	return out, nil
}

// Verify implements Directory.
func (d ClientDirectory) Verify(ctx context.Context, reg sellerclient.Registry, url string) (identity.Trust, bool, error) {
	ti, err := d.C.VerifyAgent(ctx, reg, url)
	if err != nil {
		if errors.Is(err, sellerclient.ErrNotFound) {
			return identity.TrustUnknown, false, nil
		}
		return identity.TrustUnknown, false, err
	}
	return ti.Trust, ti.IsRegistered, nil
}

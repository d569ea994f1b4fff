package app

import (
	"time"

	"github.com/rs/zerolog"

	"github.com/dealflow/dealflow/internal/config"
	"github.com/dealflow/dealflow/pkg/identity"
	"github.com/dealflow/dealflow/pkg/sellerclient"
	"github.com/dealflow/dealflow/pkg/sellerclient/adcp"
	"github.com/dealflow/dealflow/services/discoverer"
)

// DiscovererInputs are the loaded inputs of a discoverer (LoadKnown,
// LoadCredentials, LoadBuyer).
type DiscovererInputs struct {
	Known       []discoverer.KnownSeller
	Credentials *identity.Credentials
	Buyer       identity.BuyerIdentity
	// ADCP is the AdCP client (nil: a new one with cfg.Guard()).
	ADCP *adcp.Client
}

// registryTimeout bounds each registry call of a discovery.
const registryTimeout = 10 * time.Second

// NewDiscoverer is the one place a discoverer is wired, for the pipeline
// stage and the `sellers`/`packages` commands alike: the registry and its
// kind from cfg (Registries), a registry cache with cfg.CacheTTL (default
// 5m), the known sellers, the credentials, the default trust caps and
// identity strategy, and the operator's buyer identity for campaigns that
// carry none. client must be built with cfg.Guard()'s allow list.
func NewDiscoverer(cfg config.Config, client *sellerclient.Client, in DiscovererInputs, log zerolog.Logger) *discoverer.Service {
	ttl := cfg.CacheTTL
	if ttl <= 0 {
		ttl = 5 * time.Minute
	}
	ac := in.ADCP
	if ac == nil {
		ac = adcp.New(adcp.Config{AllowPrivate: cfg.AllowPrivate, Allow: cfg.AllowPrefixes})
	}
	return &discoverer.Service{ADCP: ac,
		Finder: &discoverer.Finder{Dir: discoverer.ClientDirectory{C: client}, Registries: Registries(cfg), Known: in.Known,
			Cache: discoverer.NewCache(ttl, nil), Timeout: registryTimeout, Log: log},
		Strategy: identity.DefaultStrategy(), Caps: identity.DefaultCaps(), Credentials: in.Credentials, DefaultBuyer: in.Buyer,
		Log: log.With().Str("stage", discoverer.Stage).Logger(),
	}
}

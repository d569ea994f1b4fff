package kitfetcher

import (
	"context"
	"sync"
	"time"

	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/sellerclient"
)

// CatalogProduct is what the kitfetcher keeps of a catalog product: only
// what resolves a package's product, its floor and its deal types.
type CatalogProduct struct {
	InventoryType string
	FloorMicros   events.Micros // 0: the seller states none
	DealTypes     []string
	// AvailableImpressions is the product's stated availability
	// (available_impressions); 0: the seller states none.
	AvailableImpressions int64
}

// Catalog is a seller's product catalog by product id.
type Catalog map[string]CatalogProduct

// catalogOf keeps the fields the kitfetcher uses of a product list.
func catalogOf(list []sellerclient.Product) Catalog {
	cat := make(Catalog, len(list))
	for _, p := range list {
		cp := CatalogProduct{InventoryType: p.InventoryType(), DealTypes: p.Ext.DealTypes}
		if f := p.Ext.FloorCPM; f != nil && *f > 0 {
			cp.FloorMicros = sellerclient.PriceMicros(*f)
		}
		if a := p.AvailableImpressions; a != nil && *a > 0 {
			cp.AvailableImpressions = *a
		}
		cat[p.ProductID] = cp
	}
	return cat
}

// CatalogCache shares sellers' product catalogs between campaigns for a TTL.
// GET /products is read without credentials, so the answer is the same for
// every campaign and identity; without the cache every campaign re-read and
// re-parsed every seller's whole catalog, the largest per-seller cost of
// media-kit fetching. Concurrent misses for one seller share one request.
// Failures are not cached. It is safe for concurrent use.
type CatalogCache struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu      sync.Mutex
	entries map[string]*catalogEntry
}

type catalogEntry struct {
	done chan struct{} // closed when cat/err are set
	at   time.Time
	cat  Catalog
	err  error
}

// NewCatalogCache returns a cache keeping each catalog for ttl and at most
// maxSellers catalogs (expired ones are dropped first, then the oldest).
// now is the clock (nil: time.Now).
func NewCatalogCache(ttl time.Duration, maxSellers int, now func() time.Time) *CatalogCache {
	if now == nil {
		now = time.Now
	}
	if maxSellers <= 0 {
		maxSellers = 10_000
	}
	return &CatalogCache{ttl: ttl, max: maxSellers, now: now, entries: map[string]*catalogEntry{}}
}

// Get returns the seller's catalog, fetching it with fetch on a miss or when
// the cached one is older than the TTL. A caller whose ctx ends while
// another's fetch is in flight returns ctx's error; the fetch goes on for the
// others.
func (c *CatalogCache) Get(ctx context.Context, sellerURL string, fetch func(context.Context) (Catalog, error)) (Catalog, error) {
	c.mu.Lock()
	e, ok := c.entries[sellerURL]
	if ok {
		select {
		case <-e.done:
			if e.err == nil && c.now().Sub(e.at) <= c.ttl {
				c.mu.Unlock()
				return e.cat, nil
			}
			ok = false // expired or failed: fetch again
		default: // in flight: wait for it below
		}
	}
	if !ok {
		e = &catalogEntry{done: make(chan struct{})}
		c.evictLocked()
		c.entries[sellerURL] = e
		c.mu.Unlock()
		cat, err := fetch(ctx)
		c.mu.Lock()
		e.cat, e.err, e.at = cat, err, c.now()
		if err != nil && c.entries[sellerURL] == e {
			delete(c.entries, sellerURL)
		}
		close(e.done)
		c.mu.Unlock()
		return cat, err
	}
	c.mu.Unlock()
	select {
	case <-e.done:
		if e.err != nil {
			// The other caller's failure may be its own deadline: try once
			// with ours.
			return c.Get(ctx, sellerURL, fetch)
		}
		return e.cat, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Fresh returns the seller's catalog when one younger than the TTL is
// held, without fetching or waiting.
func (c *CatalogCache) Fresh(sellerURL string) (Catalog, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[sellerURL]
	if !ok {
		return nil, false
	}
	select {
	case <-e.done:
		return e.cat, e.err == nil && c.now().Sub(e.at) <= c.ttl
	default:
		return nil, false
	}
}

// Len is the number of catalogs held (fresh or not), for tests.
func (c *CatalogCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// evictLocked makes room for one more entry: expired entries go first, then
// the oldest finished one. Entries in flight are kept.
func (c *CatalogCache) evictLocked() {
	if len(c.entries) < c.max {
		return
	}
	now := c.now()
	var oldestKey string
	var oldest time.Time
	for k, e := range c.entries {
		select {
		case <-e.done:
		default:
			continue
		}
		if now.Sub(e.at) > c.ttl {
			delete(c.entries, k)
			continue
		}
		if oldestKey == "" || e.at.Before(oldest) {
			oldestKey, oldest = k, e.at
		}
	}
	if len(c.entries) >= c.max && oldestKey != "" {
		delete(c.entries, oldestKey)
	}
}

package discoverer

import (
	"sort"
	"strings"
	"sync"
	"time"
)

// Cache is the registry cache, shared by every campaign in the process (the
// reference rebuilt it per call, so it never hit). Entries expire after the
// TTL but are kept, so a registry failure can fall back to the last good
// answer (stale-if-error). Keys follow the reference: "discover:<sorted
// caps>" and "card:<canonical url>" (sellerclient.CanonicalURL). It is safe for concurrent use.
type Cache struct {
	mu      sync.Mutex
	ttl     time.Duration
	now     func() time.Time
	entries map[string]cacheEntry
}

type cacheEntry struct {
	at    time.Time
	value any
}

// NewCache returns a cache with the given TTL; now is the clock (nil =
// time.Now), injectable for tests.
func NewCache(ttl time.Duration, now func() time.Time) *Cache {
	if now == nil {
		now = time.Now
	}
	return &Cache{ttl: ttl, now: now, entries: map[string]cacheEntry{}}
}

// DiscoverKey is the key of a discovery result for these capabilities:
// lower-cased, sorted, de-duplicated, so the order of the brief's channels
// does not matter.
func DiscoverKey(registry string, caps []string) string {
	c := make([]string, 0, len(caps))
	seen := map[string]bool{}
	for _, s := range caps {
		s = strings.ToLower(strings.TrimSpace(s))
		if s != "" && !seen[s] {
			seen[s] = true
			c = append(c, s)
		}
	}
	sort.Strings(c)
	k := "discover:" + strings.Join(c, ",")
	if registry != "" {
		k += "@" + registry
	}
	return k
}

// CardKey is the key of a seller's agent card or trust record.
func CardKey(url string) string { return "card:" + url }

// Get returns a fresh entry (age <= TTL, as the reference: an entry exactly
// at the TTL is still valid).
func (c *Cache) Get(key string) (any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || c.now().Sub(e.at) > c.ttl {
		return nil, false
	}
	return e.value, true
}

// GetStale returns an entry whatever its age, with its age, for use when the
// source has failed.
func (c *Cache) GetStale(key string) (any, time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok {
		return nil, 0, false
	}
	return e.value, c.now().Sub(e.at), true
}

// Put stores a value. Failed lookups are never stored; an empty successful
// answer is.
func (c *Cache) Put(key string, v any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries[key] = cacheEntry{at: c.now(), value: v}
}

// Invalidate removes one key.
func (c *Cache) Invalidate(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, key)
}

// Clear removes every entry.
func (c *Cache) Clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = map[string]cacheEntry{}
}

// Len is the number of entries, fresh or stale.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

package discoverer

import (
	"context"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/identity"
)

// Resolver looks up the addresses of a host name. The discoverer resolves
// seller hosts when it decides on them, so a fresh name for a blocked
// seller's address is that seller; tests inject one that answers without
// DNS.
type Resolver func(ctx context.Context, host string) ([]netip.Addr, error)

// DefaultResolver is the system resolver.
func DefaultResolver(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// maxResolving bounds the host lookups one discovery runs at once.
const maxResolving = 16

// sellerID is what identifies one candidate seller, whatever its URL's
// spelling: its registry agent id and declared name, its canonical origin,
// and the addresses its host resolves to (with the port), every loopback
// and unspecified address written as 127.0.0.1.
type sellerID struct {
	url, agent, name, origin string
	// addrs are "address:port" keys; empty with resolved false when the
	// host did not resolve (or was not looked up: see identify).
	addrs    []string
	resolved bool
	unknown  bool
}

// canonAddr is an address as an identity: a loopback or unspecified
// address of either family is one host, 127.0.0.1 (a dial to 0.0.0.0 or ::
// reaches it too).
func canonAddr(a netip.Addr) netip.Addr {
	a = a.WithZone("").Unmap()
	if a.IsLoopback() || a.IsUnspecified() {
		return netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	return a
}

// addrKey is an endpoint's identity: its canonical address and port.
func addrKey(a netip.Addr, port string) string { return canonAddr(a).String() + "|" + port }

// endpoint splits a canonical seller URL into its host (no brackets) and
// port (the scheme's default when none), and its identity origin.
func endpoint(canonical string) (host, port, origin string, ok bool) {
	u, err := url.Parse(canonical)
	if err != nil || u.Host == "" {
		return "", "", "", false
	}
	host, port = u.Hostname(), u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	h := host
	if a, err := netip.ParseAddr(host); err == nil {
		h = canonAddr(a).String()
	}
	return host, port, u.Scheme + "://" + net.JoinHostPort(h, port), true
}

// identify computes every candidate's identity. Host names are resolved
// (concurrently, each within timeout) only when some candidate's trust is
// unknown: registered sellers are told apart by the registry (URL, agent
// id, name) and only an unknown seller is judged by where it points.
func (s *Service) identify(ctx context.Context, cands []events.Seller, timeout time.Duration) []sellerID {
	ids := make([]sellerID, len(cands))
	anyUnknown := false
	for i, c := range cands {
		ids[i] = sellerID{url: c.URL, agent: c.AgentID, name: normName(c.Name), unknown: c.Trust == identity.TrustUnknown}
		anyUnknown = anyUnknown || ids[i].unknown
	}
	hosts := map[string][]netip.Addr{}
	lookups := map[string]bool{}
	for i := range ids {
		host, port, origin, ok := endpoint(ids[i].url)
		if !ok {
			continue
		}
		ids[i].origin = origin
		if a, err := netip.ParseAddr(host); err == nil {
			ids[i].addrs, ids[i].resolved = []string{addrKey(a, port)}, true
			continue
		}
		if anyUnknown {
			lookups[host] = true
		}
	}
	if len(lookups) > 0 {
		resolve := s.Resolve
		if resolve == nil {
			resolve = DefaultResolver
		}
		var (
			mu  sync.Mutex
			wg  sync.WaitGroup
			sem = make(chan struct{}, maxResolving)
		)
		for h := range lookups {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				cctx, cancel := context.WithTimeout(ctx, timeout)
				defer cancel()
				addrs, err := resolve(cctx, h)
				if err != nil || len(addrs) == 0 {
					return
				}
				mu.Lock()
				hosts[h] = addrs
				mu.Unlock()
			}()
		}
		wg.Wait()
		for i := range ids {
			host, port, _, ok := endpoint(ids[i].url)
			if !ok || ids[i].resolved {
				continue
			}
			if addrs, ok := hosts[host]; ok {
				for _, a := range addrs {
					ids[i].addrs = append(ids[i].addrs, addrKey(a, port))
				}
				ids[i].resolved = true
			}
		}
	}
	return ids
}

// normName is a declared name as compared: trimmed, case-folded.
func normName(n string) string { return strings.ToLower(strings.Join(strings.Fields(n), " ")) }

// sameSeller reports whether b is a under another name, and how: the same
// canonical URL or registry agent id; or, when either is of unknown trust
// (not told apart by a registry), the same origin or a shared address.
// Declared names are not compared here: two registry records may share a
// display name and be two sellers (names count for blocking only).
func sameSeller(a, b sellerID) (bool, string) {
	switch {
	case a.url == b.url:
		return true, "the same URL"
	case a.agent != "" && a.agent == b.agent:
		return true, "the registry agent id " + strconv.Quote(a.agent)
	case !a.unknown && !b.unknown:
		return false, ""
	case a.origin != "" && a.origin == b.origin:
		return true, "the origin " + a.origin
	}
	for _, x := range a.addrs {
		for _, y := range b.addrs {
			if x == y {
				return true, "the address " + strings.Replace(x, "|", " port ", 1)
			}
		}
	}
	return false, ""
}

// blockList indexes the blocked sellers of one discovery (registry, known
// and campaign sellers alike) by canonical URL, registry agent id, declared
// name, identity origin and address, so a blocked seller stays blocked
// under any name.
type blockList struct {
	byURL, byAgent, byName, byOrigin, byAddr map[string]events.Seller
}

func newBlockList(cands []events.Seller, ids []sellerID) blockList {
	b := blockList{byURL: map[string]events.Seller{}, byAgent: map[string]events.Seller{}, byName: map[string]events.Seller{},
		byOrigin: map[string]events.Seller{}, byAddr: map[string]events.Seller{}}
	add := func(m map[string]events.Seller, k string, c events.Seller) {
		if _, ok := m[k]; k != "" && !ok {
			m[k] = c
		}
	}
	for i, c := range cands {
		if c.Trust != identity.TrustBlocked {
			continue
		}
		add(b.byURL, c.URL, c)
		add(b.byAgent, c.AgentID, c)
		add(b.byName, ids[i].name, c)
		add(b.byOrigin, ids[i].origin, c)
		for _, a := range ids[i].addrs {
			add(b.byAddr, a, c)
		}
	}
	return b
}

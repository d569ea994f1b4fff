package sellerclient

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"code.dny.dev/ssrf"
)

// Guard is the address guard of every connection dealflow opens to a
// destination someone else chose: sellers, registries, AdCP agents and
// campaign webhooks. It decides on the address actually dialled (after DNS,
// in the dialer's Control hook, so DNS rebinding cannot get around it) and,
// earlier, on IP literals in URLs.
//
// An address is refused when it is in NeverPrefixes (link-local, cloud
// metadata, unspecified; also when wrapped in an IPv4-mapped, NAT64, 6to4 or
// Teredo IPv6 address), whatever the allow list says; else allowed when it
// is in the allow list; else refused when it is in the IANA special-purpose
// registries (code.dny.dev/ssrf: private, loopback, shared, benchmarking,
// documentation, reserved, multicast, broadcast, everything outside IPv6
// global unicast, 6to4, Teredo and the other IETF assignments); else, a
// public unicast address, allowed.
//
// The zero Guard allows public addresses only. A Guard is immutable and safe
// for concurrent use.
type Guard struct{ allow []netip.Prefix }

// PrivatePrefixes is what AllowPrivate (and a bare --allow-private) opens:
// loopback and the private-use ranges (RFC 1918, IPv6 unique local). Not
// link-local, metadata or shared (CGNAT) space.
var PrivatePrefixes = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("fc00::/7"),
}

// NeverPrefixes are refused even when an allow list covers them: link-local
// addresses (where every cloud serves instance metadata and credentials),
// the metadata addresses outside link-local (AWS IPv6 fd00:ec2::254, Alibaba
// 100.100.100.200) and the unspecified addresses (a dial to 0.0.0.0 or ::
// reaches the local host).
var NeverPrefixes = []netip.Prefix{
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("fd00:ec2::254/128"),
	netip.MustParsePrefix("100.100.100.200/32"),
	netip.MustParsePrefix("0.0.0.0/32"),
	netip.MustParsePrefix("::/128"),
}

// special is the IANA special-purpose check. Any port: sellers listen where
// they like; the guard is about addresses.
var special = ssrf.New(ssrf.WithAnyPort())

// NewGuard returns a Guard that also allows the given non-public prefixes
// (never those in NeverPrefixes). Use ParseAllowList to read them from
// configuration, which refuses a prefix wholly inside NeverPrefixes.
func NewGuard(allow []netip.Prefix) Guard {
	out := make([]netip.Prefix, 0, len(allow))
	for _, p := range allow {
		if p.IsValid() {
			out = append(out, p.Masked())
		}
	}
	return Guard{allow: out}
}

// PrivateGuard allows PrivatePrefixes (sandboxes and tests on loopback).
func PrivateGuard() Guard { return NewGuard(PrivatePrefixes) }

// Allowed returns the prefixes the guard allows besides public addresses.
func (g Guard) Allowed() []netip.Prefix { return append([]netip.Prefix(nil), g.allow...) }

// String describes the allow list for logs and errors.
func (g Guard) String() string {
	if len(g.allow) == 0 {
		return "public addresses only"
	}
	s := make([]string, len(g.allow))
	for i, p := range g.allow {
		s[i] = p.String()
	}
	return "public addresses and " + strings.Join(s, ",")
}

// ParseAllowList reads an --allow-private value: "true" (or a bare flag) is
// PrivatePrefixes, "false" or "" is none, anything else a comma-separated
// list of CIDR prefixes or single addresses ("127.0.0.0/8,10.0.0.0/8",
// "172.28.0.100"). A prefix wholly inside NeverPrefixes is an error, since
// it would allow nothing; a wider one is accepted and the never-allowed
// addresses inside it stay refused.
func ParseAllowList(v string) ([]netip.Prefix, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "false", "0", "f":
		return nil, nil
	case "true", "1", "t":
		return append([]netip.Prefix(nil), PrivatePrefixes...), nil
	}
	var out []netip.Prefix
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		var p netip.Prefix
		if strings.Contains(item, "/") {
			pp, err := netip.ParsePrefix(item)
			if err != nil {
				return nil, fmt.Errorf("%q is not a CIDR prefix (want e.g. 127.0.0.0/8,10.0.0.0/8, or true for loopback and private)", item)
			}
			p = pp
		} else {
			a, err := netip.ParseAddr(item)
			if err != nil {
				return nil, fmt.Errorf("%q is not an address or CIDR prefix (want e.g. 127.0.0.0/8,10.0.0.0/8, or true for loopback and private)", item)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Addr().Zone() != "" {
			return nil, fmt.Errorf("%q: zones are not allowed", item)
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		p = p.Masked()
		for _, n := range NeverPrefixes {
			if n.Bits() <= p.Bits() && n.Contains(p.Addr()) {
				return nil, fmt.Errorf("%s is inside %s: link-local, metadata and unspecified addresses are never allowed", p, n)
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// errPrivateDial marks a connection the guard refused.
var errPrivateDial = errors.New("sellerclient: connection to a non-public address refused")

// CheckAddr returns nil when the guard lets a connection reach a, else an
// error wrapping the reason (IsPrivateDialError reports it).
func (g Guard) CheckAddr(a netip.Addr) error {
	if !a.IsValid() {
		return fmt.Errorf("%w: invalid address", errPrivateDial)
	}
	a = a.WithZone("").Unmap()
	for _, x := range embedded(a) {
		for _, n := range NeverPrefixes {
			if n.Contains(x) {
				return fmt.Errorf("%w: %s is never allowed (link-local, metadata or unspecified: %s)", errPrivateDial, a, n)
			}
		}
	}
	for _, p := range g.allow {
		if p.Contains(a) {
			return nil
		}
	}
	if err := special.SafeAddr(a); err != nil {
		return fmt.Errorf("%w: %w", errPrivateDial, err)
	}
	return nil
}

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	nat64Loc  = netip.MustParsePrefix("64:ff9b:1::/48")
	sixToFour = netip.MustParsePrefix("2002::/16")
	teredo    = netip.MustParsePrefix("2001::/32")
)

// embedded returns a and the IPv4 addresses an IPv6 address carries
// (NAT64, 6to4, Teredo server and client), so a wrapped metadata address
// is judged as what it reaches.
func embedded(a netip.Addr) []netip.Addr {
	out := []netip.Addr{a}
	if !a.Is6() {
		return out
	}
	b := a.As16()
	v4 := func(x []byte) netip.Addr { return netip.AddrFrom4([4]byte{x[0], x[1], x[2], x[3]}) }
	switch {
	case nat64.Contains(a), nat64Loc.Contains(a):
		out = append(out, v4(b[12:16]))
	case sixToFour.Contains(a):
		out = append(out, v4(b[2:6]))
	case teredo.Contains(a):
		var c [4]byte
		binary.BigEndian.PutUint32(c[:], ^binary.BigEndian.Uint32(b[12:16]))
		out = append(out, v4(b[4:8]), netip.AddrFrom4(c))
	}
	return out
}

// control is the dialer's Control hook: it runs before connect(2), on the
// address actually dialled, so a refused address sees no packet at all.
func (g Guard) control(_ string, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %q", errPrivateDial, address)
	}
	return g.CheckAddr(ap.Addr())
}

// Dialer returns a dialer whose connections pass the guard.
func (g Guard) Dialer() *net.Dialer {
	return &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: g.control}
}

// checkHost refuses a URL host that is literally an address the guard
// refuses ("localhost" and *.localhost count as 127.0.0.1, RFC 6761). A
// host name is decided at dial time.
func (g Guard) checkHost(host string) error {
	h := strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if h == "localhost" || strings.HasSuffix(h, ".localhost") || h == "localhost.localdomain" {
		h = "127.0.0.1"
	}
	if i := strings.IndexByte(h, '%'); i >= 0 {
		h = h[:i]
	}
	a, err := netip.ParseAddr(h)
	if err != nil {
		return nil
	}
	return g.CheckAddr(a)
}

// CheckURL canonicalises raw (CanonicalURL) and refuses it when its host is
// an address (or localhost name) the guard refuses. Errors wrap
// ErrInvalidURL. Names resolving to refused addresses are refused at dial
// time by the guard's transport.
func (g Guard) CheckURL(raw string) (string, error) {
	n, host, err := canonicalURL(raw) // the host as url.Parse(n).Hostname() gives it, without parsing n again
	if err != nil {
		return "", err
	}
	if err := g.checkHost(host); err != nil {
		return "", invalidURL(raw, "address refused by the private-address guard ("+g.String()+")")
	}
	return n, nil
}

// Transport returns an HTTP transport tuned for many concurrent sellers
// whose dialer passes the guard, with no proxy (a proxy would hide the real
// destination from it).
func (g Guard) Transport() *http.Transport { return newTransport(g) }

// HTTPClient returns an HTTP client for user-supplied destinations (such as
// webhooks): the guard's transport, no redirect followed (the caller sees
// the 3xx) and timeout per request.
func (g Guard) HTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Transport: newTransport(g),
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// GuardFor is the guard of a client configuration: PrivatePrefixes when
// allowPrivate, and allow.
func GuardFor(allowPrivate bool, allow []netip.Prefix) Guard {
	var all []netip.Prefix
	if allowPrivate {
		all = append(all, PrivatePrefixes...)
	}
	return NewGuard(append(all, allow...))
}

// guardFor is the guard of the AllowPrivate switch.
func guardFor(allowPrivate bool) Guard { return GuardFor(allowPrivate, nil) }

// CheckDestination is guardFor(allowPrivate).CheckURL(raw): PrivateGuard
// when allowPrivate, else public addresses only.
func CheckDestination(raw string, allowPrivate bool) (string, error) {
	return guardFor(allowPrivate).CheckURL(raw)
}

// GuardedHTTPClient is HTTPClient of PrivateGuard when allowPrivate, else of
// the public-only guard.
func GuardedHTTPClient(allowPrivate bool, timeout time.Duration) *http.Client {
	return guardFor(allowPrivate).HTTPClient(timeout)
}

// IsPrivateDialError reports whether err is a guard refusing a destination.
func IsPrivateDialError(err error) bool { return err != nil && errors.Is(err, errPrivateDial) }

// NewGuardedTransport is Transport of PrivateGuard when allowPrivate, else
// of the public-only guard. Other seller clients (the AdCP client) share it
// so every seller connection has the same guard.
func NewGuardedTransport(allowPrivate bool) *http.Transport {
	return newTransport(guardFor(allowPrivate))
}

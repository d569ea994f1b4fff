package sellerclient

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
)

// NormalizeURL validates a seller or registry base URL and returns its
// canonical form, so that the same seller reached through "HTTP://Seller.example/"
// and "http://seller.example" is one seller (dedup, cache keys, registry
// matching).
//
// Rules: surrounding space is trimmed; the scheme must be http or https; a host
// is required; user info, query and fragment are refused (a base URL that
// carries them would leak credentials or break path joining); scheme and host
// are lower-cased; trailing slashes of the path are removed. The path itself
// keeps its case. Errors wrap ErrInvalidURL.
//
// NormalizeURL does not decide whether the host is private; the Client does
// that (Config.AllowPrivate) because it is a policy, not syntax.
func NormalizeURL(raw string) (string, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", invalidURL(raw, "empty URL")
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", invalidURL(raw, "unparsable URL")
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", invalidURL(raw, "scheme must be http or https")
	}
	if u.Opaque != "" {
		return "", invalidURL(raw, "opaque URL")
	}
	if u.User != nil {
		return "", invalidURL(raw, "user info is not allowed in a base URL")
	}
	if u.RawQuery != "" || u.ForceQuery {
		return "", invalidURL(raw, "query is not allowed in a base URL")
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return "", invalidURL(raw, "fragment is not allowed in a base URL")
	}
	host := strings.ToLower(u.Host)
	hostname := strings.ToLower(u.Hostname())
	if hostname == "" {
		return "", invalidURL(raw, "host required")
	}
	if port := u.Port(); port != "" {
		var n int
		for _, r := range port {
			if r < '0' || r > '9' {
				return "", invalidURL(raw, "bad port")
			}
			n = n*10 + int(r-'0')
			if n > 65535 {
				return "", invalidURL(raw, "bad port")
			}
		}
	} else {
		host = strings.TrimSuffix(host, ":")
	}
	path := strings.TrimRight(u.EscapedPath(), "/")
	return scheme + "://" + host + path, nil
}

// invalidURL builds the typed error for a refused URL.
func invalidURL(raw, reason string) error {
	return &Error{Code: "invalid_url", Message: fmt.Sprintf("%s: %q", reason, truncate(raw, 200)), URL: truncate(raw, 200), kinds: []error{ErrInvalidURL}}
}

// checkTarget normalises raw and, unless private targets are allowed, refuses
// literal loopback/private/link-local addresses and localhost names. Hostnames
// that resolve to such addresses are refused later, at dial time, by the
// default transport (dialControl), which also defeats DNS rebinding.
func (c *Client) checkTarget(raw string) (string, error) {
	n, err := NormalizeURL(raw)
	if err != nil {
		return "", err
	}
	if c.cfg.AllowPrivate {
		return n, nil
	}
	u, _ := url.Parse(n)
	if isPrivateHost(u.Hostname()) {
		return "", invalidURL(raw, "private, loopback or link-local host refused (Config.AllowPrivate is false)")
	}
	return n, nil
}

// isPrivateHost reports whether a URL host names a non-public destination.
func isPrivateHost(host string) bool {
	h := strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if h == "localhost" || strings.HasSuffix(h, ".localhost") || h == "localhost.localdomain" {
		return true
	}
	if i := strings.IndexByte(h, '%'); i >= 0 { // IPv6 zone
		h = h[:i]
	}
	addr, err := netip.ParseAddr(h)
	if err != nil {
		return false
	}
	return isPrivateAddr(addr)
}

var (
	cgnat    = netip.MustParsePrefix("100.64.0.0/10")
	thisNet  = netip.MustParsePrefix("0.0.0.0/8")
	nat64Pfx = netip.MustParsePrefix("64:ff9b::/96")
)

// isPrivateAddr reports whether an IP address is not a public unicast address.
func isPrivateAddr(a netip.Addr) bool {
	a = a.Unmap()
	if nat64Pfx.Contains(a) {
		b := a.As16()
		a = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	}
	return a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() ||
		cgnat.Contains(a) || thisNet.Contains(a)
}

// errPrivateDial marks a connection refused by dialControl.
var errPrivateDial = fmt.Errorf("sellerclient: connection to a private address refused")

// dialControl runs after DNS resolution, on the address actually dialled, so a
// public-looking hostname that resolves to 127.0.0.1 (or is rebound to it) is
// still refused.
func dialControl(_ string, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		host = address
	}
	if i := strings.IndexByte(host, '%'); i >= 0 {
		host = host[:i]
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("%w: %q", errPrivateDial, address)
	}
	if isPrivateAddr(addr) {
		return fmt.Errorf("%w: %s", errPrivateDial, address)
	}
	return nil
}

// joinURL appends an already-escaped path and an optional query to a
// normalised base URL.
func joinURL(base, path string, q url.Values) string {
	s := base + path
	if len(q) > 0 {
		s += "?" + q.Encode()
	}
	return s
}

// escapeID path-escapes one id segment and refuses ids that could change the
// path's meaning.
func escapeID(op, id string) (string, error) {
	if id == "" || id == "." || id == ".." || strings.TrimSpace(id) == "" {
		return "", validationError(op, "", fmt.Sprintf("invalid id %q", id))
	}
	return url.PathEscape(id), nil
}

// sameOrigin reports whether two URLs share scheme and host:port.
func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(canonicalHost(a), canonicalHost(b))
}

// canonicalHost returns host:port with the scheme's default port made explicit.
func canonicalHost(u *url.URL) string {
	port := u.Port()
	if port == "" {
		switch strings.ToLower(u.Scheme) {
		case "https":
			port = "443"
		default:
			port = "80"
		}
	}
	return net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

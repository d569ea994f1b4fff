package sellerclient

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path"
	"strconv"
	"strings"

	"golang.org/x/net/idna"
)

// CanonicalURL is the one canonical form of a seller or registry base URL.
// Every place that compares or keys seller URLs (trust decisions,
// de-duplication, credentials, registry cache keys, known sellers, the
// private-address guard) uses it, so two spellings of one seller are one
// seller: a blocked seller cannot be reached under another spelling.
//
// Rules, in order:
//   - a URL holding an ASCII control character (CR, LF, NUL, ...) anywhere
//     is refused, even at its end;
//   - surrounding space is trimmed; an empty URL is refused;
//   - the scheme must be http or https (any case) and is lower-cased;
//     opaque URLs ("http:x") are refused;
//   - user info ("user:pw@") is refused: a base URL that carries it would
//     leak credentials, and it lets one origin be spelled many ways;
//   - an empty query ("?") or fragment ("#") is dropped; a non-empty one is
//     refused (it would break path joining);
//   - a host is required; it is lower-cased; one trailing dot is dropped
//     ("seller.example.com." is "seller.example.com"); empty labels are
//     refused; a non-ASCII or "xn--" host goes through IDNA (UTS #46 lookup
//     profile) to its ASCII form ("bücher.example" is "xn--bcher-kva.example");
//     other ASCII hosts may hold letters, digits, "-" and "_" only;
//   - "localhost" (any case, with or without the trailing dot) is loopback and
//     becomes "127.0.0.1";
//   - an IP literal takes its canonical text: an IPv4-mapped IPv6 address
//     ("[::ffff:127.0.0.1]") becomes the IPv4 form, other IPv6 addresses are
//     compressed and lower-cased in brackets; IPv6 zones are refused; the
//     unspecified addresses, which a dial turns into the local host, are
//     spelled as the loopback address they reach ("0.0.0.0" is "127.0.0.1",
//     "[::]" is "[::1]"); a host
//     whose last label is numeric (decimal or 0x-hex) must be a plain
//     dotted-quad IPv4 address without leading zeros ("127.1", "2130706433"
//     and "0177.0.0.1" are refused, since some resolvers read them as
//     127.0.0.1);
//   - the port must be decimal digits; leading zeros are dropped
//     (":09001" is ":9001"); 0 and ports above 65535 are refused; an empty
//     port (":") and the scheme's default port (80 for http, 443 for https)
//     are dropped;
//   - the path's percent-encoding is normalised (unreserved characters
//     decoded, other escapes upper-cased; "%2F" stays encoded), dot segments
//     are resolved and repeated slashes collapsed (path.Clean), and the
//     trailing slash is removed, so "/api/.." and "/" are both the empty
//     path. The path keeps its case.
//
// Errors wrap ErrInvalidURL (code "invalid_url"). CanonicalURL does not
// decide whether the host is private; the Client does that
// (Config.AllowPrivate) because it is a policy, not syntax.
func CanonicalURL(raw string) (string, error) {
	s, _, err := canonicalURL(raw)
	return s, err
}

// canonicalURL is CanonicalURL, also returning the canonical URL's host
// name (what url.Parse of it gives as Hostname), so that a caller checking
// the host need not parse the URL it just made.
func canonicalURL(raw string) (canonical, hostname string, err error) {
	if strings.ContainsFunc(raw, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", "", invalidURL(raw, "control character in URL")
	}
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", "", invalidURL(raw, "empty URL")
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", "", invalidURL(raw, "unparsable URL")
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", "", invalidURL(raw, "scheme must be http or https")
	}
	if u.Opaque != "" {
		return "", "", invalidURL(raw, "opaque URL")
	}
	if u.User != nil || strings.Contains(u.Host, "@") {
		return "", "", invalidURL(raw, "user info is not allowed in a base URL")
	}
	if u.RawQuery != "" {
		return "", "", invalidURL(raw, "query is not allowed in a base URL")
	}
	if u.Fragment != "" || u.RawFragment != "" {
		return "", "", invalidURL(raw, "fragment is not allowed in a base URL")
	}
	host, err := canonicalHostname(u.Hostname(), strings.HasPrefix(u.Host, "["))
	if err != nil {
		return "", "", invalidURL(raw, err.Error())
	}
	port, err := canonicalPort(u.Port(), scheme)
	if err != nil {
		return "", "", invalidURL(raw, err.Error())
	}
	p, err := canonicalPath(u.EscapedPath())
	if err != nil {
		return "", "", invalidURL(raw, err.Error())
	}
	lb, rb := "", ""
	if strings.Contains(host, ":") {
		lb, rb = "[", "]"
	}
	colon := ""
	if port != "" {
		colon = ":"
	}
	if isConcat(raw, scheme, "://", lb, host, rb, colon, port, p) {
		return raw, host, nil // already canonical (the usual case): no string made
	}
	return scheme + "://" + lb + host + rb + colon + port + p, host, nil
}

// isConcat reports whether s is the concatenation of parts.
func isConcat(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.HasPrefix(s, p) {
			return false
		}
		s = s[len(p):]
	}
	return s == ""
}

// Origin returns the origin (scheme://host[:port], canonical) of a URL, so
// two URLs of one server compare equal whatever their paths.
func Origin(raw string) (string, error) {
	c, err := CanonicalURL(raw)
	if err != nil {
		return "", err
	}
	rest := c[strings.Index(c, "://")+3:]
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		return c[:len(c)-len(rest)+i], nil
	}
	return c, nil
}

// canonicalHostname applies CanonicalURL's host rules to a host without
// brackets or port.
func canonicalHostname(h string, bracketed bool) (string, error) {
	if h == "" {
		return "", errors.New("host required")
	}
	if bracketed || strings.Contains(h, ":") {
		if strings.Contains(h, "%") {
			return "", errors.New("IPv6 zone not allowed")
		}
		a, err := netip.ParseAddr(h)
		if err != nil || !a.Is6() {
			return "", errors.New("bad IPv6 address")
		}
		return unspecifiedToLoopback(a.Unmap()).String(), nil
	}
	h = strings.TrimSuffix(h, ".")
	if h == "" {
		return "", errors.New("host required")
	}
	ascii := true
	for i := 0; i < len(h); i++ {
		if h[i] >= 0x80 {
			ascii = false
			break
		}
	}
	h = strings.ToLower(h)
	if !ascii || strings.HasPrefix(h, "xn--") || strings.Contains(h, ".xn--") {
		a, err := idna.Lookup.ToASCII(h)
		if err != nil {
			return "", errors.New("bad internationalised host name")
		}
		h = strings.TrimSuffix(strings.ToLower(a), ".")
	}
	var last string
	for l := range strings.SplitSeq(h, ".") {
		if l == "" {
			return "", errors.New("empty label in host")
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return "", fmt.Errorf("invalid character %q in host", c)
			}
		}
		last = l
	}
	if h == "localhost" {
		return "127.0.0.1", nil
	}
	if isNumericLabel(last) {
		a, err := netip.ParseAddr(h)
		if err != nil || !a.Is4() {
			return "", errors.New("ambiguous numeric host: only dotted-quad IPv4 without leading zeros is accepted")
		}
		// h itself when it is already the address's spelling: the
		// usual case, with no string made.
		var buf [len("255.255.255.255")]byte
		if b := unspecifiedToLoopback(a).AppendTo(buf[:0]); string(b) != h {
			return string(b), nil
		}
	}
	return h, nil
}

// unspecifiedToLoopback spells 0.0.0.0 and :: as the loopback address a
// connection to them reaches (127.0.0.1, ::1), so they are one seller with it.
func unspecifiedToLoopback(a netip.Addr) netip.Addr {
	switch {
	case a == netip.IPv4Unspecified():
		return netip.AddrFrom4([4]byte{127, 0, 0, 1})
	case a == netip.IPv6Unspecified():
		return netip.IPv6Loopback()
	}
	return a
}

// isNumericLabel reports whether a host label is a number (decimal, or hex
// with 0x), which makes the whole host an IPv4 address to URL parsers.
func isNumericLabel(l string) bool {
	digits := l
	hex := false
	if strings.HasPrefix(l, "0x") {
		digits, hex = l[2:], true
		if digits == "" {
			return true
		}
	}
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		if c >= '0' && c <= '9' || hex && (c >= 'a' && c <= 'f') {
			continue
		}
		return false
	}
	return true
}

// canonicalPort drops leading zeros, refuses 0 and >65535, and returns "" for
// no port or the scheme's default port.
func canonicalPort(p, scheme string) (string, error) {
	if p == "" {
		return "", nil
	}
	n := 0
	for _, r := range p {
		if r < '0' || r > '9' {
			return "", errors.New("bad port")
		}
		n = n*10 + int(r-'0')
		if n > 65535 {
			return "", errors.New("port out of range")
		}
	}
	if n == 0 {
		return "", errors.New("port out of range")
	}
	if scheme == "http" && n == 80 || scheme == "https" && n == 443 {
		return "", nil
	}
	return strconv.Itoa(n), nil
}

// canonicalPath normalises percent-encoding (RFC 3986 6.2.2.1-2), resolves
// dot segments and drops the trailing slash.
func canonicalPath(escaped string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(escaped); i++ {
		c := escaped[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(escaped) || !isHex(escaped[i+1]) || !isHex(escaped[i+2]) {
			return "", errors.New("bad percent-encoding in path")
		}
		v := unhex(escaped[i+1])<<4 | unhex(escaped[i+2])
		if v >= 'a' && v <= 'z' || v >= 'A' && v <= 'Z' || v >= '0' && v <= '9' || v == '-' || v == '.' || v == '_' || v == '~' {
			b.WriteByte(v)
		} else {
			b.WriteString(strings.ToUpper(escaped[i : i+3]))
		}
		i += 2
	}
	p := b.String()
	if p == "" {
		return "", nil
	}
	p = path.Clean("/" + p)
	return strings.TrimSuffix(p, "/"), nil
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// invalidURL builds the typed error for a refused URL.
func invalidURL(raw, reason string) error {
	return &Error{Code: "invalid_url", Message: fmt.Sprintf("%s: %q", reason, truncate(raw, 200)), URL: truncate(raw, 200), kinds: []error{ErrInvalidURL, ErrNotSent}}
}

// checkTarget normalises raw and refuses a URL whose host is literally an
// address the client's guard refuses. Host names that resolve to such
// addresses are refused later, at dial time, by the guard's transport, which
// also defeats DNS rebinding.
func (c *Client) checkTarget(raw string) (string, error) {
	return c.guard.CheckURL(raw)
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

package sellerclient

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"syscall"
	"testing"
)

func TestGuardExports(t *testing.T) {
	if _, err := CheckDestination("http://127.0.0.1:9/mcp", false); !errors.Is(err, ErrInvalidURL) {
		t.Fatalf("private literal allowed: %v", err)
	}
	if u, err := CheckDestination("http://LOCALHOST:9/mcp/", true); err != nil || u != "http://127.0.0.1:9/mcp" {
		t.Fatalf("allowPrivate: %q %v", u, err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	_, err := (&http.Client{Transport: NewGuardedTransport(false)}).Get(srv.URL)
	if !IsPrivateDialError(err) {
		t.Fatalf("guarded transport dialled a loopback address: %v", err)
	}
	resp, err := (&http.Client{Transport: NewGuardedTransport(true)}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
}

// dialThrough dials address with the guard's Control hook in front of a
// hook that records that the guard let the dial through and then stops it,
// so no test ever opens a connection to a non-loopback address: it returns
// the guard's error, and whether connect(2) would have been reached.
func dialThrough(t *testing.T, g Guard, address string) (error, bool) {
	t.Helper()
	passed := false
	errStop := errors.New("test: stopped before connect")
	d := g.Dialer()
	guard := d.Control
	d.Control = func(network, addr string, c syscall.RawConn) error {
		if err := guard(network, addr, c); err != nil {
			return err
		}
		passed = true
		return errStop
	}
	_, err := d.DialContext(context.Background(), "tcp", address)
	if errors.Is(err, errStop) {
		return nil, passed
	}
	return err, passed
}

// TestGuardRefusesSpecialPurposeAddresses: without an allow list the
// special-purpose addresses the attack reached are refused before any
// connect, and with --allow-private (PrivatePrefixes, or every address
// allowed) link-local and metadata addresses still are.
func TestGuardRefusesSpecialPurposeAddresses(t *testing.T) {
	public := Guard{}
	for _, addr := range []string{
		"192.0.0.1:80", "198.18.0.1:80", "240.0.0.1:80", "255.255.255.255:80",
		"[2002:a9fe:a9fe::]:80",       // 6to4 wrapping 169.254.169.254
		"[64:ff9b::a9fe:a9fe]:80",     // NAT64 wrapping it
		"[::ffff:169.254.169.254]:80", // IPv4-mapped
		"169.254.169.254:80", "[fd00:ec2::254]:80", "[fe80::1]:80", "100.100.100.200:80",
		"127.0.0.1:80", "10.0.0.1:443", "172.16.0.1:80", "192.168.1.1:80", "100.64.0.1:80",
		"0.0.0.0:80", "[::]:80", "[::1]:80", "224.0.0.1:80", "192.0.2.1:80", "[2001:db8::1]:80",
		"[2001:0:4136:e378:8000:63bf:3fff:fdd2]:80", // Teredo
	} {
		err, passed := dialThrough(t, public, addr)
		if passed || !IsPrivateDialError(err) {
			t.Errorf("public-only guard: %s passed=%v err=%v, want refused before connect", addr, passed, err)
		}
	}
	for _, addr := range []string{"93.184.216.34:443", "[2606:4700::1111]:443", "8.8.8.8:8080"} {
		if err, passed := dialThrough(t, public, addr); err != nil || !passed {
			t.Errorf("public address %s refused: %v", addr, err)
		}
	}

	everything := NewGuard([]netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")})
	for _, g := range []Guard{PrivateGuard(), everything} {
		for _, addr := range []string{
			"169.254.169.254:80", "169.254.0.1:80", "[fe80::1]:80", "[fd00:ec2::254]:80", "100.100.100.200:80",
			"[::ffff:169.254.169.254]:80", "[2002:a9fe:a9fe::]:80", "[64:ff9b::a9fe:a9fe]:80", "0.0.0.0:80", "[::]:80",
		} {
			err, passed := dialThrough(t, g, addr)
			if passed || !IsPrivateDialError(err) {
				t.Errorf("guard %s: %s passed=%v err=%v, want refused", g, addr, passed, err)
			}
		}
	}
	for _, addr := range []string{"127.0.0.1:80", "[::1]:80", "10.1.2.3:80", "192.168.0.1:80", "[fd00::1]:80"} {
		if err, passed := dialThrough(t, PrivateGuard(), addr); err != nil || !passed {
			t.Errorf("private guard refused %s: %v", addr, err)
		}
	}
	// Private does not mean every special-purpose range.
	for _, addr := range []string{"100.64.0.1:80", "198.18.0.1:80", "240.0.0.1:80"} {
		if err, passed := dialThrough(t, PrivateGuard(), addr); passed || err == nil {
			t.Errorf("private guard let %s through", addr)
		}
	}
}

func TestGuardAllowListIsExact(t *testing.T) {
	g := NewGuard([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	if err, passed := dialThrough(t, g, "127.0.0.1:80"); err != nil || !passed {
		t.Fatalf("127.0.0.1 refused with 127.0.0.0/8 allowed: %v", err)
	}
	for _, addr := range []string{"10.0.0.1:80", "[::1]:80", "192.168.0.1:80"} {
		if err, passed := dialThrough(t, g, addr); passed || !IsPrivateDialError(err) {
			t.Errorf("%s let through by 127.0.0.0/8: %v", addr, err)
		}
	}
	// A real server on loopback, through the guard's own transport.
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	resp, err := g.HTTPClient(0).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if _, err := g.HTTPClient(0).Get(srv.URL); err != nil {
		t.Fatal(err)
	}
	_, err = NewGuard([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}).HTTPClient(0).Get(srv.URL)
	if !IsPrivateDialError(err) {
		t.Fatalf("loopback server reached with only 10.0.0.0/8 allowed: %v", err)
	}
}

func TestParseAllowList(t *testing.T) {
	for in, want := range map[string]string{
		"":                          "",
		"false":                     "",
		"true":                      "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7",
		"127.0.0.0/8,10.0.0.0/8":    "127.0.0.0/8,10.0.0.0/8",
		" 172.28.0.100 , ::1 ":      "172.28.0.100/32,::1/128",
		"10.1.2.3/8":                "10.0.0.0/8",
		"::ffff:127.0.0.1/104":      "127.0.0.0/8",
		"0.0.0.0/0":                 "0.0.0.0/0",
		"169.254.0.0/15":            "169.254.0.0/15", // wider than link-local: accepted, link-local inside still refused
		"127.0.0.0/8,,192.0.2.0/24": "127.0.0.0/8,192.0.2.0/24",
	} {
		got, err := ParseAllowList(in)
		if err != nil {
			t.Errorf("ParseAllowList(%q): %v", in, err)
			continue
		}
		s := make([]string, len(got))
		for i, p := range got {
			s[i] = p.String()
		}
		if strings.Join(s, ",") != want {
			t.Errorf("ParseAllowList(%q) = %s, want %s", in, strings.Join(s, ","), want)
		}
	}
	for _, in := range []string{"169.254.0.0/16", "169.254.169.254", "fe80::/64", "fd00:ec2::254", "0.0.0.0", "::", "10.0.0.0/33", "bogus", "fe80::1%eth0", "yes"} {
		if _, err := ParseAllowList(in); err == nil {
			t.Errorf("ParseAllowList(%q) accepted", in)
		}
	}
	if err := NewGuard(mustAllow(t, "169.254.0.0/15")).CheckAddr(netip.MustParseAddr("169.254.169.254")); !IsPrivateDialError(err) {
		t.Fatalf("metadata address allowed through a wider prefix: %v", err)
	}
}

func mustAllow(t *testing.T, s string) []netip.Prefix {
	t.Helper()
	p, err := ParseAllowList(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestGuardChecksURLLiterals: the URL check refuses what the dialer would,
// before anything is resolved or sent.
func TestGuardChecksURLLiterals(t *testing.T) {
	for _, u := range []string{"http://169.254.169.254/latest/meta-data", "http://[fd00:ec2::254]/", "http://[::ffff:a9fe:a9fe]/",
		"http://[2002:a9fe:a9fe::]/"} {
		if _, err := PrivateGuard().CheckURL(u); !errors.Is(err, ErrInvalidURL) {
			t.Errorf("PrivateGuard().CheckURL(%s) = %v, want ErrInvalidURL", u, err)
		}
	}
	for _, u := range []string{"http://198.18.0.1/", "http://240.0.0.1/", "http://255.255.255.255/", "http://192.0.0.1/", "http://api.localhost/", "http://0.0.0.0:9/"} {
		if _, err := (Guard{}).CheckURL(u); !errors.Is(err, ErrInvalidURL) {
			t.Errorf("Guard{}.CheckURL(%s) = %v, want ErrInvalidURL", u, err)
		}
	}
	if got, err := PrivateGuard().CheckURL("http://0.0.0.0:9/x/"); err != nil || got != "http://127.0.0.1:9/x" {
		t.Fatalf("0.0.0.0 = %q %v, want the loopback spelling", got, err)
	}
	if got, err := PrivateGuard().CheckURL("http://[::]:9"); err != nil || got != "http://[::1]:9" {
		t.Fatalf("[::] = %q %v, want [::1]", got, err)
	}
	if _, err := (Guard{}).CheckURL("https://93.184.216.34/"); err != nil {
		t.Fatal(err)
	}
}

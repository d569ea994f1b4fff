package sellerclient

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestCanonicalURL(t *testing.T) {
	const p = "9001"
	cases := []struct {
		in, want string
		ok       bool
	}{
		// Aliases of one loopback seller: all are http://127.0.0.1:9001.
		{"http://127.0.0.1:" + p, "http://127.0.0.1:9001", true},
		{"http://localhost:" + p, "http://127.0.0.1:9001", true},
		{"HTTP://LOCALHOST:" + p + "/", "http://127.0.0.1:9001", true},
		{"http://localhost.:" + p, "http://127.0.0.1:9001", true},
		{"http://[::ffff:127.0.0.1]:" + p, "http://127.0.0.1:9001", true},
		{"http://[::FFFF:7f00:1]:" + p, "http://127.0.0.1:9001", true},
		{"http://127.0.0.1:0" + p, "http://127.0.0.1:9001", true},
		{"http://127.0.0.1:000" + p + "/", "http://127.0.0.1:9001", true},
		{"http://127.0.0.1:" + p + "/.", "http://127.0.0.1:9001", true},
		{"http://127.0.0.1:" + p + "/api/..", "http://127.0.0.1:9001", true},
		{"http://127.0.0.1:" + p + "/api/../", "http://127.0.0.1:9001", true},
		{"http://127.0.0.1:" + p + "/%2e%2E/", "http://127.0.0.1:9001", true},
		{"http://127.0.0.1:" + p + "?", "http://127.0.0.1:9001", true},
		{"http://127.0.0.1:" + p + "#", "http://127.0.0.1:9001", true},
		{"  http://127.0.0.1:" + p + "  ", "http://127.0.0.1:9001", true},
		// Production spellings.
		{"https://seller.example.com:443/", "https://seller.example.com", true},
		{"https://seller.example.com:0443", "https://seller.example.com", true},
		{"http://seller.example.com:80/", "http://seller.example.com", true},
		{"http://seller.example.com:443/", "http://seller.example.com:443", true},
		{"https://seller.example.com:80", "https://seller.example.com:80", true},
		{"https://seller.example.com.", "https://seller.example.com", true},
		{"HTTPS://Seller.Example.COM./a/./b/../c", "https://seller.example.com/a/c", true},
		{"https://seller.example.com/Agent//v1/", "https://seller.example.com/Agent/v1", true},
		{"http://s/", "http://s", true},
		{"http://s//", "http://s", true},
		{"  HTTPS://Seller.Example.COM:8443/Agent/  ", "https://seller.example.com:8443/Agent", true},
		{"http://[::1]:8000/", "http://[::1]:8000", true},
		{"http://[2001:DB8:0:0::1]/", "http://[2001:db8::1]", true},
		{"http://s/a%2fb/", "http://s/a%2Fb", true},
		{"http://s/%7euser", "http://s/~user", true},
		{"http://seller_1.internal:8080", "http://seller_1.internal:8080", true},
		// IDNA.
		{"http://bücher.example/", "http://xn--bcher-kva.example", true},
		{"http://BÜCHER.example./", "http://xn--bcher-kva.example", true},
		{"http://xn--bcher-kva.example", "http://xn--bcher-kva.example", true},
		// Refused.
		{"", "", false},
		{"   ", "", false},
		{"ftp://s", "", false},
		{"file:///etc/passwd", "", false},
		{"ws://s", "", false},
		{"javascript:alert(1)", "", false},
		{"http:s", "", false},
		{"s.example.com", "", false},
		{"localhost:9001", "", false},
		{"http://", "", false},
		{"http:///path", "", false},
		{"http://user:pw@s", "", false},
		{"http://user@s", "", false},
		{"http://:pw@s", "", false},
		{"http://s/?x=1", "", false},
		{"http://s/#frag", "", false},
		{"http://s:99999", "", false},
		{"http://s:65536", "", false},
		{"http://s:0", "", false},
		{"http://s:000", "", false},
		{"http://s:-1", "", false},
		{"http://s:abc", "", false},
		{"http://s\x00x", "", false},
		{"http://s..", "", false},
		{"http://a..b", "", false},
		{"http://.", "", false},
		{"http://[fe80::1%25eth0]", "", false},
		{"http://[127.0.0.1]", "", false},
		{"http://127.1", "", false},
		{"http://2130706433", "", false},
		{"http://0x7f.0.0.1", "", false},
		{"http://0177.0.0.1", "", false},
		{"http://127.000.000.001", "", false},
		{"http://s/%zz", "", false},
		{"http://xn--a.example", "", false},
	}
	for _, c := range cases {
		got, err := CanonicalURL(c.in)
		if c.ok {
			if err != nil || got != c.want {
				t.Errorf("CanonicalURL(%q) = %q, %v; want %q", c.in, got, err, c.want)
				continue
			}
			if again, err := CanonicalURL(got); err != nil || again != got {
				t.Errorf("CanonicalURL not idempotent on %q: %q, %v", got, again, err)
			}
			continue
		}
		var e *Error
		if err == nil || !errors.Is(err, ErrInvalidURL) || !errors.As(err, &e) || e.Code != "invalid_url" {
			t.Errorf("CanonicalURL(%q) = %q, %v; want ErrInvalidURL with code invalid_url", c.in, got, err)
		}
	}
}

func TestOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"http://LOCALHOST:9001/api/x":     "http://127.0.0.1:9001",
		"https://seller.example.com:443/": "https://seller.example.com",
		"http://s":                        "http://s",
		"http://[::1]:8/a":                "http://[::1]:8",
	} {
		if got, err := Origin(in); err != nil || got != want {
			t.Errorf("Origin(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := Origin("ftp://x"); !errors.Is(err, ErrInvalidURL) {
		t.Errorf("Origin(ftp) err = %v", err)
	}
}

func TestPrivateTargetsRefusedWithoutAllowPrivate(t *testing.T) {
	srv := newFake(t, routes(map[string]reply{"GET /media-kit": {body: mediaKitBody}}))
	c := New(Config{})
	for _, u := range []string{srv.URL, "http://localhost:8000", "http://api.localhost", "http://10.1.2.3", "http://192.168.0.10:8080",
		"http://172.16.5.4", "http://[::1]:8000", "http://169.254.169.254/latest", "http://[fe80::1]", "http://0.0.0.0",
		"http://100.64.0.1", "http://[::ffff:127.0.0.1]", "http://[fd00::1]"} {
		_, err := c.MediaKit(context.Background(), u)
		if !errors.Is(err, ErrInvalidURL) {
			t.Errorf("MediaKit(%s) err = %v, want ErrInvalidURL", u, err)
		}
	}
	if n := len(srv.requests()); n != 0 {
		t.Fatalf("server saw %d requests, want 0", n)
	}
	// The same URL works when private targets are allowed.
	mk, err := New(Config{AllowPrivate: true}).MediaKit(context.Background(), srv.URL)
	if err != nil || mk.TotalPackages != 2 {
		t.Fatalf("AllowPrivate: %v, %+v", err, mk)
	}
	// Public addresses pass the literal check.
	if _, err := c.checkTarget("https://93.184.216.34"); err != nil {
		t.Fatalf("public IP refused: %v", err)
	}
}

func TestDialControlRefusesResolvedPrivateAddresses(t *testing.T) {
	for addr, refused := range map[string]bool{
		"127.0.0.1:80": true, "10.0.0.1:443": true, "[::1]:80": true, "169.254.169.254:80": true,
		"[64:ff9b::7f00:1]:80": true, "93.184.216.34:443": false, "[2606:4700::1111]:443": false,
	} {
		err := Guard{}.control("tcp", addr, nil)
		if refused != (err != nil) || (err != nil && !errors.Is(err, errPrivateDial)) {
			t.Errorf("control(%s) = %v, refused want %v", addr, err, refused)
		}
	}
	// Wired into the default transport: a loopback dial fails at connect time
	// even though the URL check is bypassed here.
	srv := newFake(t, routes(map[string]reply{"GET /health": {body: `{"status":"healthy"}`}}))
	c := New(Config{RetryBase: 1})
	err := c.getJSON(context.Background(), "Health", srv.URL+"/health", Auth{}, func([]byte) error { return nil })
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrInvalidURL) || e.Code != "private_address" {
		t.Fatalf("err = %v, want private_address ErrInvalidURL", err)
	}
	if len(srv.requests()) != 0 {
		t.Fatal("request reached the loopback server")
	}
}

func TestRedirects(t *testing.T) {
	other := newFake(t, routes(map[string]reply{"GET /media-kit": {body: mediaKitBody}}))
	// Redirects need a Location header, so this server uses a mux.
	mux := http.NewServeMux()
	mux.HandleFunc("/cross/media-kit", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/media-kit", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/same/media-kit", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/new/media-kit", http.StatusMovedPermanently)
	})
	mux.HandleFunc("/new/media-kit", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(mediaKitBody))
	})
	redirector := newHandlerServer(t, mux)

	c := testClient()
	_, err := c.MediaKit(context.Background(), redirector+"/cross")
	if !errors.Is(err, ErrRedirectRefused) || !errors.Is(err, ErrBadResponse) {
		t.Fatalf("cross-host redirect: err = %v, want ErrRedirectRefused", err)
	}
	if IsTransient(err) {
		t.Fatal("a refused redirect must not be transient")
	}
	if n := len(other.requests()); n != 0 {
		t.Fatalf("other host saw %d requests, want 0", n)
	}
	mk, err := c.MediaKit(context.Background(), redirector+"/same")
	if err != nil || mk.TotalPackages != 2 {
		t.Fatalf("same-host redirect: %v %+v", err, mk)
	}
}

func TestCheckRedirectPolicy(t *testing.T) {
	c := New(Config{})
	mk := func(u string) *http.Request {
		r, _ := http.NewRequest("GET", u, nil)
		return r
	}
	cases := []struct {
		from, to string
		ok       bool
	}{
		{"http://s.example/a", "http://s.example/b", true},
		{"http://s.example/a", "https://s.example/b", true},  // upgrade on default ports
		{"https://s.example/a", "http://s.example/b", false}, // downgrade
		{"http://s.example/a", "http://evil.example/b", false},
		{"http://s.example:8000/a", "http://s.example:9000/b", false},
		{"http://s.example/a", "http://127.0.0.1/b", false},
	}
	for _, cs := range cases {
		err := c.checkRedirect(mk(cs.to), []*http.Request{mk(cs.from)})
		if (err == nil) != cs.ok {
			t.Errorf("%s -> %s: err=%v, want ok=%v", cs.from, cs.to, err, cs.ok)
		}
	}
	via := []*http.Request{}
	for range maxRedirects {
		via = append(via, mk("http://s.example/a"))
	}
	if err := c.checkRedirect(mk("http://s.example/b"), via); err == nil || !strings.Contains(err.Error(), "too many") {
		t.Fatalf("too many redirects: %v", err)
	}
}

func TestEscapeIDRefusesPathTricks(t *testing.T) {
	for _, id := range []string{"", " ", ".", ".."} {
		if _, err := escapeID("op", id); !errors.Is(err, ErrValidation) {
			t.Errorf("escapeID(%q) = %v, want ErrValidation", id, err)
		}
	}
	got, err := escapeID("op", "a/b ?#")
	if err != nil || got != "a%2Fb%20%3F%23" {
		t.Fatalf("escapeID = %q, %v", got, err)
	}
}

func TestCheckDestinationAppliesSellerRules(t *testing.T) {
	for _, u := range []string{"http://localhost:8000/hook", "http://10.1.2.3/x", "http://[::1]/", "http://169.254.169.254/latest", "ftp://example.com", ""} {
		if _, err := CheckDestination(u, false); !errors.Is(err, ErrInvalidURL) {
			t.Fatalf("%q: %v, want ErrInvalidURL", u, err)
		}
	}
	if n, err := CheckDestination("HTTPS://Hooks.Example.COM:443/a/../dealflow", false); err != nil || n != "https://hooks.example.com/dealflow" {
		t.Fatalf("public: %q %v", n, err)
	}
	if _, err := CheckDestination("http://127.0.0.1:9/hook", true); err != nil {
		t.Fatalf("allowPrivate: %v", err)
	}
}

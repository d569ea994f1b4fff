package sellerclient

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestNormalizeURL(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in, want string
		ok       bool
	}{
		{"http://s/", "http://s", true},
		{"http://s//", "http://s", true},
		{"  HTTPS://Seller.Example.COM:8443/Agent/  ", "https://seller.example.com:8443/Agent", true},
		{"https://seller.acme.example.com/", "https://seller.acme.example.com", true},
		{"http://127.0.0.1:8000", "http://127.0.0.1:8000", true},
		{"http://[::1]:8000/", "http://[::1]:8000", true},
		{"http://s/a%2Fb/", "http://s/a%2Fb", true},
		{"", "", false},
		{"   ", "", false},
		{"ftp://s", "", false},
		{"javascript:alert(1)", "", false},
		{"s.example.com", "", false},
		{"http://", "", false},
		{"http:///path", "", false},
		{"http://user:pw@s", "", false},
		{"http://s/?x=1", "", false},
		{"http://s/#frag", "", false},
		{"http://s:99999", "", false},
		{"http://s:abc", "", false},
		{"http://s\x00x", "", false},
	}
	for _, c := range cases {
		got, err := NormalizeURL(c.in)
		if c.ok {
			if err != nil || got != c.want {
				t.Errorf("NormalizeURL(%q) = %q, %v; want %q", c.in, got, err, c.want)
			}
			continue
		}
		if err == nil || !errors.Is(err, ErrInvalidURL) {
			t.Errorf("NormalizeURL(%q) = %q, %v; want ErrInvalidURL", c.in, got, err)
		}
	}
}

func TestPrivateTargetsRefusedWithoutAllowPrivate(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
	for addr, refused := range map[string]bool{
		"127.0.0.1:80": true, "10.0.0.1:443": true, "[::1]:80": true, "169.254.169.254:80": true,
		"[64:ff9b::7f00:1]:80": true, "93.184.216.34:443": false, "[2606:4700::1111]:443": false,
	} {
		err := dialControl("tcp", addr, nil)
		if refused != (err != nil) || (err != nil && !errors.Is(err, errPrivateDial)) {
			t.Errorf("dialControl(%s) = %v, refused want %v", addr, err, refused)
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
	t.Parallel()
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
	t.Parallel()
	c := New(Config{})
	mk := func(u string) *http.Request {
		r, err := http.NewRequest("GET", u, nil)
		if err != nil {
			t.Fatal(err)
		}
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
	t.Parallel()
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

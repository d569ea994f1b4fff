package app_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/dealflow/dealflow/internal/app"
	"github.com/dealflow/dealflow/internal/app/apitest"
	"github.com/dealflow/dealflow/pkg/sellerclient"
)

// TestHostileURLsRefusedAtTheEdge: seller and webhook URLs that can never
// be called (other schemes, user info, control characters) are a 422 naming
// the field, and so is a webhook on a link-local or metadata address even
// with --allow-private; nothing reaches the store (there is none here).
func TestHostileURLsRefusedAtTheEdge(t *testing.T) {
	h := app.NewAPI(nil, nil, "", zerolog.Nop(), app.APIOptions{Guard: sellerclient.PrivateGuard()})
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, u := range []string{"javascript:alert(1)", "file:///etc/passwd", "http://user:pw@seller.example.com/", "http://seller.example.com/\r\nX-Evil: 1",
		"http://seller.example.com\r\n", "gopher://seller.example.com/", "http:seller.example.com", "//seller.example.com/", "http://seller example.com/"} {
		b := booking("c-1", nil)
		b["sellers"] = []string{"https://good.example.com", u}
		code, out := apitest.JSON(t, "POST", srv.URL+"/bookings", b, nil)
		if code != 422 || out["field"] != "sellers[1]" {
			t.Errorf("seller %q: %d %v, want 422 on sellers[1]", u, code, out)
		}
	}
	for _, u := range []string{"javascript:alert(1)", "file:///etc/passwd", "http://user:pw@hooks.example.com/", "http://hooks.example.com/\r\n",
		"http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/", "http://[fe80::1]/", "http://[::ffff:169.254.169.254]/"} {
		code, out := apitest.JSON(t, "POST", srv.URL+"/bookings", booking("c-1", map[string]any{"url": u, "secret": "0123456789abcdef"}), nil)
		if code != 422 || out["field"] != "notify.url" {
			t.Errorf("webhook %q: %d %v, want 422 on notify.url", u, code, out)
		}
	}
}

// TestUnknownFieldNamesItsPath: an unknown member is named by its full path,
// not its leaf.
func TestUnknownFieldNamesItsPath(t *testing.T) {
	h := app.NewAPI(nil, nil, "", zerolog.Nop(), app.APIOptions{})
	srv := httptest.NewServer(h)
	defer srv.Close()
	for body, want := range map[string]string{
		`{"brief":{"name":"n","evil":1}}`:                              "brief.evil",
		`{"brief":{"name":"n","kpis":{"max_cpm":1,"evil":2}}}`:         "brief.kpis.evil",
		`{"brief":{"name":"n","weights":{"evil":true}}}`:               "brief.weights.evil",
		`{"buyer":{"seat_id":"s","evil":"x"},"brief":{}}`:              "buyer.evil",
		`{"brief":{"name":"n"},"evil":1}`:                              "evil",
		`{"Brief":{"Name":"n","Evil":1}}`:                              "Brief.Evil",
		`{"notify":{"url":"https://x.example","secret":"s","evil":1}}`: "notify.evil",
	} {
		code, out := apitest.JSON(t, "POST", srv.URL+"/bookings", rawJSON(body), nil)
		if code != 422 || out["field"] != want {
			t.Errorf("%s: %d %v, want field %s", body, code, out, want)
		}
	}
}

// rawJSON is a request body sent as it is written.
type rawJSON string

func (r rawJSON) MarshalJSON() ([]byte, error) { return []byte(strings.TrimSpace(string(r))), nil }

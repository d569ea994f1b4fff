package api_test

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dealflow/dealflow/internal/api"
	"github.com/dealflow/dealflow/internal/api/apitest"
	"github.com/dealflow/dealflow/internal/demo"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/sellerclient"
)

// TestHostileURLsRefusedAtTheEdge: seller and webhook URLs that can never
// be called (other schemes, user info, control characters) are a 422 naming
// the field, and so is a webhook on a link-local or metadata address even
// with --allow-private; nothing reaches the store (there is none here).
func TestHostileURLsRefusedAtTheEdge(t *testing.T) {
	h := api.New(nil, nil, "", zerolog.Nop(), api.Options{Guard: sellerclient.PrivateGuard()})
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
	h := api.New(nil, nil, "", zerolog.Nop(), api.Options{})
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

// TestEveryNumberHasARange: every numeric field of a booking request, sent
// at the extremes of what JSON can carry, is a 422 naming that field (the
// attack's weights.price 1e308 passed and stalled planning).
func TestEveryNumberHasARange(t *testing.T) {
	h := api.New(nil, nil, "", zerolog.Nop(), api.Options{})
	srv := httptest.NewServer(h)
	defer srv.Close()
	set := func(b map[string]any, path []string, v any) {
		m := b
		for _, k := range path[:len(path)-1] {
			next, ok := m[k].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[k] = next
			}
			m = next
		}
		m[path[len(path)-1]] = v
	}
	fields := []string{"brief.budget", "brief.per_seller_cap", "brief.kpis.target_cpm", "brief.kpis.max_cpm", "brief.impressions", "brief.min_sellers",
		"brief.format_mix.video", "brief.weights.price", "brief.weights.video", "brief.weights.display", "brief.weights.negotiable",
		"brief.weights.volume", "brief.weights.price_ceiling", "negotiation.step", "negotiation.max_rounds", "shopping_window_seconds"}
	for _, f := range fields {
		for _, v := range []rawJSON{"1e308", "-1e308", "1.7976931348623157e308", "9223372036854775807", "-9223372036854775808", "1e19"} {
			var b map[string]any
			if err := json.Unmarshal([]byte(mustJSON(booking("c-1", nil))), &b); err != nil {
				t.Fatal(err)
			}
			set(b, strings.Split(f, "."), v)
			code, out := apitest.JSON(t, "POST", srv.URL+"/bookings", b, nil)
			if code != 422 || out["field"] != f {
				t.Errorf("%s = %s: %d %v, want 422 naming it", f, v, code, out)
			}
		}
	}
	// Device types are a list of small integers.
	for _, v := range []rawJSON{"[1e308]", "[-1]", "[9223372036854775807]"} {
		var b map[string]any
		_ = json.Unmarshal([]byte(mustJSON(booking("c-1", nil))), &b)
		b["brief"].(map[string]any)["device_types"] = v
		code, out := apitest.JSON(t, "POST", srv.URL+"/bookings", b, nil)
		if code != 422 || !strings.HasPrefix(out["field"].(string), "brief.device_types") {
			t.Errorf("device_types %s: %d %v", v, code, out)
		}
	}
}

// TestOversizedBriefRefusedNamingItsField: a brief that could not travel
// through the campaign's events and record is refused at once, 422 naming
// its largest field (the 0.9 MB brief was answered 503 "published
// automatically, do not submit it again", which never happened); a body
// over 1 MiB is 413.
func TestOversizedBriefRefusedNamingItsField(t *testing.T) {
	h := api.New(nil, nil, "", zerolog.Nop(), api.Options{})
	srv := httptest.NewServer(h)
	defer srv.Close()
	geo := make([]string, events.MaxGeo)
	for i := range geo {
		geo[i] = fmt.Sprintf("%03d-%s", i, strings.Repeat("<", events.MaxTokenLen-4)) // each < is 6 bytes encoded
	}
	// Every list at its own limits, in plain characters, is accepted.
	ok := api.BookingRequest{CampaignID: "c-ok", Brief: api.BriefInputOf(demo.SampleCampaign("c-ok", "adaptive").Brief)}
	ok.Brief.Tags, ok.Brief.Keywords = make([]string, events.MaxTags), make([]string, events.MaxKeywords)
	for i := range ok.Brief.Tags {
		ok.Brief.Tags[i] = strings.Repeat("t", events.MaxTokenLen)
	}
	for i := range ok.Brief.Keywords {
		ok.Brief.Keywords[i] = strings.Repeat("k", events.MaxKeywordLen)
	}
	if _, err := ok.ToCampaign(time.Now()); err != nil {
		t.Fatalf("tags and keywords at their limits refused: %v", err)
	}
	for name, c := range map[string]struct {
		edit  func(b map[string]any)
		code  int
		field string
	}{
		"0.9 MB audience": {func(b map[string]any) {
			b["brief"].(map[string]any)["target_audience"] = map[string]any{"segments": strings.Repeat("a", 900<<10)}
		}, 422, "brief.target_audience"},
		"geo at its limits": {func(b map[string]any) { b["brief"].(map[string]any)["geo"] = geo }, 422, "brief.geo"},
		"1000 long sellers": {func(b map[string]any) {
			s := make([]string, events.MaxCampaignSellers)
			for i := range s {
				s[i] = fmt.Sprintf("https://seller-%d.example/%s", i, strings.Repeat("p", 200))
			}
			b["sellers"] = s
		}, 422, "sellers"},
		"body over 1 MiB": {func(b map[string]any) { b["brief"].(map[string]any)["name"] = strings.Repeat("n", api.MaxBodyBytes) }, 413, ""},
	} {
		t.Run(name, func(t *testing.T) {
			var b map[string]any
			if err := json.Unmarshal([]byte(mustJSON(booking("c-1", nil))), &b); err != nil {
				t.Fatal(err)
			}
			c.edit(b)
			code, out := apitest.JSON(t, "POST", srv.URL+"/bookings", b, nil)
			if code != c.code || (c.field != "" && out["field"] != c.field) {
				t.Fatalf("%d %v, want %d naming %q", code, out, c.code, c.field)
			}
		})
	}
}

package discoverer

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/identity"
)

// TestDiscoveryLogs: each skipped seller is a WARN line with its code, and
// one info line closes the discovery with the sellers to shop and the skips
// by code; every line carries campaign_id.
func TestDiscoveryLogs(t *testing.T) {
	dir := &fakeDir{sellers: []events.Seller{
		{URL: "http://pref.test", Trust: identity.TrustPreferred, Capabilities: []string{"ctv"}},
		{URL: "http://blocked.test", Trust: identity.TrustBlocked, Capabilities: []string{"ctv"}},
		{URL: "http://unknown.test", Trust: identity.TrustUnknown, Capabilities: []string{"ctv"}},
		{URL: "http://unknown2.test", Trust: identity.TrustUnknown, Capabilities: []string{"ctv"}},
	}}
	var buf bytes.Buffer
	s := service(dir, nil, nil)
	s.Log = zerolog.New(&buf)
	run(t, s, campaign("c-log"))

	var skips, done []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["campaign_id"] != "c-log" {
			t.Fatalf("line without campaign_id: %s", l)
		}
		switch m["message"] {
		case "seller skipped":
			skips = append(skips, m)
		case "discovery done":
			done = append(done, m)
		}
	}
	if len(skips) != 3 || len(done) != 1 {
		t.Fatalf("skips %v done %v\n%s", skips, done, buf.String())
	}
	codes := map[string]string{}
	for _, m := range skips {
		if m["level"] != "warn" || m["seller"] == "" {
			t.Fatalf("skip line %v", m)
		}
		codes[m["seller"].(string)] = m["code"].(string)
	}
	if codes["http://blocked.test"] != "blocked" || codes["http://unknown.test"] != "untrusted" {
		t.Fatalf("skip codes %v", codes)
	}
	d := done[0]
	by, _ := d["skipped_by_code"].(map[string]any)
	if d["level"] != "info" || d["sellers"] != float64(1) || d["skipped"] != float64(3) || by["untrusted"] != float64(2) || by["blocked"] != float64(1) {
		t.Fatalf("discovery line %v", d)
	}
	if shop, _ := d["to_shop"].([]any); len(shop) != 1 || shop[0] != "http://pref.test" {
		t.Fatalf("to_shop %v", d["to_shop"])
	}
}

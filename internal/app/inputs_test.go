package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dealflow/dealflow/internal/config"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/identity"
)

func write(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadKnownSellersVocabulary(t *testing.T) {
	p := write(t, "known.json", `[
		{"url":"HTTPS://Seller.Example.COM.:443/","name":"A","trust":" Approved "},
		{"url":"http://localhost:09001/api/..","trust":"BLOCKED"},
		{"url":"http://c.example","capabilities":["ctv"]}
	]`)
	known, err := LoadKnownSellers(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		url   string
		trust identity.Trust
	}{{"https://seller.example.com", identity.TrustVerified}, {"http://127.0.0.1:9001", identity.TrustBlocked}, {"http://c.example", ""}}
	if len(known) != len(want) {
		t.Fatalf("known %+v", known)
	}
	for i, w := range want {
		if known[i].URL != w.url || known[i].Trust != w.trust {
			t.Errorf("entry %d = %+v, want %s %q", i, known[i], w.url, w.trust)
		}
	}
}

func TestLoadKnownSellersRejects(t *testing.T) {
	for name, tc := range map[string]struct{ doc, want string }{
		"trust word": {`[{"url":"http://a.example","trust":"verified"},{"url":"http://b.example","trust":"trusted?"}]`,
			`entry 1 (url "http://b.example"): field trust: identity: unknown trust word "trusted?"`},
		"bad url":   {`[{"url":"http://a.example"},{"url":"ftp://b.example"}]`, `entry 1 (url "ftp://b.example"): field url:`},
		"empty url": {`[{"name":"x"}]`, `entry 0 (url ""): field url:`},
		"duplicate": {`[{"url":"http://localhost:9001"},{"url":"http://a.example"},{"url":"HTTP://127.0.0.1:9001/"}]`,
			`entry 2 (url "HTTP://127.0.0.1:9001/"): field url: duplicate seller: entry 0 (url "http://localhost:9001")`},
		"unknown field": {`[{"url":"http://a.example","trsut":"verified"}]`, `unknown field "trsut"`},
		"not a list":    {`{"url":"http://a.example"}`, `a JSON object is not allowed`},
	} {
		p := write(t, "known.json", tc.doc)
		_, err := LoadKnownSellers(p)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: err = %v; want it to name %s and %q", name, err, p, tc.want)
		}
	}
}

func TestLoadKnownMergesSellersFlag(t *testing.T) {
	p := write(t, "known.json", `[{"url":"http://a.example","trust":"preferred"}]`)
	known, err := LoadKnown(config.Config{KnownSellers: p, Sellers: []string{"HTTP://A.example/", "http://b.example:080"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(known) != 2 || known[0].Trust != identity.TrustPreferred || known[1].URL != "http://b.example" {
		t.Fatalf("known %+v", known)
	}
	if _, err := LoadKnown(config.Config{Sellers: []string{"ftp://x"}}); err == nil || !strings.Contains(err.Error(), "--sellers entry 0") {
		t.Fatalf("bad --sellers URL: %v", err)
	}
}

func TestLoadCredentialsDuplicateSpellings(t *testing.T) {
	t.Setenv(identity.EnvSellerKeys, "")
	p := write(t, "keys.json", `{"sellers":{"http://localhost:9001":{"seat":"k1"},"http://[::ffff:127.0.0.1]:9001/.":{"agency":"k2"}}}`)
	_, err := LoadCredentials(p)
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), `entry 1 (url "http://[::ffff:127.0.0.1]:9001/.")`) ||
		!strings.Contains(err.Error(), "duplicate seller") || strings.Contains(err.Error(), "k1") {
		t.Fatalf("err = %v", err)
	}
}

func TestLoadBuyer(t *testing.T) {
	b, err := LoadBuyer(write(t, "buyer.json", `{"seat_id":"s","agency_id":"a"}`))
	if err != nil || b.SeatID != "s" || b.AgencyID != "a" {
		t.Fatalf("%+v %v", b, err)
	}
	if b, err := LoadBuyer(""); err != nil || !b.IsZero() {
		t.Fatalf("empty path: %+v %v", b, err)
	}
	for name, tc := range map[string]struct{ doc, want string }{
		"unknown field": {`{"seat_id":"s","agencyid":"a"}`, `unknown field "agencyid"`},
		"wrong type":    {`{"seat_id":5}`, `field "seat_id"`},
		"trailing":      {`{"seat_id":"s"} {}`, "trailing data"},
		"empty":         {``, "empty document"},
	} {
		p := write(t, "buyer.json", tc.doc)
		if _, err := LoadBuyer(p); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: err = %v, want %q and the file", name, err, tc.want)
		}
	}
}

func TestLoadKnownSellersProtocol(t *testing.T) {
	p := write(t, "known.json", `[
		{"url":"https://iab.example"},
		{"url":"https://sales.example","protocol":"adcp","mcp_endpoint":"HTTPS://Sales.Example/mcp"}
	]`)
	known, err := LoadKnownSellers(p)
	if err != nil {
		t.Fatal(err)
	}
	if known[0].Protocol != events.ProtocolIAB || known[1].Protocol != events.ProtocolADCP || known[1].MCPEndpoint != "https://sales.example/mcp" {
		t.Fatalf("known %+v", known)
	}
	for doc, want := range map[string]string{
		`[{"url":"https://a.example","protocol":"openrtb"}]`:                       `field protocol`,
		`[{"url":"https://a.example","mcp_endpoint":"https://a.example/mcp"}]`:     `only an adcp seller`,
		`[{"url":"https://a.example","protocol":"adcp","mcp_endpoint":"ftp://x"}]`: `field mcp_endpoint`,
	} {
		if _, err := LoadKnownSellers(write(t, "known.json", doc)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want %q", doc, err, want)
		}
	}
}

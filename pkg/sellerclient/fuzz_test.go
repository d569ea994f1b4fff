package sellerclient

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// fuzzCap is the body cap the fuzzers apply before parsing, as the client does.
const fuzzCap = 64 << 10

// capped applies the client's size cap to a fuzz input. Oversized inputs must
// fail with ErrBodyTooLarge and never reach a parser.
func capped(t *testing.T, data []byte) ([]byte, bool) {
	t.Helper()
	b, err := readLimited(bytes.NewReader(data), fuzzCap)
	if len(data) > fuzzCap {
		if !errors.Is(err, ErrBodyTooLarge) || b != nil {
			t.Fatalf("oversized input (%d bytes) not refused: %v", len(data), err)
		}
		return nil, false
	}
	if err != nil || !bytes.Equal(b, data) {
		t.Fatalf("readLimited changed the input: %v", err)
	}
	return b, true
}

// addGoldenSeeds adds every vector's data from a fixture as a seed.
func addGoldenSeeds(f *testing.F, rel string, wrap func([]byte) []byte) {
	for _, v := range loadGolden(f, rel) {
		f.Add(wrap(v.Data))
	}
}

func same(b []byte) []byte { return b }

var oversized = []byte(`{"pad":"` + strings.Repeat("x", fuzzCap) + `"}`)

// mustEncode checks that a parsed value can be re-encoded.
func mustEncode(t *testing.T, v any) {
	t.Helper()
	if _, err := json.Marshal(v); err != nil {
		t.Fatalf("re-encode: %v", err)
	}
}

func FuzzParseQuote(f *testing.F) {
	for _, s := range []string{quoteBody, `{"quote":{"quote_id":"q"}}`, `{"quote_id":"q"}`, `{"quote":null}`, `{}`, `[]`, ``, `nul`,
		`{"quote":{"quote_id":"q","pricing":{"final_cpm":{"amount_micros":1e400}}}}`, `{"quote":{"quote_id":"q","expires_at":"2026-13-45"}}`} {
		f.Add([]byte(s))
	}
	addGoldenSeeds(f, "protocol/QuoteResponse.golden.json", same)
	addGoldenSeeds(f, "primitives/Quote.golden.json", same)
	f.Add(oversized)
	f.Fuzz(func(t *testing.T, data []byte) {
		b, ok := capped(t, data)
		if !ok {
			return
		}
		q, err := parseQuote(b)
		if (q == nil) == (err == nil) {
			t.Fatalf("quote %v err %v", q, err)
		}
		if q != nil {
			if q.QuoteID == "" {
				t.Fatal("accepted a quote without id")
			}
			mustEncode(t, q)
		}
		if b, err := parseDealBooking(b); err == nil {
			if b.Deal.DealID == "" {
				t.Fatal("accepted a deal without id")
			}
			mustEncode(t, b)
		}
	})
}

func FuzzParseNegotiation(f *testing.F) {
	for _, s := range []string{negotiationBody, `{"negotiation_id":"n","status":"active","round":{}}`, `{"round":null}`,
		`{"negotiation_id":"n","status":"x","round":{"buyer_price":{"amount_micros":"1"}}}`, `{"rounds_remaining":-1}`} {
		f.Add([]byte(s))
	}
	addGoldenSeeds(f, "protocol/NegotiationRoundResponse.golden.json", same)
	f.Add(oversized)
	f.Fuzz(func(t *testing.T, data []byte) {
		b, ok := capped(t, data)
		if !ok {
			return
		}
		n, err := parseNegotiation(b)
		if (n == nil) == (err == nil) {
			t.Fatalf("round %v err %v", n, err)
		}
		if n != nil {
			if n.NegotiationID == "" || n.Status == "" {
				t.Fatal("accepted a round without id/status")
			}
			mustEncode(t, n)
		}
	})
}

func FuzzParseMediaKit(f *testing.F) {
	for _, s := range []string{mediaKitBody, `{"total_packages":0,"featured_count":0,"featured":[],"all_packages":[]}`, `{"all_packages":[{}]}`,
		`{"total_packages":"3"}`, `{"packages":[{"package_id":"p","is_featured":true}]}`, `{"featured":{}}`} {
		f.Add([]byte(s))
	}
	addGoldenSeeds(f, "primitives/MediaKit.golden.json", same)
	f.Add(oversized)
	f.Fuzz(func(t *testing.T, data []byte) {
		b, ok := capped(t, data)
		if !ok {
			return
		}
		mk, err := parseMediaKit(bodyOf(b))
		if (mk == nil) == (err == nil) {
			t.Fatalf("kit %v err %v", mk, err)
		}
		if mk != nil {
			if mk.Featured == nil || mk.AllPackages == nil {
				t.Fatal("nil package lists")
			}
			mustEncode(t, mk)
		}
	})
}

func FuzzParsePackage(f *testing.F) {
	for _, s := range []string{publicPackageBody, seatPackageBody, agencyPackageBody, `{"exact_price":null}`, `{"cattax":"3"}`,
		`{"placements":[{"weight":null}]}`, `{"packages":[` + seatPackageBody + `]}`, `{"results":[{}]}`, `[{}]`, `{"exact_price":1e999}`} {
		f.Add([]byte(s))
	}
	addGoldenSeeds(f, "primitives/Package.golden.json", same)
	f.Add(oversized)
	f.Fuzz(func(t *testing.T, data []byte) {
		b, ok := capped(t, data)
		if !ok {
			return
		}
		p, err := parsePackage(bodyOf(b))
		if (p == nil) == (err == nil) {
			t.Fatalf("package %v err %v", p, err)
		}
		if p != nil {
			if p.Authenticated != bytes.Contains(b, []byte(`"exact_price"`)) && p.Authenticated {
				t.Fatal("authenticated without exact_price key")
			}
			mustEncode(t, p)
		}
		for _, key := range []string{"packages", "results"} {
			if l, err := parsePackageList(bodyOf(b), key); err == nil {
				if l == nil {
					t.Fatal("nil list without error")
				}
				mustEncode(t, l)
			}
		}
		lo, hi, ok := ParsePriceRange(string(b))
		if ok && (lo > hi || lo < 0) {
			t.Fatalf("price range %v %v", lo, hi)
		}
	})
}

func FuzzParseError(f *testing.F) {
	for _, s := range []string{err422Body, errStringBody, errObjectBody, errEnvelopeBody, errPlain500, ``, `{}`, `{"detail":null}`,
		`{"detail":[1,"x",{"loc":"body"}]}`, `{"detail":{"error":7}}`, `{"error":{"code":"x","message":"m"}}`, `{"success":false,"error":"Agent not found"}`,
		"\xff\xfe", `{"detail":"` + strings.Repeat("é", 3000) + `"}`} {
		f.Add(422, []byte(s))
	}
	for _, v := range loadGolden(f, "protocol/ErrorEnvelope.golden.json") {
		f.Add(409, []byte(v.Data))
	}
	f.Add(503, oversized)
	f.Fuzz(func(t *testing.T, status int, data []byte) {
		b, ok := capped(t, data)
		if !ok {
			return
		}
		e := parseError(status, b)
		if e == nil || e.Status != status {
			t.Fatal("nil or wrong status")
		}
		if !utf8.ValidString(e.Message) || len(e.Message) > 1100 || len(e.Code) > 110 {
			t.Fatalf("message %q code %q", e.Message, e.Code)
		}
		if e.Retryable != (status == 502 || status == 503 || status == 504) {
			t.Fatal("retryable")
		}
		_ = e.Error()
		_ = errors.Is(e, ErrNotFound)
	})
}

func FuzzParseDiscovery(f *testing.F) {
	for _, s := range []string{simpleAgentsBody, aampAgentsBody, `{"agents":null}`, `{"agents":[null,1,"x",{}]}`, `{"success":false}`,
		`{"data":[]}`, `{"data":{"agents":[{"id":1.5e3,"endpoint_url":"http://[::1]"}],"next":"/x"}}`, `{"agents":[],"page":"2","total_pages":5}`,
		`{"agents":[],"next":"http://%zz"}`, `{"is_registered":true,"trust_level":"approved","registry_id":7}`} {
		f.Add([]byte(s))
	}
	f.Add(oversized)
	strict := New(Config{})
	lax := New(Config{AllowPrivate: true})
	first, _ := CanonicalURL("http://registry.example.com/reg")
	f.Fuzz(func(t *testing.T, data []byte) {
		b, ok := capped(t, data)
		if !ok {
			return
		}
		for _, kind := range []RegistryKind{RegistrySimple, RegistryAAMP} {
			p, err := parseRegistryPage(kind, bodyOf(b))
			if err != nil {
				continue
			}
			for _, raw := range p.records {
				for _, c := range []*Client{strict, lax} {
					rec, _, reason := c.mapRecord(kind, raw, true)
					if reason != "" {
						continue
					}
					if n, err := CanonicalURL(rec.URL); err != nil || n != rec.URL {
						t.Fatalf("record URL %q not normalised (%q, %v)", rec.URL, n, err)
					}
					if rec.AgentID == "" || rec.Capabilities == nil || rec.Protocols == nil {
						t.Fatalf("record %+v", rec)
					}
				}
			}
			fu, _ := urlParse(first)
			if next, err := p.nextURL(fu, first+"/agents"); err == nil && next != "" {
				nu, perr := urlParse(next)
				if perr != nil || !sameOrigin(nu, fu) {
					t.Fatalf("next %q leaves the registry", next)
				}
			}
		}
		if ti, err := parseVerify(bodyOf(b), "https://x.example.com"); err == nil && ti.AgentURL != "https://x.example.com" {
			t.Fatal("verify lost the url")
		}
	})
}

func FuzzParseAgentCard(f *testing.F) {
	for _, s := range []string{agentCardBody, `{"name":"x"}`, `{"name":"x","capabilities":[]}`, `{"name":"x","capabilities":["a",{"name":"b"},null,3]}`,
		`{"name":"","url":"u"}`, `{"name":"x","provider":"p"}`, `{"name":"x","skills":[{"id":1}]}`} {
		f.Add([]byte(s))
	}
	addGoldenSeeds(f, "primitives/Agent.golden.json", same)
	f.Add(oversized)
	f.Fuzz(func(t *testing.T, data []byte) {
		b, ok := capped(t, data)
		if !ok {
			return
		}
		card, err := parseAgentCard(bodyOf(b))
		if (card == nil) == (err == nil) {
			t.Fatalf("card %v err %v", card, err)
		}
		if card != nil {
			if strings.TrimSpace(card.Name) == "" {
				t.Fatal("card without name")
			}
			mustEncode(t, card)
		}
	})
}

func FuzzCanonicalURL(f *testing.F) {
	for _, s := range []string{"http://s/", "HTTPS://A.B:443//x//", "http://[::1]:80", "http://s/a%2Fb", "ftp://x", "http://%41", "http://a b", "http://s:",
		"http://LOCALHOST.:09001/api/..", "http://[::ffff:127.0.0.1]:1/.", "http://bücher.example/", "http://0x7f.1", "http://s/%2e%2E/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := CanonicalURL(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidURL) {
				t.Fatalf("error not ErrInvalidURL: %v", err)
			}
			return
		}
		n2, err := CanonicalURL(n)
		if err != nil || n2 != n {
			t.Fatalf("not idempotent: %q -> %q -> %q (%v)", s, n, n2, err)
		}
		if !strings.HasPrefix(n, "http://") && !strings.HasPrefix(n, "https://") || strings.HasSuffix(n, "/") {
			t.Fatalf("bad normal form %q", n)
		}
		// Guard.CheckURL checks the host canonicalURL returns instead of
		// parsing the canonical URL again: they must be the same.
		_, host, _ := canonicalURL(s)
		if u, err := url.Parse(n); err != nil || u.Hostname() != host {
			t.Fatalf("canonicalURL(%q) host %q, the canonical URL %q parses to %v (%v)", s, host, n, u, err)
		}
	})
}

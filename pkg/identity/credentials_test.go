package identity

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

const credDoc = `{
  "sellers": {
    "HTTPS://Seller.Example.com/": {"seat": "ask_live_SEATSECRET", "agency": "ask_live_AGENCYSECRET"},
    "http://127.0.0.1:8000": {"advertiser": "ask_live_ADVSECRET"}
  },
  "default": {"seat": "ask_live_DEFAULTSEAT"}
}`

var secrets = []string{"SEATSECRET", "AGENCYSECRET", "ADVSECRET", "DEFAULTSEAT", "ENVSECRET"}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "keys.json")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadCredentialsFileAndKey(t *testing.T) {
	t.Setenv(EnvSellerKeys, "")
	c, err := LoadCredentials(writeFile(t, credDoc))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		url  string
		tier Tier
		key  string
		ok   bool
	}{
		{"https://seller.example.com", TierSeat, "ask_live_SEATSECRET", true},
		{"  https://SELLER.example.com//  ", TierAgency, "ask_live_AGENCYSECRET", true},
		{"https://seller.example.com", TierAdvertiser, "", false}, // never another tier's key
		{"https://seller.example.com", TierPublic, "", false},
		{"http://127.0.0.1:8000/", TierAdvertiser, "ask_live_ADVSECRET", true},
		{"http://127.0.0.1:8000", TierSeat, "ask_live_DEFAULTSEAT", true}, // default fills a missing tier
		{"http://other.example", TierSeat, "ask_live_DEFAULTSEAT", true},
		{"http://other.example", TierAgency, "", false},
		{"https://seller.example.com/Path", TierSeat, "ask_live_DEFAULTSEAT", true}, // a different path is another seller
	}
	for _, k := range cases {
		got, ok := c.Key(k.url, k.tier)
		if got != k.key || ok != k.ok {
			t.Errorf("Key(%q, %s) = %q, %v; want %q, %v", k.url, k.tier, got, ok, k.key, k.ok)
		}
	}
	if got := c.Tiers("https://seller.example.com/"); !reflect.DeepEqual(got, []Tier{TierSeat, TierAgency}) {
		t.Errorf("Tiers = %v", got)
	}
	if got := c.Tiers("http://127.0.0.1:8000"); !reflect.DeepEqual(got, []Tier{TierSeat, TierAdvertiser}) {
		t.Errorf("Tiers = %v", got)
	}
	av := c.Available("http://other.example")
	if !av(TierPublic) || !av(TierSeat) || av(TierAgency) {
		t.Error("Available predicate wrong")
	}
}

func TestLoadCredentialsEnvOverridesFile(t *testing.T) {
	t.Setenv(EnvSellerKeys, `{"sellers":{"https://seller.example.com":{"seat":"ask_live_ENVSECRET"}}}`)
	c, err := LoadCredentials(writeFile(t, credDoc))
	if err != nil {
		t.Fatal(err)
	}
	if k, _ := c.Key("https://seller.example.com", TierSeat); k != "ask_live_ENVSECRET" {
		t.Fatalf("env did not override: %q", k)
	}
	if k, _ := c.Key("https://seller.example.com", TierAgency); k != "ask_live_AGENCYSECRET" {
		t.Fatalf("file key lost: %q", k)
	}
	// Environment alone.
	c2, err := LoadCredentials("")
	if err != nil {
		t.Fatal(err)
	}
	if got := c2.Tiers("https://seller.example.com"); !reflect.DeepEqual(got, []Tier{TierSeat}) {
		t.Fatalf("env-only tiers = %v", got)
	}
	// Neither.
	t.Setenv(EnvSellerKeys, "")
	c3, err := LoadCredentials("")
	if err != nil || len(c3.Tiers("https://seller.example.com")) != 0 {
		t.Fatalf("empty store: %v %v", c3, err)
	}
}

func TestLoadCredentialsErrors(t *testing.T) {
	t.Setenv(EnvSellerKeys, "")
	if _, err := LoadCredentials(filepath.Join(t.TempDir(), "missing.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	bad := []struct{ name, doc string }{
		{"syntax with a key inside", `{"sellers":{"u":{"seat":ask_live_SEATSECRET}}}`},
		{"public tier", `{"default":{"public":"ask_live_SEATSECRET"}}`},
		{"unknown tier", `{"default":{"admin":"ask_live_SEATSECRET"}}`},
		{"empty key", `{"default":{"seat":"  "}}`},
		{"wrong type", `{"default":{"seat":12}}`},
		{"unknown field", `{"selers":{}}`},
		{"trailing data", `{} {"default":{"seat":"ask_live_SEATSECRET"}}`},
		{"empty url", `{"sellers":{" ":{"seat":"ask_live_SEATSECRET"}}}`},
		{"truncated", `{"sellers":{"u":{"seat":"ask_live_SEATSECRET"`},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			_, err := LoadCredentials(writeFile(t, b.doc))
			if !errors.Is(err, ErrCredentials) {
				t.Fatalf("err = %v, want ErrCredentials", err)
			}
			for _, s := range secrets {
				if strings.Contains(err.Error(), s) || strings.Contains(err.Error(), "ask_live") {
					t.Fatalf("error leaks a key: %v", err)
				}
			}
		})
	}
	t.Setenv(EnvSellerKeys, `{"default":{"seat":`)
	if _, err := LoadCredentials(""); !errors.Is(err, ErrCredentials) || !strings.Contains(err.Error(), EnvSellerKeys) {
		t.Fatalf("bad env: %v", err)
	}
}

func TestCredentialsNeverPrintKeys(t *testing.T) {
	t.Setenv(EnvSellerKeys, `{"sellers":{"http://env.example":{"agency":"ask_live_ENVSECRET"}}}`)
	c, err := LoadCredentials(writeFile(t, credDoc))
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	type wrapper struct {
		Creds *Credentials `json:"creds"`
	}
	js2, err := json.Marshal(wrapper{c})
	if err != nil {
		t.Fatal(err)
	}
	outputs := []string{
		c.String(), string(js), string(js2),
		//lint:ignore S1025 every fmt verb is exercised on purpose: none may leak a secret
		fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprintf("%s", c), fmt.Sprintf("%q", c),
		fmt.Sprintf("%v", wrapper{c}), fmt.Sprintf("%+v", c.sellers), fmt.Sprintf("%#v", c.def),
	}
	for _, out := range outputs {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Fatalf("output leaks %s: %s", s, out)
			}
		}
	}
	var doc credentialsDoc
	if err := json.Unmarshal(js, &doc); err != nil {
		t.Fatal(err)
	}
	want := credentialsDoc{
		Sellers: map[string]map[string]string{
			"https://seller.example.com": {"seat": "REDACTED", "agency": "REDACTED"},
			"http://127.0.0.1:8000":      {"advertiser": "REDACTED"},
			"http://env.example":         {"agency": "REDACTED"},
		},
		Default: map[string]string{"seat": "REDACTED"},
	}
	if !reflect.DeepEqual(doc, want) {
		t.Fatalf("redacted doc = %+v", doc)
	}
	wantStr := "Credentials{http://127.0.0.1:8000: [advertiser], http://env.example: [agency], https://seller.example.com: [seat agency], default: [seat]} (keys REDACTED)"
	if c.String() != wantStr {
		t.Fatalf("String() = %q", c.String())
	}
}

func TestCredentialsSetAndZeroValue(t *testing.T) {
	t.Parallel()
	var c Credentials
	if _, ok := c.Key("http://s", TierSeat); ok {
		t.Fatal("zero store has a key")
	}
	c.Set("HTTP://S/", TierAgency, "k1")
	c.Set("http://s", TierPublic, "ignored")
	c.Set("http://s", Tier("root"), "ignored")
	if k, ok := c.Key("http://s", TierAgency); k != "k1" || !ok {
		t.Fatalf("Set/Key: %q %v", k, ok)
	}
	if got := c.Tiers("http://s"); !reflect.DeepEqual(got, []Tier{TierAgency}) {
		t.Fatalf("Tiers = %v", got)
	}
	c.Set("http://s", TierAgency, "")
	if _, ok := c.Key("http://s", TierAgency); ok {
		t.Fatal("empty key did not remove")
	}
	var nilc *Credentials
	if _, ok := nilc.Key("http://s", TierSeat); ok || nilc.String() != "Credentials{} (keys REDACTED)" {
		t.Fatal("nil store")
	}
	// Concurrent use (run with -race).
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			u := fmt.Sprintf("http://s%d", i%3)
			c.Set(u, TierSeat, "k")
			c.Key(u, TierSeat)
			_ = c.String()
		}(i)
	}
	wg.Wait()
	if len(c.Tiers("http://s0")) != 1 {
		t.Fatal("concurrent set lost")
	}
}

func TestCredentialsCanonicalURLs(t *testing.T) {
	c, err := ParseCredentials([]byte(`{"sellers":{"http://LOCALHOST:09001/api/..":{"seat":"k"},"https://Seller.Example.com.:443/":{"agency":"a"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"http://127.0.0.1:9001", "http://localhost:9001/", "http://[::ffff:127.0.0.1]:9001/."} {
		if k, ok := c.Key(u, TierSeat); !ok || k != "k" {
			t.Errorf("Key(%q) = %q, %v", u, k, ok)
		}
	}
	if k, ok := c.Key("https://seller.example.com", TierAgency); !ok || k != "a" {
		t.Errorf("Key = %q, %v", k, ok)
	}
	if _, ok := c.Key("not a url", TierSeat); ok {
		t.Error("a URL without a canonical form got a key")
	}
	// The canonical spelling finds the entry as stored, any other through
	// its canonical form: the same identity either way.
	c.SetADCP("HTTP://localhost:9001/", "tok", "acct", "brand")
	for _, u := range []string{"http://127.0.0.1:9001", "http://localhost:9001/x/..", "http://127.0.0.1:9001/"} {
		if id, ok := c.ADCP(u, TierAgency); !ok || id.Token != "tok" || id.Account != "acct" || id.Brand != "brand" {
			t.Errorf("ADCP(%q, agency) = %+v, %v", u, id, ok)
		}
		if id, ok := c.ADCP(u, TierSeat); !ok || id.Token != "k" || id.Account != "acct" {
			t.Errorf("ADCP(%q, seat) = %+v, %v: the seller's own seat key", u, id, ok)
		}
	}
	if id, ok := c.ADCP("http://127.0.0.1:9002", TierAgency); ok || id.Token != "" {
		t.Errorf("another seller's identity: %+v", id)
	}
}

func TestCredentialsDuplicateAndBadURL(t *testing.T) {
	t.Setenv(EnvSellerKeys, "")
	for name, tc := range map[string]struct{ doc, want string }{
		"two spellings": {`{"sellers":{"http://localhost:9001":{"seat":"k1"},"HTTP://127.0.0.1:9001/":{"agency":"k2"}}}`,
			`sellers entry 1 (url "HTTP://127.0.0.1:9001/"): field url: duplicate seller: entry 0 (url "http://localhost:9001")`},
		"same key twice": {`{"sellers":{"http://s":{"seat":"k1"},"http://s":{"agency":"k2"}}}`, `sellers entry 1 (url "http://s"): field url: duplicate`},
		"bad url":        {`{"sellers":{"http://s":{"seat":"k1"},"ftp://x":{"seat":"k2"}}}`, `sellers entry 1 (url "ftp://x"): field url:`},
	} {
		p := writeFile(t, tc.doc)
		_, err := LoadCredentials(p)
		if !errors.Is(err, ErrCredentials) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: err = %v; want it to name %s and %q", name, err, p, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "k1") {
			t.Errorf("%s: error quotes a key: %v", name, err)
		}
	}
}

func TestParseTrustWord(t *testing.T) {
	for in, want := range map[string]Trust{"preferred": TrustPreferred, " Verified ": TrustVerified, "APPROVED": TrustVerified,
		"registered": TrustRegistered, "unknown": TrustUnknown, "Blocked\t": TrustBlocked} {
		if got, err := ParseTrustWord(in); err != nil || got != want {
			t.Errorf("ParseTrustWord(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "trusted?", "approve", "verified!"} {
		if _, err := ParseTrustWord(in); !errors.Is(err, ErrTrustWord) {
			t.Errorf("ParseTrustWord(%q) err = %v", in, err)
		}
	}
}

// TestDecideWithCredentials wires the store into Decide: the key chosen is
// the decided tier's, never a higher one.
func TestDecideWithCredentials(t *testing.T) {
	t.Parallel()
	c, err := ParseCredentials([]byte(`{"sellers":{"http://s":{"seat":"ks","advertiser":"kadv"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	d, err := Decide(DefaultStrategy(), DefaultCaps(), fullIdentity(), TrustVerified, DealContext{DealType: "PG"}, c.Available("http://s"))
	if err != nil {
		t.Fatal(err)
	}
	if d.Tier != TierSeat {
		t.Fatalf("tier %s (%s)", d.Tier, d.Reason)
	}
	if k, _ := c.Key("http://s", d.Tier); k != "ks" {
		t.Fatalf("key %q", k)
	}
}

// TestCredentialsADCP: an AdCP seller's bearer_token, account and brand are
// read per seller; above public the token is the tier key when there is
// one, else the bearer token; public is nothing; the token never prints.
func TestCredentialsADCP(t *testing.T) {
	c, err := ParseCredentials([]byte(`{"sellers":{
		"https://sales.example":{"bearer_token":"tok-secret-1","account":"acct-1","brand":"acme.example"},
		"https://both.example":{"agency":"agency-key-2","bearer_token":"tok-secret-2","account":"acct-2","brand":"acme.example"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := c.ADCP("https://SALES.example/", TierAgency); !ok || id.Token != "tok-secret-1" || id.Account != "acct-1" || id.Brand != "acme.example" {
		t.Fatalf("sales: %v %v", id, ok)
	}
	if id, ok := c.ADCP("https://both.example", TierAgency); !ok || id.Token != "agency-key-2" {
		t.Fatalf("tier key first: %v %v", id, ok)
	}
	if id, ok := c.ADCP("https://sales.example", TierPublic); !ok || id != (ADCPIdentity{}) {
		t.Fatalf("public: %v", id)
	}
	if _, ok := c.ADCP("https://other.example", TierSeat); ok {
		t.Fatal("a seller without credentials has an AdCP token")
	}
	if !c.Available("https://sales.example")(TierAdvertiser) {
		t.Fatal("a bearer token makes the tiers available")
	}
	id, _ := c.ADCP("https://sales.example", TierSeat)
	b, _ := json.Marshal(c)
	for _, s := range []string{c.String(), fmt.Sprintf("%v %+v %#v %s", id, id, id, id), string(b)} {
		if strings.Contains(s, "tok-secret") || strings.Contains(s, "agency-key") {
			t.Fatalf("a token printed: %s", s)
		}
	}
	if !strings.Contains(string(b), "acct-1") {
		t.Fatalf("the account should be listed: %s", b)
	}
	for _, bad := range []string{`{"default":{"bearer_token":"x"}}`, `{"sellers":{"https://a.example":{"brand":" "}}}`} {
		if _, err := ParseCredentials([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

func TestCredentialsADCPNaturalKey(t *testing.T) {
	c, err := ParseCredentials([]byte(`{"sellers":{
		"https://sdk.example":{"bearer_token":"tok-secret-3","brand":"acme.example","operator":"agency.example"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	id, ok := c.ADCP("https://sdk.example", TierSeat)
	if !ok || id.Account != "" || id.Brand != "acme.example" || id.Operator != "agency.example" {
		t.Fatalf("natural key: %v %v", id, ok)
	}
	if b, _ := json.Marshal(c); !strings.Contains(string(b), `"operator":"agency.example"`) || strings.Contains(string(b), "tok-secret") {
		t.Fatalf("marshalled: %s", b)
	}
	for bad, field := range map[string]string{
		`{"sellers":{"https://a.example":{"bearer_token":"t","operator":"agency.example"}}}`:                               "field operator",
		`{"sellers":{"https://a.example":{"bearer_token":"t","account":"a1","brand":"b.example","operator":"o.example"}}}`: "fields account and operator",
		`{"sellers":{"https://a.example":{"bearer_token":"t","brand":"Acme.Example","operator":"o.example"}}}`:             "field brand",
		`{"sellers":{"https://a.example":{"bearer_token":"t","brand":"b.example","operator":"o_x"}}}`:                      "field operator",
	} {
		_, err := ParseCredentials([]byte(bad))
		if !errors.Is(err, ErrCredentials) || !strings.Contains(err.Error(), field) || !strings.Contains(err.Error(), "https://a.example") {
			t.Errorf("%s: %v (want an error naming the seller and %s)", bad, err, field)
		}
	}
}

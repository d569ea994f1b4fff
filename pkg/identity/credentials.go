package identity

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/dealflow/dealflow/pkg/sellerclient"
)

// EnvSellerKeys is the environment variable LoadCredentials reads: the same
// JSON document as the credentials file.
const EnvSellerKeys = "DEALFLOW_SELLER_KEYS"

// ErrCredentials reports an unreadable or malformed credentials document.
// Its messages never contain a key.
var ErrCredentials = errors.New("identity: bad credentials")

// redacted replaces every key in printed or marshalled credentials.
const redacted = "REDACTED"

// keySet holds one seller's keys indexed by tier rank (index 0, public, is
// never used: public needs no key). It is kept behind a pointer so that even
// a reflective print of Credentials shows an address, not a key.
type keySet struct{ keys [4]string }

// String hides the keys if a keySet is ever printed.
func (k *keySet) String() string { return redacted }

// GoString hides the keys under %#v too.
func (k *keySet) GoString() string { return redacted }

// Credentials holds the seller API keys per seller and per tier (decision 3:
// the tier the buyer reveals is the key it sends). The zero value is an empty,
// usable store; it is safe for concurrent use. Printing or marshalling it
// never shows a key.
type Credentials struct {
	mu      sync.RWMutex
	sellers map[string]*keySet // by canonical seller URL (sellerclient.CanonicalURL)
	def     *keySet            // used for a tier a seller has no key for
	adcp    map[string]*adcpSet
}

// AdCP seller entry fields of the credentials document, beside the tiers:
// {"sellers":{"<url>":{"bearer_token":"..","account":"acct-1","brand":"acme.example"}}}
// names the account by its seller-assigned id;
// {"sellers":{"<url>":{"bearer_token":"..","brand":"acme.example","operator":"agency.example"}}}
// by AdCP's natural key (brand + operator), the form sellers with
// buyer-declared accounts resolve. One form per seller, not both.
const (
	FieldBearerToken = "bearer_token"
	FieldAccount     = "account"
	FieldBrand       = "brand"
	FieldOperator    = "operator"
)

// domainRE is AdCP's domain pattern for brand.domain and operator
// (core/brand-ref.json, core/account-ref.json): lower case.
var domainRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$`)

// adcpSet is one AdCP seller's bearer token, account id, brand domain and
// operator domain.
type adcpSet struct{ token, account, brand, operator string }

// String hides the token if an adcpSet is ever printed.
func (a *adcpSet) String() string { return redacted }

// GoString hides the token under %#v too.
func (a *adcpSet) GoString() string { return redacted }

// ADCPIdentity is what an AdCP sales agent is told at a tier above public:
// the bearer token, and the account and brand the credentials name. Token
// never prints.
type ADCPIdentity struct {
	Token   string
	Account string // seller-assigned account_id ("" = natural key or none)
	Brand   string // brand domain
	// Operator is the domain operating on the brand's behalf; with Brand
	// it is the account's natural key (used when Account is "").
	Operator string
}

// String names the account and brand, never the token.
func (a ADCPIdentity) String() string {
	return "ADCPIdentity{account " + a.Account + ", brand " + a.Brand + ", operator " + a.Operator + ", token " + redacted + "}"
}

// GoString keeps %#v from printing the token.
func (a ADCPIdentity) GoString() string { return a.String() }

// SetADCP stores an AdCP seller's bearer token, account id and brand domain
// (empty values keep the stored ones).
func (c *Credentials) SetADCP(sellerURL, token, account, brand string) {
	u, ok := canonical(sellerURL)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.adcp == nil {
		c.adcp = map[string]*adcpSet{}
	}
	a := c.adcp[u]
	if a == nil {
		a = &adcpSet{}
		c.adcp[u] = a
	}
	if token != "" {
		a.token = token
	}
	if account != "" {
		a.account = account
	}
	if brand != "" {
		a.brand = brand
	}
}

// SetADCPIdentity is SetADCP with the account's natural key: the operator
// beside the brand (empty values keep the stored ones).
func (c *Credentials) SetADCPIdentity(sellerURL string, id ADCPIdentity) {
	c.SetADCP(sellerURL, id.Token, id.Account, id.Brand)
	if id.Operator == "" {
		return
	}
	u, ok := canonical(sellerURL)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.adcp[u].operator = id.Operator
}

// ADCP returns the AdCP identity to use with sellerURL at tier t. Public is
// the zero identity (no token, no account, no brand). Above public the token
// is the seller's own tier key when it has one, else its bearer_token, else
// the default key for t (a default key is an IAB seller's key; the seller's
// own bearer token is the one it issued); account, brand and operator are
// the entry's. ok is false when no token exists for t.
func (c *Credentials) ADCP(sellerURL string, t Tier) (ADCPIdentity, bool) {
	if t == TierPublic || t == "" {
		return ADCPIdentity{}, true
	}
	if c == nil || !t.Valid() {
		return ADCPIdentity{}, false
	}
	var out ADCPIdentity
	if u, ok := c.storedAs(sellerURL); ok {
		c.mu.RLock()
		if a := c.adcp[u]; a != nil {
			out = ADCPIdentity{Token: a.token, Account: a.account, Brand: a.brand, Operator: a.operator}
		}
		if ks := c.sellers[u]; ks != nil && ks.keys[t.Rank()] != "" {
			out.Token = ks.keys[t.Rank()]
		}
		c.mu.RUnlock()
	}
	if out.Token == "" {
		out.Token, _ = c.Key(sellerURL, t)
	}
	return out, out.Token != ""
}

// credentialsDoc is the file and environment format:
// {"sellers":{"<url>":{"seat":"k","agency":"k","advertiser":"k"}},"default":{...}}.
// It is the marshalled (redacted) form; documents are read as inputDoc.
type credentialsDoc struct {
	Sellers map[string]map[string]string `json:"sellers,omitempty"`
	Default map[string]string            `json:"default,omitempty"`
}

// inputDoc is credentialsDoc as read: the sellers keep the document's order,
// so an error can name an entry by its position.
type inputDoc struct {
	Sellers sellerEntries     `json:"sellers,omitempty"`
	Default map[string]string `json:"default,omitempty"`
}

// sellerEntry is one "<url>": {tier: key} member of "sellers".
type sellerEntry struct {
	URL  string
	Keys map[string]string
}

// sellerEntries reads the "sellers" object in document order (a Go map
// would silently keep only the last of two identical keys).
type sellerEntries []sellerEntry

// UnmarshalJSON implements json.Unmarshaler.
func (s *sellerEntries) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok == nil {
		*s = nil
		return nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return &json.UnmarshalTypeError{Value: "non-object", Field: "sellers", Type: reflect.TypeOf(map[string]any{})}
	}
	var out sellerEntries
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return err
		}
		var m map[string]string
		if err := dec.Decode(&m); err != nil {
			return err
		}
		out = append(out, sellerEntry{URL: k.(string), Keys: m})
	}
	*s = out
	return nil
}

// LoadCredentials reads the credentials file at path (skipped when path is
// empty) and then the DEALFLOW_SELLER_KEYS environment variable (skipped when
// unset or blank); keys from the environment override the file's per seller
// and tier. Neither present gives an empty store. Errors wrap ErrCredentials
// (or the os error for a missing file) and never quote a key.
func LoadCredentials(path string) (*Credentials, error) {
	c := &Credentials{}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("identity: read credentials: %w", err)
		}
		if err := c.merge(data); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	if env := strings.TrimSpace(os.Getenv(EnvSellerKeys)); env != "" {
		if err := c.merge([]byte(env)); err != nil {
			return nil, fmt.Errorf("%s: %w", EnvSellerKeys, err)
		}
	}
	return c, nil
}

// ParseCredentials builds a store from one JSON document in the file format.
func ParseCredentials(data []byte) (*Credentials, error) {
	c := &Credentials{}
	if err := c.merge(data); err != nil {
		return nil, err
	}
	return c, nil
}

// merge adds a document's keys over the existing ones. It validates the whole
// document before changing anything.
func (c *Credentials) merge(data []byte) error {
	var doc inputDoc
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return fmt.Errorf("%w: %s", ErrCredentials, describeJSONError(err))
	}
	if dec.More() {
		return fmt.Errorf("%w: trailing data after the JSON document", ErrCredentials)
	}
	type entry struct {
		url  string // "" for the default set
		tier Tier
		key  string
	}
	var entries []entry
	type adcpEntry struct{ url, token, account, brand, operator string }
	var adcps []adcpEntry
	check := func(where string, m map[string]string, u string) error {
		var ad adcpEntry
		for name, key := range m {
			switch name {
			case FieldBearerToken, FieldAccount, FieldBrand, FieldOperator:
				if u == "" {
					return fmt.Errorf("%w: %s: %s is per seller, not a default", ErrCredentials, where, name)
				}
				if strings.TrimSpace(key) == "" {
					return fmt.Errorf("%w: %s: empty %s", ErrCredentials, where, name)
				}
				switch name {
				case FieldBearerToken:
					ad.token = strings.TrimSpace(key)
				case FieldAccount:
					ad.account = strings.TrimSpace(key)
				case FieldOperator:
					ad.operator = strings.TrimSpace(key)
				default:
					ad.brand = strings.TrimSpace(key)
				}
				continue
			}
			t, err := ParseTier(name)
			if err != nil || t == TierPublic {
				return fmt.Errorf("%w: %s: tier %q is not seat, agency or advertiser", ErrCredentials, where, name)
			}
			if strings.TrimSpace(key) == "" {
				return fmt.Errorf("%w: %s: empty key for tier %s", ErrCredentials, where, t)
			}
			entries = append(entries, entry{u, t, strings.TrimSpace(key)})
		}
		if ad != (adcpEntry{}) {
			// The account is AdCP's AccountReference: an account_id, or
			// brand + operator; a half-configured one is refused here,
			// naming the field, rather than at the first buy.
			for _, f := range []struct{ name, v string }{{FieldBrand, ad.brand}, {FieldOperator, ad.operator}} {
				if f.v != "" && !domainRE.MatchString(f.v) {
					return fmt.Errorf("%w: %s: field %s: %q is not a lower-case domain (AdCP brand.domain / operator)", ErrCredentials, where, f.name, f.v)
				}
			}
			switch {
			case ad.account != "" && ad.operator != "":
				return fmt.Errorf("%w: %s: fields %s and %s: name the account by its account_id (%s) or by brand + operator, not both", ErrCredentials, where, FieldAccount, FieldOperator, FieldAccount)
			case ad.operator != "" && ad.brand == "":
				return fmt.Errorf("%w: %s: field %s: an operator names an account only with its brand (field %s)", ErrCredentials, where, FieldOperator, FieldBrand)
			}
			ad.url = u
			adcps = append(adcps, ad)
		}
		return nil
	}
	first := map[string]int{}
	for i, se := range doc.Sellers {
		where := fmt.Sprintf("sellers entry %d (url %q)", i, se.URL)
		u, err := sellerclient.CanonicalURL(se.URL)
		if err != nil {
			return fmt.Errorf("%w: %s: field url: %v", ErrCredentials, where, err)
		}
		if j, dup := first[u]; dup {
			return fmt.Errorf("%w: %s: field url: duplicate seller: entry %d (url %q) is the same seller (%s)",
				ErrCredentials, where, j, doc.Sellers[j].URL, u)
		}
		first[u] = i
		if err := check(where, se.Keys, u); err != nil {
			return err
		}
	}
	if err := check("default", doc.Default, ""); err != nil {
		return err
	}
	for _, e := range entries {
		if e.url == "" {
			c.SetDefault(e.tier, e.key)
		} else {
			c.Set(e.url, e.tier, e.key)
		}
	}
	for _, a := range adcps {
		c.SetADCPIdentity(a.url, ADCPIdentity{Token: a.token, Account: a.account, Brand: a.brand, Operator: a.operator})
	}
	return nil
}

// describeJSONError says what is wrong with a document without quoting it: a
// syntax error message can echo a character of a key, so only offsets, field
// paths and types are reported.
func describeJSONError(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at byte offset %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q must not be a JSON %s", te.Field, te.Value)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated or empty JSON document"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return err.Error() // names a field of the document format, not a value
	default:
		return "malformed JSON document"
	}
}

// canonical is the form seller keys are stored and looked up under
// (sellerclient.CanonicalURL); ok is false for a URL that has none.
func canonical(sellerURL string) (string, bool) {
	u, err := sellerclient.CanonicalURL(sellerURL)
	return u, err == nil
}

// storedAs is the form sellerURL is looked up under: itself when an entry
// is stored under exactly that spelling (entries are stored in canonical
// form, and the canonical form of a canonical URL is itself), else its
// canonical form. The stages look sellers up by the canonical URLs the
// discoverer gives them, a few times per seller: they find their entry
// without parsing the URL again.
func (c *Credentials) storedAs(sellerURL string) (string, bool) {
	c.mu.RLock()
	_, exact := c.sellers[sellerURL]
	if !exact {
		_, exact = c.adcp[sellerURL]
	}
	c.mu.RUnlock()
	if exact {
		return sellerURL, true
	}
	return canonical(sellerURL)
}

// Set stores key for sellerURL at tier t; an empty key removes it. Public and
// invalid tiers are ignored: public never uses a key, and so is a URL that
// cannot be canonicalised (no lookup could ever find it).
func (c *Credentials) Set(sellerURL string, t Tier, key string) {
	r := t.Rank()
	if !t.Valid() || r == 0 {
		return
	}
	u, ok := canonical(sellerURL)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sellers == nil {
		c.sellers = map[string]*keySet{}
	}
	ks := c.sellers[u]
	if ks == nil {
		ks = &keySet{}
		c.sellers[u] = ks
	}
	ks.keys[r] = key
}

// SetDefault stores the default key for tier t, used for any seller without
// its own key at that tier; an empty key removes it.
func (c *Credentials) SetDefault(t Tier, key string) {
	r := t.Rank()
	if !t.Valid() || r == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.def == nil {
		c.def = &keySet{}
	}
	c.def.keys[r] = key
}

// Key returns the key to send to sellerURL to be priced at tier t: the
// seller's own key for t, else the default key for t. It never returns a key
// of another tier (a higher key would disclose more than decided). Public
// never has a key. sellerURL is compared in canonical form, so any spelling of
// a seller's URL finds its keys; a URL with no canonical form gets none (not
// even a default key).
func (c *Credentials) Key(sellerURL string, t Tier) (string, bool) {
	if c == nil || !t.Valid() || t == TierPublic {
		return "", false
	}
	r := t.Rank()
	u, ok := c.storedAs(sellerURL)
	if !ok {
		return "", false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if ks := c.sellers[u]; ks != nil && ks.keys[r] != "" {
		return ks.keys[r], true
	}
	if c.def != nil && c.def.keys[r] != "" {
		return c.def.keys[r], true
	}
	return "", false
}

// Tiers lists the tiers (seat, agency, advertiser order) with a key for
// sellerURL, its own or a default. Public is not listed: it needs none.
func (c *Credentials) Tiers(sellerURL string) []Tier {
	var out []Tier
	for _, t := range tiersByRank[1:] {
		if _, ok := c.Key(sellerURL, t); ok {
			out = append(out, t)
		}
	}
	return out
}

// Available returns the predicate Decide wants for sellerURL: whether a key
// exists for a tier (public always).
func (c *Credentials) Available(sellerURL string) func(Tier) bool {
	return func(t Tier) bool {
		if t == TierPublic {
			return true
		}
		_, ok := c.ADCP(sellerURL, t) // a tier key, or an AdCP bearer token
		return ok
	}
}

// redactedDoc is the document with every key replaced by REDACTED.
func (c *Credentials) redactedDoc() credentialsDoc {
	doc := credentialsDoc{}
	if c == nil {
		return doc
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	names := func(ks *keySet) map[string]string {
		if ks == nil {
			return nil
		}
		m := map[string]string{}
		for r, k := range ks.keys {
			if r > 0 && k != "" {
				m[string(tiersByRank[r])] = redacted
			}
		}
		if len(m) == 0 {
			return nil
		}
		return m
	}
	for u, ks := range c.sellers {
		if m := names(ks); m != nil {
			if doc.Sellers == nil {
				doc.Sellers = map[string]map[string]string{}
			}
			doc.Sellers[u] = m
		}
	}
	for u, a := range c.adcp {
		if doc.Sellers == nil {
			doc.Sellers = map[string]map[string]string{}
		}
		m := doc.Sellers[u]
		if m == nil {
			m = map[string]string{}
			doc.Sellers[u] = m
		}
		if a.token != "" {
			m[FieldBearerToken] = redacted
		}
		if a.account != "" {
			m[FieldAccount] = a.account
		}
		if a.brand != "" {
			m[FieldBrand] = a.brand
		}
		if a.operator != "" {
			m[FieldOperator] = a.operator
		}
	}
	doc.Default = names(c.def)
	return doc
}

// MarshalJSON writes the credentials document with every key REDACTED, so a
// config dump or log line can show which sellers and tiers are configured.
func (c *Credentials) MarshalJSON() ([]byte, error) {
	return json.Marshal(c.redactedDoc())
}

// String lists the configured sellers and tiers, never a key.
func (c *Credentials) String() string {
	doc := c.redactedDoc()
	urls := make([]string, 0, len(doc.Sellers))
	for u := range doc.Sellers {
		urls = append(urls, u)
	}
	sort.Strings(urls)
	tiers := func(m map[string]string) string {
		var ts []string
		for _, t := range tiersByRank[1:] {
			if _, ok := m[string(t)]; ok {
				ts = append(ts, string(t))
			}
		}
		return "[" + strings.Join(ts, " ") + "]"
	}
	var b strings.Builder
	b.WriteString("Credentials{")
	for i, u := range urls {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(u + ": " + tiers(doc.Sellers[u]))
	}
	if doc.Default != nil {
		if len(urls) > 0 {
			b.WriteString(", ")
		}
		b.WriteString("default: " + tiers(doc.Default))
	}
	b.WriteString("} (keys " + redacted + ")")
	return b.String()
}

// GoString keeps %#v from printing keys.
func (c *Credentials) GoString() string { return c.String() }

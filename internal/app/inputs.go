package app

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/dealflow/dealflow/internal/config"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/identity"
	"github.com/dealflow/dealflow/pkg/sellerclient"
	"github.com/dealflow/dealflow/services/discoverer"
)

// The operator's input files (known sellers, credentials, buyer) are checked
// once, at start-up, with the same parsers and vocabulary as the registry
// clients: seller URLs in canonical form (sellerclient.CanonicalURL), trust
// words case-insensitive with "approved" meaning verified
// (identity.ParseTrustWord). A bad entry is an error naming the file, the
// entry and the field, never an event that later fails its schema.

// knownSellerEntry is one element of the --known-sellers file as written.
type knownSellerEntry struct {
	URL          string   `json:"url"`
	Name         string   `json:"name,omitempty"`
	Trust        string   `json:"trust,omitempty"`
	Capabilities []string `json:"capabilities,omitempty"`
	// Protocol is iab-seller-agent (the default when empty) or adcp.
	Protocol string `json:"protocol,omitempty"`
	// MCPEndpoint is an AdCP seller's MCP endpoint (default: url).
	MCPEndpoint string `json:"mcp_endpoint,omitempty"`
}

// LoadKnownSellers reads the --known-sellers file; an empty path means none.
// Each entry's URL is canonicalised and its trust word parsed strictly (an
// empty trust means "ask the registry"); an unknown trust word, a URL without
// a canonical form, or two entries for one seller (same canonical URL) is an
// error naming the file, the entry's index and url, and the field.
func LoadKnownSellers(path string) ([]discoverer.KnownSeller, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("known sellers: %w", err)
	}
	known, err := ParseKnownSellers(b)
	if err != nil {
		return nil, fmt.Errorf("known sellers %s: %w", path, err)
	}
	return known, nil
}

// ParseKnownSellers parses a known-sellers document (a JSON array of
// {url,name,trust,capabilities,protocol,mcp_endpoint}) with LoadKnownSellers's rules.
func ParseKnownSellers(data []byte) ([]discoverer.KnownSeller, error) {
	var entries []knownSellerEntry
	if err := decodeStrict(data, &entries); err != nil {
		return nil, err
	}
	known := make([]discoverer.KnownSeller, 0, len(entries))
	first := map[string]int{}
	for i, e := range entries {
		where := fmt.Sprintf("entry %d (url %q)", i, e.URL)
		u, err := sellerclient.CanonicalURL(e.URL)
		if err != nil {
			return nil, fmt.Errorf("%s: field url: %w", where, err)
		}
		if j, dup := first[u]; dup {
			return nil, fmt.Errorf("%s: field url: duplicate seller: entry %d (url %q) is the same seller (%s)", where, j, entries[j].URL, u)
		}
		first[u] = i
		var trust identity.Trust
		if strings.TrimSpace(e.Trust) != "" {
			if trust, err = identity.ParseTrustWord(e.Trust); err != nil {
				return nil, fmt.Errorf("%s: field trust: %w", where, err)
			}
		}
		proto, ok := events.ParseProtocol(e.Protocol)
		if !ok {
			return nil, fmt.Errorf("%s: field protocol: %q is not iab-seller-agent or adcp", where, e.Protocol)
		}
		var ep string
		if strings.TrimSpace(e.MCPEndpoint) != "" {
			if !proto.IsADCP() {
				return nil, fmt.Errorf("%s: field mcp_endpoint: only an adcp seller has an MCP endpoint", where)
			}
			if ep, err = sellerclient.CanonicalURL(e.MCPEndpoint); err != nil {
				return nil, fmt.Errorf("%s: field mcp_endpoint: %w", where, err)
			}
		}
		known = append(known, discoverer.KnownSeller{URL: u, Name: strings.TrimSpace(e.Name), Trust: trust, Capabilities: e.Capabilities,
			Protocol: proto, MCPEndpoint: ep})
	}
	return known, nil
}

// LoadKnown is the process's known sellers: the --known-sellers file, then
// each --sellers URL that the file does not already name (trust asked of the
// registry). A --sellers URL without a canonical form is an error.
func LoadKnown(cfg config.Config) ([]discoverer.KnownSeller, error) {
	known, err := LoadKnownSellers(cfg.KnownSellers)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, k := range known {
		seen[k.URL] = true
	}
	for i, raw := range cfg.Sellers {
		u, err := sellerclient.CanonicalURL(raw)
		if err != nil {
			return nil, fmt.Errorf("--sellers entry %d (url %q): %w", i, raw, err)
		}
		if !seen[u] {
			seen[u] = true
			known = append(known, discoverer.KnownSeller{URL: u})
		}
	}
	return known, nil
}

// LoadCredentials reads seller API keys from the --credentials file and the
// DEALFLOW_SELLER_KEYS environment variable (identity.LoadCredentials: seller
// URLs canonicalised, one entry per seller); with neither, the store is empty
// (public only).
func LoadCredentials(path string) (*identity.Credentials, error) {
	return identity.LoadCredentials(path)
}

// LoadBuyer reads the --buyer file: one JSON object with the buyer
// identity's fields (seat_id, agency_id, advertiser_id, ...). Unknown fields,
// values that are not strings and trailing data are errors naming the file
// and the field. An empty path is the empty identity.
func LoadBuyer(path string) (identity.BuyerIdentity, error) {
	var b identity.BuyerIdentity
	if path == "" {
		return b, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return b, fmt.Errorf("buyer identity: %w", err)
	}
	if err := decodeStrict(data, &b); err != nil {
		return identity.BuyerIdentity{}, fmt.Errorf("buyer identity %s: %w", path, err)
	}
	return b, nil
}

// decodeStrict decodes one JSON document into v, refusing unknown fields and
// trailing data, and describes type errors by field.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te):
			return fmt.Errorf("field %q: a JSON %s is not allowed here", te.Field, te.Value)
		case errors.As(err, &se):
			return fmt.Errorf("invalid JSON at byte offset %d: %w", se.Offset, err)
		case errors.Is(err, io.EOF):
			return errors.New("empty document")
		}
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON document")
	}
	return nil
}

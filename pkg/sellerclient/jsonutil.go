package sellerclient

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Responses from sellers and registries are third-party JSON. They are
// decoded with github.com/go-json-experiment/json (the encoding/json/v2
// candidate) and its default options, which are the strictness the seller
// contract wants: object member names match exactly (case-sensitive), a
// name appears at most once per object, strings are valid UTF-8, an
// integer field takes only an integer literal, and nothing follows the
// value. A body that breaks one of these is a bad response rather than a
// guess at what the seller meant. Requests are encoded with encoding/json,
// so what the buyer sends is unchanged.

// decodeObject unmarshals b, which must be a JSON object, into v.
func decodeObject(b []byte, v any) error {
	t := bytes.TrimSpace(b)
	if len(t) == 0 {
		return errors.New("empty body")
	}
	if t[0] != '{' {
		return fmt.Errorf("expected a JSON object, got %s", textSnippet(t[:min(len(t), 40)]))
	}
	return jsonv2.Unmarshal(t, v)
}

// flexTime parses the timestamps sellers emit: RFC 3339 with zone (v1
// surfaces), naive ISO without zone (legacy surfaces; taken as UTC) and plain
// dates. null leaves the zero time.
type flexTime time.Time

var naiveLayouts = []string{
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02",
}

// UnmarshalJSON implements json.Unmarshaler.
func (f *flexTime) UnmarshalJSON(b []byte) error {
	if isNull(b) {
		return nil
	}
	var s string
	if err := jsonv2.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("timestamp: %w", err)
	}
	t, err := parseTimestamp(s)
	if err != nil {
		return err
	}
	*f = flexTime(t)
	return nil
}

// parseTimestamp accepts RFC 3339 first, then the naive layouts (as UTC).
func parseTimestamp(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, l := range naiveLayouts {
		if t, err := time.ParseInLocation(l, s, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("timestamp %q not understood", truncate(s, 64))
}

// flexInt accepts an integer as a JSON number or a numeric string (the seller's
// docs show cattax as "3").
type flexInt int

// UnmarshalJSON implements json.Unmarshaler.
func (f *flexInt) UnmarshalJSON(b []byte) error {
	if isNull(b) {
		return nil
	}
	s := string(bytes.TrimSpace(b))
	if strings.HasPrefix(s, `"`) {
		if err := jsonv2.Unmarshal(b, &s); err != nil {
			return err
		}
		s = strings.TrimSpace(s)
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		fl, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || fl != float64(int(fl)) {
			return fmt.Errorf("expected an integer, got %s", truncate(s, 32))
		}
		n = int(fl)
	}
	*f = flexInt(n)
	return nil
}

// stringList decodes a list whose items are strings or objects with a "name"
// (registries disagree on the capability shape); null and other item types are
// dropped. A non-array is an error.
type stringList []string

// UnmarshalJSON implements json.Unmarshaler.
func (l *stringList) UnmarshalJSON(b []byte) error {
	if isNull(b) {
		*l = nil
		return nil
	}
	var items []jsontext.Value
	if err := jsonv2.Unmarshal(b, &items); err != nil {
		return fmt.Errorf("expected a list: %w", err)
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		var s string
		if jsonv2.Unmarshal(it, &s) == nil {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
			continue
		}
		var o struct {
			Name string `json:"name"`
			ID   string `json:"id"`
		}
		if jsonv2.Unmarshal(it, &o) == nil {
			n := strings.TrimSpace(o.Name)
			if n == "" {
				n = strings.TrimSpace(o.ID)
			}
			if n != "" {
				out = append(out, n)
			}
		}
	}
	*l = out
	return nil
}

// dedup returns the order-preserving union of the lists (exact match).
func dedup(lists ...[]string) []string {
	seen := map[string]bool{}
	var out []string
	for _, l := range lists {
		for _, s := range l {
			if !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
	}
	return out
}

// trimSpace trims JSON whitespace.
func trimSpace(b []byte) []byte { return bytes.TrimSpace(b) }

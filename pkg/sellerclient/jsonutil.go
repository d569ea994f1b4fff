package sellerclient

import (
	"bytes"
	"errors"
	"fmt"
	"io"
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
	return readObject(bytes.NewBuffer(b), v) // the library decodes a bytes.Buffer in place
}

// readObject decodes r, which must hold one JSON object and nothing after
// it but whitespace, into v. The library reads r through its own buffers:
// no copy of the body is made.
func readObject(r io.Reader, v any) error {
	return readTop(r, &topLevel{kinds: "{", want: "a JSON object", decode: func(dec *jsontext.Decoder, _ jsontext.Kind) error {
		return jsonv2.UnmarshalDecode(dec, v)
	}})
}

// topLevel is a body's one JSON value: a value of a kind in kinds is
// decoded by decode; any other is refused with a message that quotes its
// start.
type topLevel struct {
	kinds  string // the kinds accepted, as jsontext.Kind bytes ("{", "[{")
	want   string // what the message says was expected
	decode func(dec *jsontext.Decoder, k jsontext.Kind) error
	called bool  // the value was reached: the body is not empty
	err    error // what decode or the kind check returned
}

// UnmarshalJSONFrom checks the value's kind, then decodes it.
func (t *topLevel) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	t.called = true
	if k := dec.PeekKind(); k != 0 && strings.IndexByte(t.kinds, byte(k)) >= 0 {
		t.err = t.decode(dec, k)
		return t.err
	}
	raw, err := dec.ReadValue() // invalid JSON: the syntax error
	if err != nil {
		return err
	}
	t.err = fmt.Errorf("expected %s, got %s", t.want, textSnippet(raw[:min(len(raw), 40)]))
	return t.err
}

// readTop decodes r's one JSON value with t. The errors are those of
// decoding the value where it stands (not wrapped in a message about
// topLevel), "empty body" for a body with no value, or the library's for
// invalid JSON or data after the value.
func readTop(r io.Reader, t *topLevel) error {
	err := jsonv2.UnmarshalRead(r, t)
	switch {
	case err == nil:
		return nil
	case t.err != nil:
		return t.err
	case !t.called && errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("empty body")
	}
	return err
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

package events

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
)

// Header names used on the wire besides the ce- attributes.
const (
	// HeaderContentType selects structured mode when it starts with
	// "application/cloudevents".
	HeaderContentType = "Content-Type"
	// StructuredContentType is the structured-mode content type.
	StructuredContentType = "application/cloudevents+json"
)

const cePrefix = "ce-"

// HeaderMsgID is JetStream's de-duplication header; the codec sets it to the
// event id.
const HeaderMsgID = "Nats-Msg-Id"

// Header is a message's headers, canonical-case keys as NATS and net/http use
// them. The codec works on it so the contract needs no NATS import; the bus
// converts it to and from nats.Header (the same underlying type).
type Header map[string][]string

// Set replaces the values of key.
func (h Header) Set(key, value string) { h[key] = []string{value} }

// Get returns the first value of key, matched exactly.
func (h Header) Get(key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Message is an encoded event: the subject, headers and body to publish.
type Message struct {
	Subject string
	Header  Header
	Data    []byte
}

// Encode renders e as a NATS message on subject in CloudEvents binary mode:
// lower-case, percent-encoded "ce-" headers, the data as the body, and
// Nats-Msg-Id = the event id so JetStream de-duplicates republished events.
// ce-datacontenttype is written only when it is not application/json, the
// media type its absence means.
func Encode(e Event, subject string) (*Message, error) {
	if err := validate(e); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	subj, t, ct, ds := e.Subject(), e.Time(), e.DataContentType(), e.DataSchema()
	// application/json, the media type of every event the stages make, is
	// what a missing ce-datacontenttype means (Decode; the CloudEvents SDK
	// decodes such data as JSON too), so it is left out: an event then has
	// eight headers, and a Go map of eight entries is one group where nine
	// take two, on every publish and every delivery.
	if ct == event.ApplicationJSON {
		ct = ""
	}
	// One map for the headers and one backing array for their values,
	// both sized to the headers written: this runs for every event
	// published.
	exts := extensionsOf(e)
	n := 5 + len(exts) // specversion, id, source, type, Nats-Msg-Id
	for _, v := range [...]string{subj, ct, ds} {
		if v != "" {
			n++
		}
	}
	if !t.IsZero() {
		n++
	}
	m := &Message{Subject: subject, Header: make(Header, n)}
	vals := make([]string, 0, n)
	put := func(key, v string) {
		vals = append(vals, v)
		m.Header[key] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	put(cePrefix+"specversion", percentEncode(e.SpecVersion()))
	put(cePrefix+"id", percentEncode(e.ID()))
	put(cePrefix+"source", percentEncode(sourceText(e)))
	put(cePrefix+"type", percentEncode(e.Type()))
	if subj != "" {
		put(cePrefix+"subject", percentEncode(subj))
	}
	if !t.IsZero() {
		put(cePrefix+"time", percentEncode(t.UTC().Format(time.RFC3339Nano)))
	}
	if ct != "" {
		put(cePrefix+"datacontenttype", percentEncode(ct))
	}
	if ds != "" {
		put(cePrefix+"dataschema", percentEncode(ds))
	}
	for name, v := range exts {
		s, err := extensionString(v)
		if err != nil {
			return nil, fmt.Errorf("%w: extension %s: %v", ErrInvalid, name, err)
		}
		// The trace context travels in ce-traceparent only. A plain
		// "traceparent" header with the sampled flag makes the NATS server
		// parse every message's headers into a map for its own message
		// tracing, for each publish, with no use here.
		key := cePrefix + TraceparentExt // every event's one extension: no string made
		if name != TraceparentExt {
			key = cePrefix + strings.ToLower(name)
		}
		put(key, percentEncode(s))
	}
	put(HeaderMsgID, e.ID())
	m.Data = e.Data()
	return m, nil
}

// validate is e.Validate() with a shortcut for the events the stages
// publish: a CloudEvents 1.0 context whose attributes are plainly valid
// (an id, a type, a source path, JSON data, no data schema) passes without
// the SDK's checks, which render the source and parse the media type, two
// allocations per event published. Anything else gets the SDK's verdict.
func validate(e Event) error {
	if ec, ok := e.Context.(*event.EventContextV1); ok && len(e.FieldErrors) == 0 &&
		strings.TrimSpace(ec.ID) != "" && strings.TrimSpace(ec.Type) != "" &&
		strings.HasPrefix(ec.Source.Path, "/") && // a source that renders non-empty
		(ec.DataContentType == nil || *ec.DataContentType == event.ApplicationJSON) && ec.DataSchema == nil &&
		(ec.Subject == nil || strings.TrimSpace(*ec.Subject) != "") {
		return nil
	}
	return e.Validate()
}

// sourceText is e.Source(), remembered for sources that are a bare path
// (every stage's "/dealflow/<stage>"), whose text depends on the path alone.
func sourceText(e Event) string {
	ec, ok := e.Context.(*event.EventContextV1)
	if !ok || ec.Source.URL != (url.URL{Path: ec.Source.Path}) {
		return e.Source()
	}
	if s, ok := sourceTexts.Load(ec.Source.Path); ok {
		return s.(string)
	}
	s := e.Source()
	if nSourceTexts.Add(1) <= maxSources {
		sourceTexts.Store(ec.Source.Path, s)
	}
	return s
}

var (
	sourceTexts  sync.Map // source path -> its text
	nSourceTexts atomic.Int32
)

func extensionString(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case time.Time: // before fmt.Stringer, which time.Time also is
		return x.UTC().Format(time.RFC3339Nano), nil
	case fmt.Stringer:
		return x.String(), nil
	case int32, int64, int, bool:
		return fmt.Sprint(x), nil
	}
	return "", fmt.Errorf("unsupported type %T", v)
}

// Decode parses a NATS message into a CloudEvent. Structured mode is chosen
// when Content-Type starts with "application/cloudevents" (case-insensitive);
// otherwise the message must be in binary mode. Header names are matched
// case-insensitively. A binary-mode message without ce-datacontenttype has
// the media type of its Content-Type header, else application/json. The
// event has its own copy of the data. Errors wrap ErrInvalid.
func Decode(h Header, data []byte) (Event, error) {
	if ct := headerGet(h, HeaderContentType); strings.HasPrefix(strings.ToLower(ct), "application/cloudevents") {
		return decodeStructured(data)
	}
	return decodeBinary(h, data)
}

func headerGet(h Header, name string) string {
	for k, vs := range h {
		if strings.EqualFold(k, name) && len(vs) > 0 {
			return vs[0]
		}
	}
	return ""
}

func decodeStructured(data []byte) (Event, error) {
	var e event.Event
	if err := json.Unmarshal(data, &e); err != nil {
		return Event{}, fmt.Errorf("%w: structured event: %v", ErrInvalid, err)
	}
	if err := e.Validate(); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return e, nil
}

func decodeBinary(h Header, data []byte) (Event, error) {
	// The context is filled directly, as the SDK's setters would fill it
	// (trimmed id, type and subject; parsed source and time; lower-cased
	// extensions), without a map of the attributes first: this runs for
	// every delivery. FuzzDecodeBinaryMatchesReference holds it to the
	// setters' version.
	ec := &event.EventContextV1{}
	var spec string
	var hasSpec bool
	for k, vs := range h {
		if len(vs) == 0 || len(k) < len(cePrefix) || !strings.EqualFold(k[:len(cePrefix)], cePrefix) {
			continue
		}
		v, err := percentDecode(vs[0])
		if err != nil {
			return Event{}, fmt.Errorf("%w: header %s: %v", ErrInvalid, k, err)
		}
		switch name := strings.ToLower(k[len(cePrefix):]); name {
		case "specversion":
			spec, hasSpec = v, true
		case "id":
			if err = ec.SetID(v); err != nil {
				err = fmt.Errorf("id: %v", err)
			}
		case "source":
			ec.Source, err = parseSource(v)
		case "type":
			err = ec.SetType(v)
		case "subject":
			err = ec.SetSubject(v)
		case "time":
			var t time.Time
			if t, err = time.Parse(time.RFC3339Nano, v); err == nil {
				err = ec.SetTime(t)
			} else {
				err = fmt.Errorf("ce-%s: %v", name, err)
			}
		case "datacontenttype":
			err = ec.SetDataContentType(v)
		case "dataschema":
			err = ec.SetDataSchema(v)
		default:
			err = ec.SetExtension(name, v)
		}
		if err != nil {
			return Event{}, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	}
	if !hasSpec || spec == "" {
		return Event{}, fmt.Errorf("%w: missing ce-specversion header", ErrInvalid)
	}
	if spec != event.CloudEventsVersionV1 {
		return Event{}, fmt.Errorf("%w: unsupported ce-specversion %q", ErrInvalid, spec)
	}
	if ec.DataContentType == nil {
		// No ce-datacontenttype: the Content-Type header's, else
		// application/json, the contract's media type, which Encode
		// leaves out.
		_ = ec.SetDataContentType(headerGet(h, HeaderContentType))
		if ec.DataContentType == nil {
			ct := event.ApplicationJSON
			ec.DataContentType = &ct
		}
	}
	e := Event{Context: ec}
	if len(data) > 0 {
		e.DataEncoded = append([]byte(nil), data...)
	}
	if err := validate(e); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return e, nil
}

// parseSource parses a CloudEvents source as the SDK's SetSource does,
// remembering the parse of the few sources a pipeline sees (its stages').
func parseSource(s string) (types.URIRef, error) {
	if v, ok := parsedSources.Load(s); ok {
		return v.(types.URIRef), nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return types.URIRef{}, fmt.Errorf("source: %v", err)
	}
	ref := types.URIRef{URL: *u}
	if nParsedSources.Add(1) <= maxSources {
		parsedSources.Store(s, ref)
	}
	return ref, nil
}

var (
	parsedSources  sync.Map // source text -> its parse
	nParsedSources atomic.Int32
)

// EncodeStructured renders e in structured mode (the JSON event format), as
// the nats CLI or a webhook would carry it.
func EncodeStructured(e Event, subject string) (*Message, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	m := &Message{Subject: subject, Header: Header{}}
	m.Header.Set(HeaderContentType, StructuredContentType)
	m.Header.Set(HeaderMsgID, e.ID())
	m.Data = b
	return m, nil
}

// percentEncode escapes what the CloudEvents NATS binding requires: space,
// double quote, percent and every byte outside U+0021..U+007E, as upper-case
// %XY of the UTF-8 bytes.
func percentEncode(s string) string {
	need := false
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= 0x20 || c >= 0x7F || c == '"' || c == '%' {
			need = true
			break
		}
	}
	if !need {
		return s
	}
	const hexd = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= 0x20 || c >= 0x7F || c == '"' || c == '%' {
			b.WriteByte('%')
			b.WriteByte(hexd[c>>4])
			b.WriteByte(hexd[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// percentDecode reverses percentEncode, accepting lower-case hex, and rejects
// malformed escapes and invalid UTF-8.
func percentDecode(s string) (string, error) {
	if !strings.Contains(s, "%") {
		if !utf8.ValidString(s) {
			return "", fmt.Errorf("invalid UTF-8")
		}
		return s, nil
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			out = append(out, s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", fmt.Errorf("truncated percent escape")
		}
		hi, ok1 := unhex(s[i+1])
		lo, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 {
			return "", fmt.Errorf("bad percent escape %q", s[i:i+3])
		}
		out = append(out, hi<<4|lo)
		i += 2
	}
	if !utf8.Valid(out) {
		return "", fmt.Errorf("invalid UTF-8")
	}
	return string(out), nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

package events

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// decodeBinaryReference is the binary-mode decoding through the
// CloudEvents SDK's setters (a map of the attributes, then event.New and a
// setter each), which decodeBinary fills directly: the oracle of
// FuzzDecodeBinaryMatchesReference.
func decodeBinaryReference(h Header, data []byte) (Event, error) {
	attrs := map[string]string{}
	for k, vs := range h {
		lk := strings.ToLower(k)
		if !strings.HasPrefix(lk, cePrefix) || len(vs) == 0 {
			continue
		}
		v, err := percentDecode(vs[0])
		if err != nil {
			return Event{}, fmt.Errorf("%w: header %s: %v", ErrInvalid, k, err)
		}
		attrs[strings.TrimPrefix(lk, cePrefix)] = v
	}
	if attrs["specversion"] == "" {
		return Event{}, fmt.Errorf("%w: missing ce-specversion header", ErrInvalid)
	}
	if attrs["specversion"] != event.CloudEventsVersionV1 {
		return Event{}, fmt.Errorf("%w: unsupported ce-specversion %q", ErrInvalid, attrs["specversion"])
	}
	e := event.New()
	for name, v := range attrs {
		var err error
		switch name {
		case "specversion":
		case "id":
			e.SetID(v)
		case "source":
			e.SetSource(v)
		case "type":
			e.SetType(v)
		case "subject":
			e.SetSubject(v)
		case "time":
			var t time.Time
			if t, err = time.Parse(time.RFC3339Nano, v); err == nil {
				e.SetTime(t)
			}
		case "datacontenttype":
			e.SetDataContentType(v)
		case "dataschema":
			e.SetDataSchema(v)
		default:
			e.SetExtension(name, v)
		}
		if err != nil {
			return Event{}, fmt.Errorf("%w: ce-%s: %v", ErrInvalid, name, err)
		}
	}
	if e.DataContentType() == "" {
		if ct := headerGet(h, HeaderContentType); ct != "" {
			e.SetDataContentType(ct)
		}
	}
	if e.DataContentType() == "" {
		e.SetDataContentType(event.ApplicationJSON) // what no media type means
	}
	if len(data) > 0 {
		e.DataEncoded = append([]byte(nil), data...)
	}
	if err := e.Validate(); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return e, nil
}

// FuzzDecodeBinaryMatchesReference: the direct binary-mode decoding and
// the SDK setters' one agree on every header set: both refuse it (as
// ErrInvalid), or both make the same event.
func FuzzDecodeBinaryMatchesReference(f *testing.F) {
	_, gm := sampleEncoded(f)
	g := gm.Header.Get
	f.Add(uint16(0xffff), g("ce-id"), g("ce-source"), g("ce-type"), g("ce-subject"), g("ce-time"), event.ApplicationJSON, "traceparent", g("ce-traceparent"), false, string(gm.Data))
	f.Add(uint16(0xffff), " id ", "/dealflow/kitfetcher", " t ", " ", "2026-11-27T12:00:00+01:00", " application/json ", "Trace", "x", true, "{}")
	f.Add(uint16(0xfffe), "id", "a%zz", "t", "s", "yesterday", "", "bad-name", "v", false, "")
	f.Add(uint16(0x00ff), "", "http://[::1", "", "", "", "text/plain", "specversion", "1.0", false, "x")
	f.Add(uint16(0xffff), "id", "s", "t", "s%FF", "2026-11-27T12:00:00Z", "application/json", "data", "%41%", false, "{}")
	f.Add(uint16(0x010f), "id", "s", "t", "", "", "", "", "v", false, "{}") // a header named "ce-"
	f.Fuzz(func(t *testing.T, present uint16, id, source, typ, subject, tm, ct, extName, extVal string, upper bool, body string) {
		h := Header{}
		key := func(name string) string {
			if upper {
				return strings.ToUpper(name[:4]) + name[4:]
			}
			return name
		}
		attrs := []struct{ name, v string }{{"ce-specversion", "1.0"}, {"ce-id", id}, {"ce-source", source}, {"ce-type", typ},
			{"ce-subject", subject}, {"ce-time", tm}, {"ce-datacontenttype", ct}, {"Content-Type", ct}}
		if present&(1<<9) != 0 {
			attrs[0].v = extVal // a wrong or empty specversion
		}
		for i, a := range attrs {
			if present&(1<<i) != 0 {
				h[key(a.name)] = []string{a.v}
			}
		}
		if present&(1<<8) != 0 {
			// One spelling per header name: with two (ce-id, ce-ID) both
			// decodings keep either, at random.
			for k := range h {
				if strings.EqualFold(k, "ce-"+extName) {
					return
				}
			}
			h["ce-"+extName] = []string{extVal}
		}
		want, werr := decodeBinaryReference(h, []byte(body))
		got, gerr := decodeBinary(h, []byte(body))
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("headers %v: direct decoding err %v, the setters' %v", h, gerr, werr)
		}
		if gerr != nil {
			if !errors.Is(gerr, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", gerr)
			}
			return
		}
		if got.String() != want.String() || !bytes.Equal(got.Data(), want.Data()) || got.SpecVersion() != event.CloudEventsVersionV1 {
			t.Fatalf("headers %v: direct decoding\n%s\nthe setters'\n%s", h, got, want)
		}
		if !got.Time().Equal(want.Time()) || (got.Time().IsZero() != want.Time().IsZero()) {
			t.Fatalf("times differ: %v, %v", got.Time(), want.Time())
		}
	})
}

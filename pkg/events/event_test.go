package events

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
)

func TestTraceparentOf(t *testing.T) {
	e, err := New(KindCampaignRequested, NewID(), "test", "c-1", CampaignRequested{CampaignID: "c-1"})
	if err != nil {
		t.Fatal(err)
	}
	tp := TraceparentOf(e)
	if len(tp) != 55 || tp[:3] != "00-" {
		t.Fatalf("new event's traceparent %q", tp)
	}
	child, err := Derive(e, KindDiscoveryCompleted, "discoverer", "done", DiscoveryCompleted{CampaignID: "c-1"})
	if err != nil {
		t.Fatal(err)
	}
	if got := TraceparentOf(child); got != tp {
		t.Fatalf("derived traceparent %q, want the parent's %q", got, tp)
	}
	for _, bare := range []Event{{}, func() Event { c := e.Clone(); c.SetExtension(TraceparentExt, nil); return c }()} {
		if got := TraceparentOf(bare); got != "" {
			t.Fatalf("traceparent %q of an event without one", got)
		}
	}
}

// TestNewMatchesTheCloudEventsSetters: New fills the CloudEvents context directly;
// the event must be the one the SDK's setters build, attribute for
// attribute, and its wire form the same.
func TestNewMatchesTheCloudEventsSetters(t *testing.T) {
	payload := SellerSkipped{CampaignID: "c-1", SellerURL: "http://s", Stage: StageKitfetcher, Code: "x", Reason: "y"}
	for _, stage := range []string{StageKitfetcher, "bench", "a b"} {
		got, err := New(KindSellerSkipped, "id-1", stage, "c-1", payload)
		if err != nil {
			t.Fatal(err)
		}
		want := event.New()
		want.SetID("id-1")
		want.SetSource(SourcePrefix + stage)
		want.SetType(KindSellerSkipped.Type)
		want.SetSubject("c-1")
		want.SetTime(got.Time())
		if err := want.SetData(event.ApplicationJSON, payload); err != nil {
			t.Fatal(err)
		}
		want.SetExtension(TraceparentExt, TraceparentOf(got))
		if err := got.Validate(); err != nil {
			t.Fatalf("stage %q: %v", stage, err)
		}
		if got.String() != want.String() || !bytes.Equal(got.Data(), want.Data()) {
			t.Fatalf("stage %q: New built\n%s\nthe setters build\n%s", stage, got, want)
		}
		gm, err1 := Encode(got, "s")
		wm, err2 := Encode(want, "s")
		if err1 != nil || err2 != nil || !reflect.DeepEqual(gm, wm) {
			t.Fatalf("stage %q: wire forms differ (%v, %v):\n%v\n%v", stage, err1, err2, gm, wm)
		}
	}
	if _, err := New(KindSellerSkipped, "id-1", "bad\x7f", "c-1", payload); err == nil {
		t.Fatal("a stage that is no URL path made an event")
	}
}

// TestNewRefusesWhatBreaksTheContract: New (and Derive) check the payload as
// they make the event: a payload value by its Validate and its campaign, a
// value of another kind's type refused, any other data against the schema.
func TestNewRefusesWhatBreaksTheContract(t *testing.T) {
	t.Parallel()
	sf := samplePayloads()[KindSellerFound.Type].(SellerFound)
	badCap := sf
	badCap.Disclosure.Cap = "god"
	const skipped = `{"campaign_id":"c-1","seller_url":"u","stage":"s","code":"c","reason":"r"}`
	cases := []struct {
		name    string
		k       Kind
		subject string
		data    any
		ok      bool
		field   string
	}{
		{"a valid value", KindSellerFound, "c-1", sf, true, ""},
		{"a pointer to a valid value", KindSellerFound, "c-1", &sf, true, ""},
		{"valid raw JSON", KindSellerSkipped, "c-1", []byte(skipped), true, ""},
		{"a valid map", KindSellerSkipped, "c-1", map[string]any{"campaign_id": "c-1", "seller_url": "u", "stage": "s", "code": "c", "reason": "r"}, true, ""},
		{"a value breaking an enum", KindSellerFound, "c-1", badCap, false, "disclosure.cap"},
		{"a value of another campaign", KindSellerFound, "c-2", sf, false, "campaign_id"},
		{"a value of another kind", KindSellerSkipped, "c-1", sf, false, ""},
		{"a nil pointer", KindSellerFound, "c-1", (*SellerFound)(nil), false, ""},
		{"a map breaking the schema", KindSellerSkipped, "c-1", map[string]any{"campaign_id": "c-1", "seller_url": 7, "stage": "s", "code": "c", "reason": "r"}, false, "seller_url"},
		{"raw JSON of another campaign", KindSellerSkipped, "c-2", []byte(skipped), false, "campaign_id"},
	}
	for _, c := range cases {
		_, err := New(c.k, "id-1", StageDiscoverer, c.subject, c.data)
		if c.ok {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		se, ok := AsSchemaError(err)
		if !ok || !errors.Is(err, ErrInvalid) || se.Field != c.field || se.Kind != c.k.Name {
			t.Errorf("%s: err %v, want a %s *SchemaError naming %q", c.name, err, c.k.Name, c.field)
		}
	}
	parent, err := New(KindSellerFound, "p-1", StageDiscoverer, "c-1", sf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Derive(parent, KindSellerFound, StageKitfetcher, "x", badCap); err == nil {
		t.Fatal("Derive made an event of an invalid payload")
	}
}

// TestPayloadOfIsStrict: names match exactly and once; members the type does
// not know are ignored, as the schemas allow; the value must pass Validate
// and name the event's campaign.
func TestPayloadOfIsStrict(t *testing.T) {
	t.Parallel()
	e, err := New(KindSellerSkipped, "id-1", StageDiscoverer, "c-1", SellerSkipped{CampaignID: "c-1", SellerURL: "u", Stage: "s", Code: "c", Reason: "r"})
	if err != nil {
		t.Fatal(err)
	}
	want := SellerSkipped{CampaignID: "c-1", SellerURL: "u", Stage: "s", Code: "c", Reason: "r", PackagesTotal: 2}
	const rest = `"seller_url":"u","stage":"s","code":"c","reason":"r","packages_total":2`
	for _, c := range []struct {
		name, data string
		ok         bool
	}{
		{"as encoded", `{"campaign_id":"c-1",` + rest + `}`, true},
		{"a member the type does not know", `{"campaign_id":"c-1",` + rest + `,"extra":{"a":[1]}}`, true},
		{"a name in another case", `{"Campaign_ID":"c-1",` + rest + `}`, false},
		{"a name twice", `{"campaign_id":"c-1","campaign_id":"c-1",` + rest + `}`, false},
		{"an enum broken", `{"campaign_id":"c-1",` + rest + `,"trust":"approved"}`, false},
		{"another campaign", `{"campaign_id":"c-2",` + rest + `}`, false},
		{"a fraction for an integer", `{"campaign_id":"c-1",` + strings.Replace(rest, ":2", ":2.5", 1) + `}`, false},
		{"a string for an integer", `{"campaign_id":"c-1",` + strings.Replace(rest, ":2", `:"2"`, 1) + `}`, false},
		{"invalid UTF-8", `{"campaign_id":"c-1",` + strings.Replace(rest, `"r"`, "\"\xff\"", 1) + `}`, false},
		{"trailing data", `{"campaign_id":"c-1",` + rest + `}x`, false},
		{"no data", ``, false},
	} {
		in := e.Clone()
		in.DataEncoded = []byte(c.data)
		got, err := PayloadOf[SellerSkipped](in, KindSellerSkipped)
		p, _, perr := Payload(in)
		if c.ok {
			if err != nil || perr != nil || got != want || *p.(*SellerSkipped) != want {
				t.Errorf("%s: %+v, %v; %v", c.name, got, err, perr)
			}
			continue
		}
		if !errors.Is(err, ErrInvalid) || !errors.Is(perr, ErrInvalid) || got != (SellerSkipped{}) {
			t.Errorf("%s: accepted (%+v, %v; %v)", c.name, got, err, perr)
		}
	}
}

// BenchmarkDerive is the cost of one output as a fan-out stage builds it: a
// PackageFound derived from its input, payload checked and encoded.
func BenchmarkDerive(b *testing.B) {
	parent, _ := New(KindCampaignRequested, NewID(), "test", "c-1", CampaignRequested{CampaignID: "c-1"})
	p := samplePayloads()[KindPackageFound.Type].(PackageFound)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Derive(parent, KindPackageFound, StageKitfetcher, "pkg", &p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPayload is the cost of one input as the stage runner decodes it:
// a PackageFound decoded strictly into its type and checked.
func BenchmarkPayload(b *testing.B) {
	e, err := New(KindPackageFound, NewID(), StageKitfetcher, "c-1", samplePayloads()[KindPackageFound.Type])
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Payload(e); err != nil {
			b.Fatal(err)
		}
	}
}

package events

import (
	"bytes"
	"reflect"
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

// TestNewMatchesTheSDKSetters: New fills the CloudEvents context directly;
// the event must be the one the SDK's setters build, attribute for
// attribute, and its wire form the same.
func TestNewMatchesTheSDKSetters(t *testing.T) {
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

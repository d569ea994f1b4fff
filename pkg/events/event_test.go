package events

import "testing"

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

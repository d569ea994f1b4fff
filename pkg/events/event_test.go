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

// TestPayloadIntoForgetsTheLastValue: a recycled value decoded into holds
// the event's payload only, nothing of what it held before; on an error it
// is zero.
func TestPayloadIntoForgetsTheLastValue(t *testing.T) {
	sf := SellerFound{CampaignID: "c-1", Seller: Seller{URL: "http://s", Name: "S", Trust: TrustVerified, Source: "registry"},
		Disclosure: Disclosure{Tier: TierAgency, Recommended: TierAgency, Cap: TierAgency, Reason: "r"},
		Brief:      ShoppingBrief{BudgetMicros: 10, StartDate: "2028-06-01", EndDate: "2028-06-30"}}
	e, err := New(KindSellerFound, NewID(), StageDiscoverer, "c-1", sf)
	if err != nil {
		t.Fatal(err)
	}
	want, err := PayloadOf[SellerFound](e, KindSellerFound)
	if err != nil {
		t.Fatal(err)
	}
	v := SellerFound{Seller: Seller{AgentID: "stale", Capabilities: []string{"stale"}}, Buyer: BuyerIdentity{SeatID: "stale"},
		Brief: ShoppingBrief{Channels: []string{"stale"}}}
	if err := PayloadInto(e, KindSellerFound, &v); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(v, want) {
		t.Fatalf("decoded into a used value:\n%+v\nwant\n%+v", v, want)
	}
	other, _ := New(KindSellerSkipped, NewID(), StageDiscoverer, "c-1", SellerSkipped{CampaignID: "c-1", SellerURL: "http://s", Stage: "x", Code: "c", Reason: "r"})
	if err := PayloadInto(other, KindSellerFound, &v); err == nil || !reflect.DeepEqual(v, SellerFound{}) {
		t.Fatalf("wrong kind: err %v, value %+v", err, v)
	}
}

package bus

import (
	"testing"

	"github.com/cloudevents/sdk-go/protocol/nats_jetstream/v2"
	"github.com/cloudevents/sdk-go/v2/binding"

	"github.com/dealflow/dealflow/pkg/events"
)

// TestBinaryMatchesCloudEventsLibrary checks the wire form the bus publishes against the
// CloudEvents SDK's own NATS binding reader.
func TestBinaryMatchesCloudEventsLibrary(t *testing.T) {
	t.Parallel()
	e, err := events.New(events.KindSellerSkipped, "id-2", events.StageKitfetcher, "c-9",
		events.SellerSkipped{CampaignID: "c-9", SellerURL: "https://s.example", Stage: events.StageKitfetcher, Code: "timeout", Reason: "slow"})
	if err != nil {
		t.Fatal(err)
	}
	em, err := events.Encode(e, "s")
	if err != nil {
		t.Fatal(err)
	}
	sdkEvent, err := binding.ToEvent(t.Context(), nats_jetstream.NewMessage(toMsg(em)))
	if err != nil {
		t.Fatal(err)
	}
	if sdkEvent.ID() != "id-2" || sdkEvent.Type() != events.KindSellerSkipped.Type || sdkEvent.Subject() != "c-9" || string(sdkEvent.Data()) != string(e.Data()) {
		t.Fatalf("sdk decoded %v", sdkEvent)
	}
	// No ce-datacontenttype goes out for JSON data: the SDK decodes the
	// data as JSON all the same.
	if _, ok := em.Header["ce-datacontenttype"]; ok {
		t.Fatalf("ce-datacontenttype %q sent for JSON data", em.Header.Get("ce-datacontenttype"))
	}
	var got events.SellerSkipped
	if err := sdkEvent.DataAs(&got); err != nil {
		t.Fatal(err)
	}
	if got.CampaignID != "c-9" || got.SellerURL != "https://s.example" || got.Code != "timeout" || got.Reason != "slow" {
		t.Fatalf("sdk DataAs = %+v", got)
	}
}

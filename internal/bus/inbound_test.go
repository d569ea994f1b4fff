package bus

import (
	"reflect"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/dealflow/dealflow/pkg/events"
)

// TestInboundHandsOverTheTypedPayload: a valid delivery comes out with its
// payload decoded into the kind's type; the same message with other bytes
// is checked like any other, and refused when they break the contract.
func TestInboundHandsOverTheTypedPayload(t *testing.T) {
	sk := events.SellerSkipped{CampaignID: "c1", SellerURL: "https://s.example", Stage: "t", Code: "c", Reason: "r"}
	e, err := events.New(events.KindSellerSkipped, events.NewID(), "t", "c1", sk)
	if err != nil {
		t.Fatal(err)
	}
	m, err := (&Bus{}).checkOut(e)
	if err != nil {
		t.Fatal(err)
	}
	in, p, reason, _ := inbound(m.Header, m.Data)
	if reason != "" || in.ID() != e.ID() || !reflect.DeepEqual(p, &sk) {
		t.Fatalf("valid event: reason %q, payload %#v", reason, p)
	}
	for _, data := range []string{
		`{"campaign_id":"c1","seller_url":5,"stage":"t","code":"c","reason":"r"}`,
		`{"campaign_id":"c1","seller_url":"u","stage":"t","code":"c","reason":"r","trust":"approved"}`,
		`{"campaign_id":"c2","seller_url":"u","stage":"t","code":"c","reason":"r"}`,
		`{"campaign_id":"c1","campaign_id":"c1","seller_url":"u","stage":"t","code":"c","reason":"r"}`,
		`{"campaign_id":"c1"`,
	} {
		if _, p, reason, _ := inbound(m.Header, []byte(data)); !strings.HasPrefix(reason, "decode: ") || p != nil {
			t.Fatalf("tampered copy %s accepted: %q", data, reason)
		}
	}
}

// TestInboundHoldsOutsidersToTheSchema: an event a stage did not publish (a
// source outside dealflow's, or structured mode) must have every member its
// schema requires; the schema's error names the first one missing.
func TestInboundHoldsOutsidersToTheSchema(t *testing.T) {
	const missingReason = `{"campaign_id":"c1","seller_url":"u","stage":"s","code":"c"}`
	binary := func(source string) nats.Header {
		return nats.Header{"ce-specversion": {"1.0"}, "ce-id": {"x-1"}, "ce-source": {source}, "ce-type": {events.KindSellerSkipped.Type},
			"ce-subject": {"c1"}, "ce-datacontenttype": {"application/json"}}
	}
	structured := nats.Header{"Content-Type": {events.StructuredContentType}}
	body := `{"specversion":"1.0","id":"x-1","source":"/dealflow/t","type":"` + events.KindSellerSkipped.Type +
		`","subject":"c1","datacontenttype":"application/json","data":` + missingReason + `}`
	for name, c := range map[string]struct {
		h    nats.Header
		data string
	}{
		"another system's source": {binary("/crm/exporter"), missingReason},
		"no source header":        {structured, body},
	} {
		if !fromOutside(c.h) {
			t.Fatalf("%s: counted as a stage's", name)
		}
		_, p, reason, _ := inbound(c.h, []byte(c.data))
		if p != nil || !strings.Contains(reason, "violates its schema") || !strings.Contains(reason, "reason") {
			t.Fatalf("%s: reason %q", name, reason)
		}
	}
	if fromOutside(binary(events.SourcePrefix + "kitfetcher")) {
		t.Fatal("a stage's event counted as an outsider's")
	}
}

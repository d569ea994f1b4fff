package bus

import (
	"strings"
	"testing"

	"github.com/dealflow/dealflow/pkg/events"
)

// TestValidCache: an event counts as validated only with the same id and
// the same type, subject and bytes; the oldest entries are evicted.
func TestValidCache(t *testing.T) {
	c := newValidCache(2)
	a := digest("t", "c1", []byte(`{"a":1}`))
	c.add("a", a)
	if !c.has("a", a) {
		t.Fatal("validated event not remembered")
	}
	for _, d := range [][32]byte{digest("t", "c1", []byte(`{"a":2}`)), digest("t", "c2", []byte(`{"a":1}`)), digest("u", "c1", []byte(`{"a":1}`))} {
		if c.has("a", d) {
			t.Fatal("other content under the same id counted as validated")
		}
	}
	c.add("b", a)
	c.add("c", a)
	if c.has("a", a) || !c.has("b", a) || !c.has("c", a) {
		t.Fatal("eviction is not oldest first")
	}
}

// TestTamperedCopyStillChecked: a message reusing the id of an event this
// process published, with other bytes, is validated (and refused when
// invalid) like any other.
func TestTamperedCopyStillChecked(t *testing.T) {
	e, err := events.New(events.KindSellerSkipped, events.NewID(), "t", "c1",
		events.SellerSkipped{CampaignID: "c1", SellerURL: "https://s.example", Stage: "t", Code: "c", Reason: "r"})
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := (&Bus{}).checkOut(e)
	if err != nil {
		t.Fatal(err)
	}
	if _, reason, _ := inbound(m.Header, m.Data); reason != "" {
		t.Fatalf("valid event refused: %s", reason)
	}
	if _, reason, _ := inbound(m.Header, []byte(`{"campaign_id":"c1"}`)); !strings.Contains(reason, "violates its schema") {
		t.Fatalf("tampered copy accepted: %q", reason)
	}
}

package events

import (
	"testing"
	"time"
)

// A time-valued CloudEvents extension goes on the wire as RFC 3339, never as
// time.Time's String form ("2026-11-27 06:00:00 +0000 UTC"), and decodes back
// to the same instant.
func TestTimeExtensionIsRFC3339(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC)
	in, err := New(KindCampaignRejected, NewID(), StageBooker, "c-1",
		CampaignRejected{CampaignID: "c-1", Field: "brief.budget", Reason: "must be > 0"})
	if err != nil {
		t.Fatal(err)
	}
	in.SetExtension("deadline", at)
	m, err := Encode(in, KindCampaignRejected.SubjectFor("c-1"))
	if err != nil {
		t.Fatal(err)
	}
	const want = "2026-11-27T06:00:00Z"
	if got := m.Header.Get("ce-deadline"); got != want {
		t.Fatalf("ce-deadline = %q, want %q", got, want)
	}
	out, err := Decode(m.Header, m.Data)
	if err != nil {
		t.Fatal(err)
	}
	v, ok := out.Extensions()["deadline"]
	if !ok {
		t.Fatal("decoded event lost the deadline extension")
	}
	got, err := time.Parse(time.RFC3339Nano, toString(t, v))
	if err != nil || !got.Equal(at) {
		t.Fatalf("decoded deadline = %v (%v), want %v", v, err, at)
	}

	// SetExtension wraps a time.Time in the SDK's Timestamp; a bare time.Time
	// (in any zone) reaches the codec only through extensionString, which
	// must not fall back to time.Time's String.
	for _, v := range []time.Time{at, at.In(time.FixedZone("CET", 3600))} {
		if got := toString(t, v); got != want {
			t.Errorf("extensionString(%v) = %q, want %q", v, got, want)
		}
	}
}

func toString(t *testing.T, v any) string {
	t.Helper()
	s, err := extensionString(v)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

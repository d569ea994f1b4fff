package notifier_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/sellerclient"
	"github.com/dealflow/dealflow/services/notifier"
)

type hooks map[string]notifier.Webhook

func (h hooks) Get(_ context.Context, id string) (notifier.Webhook, bool, error) {
	w, ok := h[id]
	return w, ok, nil
}

func booked(t *testing.T, campaign string) events.Event {
	t.Helper()
	e, err := events.New(events.KindCampaignCompleted, events.NewID(), "test", campaign, events.CampaignCompleted{CampaignID: campaign, Status: events.StatusCompleted})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestDeliverySignatureVerifies: the receiver gets the structured CloudEvent
// and headers, and the signature over "<timestamp>.<body>" verifies with
// the secret (and not with another, nor over another timestamp).
func TestDeliverySignatureVerifies(t *testing.T) {
	type got struct {
		h    http.Header
		body []byte
	}
	ch := make(chan got, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ch <- got{r.Header.Clone(), b}
	}))
	defer srv.Close()
	s := notifier.New(hooks{"c-1": {URL: srv.URL + "/hook", Secret: "s3cret-s3cret-s3cret"}}, sellerclient.PrivateGuard(), zerolog.Nop())
	s.Now = func() time.Time { return time.Unix(1800000000, 0) }
	in := booked(t, "c-1")
	if _, err := s.Handle(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	g := <-ch
	ts, sig := g.h.Get(notifier.HeaderTimestamp), g.h.Get(notifier.HeaderSignature)
	if ts != "1800000000" || g.h.Get(notifier.HeaderEventID) != in.ID() || g.h.Get("Content-Type") != notifier.ContentType || !strings.HasPrefix(sig, "sha256=") {
		t.Fatalf("headers %v", g.h)
	}
	if !notifier.Verify("s3cret-s3cret-s3cret", ts, g.body, sig) || notifier.Verify("other", ts, g.body, sig) || notifier.Verify("s3cret-s3cret-s3cret", "1800000001", g.body, sig) {
		t.Fatal("signature does not verify with exactly the secret and timestamp")
	}
	var ce map[string]any
	if err := json.Unmarshal(g.body, &ce); err != nil || ce["specversion"] != "1.0" || ce["id"] != in.ID() || ce["type"] != events.KindCampaignCompleted.Type {
		t.Fatalf("body %s: %v", g.body, err)
	}
	if strings.Contains(string(g.body), "s3cret") {
		t.Fatal("secret in the body")
	}
	// No webhook: nothing to do, no error.
	if _, err := s.Handle(t.Context(), booked(t, "c-2")); err != nil {
		t.Fatal(err)
	}
}

func TestNon2xxIsRetryableAndPrivateIsRefused(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }))
	defer srv.Close()
	s := notifier.New(hooks{"c-1": {URL: srv.URL, Secret: "x"}}, sellerclient.PrivateGuard(), zerolog.Nop())
	if _, err := s.Handle(t.Context(), booked(t, "c-1")); err == nil || !strings.Contains(err.Error(), "answered 500") {
		t.Fatalf("err = %v", err)
	}
	guarded := notifier.New(hooks{"c-1": {URL: srv.URL, Secret: "x"}}, sellerclient.Guard{}, zerolog.Nop())
	if _, err := guarded.Handle(t.Context(), booked(t, "c-1")); err == nil || !strings.Contains(err.Error(), "private") {
		t.Fatalf("private destination: err = %v", err)
	}
}

package activator_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/sandbox"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/sellerclient"
	"github.com/dealflow/dealflow/services/activator"
	"github.com/dealflow/dealflow/services/notifier"
)

const secret = "dsp-secret-0123456789"

func activation(dealID string) activator.Activation {
	key := activator.SeatKey("http://127.0.0.1:9001", dealID)
	return activator.Activation{IdempotencyKey: activator.IdempotencyKey(key), DealKey: key, CampaignID: "cmp-1", Origin: events.OriginBooked, Attempt: 1,
		Deal: events.DealTerms{DealID: dealID, DealType: "PD", SellerURL: "http://127.0.0.1:9001", FixedCPMMicros: 20_000_000, Currency: "USD",
			ActivationInstructions: map[string]string{"ttd": "x"}, OpenRTB: &events.OpenRTBDeal{ID: dealID, BidFloorMicros: 20_000_000}},
		RequestedAt: now}
}

func code(err error) (string, bool) {
	var e *activator.Error
	if !errors.As(err, &e) {
		return "not an *activator.Error: " + err.Error(), false
	}
	return e.Code, e.Retryable
}

// TestWebhookAgainstSandboxDSP: the webhook activator's requests verify at
// the sandbox DSP (its own HMAC code); a key is activated once and replayed
// after; each fault maps to its code and retryability.
func TestWebhookAgainstSandboxDSP(t *testing.T) {
	dsp, err := sandbox.StartDSP(secret)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dsp.Close() })
	w := activator.NewWebhook(dsp.URL, secret, sellerclient.PrivateGuard(), 2*time.Second)
	ctx := t.Context()

	r, err := w.Activate(ctx, activation("D-1"))
	if err != nil || r.Ref == "" || r.Replayed {
		t.Fatalf("first: %+v %v", r, err)
	}
	r2, err := w.Activate(ctx, activation("D-1"))
	if err != nil || r2.Ref != r.Ref || !r2.Replayed {
		t.Fatalf("replay: %+v %v", r2, err)
	}

	dsp.SetFaults(sandbox.DSPFaults{FailNext: 1})
	if c, retry := code(firstErr(w.Activate(ctx, activation("D-2")))); c != activator.CodeHTTPError || !retry {
		t.Fatalf("503: %s %v", c, retry)
	}
	if _, err := w.Activate(ctx, activation("D-2")); err != nil {
		t.Fatalf("after the 503: %v", err)
	}

	dsp.SetFaults(sandbox.DSPFaults{RefuseDeals: map[string]bool{"D-3": true}})
	if c, retry := code(firstErr(w.Activate(ctx, activation("D-3")))); c != activator.CodeRefused || retry {
		t.Fatalf("422: %s %v", c, retry)
	}

	// Slow: the DSP makes the activation but answers after the client's
	// timeout; the retry with the same key gets that activation back.
	dsp.SetFaults(sandbox.DSPFaults{Slow: 3 * time.Second})
	short := activator.NewWebhook(dsp.URL, secret, sellerclient.PrivateGuard(), 300*time.Millisecond)
	if c, retry := code(firstErr(short.Activate(ctx, activation("D-4")))); c != activator.CodeTimeout || !retry {
		t.Fatalf("slow: %s %v", c, retry)
	}
	dsp.SetFaults(sandbox.DSPFaults{})
	if r, err := w.Activate(ctx, activation("D-4")); err != nil || !r.Replayed {
		t.Fatalf("retry after the timeout: %+v %v", r, err)
	}

	// A wrong secret is retried (a configuration to fix), not final.
	bad := activator.NewWebhook(dsp.URL, "another-secret-000000", sellerclient.PrivateGuard(), 2*time.Second)
	if c, retry := code(firstErr(bad.Activate(ctx, activation("D-5")))); c != activator.CodeHTTPError || !retry {
		t.Fatalf("bad signature: %s %v", c, retry)
	}
	// The address guard: a loopback DSP without --allow-private is final.
	guarded := activator.NewWebhook(dsp.URL, secret, sellerclient.Guard{}, 2*time.Second)
	if c, retry := code(firstErr(guarded.Activate(ctx, activation("D-6")))); c != activator.CodeBlocked || retry {
		t.Fatalf("guarded: %s %v", c, retry)
	}
	// Closed: a refused connection is retried.
	_ = dsp.Close()
	if c, retry := code(firstErr(w.Activate(ctx, activation("D-7")))); c != activator.CodeUnreachable || !retry {
		t.Fatalf("closed: %s %v", c, retry)
	}

	acts := dsp.Activations()
	if len(acts) != 3 {
		t.Fatalf("activations %+v, want D-1, D-2, D-4 once each", acts)
	}
	for _, a := range acts {
		if a.IdempotencyKey != activation(a.DealID).IdempotencyKey {
			t.Fatalf("activation %+v under another key", a)
		}
	}
	for _, rq := range dsp.Requests() {
		if rq.IdempotencyKey != "" && rq.Status != 401 && !rq.SignatureOK {
			t.Fatalf("request %+v", rq)
		}
	}
}

func firstErr(_ activator.Receipt, err error) error {
	if err == nil {
		return errors.New("no error")
	}
	return err
}

// TestFilesWritesSignedActivationOnce: the file activator writes the
// activation and a signature that verifies over its exact bytes; the same
// key again is a replay and leaves the file as it was.
func TestFilesWritesSignedActivationOnce(t *testing.T) {
	dir := t.TempDir()
	f := &activator.Files{Dir: dir, Secret: secret, Now: func() time.Time { return now }}
	a := activation("F-1")
	r, err := f.Activate(t.Context(), a)
	if err != nil || r.Replayed || r.Ref != a.IdempotencyKey+".json" {
		t.Fatalf("%+v %v", r, err)
	}
	body, err := os.ReadFile(filepath.Join(dir, a.IdempotencyKey+".json"))
	if err != nil {
		t.Fatal(err)
	}
	sigRaw, err := os.ReadFile(filepath.Join(dir, a.IdempotencyKey+".sig"))
	if err != nil {
		t.Fatal(err)
	}
	var sig activator.SignatureFile
	if err := json.Unmarshal(sigRaw, &sig); err != nil || !notifier.Verify(secret, sig.Timestamp, body, sig.Signature) || notifier.Verify("x", sig.Timestamp, body, sig.Signature) {
		t.Fatalf("signature %s does not verify: %v", sigRaw, err)
	}
	var back activator.Activation
	if err := json.Unmarshal(body, &back); err != nil || back.Deal.DealID != "F-1" || back.IdempotencyKey != a.IdempotencyKey {
		t.Fatalf("body %s: %v", body, err)
	}
	a.Attempt = 2
	if r, err := f.Activate(t.Context(), a); err != nil || !r.Replayed {
		t.Fatalf("replay: %+v %v", r, err)
	}
	again, _ := os.ReadFile(filepath.Join(dir, a.IdempotencyKey+".json"))
	if string(again) != string(body) {
		t.Fatal("a replay rewrote the activation")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("%d files, want the .json and the .sig (no temporary left)", len(entries))
	}
	missing := &activator.Files{Dir: filepath.Join(dir, "nope"), Secret: secret}
	if c, retry := code(firstErr(missing.Activate(t.Context(), activation("F-2")))); c != activator.CodeIO || !retry {
		t.Fatalf("missing folder: %s %v", c, retry)
	}
}

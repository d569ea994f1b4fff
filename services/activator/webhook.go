package activator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dealflow/dealflow/pkg/sellerclient"
	"github.com/dealflow/dealflow/services/notifier"
)

// HeaderIdempotencyKey carries the deal's idempotency key on every attempt.
const HeaderIdempotencyKey = "Idempotency-Key"

// Webhook activates deals by POSTing each Activation as JSON to one URL,
// signed as the notifier signs its webhooks: X-Dealflow-Timestamp (Unix
// seconds) and X-Dealflow-Signature, sha256=<hex HMAC-SHA256(secret,
// timestamp + "." + body)> (notifier.Sign, verified with notifier.Verify),
// with the deal's Idempotency-Key. A 2xx answer is an activation (its body
// may be {"activation_id": "...", "replayed": bool}); 401, 403 (a secret
// to fix), 408, 425, 429 and 5xx are retried; any other answer is the DSP
// refusing the deal.
type Webhook struct {
	URL    string
	Secret string
	// Client sends the requests; Guard.HTTPClient keeps them off private
	// and metadata addresses unless --allow-private allows them.
	Client *http.Client
	Now    func() time.Time
}

// NewWebhook returns a webhook activator posting to url through guard.
func NewWebhook(url, secret string, guard sellerclient.Guard, timeout time.Duration) *Webhook {
	return &Webhook{URL: url, Secret: secret, Client: guard.HTTPClient(timeout)}
}

// Name implements DSP.
func (w *Webhook) Name() string { return "webhook" }

// Activate implements DSP.
func (w *Webhook) Activate(ctx context.Context, a Activation) (Receipt, error) {
	body, err := json.Marshal(a)
	if err != nil {
		return Receipt{}, &Error{Code: CodeRefused, Reason: "encode the activation: " + err.Error(), Err: err}
	}
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	ts := strconv.FormatInt(now().Unix(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return Receipt{}, &Error{Code: CodeRefused, Reason: "DSP URL: " + err.Error(), Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "dealflow-activator/1")
	req.Header.Set(HeaderIdempotencyKey, a.IdempotencyKey)
	req.Header.Set(notifier.HeaderTimestamp, ts)
	req.Header.Set(notifier.HeaderSignature, notifier.Sign(w.Secret, ts, body))
	resp, err := w.Client.Do(req)
	if err != nil {
		switch {
		case sellerclient.IsPrivateDialError(err):
			return Receipt{}, &Error{Code: CodeBlocked, Reason: "the DSP URL resolves to a private or special-purpose address the address guard refuses (--allow-private)", Err: err}
		case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
			return Receipt{}, &Error{Code: CodeTimeout, Reason: "no answer from the DSP in time: " + err.Error(), Retryable: true, Err: err}
		}
		return Receipt{}, &Error{Code: CodeUnreachable, Reason: err.Error(), Retryable: true, Err: err}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	switch code := resp.StatusCode; {
	case code >= 200 && code <= 299:
		var out struct {
			ActivationID string `json:"activation_id"`
			Replayed     bool   `json:"replayed"`
		}
		_ = json.Unmarshal(raw, &out) // the answer's body is optional
		return Receipt{Ref: out.ActivationID, Replayed: out.Replayed}, nil
	case code == http.StatusRequestTimeout || code == http.StatusTooEarly || code == http.StatusTooManyRequests || code >= 500,
		// A signature or key the DSP does not accept is a configuration to
		// fix (--dsp-secret), not a verdict on the deal: retried meanwhile.
		code == http.StatusUnauthorized || code == http.StatusForbidden:
		return Receipt{}, &Error{Code: CodeHTTPError, Reason: fmt.Sprintf("the DSP answered %d%s", code, snippet(raw)), Retryable: true}
	default:
		return Receipt{}, &Error{Code: CodeRefused, Reason: fmt.Sprintf("the DSP refused the deal: %d%s", code, snippet(raw))}
	}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// snippet is ": <the start of body>" for a reason, or "".
func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if s == "" {
		return ""
	}
	if len(s) > 200 {
		cut := 200
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return ": " + s
}
